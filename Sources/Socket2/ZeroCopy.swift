#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

// Zero-copy sends (`MSG_ZEROCOPY`, Linux 4.14 for TCP, 5.0 for UDP) and the error queue that
// tells when the kernel is done with the memory. See the kernel's
// Documentation/networking/msg_zerocopy.rst.
//
// Each successful send with `MSG_ZEROCOPY` on a socket (with `SO_ZEROCOPY` on) gets the next
// 32-bit id, counting from 0. The kernel reports finished ids as ranges on the socket's error
// queue, which `poll(2)` signals with `POLLERR`; until an id is reported, the memory it sent must
// not change.

/// Zero-copy sends the kernel has finished with: `sock_extended_err` of origin
/// `SO_EE_ORIGIN_ZEROCOPY`, ids `first` through `last` (`ee_info` … `ee_data`), both included.
public struct ZeroCopyCompletion: Sendable, Hashable, CustomStringConvertible {
    /// The first id completed (`ee_info`).
    public var first: UInt32
    /// The last id completed (`ee_data`); ids wrap around at 2³², so `last` may be below `first`.
    public var last: UInt32
    /// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel copied the data after all (always so on
    /// loopback). A socket that sees this often sends faster without `MSG_ZEROCOPY`.
    public var copied: Bool

    /// A completion of the sends numbered `first` through `last` (`SO_EE_ORIGIN_ZEROCOPY`).
    public init(first: UInt32, last: UInt32, copied: Bool) {
        self.first = first
        self.last = last
        self.copied = copied
    }

    /// How many sends completed.
    public var count: UInt64 { UInt64(last &- first) + 1 }

    /// Whether send `id` is among those completed (wrap-around aware).
    public func contains(_ id: UInt32) -> Bool {
        id &- first <= last &- first
    }

    public var description: String {
        "ZeroCopyCompletion(\(first)...\(last)\(copied ? ", copied" : ""))"
    }
}

/// An error from a socket's error queue: `struct sock_extended_err` as delivered in an
/// `IP_RECVERR` or `IPV6_RECVERR` control message (`MSG_ERRQUEUE`), and the address of the node
/// that caused it (`SO_EE_OFFENDER`).
public struct ExtendedError: Sendable, Hashable, CustomStringConvertible {
    /// Where an error comes from (`ee_origin`, `SO_EE_ORIGIN_*`).
    public struct Origin: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `SO_EE_ORIGIN_NONE` (not named `none`, which `Optional` has).
        public static let unspecified = Origin(rawValue: UInt8(SO_EE_ORIGIN_NONE))
        /// `SO_EE_ORIGIN_LOCAL`: the local stack (for example a message too large for the path MTU).
        public static let local = Origin(rawValue: UInt8(SO_EE_ORIGIN_LOCAL))
        /// `SO_EE_ORIGIN_ICMP`: an ICMP message (`type` and `code` are ICMP's).
        public static let icmp = Origin(rawValue: UInt8(SO_EE_ORIGIN_ICMP))
        /// `SO_EE_ORIGIN_ICMP6`: an ICMPv6 message.
        public static let icmp6 = Origin(rawValue: UInt8(SO_EE_ORIGIN_ICMP6))
        /// `SO_EE_ORIGIN_TXSTATUS` (`SO_EE_ORIGIN_TIMESTAMPING`): a transmit timestamp report.
        public static let timestamping = Origin(rawValue: UInt8(SO_EE_ORIGIN_TXSTATUS))
        /// `SO_EE_ORIGIN_ZEROCOPY`: zero-copy completions (decoded as ``ZeroCopyCompletion``).
        public static let zeroCopy = Origin(rawValue: UInt8(SO_EE_ORIGIN_ZEROCOPY))
        /// `SO_EE_ORIGIN_TXTIME`: a packet dropped by `SO_TXTIME` scheduling.
        public static let txTime = Origin(rawValue: UInt8(SO_EE_ORIGIN_TXTIME))

