import Glibc
import SystemPackage
import Testing
@testable import Socket2

@Suite struct PacketInfoTests {
    @Test func findsThePacketInfoAmongOtherMessages() throws {
        let control = try ControlMessageBuffer([
            .ttlV4(3),
            .packetInfoV4(destination: IPv4Address(10, 1, 2, 3), interfaceIndex: 7),
            .packetInfoV6(address: .localhost, interfaceIndex: 9),
        ])
        let found = control.withUnsafeBytes { PacketInfo.find(in: $0) }
        #expect(found == PacketInfo(destination: .v4(IPv4Address(10, 1, 2, 3)), interfaceIndex: 7))
        let v6 = try ControlMessageBuffer([.hopLimitV6(1), .packetInfoV6(address: .localhost, interfaceIndex: 9)])
        #expect(v6.withUnsafeBytes { PacketInfo.find(in: $0) } == PacketInfo(destination: .v6(.localhost), interfaceIndex: 9))
    }

    @Test func noPacketInfoInOtherOrBrokenData() throws {
        let other = try ControlMessageBuffer([.ttlV4(3), .tosV4(1)])
        #expect(other.withUnsafeBytes { PacketInfo.find(in: $0) } == nil)
        #expect(PacketInfo.find(in: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        // A packet-info header whose payload is cut short is not read.
        let whole = try ControlMessageBuffer([.packetInfoV4(interfaceIndex: 1)]).bytes
        let cut = Array(whole.prefix(ControlMessage.headerSize + 4))
        #expect(cut.withUnsafeBytes { PacketInfo.find(in: $0) } == nil)
        // The wrong payload size for its type.
        let wrong = try ControlMessageBuffer([.raw(level: CInt(IPPROTO_IP), type: IP_PKTINFO, data: [1, 2, 3])])
        #expect(wrong.withUnsafeBytes { PacketInfo.find(in: $0) } == nil)
    }

    @Test func fromReceivedControlMessages() {
        #expect(PacketInfo(.packetInfoV4(destination: .localhost, interfaceIndex: 1, specDestination: .unspecified))
                == PacketInfo(destination: .v4(.localhost), interfaceIndex: 1))
        #expect(PacketInfo(.packetInfoV6(address: .localhost, interfaceIndex: 2))
                == PacketInfo(destination: .v6(.localhost), interfaceIndex: 2))
        #expect(PacketInfo(.ttlV4(1)) == nil)
        #expect("\(PacketInfo(destination: .v4(.localhost), interfaceIndex: 1))"
                == "PacketInfo(destination: 127.0.0.1, interfaceIndex: 1)")
    }

    /// recvmmsg(2) with packet info on: each slot names the loopback address and interface.
    @Test(arguments: [Domain.ipv4, .ipv6])
    func batchSlotsCarryPacketInfo(_ domain: Domain) throws {
        let receiver = try BeyondLoopback.udp(domain)
        if domain == .ipv6 { try receiver.setRecvPktinfoV6(true) } else { try receiver.setRecvPktinfoV4(true) }
        let sender = try BeyondLoopback.udp(domain)
        for index in 0..<3 { _ = try sender.sendTo([UInt8(index)], to: receiver.localAddr()) }
        let batch = DatagramBatch(count: 4, bufferSize: 16, controlCapacity: 64)
        var received = 0
        while received < 3 {
            let count = try receiver.recvmmsg(into: batch, count: 3 - received, flags: .waitForOne)
            for index in 0..<count {
                let expected: IPAddress = domain == .ipv6 ? .v6(.localhost) : .v4(.localhost)
                #expect(batch.packetInfo(at: index) == PacketInfo(destination: expected,
                                                                  interfaceIndex: if_nametoindex("lo")))
                // Parsing the slot's messages does not change what packetInfo reads.
                #expect(batch.controlMessages(at: index).compactMap(PacketInfo.init) == [batch.packetInfo(at: index)])
            }
            received += count
        }
        // A slot set for sending has no packet info.
        try batch.setControl(ControlMessageBuffer([.packetInfoV4(interfaceIndex: 1)]), at: 0)
        #expect(batch.packetInfo(at: 0) == nil)
    }
}
