#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import Synchronization
import SystemPackage

// Ancillary data (control messages) of `sendmsg(2)` / `recvmsg(2)`, see cmsg(3): a builder that
// encodes typed messages, and a parser that turns received control data into typed values.
//
// The `CMSG_*` arithmetic is done here in Swift (the C macros do not import): a message is a
// `struct cmsghdr` (`cmsg_len` of type `size_t`, `cmsg_level`, `cmsg_type`), its payload, and
// padding up to the alignment of `size_t`. Nothing here assumes the buffer itself is aligned:
// every field is read and written with unaligned loads and stores, and never outside the buffer.

// MARK: - Messages to send

/// A control message to send with `sendWithControl(_:to:control:flags:)`:
/// one `struct cmsghdr` and its payload.
///
/// Encode messages into a ``ControlMessageBuffer``. Received messages are
/// ``ReceivedControlMessage``s, which also cover what only the kernel sends (timestamps, errors).
///
/// ## Names
///
/// A control message is named for what it carries, in whole words, with the family's suffix
/// where there is one: `packetInfoV4` (`IP_PKTINFO`), `hopLimitV6` (`IPV6_HOPLIMIT`),
/// `trafficClassV6` (`IPV6_TCLASS`), `timestampNs` (`SCM_TIMESTAMPNS`). The same name is used
/// for a message sent, a message received (``ReceivedControlMessage``) and the room it takes
/// (``ReceivedControlMessage/Kind``). The options that switch messages on, or set the same value
/// for every datagram, keep socket2's rule instead — the C option's name in lowerCamelCase:
/// `setRecvPktinfoV4` (`IP_PKTINFO`), `setRecvHoplimitV6` (`IPV6_RECVHOPLIMIT`), `setTclassV6`
/// (`IPV6_TCLASS`), `setTimestampns` (`SO_TIMESTAMPNS`) — so the two spell some words
/// differently, and each names the other in its documentation. Values whose C field is an
/// `int` are `Int` here (`ttlV4(Int)`), where a setter of the same value keeps socket2's type
/// (`setTtlV4(UInt32)`).
public enum ControlMessage: Sendable, Hashable {
    /// `SOL_SOCKET`/`SCM_RIGHTS` (Unix sockets): passes open descriptors. The kernel duplicates
    /// them into the receiving process; the sender keeps its own and still closes them.
    case rights([CInt])
    /// `SOL_SOCKET`/`SCM_CREDENTIALS` (Unix sockets): `struct ucred`. Without privileges the
    /// values must be the sender's own (`getpid`, `getuid`/`geteuid`, `getgid`/`getegid`).
    case credentials(pid: Int32, uid: UInt32, gid: UInt32)
    /// `IPPROTO_IP`/`IP_PKTINFO`: `struct in_pktinfo`. On a send, `specDestination` is the source
    /// address to use and `interfaceIndex` the outgoing interface (0 = by route); the kernel
    /// ignores `destination`.
    case packetInfoV4(
        destination: IPv4Address = .unspecified, interfaceIndex: UInt32 = 0,
        specDestination: IPv4Address = .unspecified)
    /// `IPPROTO_IPV6`/`IPV6_PKTINFO`: `struct in6_pktinfo`. On a send, `address` is the source
    /// address (`::` = by route) and `interfaceIndex` the outgoing interface (0 = by route).
    case packetInfoV6(address: IPv6Address = .unspecified, interfaceIndex: UInt32 = 0)
    /// `IPPROTO_IP`/`IP_TOS`: the type-of-service byte of this datagram (sent as an `int`).
    /// For every datagram: ``SocketHandle/setTosV4(_:)``.
    case tosV4(UInt8)
    /// `IPPROTO_IPV6`/`IPV6_TCLASS`: the traffic class of this datagram (`int`, -1 = default).
    /// For every datagram: ``SocketHandle/setTclassV6(_:)``.
    case trafficClassV6(Int)
    /// `IPPROTO_IP`/`IP_TTL`: the time-to-live of this datagram (`int`, 1…255).
    /// An `Int`, as its C field is an `int`, where ``SocketHandle/setTtlV4(_:)`` (for every
    /// datagram) keeps socket2's `u32`.
    case ttlV4(Int)
    /// `IPPROTO_IPV6`/`IPV6_HOPLIMIT`: the hop limit of this datagram (`int`, -1 = default).
    /// For every datagram: ``SocketHandle/setUnicastHopsV6(_:)``.
    case hopLimitV6(Int)
    /// `SOL_UDP`/`UDP_SEGMENT` (Linux 4.18): segment this send into datagrams of this many payload
    /// bytes (UDP generic segmentation offload, see `sendSegmented(_:segmentSize:to:flags:)`).
    /// For every send: ``SocketHandle/setUdpSegment(_:)``.
    case udpSegment(UInt16)
    /// Any other message: `level`, `type` and the payload bytes as they are.
    case raw(level: CInt, type: CInt, data: [UInt8])

