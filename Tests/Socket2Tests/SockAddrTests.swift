// SockAddr and SockAddrStorage: the layouts and lengths the kernel expects, and the accessors.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

/// The bytes of an address up to its length.
private func bytes(of address: SockAddr) -> [UInt8] {
    withUnsafeBytes(of: address.asStorage().raw) { Array($0.prefix(Int(address.len()))) }
}

@Suite("SockAddr")
struct SockAddrTests {
    @Test func ipv4RoundTrip() throws {
        let socketAddress = SocketAddrV4(IPv4Address(192, 0, 2, 7), 8080)
        let address = SockAddr(socketAddress)
        #expect(address.len() == 16)
        #expect(address.family() == sa_family_t(AF_INET))
        #expect(address.domain() == .ipv4)
        #expect(address.isIpv4() && !address.isIpv6() && !address.isUnix())
        #expect(address.asSocketIpv4() == socketAddress)
        #expect(address.asSocketIpv6() == nil)
        #expect(address.asSocket() == .v4(socketAddress))
        #expect(SockAddr(SocketAddr.v4(socketAddress)) == address)
        // sockaddr_in: family, port in network order, address, sin_zero zeroed.
        let raw = bytes(of: address)
        #expect(Array(raw[2..<4]) == [0x1f, 0x90])
        #expect(Array(raw[4..<8]) == [192, 0, 2, 7])
        #expect(raw[8..<16].allSatisfy { $0 == 0 })
        #expect(address.asPathname() == nil && address.asAbstractNamespace() == nil && !address.isUnnamed())
        #expect(address.asVsockAddress() == nil)
    }

    @Test func ipv6RoundTripKeepsFlowInfoAndScopeId() throws {
        let socketAddress = SocketAddrV6(try IPv6Address("2001:db8::1"), 443, flowInfo: 0x12345, scopeId: 7)
        let address = SockAddr(socketAddress)
        #expect(address.len() == 28)
        #expect(address.family() == sa_family_t(AF_INET6) && address.domain() == .ipv6)
        #expect(address.isIpv6() && !address.isIpv4())
        #expect(address.asSocketIpv6() == socketAddress)
        #expect(address.asSocketIpv4() == nil)
        #expect(address.asSocket() == .v6(socketAddress))
        let raw = address.asStorage().raw
        let sin6 = withUnsafeBytes(of: raw) { $0.loadUnaligned(as: sockaddr_in6.self) }
        #expect(sin6.sin6_port == UInt16(443).bigEndian)
        #expect(sin6.sin6_flowinfo == 0x12345)  // stored as given, as socket2
        #expect(sin6.sin6_scope_id == 7)
        #expect(Array(bytes(of: address)[8..<24]) == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
    }

    @Test func unixPathnameLength() throws {
        let address = try SockAddr.unix("/tmp/socket")
        #expect(address.len() == socklen_t(2 + 11 + 1))  // offsetof(sun_path) + bytes + NUL
        #expect(address.family() == sa_family_t(AF_UNIX) && address.domain() == .unix)
        #expect(address.isUnix() && !address.isIpv4() && !address.isIpv6())
        #expect(address.asPathname() == "/tmp/socket")
        #expect(address.asUnix() == "/tmp/socket")
        #expect(address.asAbstractNamespace() == nil)
        #expect(!address.isUnnamed())
        #expect(address.asSocket() == nil)
        #expect(bytes(of: address).last == 0)
        #expect(try SockAddr.unix(bytes: TestNet.bytes("/tmp/socket")) == address)
    }

    @Test func unixAbstractHasNoTerminator() throws {
        let address = try SockAddr.unixAbstract(TestNet.bytes("name"))
        #expect(address.len() == socklen_t(2 + 1 + 4))
        #expect(address.asAbstractNamespace() == TestNet.bytes("name"))
        #expect(address.asPathname() == nil && address.asUnix() == nil)
        #expect(!address.isUnnamed())
        #expect(try SockAddr.unix(bytes: [0] + TestNet.bytes("name")) == address)
        #expect(try SockAddr.unix("\0name") == address)
        #expect(address.description == "unix:@name")
    }

    @Test func emptyUnixPathIsUnnamed() throws {
        let address = try SockAddr.unix("")
        #expect(address.len() == 2)
        #expect(address.isUnnamed())
        #expect(address.asPathname() == nil && address.asAbstractNamespace() == nil)
        #expect(address.description == "unix:(unnamed)")
    }

    @Test func unixLengthLimits() throws {
        let longest = "/" + String(repeating: "p", count: 106)  // 107 bytes: room for the NUL
        let address = try SockAddr.unix(longest)
        #expect(address.len() == 110)
        #expect(address.asPathname() == longest)
        #expect(throws: Errno.fileNameTooLong) { _ = try SockAddr.unix(longest + "p") }
        #expect(throws: Errno.fileNameTooLong) { _ = try SockAddr.unix(String(repeating: "p", count: 4096)) }

        let abstract = try SockAddr.unixAbstract([UInt8](repeating: 0x61, count: 107))  // 108 bytes
        #expect(abstract.len() == 110)
        #expect(abstract.asAbstractNamespace()?.count == 107)
        #expect(throws: Errno.fileNameTooLong) { _ = try SockAddr.unixAbstract([UInt8](repeating: 0x61, count: 108)) }
        #expect(throws: Errno.invalidArgument) { _ = try SockAddr.unix("/tmp/a\0b") }
    }

