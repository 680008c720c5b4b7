// This file imports Socket2Async alone (no Socket2, no SystemPackage): `Errno` comes with it.
import Socket2Async
import Testing

/// A call that throws `Errno` by its type, on a socket named through Socket2Async alone.
private func refuseTtl(_ socket: AsyncSocket) throws(Errno) {
    try socket.setTtlV4(0)
}

extension AsyncTests {
    @Test("Errno is usable with import Socket2Async alone", arguments: backends)
    func errnoWithSocket2AsyncAlone(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let socket = try AsyncSocket(domain: .ipv4, type: .dgram, reactor: reactor)
            var caught: Errno?
            do throws(Errno) {
                try refuseTtl(socket)
            } catch .invalidArgument {
                caught = .invalidArgument
            } catch {
                Issue.record("unexpected \(error)")
            }
            #expect(caught == .invalidArgument)
            do {
                try await AsyncSocket.withTimeout(.milliseconds(1)) {
                    _ = try await socket.recv(maxCount: 1)
                }
                Issue.record("a receive with nothing to receive returned")
            } catch let error as Errno {
                #expect(error == .timedOut)
            }
        }
    }
}
