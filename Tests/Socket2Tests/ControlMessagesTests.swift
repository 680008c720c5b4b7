import Glibc
import SystemPackage
import Testing
@testable import Socket2

// MARK: - Support shared by the "beyond socket2" tests

/// Loopback sockets for the control-message, batch, offload and zero-copy tests.
enum BeyondLoopback {
    /// How long a blocking receive may wait before the test fails (`SO_RCVTIMEO`).
    static let receiveTimeout = timeval(tv_sec: 5, tv_usec: 0)

    /// A UDP socket bound to 127.0.0.1 or ::1 on a free port, whose receives give up after
    /// `receiveTimeout`.
    static func udp(_ domain: Domain) throws -> Socket {
        let socket = try Socket(domain: domain, type: .dgram)
        try socket.bind(domain == .ipv6 ? SockAddr(SocketAddrV6(.localhost, 0)) : SockAddr(SocketAddrV4(.localhost, 0)))
        try boundReceives(socket)
        return socket
    }

    /// Bounds the socket's blocking receives by `receiveTimeout`.
    static func boundReceives(_ socket: borrowing Socket) throws {
        try socket.setOption(SOL_SOCKET, SO_RCVTIMEO, receiveTimeout)
    }

    /// A pair of connected Unix datagram sockets whose receives are bounded.
    static func unixPair(_ type: SocketType = .dgram) throws -> SocketPair {
        let pair = try Socket.pair(domain: .unix, type: type)
        try boundReceives(pair.first)
        try boundReceives(pair.second)
        return pair
    }

    /// Waits (at most 5 s) until `descriptor` reports one of `events`; returns the events seen.
    static func poll(_ descriptor: CInt, _ events: Int16, milliseconds: CInt = 5_000) -> Int16 {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        let ready = Glibc.poll(&entry, 1, milliseconds)
        return ready == 1 ? entry.revents : 0
    }

    /// `true` when the peer of `socket` has been closed: it becomes readable and reads 0 bytes.
    static func peerClosed<S: SocketHandle & ~Copyable>(_ socket: borrowing S) throws -> Bool {
        guard poll(socket.rawDescriptor, Int16(POLLIN)) != 0 else { return false }
        return try socket.recv(maxCount: 16, flags: .dontWait).isEmpty
    }

    /// The realtime clock as a duration since the epoch.
    static func now() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }

    static var loopbackIndex: UInt32 { if_nametoindex("lo") }
}

/// A small seeded generator (SplitMix64), so that every run tries the same inputs.
struct ControlFuzzGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The sendable counterpart of a parsed message, for comparison.
func sendableForm(_ message: ReceivedControlMessage) -> ControlMessage? {
    switch message {
    case .credentials(let pid, let uid, let gid): return .credentials(pid: pid, uid: uid, gid: gid)
    case .packetInfoV4(let destination, let index, let spec):
        return .packetInfoV4(destination: destination, interfaceIndex: index, specDestination: spec)
    case .packetInfoV6(let address, let index): return .packetInfoV6(address: address, interfaceIndex: index)
    case .tosV4(let tos): return .tosV4(tos)
    case .trafficClassV6(let value): return .trafficClassV6(value)
    case .ttlV4(let value): return .ttlV4(value)
    case .hopLimitV6(let value): return .hopLimitV6(value)
    case .udpSegment(let size): return .udpSegment(size)
    case .unknown(let level, let type, let data): return .raw(level: level, type: type, data: data)
    default: return nil
    }
}

// MARK: - The arithmetic and the builder

@Suite struct ControlMessageBuilderTests {
    @Test func spaceAndLengthFollowCmsgMacros() {
        #expect(ControlMessage.headerSize == 16)
        #expect(ControlMessage.align(0) == 0)
        #expect(ControlMessage.align(1) == 8)
        #expect(ControlMessage.align(8) == 8)
        #expect(ControlMessage.align(13) == 16)
        #expect(ControlMessage.length(forDataLength: 4) == 20)
        #expect(ControlMessage.length(forDataLength: 0) == 16)
        #expect(ControlMessage.space(forDataLength: 0) == 16)
        #expect(ControlMessage.space(forDataLength: 1) == 24)
        #expect(ControlMessage.space(forDataLength: 4) == 24)
        #expect(ControlMessage.space(forDataLength: 8) == 24)
        #expect(ControlMessage.space(forDataLength: 9) == 32)
        #expect(ControlMessage.space(forDataLength: 12) == 32)
        #expect(ControlMessage.ttlV4(1).space == 24)
        #expect(ControlMessage.packetInfoV6().space == 40)
        #expect(ControlMessage.rights([1, 2, 3]).dataLength == 12)
    }