    /// The message's `cmsg_level`.
    public var level: CInt {
        switch self {
        case .rights, .credentials: return SOL_SOCKET
        case .packetInfoV4, .tosV4, .ttlV4: return CInt(IPPROTO_IP)
        case .packetInfoV6, .trafficClassV6, .hopLimitV6: return CInt(IPPROTO_IPV6)
        case .udpSegment: return SOL_UDP
        case .raw(let level, _, _): return level
        }
    }

    /// The message's `cmsg_type`.
    public var type: CInt {
        switch self {
        case .rights: return CInt(SCM_RIGHTS)
        case .credentials: return socket2_SCM_CREDENTIALS
        case .packetInfoV4: return IP_PKTINFO
        case .tosV4: return IP_TOS
        case .ttlV4: return IP_TTL
        case .packetInfoV6: return IPV6_PKTINFO
        case .trafficClassV6: return IPV6_TCLASS
        case .hopLimitV6: return IPV6_HOPLIMIT
        case .udpSegment: return UDP_SEGMENT
        case .raw(_, let type, _): return type
        }
    }

    /// The size of the payload in bytes (the `n` of `CMSG_LEN(n)`).
    public var dataLength: Int {
        switch self {
        case .rights(let descriptors): return descriptors.count * MemoryLayout<CInt>.size
        case .credentials: return MemoryLayout<socket2_ucred>.size
        case .packetInfoV4: return MemoryLayout<in_pktinfo>.size
        case .packetInfoV6: return MemoryLayout<socket2_in6_pktinfo>.size
        case .tosV4, .trafficClassV6, .ttlV4, .hopLimitV6: return MemoryLayout<CInt>.size
        case .udpSegment: return MemoryLayout<UInt16>.size
        case .raw(_, _, let data): return data.count
        }
    }

    /// The bytes this message takes in a control buffer, padding included: `CMSG_SPACE`.
    public var space: Int { Self.space(forDataLength: dataLength) }

    // MARK: The CMSG arithmetic

    /// `sizeof(struct cmsghdr)`: 16 bytes on 64-bit Linux.
    public static let headerSize = MemoryLayout<cmsghdr>.size

    /// `CMSG_ALIGN(length)`: `length` rounded up to the alignment of `size_t`.
    ///
    /// - Precondition: `length` is not negative.
    public static func align(_ length: Int) -> Int {
        precondition(length >= 0, "a control message length is never negative")
        let alignment = MemoryLayout<Int>.size
        return (length + alignment - 1) & ~(alignment - 1)
    }

    /// `CMSG_LEN(dataLength)`: the `cmsg_len` of a message with that much payload.
    public static func length(forDataLength dataLength: Int) -> Int {
        align(headerSize) + dataLength
    }

    /// `CMSG_SPACE(dataLength)`: the bytes a message with that much payload takes in a control
    /// buffer, padding included. Size receive buffers as the sum of the spaces of the messages
    /// expected.
    public static func space(forDataLength dataLength: Int) -> Int {
        align(headerSize) + align(dataLength)
    }

    /// Offsets of `struct cmsghdr`'s fields.
    static let lengthOffset = MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_len)!
    static let levelOffset = MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_level)!
    static let typeOffset = MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_type)!

    // MARK: Encoding

    /// Refuses values the C payload cannot hold (an `int` field given a larger number).
    func validate() throws(Errno) {
        switch self {
        case .trafficClassV6(let value), .ttlV4(let value), .hopLimitV6(let value):
            guard CInt(exactly: value) != nil else { throw .invalidArgument }
        default:
            break
        }
    }

    /// Writes header, payload and zeroed padding at the start of `destination`, which must hold
    /// ``space`` bytes and the message must have been validated. Returns ``space``.
    func encode(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let dataLength = self.dataLength
        let space = Self.space(forDataLength: dataLength)
        precondition(destination.count >= space, "control buffer too small")
        destination.storeBytes(of: UInt(Self.length(forDataLength: dataLength)),
                               toByteOffset: Self.lengthOffset, as: UInt.self)
        destination.storeBytes(of: level, toByteOffset: Self.levelOffset, as: CInt.self)
        destination.storeBytes(of: type, toByteOffset: Self.typeOffset, as: CInt.self)
        let start = Self.align(Self.headerSize)
        let payload = UnsafeMutableRawBufferPointer(rebasing: destination[start..<(start + dataLength)])
        encodePayload(into: payload)
        // Padding and the gap between header and payload are zero, so equal messages encode
        // to equal bytes whatever the buffer held before.
        destination[(start + dataLength)..<space].initializeMemory(as: UInt8.self, repeating: 0)
        return space
    }

    private func encodePayload(into payload: UnsafeMutableRawBufferPointer) {
        func store<T>(_ value: T) {
            withUnsafeBytes(of: value) { payload.copyMemory(from: $0) }
        }
        switch self {
        case .rights(let descriptors):
            for (index, descriptor) in descriptors.enumerated() {
                payload.storeBytes(of: descriptor, toByteOffset: index * MemoryLayout<CInt>.size,
                                   as: CInt.self)
            }
        case .credentials(let pid, let uid, let gid):
            store(socket2_ucred(pid: pid, uid: uid, gid: gid))
        case .packetInfoV4(let destination, let interfaceIndex, let specDestination):
            store(in_pktinfo(ipi_ifindex: CInt(bitPattern: interfaceIndex),
                             ipi_spec_dst: specDestination.inAddr, ipi_addr: destination.inAddr))
        case .packetInfoV6(let address, let interfaceIndex):
            store(socket2_in6_pktinfo(ipi6_addr: address.storage, ipi6_ifindex: interfaceIndex))
        case .tosV4(let tos):
            store(CInt(tos))
        case .trafficClassV6(let value), .ttlV4(let value), .hopLimitV6(let value):
            store(CInt(value))
        case .udpSegment(let size):
            store(size)
        case .raw(_, _, let data):
            payload.copyBytes(from: data)
        }
    }
}

