import Glibc
import SystemPackage
import Testing
@testable import Socket2

@Suite struct AddressInfoTests {
    @Test func localhostPort80() throws {
        let results = try SockAddr.resolve(host: "localhost", service: "80", type: .stream)
        #expect(!results.isEmpty)
        let expected: Set<SockAddr> = [SockAddr(SocketAddrV4(.localhost, 80)), SockAddr(SocketAddrV6(.localhost, 80))]
        for result in results {
            #expect(expected.contains(result.address))
            #expect(result.type == .stream)
            #expect(result.protocol == .tcp)
            #expect(result.domain == result.address.domain())
        }
        #expect(results.contains { $0.address == SockAddr(SocketAddrV4(.localhost, 80)) })
    }

    @Test func familyTypeAndProtocolFilter() throws {
        let v4 = try SockAddr.resolve(host: "localhost", service: "53", family: .ipv4, type: .dgram)
        #expect(v4.map(\.address) == [SockAddr(SocketAddrV4(.localhost, 53))])
        #expect(v4.first?.protocol == .udp)
        // No type: one result per type the service works with (stream, datagram, raw).
        let any = try SockAddr.resolve(host: "127.0.0.1", service: "7", family: .ipv4)
        #expect(Set(any.map(\.type)).isSuperset(of: [.stream, .dgram]))
        #expect(any.allSatisfy { $0.address == SockAddr(SocketAddrV4(.localhost, 7)) })
    }

    @Test func serviceNamesAndCanonicalName() throws {
        let results = try SockAddr.resolve(host: "localhost", service: "http", family: .ipv4,
                                           type: .stream, flags: .canonicalName)
        #expect(results.first?.address == SockAddr(SocketAddrV4(.localhost, 80)))
        #expect(results.first?.canonicalName == "localhost")
        #expect(results.dropFirst().allSatisfy { $0.canonicalName == nil })
    }

    @Test func numericHostsOnly() throws {
        let v6 = try SockAddr.resolve(host: "::1", service: "8080", type: .dgram, flags: [.numericHost, .numericService])
        #expect(v6.map(\.address) == [SockAddr(SocketAddrV6(.localhost, 8080))])
        let v4 = try SockAddr.resolve(host: "127.0.0.1", service: nil, type: .stream, flags: .numericHost)
        #expect(v4.map(\.address) == [SockAddr(SocketAddrV4(.localhost, 0))])
        #expect(throws: AddressInfoError.noName) {
            try SockAddr.resolve(host: "localhost", service: "80", flags: .numericHost)
        }
    }

    @Test func passiveWithoutHostIsTheWildcard() throws {
        let results = try SockAddr.resolve(host: nil, service: "9000", family: .ipv6, type: .stream, flags: .passive)
        #expect(results.map(\.address) == [SockAddr(SocketAddrV6(.unspecified, 9000))])
        let loopback = try SockAddr.resolve(host: nil, service: "9000", family: .ipv4, type: .stream)
        #expect(loopback.map(\.address) == [SockAddr(SocketAddrV4(.localhost, 9000))])
    }

    @Test func errorsMapToNamedCases() throws {
        #expect(throws: AddressInfoError.service) {
            try SockAddr.resolve(host: "localhost", service: "no-such-service-here", type: .stream)
        }
        #expect(throws: AddressInfoError.noName) {
            try SockAddr.resolve(host: "localhost", service: "http", flags: .numericService)
        }
        #expect(throws: AddressInfoError.badFlags) {
            try SockAddr.resolve(host: nil, service: "80", flags: .canonicalName)
        }
        #expect(throws: AddressInfoError.badFlags) {
            try SockAddr.resolve(host: "localhost", service: "80", flags: AddressInfoFlags(rawValue: 0x4000_0000))
        }
        #expect(throws: AddressInfoError.noName) { try SockAddr.resolve(host: nil, service: nil) }
        #expect(throws: AddressInfoError.family) {
            try SockAddr.resolve(host: "localhost", service: "80", family: Domain(12345))
        }
        #expect(throws: AddressInfoError.socketType) {
            try SockAddr.resolve(host: "localhost", service: "80", type: SocketType(12345))
        }
    }

    @Test func everyCodeHasItsCaseAndText() {
        let codes: [CInt] = [EAI_AGAIN, EAI_BADFLAGS, EAI_FAIL, EAI_FAMILY, EAI_MEMORY, EAI_NONAME,
                             EAI_SERVICE, EAI_SOCKTYPE, EAI_SYSTEM, EAI_OVERFLOW,
                             -9, -5, -100, -101, -102, -103, -104, -105]  // The GNU codes of <netdb.h>.
        var cases = Set<AddressInfoError>()
        for code in codes {
            let error = AddressInfoError(code: code, errno: .permissionDenied)
            if case .unknown = error { Issue.record("code \(code) has no case") }
            #expect(error.code == code)
            #expect(error.description == (code == EAI_SYSTEM
                ? String(cString: gai_strerror(code)) + ": \(Errno.permissionDenied)"
                : String(cString: gai_strerror(code))))
            cases.insert(error)
        }
        #expect(cases.count == codes.count)
        #expect(AddressInfoError(code: EAI_SYSTEM, errno: .ioError) == .system(.ioError))
        #expect(AddressInfoError(code: -4242, errno: .ioError) == .unknown(-4242))
        #expect(AddressInfoError.unknown(-4242).code == -4242)
        #expect(AddressInfoError.noName.description == "Name or service not known")
    }
}
