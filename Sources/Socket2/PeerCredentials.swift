#if canImport(Glibc)
import Glibc
#endif

/// The credentials of the process at the other end of a Unix socket, as the kernel recorded
/// them when the connection was made (`SO_PEERCRED`, `struct ucred`):
/// ``SocketHandle/peerCred()``.
public struct PeerCredentials: Hashable, Sendable {
    /// The peer's process id.
    public var pid: pid_t
    /// The peer's effective user id.
    public var uid: uid_t
    /// The peer's effective group id.
    public var gid: gid_t

    /// Credentials from their three ids.
    public init(pid: pid_t, uid: uid_t, gid: gid_t) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}