// MARK: - The buffer

/// Control data: encoded control messages to send, or the space the kernel fills on a receive.
///
/// Build it once and reuse it: ``removeAll()`` keeps the storage, ``append(_:)`` grows it only
/// when a message does not fit, and a receive offers the whole ``capacity`` to the kernel.
/// The storage is zeroed when it grows, so no uninitialised byte ever reaches the kernel.
public struct ControlMessageBuffer: Sendable, Equatable {
    /// `capacity` zero-initialised bytes; the first `count` are in use.
    var storage: [UInt8]
    /// The bytes in use: encoded messages, or what the last receive reported (`msg_controllen`).
    public internal(set) var count: Int

    /// An empty buffer with `capacity` bytes of storage (for a receive, size it by the kinds
    /// expected with ``init(receiving:)``). A negative capacity is taken as 0.
    public init(capacity: Int = 0) {
        storage = [UInt8](repeating: 0, count: max(0, capacity))
        count = 0
    }

    /// A buffer holding `messages`, encoded in order.
    ///
    /// - Throws: `Errno.invalidArgument` when a value does not fit its C field.
    public init(_ messages: [ControlMessage]) throws(Errno) {
        self.init(capacity: messages.reduce(0) { $0 + $1.space })
        try append(contentsOf: messages)
    }

    /// A buffer holding exactly `bytes`, as received control data or as hand-made messages.
    public init(bytes: [UInt8]) {
        storage = bytes
        count = bytes.count
    }

    /// The bytes of storage: what a receive may fill.
    public var capacity: Int { storage.count }

    /// `true` when no byte is in use.
    public var isEmpty: Bool { count == 0 }

    /// A copy of the bytes in use.
    public var bytes: [UInt8] { Array(storage.prefix(count)) }

    /// Grows the storage to at least `capacity` bytes (never shrinks it).
    public mutating func reserveCapacity(_ capacity: Int) {
        if capacity > storage.count {
            storage.append(contentsOf: repeatElement(0, count: capacity - storage.count))
        }
    }

    /// Buffers are equal when the bytes in use are; the capacity does not count.
    public static func == (lhs: ControlMessageBuffer, rhs: ControlMessageBuffer) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in left.elementsEqual(right) } }
    }

    /// Forgets the messages, keeping the storage for the next use.
    public mutating func removeAll() { count = 0 }

    /// Appends one message (header, payload, padding: ``ControlMessage/space`` bytes), growing
    /// the storage if needed.
    ///
    /// - Throws: `Errno.invalidArgument` when a value does not fit its C field (an `Int` beyond
    ///   the range of `int`).
    public mutating func append(_ message: ControlMessage) throws(Errno) {
        try message.validate()
        let start = count
        reserveCapacity(start + message.space)
        count += storage.withUnsafeMutableBytes { raw in
            message.encode(into: UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
        }
    }

    /// Appends messages in order.
    public mutating func append(contentsOf messages: [ControlMessage]) throws(Errno) {
        for message in messages { try append(message) }
    }

    /// Runs `body` over the bytes in use (what `msg_control` points to on a send).
    public func withUnsafeBytes<R, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let result: Result<R, E> = storage.withUnsafeBytes { raw in
            do throws(E) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: raw.prefix(count))))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Runs `body` over the whole storage, for a receive to fill; `body` returns the bytes
    /// received (`msg_controllen`), which become ``count`` (at most the capacity).
    mutating func receive<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer, inout Int) throws(E) -> R
    ) throws(E) -> R {
        var received = 0
        let result: Result<R, E> = storage.withUnsafeMutableBytes { raw in
            do throws(E) { return .success(try body(raw, &received)) } catch { return .failure(error) }
        }
        count = min(max(received, 0), storage.count)
        return try result.get()
    }

    /// Parses the bytes in use as received control data, then empties the buffer.
    ///
    /// The returned values **own the descriptors** named by `SCM_RIGHTS` messages (see
    /// ``ReceivedDescriptors``): parse control data only once, and only data that the kernel
    /// delivered or that names descriptors handed over. `flags` are the receive's flags; with
    /// `MSG_CTRUNC` set, ``ReceivedControlMessage/truncated`` comes last.
    public mutating func takeMessages(
        flags: RecvFlags = RecvFlags(rawValue: 0)
    ) -> [ReceivedControlMessage] {
        let messages = withUnsafeBytes { ReceivedControlMessage.parse(received: $0, flags: flags) }
        count = 0
        return messages
    }
}

