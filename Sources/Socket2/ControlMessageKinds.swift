#if canImport(Glibc)
import Glibc
#endif
import CSocket2

// Sizing a receive's control buffer by the kinds of control messages expected, so that nobody
// needs the C structures' sizes (and a forgotten one does not cost the others, cut by
// `MSG_CTRUNC`).

extension ReceivedControlMessage {
    /// A kind of control message a receive may bring, with the room it takes in a control buffer
    /// (`CMSG_SPACE` of its payload): size a buffer for the kinds a socket has switched on with
    /// ``ControlMessageBuffer/init(receiving:)`` or ``ControlMessage/space(receiving:)``.
    ///
    /// Each kind has the name of the ``ReceivedControlMessage`` case it sizes; its doc names the
    /// option that switches it on.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// The bytes of payload of one such message (the `n` of `CMSG_SPACE(n)`).
        public let dataLength: Int
        /// The name of the case this kind sizes.
        private let name: String

        private init(_ name: String, dataLength: Int) {
            self.name = name
            self.dataLength = dataLength
        }

        /// The bytes one such message takes in a control buffer, padding included: `CMSG_SPACE`.
        public var space: Int { ControlMessage.space(forDataLength: dataLength) }

        /// The case's name and the payload size: `packetInfoV4(12 bytes)`.
        public var description: String { "\(name)(\(dataLength) bytes)" }

        /// `SCM_RIGHTS` with up to `count` descriptors (`setPasscred` is not needed; any Unix
        /// socket may receive them): ``ReceivedControlMessage/rights(_:)``.
        ///
        /// - Precondition: `count` is not negative.
        public static func rights(_ count: Int) -> Kind {
            precondition(count >= 0, "a descriptor count is never negative")
            return Kind("rights", dataLength: count * MemoryLayout<CInt>.size)
        }
        /// `SCM_CREDENTIALS` (``SocketHandle/setPasscred(_:)``): ``ReceivedControlMessage/credentials(pid:uid:gid:)``.
        public static let credentials = Kind("credentials", dataLength: MemoryLayout<socket2_ucred>.size)
        /// `SCM_TIMESTAMP` (``SocketHandle/setTimestamp(_:)``): ``ReceivedControlMessage/timestamp(_:)``.
        public static let timestamp = Kind("timestamp", dataLength: MemoryLayout<TimePair>.size)
        /// `SCM_TIMESTAMPNS` (``SocketHandle/setTimestampns(_:)``): ``ReceivedControlMessage/timestampNs(_:)``.
        public static let timestampNs = Kind("timestampNs", dataLength: MemoryLayout<TimePair>.size)
        /// `SCM_TIMESTAMPING` (``SocketHandle/setTimestamping(_:)``):
        /// ``ReceivedControlMessage/timestamping(software:hardware:)``.
        public static let timestamping = Kind("timestamping", dataLength: 3 * MemoryLayout<TimePair>.size)
        /// `IP_PKTINFO` (``SocketHandle/setRecvPktinfoV4(_:)``):
        /// ``ReceivedControlMessage/packetInfoV4(destination:interfaceIndex:specDestination:)``.
        public static let packetInfoV4 = Kind("packetInfoV4", dataLength: MemoryLayout<in_pktinfo>.size)
        /// `IPV6_PKTINFO` (``SocketHandle/setRecvPktinfoV6(_:)``):
        /// ``ReceivedControlMessage/packetInfoV6(address:interfaceIndex:)``.
        public static let packetInfoV6 = Kind("packetInfoV6", dataLength: MemoryLayout<socket2_in6_pktinfo>.size)
        /// `IP_TOS` (``SocketHandle/setRecvTosV4(_:)``): ``ReceivedControlMessage/tosV4(_:)``.
        /// (The kernel delivers one byte; the room of an `int` is counted, as a sender may use.)
        public static let tosV4 = Kind("tosV4", dataLength: MemoryLayout<CInt>.size)
        /// `IPV6_TCLASS` (``SocketHandle/setRecvTclassV6(_:)``): ``ReceivedControlMessage/trafficClassV6(_:)``.
        public static let trafficClassV6 = Kind("trafficClassV6", dataLength: MemoryLayout<CInt>.size)
        /// `IP_TTL` (``SocketHandle/setRecvTtlV4(_:)``): ``ReceivedControlMessage/ttlV4(_:)``.
        public static let ttlV4 = Kind("ttlV4", dataLength: MemoryLayout<CInt>.size)
        /// `IPV6_HOPLIMIT` (``SocketHandle/setRecvHoplimitV6(_:)``): ``ReceivedControlMessage/hopLimitV6(_:)``.
        public static let hopLimitV6 = Kind("hopLimitV6", dataLength: MemoryLayout<CInt>.size)
        /// `UDP_GRO` (``SocketHandle/setUdpGro(_:)``): ``ReceivedControlMessage/udpGroSegmentSize(_:)``.
        public static let udpGroSegmentSize = Kind("udpGroSegmentSize", dataLength: MemoryLayout<CInt>.size)
        /// `IP_RECVERR` / `IPV6_RECVERR` from the error queue (``SocketHandle/setRecvErrV4(_:)``,
        /// ``SocketHandle/setRecvErrV6(_:)``, `MSG_ERRQUEUE`): `struct sock_extended_err` and the
        /// offender's address, IPv4 or IPv6: ``ReceivedControlMessage/extendedError(_:)`` and
        /// ``ReceivedControlMessage/zeroCopy(_:)``.
        public static let extendedError = Kind(
            "extendedError", dataLength: MemoryLayout<sock_extended_err>.size + MemoryLayout<sockaddr_in6>.size)
    }
}

extension ControlMessage {
    /// The bytes a control buffer needs to hold one message of each of `kinds` at once: the sum
    /// of their `CMSG_SPACE`s. List a kind twice to make room for two such messages.
    public static func space(receiving kinds: [ReceivedControlMessage.Kind]) -> Int {
        kinds.reduce(0) { $0 + $1.space }
    }
}

extension ControlMessageBuffer {
    /// An empty buffer with room for one message of each of `kinds` at once (see
    /// ``ControlMessage/space(receiving:)``), for the receives of a socket that has switched
    /// those messages on:
    ///
    /// ```swift
    /// var control = ControlMessageBuffer(receiving: [.packetInfoV4, .ttlV4, .timestampNs])
    /// let message = try socket.recvWithControl(into: buffer, control: &control)
    /// ```
    public init(receiving kinds: [ReceivedControlMessage.Kind]) {
        self.init(capacity: ControlMessage.space(receiving: kinds))
    }
}
