// SOL_DCCP options. Linux 6.16 removed DCCP; where the kernel has none, creating a DCCP socket
// must fail as the kernel says, and every option call must still reach getsockopt/setsockopt at
// level SOL_DCCP, which a TCP socket answers with ENOPROTOOPT (or EOPNOTSUPP): at another level
// the same option numbers are TCP or IP options that would succeed or fail otherwise.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

/// Every SOL_DCCP call, with what it does on a DCCP socket.
private let dccpCalls: [(name: String, call: @Sendable (SockRef) throws -> Void)] = [
    ("dccpAvailableCcids", { _ = try $0.dccpAvailableCcids() }),
    ("setDccpCcid", { try $0.setDccpCcid(2) }),
    ("dccpCurMps", { _ = try $0.dccpCurMps() }),
    ("dccpQpolicyTxqlen", { _ = try $0.dccpQpolicyTxqlen() }),
    ("setDccpQpolicyTxqlen", { try $0.setDccpQpolicyTxqlen(5) }),
    ("dccpRecvCscov", { _ = try $0.dccpRecvCscov() }),
    ("setDccpRecvCscov", { try $0.setDccpRecvCscov(2) }),
    ("dccpXxCcid", { _ = try $0.dccpXxCcid() }),
    ("dccpSendCscov", { _ = try $0.dccpSendCscov() }),
    ("setDccpSendCscov", { try $0.setDccpSendCscov(2) }),
    ("dccpServerTimewait", { _ = try $0.dccpServerTimewait() }),
    ("setDccpServerTimewait", { try $0.setDccpServerTimewait(true) }),
    ("dccpService", { _ = try $0.dccpService() }),
    ("setDccpService", { try $0.setDccpService(42) }),
    ("dccpTxCcid", { _ = try $0.dccpTxCcid() }),
]

@Suite("Options SOL_DCCP")
struct OptionsDCCPTests {
    @Test("DCCP options round-trip when the kernel has DCCP; otherwise creation fails and the calls reach SOL_DCCP")
    func dccp() throws {
        let creation = thrownError { _ = try Socket(domain: .ipv4, type: .dccp, protocol: .dccp) }
        if let creation {
            let absent: [Errno] = [.socketTypeNotSupported, .protocolNotSupported, .addressFamilyNotSupported]
            #expect(absent.contains(creation), "creating a DCCP socket: \(creation)")
            for domain in [Domain.ipv4, .ipv6] {
                let tcp = try Socket(domain: domain, type: .stream)
                for (name, call) in dccpCalls {
                    let error = thrownError { try call(SockRef(tcp)) }
                    #expect(error == .protocolNotAvailable || error == .notSupportedOnSocket,
                            "\(name) on TCP: \(String(describing: error))")
                }
            }
            return
        }
        try roundTrips()
    }

    /// On a kernel with DCCP.
    private func roundTrips() throws {
        let socket = try Socket(domain: .ipv4, type: .dccp, protocol: .dccp)
        try socket.setDccpService(42)
        #expect(try socket.dccpService() == 42)
        for coverage: UInt32 in [3, 0] {
            try socket.setDccpSendCscov(coverage)
            #expect(try socket.dccpSendCscov() == coverage)
            try socket.setDccpRecvCscov(coverage)
            #expect(try socket.dccpRecvCscov() == coverage)
        }
        try socket.setDccpQpolicyTxqlen(10)
        #expect(try socket.dccpQpolicyTxqlen() == 10)
        for value in [true, false] {
            try socket.setDccpServerTimewait(value)
            #expect(try socket.dccpServerTimewait() == value)
        }
        let ccids = try socket.dccpAvailableCcids()
        #expect(ccids.contains(2))  // CCID 2, TCP-like, is always built in.
        try socket.setDccpCcid(2)
        #expect(thrownError { try socket.dccpAvailableCcids(capacity: 0) } == .invalidArgument)
    }
}