// MARK: - Received messages

/// A control message received with `recvWithControl(into:control:flags:)`,
/// decoded.
///
/// Cases are named as ``ControlMessage``'s (see its "Names"), and each names the option that
/// switches it on.
///
/// Every message the kernel delivers becomes exactly one value; one whose payload does not suit
/// its type becomes ``malformed(_:)``, and one this type does not know ``unknown(level:type:data:)``.
/// Timestamps are durations since the Unix epoch (`CLOCK_REALTIME`) unless the socket asked for
/// another clock.
public enum ReceivedControlMessage: Sendable, CustomStringConvertible {
    /// `SCM_RIGHTS`: descriptors the kernel installed in this process, owned by the value and
    /// closed when it goes away unless taken (``ReceivedDescriptors/take()``).
    case rights(ReceivedDescriptors)
    /// `SCM_CREDENTIALS`: the sender's credentials (`SO_PASSCRED` on the receiver).
    /// Switched on by ``SocketHandle/setPasscred(_:)``.
    case credentials(pid: Int32, uid: UInt32, gid: UInt32)
    /// `SO_TIMESTAMP` (`SCM_TIMESTAMP`, `struct timeval`, microseconds): when the datagram
    /// arrived.
    /// Switched on by ``SocketHandle/setTimestamp(_:)``.
    case timestamp(Duration)
    /// `SO_TIMESTAMPNS` (`SCM_TIMESTAMPNS`, `struct timespec`): when the datagram arrived.
    /// Switched on by ``SocketHandle/setTimestampns(_:)``.
    case timestampNs(Duration)
    /// `SO_TIMESTAMPING` (`SCM_TIMESTAMPING`, `struct scm_timestamping`): the software and the raw
    /// hardware timestamp, each `nil` when the kernel left it zero. (The kernel switches receive
    /// timestamps on system-wide from a work queue: datagrams arriving in the moment after the
    /// first socket asks for them may come without this message.)
    /// Switched on by ``SocketHandle/setTimestamping(_:)``.
    case timestamping(software: Duration?, hardware: Duration?)
    /// `IP_PKTINFO`: the datagram's destination address (`ipi_addr`), the interface it arrived
    /// on, and the local address the route chose (`ipi_spec_dst`).
    /// Switched on by ``SocketHandle/setRecvPktinfoV4(_:)``.
    case packetInfoV4(destination: IPv4Address, interfaceIndex: UInt32, specDestination: IPv4Address)
    /// `IPV6_PKTINFO` (`IPV6_RECVPKTINFO` on): the datagram's destination address and the
    /// interface it arrived on.
    /// Switched on by ``SocketHandle/setRecvPktinfoV6(_:)``.
    case packetInfoV6(address: IPv6Address, interfaceIndex: UInt32)
    /// `IP_TOS` (`IP_RECVTOS` on): the datagram's type-of-service byte.
    /// Switched on by ``SocketHandle/setRecvTosV4(_:)``.
    case tosV4(UInt8)
    /// `IPV6_TCLASS` (`IPV6_RECVTCLASS` on): the datagram's traffic class.
    /// Switched on by ``SocketHandle/setRecvTclassV6(_:)``.
    case trafficClassV6(Int)
    /// `IP_TTL` (`IP_RECVTTL` on): the datagram's time-to-live.
    /// Switched on by ``SocketHandle/setRecvTtlV4(_:)``.
    case ttlV4(Int)
    /// `IPV6_HOPLIMIT` (`IPV6_RECVHOPLIMIT` on): the datagram's hop limit.
    /// Switched on by ``SocketHandle/setRecvHoplimitV6(_:)``.
    case hopLimitV6(Int)
    /// `UDP_GRO` (`UDP_GRO` on): the datagrams were coalesced; each is this many bytes but the
    /// last, which may be shorter.
    /// Switched on by ``SocketHandle/setUdpGro(_:)``.
    case udpGroSegmentSize(Int)
    /// `UDP_SEGMENT`: a segment size (the kernel does not deliver it; it comes from buffers built
    /// with ``ControlMessage/udpSegment(_:)``).
    case udpSegment(UInt16)
    /// `IP_RECVERR`/`IPV6_RECVERR` from the error queue, of origin `SO_EE_ORIGIN_ZEROCOPY`:
    /// zero-copy sends the kernel has finished with.
    /// Sends with `MSG_ZEROCOPY` need ``SocketHandle/setZerocopy(_:)``.
    case zeroCopy(ZeroCopyCompletion)
    /// `IP_RECVERR`/`IPV6_RECVERR` from the error queue (`MSG_ERRQUEUE`): `struct
    /// sock_extended_err` and the address of the node that reported it.
    /// Switched on by ``SocketHandle/setRecvErrV4(_:)`` / ``SocketHandle/setRecvErrV6(_:)``.
    case extendedError(ExtendedError)
    /// A message this type does not decode, as it came.
    case unknown(level: CInt, type: CInt, data: [UInt8])
    /// Control data that is not a well-formed message (see ``MalformedControlMessage``).
    case malformed(MalformedControlMessage)
    /// `MSG_CTRUNC`: the kernel discarded control data that did not fit the buffer. Always last.
    case truncated

