// TEMPORARY: the options the benchmarks use, until branch `options` (which adds them to the
// core under the same names) is merged. Delete this file at that merge.
#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

private func setIntOption(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: CInt) throws(Errno) {
    var value = value
    if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<CInt>.size)) != 0 { throw Errno(rawValue: errno) }
}

extension SocketHandle where Self: ~Copyable {
    public func setReuseAddress(_ on: Bool) throws(Errno) { try setIntOption(rawDescriptor, SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0) }
    public func setReusePort(_ on: Bool) throws(Errno) { try setIntOption(rawDescriptor, SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0) }
    public func setTcpNodelay(_ on: Bool) throws(Errno) { try setIntOption(rawDescriptor, CInt(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0) }
    public func setRecvBufferSize(_ size: Int) throws(Errno) { try setIntOption(rawDescriptor, SOL_SOCKET, SO_RCVBUF, CInt(size)) }
    public func setSendBufferSize(_ size: Int) throws(Errno) { try setIntOption(rawDescriptor, SOL_SOCKET, SO_SNDBUF, CInt(size)) }
    public func setLinger(_ duration: Duration?) throws(Errno) {
        var value = linger(l_onoff: duration == nil ? 0 : 1, l_linger: CInt(duration?.components.seconds ?? 0))
        if setsockopt(rawDescriptor, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)) != 0 { throw Errno(rawValue: errno) }
    }
    public func setReadTimeout(_ duration: Duration?) throws(Errno) { try setTimeout(SO_RCVTIMEO, duration) }
    public func setWriteTimeout(_ duration: Duration?) throws(Errno) { try setTimeout(SO_SNDTIMEO, duration) }
    private func setTimeout(_ name: CInt, _ duration: Duration?) throws(Errno) {
        let (seconds, attoseconds) = duration?.components ?? (0, 0)
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if setsockopt(rawDescriptor, SOL_SOCKET, name, &value, socklen_t(MemoryLayout<timeval>.size)) != 0 { throw Errno(rawValue: errno) }
    }
}