    @Test func encodesHeaderPayloadAndZeroPadding() throws {
        // Dirty storage first, so that padding must be written, not inherited.
        var buffer = ControlMessageBuffer(bytes: [UInt8](repeating: 0xAA, count: 64))
        buffer.removeAll()
        try buffer.append(.ttlV4(42))
        try buffer.append(.udpSegment(0x1234))
        #expect(buffer.count == 48)
        #expect(buffer.capacity == 64)
        let expected: [UInt8] = [
            20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0,
            18, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 103, 0, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0,
        ]
        #expect(buffer.bytes == expected)
    }

    @Test func growsOnlyWhenNeededAndRefusesValuesBeyondInt() throws {
        var buffer = ControlMessageBuffer(capacity: 24)
        try buffer.append(.hopLimitV6(5))
        #expect(buffer.capacity == 24)
        try buffer.append(.tosV4(1))
        #expect(buffer.capacity == 48)
        buffer.removeAll()
        #expect(buffer.isEmpty && buffer.capacity == 48)
        #expect(throws: Errno.invalidArgument) { try buffer.append(.ttlV4(Int(CInt.max) + 1)) }
        #expect(throws: Errno.invalidArgument) { try ControlMessageBuffer([.trafficClassV6(Int.min)]) }
        #expect(buffer.isEmpty)
    }

    /// Every typed case the builder knows comes back from the parser as the same value.
    @Test func builderToParserRoundTripsEveryTypedCase() throws {
        let pair = try Socket.pair(domain: .unix, type: .stream)
        let duplicate = dup(pair.first.rawDescriptor)
        try #require(duplicate >= 0)
        let messages: [ControlMessage] = [
            .rights([duplicate]),
            .credentials(pid: 1234, uid: 56, gid: 78),
            .packetInfoV4(destination: .localhost, interfaceIndex: 7, specDestination: IPv4Address(10, 1, 2, 3)),
            .packetInfoV6(address: .localhost, interfaceIndex: 9),
            .tosV4(0xB8),
            .trafficClassV6(0x28),
            .ttlV4(63),
            .hopLimitV6(255),
            .udpSegment(1200),
            .raw(level: 300, type: 7, data: [1, 2, 3]),
        ]
        var buffer = try ControlMessageBuffer(messages)
        #expect(buffer.count == messages.reduce(0) { $0 + $1.space })
        let parsed = buffer.takeMessages()
        #expect(buffer.isEmpty)
        try #require(parsed.count == messages.count)
        guard case .rights(let rights) = parsed[0] else { Issue.record("\(parsed[0])"); return }
        #expect(rights.rawDescriptors == [duplicate])
        #expect(sendableForm(parsed[1]) == messages[1])
        #expect(sendableForm(parsed[2]) == messages[2])
        #expect(sendableForm(parsed[3]) == messages[3])
        #expect(sendableForm(parsed[4]) == messages[4])
        #expect(sendableForm(parsed[5]) == messages[5])
        #expect(sendableForm(parsed[6]) == messages[6])
        #expect(sendableForm(parsed[7]) == messages[7])
        #expect(sendableForm(parsed[8]) == messages[8])
        #expect(sendableForm(parsed[9]) == messages[9])
        // The parsed rights own the duplicate: taking it hands it over.
        let taken = rights.take()
        #expect(taken == [duplicate])
        #expect(rights.rawDescriptors.isEmpty)
        #expect(close(duplicate) == 0)
    }