    public var description: String {
        switch self {
        case .rights(let descriptors): return "rights(\(descriptors))"
        case .credentials(let pid, let uid, let gid): return "credentials(pid: \(pid), uid: \(uid), gid: \(gid))"
        case .timestamp(let time): return "timestamp(\(time))"
        case .timestampNs(let time): return "timestampNs(\(time))"
        case .timestamping(let software, let hardware):
            return "timestamping(software: \(software.map { "\($0)" } ?? "nil"), hardware: \(hardware.map { "\($0)" } ?? "nil"))"
        case .packetInfoV4(let destination, let index, let spec):
            return "packetInfoV4(destination: \(destination), interfaceIndex: \(index), specDestination: \(spec))"
        case .packetInfoV6(let address, let index): return "packetInfoV6(address: \(address), interfaceIndex: \(index))"
        case .tosV4(let tos): return "tosV4(\(tos))"
        case .trafficClassV6(let value): return "trafficClassV6(\(value))"
        case .ttlV4(let value): return "ttlV4(\(value))"
        case .hopLimitV6(let value): return "hopLimitV6(\(value))"
        case .udpGroSegmentSize(let size): return "udpGroSegmentSize(\(size))"
        case .udpSegment(let size): return "udpSegment(\(size))"
        case .zeroCopy(let completion): return "zeroCopy(\(completion))"
        case .extendedError(let error): return "extendedError(\(error))"
        case .unknown(let level, let type, let data):
            let (levelName, typeName) = controlMessageNames(level: level, type: type)
            return "unknown(level: \(levelName), type: \(typeName), data: \(data))"
        case .malformed(let malformed): return "malformed(\(malformed))"
        case .truncated: return "truncated"
        }
    }

    /// Parses received control data: the `msg_controllen` bytes the kernel reported, and the
    /// receive's flags. Never reads outside `control`; a bad header ends the walk with a
    /// ``malformed(_:)`` value, and `MSG_CTRUNC` adds ``truncated`` at the end.
    ///
    /// The values returned **own the descriptors** of `SCM_RIGHTS` messages: parse a buffer only
    /// once (``ControlMessageBuffer/takeMessages(flags:)`` does this and empties the buffer).
    public static func parse(received control: UnsafeRawBufferPointer, flags: RecvFlags) -> [ReceivedControlMessage] {
        var messages: [ReceivedControlMessage] = []
        forEachControlMessage(in: control) { raw in
            switch raw {
            case .message(let level, let type, let data):
                decode(level: level, type: type, data: data, into: &messages)
            case .malformed(let problem, let level, let type, let data):
                if problem == .lengthPastEnd, level == SOL_SOCKET, type == CInt(SCM_RIGHTS) {
                    // The descriptors inside the buffer are open in this process all the same.
                    decode(level: level, type: type, data: data, into: &messages)
                }
                messages.append(.malformed(MalformedControlMessage(
                    problem: problem, level: level, type: type, data: Array(data))))
            }
        }
        if flags.isControlTruncated() { messages.append(.truncated) }
        return messages
    }

