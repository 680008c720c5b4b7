#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

/// Queue sizes read with `ioctl(2)`. Beyond socket2.
extension SocketHandle where Self: ~Copyable {
    /// The bytes waiting to be read: `ioctl(FIONREAD)`. For a stream, everything queued; for a
    /// datagram socket, the size of the next datagram (0 when none is queued). `EINVAL` on a
    /// listening socket.
    public func bytesToRead() throws(Errno) -> Int {
        try intIoctl(UInt(FIONREAD))
    }

    /// The bytes in the send queue that the peer has not yet acknowledged (TCP) or read (Unix
    /// stream, in kernel memory units): `ioctl(SIOCOUTQ)`. `EINVAL` on a listening socket.
    public func bytesNotSent() throws(Errno) -> Int {
        try intIoctl(UInt(SIOCOUTQ))
    }

    /// An `ioctl(2)` that writes a C `int`.
    private func intIoctl(_ request: UInt) throws(Errno) -> Int {
        var value: CInt = 0
        _ = try system_ioctl(rawDescriptor, request, &value)
        return Int(value)
    }
}