    /// Messages only the kernel sends, hand-built as raw messages, decode to their cases.
    @Test func decodesKernelOnlyMessagesFromRawBytes() throws {
        func pair(_ seconds: Int64, _ fraction: Int64) -> [UInt8] {
            withUnsafeBytes(of: (seconds, fraction)) { Array($0) }
        }
        var errorPayload = [UInt8](repeating: 0, count: 16 + 16)
        errorPayload[0] = UInt8(ECONNREFUSED)
        errorPayload[4] = Kernel.eeOriginICMP
        errorPayload[5] = 3
        errorPayload[6] = 3
        let offender = SockAddr(SocketAddrV4(.localhost, 9))
        offender.withSockaddrPointer { pointer, length in
            UnsafeRawBufferPointer(start: pointer, count: Int(length)).enumerated().forEach { errorPayload[16 + $0] = $1 }
        }
        var zeroCopyPayload = [UInt8](repeating: 0, count: 16 + 16)
        zeroCopyPayload[4] = Kernel.eeOriginZeroCopy
        zeroCopyPayload[6] = Kernel.eeCodeZeroCopyCopied
        zeroCopyPayload[8] = 3  // ee_info: first id
        zeroCopyPayload[12] = 7  // ee_data: last id
        var buffer = try ControlMessageBuffer([
            .raw(level: SOL_SOCKET, type: SO_TIMESTAMP_OLD, data: pair(1_700_000_000, 123_456)),
            .raw(level: SOL_SOCKET, type: SO_TIMESTAMPNS_OLD, data: pair(1_700_000_000, 123_456_789)),
            .raw(level: SOL_SOCKET, type: SO_TIMESTAMPING_OLD, data: pair(5, 6) + pair(0, 0) + pair(0, 0)),
            .raw(level: Kernel.solUDP, type: Kernel.udpGRO, data: withUnsafeBytes(of: CInt(1400)) { Array($0) }),
            .raw(level: CInt(IPPROTO_IP), type: IP_TOS, data: [0x2E]),
            .raw(level: CInt(IPPROTO_IP), type: IP_RECVERR, data: errorPayload),
            .raw(level: CInt(IPPROTO_IPV6), type: IPV6_RECVERR, data: zeroCopyPayload),
        ])
        let parsed = buffer.takeMessages()
        try #require(parsed.count == 7)
        guard case .timestamp(let time) = parsed[0],
              case .timestampNs(let timeNs) = parsed[1],
              case .timestamping(let software, let hardware) = parsed[2],
              case .udpGroSegmentSize(let segment) = parsed[3],
              case .tosV4(let tos) = parsed[4],
              case .extendedError(let error) = parsed[5],
              case .zeroCopy(let completion) = parsed[6]
        else { Issue.record("\(parsed)"); return }
        #expect(time == .seconds(1_700_000_000) + .microseconds(123_456))
        #expect(timeNs == .seconds(1_700_000_000) + .nanoseconds(123_456_789))
        #expect(software == .seconds(5) + .nanoseconds(6))
        #expect(hardware == nil)
        #expect(segment == 1400)
        #expect(tos == 0x2E)
        #expect(error.error == .connectionRefused)
        #expect(error.origin == .icmp)
        #expect(error.type == 3 && error.code == 3)
        #expect(error.level == CInt(IPPROTO_IP))
        #expect(error.offender == offender)
        #expect(completion == ZeroCopyCompletion(first: 3, last: 7, copied: true))
        #expect(completion.count == 5)
        #expect(completion.contains(3) && completion.contains(7) && !completion.contains(8) && !completion.contains(2))
        let wrapped = ZeroCopyCompletion(first: UInt32.max - 1, last: 1, copied: false)
        #expect(wrapped.count == 4 && wrapped.contains(0) && wrapped.contains(UInt32.max) && !wrapped.contains(2))
    }
}

// MARK: - The parser on bad input

@Suite struct ControlMessageParserTests {
    private func parse(_ bytes: [UInt8], flags: CInt = 0) -> [ReceivedControlMessage] {
        var buffer = ControlMessageBuffer(bytes: bytes)
        return buffer.takeMessages(flags: RecvFlags(rawValue: flags))
    }

    private func header(length: UInt, level: CInt, type: CInt) -> [UInt8] {
        withUnsafeBytes(of: length) { Array($0) } + withUnsafeBytes(of: level) { Array($0) }
            + withUnsafeBytes(of: type) { Array($0) }
    }

    private func problem(_ message: ReceivedControlMessage?) -> MalformedControlMessage.Problem? {
        if case .malformed(let malformed) = message { return malformed.problem }
        return nil
    }

