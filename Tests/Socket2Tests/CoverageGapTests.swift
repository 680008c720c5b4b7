// Items that scripts/api-coverage.py found missing and that were added afterwards.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

@Suite("Coverage gaps")
struct CoverageGapTests {
    /// socket2's `SockAddr::as_ptr`: the pointer must be a `sockaddr` the kernel accepts. A
    /// UDP socket connected through it (with `connect(2)` called directly) must have exactly that
    /// peer.
    @Test(arguments: [Domain.ipv4, Domain.ipv6])
    func asPtrIsASockaddrTheKernelAccepts(domain: Domain) throws {
        let receiver = try TestNet.socket(domain, .dgram)
        try receiver.bind(TestNet.loopback(domain))
        let target = try receiver.localAddr()
        #expect(target.asSocket()?.port != 0)

        let sender = try TestNet.socket(domain, .dgram)
        let result = target.asPtr { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                Glibc.connect(sender.rawDescriptor, address, target.len())
            }
        }
        #expect(result == 0, "connect(2): errno \(errno)")
        #expect(try sender.peerAddr() == target)

        // The pointee is the address's own storage: the same family and the same bytes.
        let pointee = target.asPtr { $0.pointee }
        #expect(CInt(pointee.raw.ss_family) == domain.rawValue)
        let pointeeBytes = withUnsafeBytes(of: pointee.raw) { Array($0.prefix(Int(target.len()))) }
        let storageBytes = withUnsafeBytes(of: target.asStorage().raw) { Array($0.prefix(Int(target.len()))) }
        #expect(pointeeBytes == storageBytes)
    }

    /// `asPtr` passes on what its body throws, typed.
    @Test func asPtrRethrowsTyped() {
        let address = SockAddr(SocketAddrV4(.localhost, 9))
        #expect(throws: Errno.invalidArgument) {
            try address.asPtr { (_) throws(Errno) -> Void in throw .invalidArgument }
        }
    }

    /// socket2's `Debug` of `SockAddrStorage` prints `ss_family`; here by its `AF_*` name.
    @Test func sockAddrStorageDescriptionNamesTheFamily() throws {
        #expect(SockAddrStorage.zeroed().description == "SockAddrStorage(ss_family: AF_UNSPEC)")
        #expect(SockAddr(SocketAddrV4(.localhost, 80)).asStorage().description
            == "SockAddrStorage(ss_family: AF_INET)")
        #expect(SockAddr(SocketAddrV6(.localhost, 80)).asStorage().description
            == "SockAddrStorage(ss_family: AF_INET6)")
        #expect(try SockAddr.unix("/tmp/x").asStorage().description
            == "SockAddrStorage(ss_family: AF_UNIX)")
        var storage = SockAddrStorage.zeroed()
        storage.raw.ss_family = 12345
        #expect(storage.description == "SockAddrStorage(ss_family: 12345)")
    }
}
