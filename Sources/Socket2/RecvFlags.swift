#if canImport(Glibc)
import Glibc
#endif

/// The flags the kernel returns with a received message (`msg_flags` of `recvmsg(2)`).
public struct RecvFlags: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `MSG_*` bits.
    public var rawValue: CInt

    /// Wraps `msg_flags` as returned by `recvmsg(2)`.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    private func has(_ flag: CInt) -> Bool { rawValue & flag != 0 }

    /// `MSG_TRUNC`: the datagram was larger than the buffer and its tail was discarded.
    public func isTruncated() -> Bool { has(CInt(MSG_TRUNC)) }
    /// `MSG_EOR`: the data completes a record (`SOCK_SEQPACKET`).
    public func isEndOfRecord() -> Bool { has(CInt(MSG_EOR)) }
    /// `MSG_OOB`: out-of-band data was received.
    public func isOutOfBand() -> Bool { has(CInt(MSG_OOB)) }
    /// `MSG_CONFIRM`: as set on the message.
    public func isConfirm() -> Bool { has(CInt(MSG_CONFIRM)) }
    /// `MSG_DONTROUTE`: as set on the message.
    public func isDontroute() -> Bool { has(CInt(MSG_DONTROUTE)) }
    /// `MSG_CTRUNC`: control data was discarded for lack of space in the control buffer.
    public func isControlTruncated() -> Bool { has(CInt(MSG_CTRUNC)) }

    /// Each of socket2's flags (`MSG_TRUNC`, `MSG_EOR`, `MSG_OOB`, `MSG_CONFIRM`,
    /// `MSG_DONTROUTE`) as a boolean, as socket2's `Debug`.
    /// These flags without `MSG_CMSG_CLOEXEC`, which `recvmsg(2)` echoes back from the call's
    /// flags: it says nothing about the message received.
    package func droppingCloseOnExecEcho() -> RecvFlags {
        RecvFlags(rawValue: rawValue & ~CInt(MSG_CMSG_CLOEXEC))
    }

    public var description: String {
        "RecvFlags(isTruncated: \(isTruncated()), isEndOfRecord: \(isEndOfRecord()), "
            + "isOutOfBand: \(isOutOfBand()), isConfirm: \(isConfirm()), "
            + "isDontroute: \(isDontroute()))"
    }
}

/// Flags for the send and receive calls (`MSG_*`), or-ed together.
public struct MessageFlags: OptionSet, Hashable, Sendable {
    /// The `MSG_*` bits.
    public var rawValue: CInt

    /// Wraps any `MSG_*` bits.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `MSG_CONFIRM`: tell the link layer that forward progress happened.
    public static let confirm = MessageFlags(rawValue: CInt(MSG_CONFIRM))
    /// `MSG_DONTROUTE`: send only to hosts on directly connected networks.
    public static let dontRoute = MessageFlags(rawValue: CInt(MSG_DONTROUTE))
    /// `MSG_DONTWAIT`: do not block for this call only.
    public static let dontWait = MessageFlags(rawValue: CInt(MSG_DONTWAIT))
    /// `MSG_EOR`: terminate a record.
    public static let endOfRecord = MessageFlags(rawValue: CInt(MSG_EOR))
    /// `MSG_ERRQUEUE`: receive from the socket's error queue.
    public static let errorQueue = MessageFlags(rawValue: CInt(MSG_ERRQUEUE))
    /// `MSG_MORE`: more data follows (like `TCP_CORK` for one call).
    public static let more = MessageFlags(rawValue: CInt(MSG_MORE))
    /// `MSG_NOSIGNAL`: no `SIGPIPE` on a broken connection. Every send of this module sets it.
    public static let noSignal = MessageFlags(rawValue: CInt(MSG_NOSIGNAL))
    /// `MSG_OOB`: out-of-band data.
    public static let outOfBand = MessageFlags(rawValue: CInt(MSG_OOB))
    /// `MSG_PEEK`: return data without removing it from the queue.
    public static let peek = MessageFlags(rawValue: CInt(MSG_PEEK))
    /// `MSG_TRUNC`: return the real length of a datagram even when it was longer than the buffer.
    public static let truncate = MessageFlags(rawValue: CInt(MSG_TRUNC))
    /// `MSG_WAITALL`: block until the whole buffer is filled.
    public static let waitAll = MessageFlags(rawValue: CInt(MSG_WAITALL))
    /// `MSG_WAITFORONE` (`recvmmsg(2)`): block for the first message only.
    public static let waitForOne = MessageFlags(rawValue: CInt(MSG_WAITFORONE))
    /// `MSG_ZEROCOPY`: send without copying (needs `SO_ZEROCOPY`).
    public static let zeroCopy = MessageFlags(rawValue: 0x4000000)
    /// `MSG_FASTOPEN`: send data in the SYN (TCP Fast Open).
    public static let fastOpen = MessageFlags(rawValue: 0x20000000)
}