    @Test func reportsEachKindOfDamage() {
        #expect(parse([]).isEmpty)
        #expect(problem(parse([1, 2, 3]).first) == .incompleteHeader)
        #expect(problem(parse(header(length: 8, level: 0, type: 2) + [0, 0, 0, 0]).first) == .lengthBelowHeader)
        #expect(problem(parse(header(length: 64, level: 0, type: 2) + [0, 0, 0, 0]).first) == .lengthPastEnd)
        #expect(problem(parse(header(length: UInt.max, level: 0, type: 2)).first) == .lengthPastEnd)
        // A TTL with two bytes instead of an int.
        let short = parse(header(length: 18, level: CInt(IPPROTO_IP), type: IP_TTL) + [64, 0])
        #expect(problem(short.first) == .wrongPayloadSize)
        // A kernel-truncated message and MSG_CTRUNC: the damage, then `.truncated` last.
        let truncated = parse(header(length: 24, level: SOL_SOCKET, type: SO_TIMESTAMPNS_OLD) + [UInt8](repeating: 0, count: 8),
                              flags: CInt(MSG_CTRUNC))
        #expect(truncated.count == 2)
        #expect(problem(truncated.first) == .wrongPayloadSize)
        if case .truncated = truncated.last {} else { Issue.record("\(truncated)") }
        // A good message followed by the start of another.
        let tail = parse(header(length: 20, level: CInt(IPPROTO_IP), type: IP_TTL) + [9, 0, 0, 0, 0, 0, 0, 0, 1, 2])
        #expect(tail.count == 2)
        if case .ttlV4(9) = tail.first {} else { Issue.record("\(tail)") }
        #expect(problem(tail.last) == .incompleteHeader)
        // The last message needs no padding after it.
        let unpadded = parse(header(length: 20, level: CInt(IPPROTO_IP), type: IP_TTL) + [9, 0, 0, 0])
        if unpadded.count == 1, case .ttlV4(9) = unpadded[0] {} else { Issue.record("\(unpadded)") }
    }

