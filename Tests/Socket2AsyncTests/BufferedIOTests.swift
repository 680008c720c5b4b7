import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A reader handed from one task to another in a test (one task uses it at a time).
final class ReaderBox: @unchecked Sendable {
    let reader: BufferedReader
    init(_ reader: BufferedReader) { self.reader = reader }
}

/// An actor that reads lines under a deadline: the reader is its state.
actor LineClient {
    let reader: BufferedReader
    init(_ socket: AsyncSocket) { reader = BufferedReader(socket) }
    func next() async throws -> String? {
        try await AsyncSocket.withTimeout(.seconds(10)) { try await reader.readLine(maxLength: 64) }
    }
}

extension AsyncTests {
    /// A line protocol on loopback: the server answers each line through a buffered writer and
    /// flushes when the reader has nothing more buffered; the client pipelines 2,000 lines in a
    /// few large sends and reads the answers with its own reader.
    @Test(arguments: backends)
    func lineEchoOverLoopback(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let serving = Task(executorPreference: reactor) {
                let reader = BufferedReader(server)
                let writer = BufferedWriter(server, capacity: 512)
                while let line = try await reader.readLine(maxLength: 100, allowingCRLF: true) {
                    try await writer.write("echo ")
                    try await writer.write(line)
                    try await writer.write(UInt8(ascii: "\n"))
                    if reader.bufferedByteCount == 0 { try await writer.flush() }
                }
                try await writer.flush()
                try await server.shutdown(.write)
            }
            let count = 2000
            let lines = (0..<count).map { "line \($0)" + String(repeating: "x", count: $0 % 50) }
            let sending = Task(executorPreference: reactor) {
                var batch = ""
                for (index, line) in lines.enumerated() {
                    batch += line + (index % 2 == 0 ? "\r\n" : "\n")
                    if batch.utf8.count > 20_000 {
                        try await client.sendAll(batch)
                        batch = ""
                    }
                }
                try await client.sendAll(batch)
                try await client.shutdown(.write)
            }
            let received = try await Task(executorPreference: reactor) {
                let reader = BufferedReader(client)
                var received: [String] = []
                while let line = try await reader.readLine(maxLength: 200) { received.append(line) }
                return received
            }.value
            try await sending.value
            try await serving.value
            #expect(received == lines.map { "echo " + $0 })
        }
    }

    /// Every kind of read over a real socket, the peer sending in pieces.
    @Test(arguments: backends)
    func everyKindOfReadOverASocket(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let frame: [UInt8] = [0, 0, 0, 3, 7, 8, 9]
            let sending = Task {
                for piece in [Array("GET /\r".utf8), Array("\nabc".utf8), Array("defgh;".utf8), frame, [0xFF]] {
                    try await client.sendAll(piece)
                }
                try await client.shutdown(.write)
            }
            let reader = BufferedReader(server)
            #expect(try await reader.readLine(maxLength: 10, allowingCRLF: true) == "GET /")
            #expect(try await reader.read(count: 3) == Array("abc".utf8))
            #expect(try await reader.read(upTo: UInt8(ascii: ";"), maxLength: 5) == Array("defgh".utf8))
            #expect(try await reader.readFrame(prefix: .uint32, maxLength: 16) == [7, 8, 9])
            await #expect(throws: BufferedReaderError.endOfStream(partial: [0xFF])) {
                try await reader.readFrame(prefix: .uint16, maxLength: 16)
            }
            #expect(try await reader.readLine() == nil)
            try await sending.value
        }
    }

    /// A read that times out, and one that is cancelled, lose no byte: what they had buffered
    /// is there for the next read.
    @Test(arguments: backends)
    func aTimedOutOrCancelledReadLosesNothing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let reader = BufferedReader(server)
            try await client.sendAll("hel")
            await #expect(throws: Errno.timedOut) {
                try await AsyncSocket.withTimeout(.milliseconds(50)) { try await reader.readLine() }
            }
            #expect(reader.bufferedByteCount == 3)
            try await client.sendAll("lo\nwor")
            #expect(try await reader.readLine() == "hello")

            let box = ReaderBox(reader)
            let waiting = Task(executorPreference: reactor) { try await box.reader.readLine() }
            await waitUntilPending(reactor)
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            #expect(reader.bufferedByteCount == 3)
            try await client.sendAll("ld\n")
            #expect(try await reader.readLine() == "world")
        }
    }

    /// The reader works inside `withTimeout` from an actor and from a detached task.
    @Test(arguments: backends)
    func readingUnderADeadlineFromAnyIsolation(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll("from an actor\n")
            let actor = LineClient(server)
            #expect(try await actor.next() == "from an actor")
            try await client.sendAll("from a detached task\n")
            let detached = try await Task.detached {
                let reader = BufferedReader(server)
                return try await AsyncSocket.withTimeout(.seconds(10)) { try await reader.readLine() }
            }.value
            #expect(detached == "from a detached task")
        }
    }

    /// Small writes of every kind reach the peer only on flush (or when the buffer fills), in
    /// order.
    @Test(arguments: backends)
    func writerCoalescesUntilFlush(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let writer = BufferedWriter(client, capacity: 64)
            try await writer.write(UInt8(ascii: "a"))
            try await writer.write([UInt8]("bc".utf8))
            try await writer.write("dé")
            try await writer.write(Array("fg".utf8).span.bytes)
            try await writer.write((0..<3).lazy.map { UInt8(ascii: "h") + UInt8($0) })   // not contiguous
            try await writer.write(Array("xyz".utf8)[1...])
            let expected = Array("abcdéfghijyz".utf8)
            #expect(writer.bufferedByteCount == expected.count)
            var probe = [UInt8](repeating: 0, count: 64)
            #expect(recv(server.rawDescriptor, &probe, probe.count, CInt(MSG_DONTWAIT)) == -1)   // nothing sent yet
            try await writer.flush()
            #expect(writer.bufferedByteCount == 0)
            #expect(try await recvExactly(server, expected.count) == expected)

            // Past the capacity: the buffer is sent as it fills, everything arrives in order.
            let large = pattern(1000)
            try await writer.write(large)
            #expect(writer.bufferedByteCount < 64)
            try await writer.flush()
            #expect(try await recvExactly(server, large.count) == large)
        }
    }

    /// A flush that times out keeps what it did not send; the next flush sends it, in order.
    /// (The peer does not read until then: the kernel takes a few hundred KiB of the 1 MiB.)
    @Test(arguments: backends)
    func aFlushThatTimesOutKeepsTheRest(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            setBufferSize(client, SO_SNDBUF, 4096)   // the kernel takes far less than 1 MiB
            let bytes = pattern(1 << 20, seed: 3)
            let writer = BufferedWriter(client, capacity: bytes.count, keepsBuffer: false)
            try await writer.write(bytes)
            await #expect(throws: Errno.timedOut) {
                try await AsyncSocket.withTimeout(.milliseconds(50)) { try await writer.flush() }
            }
            let left = writer.bufferedByteCount
            #expect(left > 0 && left < bytes.count)
            setBufferSize(client, SO_SNDBUF, 1 << 20)   // many small sends would make the rest slow
            let reading = Task { try await recvExactly(server, bytes.count) }
            try await writer.flush()
            #expect(writer.bufferedByteCount == 0)
            #expect(try await reading.value == bytes)
        }
    }

    /// `sendAll` for strings, spans, slices and sequences that are not contiguous, large enough
    /// to wait.
    @Test(arguments: backends)
    func sendAllOfEveryKind(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let large = pattern(300_000, seed: 5)
            let text = String(repeating: "é-ü ", count: 50_000)
            let expected = Array(text.utf8) + large + large[1000...] + Array(large.prefix(100_000)) + Array("ok".utf8)
            let reading = Task { try await recvExactly(server, expected.count) }
            try await client.sendAll(text)
            try await client.sendAll(large.span.bytes)
            try await client.sendAll(large[1000...])
            try await client.sendAll(large.prefix(100_000).lazy.map { $0 })
            try await client.sendAll("ok")
            #expect(try await reading.value == expected)
        }
    }
}