    /// Decodes one well-delimited message and appends the result(s).
    private static func decode(
        level: CInt, type: CInt, data: UnsafeRawBufferPointer, into messages: inout [ReceivedControlMessage]
    ) {
        func malformed(_ problem: MalformedControlMessage.Problem = .wrongPayloadSize) -> ReceivedControlMessage {
            .malformed(MalformedControlMessage(problem: problem, level: level, type: type, data: Array(data)))
        }
        /// The payload as a `T`, when it has exactly the size of one.
        func exactly<T>(_: T.Type) -> T? {
            data.count == MemoryLayout<T>.size ? data.loadUnaligned(as: T.self) : nil
        }
        func int(_ make: (Int) -> ReceivedControlMessage) -> ReceivedControlMessage {
            exactly(CInt.self).map { make(Int($0)) } ?? malformed()
        }
        let message: ReceivedControlMessage
        switch (level, type) {
        case (SOL_SOCKET, CInt(SCM_RIGHTS)):
            let whole = data.count / MemoryLayout<CInt>.size
            let descriptors = (0..<whole).map {
                data.loadUnaligned(fromByteOffset: $0 * MemoryLayout<CInt>.size, as: CInt.self)
            }
            let valid = descriptors.filter { $0 >= 0 }
            if !valid.isEmpty || descriptors.isEmpty { messages.append(.rights(ReceivedDescriptors(valid))) }
            if valid.count != descriptors.count { messages.append(malformed(.invalidValue)) }
            if whole * MemoryLayout<CInt>.size != data.count { messages.append(malformed()) }
            return
        case (SOL_SOCKET, socket2_SCM_CREDENTIALS):
            message = exactly(socket2_ucred.self).map { .credentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
                ?? malformed()
        case (SOL_SOCKET, SO_TIMESTAMP_OLD), (SOL_SOCKET, SO_TIMESTAMP_NEW):
            // Both are two 64-bit integers on 64-bit Linux: seconds and microseconds.
            message = exactly(TimePair.self).map { .timestamp($0.duration(subsecondScale: 1_000)) }
                ?? malformed()
        case (SOL_SOCKET, SO_TIMESTAMPNS_OLD), (SOL_SOCKET, SO_TIMESTAMPNS_NEW):
            message = exactly(TimePair.self).map { .timestampNs($0.duration(subsecondScale: 1)) }
                ?? malformed()
        case (SOL_SOCKET, SO_TIMESTAMPING_OLD), (SOL_SOCKET, SO_TIMESTAMPING_NEW):
            // `struct scm_timestamping`: software, deprecated, hardware.
            message = exactly((TimePair, TimePair, TimePair).self).map {
                .timestamping(software: $0.0.nonZeroDuration, hardware: $0.2.nonZeroDuration)
            } ?? malformed()
        case (CInt(IPPROTO_IP), IP_PKTINFO):
            message = exactly(in_pktinfo.self).map {
                .packetInfoV4(destination: IPv4Address($0.ipi_addr),
                              interfaceIndex: UInt32(bitPattern: $0.ipi_ifindex),
                              specDestination: IPv4Address($0.ipi_spec_dst))
            } ?? malformed()
        case (CInt(IPPROTO_IP), IP_TOS):
            // The kernel delivers one byte; an `int` (as sent) is accepted too.
            if let byte = exactly(UInt8.self) {
                message = .tosV4(byte)
            } else if let value = exactly(CInt.self) {
                message = UInt8(exactly: value).map { .tosV4($0) } ?? malformed(.invalidValue)
            } else {
                message = malformed()
            }
        case (CInt(IPPROTO_IP), IP_TTL):
            message = int { .ttlV4($0) }
        case (CInt(IPPROTO_IPV6), IPV6_PKTINFO):
            message = exactly(socket2_in6_pktinfo.self).map {
                .packetInfoV6(address: IPv6Address($0.ipi6_addr), interfaceIndex: $0.ipi6_ifindex)
            } ?? malformed()
        case (CInt(IPPROTO_IPV6), IPV6_TCLASS):
            message = int { .trafficClassV6($0) }
        case (CInt(IPPROTO_IPV6), IPV6_HOPLIMIT):
            message = int { .hopLimitV6($0) }
        case (CInt(IPPROTO_IP), IP_RECVERR), (CInt(IPPROTO_IPV6), IPV6_RECVERR):
            message = ExtendedError(level: level, payload: data).map { error in
                if error.origin == .zeroCopy {
                    return .zeroCopy(ZeroCopyCompletion(
                        first: error.info, last: error.data,
                        copied: error.code & UInt8(SO_EE_CODE_ZEROCOPY_COPIED) != 0))
                }
                return .extendedError(error)
            } ?? malformed()
        case (SOL_UDP, UDP_GRO):
            message = int { .udpGroSegmentSize($0) }
        case (SOL_UDP, UDP_SEGMENT):
            message = exactly(UInt16.self).map { .udpSegment($0) } ?? malformed()
        default:
            message = .unknown(level: level, type: type, data: Array(data))
        }
        messages.append(message)
    }
}

/// Control data that is not a well-formed control message.
public struct MalformedControlMessage: Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public enum Problem: Sendable, Hashable {
        /// Fewer bytes than a `struct cmsghdr` are left at the end: ignored, the walk ends.
        case incompleteHeader
        /// `cmsg_len` is smaller than the header: the walk cannot go on and ends.
        case lengthBelowHeader
        /// `cmsg_len` runs past the end of the control data: the walk ends.
        case lengthPastEnd
        /// The payload's size does not suit the message's type (for instance a message the
        /// kernel cut short for lack of space, with `MSG_CTRUNC`).
        case wrongPayloadSize
        /// A value outside its range (a negative descriptor, a type of service above 255).
        case invalidValue
    }