    @Test func equalityAndHashingAreOnTheBytesUpToTheLength() throws {
        let a = SockAddr(try SocketAddrV4("127.0.0.1:80"))
        #expect(a == SockAddr(try SocketAddrV4("127.0.0.1:80")))
        #expect(a != SockAddr(try SocketAddrV4("127.0.0.1:81")))
        #expect(a != SockAddr(try SocketAddrV4("127.0.0.2:80")))
        #expect(a != SockAddr(try SocketAddrV6("[::ffff:127.0.0.1]:80")))
        #expect(Set([a, a, SockAddr(try SocketAddrV4("127.0.0.1:80")), try SockAddr.unix("/x")]).count == 2)

        // Bytes beyond the length do not count; the length does.
        var storage = a.asStorage()
        storage.viewAs(sockaddr_storage.self) { raw in
            withUnsafeMutableBytes(of: &raw) { $0[100] = 0xee }
        }
        let withJunk = SockAddr(storage: storage, length: 16)
        #expect(withJunk == a)
        #expect(withJunk.hashValue == a.hashValue)
        #expect(SockAddr(storage: storage, length: 8) != a)
        #expect(SockAddr(storage: storage, length: 101) != SockAddr(storage: a.asStorage(), length: 101))
    }

    @Test func vsockRoundTrip() {
        let address = SockAddr.vsock(cid: 3, port: 1024)
        #expect(address.family() == sa_family_t(AF_VSOCK) && address.domain() == .vsock)
        #expect(address.len() == 16)
        #expect(address.asVsockAddress()! == (3, 1024))
        #expect(address.asSocket() == nil && !address.isUnix())
        #expect(address.description == "vsock:3:1024")
        #expect(address == SockAddr.vsock(cid: 3, port: 1024))
        #expect(address != SockAddr.vsock(cid: 2, port: 1024))
        // sockaddr_vm: family, reserved, port, cid.
        let raw = bytes(of: address)
        #expect(Array(raw[4..<8]) == withUnsafeBytes(of: UInt32(1024)) { Array($0) })
        #expect(Array(raw[8..<12]) == withUnsafeBytes(of: UInt32(3)) { Array($0) })
    }

    @Test func descriptions() throws {
        #expect(SockAddr(try SocketAddrV4("127.0.0.1:8080")).description == "127.0.0.1:8080")
        #expect(SockAddr(try SocketAddrV6("[::1]:80")).description == "[::1]:80")
        #expect(SockAddr(SocketAddrV6(try IPv6Address("fe80::1"), 80, scopeId: 2)).description == "[fe80::1%2]:80")
        #expect(try SockAddr.unix("/tmp/x").description == "unix:/tmp/x")
        // The empty address, what a receive reports for a sender without a name.
        let empty = SockAddr(storage: .zeroed(), length: 0)
        #expect(empty.description == "(unnamed)")
    }

    @Test func storageAndRawConstruction() throws {
        let storage = SockAddrStorage.zeroed()
        #expect(storage.sizeOf() == socklen_t(MemoryLayout<sockaddr_storage>.size))
        #expect(withUnsafeBytes(of: storage.raw) { $0.allSatisfy { $0 == 0 } })

        var built = SockAddrStorage.zeroed()
        built.viewAs(sockaddr_in.self) { raw in
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = UInt16(53).bigEndian
            raw.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        }
        var address = SockAddr(storage: built, length: socklen_t(MemoryLayout<sockaddr_in>.size))
        #expect(address == SockAddr(try SocketAddrV4("127.0.0.1:53")))
        address.setLength(0)
        #expect(address.len() == 0)
        #expect(address != SockAddr(try SocketAddrV4("127.0.0.1:53")))
    }

    @Test func tryInitGivesTheWholeStorageAndKeepsTheLengthWritten() throws {
        let (result, address) = try SockAddr.tryInit { (pointer, length) throws(Errno) -> String in
            #expect(length.pointee == socklen_t(MemoryLayout<sockaddr_storage>.size))
            UnsafeMutableRawPointer(pointer).withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = UInt16(7).bigEndian
                sin.pointee.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            }
            length.pointee = socklen_t(MemoryLayout<sockaddr_in>.size)
            return "done"
        }
        #expect(result == "done")
        #expect(address == SockAddr(try SocketAddrV4("127.0.0.1:7")))
        #expect(throws: Errno.badFileDescriptor) {
            _ = try SockAddr.tryInit { (_, _) throws(Errno) -> Int in throw .badFileDescriptor }
        }
    }

    @Test func withSockaddrPointerHandsTheAddressToACall() throws {
        let socket = try Socket(domain: .ipv4, type: .dgram)
        let address = TestNet.loopback(.ipv4)
        let result = address.withSockaddrPointer { pointer, length in
            Glibc.bind(socket.rawDescriptor, pointer, length)
        }
        #expect(result == 0)
        #expect(try socket.localAddr().asSocketIpv4()?.ip == .localhost)
    }
}
