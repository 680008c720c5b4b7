import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
/// `MSG_DONTWAIT` asks a call not to wait, and an async operation given it does not: where it
/// would wait it throws `EAGAIN` at once, from a task on the reactor or off it, on either
/// backend. (io_uring passed the flag to the kernel, which failed the request with `EAGAIN`,
/// and submitted it again, and again: the operation spun on a core until bytes came.)
@Suite("Operations given MSG_DONTWAIT")
struct DontWaitTests {
    @Test("A receive with nothing there throws EAGAIN, on the reactor or off it; with bytes there it takes them",
          arguments: backends)
    func streamReceive(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(100)
            await #expect(throws: Errno.wouldBlock) { try await server.recv(into: buffer.raw, flags: .dontWait) }
            try await Task(executorPreference: reactor) {
                await #expect(throws: Errno.wouldBlock) { try await server.recv(into: buffer.raw, flags: .dontWait) }
                try await client.sendAll(pattern(10))
                waitForInput(server)
                #expect(try await server.recv(into: buffer.raw, flags: .dontWait) == 10)
                #expect(buffer.prefix(10) == pattern(10))
                await #expect(throws: Errno.wouldBlock) { try await server.recv(into: buffer.raw, flags: .dontWait) }
            }.value
            try await client.sendAll(pattern(20, seed: 1))
            waitForInput(server)
            #expect(try await server.recv(into: buffer.raw, flags: [.dontWait, .peek]) == 20)
            #expect(try await server.recv(into: buffer.raw, flags: .dontWait) == 20)
            #expect(buffer.prefix(20) == pattern(20, seed: 1))
            #expect(await pendingOperations(reactor) == 0)
            try await client.close()
            try await server.close()
        }
    }

    @Test("Behind a receive that waits, a receive given MSG_DONTWAIT throws EAGAIN; the waiting one gets the bytes",
          arguments: backends)
    func behindAWaitingReceive(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(100)
            async let waiting = server.recv(maxCount: 100)
            await waitUntilPending(reactor)
            await #expect(throws: Errno.wouldBlock) { try await server.recv(into: buffer.raw, flags: .dontWait) }
            try await client.sendAll(pattern(30))
            #expect(try await waiting == pattern(30))
            #expect(await pendingOperations(reactor) == 0)
            try await client.close()
            try await server.close()
        }
    }

    @Test("recvFrom and recvMsg with no datagram throw EAGAIN; with one they take it and its sender", arguments: backends)
    func datagrams(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, target) = try udpSocket(reactor)
            let (sender, senderAddress) = try udpSocket(reactor)
            let buffer = TestBuffer(2048)
            try await Task(executorPreference: reactor) {
                await #expect(throws: Errno.wouldBlock) { _ = try await receiver.recvFrom(into: buffer.raw, flags: .dontWait) }
                await #expect(throws: Errno.wouldBlock) { _ = try await receiver.recvMsg(into: [buffer.raw], flags: .dontWait) }
                _ = try await sender.sendTo(pattern(50), to: target)
                waitForInput(receiver)
                let (count, from) = try await receiver.recvFrom(into: buffer.raw, flags: .dontWait)
                #expect(count == 50 && from == senderAddress)
                _ = try await sender.sendTo(pattern(60, seed: 1), to: target)
                waitForInput(receiver)
                let message = try await receiver.recvMsg(into: [buffer.raw], flags: .dontWait)
                #expect(message.count == 60 && message.address == senderAddress)
                #expect(buffer.prefix(60) == pattern(60, seed: 1))
            }.value
            await #expect(throws: Errno.wouldBlock) { _ = try await receiver.recvFrom(into: buffer.raw, flags: .dontWait) }
            #expect(await pendingOperations(reactor) == 0)
            try await receiver.close()
            try await sender.close()
        }
    }

    @Test("A send into a full socket throws EAGAIN; a send without the flag then waits for room", arguments: backends)
    func sendIntoAFullSocket(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try client.setSendBufferSize(64 << 10)
            try server.setRecvBufferSize(64 << 10)
            let block = TestBuffer(pattern(4096))
            var sent = 0
            var full = false
            // The kernel's buffers hold at most a few hundred KiB however they are sized.
            while !full && sent < 64 << 20 {
                do {
                    sent += try await client.send(block.readOnly, flags: .dontWait)
                } catch let error as Errno where error == .wouldBlock {
                    full = true
                }
            }
            #expect(full)
            await Task(executorPreference: reactor) {
                // The first is tried directly and marks the socket full; the second then goes
                // through the backend (the ring on io_uring), which must not mark it writable.
                for _ in 0..<2 {
                    _ = await #expect(throws: Errno.wouldBlock) { _ = try await client.send(block.readOnly, flags: .dontWait) }
                    #expect(!client.io.writeReady)
                }
            }.value
            async let more = client.send(block.readOnly)
            let received = try await recvExactly(server, sent)
            #expect(received.count == sent)
            let last = try await more
            #expect(try await recvExactly(server, last) == Array(pattern(4096).prefix(last)))
            #expect(await pendingOperations(reactor) == 0)
            try await client.close()
            try await server.close()
        }
    }
}
}