    /// What is wrong.
    public var problem: Problem
    /// `cmsg_level` (0 for ``Problem/incompleteHeader``).
    public var level: CInt
    /// `cmsg_type` (0 for ``Problem/incompleteHeader``).
    public var type: CInt
    /// The payload bytes present in the buffer (for ``Problem/incompleteHeader``, the bytes left).
    public var data: [UInt8]

    /// A malformed control message: what is wrong, and its header fields and bytes.
    public init(problem: Problem, level: CInt, type: CInt, data: [UInt8]) {
        self.problem = problem
        self.level = level
        self.type = type
        self.data = data
    }

    /// The problem, the C names of the level and type (`SOL_SOCKET`, `SCM_RIGHTS`; numbers where
    /// this module knows no name) and the size of the payload.
    public var description: String {
        let (levelName, typeName) = controlMessageNames(level: level, type: type)
        return "MalformedControlMessage(\(problem), level: \(levelName), type: \(typeName), \(data.count) bytes)"
    }
}

/// The C names of a control message's `cmsg_level` and `cmsg_type` (`SOL_SOCKET`,
/// `SCM_RIGHTS`), or their numbers where none is known here.
func controlMessageNames(level: CInt, type: CInt) -> (level: String, type: String) {
    let types: [CInt: String]
    let levelName: String
    switch level {
    case SOL_SOCKET:
        levelName = "SOL_SOCKET"
        types = [CInt(SCM_RIGHTS): "SCM_RIGHTS", socket2_SCM_CREDENTIALS: "SCM_CREDENTIALS", 3: "SCM_SECURITY",
                 SO_TIMESTAMP_OLD: "SCM_TIMESTAMP", SO_TIMESTAMPNS_OLD: "SCM_TIMESTAMPNS",
                 SO_TIMESTAMPING_OLD: "SCM_TIMESTAMPING", SO_TIMESTAMP_NEW: "SO_TIMESTAMP_NEW",
                 SO_TIMESTAMPNS_NEW: "SO_TIMESTAMPNS_NEW", SO_TIMESTAMPING_NEW: "SO_TIMESTAMPING_NEW"]
    case CInt(IPPROTO_IP):
        levelName = "IPPROTO_IP"
        types = [IP_TOS: "IP_TOS", IP_TTL: "IP_TTL", IP_PKTINFO: "IP_PKTINFO", IP_RECVERR: "IP_RECVERR",
                 IP_OPTIONS: "IP_OPTIONS", IP_RETOPTS: "IP_RETOPTS", IP_ORIGDSTADDR: "IP_ORIGDSTADDR"]
    case CInt(IPPROTO_IPV6):
        levelName = "IPPROTO_IPV6"
        types = [IPV6_PKTINFO: "IPV6_PKTINFO", IPV6_HOPLIMIT: "IPV6_HOPLIMIT", IPV6_TCLASS: "IPV6_TCLASS",
                 IPV6_RECVERR: "IPV6_RECVERR", IPV6_ORIGDSTADDR: "IPV6_ORIGDSTADDR"]
    case SOL_UDP:
        levelName = "SOL_UDP"
        types = [UDP_GRO: "UDP_GRO", UDP_SEGMENT: "UDP_SEGMENT"]
    default:
        return (String(level), String(type))
    }
    return (levelName, types[type] ?? String(type))
}

// MARK: - Owned descriptors

/// Descriptors received with `SCM_RIGHTS`: open in this process and owned by this object, which
/// closes every one not taken when it goes away.
///
/// Take them as raw descriptors with ``take()`` (then the caller closes them) or one by one as
/// a ``Socket`` with ``takeSocket(at:)``.
public final class ReceivedDescriptors: Sendable, CustomStringConvertible {
    /// The descriptors in the order received; -1 marks one already taken.
    private let slots: Mutex<[CInt]>

    /// How many descriptors were received (taken or not).
    public let count: Int

    /// Takes ownership of `descriptors`, which must be open descriptors of this process (>= 0).
    init(_ descriptors: [CInt]) {
        precondition(descriptors.allSatisfy { $0 >= 0 }, "a descriptor is never negative")
        slots = Mutex(descriptors)
        count = descriptors.count
    }

    /// The descriptors still owned here (not yet taken), in the order received.
    public var rawDescriptors: [CInt] {
        slots.withLock { $0.filter { $0 >= 0 } }
    }