    /// Thousands of random and damaged buffers, each parsed from an array of exactly its size
    /// (a read past the end traps in this debug build): nothing crashes, every byte reported
    /// lies inside the input, and `.truncated` comes last exactly when `MSG_CTRUNC` is set.
    @Test func randomAndTruncatedBuffersNeverCrashOrOverrun() throws {
        var random = ControlFuzzGenerator(seed: 0x50C7_E72)
        // Every (level, type) the parser decodes except SCM_RIGHTS, whose payload it would take
        // for descriptors of this process and close; rights are fuzzed separately below.
        let kinds: [(CInt, CInt)] = [
            (SOL_SOCKET, Kernel.scmCredentials), (SOL_SOCKET, SO_TIMESTAMP_OLD), (SOL_SOCKET, SO_TIMESTAMP_NEW),
            (SOL_SOCKET, SO_TIMESTAMPNS_OLD), (SOL_SOCKET, SO_TIMESTAMPNS_NEW), (SOL_SOCKET, SO_TIMESTAMPING_OLD),
            (SOL_SOCKET, SO_TIMESTAMPING_NEW), (CInt(IPPROTO_IP), IP_PKTINFO), (CInt(IPPROTO_IP), IP_TOS),
            (CInt(IPPROTO_IP), IP_TTL), (CInt(IPPROTO_IP), IP_RECVERR), (CInt(IPPROTO_IPV6), IPV6_PKTINFO),
            (CInt(IPPROTO_IPV6), IPV6_TCLASS), (CInt(IPPROTO_IPV6), IPV6_HOPLIMIT), (CInt(IPPROTO_IPV6), IPV6_RECVERR),
            (Kernel.solUDP, Kernel.udpGRO), (Kernel.solUDP, Kernel.udpSegment), (77, 5),
        ]
        let payloadSizes = [0, 1, 2, 3, 4, 5, 8, 12, 15, 16, 20, 24, 28, 31, 32, 44, 47, 48, 60, 64]

        func check(_ bytes: [UInt8], ctrunc: Bool) {
            let parsed = parse(bytes, flags: ctrunc ? CInt(MSG_CTRUNC) : 0)
            var reported = 0
            for (index, message) in parsed.enumerated() {
                switch message {
                case .malformed(let malformed): reported += malformed.data.count
                case .unknown(_, _, let data): reported += data.count
                case .rights: Issue.record("rights decoded from fuzz input")
                case .truncated: #expect(ctrunc && index == parsed.count - 1)
                default: break
                }
            }
            #expect(reported <= bytes.count)
            #expect(ctrunc == (parsed.last.map { if case .truncated = $0 { true } else { false } } ?? false))
        }

        // 1. Noise: random bytes, with any header that would be SCM_RIGHTS defused.
        for _ in 0..<3_000 {
            var bytes = (0..<Int.random(in: 0...160, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            defuseRights(&bytes)
            check(bytes, ctrunc: Bool.random(using: &random))
        }
        // 2. Plausible messages with lies in their lengths, cut at a random point.
        for _ in 0..<3_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...5, using: &random) {
                let (level, type) = kinds.randomElement(using: &random)!
                let size = payloadSizes.randomElement(using: &random)!
                let lie = [0, 0, 0, -1, 1, -8, 8, -20, 1000].randomElement(using: &random)!
                let length = UInt(bitPattern: max(0, ControlMessage.length(forDataLength: size) + lie))
                bytes += header(length: length, level: level, type: type)
                bytes += (0..<ControlMessage.align(size)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let cut = Bool.random(using: &random) ? bytes.count : Int.random(in: 0...bytes.count, using: &random)
            check(Array(bytes.prefix(cut)), ctrunc: Bool.random(using: &random))
        }
        // 3. Every prefix of a valid buffer: the messages wholly inside decode as in the whole.
        let whole = try ControlMessageBuffer([
            .credentials(pid: 1, uid: 2, gid: 3), .packetInfoV4(interfaceIndex: 1), .packetInfoV6(interfaceIndex: 1),
            .tosV4(4), .trafficClassV6(5), .ttlV4(6), .hopLimitV6(7), .udpSegment(8), .raw(level: 9, type: 9, data: [9]),
        ]).bytes
        for cut in 0...whole.count {
            check(Array(whole.prefix(cut)), ctrunc: cut < whole.count)
        }
    }

    /// Rewrites the type of any aligned header that reads as SOL_SOCKET/SCM_RIGHTS.
    private func defuseRights(_ bytes: inout [UInt8]) {
        var offset = 0
        while offset + 16 <= bytes.count {
            if bytes[(offset + 8)..<(offset + 16)] == [1, 0, 0, 0, 1, 0, 0, 0] { bytes[offset + 12] = 99 }
            offset += 8
        }
    }

    /// SCM_RIGHTS payloads that are cut, odd-sized or hold negative numbers: the descriptors
    /// wholly inside the buffer are owned (and closed), nothing else is touched.
    @Test func damagedRightsOwnOnlyWholeDescriptors() throws {
        let pair = try Socket.pair(domain: .unix, type: .stream)
        let first = dup(pair.first.rawDescriptor)
        let second = dup(pair.first.rawDescriptor)
        try #require(first >= 0 && second >= 0)
        // Two descriptors, -5, and two stray bytes, in a message whose length overruns the buffer.
        var bytes = header(length: 64, level: SOL_SOCKET, type: CInt(SCM_RIGHTS))
        bytes += withUnsafeBytes(of: (first, second, CInt(-5))) { Array($0) } + [7, 7]
        let parsed = parse(bytes)
        let rights = parsed.compactMap { message -> ReceivedDescriptors? in
            if case .rights(let rights) = message { return rights }
            return nil
        }
        try #require(rights.count == 1)
        #expect(rights[0].rawDescriptors == [first, second])
        let problems = parsed.compactMap(problem)
        #expect(problems.contains(.invalidValue) && problems.contains(.lengthPastEnd))
        // Dropping the parsed values closes both duplicates.
        let identity = { (descriptor: CInt) -> ino_t in
            var status = stat()
            return fstat(descriptor, &status) == 0 ? status.st_ino : 0
        }
        let inode = identity(first)
        _ = consume parsed
        _ = consume rights
        #expect(identity(first) != inode && identity(second) != inode)
    }
}

// MARK: - Control messages over real sockets

@Suite struct ControlMessageSocketTests {
    /// Passes one end of a second socket pair; the receiver writes through it and the other end
    /// reads what it wrote.
    @Test func descriptorsPassedAreUsable() throws {
        let channel = try BeyondLoopback.unixPair()
        let passed = try BeyondLoopback.unixPair(.stream)
        #expect(try channel.first.sendWithControl([1], control: [.rights([passed.first.rawDescriptor])]) == 1)
        let (bytes, message) = try channel.second.recvWithControl(
            maxCount: 8, controlCapacity: ControlMessage.space(forDataLength: 4))
        #expect(bytes == [1])
        #expect(!message.flags.isControlTruncated())
        // MSG_CMSG_CLOEXEC, passed on every receive of control data, is not echoed back.
        #expect(message.flags.rawValue & CInt(MSG_CMSG_CLOEXEC) == 0)
        try #require(message.control.count == 1)
        guard case .rights(let rights) = message.control[0] else { Issue.record("\(message)"); return }
        #expect(rights.count == 1)
        #expect(rights.rawDescriptors.first != passed.first.rawDescriptor)
        guard let received = rights.takeSocket(at: 0) else { Issue.record("not taken"); return }
        #expect(try received.cloexec())
        if rights.takeSocket(at: 0) != nil { Issue.record("taken twice") }
        #expect(try received.send(Array("through the received descriptor".utf8)) == 31)
        #expect(try passed.second.recv(maxCount: 64) == Array("through the received descriptor".utf8))
    }

    /// A descriptor received and not taken is closed when the message goes away: it was the
    /// last reference to its socket, whose peer then reads end-of-stream.
    @Test func descriptorsNotTakenAreClosed() throws {
        let channel = try BeyondLoopback.unixPair()
        let passed = try BeyondLoopback.unixPair(.stream)
        let peer = passed.second
        do {
            let sent = passed.first
            _ = try channel.first.sendWithControl([1], control: [.rights([sent.rawDescriptor])])
        }  // The sender's copy is closed here.
        let receivedNumber: CInt
        let inode: ino_t
        do {
            var control = ControlMessageBuffer(capacity: 64)
            var byte: UInt8 = 0
            let message = try withUnsafeMutableBytes(of: &byte) { buffer in
                try channel.second.recvWithControl(into: buffer, control: &control)
            }
            guard case .rights(let rights) = message.control.first, let number = rights.rawDescriptors.first
            else { Issue.record("\(message)"); return }
            receivedNumber = number
            var status = stat()
            #expect(fstat(number, &status) == 0)
            inode = status.st_ino
            #expect(fcntl(number, F_GETFD) >= 0)
            #expect(BeyondLoopback.poll(peer.rawDescriptor, Int16(POLLIN), milliseconds: 0) == 0)
        }
        // The message is gone: F_GETFD fails with EBADF (unless a test running in parallel got
        // the number again, for something else), and the socket is closed.
        var status = stat()
        let stillOpen = fcntl(receivedNumber, F_GETFD) >= 0 && fstat(receivedNumber, &status) == 0
            && status.st_ino == inode
        #expect(!stillOpen)
        #expect(try BeyondLoopback.peerClosed(peer))
    }

    /// Three descriptors into room for two: the kernel installs two and sets MSG_CTRUNC; the two
    /// are owned and closed with the message, the third the kernel closes.
    @Test func truncatedRightsAreStillClosed() throws {
        let channel = try BeyondLoopback.unixPair()
        var ends: [CInt] = []
        var peers: [CInt] = []
        defer { for peer in peers { close(peer) } }
        for _ in 0..<3 {
            let pair = try BeyondLoopback.unixPair(.stream)
            ends.append(pair.first.intoRawDescriptor())
            peers.append(pair.second.intoRawDescriptor())
        }
        _ = try channel.first.sendWithControl([1], control: [.rights(ends)])
        for end in ends { close(end) }
        do {
            let capacity = ControlMessage.space(forDataLength: 4)  // 24 bytes: 16 of header, 2 ints
            let (_, message) = try channel.second.recvWithControl(maxCount: 8, controlCapacity: capacity)
            #expect(message.flags.isControlTruncated())
            try #require(message.control.count == 2)
            guard case .rights(let rights) = message.control[0], case .truncated = message.control[1]
            else { Issue.record("\(message)"); return }
            #expect(rights.count == 2)
        }
        for peer in peers {
            #expect(try BeyondLoopback.peerClosed(SockRef(rawDescriptor: peer)))
        }
    }
}

// MARK: - Credentials, timestamps, packet information, header fields

@Suite struct ReceivedControlMessageTests {
    /// Sends one byte from `sender` to `receiver`'s address with `control`, and receives it with
    /// `capacity` bytes of control room.
    private func exchange(
        from sender: borrowing Socket, to receiver: borrowing Socket,
        control: [ControlMessage] = [], capacity: Int = 256
    ) throws -> ReceivedMessage {
        let destination = try receiver.localAddr()
        #expect(try sender.sendWithControl([7], to: destination, control: control) == 1)
        let (bytes, message) = try receiver.recvWithControl(maxCount: 16, controlCapacity: capacity)
        #expect(bytes == [7])
        return message
    }

    @Test func credentialsOfThisProcess() throws {
        let pair = try BeyondLoopback.unixPair()
        try pair.second.setOption(SOL_SOCKET, SO_PASSCRED, CInt(1))
        // Sent implicitly (SO_PASSCRED on the receiver) …
        _ = try pair.first.send([1])
        let (_, implicit) = try pair.second.recvWithControl(maxCount: 8, controlCapacity: 64)
        // … and explicitly, built by the sender.
        _ = try pair.first.sendWithControl([2], control: [.credentials(pid: getpid(), uid: getuid(), gid: getgid())])
        let (_, explicit) = try pair.second.recvWithControl(maxCount: 8, controlCapacity: 64)
        for message in [implicit, explicit] {
            guard message.control.count == 1, case .credentials(let pid, let uid, let gid) = message.control[0]
            else { Issue.record("\(message)"); continue }
            #expect(pid == getpid())
            #expect(uid == getuid())
            #expect(gid == getgid())
        }
    }

    /// The timestamp of each of two datagrams, read with `extract`: present, close to the
    /// realtime clock, and in order.
    private func timestamps(
        _ option: CInt, _ value: CInt, _ extract: (ReceivedControlMessage) -> Duration?
    ) throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try receiver.setOption(SOL_SOCKET, option, value)
        let before = BeyondLoopback.now()
        let first = try exchange(from: sender, to: receiver)
        let second = try exchange(from: sender, to: receiver)
        let after = BeyondLoopback.now()
        let times = [first, second].map { message in message.control.compactMap(extract) }
        guard times.allSatisfy({ $0.count == 1 }) else { Issue.record("\(first) \(second)"); return }
        #expect(times[0][0] <= times[1][0])
        #expect(times[0][0] >= before - .seconds(1) && times[1][0] <= after + .seconds(1))
    }

    @Test func soTimestampIsPresentAndMonotonic() throws {
        try timestamps(SO_TIMESTAMP, 1) { if case .timestamp(let time) = $0 { time } else { nil } }
    }

    @Test func soTimestampNsIsPresentAndMonotonic() throws {
        try timestamps(SO_TIMESTAMPNS, 1) { if case .timestampNs(let time) = $0 { time } else { nil } }
    }

    @Test func soTimestampingSoftwareIsPresentAndMonotonic() throws {
        let flags = CInt(Kernel.timestampingRxSoftware | Kernel.timestampingSoftware)
        let software = { (message: ReceivedControlMessage) -> Duration? in
            if case .timestamping(let software, let hardware) = message, hardware == nil { software } else { nil }
        }
        // The kernel turns receive timestamps on for the whole system from a work queue, a moment
        // after the first socket asks; datagrams that arrive before carry no SO_TIMESTAMPING
        // (SO_TIMESTAMP fills in the current time instead). Exchange datagrams, at most 1 000,
        // until one carries a timestamp; another socket keeps them on meanwhile.
        let warmUp = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try warmUp.setOption(SOL_SOCKET, SO_TIMESTAMPING, flags)
        var stamped = false
        for _ in 0..<1_000 where !stamped {
            stamped = try exchange(from: sender, to: warmUp).control.contains { software($0) != nil }
        }
        #expect(stamped)
        try timestamps(SO_TIMESTAMPING, flags, software)
    }

    @Test func packetInfoV4NamesLoopback() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try receiver.setOption(CInt(IPPROTO_IP), IP_PKTINFO, CInt(1))
        let message = try exchange(from: sender, to: receiver)
        guard message.control.count == 1,
              case .packetInfoV4(let destination, let index, let spec) = message.control[0]
        else { Issue.record("\(message)"); return }
        #expect(destination == .localhost)
        #expect(spec == .localhost)
        #expect(index == BeyondLoopback.loopbackIndex && index != 0)
    }

