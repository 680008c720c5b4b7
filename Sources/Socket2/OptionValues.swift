// Conversions between Swift values and the C payloads of socket options, shared by the option
// files of every level (Options+*.swift). Out-of-range values are thrown as
// `Errno.invalidArgument`, never wrapped or trapped.

#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// MARK: - Durations

extension timeval {
    /// The payload of `SO_RCVTIMEO` / `SO_SNDTIMEO`. `nil`, zero and anything under a microsecond
    /// become `{0, 0}`, which the kernel reads as "no timeout" (as socket2 does); a negative
    /// duration is `Errno.invalidArgument`.
    init(timeout: Duration?) throws(Errno) {
        guard let timeout else {
            self.init(tv_sec: 0, tv_usec: 0)
            return
        }
        guard timeout >= .zero else { throw .invalidArgument }
        let (seconds, attoseconds) = timeout.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    /// The timeout this value stands for: `nil` for `{0, 0}`.
    var timeout: Duration? {
        if tv_sec == 0 && tv_usec == 0 { return nil }
        return .seconds(tv_sec) + .microseconds(tv_usec)
    }
}

extension Duration {
    /// Whole seconds as a C `int`: the fraction is dropped, values above `Int32.max` are clamped
    /// (the kernel refuses what it finds too large), negative durations are
    /// `Errno.invalidArgument`.
    func wholeSeconds() throws(Errno) -> CInt {
        guard self >= .zero else { throw .invalidArgument }
        return CInt(clamping: components.seconds)
    }

    /// Whole milliseconds as a C `unsigned int`, clamped to `UInt32.max` (about 49.7 days), as
    /// socket2 does for `TCP_USER_TIMEOUT`; negative durations are `Errno.invalidArgument`.
    func clampedMilliseconds() throws(Errno) -> UInt32 {
        guard self >= .zero else { throw .invalidArgument }
        let (seconds, attoseconds) = components
        guard seconds < Int64(UInt32.max) / 1000 + 1 else { return .max }
        return UInt32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

// MARK: - Option helpers for sizes and durations

extension SocketHandle where Self: ~Copyable {
    /// A size or count exchanged as a C `int`.
    func getIntOption(_ level: CInt, _ name: CInt) throws(Errno) -> Int {
        Int(try getOption(level, name, as: CInt.self))
    }

    /// A size or count exchanged as a C `int`; negative values and values above `Int32.max` are
    /// `Errno.invalidArgument`.
    func setIntOption(_ level: CInt, _ name: CInt, _ value: Int) throws(Errno) {
        guard value >= 0, let int = CInt(exactly: value) else { throw .invalidArgument }
        try setOption(level, name, int)
    }

    /// A duration exchanged as a C `int` of seconds.
    func getSecondsOption(_ level: CInt, _ name: CInt) throws(Errno) -> Duration {
        .seconds(try getOption(level, name, as: CInt.self))
    }

    /// A duration exchanged as a C `int` of seconds, truncated to whole seconds.
    func setSecondsOption(_ level: CInt, _ name: CInt, _ value: Duration) throws(Errno) {
        try setOption(level, name, try value.wholeSeconds())
    }
}
