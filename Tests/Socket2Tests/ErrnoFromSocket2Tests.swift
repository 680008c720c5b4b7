// This file imports Socket2 alone (no SystemPackage, no Glibc): `Errno` comes with it.
import Socket2
import Testing

/// A call that throws `Errno` by its type: a receive on an empty non-blocking socket.
func receiveFromEmpty() throws(Errno) -> [UInt8] {
    let pair = try Socket.pair(domain: .unix, type: .dgram)
    try pair.first.setNonblocking(true)
    return try pair.first.recv(maxCount: 1)
}

@Suite struct ErrnoFromSocket2AloneTests {
    @Test func errnoCasesAreCaughtByName() {
        var caught = false
        do throws(Errno) {
            _ = try receiveFromEmpty()
        } catch .resourceTemporarilyUnavailable {
            caught = true
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(caught)
    }

    @Test func errnoIsATypeInScope() {
        let error: Errno = .wouldBlock
        #expect(error == Errno.resourceTemporarilyUnavailable)
        #expect(throws: Errno.wouldBlock) { try receiveFromEmpty() }
    }
}
