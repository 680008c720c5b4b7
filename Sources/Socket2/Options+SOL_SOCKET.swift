#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

/// Options at level `SOL_SOCKET`, sorted by option name; see socket(7).
extension SocketHandle where Self: ~Copyable {
    // MARK: SO_ACCEPTCONN

    /// Whether the socket is listening for connections: `SO_ACCEPTCONN`.
    public func isListener() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_ACCEPTCONN)
    }

    // MARK: SO_ATTACH_FILTER

    /// Attaches a classic BPF program that decides which packets the socket receives:
    /// `SO_ATTACH_FILTER` (see the kernel's Documentation/networking/filter.rst). A packet is
    /// kept when the program returns non-zero (trimmed to that many bytes) and dropped when it
    /// returns 0. A new program replaces the previous one.
    ///
    /// More than `UInt16.max` instructions is `Errno.invalidArgument`; the kernel refuses an
    /// empty or invalid program with `EINVAL`.
    public func attachFilter(_ program: [SockFilter]) throws(Errno) {
        try withSocketFilterProgram(program) { (fprog) throws(Errno) in
            try setOption(SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        }
    }

    // MARK: SO_ATTACH_REUSEPORT_CBPF

    /// Attaches a classic BPF program that picks, for each incoming packet or connection, the
    /// socket of this socket's `SO_REUSEPORT` group that receives it: `SO_ATTACH_REUSEPORT_CBPF`.
    /// The program returns an index into the group (in the order the sockets were bound); an
    /// index out of range falls back to the usual hash.
    ///
    /// Set ``setReusePort(_:)`` first: the kernel refuses the program (`EINVAL`) on a socket that
    /// is in no reuseport group. Beyond socket2.
    public func attachReuseportCbpf(_ program: [SockFilter]) throws(Errno) {
        try withSocketFilterProgram(program) { (fprog) throws(Errno) in
            try setOption(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
        }
    }

    // MARK: SO_BINDTODEVICE

    /// Binds the socket to a network interface by name (`"lo"`, `"eth0"`): `SO_BINDTODEVICE`.
    /// Only packets of that interface are received, and packets are sent through it. `nil` (or
    /// an empty name) removes the binding.
    ///
    /// Changing an existing binding needs `CAP_NET_RAW` (`EPERM` otherwise); an unknown name is
    /// `ENODEV`.
    public func bindDevice(_ interface: [UInt8]?) throws(Errno) {
        guard let interface else {
            return try system_setsockopt(rawDescriptor, SOL_SOCKET, SO_BINDTODEVICE, nil, 0)
        }
        try setOptionBytes(SOL_SOCKET, SO_BINDTODEVICE, interface)
    }

    /// The name of the interface the socket is bound to, without its terminating NUL, or `nil`
    /// when it is not bound: `SO_BINDTODEVICE`. See ``bindDevice(_:)``.
    public func device() throws(Errno) -> [UInt8]? {
        let name = try getOptionBytes(SOL_SOCKET, SO_BINDTODEVICE, capacity: Int(IFNAMSIZ))
        let trimmed = Array(name.prefix { $0 != 0 })
        return trimmed.isEmpty ? nil : trimmed
    }

    // MARK: SO_BINDTOIFINDEX

    /// Binds the socket to the network interface with this index (`if_nametoindex(3)`), or
    /// removes the binding for `nil`: `SO_BINDTOIFINDEX`, the same option as
    /// ``bindDeviceByIndexV6(_:)`` on Linux. An index of 0 also removes the binding.
    public func bindDeviceByIndexV4(_ interface: UInt32?) throws(Errno) {
        try setOption(SOL_SOCKET, SO_BINDTOIFINDEX, interface ?? 0)
    }

    /// Binds the socket to the network interface with this index, or removes the binding for
    /// `nil`: `SO_BINDTOIFINDEX`, the same option as ``bindDeviceByIndexV4(_:)`` on Linux.
    public func bindDeviceByIndexV6(_ interface: UInt32?) throws(Errno) {
        try bindDeviceByIndexV4(interface)
    }

    /// The index of the interface the socket is bound to, `nil` when none: `SO_BINDTOIFINDEX`.
    public func deviceIndexV4() throws(Errno) -> UInt32? {
        let index = try getOption(SOL_SOCKET, SO_BINDTOIFINDEX, as: UInt32.self)
        return index == 0 ? nil : index
    }

    /// The index of the interface the socket is bound to, `nil` when none: `SO_BINDTOIFINDEX`
    /// (the same option as ``deviceIndexV4()`` on Linux).
    public func deviceIndexV6() throws(Errno) -> UInt32? {
        try deviceIndexV4()
    }

    // MARK: SO_BROADCAST

    /// Whether datagrams may be sent to a broadcast address: `SO_BROADCAST`.
    public func broadcast() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_BROADCAST)
    }

    /// Allows sending datagrams to a broadcast address: `SO_BROADCAST`.
    public func setBroadcast(_ broadcast: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_BROADCAST, broadcast)
    }

    // MARK: SO_BUSY_POLL

    /// The busy-polling time, in microseconds: `SO_BUSY_POLL`. See ``setBusyPoll(_:)``.
    public func busyPoll() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_SOCKET, SO_BUSY_POLL)
    }

    /// How long, in microseconds, a blocking receive busy-polls the device queue before it
    /// sleeps: `SO_BUSY_POLL`. Raising it above its current value needs `CAP_NET_ADMIN`
    /// (`EPERM` otherwise); values above `Int32.max` are `Errno.invalidArgument`.
    public func setBusyPoll(_ microseconds: UInt32) throws(Errno) {
        try setUInt32Option(SOL_SOCKET, SO_BUSY_POLL, microseconds)
    }

    // MARK: SO_COOKIE

    /// The socket's cookie, a number the kernel gives each socket, unique while the system runs:
    /// `SO_COOKIE`. BPF programs and `ss` identify sockets by it.
    public func cookie() throws(Errno) -> UInt64 {
        try getOption(SOL_SOCKET, SO_COOKIE, as: UInt64.self)
    }

    // MARK: SO_DETACH_FILTER

    /// Removes the program attached by ``attachFilter(_:)``: `SO_DETACH_FILTER`. `ENOENT` when
    /// there is none.
    public func detachFilter() throws(Errno) {
        try setOption(SOL_SOCKET, SO_DETACH_FILTER, CInt(0))
    }

    // MARK: SO_DOMAIN

    /// The socket's domain (`AF_INET`, …): `SO_DOMAIN`.
    public func domain() throws(Errno) -> Domain {
        Domain(try getOption(SOL_SOCKET, SO_DOMAIN, as: CInt.self))
    }

    // MARK: SO_ERROR

    /// Reads and clears the socket's pending error: `SO_ERROR`. `nil` when there is none.
    ///
    /// After a non-blocking ``connect(_:)`` the socket becomes writable when the attempt ends;
    /// this error tells whether it failed.
    public func takeError() throws(Errno) -> Errno? {
        let error = try getOption(SOL_SOCKET, SO_ERROR, as: CInt.self)
        return error == 0 ? nil : Errno(rawValue: error)
    }

    // MARK: SO_INCOMING_CPU

    /// The CPU that handles the socket's incoming packets: `SO_INCOMING_CPU`. See
    /// ``setCpuAffinity(_:)``.
    public func cpuAffinity() throws(Errno) -> Int {
        try getIntOption(SOL_SOCKET, SO_INCOMING_CPU)
    }

    /// Asks that the socket's incoming packets be handled on CPU `cpu`, a hint for steering
    /// `SO_REUSEPORT` groups: `SO_INCOMING_CPU`. Negative values and values above `Int32.max`
    /// are `Errno.invalidArgument`.
    public func setCpuAffinity(_ cpu: Int) throws(Errno) {
        try setIntOption(SOL_SOCKET, SO_INCOMING_CPU, cpu)
    }

    // MARK: SO_KEEPALIVE

    /// Whether TCP keepalive probes are sent: `SO_KEEPALIVE`.
    public func keepalive() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_KEEPALIVE)
    }

    /// Turns TCP keepalive probes on or off: `SO_KEEPALIVE`. Their timing is set with
    /// ``setTcpKeepalive(_:)``.
    public func setKeepalive(_ keepalive: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_KEEPALIVE, keepalive)
    }

    // MARK: SO_LINGER

    /// How long closing waits for unsent data, `nil` when it does not wait: `SO_LINGER`. See
    /// ``setLinger(_:)``.
    public func linger() throws(Errno) -> Duration? {
        let value = try getOption(SOL_SOCKET, SO_LINGER, as: Glibc.linger.self)
        return value.l_onoff == 0 ? nil : .seconds(value.l_linger)
    }

    /// Makes `close(2)` and `shutdown(2)` wait up to `duration` for unsent data to be sent
    /// (`nil`: return at once and send in the background): `SO_LINGER`. A duration of zero
    /// makes closing reset the connection. Linux counts whole seconds: the fraction is dropped
    /// (values above `Int32.max` seconds are clamped; negative ones are
    /// `Errno.invalidArgument`).
    public func setLinger(_ duration: Duration?) throws(Errno) {
        let seconds = try duration?.wholeSeconds()
        let value = Glibc.linger(l_onoff: seconds == nil ? 0 : 1, l_linger: seconds ?? 0)
        try setOption(SOL_SOCKET, SO_LINGER, value)
    }

    // MARK: SO_MARK

    /// The mark of the socket's packets: `SO_MARK`. See ``setMark(_:)``.
    public func mark() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_SOCKET, SO_MARK)
    }

    /// Marks the socket's packets for routing and filtering rules (`ip rule fwmark`,
    /// nftables `meta mark`): `SO_MARK`. Needs `CAP_NET_ADMIN` (`EPERM` otherwise); values above
    /// `Int32.max` are `Errno.invalidArgument`.
    public func setMark(_ mark: UInt32) throws(Errno) {
        try setUInt32Option(SOL_SOCKET, SO_MARK, mark)
    }

    // MARK: SO_OOBINLINE

    /// Whether out-of-band data is received in the normal stream: `SO_OOBINLINE`.
    public func outOfBandInline() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_OOBINLINE)
    }

    /// Receives out-of-band (urgent) data in the normal data stream instead of with `MSG_OOB`:
    /// `SO_OOBINLINE`.
    public func setOutOfBandInline(_ inline: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_OOBINLINE, inline)
    }

    // MARK: SO_PASSCRED

    /// Whether `SCM_CREDENTIALS` control messages are received: `SO_PASSCRED`.
    public func passcred() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_PASSCRED)
    }

    /// Receives the sender's credentials (`SCM_CREDENTIALS`) with each message of a Unix
    /// socket: `SO_PASSCRED`. Since Linux 6.16 other than Unix and netlink sockets refuse it
    /// (`EOPNOTSUPP`).
    /// Received as ``ReceivedControlMessage/credentials(pid:uid:gid:)``.
    public func setPasscred(_ passcred: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_PASSCRED, passcred)
    }

    // MARK: SO_PEERCRED

    /// The process id, user id and group id of the peer of a connected Unix socket, recorded
    /// when the connection was made (or the pair created): `SO_PEERCRED`. Beyond socket2.
    public func peerCred() throws(Errno) -> PeerCredentials {
        let credentials = try getOption(SOL_SOCKET, SO_PEERCRED, as: socket2_ucred.self)
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }

    // MARK: SO_PRIORITY

    /// The priority of the socket's packets: `SO_PRIORITY`. See ``setPriority(_:)``.
    public func priority() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_SOCKET, SO_PRIORITY)
    }

    /// Sets the priority of the socket's packets, which picks the device queue: `SO_PRIORITY`.
    /// Values 0 to 6 are free; higher ones need `CAP_NET_ADMIN` (`EPERM` otherwise); values
    /// above `Int32.max` are `Errno.invalidArgument`.
    public func setPriority(_ priority: UInt32) throws(Errno) {
        try setUInt32Option(SOL_SOCKET, SO_PRIORITY, priority)
    }

    // MARK: SO_PROTOCOL

    /// The socket's protocol (`IPPROTO_TCP`, …), `nil` when it is 0: `SO_PROTOCOL`.
    public func `protocol`() throws(Errno) -> SocketProtocol? {
        let value = try getOption(SOL_SOCKET, SO_PROTOCOL, as: CInt.self)
        return value == 0 ? nil : SocketProtocol(value)
    }

    // MARK: SO_RCVBUF

    /// The size of the receive buffer, in bytes: `SO_RCVBUF`. Linux reports twice the size that
    /// was set (it keeps room for its bookkeeping); this is what it reports.
    public func recvBufferSize() throws(Errno) -> Int {
        try getIntOption(SOL_SOCKET, SO_RCVBUF)
    }

    /// Asks for a receive buffer of `size` bytes: `SO_RCVBUF`. The kernel doubles the value and
    /// bounds it by `net.core.rmem_max`. Negative sizes and sizes above `Int32.max` are
    /// `Errno.invalidArgument`.
    public func setRecvBufferSize(_ size: Int) throws(Errno) {
        try setIntOption(SOL_SOCKET, SO_RCVBUF, size)
    }

    // MARK: SO_RCVLOWAT

    /// The least number of bytes a receive waits for: `SO_RCVLOWAT`. See ``setRecvLowat(_:)``.
    public func recvLowat() throws(Errno) -> Int {
        try getIntOption(SOL_SOCKET, SO_RCVLOWAT)
    }

    /// Makes receive calls, `poll(2)` and `epoll(7)` wait until at least `bytes` bytes are
    /// queued (default 1): `SO_RCVLOWAT`. Negative values and values above `Int32.max` are
    /// `Errno.invalidArgument`. Beyond socket2.
    public func setRecvLowat(_ bytes: Int) throws(Errno) {
        try setIntOption(SOL_SOCKET, SO_RCVLOWAT, bytes)
    }

    // MARK: SO_RCVTIMEO

    /// How long a blocking receive waits, `nil` for ever: `SO_RCVTIMEO`.
    public func readTimeout() throws(Errno) -> Duration? {
        try getOption(SOL_SOCKET, SO_RCVTIMEO, as: timeval.self).timeout
    }

    /// Makes blocking receives fail with `EAGAIN` after `timeout` (`nil`: wait for ever):
    /// `SO_RCVTIMEO`. Zero and durations under a microsecond mean no timeout, as in socket2;
    /// the precision is a microsecond; a negative duration is `Errno.invalidArgument`.
    public func setReadTimeout(_ timeout: Duration?) throws(Errno) {
        try setOption(SOL_SOCKET, SO_RCVTIMEO, try timeval(timeout: timeout))
    }

    // MARK: SO_REUSEADDR

    /// Whether the local address may be reused: `SO_REUSEADDR`.
    public func reuseAddress() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_REUSEADDR)
    }

    /// Allows binding to an address still held by a connection in `TIME_WAIT`: `SO_REUSEADDR`.
    public func setReuseAddress(_ reuse: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_REUSEADDR, reuse)
    }

    // MARK: SO_REUSEPORT

    /// Whether several sockets may bind the same address and port: `SO_REUSEPORT`.
    public func reusePort() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_REUSEPORT)
    }

    /// Lets several sockets of the same user bind the same address and port, the kernel
    /// spreading connections or datagrams among them: `SO_REUSEPORT`. Set it on each socket
    /// before `bind(2)`. Internet sockets only (`EOPNOTSUPP` on others since Linux 6.4).
    public func setReusePort(_ reuse: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_REUSEPORT, reuse)
    }

    // MARK: SO_SNDBUF

    /// The size of the send buffer, in bytes: `SO_SNDBUF`. Linux reports twice the size that was
    /// set.
    public func sendBufferSize() throws(Errno) -> Int {
        try getIntOption(SOL_SOCKET, SO_SNDBUF)
    }

    /// Asks for a send buffer of `size` bytes: `SO_SNDBUF`. The kernel doubles the value and
    /// bounds it by `net.core.wmem_max`. Negative sizes and sizes above `Int32.max` are
    /// `Errno.invalidArgument`.
    public func setSendBufferSize(_ size: Int) throws(Errno) {
        try setIntOption(SOL_SOCKET, SO_SNDBUF, size)
    }

    // MARK: SO_SNDLOWAT

    /// The least number of bytes a send waits to have room for: `SO_SNDLOWAT`. Linux always
    /// reports 1.
    public func sendLowat() throws(Errno) -> Int {
        try getIntOption(SOL_SOCKET, SO_SNDLOWAT)
    }

    /// `SO_SNDLOWAT`. Linux does not let it be changed: the call always fails with
    /// `ENOPROTOOPT` (`Errno.protocolNotAvailable`). It is here so that portable code finds it.
    /// Beyond socket2.
    public func setSendLowat(_ bytes: Int) throws(Errno) {
        try setIntOption(SOL_SOCKET, SO_SNDLOWAT, bytes)
    }

    // MARK: SO_SNDTIMEO

    /// How long a blocking send waits, `nil` for ever: `SO_SNDTIMEO`.
    public func writeTimeout() throws(Errno) -> Duration? {
        try getOption(SOL_SOCKET, SO_SNDTIMEO, as: timeval.self).timeout
    }

    /// Makes blocking sends fail with `EAGAIN` after `timeout` (`nil`: wait for ever):
    /// `SO_SNDTIMEO`. Zero and durations under a microsecond mean no timeout, as in socket2;
    /// a negative duration is `Errno.invalidArgument`.
    public func setWriteTimeout(_ timeout: Duration?) throws(Errno) {
        try setOption(SOL_SOCKET, SO_SNDTIMEO, try timeval(timeout: timeout))
    }

    // MARK: SO_TIMESTAMP

    /// Whether received messages carry an `SO_TIMESTAMP` control message: `SO_TIMESTAMP`.
    public func timestamp() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_TIMESTAMP)
    }

    /// Attaches the reception time (`SCM_TIMESTAMP`, a `timeval`) to each received message:
    /// `SO_TIMESTAMP`. Beyond socket2.
    /// Received as ``ReceivedControlMessage/timestamp(_:)``.
    public func setTimestamp(_ timestamp: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_TIMESTAMP, timestamp)
    }

    // MARK: SO_TIMESTAMPING

    /// The timestamps the socket generates and reports: `SO_TIMESTAMPING`.
    public func timestamping() throws(Errno) -> TimestampingFlags {
        TimestampingFlags(rawValue: try getOption(SOL_SOCKET, SO_TIMESTAMPING, as: UInt32.self))
    }

    /// Chooses the software or hardware transmit and receive timestamps the socket generates
    /// and reports (`SCM_TIMESTAMPING` control messages, transmit timestamps on the error
    /// queue): `SO_TIMESTAMPING`; see the kernel's Documentation/networking/timestamping.rst.
    /// Unknown flags are `EINVAL`. Beyond socket2.
    /// Received as ``ReceivedControlMessage/timestamping(software:hardware:)``.
    public func setTimestamping(_ flags: TimestampingFlags) throws(Errno) {
        try setOption(SOL_SOCKET, SO_TIMESTAMPING, flags.rawValue)
    }

    // MARK: SO_TIMESTAMPNS

    /// Whether received messages carry an `SCM_TIMESTAMPNS` control message: `SO_TIMESTAMPNS`.
    public func timestampns() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_TIMESTAMPNS)
    }

    /// Attaches the reception time in nanoseconds (`SCM_TIMESTAMPNS`, a `timespec`) to each
    /// received message: `SO_TIMESTAMPNS`. Beyond socket2.
    /// Received as ``ReceivedControlMessage/timestampNs(_:)`` (the control messages spell out
    /// "ns" as a word: see ``ControlMessage``).
    public func setTimestampns(_ timestamp: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_TIMESTAMPNS, timestamp)
    }

    // MARK: SO_TYPE

    /// The socket's type (`SOCK_STREAM`, …): `SO_TYPE`.
    public func type() throws(Errno) -> SocketType {
        SocketType(try getOption(SOL_SOCKET, SO_TYPE, as: CInt.self))
    }

    // MARK: SO_ZEROCOPY

    /// Whether sends may use `MSG_ZEROCOPY`: `SO_ZEROCOPY`.
    public func zerocopy() throws(Errno) -> Bool {
        try getBoolOption(SOL_SOCKET, SO_ZEROCOPY)
    }

    /// Allows sends with `MSG_ZEROCOPY`, whose completions arrive on the error queue:
    /// `SO_ZEROCOPY`. TCP and UDP sockets only (`EOPNOTSUPP` on others). Beyond socket2.
    /// Completions are received (with `MSG_ERRQUEUE`) as ``ReceivedControlMessage/zeroCopy(_:)``.
    public func setZerocopy(_ zerocopy: Bool) throws(Errno) {
        try setBoolOption(SOL_SOCKET, SO_ZEROCOPY, zerocopy)
    }
}
