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

    /// These flags without `MSG_CMSG_CLOEXEC`, which `recvmsg(2)` echoes back from the call's
    /// flags: it says nothing about the message received.
    package func droppingCloseOnExecEcho() -> RecvFlags {
        RecvFlags(rawValue: rawValue & ~CInt(MSG_CMSG_CLOEXEC))
    }

    /// Each of socket2's flags (`MSG_TRUNC`, `MSG_EOR`, `MSG_OOB`, `MSG_CONFIRM`,
    /// `MSG_DONTROUTE`) as a boolean, as socket2's `Debug`, and `MSG_CTRUNC`
    /// (`isControlTruncated`), which socket2 does not test.
    public var description: String {
        "RecvFlags(isTruncated: \(isTruncated()), isEndOfRecord: \(isEndOfRecord()), "
            + "isOutOfBand: \(isOutOfBand()), isConfirm: \(isConfirm()), "
            + "isDontroute: \(isDontroute()), isControlTruncated: \(isControlTruncated()))"
    }
}

/// Flags for the send and receive calls (`MSG_*`), or-ed together.
///
/// `description` lists the C constants' names (`[MSG_DONTWAIT, MSG_PEEK]`).
public struct MessageFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The `MSG_*` bits.
    public var rawValue: CInt

    /// Wraps any `MSG_*` bits.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `MSG_CMSG_CLOEXEC`: make descriptors received in control data (`SCM_RIGHTS`)
    /// close-on-exec. Every receive of this module with room for control data passes it.
    public static let cmsgCloexec = MessageFlags(rawValue: CInt(MSG_CMSG_CLOEXEC))
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

    /// The names of the bits set (`[MSG_DONTWAIT, MSG_PEEK]`); a bit without a name here as a
    /// number.
    public var description: String {
        describeFlags(rawValue, [
            (MessageFlags.outOfBand, "MSG_OOB"), (.peek, "MSG_PEEK"), (.dontRoute, "MSG_DONTROUTE"),
            (.truncate, "MSG_TRUNC"), (.dontWait, "MSG_DONTWAIT"), (.endOfRecord, "MSG_EOR"),
            (.waitAll, "MSG_WAITALL"), (.confirm, "MSG_CONFIRM"), (.errorQueue, "MSG_ERRQUEUE"),
            (.noSignal, "MSG_NOSIGNAL"), (.more, "MSG_MORE"), (.waitForOne, "MSG_WAITFORONE"),
            (.zeroCopy, "MSG_ZEROCOPY"), (.fastOpen, "MSG_FASTOPEN"), (.cmsgCloexec, "MSG_CMSG_CLOEXEC"),
        ].map { ($0.0.rawValue, $0.1) })
    }
}

/// The names of the bits of `rawValue` that `names` knows, in order, then each other bit set
/// as a hexadecimal number: `[MSG_PEEK, 0x80]`; `[]` for none. The `description` of the
/// flag sets.
func describeFlags<T: FixedWidthInteger>(_ rawValue: T, _ names: [(T, String)]) -> String {
    var rest = rawValue
    var parts: [String] = []
    for (bits, name) in names where bits != 0 && rawValue & bits == bits {
        parts.append(name)
        rest &= ~bits
    }
    var bit: T = 1
    while rest != 0 {
        if rest & bit != 0 {
            parts.append("0x" + String(UInt64(truncatingIfNeeded: bit), radix: 16))
            rest &= ~bit
        }
        bit <<= 1
    }
    return "[" + parts.joined(separator: ", ") + "]"
}
