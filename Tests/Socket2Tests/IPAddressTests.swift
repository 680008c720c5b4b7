// IP and socket addresses: their text forms, and the text they refuse.

import Socket2
import Testing

@Suite("IP addresses")
struct IPAddressTests {
    @Test(arguments: ["::1", "::", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1:2:3:4", "ff02::1"])
    func ipv6PrintsAsParsed(text: String) throws {
        let address = try IPv6Address(text)
        #expect(address.description == text)
        #expect(try IPAddress(text) == .v6(address))
        #expect(try IPAddress(text).description == text)
    }

    @Test func ipv6Forms() throws {
        #expect(try IPv6Address("::1") == .localhost && IPv6Address.localhost.isLoopback)
        #expect(try IPv6Address("::") == .unspecified && IPv6Address.unspecified.isUnspecified)
        #expect(try IPv6Address("2001:0db8:0000:0000:0000:0000:0000:0001").description == "2001:db8::1")
        #expect(try IPv6Address("2001:db8::1").segments == [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
        #expect(IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1) == (try IPv6Address("2001:db8::1")))
        #expect(try IPv6Address("::ffff:1.2.3.4").ipv4Mapped == IPv4Address(1, 2, 3, 4))
        #expect(try IPv6Address("::1").ipv4Mapped == nil)
        #expect(IPv4Address(1, 2, 3, 4).ipv6Mapped == (try IPv6Address("::ffff:1.2.3.4")))
        #expect(try IPv6Address("ff02::1").isMulticast && !(try IPv6Address("::1")).isMulticast)
        let octets: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        #expect(IPv6Address(octets: octets) == (try IPv6Address("2001:db8::1")))
        #expect(try IPv6Address("2001:db8::1").octets == octets)
        #expect(IPv6Address(octets: [1, 2, 3]) == nil)
        #expect(try IPv6Address("::1") < (try IPv6Address("::2")))
        #expect(Set([try IPv6Address("::1"), .localhost]).count == 1)
    }

    @Test func ipv4Forms() throws {
        let address = try IPv4Address("1.2.3.4")
        #expect(address == IPv4Address(1, 2, 3, 4))
        #expect(address.description == "1.2.3.4")
        #expect(address.bits == 0x0102_0304)
        #expect(IPv4Address(bits: 0x7f00_0001) == .localhost)
        #expect(IPv4Address.localhost.description == "127.0.0.1" && IPv4Address.localhost.isLoopback)
        #expect(IPv4Address.unspecified.description == "0.0.0.0" && IPv4Address.unspecified.isUnspecified)
        #expect(IPv4Address.broadcast.description == "255.255.255.255")
        #expect(try IPv4Address("224.0.0.1").isMulticast && !address.isMulticast)
        #expect(try IPAddress("1.2.3.4") == .v4(address))
        #expect(IPv4Address(1, 2, 3, 4) < IPv4Address(1, 2, 3, 5))
        #expect(Set([address, IPv4Address(1, 2, 3, 4)]).count == 1)
    }

    @Test(arguments: ["1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4", "1.2.3.4:80", "", " 1.2.3.4", "a.b.c.d"])
    func rejectsBadIPv4(text: String) {
        #expect(throws: AddressParseError(expected: "IPv4 address", text: text)) { _ = try IPv4Address(text) }
    }

    @Test(arguments: [":::", "1.2.3.4", "2001:db8::1::2", "12345::", "::1%1", "[::1]", "g::1", ""])
    func rejectsBadIPv6(text: String) {
        #expect(throws: AddressParseError(expected: "IPv6 address", text: text)) { _ = try IPv6Address(text) }
    }

    @Test(arguments: ["1.2.3", "256.1.1.1", ":::", "1.2.3.4:80", "[::1]:80", "localhost"])
    func rejectsBadIP(text: String) {
        #expect(throws: AddressParseError(expected: "IP address", text: text)) { _ = try IPAddress(text) }
    }

    @Test func parseErrorDescription() {
        #expect(AddressParseError(expected: "IP address", text: "1.2.3").description
            == "invalid IP address syntax: \"1.2.3\"")
    }
}

@Suite("Socket addresses")
struct SocketAddressTextTests {
    @Test func parsesAndPrints() throws {
        let v4 = try SocketAddr("127.0.0.1:8080")
        #expect(v4 == .v4(SocketAddrV4(.localhost, 8080)))
        #expect(v4.description == "127.0.0.1:8080" && v4.port == 8080 && v4.ip == .v4(.localhost))
        let v6 = try SocketAddr("[::1]:80")
        #expect(v6 == .v6(SocketAddrV6(.localhost, 80)))
        #expect(v6.description == "[::1]:80" && v6.port == 80 && v6.ip == .v6(.localhost))
        let scoped = try SocketAddrV6("[fe80::1%3]:443")
        #expect(scoped.scopeId == 3 && scoped.port == 443 && scoped.description == "[fe80::1%3]:443")
        #expect(try SocketAddrV6("[fe80::1%lo]:1").scopeId == 1)  // an interface name: if_nametoindex
        #expect(try SocketAddrV4("0.0.0.0:0") == SocketAddrV4(.unspecified, 0))
        #expect(try SocketAddrV4("1.2.3.4:65535").port == 65535)
        #expect(SocketAddr(.v6(.localhost), 9) == .v6(SocketAddrV6(.localhost, 9)))
        #expect(SocketAddr(.v4(.localhost), 9) == .v4(SocketAddrV4(.localhost, 9)))
    }

    @Test(arguments: [
        "1.2.3.4:65536", "1.2.3.4:", "1.2.3.4", "1.2.3.4:+80", "1.2.3.4:-1", "1.2.3.4:8 0", "1.2.3.4:0x50",
        "1.2.3:80", ":80", "[::1]:", "[::1]80", "[::1]", "::1:80", "[::1]:99999", "[1.2.3.4]:80",
        "[::1%nosuchinterface]:80", "[::1]:+1",
    ])
    func rejectsBadSocketAddresses(text: String) {
        #expect(throws: AddressParseError(expected: "socket address", text: text)) { _ = try SocketAddr(text) }
    }

    @Test func familySpecificParsersRefuseTheOtherFamily() {
        #expect(throws: AddressParseError.self) { _ = try SocketAddrV4("[::1]:80") }
        #expect(throws: AddressParseError.self) { _ = try SocketAddrV6("127.0.0.1:80") }
    }
}