    /// Takes every descriptor still owned here: the caller now owns (and must close) them.
    public func take() -> [CInt] {
        slots.withLock { slots in
            let owned = slots.filter { $0 >= 0 }
            for index in slots.indices { slots[index] = -1 }
            return owned
        }
    }

    /// Takes the descriptor received at `index` as an owned ``Socket`` (any kind of descriptor
    /// can be passed; use it as a socket only if it is one). `nil` when `index` is out of range
    /// or that descriptor was already taken.
    public func takeSocket(at index: Int) -> Socket? {
        let descriptor: CInt? = slots.withLock { slots in
            guard slots.indices.contains(index), slots[index] >= 0 else { return nil }
            defer { slots[index] = -1 }
            return slots[index]
        }
        return descriptor.map { Socket(rawDescriptor: $0) }
    }

    public var description: String {
        "ReceivedDescriptors(count: \(count), owned: \(rawDescriptors))"
    }

    deinit {
        for descriptor in take() { _ = system_close(descriptor) }
    }
}

// MARK: - Walking control data

/// One entry of a control buffer, as `forEachControlMessage` finds it.
enum RawControlMessage {
    /// A message whose `cmsg_len` lies within the buffer: its payload.
    case message(level: CInt, type: CInt, data: UnsafeRawBufferPointer)
    /// A header that cannot be walked past (or bytes too few for one).
    case malformed(MalformedControlMessage.Problem, level: CInt, type: CInt, data: UnsafeRawBufferPointer)
}

/// Walks control data like `CMSG_FIRSTHDR`/`CMSG_NXTHDR`, without allocating and without reading
/// a byte outside `control`. The last message needs no padding after it.
func forEachControlMessage(in control: UnsafeRawBufferPointer, _ body: (RawControlMessage) -> Void) {
    let header = ControlMessage.headerSize
    let dataOffset = ControlMessage.align(header)
    var offset = 0
    while offset < control.count {
        let remaining = control.count - offset
        guard remaining >= header else {
            body(.malformed(.incompleteHeader, level: 0, type: 0,
                            data: UnsafeRawBufferPointer(rebasing: control[offset...])))
            return
        }
        let declared = control.loadUnaligned(fromByteOffset: offset + ControlMessage.lengthOffset, as: UInt.self)
        let level = control.loadUnaligned(fromByteOffset: offset + ControlMessage.levelOffset, as: CInt.self)
        let type = control.loadUnaligned(fromByteOffset: offset + ControlMessage.typeOffset, as: CInt.self)
        let payloadStart = offset + min(dataOffset, remaining)
        guard declared >= UInt(header) else {
            body(.malformed(.lengthBelowHeader, level: level, type: type,
                            data: UnsafeRawBufferPointer(rebasing: control[payloadStart...])))
            return
        }
        guard declared <= UInt(remaining) else {
            body(.malformed(.lengthPastEnd, level: level, type: type,
                            data: UnsafeRawBufferPointer(rebasing: control[payloadStart...])))
            return
        }
        let length = Int(declared)
        body(.message(level: level, type: type,
                      data: UnsafeRawBufferPointer(rebasing: control[payloadStart..<(offset + max(length, dataOffset))])))
        offset += ControlMessage.align(length)
    }
}

/// Closes the descriptors of every `SCM_RIGHTS` message in received control data that nobody
/// will parse, so that they do not leak.
func closeReceivedDescriptors(in control: UnsafeRawBufferPointer) {
    forEachControlMessage(in: control) { raw in
        switch raw {
        case .message(SOL_SOCKET, CInt(SCM_RIGHTS), let data),
             .malformed(.lengthPastEnd, SOL_SOCKET, CInt(SCM_RIGHTS), let data):
            for index in 0..<(data.count / MemoryLayout<CInt>.size) {
                let descriptor = data.loadUnaligned(fromByteOffset: index * MemoryLayout<CInt>.size, as: CInt.self)
                if descriptor >= 0 { _ = system_close(descriptor) }
            }
        default:
            break
        }
    }
}

// MARK: - Times

/// `struct timeval` / `struct timespec` on 64-bit Linux (and their `__kernel_*` twins): two 64-bit
/// integers, seconds and a fraction.
struct TimePair {
    var seconds: Int64
    var fraction: Int64

    /// The time as a duration since the epoch; `subsecondScale` nanoseconds per fraction unit.
    func duration(subsecondScale: Int64) -> Duration {
        let (nanoseconds, overflow) = fraction.multipliedReportingOverflow(by: subsecondScale)
        return .seconds(seconds) + .nanoseconds(overflow ? Int64.max : nanoseconds)
    }

    /// The `timespec` as a duration, or `nil` when it is zero (not filled in).
    var nonZeroDuration: Duration? {
        seconds == 0 && fraction == 0 ? nil : duration(subsecondScale: 1)
    }
}