    @Test func packetInfoV6NamesLoopback() throws {
        let receiver = try BeyondLoopback.udp(.ipv6)
        let sender = try BeyondLoopback.udp(.ipv6)
        try receiver.setOption(CInt(IPPROTO_IPV6), IPV6_RECVPKTINFO, CInt(1))
        let message = try exchange(from: sender, to: receiver)
        guard message.control.count == 1, case .packetInfoV6(let address, let index) = message.control[0]
        else { Issue.record("\(message)"); return }
        #expect(address == .localhost)
        #expect(index == BeyondLoopback.loopbackIndex && index != 0)
    }

    /// Packet information on a send chooses the interface: loopback works, an interface that
    /// does not exist is refused — so the kernel did read the message.
    @Test func packetInfoOnSendChoosesTheInterface() throws {
        let lo = BeyondLoopback.loopbackIndex
        let receiver4 = try BeyondLoopback.udp(.ipv4)
        let sender4 = try Socket(domain: .ipv4, type: .dgram)
        let message4 = try exchange(from: sender4, to: receiver4,
                                    control: [.packetInfoV4(interfaceIndex: lo, specDestination: .localhost)])
        #expect(message4.address?.asSocketIpv4()?.ip == .localhost)
        #expect(throws: Errno.self) {
            try sender4.sendWithControl([1], to: receiver4.localAddr(), control: [.packetInfoV4(interfaceIndex: 0x7fff_fff0)])
        }
        let receiver6 = try BeyondLoopback.udp(.ipv6)
        let sender6 = try Socket(domain: .ipv6, type: .dgram)
        let message6 = try exchange(from: sender6, to: receiver6,
                                    control: [.packetInfoV6(address: .localhost, interfaceIndex: lo)])
        #expect(message6.address?.asSocketIpv6()?.ip == .localhost)
        #expect(throws: Errno.self) {
            try sender6.sendWithControl([1], to: receiver6.localAddr(), control: [.packetInfoV6(interfaceIndex: 0x7fff_fff0)])
        }
    }

    /// Sends each of `sent` from a socket of `domain` to one with the `receiveOptions` on, and
    /// expects the header fields received to be those sent (and no other message).
    private func headerFields(
        _ domain: Domain, receiveOptions: [(CInt, CInt)], sent: [[ControlMessage]]
    ) throws {
        let receiver = try BeyondLoopback.udp(domain)
        let sender = try BeyondLoopback.udp(domain)
        for (level, name) in receiveOptions { try receiver.setOption(level, name, CInt(1)) }
        for control in sent {
            let message = try exchange(from: sender, to: receiver, control: control)
            #expect(message.control.count == control.count)
            #expect(Set(message.control.compactMap(sendableForm)) == Set(control))
        }
    }

    @Test func tosAndTtlSetBySenderAreReceived() throws {
        try headerFields(.ipv4, receiveOptions: [(CInt(IPPROTO_IP), IP_RECVTOS), (CInt(IPPROTO_IP), IP_RECVTTL)],
                         sent: [[.tosV4(0x28), .ttlV4(42)], [.tosV4(0xB8), .ttlV4(3)]])
    }

    @Test func trafficClassAndHopLimitSetBySenderAreReceived() throws {
        try headerFields(.ipv6, receiveOptions: [(CInt(IPPROTO_IPV6), IPV6_RECVTCLASS), (CInt(IPPROTO_IPV6), IPV6_RECVHOPLIMIT)],
                         sent: [[.trafficClassV6(0x28), .hopLimitV6(7)], [.trafficClassV6(0xB8), .hopLimitV6(200)]])
    }

    /// A control buffer too small for the timestamp: the kernel cuts the message and sets
    /// MSG_CTRUNC; the parser reports both without reading past the buffer.
    @Test func kernelTruncatedMessageIsReported() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try receiver.setOption(SOL_SOCKET, SO_TIMESTAMPNS, CInt(1))
        let message = try exchange(from: sender, to: receiver, capacity: 24)
        #expect(message.flags.isControlTruncated())
        guard message.control.count == 2, case .malformed(let malformed) = message.control[0],
              case .truncated = message.control[1]
        else { Issue.record("\(message)"); return }
        #expect(malformed.problem == .wrongPayloadSize)
        #expect(malformed.type == SO_TIMESTAMPNS_OLD)
        #expect(malformed.data.count == 8)
    }

    /// One control buffer serves many receives, and the data lands in several buffers.
    @Test func reusedControlBufferAndScatteredData() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try receiver.setOption(CInt(IPPROTO_IP), IP_RECVTTL, CInt(1))
        var control = ControlMessageBuffer(capacity: 64)
        var head = [UInt8](repeating: 0, count: 3)
        var tail = [UInt8](repeating: 0, count: 8)
        for round in 0..<3 {
            let ttl = 10 + round
            _ = try sender.sendWithControl(Array("scatter!".utf8), to: receiver.localAddr(), control: [.ttlV4(ttl)])
            let message = try head.withUnsafeMutableBytes { first in
                try tail.withUnsafeMutableBytes { second in
                    try receiver.recvWithControl(into: [first, second], control: &control)
                }
            }
            #expect(message.count == 8)
            #expect(head + tail.prefix(5) == Array("scatter!".utf8))
            #expect(message.address == (try sender.localAddr()))
            guard message.control.count == 1, case .ttlV4(let seen) = message.control[0]
            else { Issue.record("\(message)"); continue }
            #expect(seen == ttl)
            #expect(control.isEmpty && control.capacity == 64)
        }
    }
}
