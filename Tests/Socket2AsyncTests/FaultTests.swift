import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
@Suite("Faults")
struct FaultTests {
    @Test("Refused connects, resets and broken pipes are plain errors; the reactor goes on", arguments: backends)
    func socketFailures(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // A port nobody listens on.
            let (unused, unusedAddress) = try tcpListener(reactor)
            try await unused.close()
            let refused = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            await #expect(throws: Errno.connectionRefused) { try await refused.connect(unusedAddress) }

            // The peer resets the connection (SO_LINGER 0, then close).
            let (client, server) = try await tcpPair(reactor)
            let pending = Task(executorPreference: reactor) { try await client.recv(maxCount: 16) }
            await waitUntilPending(reactor)
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(server.rawDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            try await server.close()
            await #expect(throws: Errno.connectionReset) { try await pending.value }

            // Sending to a peer that closed: EPIPE (no SIGPIPE), or ECONNRESET.
            let (writer, reader) = try await tcpPair(reactor)
            try await reader.close()
            var failure: (any Error)?
            for _ in 0..<100 {
                do { try await writer.sendAll([UInt8](repeating: 1, count: 4096)) } catch { failure = error; break }
            }
            let errno = try #require(failure as? Errno)
            #expect(errno == .brokenPipe || errno == .connectionReset)

            // The reactor still serves other sockets.
            let (a, b) = try await tcpPair(reactor)
            try await a.sendAll([1, 2, 3])
            #expect(try await recvExactly(b, 3) == [1, 2, 3])
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("IPv6 loopback echo", arguments: backends)
    func ipv6(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let listener = try AsyncSocket(domain: .ipv6, type: .stream, reactor: reactor)
            try listener.bind(SockAddr(SocketAddrV6(.localhost, 0)))
            try listener.listen(8)
            let address = try listener.localAddr()
            let client = try AsyncSocket(domain: .ipv6, type: .stream, reactor: reactor)
            async let accepted = listener.accept()
            try await client.connect(address)
            let (server, peer) = try await accepted
            #expect(peer.isIpv6())
            try await client.sendAll([7, 8])
            #expect(try await recvExactly(server, 2) == [7, 8])
        }
    }
}
}

extension AsyncTests.FaultTests {
    @Test("Connecting to a full Unix listener waits, backs off, and can be cancelled", arguments: backends)
    func fullUnixListener(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let address = try SockAddr.unixAbstract(Array("socket2-async-full-\(getpid())-\(backend)".utf8))
            let listener = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            try listener.bind(address)
            try listener.listen(0)
            // One connection fills a backlog of 0; the next connect(2) says EAGAIN.
            let first = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            try await first.connect(address)
            let cancelled = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            let waiting = Task { try await cancelled.connect(address) }
            await waitUntilPending(reactor)
            waiting.cancel()
            await expectCancelled(waiting)
            let second = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            let connecting = Task { try await second.connect(address) }
            await waitUntilPending(reactor)
            // While the queue stays full the reactor retries now and then, never in a busy loop
            // (a measurement window, not a synchronisation: nothing waits for it).
            let cpuBefore = threadCPUNanoseconds(of: reactor)
            try await Task.sleep(for: .milliseconds(50))
            #expect(threadCPUNanoseconds(of: reactor) - cpuBefore < 25_000_000)
            // Room in the queue: the retried connect gets through.
            let (accepted, _) = try await listener.accept()
            try await connecting.value
            try await second.sendAll([5])
            let (secondAccepted, _) = try await listener.accept()
            #expect(try await recvExactly(secondAccepted, 1) == [5])
            withExtendedLifetime(accepted) {}
        }
    }
}