        public var description: String {
            switch self {
            case .unspecified: return "SO_EE_ORIGIN_NONE"
            case .local: return "SO_EE_ORIGIN_LOCAL"
            case .icmp: return "SO_EE_ORIGIN_ICMP"
            case .icmp6: return "SO_EE_ORIGIN_ICMP6"
            case .timestamping: return "SO_EE_ORIGIN_TIMESTAMPING"
            case .zeroCopy: return "SO_EE_ORIGIN_ZEROCOPY"
            case .txTime: return "SO_EE_ORIGIN_TXTIME"
            default: return String(rawValue)
            }
        }
    }

    /// The control message's level: `IPPROTO_IP` (`IP_RECVERR`) or `IPPROTO_IPV6` (`IPV6_RECVERR`).
    public var level: CInt
    /// The error (`ee_errno`); `ENOMSG` for timestamp reports, 0 for zero-copy completions.
    public var error: Errno
    /// Where it comes from (`ee_origin`).
    public var origin: Origin
    /// `ee_type` (the ICMP type for ICMP errors).
    public var type: UInt8
    /// `ee_code` (the ICMP code for ICMP errors).
    public var code: UInt8
    /// `ee_info` (the MTU for "fragmentation needed"; the first id of zero-copy completions).
    public var info: UInt32
    /// `ee_data` (the last id of zero-copy completions; the timestamp key of timestamp reports).
    public var data: UInt32
    /// The address of the node that reported the error (`SO_EE_OFFENDER`), when there is one.
    public var offender: SockAddr?

    /// An extended error from its parts (`struct sock_extended_err` and the offender address).
    public init(
        level: CInt, error: Errno, origin: Origin, type: UInt8, code: UInt8,
        info: UInt32, data: UInt32, offender: SockAddr?
    ) {
        self.level = level
        self.error = error
        self.origin = origin
        self.type = type
        self.code = code
        self.info = info
        self.data = data
        self.offender = offender
    }

    /// Decodes a `sock_extended_err` and the offender address that may follow it; `nil` when the
    /// payload is too short for the structure.
    init?(level: CInt, payload: UnsafeRawBufferPointer) {
        let size = MemoryLayout<sock_extended_err>.size
        guard payload.count >= size else { return nil }
        let raw = payload.loadUnaligned(as: sock_extended_err.self)
        self.init(level: level, error: Errno(rawValue: CInt(bitPattern: raw.ee_errno)),
                  origin: Origin(rawValue: raw.ee_origin), type: raw.ee_type, code: raw.ee_code,
                  info: raw.ee_info, data: raw.ee_data,
                  offender: Self.offender(UnsafeRawBufferPointer(rebasing: payload[size...])))
    }

    /// The `sockaddr_in`/`sockaddr_in6` after the structure; `nil` when absent (`AF_UNSPEC`) or cut.
    private static func offender(_ bytes: UnsafeRawBufferPointer) -> SockAddr? {
        guard bytes.count >= MemoryLayout<sa_family_t>.size else { return nil }
        let family = CInt(bytes.loadUnaligned(as: sa_family_t.self))
        switch family {
        case AF_INET where bytes.count >= MemoryLayout<sockaddr_in>.size:
            return SockAddr(copying: bytes.loadUnaligned(as: sockaddr_in.self))
        case AF_INET6 where bytes.count >= MemoryLayout<sockaddr_in6>.size:
            return SockAddr(copying: bytes.loadUnaligned(as: sockaddr_in6.self))
        default:
            return nil
        }
    }

    public var description: String {
        "ExtendedError(\(error), origin: \(origin), type: \(type), code: \(code), info: \(info), "
            + "data: \(data), offender: \(offender.map { "\($0)" } ?? "nil"))"
    }
}

extension SocketHandle where Self: ~Copyable {
    /// Sends without copying the data into the kernel: `send(2)` with `MSG_ZEROCOPY |
    /// MSG_NOSIGNAL` and `flags`. Needs `SO_ZEROCOPY` on the socket (TCP ignores the flag
    /// otherwise).
    ///
    /// The memory of `buffer` must not change until a ``ZeroCopyCompletion`` covers this send's
    /// id (see ``recvZeroCopyCompletion(flags:)``).
    public func sendZeroCopy(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(Errno) -> Int {
        try system_send(rawDescriptor, buffer, flags.union(.zeroCopy).rawValue | noSignal)
    }

    /// Sends a datagram to `address` without copying: `sendto(2)` with `MSG_ZEROCOPY |
    /// MSG_NOSIGNAL` and `flags` (UDP, Linux 5.0). The same rules as ``sendZeroCopy(_:flags:)``.
    public func sendToZeroCopy(
        _ buffer: UnsafeRawBufferPointer, to address: SockAddr, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try sendToWithFlags(buffer, to: address, flags: flags.union(.zeroCopy))
    }

    /// Reads one message from the socket's error queue: `recvmsg(2)` with `MSG_ERRQUEUE` and
    /// `flags`. The queue's control messages (``ReceivedControlMessage/extendedError(_:)``,
    /// ``ReceivedControlMessage/zeroCopy(_:)``, timestamps) arrive in `control`; `buffer`
    /// receives the offending packet's data, if any, and the result's address is that packet's
    /// destination (none for zero-copy completions).
    ///
    /// Never blocks: an empty queue throws `Errno.resourceTemporarilyUnavailable` (`EAGAIN`).
    /// `poll(2)` reports a non-empty queue as `POLLERR`.
    public func recvErrorQueue(
        into buffer: UnsafeMutableRawBufferPointer = UnsafeMutableRawBufferPointer(start: nil, count: 0),
        control: inout ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        try recvWithControl(into: buffer, control: &control, flags: flags.union(.errorQueue))
    }

    /// Reads one message from the error queue (`recvmsg(2)` with `MSG_ERRQUEUE`), without
    /// allocating, and returns its zero-copy completion; `nil` when the message was another kind
    /// of error (which is consumed: use ``recvErrorQueue(into:control:flags:)-(UnsafeMutableRawBufferPointer,_,_)`` to see every kind).
    ///
    /// Never blocks: an empty queue throws `Errno.resourceTemporarilyUnavailable` (`EAGAIN`).
    public func recvZeroCopyCompletion(flags: MessageFlags = []) throws(Errno) -> ZeroCopyCompletion? {
        var completion: ZeroCopyCompletion?
        _ = try recvWithStackControl(flags: flags.union(.errorQueue)) { raw in
            guard case .message(let level, let type, let data) = raw,
                  (level, type) == (CInt(IPPROTO_IP), IP_RECVERR)
                    || (level, type) == (CInt(IPPROTO_IPV6), IPV6_RECVERR),
                  let error = ExtendedError(level: level, payload: data), error.origin == .zeroCopy
            else { return }
            completion = ZeroCopyCompletion(
                first: error.info, last: error.data,
                copied: error.code & UInt8(SO_EE_CODE_ZEROCOPY_COPIED) != 0)
        }
        return completion
    }
}
