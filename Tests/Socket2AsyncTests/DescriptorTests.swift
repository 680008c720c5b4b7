import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A pipe's two ends on `reactor`.
private func pipe(_ reactor: Reactor) throws -> (read: AsyncDescriptor, write: AsyncDescriptor) {
    let (read, write) = try FileDescriptor.pipe()
    return (try AsyncDescriptor(takingOwnershipOf: read, reactor: reactor),
            try AsyncDescriptor(takingOwnershipOf: write, reactor: reactor))
}

/// Fills a pipe's buffer until the kernel says it is full; returns the bytes written.
private func fill(_ end: AsyncDescriptor) -> Int {
    let chunk = [UInt8](repeating: 7, count: 4096)
    var total = 0
    while true {
        let count = chunk.withUnsafeBytes { Glibc.write(end.rawDescriptor, $0.baseAddress, $0.count) }
        if count <= 0 { return total }
        total += count
    }
}

extension AsyncTests {
    /// `AsyncSocket` refuses a pipe (`ENOTSOCK`); `AsyncDescriptor` waits on it.
    @Test(arguments: backends)
    func pipeReadabilityAndWritability(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (reader, writer) = try pipe(reactor)
            // Readable: a wait that starts on an empty pipe ends when a byte comes.
            let written = Atomic<Bool>(false)
            let waiter = Task(executorPreference: reactor) {
                try await reader.waitUntilReadable()
                return written.load(ordering: .relaxed)
            }
            try await Task.sleep(for: .milliseconds(20))  // lets the wait start: not a synchronisation
            written.store(true, ordering: .relaxed)
            #expect(try await writer.write(Array("x".utf8)) == 1)
            #expect(try await waiter.value)
            #expect(try await reader.read(maxCount: 16) == Array("x".utf8))

            // Writable: a full pipe becomes writable once the reader takes bytes.
            let full = fill(writer)
            #expect(full > 0)
            let drained = Atomic<Bool>(false)
            let writable = Task(executorPreference: reactor) {
                try await writer.waitUntilWritable()
                return drained.load(ordering: .relaxed)
            }
            try await Task.sleep(for: .milliseconds(20))
            drained.store(true, ordering: .relaxed)
            var taken = 0
            while taken < full { taken += try await reader.read(maxCount: 65536).count }
            #expect(try await writable.value)
            // A write that has to wait for room, from another thread, finishes once room comes.
            _ = fill(writer)
            let blockedWrite = Task { try await writer.write([UInt8](repeating: 1, count: 100)) }
            try await Task.sleep(for: .milliseconds(20))
            _ = try await reader.read(maxCount: 65536)
            #expect(try await blockedWrite.value == 100)
            try await reader.close()
            try await writer.close()
            #expect(reader.rawDescriptor == -1)
        }
    }

    /// An eventfd's counter, read once it is readable.
    @Test(arguments: backends)
    func eventfdWaits(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let fd = sys_eventfd()
            #expect(fd >= 0)
            let event = try AsyncDescriptor(takingOwnershipOf: FileDescriptor(rawValue: CInt(fd)), reactor: reactor)
            let reader = Task(executorPreference: reactor) { () -> UInt64 in
                let bytes = try await event.read(maxCount: 8)
                return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            }
            try await Task.sleep(for: .milliseconds(20))
            let count = try await event.write(withUnsafeBytes(of: UInt64(3)) { Array($0) })
            #expect(count == 8)
            #expect(try await reader.value == 3)
            try await event.close()
        }
    }

    /// A cancelled wait throws `CancellationError` and takes nothing: the byte written later is
    /// there for the next read. A closed descriptor ends a pending wait.
    @Test(arguments: backends)
    func descriptorWaitCancellationLosesNothing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (reader, writer) = try pipe(reactor)
            for executor in [reactor as (any TaskExecutor)?, nil] {
                let waiter = Task(executorPreference: executor) { try await reader.read(maxCount: 1) }
                try await Task.sleep(for: .milliseconds(20))
                waiter.cancel()
                await #expect(throws: CancellationError.self) { try await waiter.value }
                _ = try await writer.write([42])
                #expect(try await reader.read(maxCount: 8) == [42])
            }
            // Under a deadline the wait ends with ETIMEDOUT, taking nothing either.
            await #expect(throws: Errno.timedOut) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) { try await reader.waitUntilReadable() }
            }
            let pending = Task(executorPreference: reactor) { try await reader.waitUntilReadable() }
            try await Task.sleep(for: .milliseconds(20))
            try await reader.close()
            await #expect(throws: ReactorError.socketClosed) { try await pending.value }
            try await writer.close()
        }
    }

    /// Signals sent to the process arrive in the sequence: `kill(getpid(), …)` and `raise(3)`
    /// from a thread that did not receive the signal before. A cancelled wait takes none.
    @Test(arguments: backends)
    func signalsArrive(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 5) { reactor in
            let signals = try Signals([.user1, .user2], reactor: reactor)
            let first = Task(executorPreference: reactor) { () -> Signal? in
                var iterator = signals.makeAsyncIterator()
                return try await iterator.next()
            }
            try await Task.sleep(for: .milliseconds(20))
            kill(getpid(), SIGUSR1)
            #expect(try await first.value == .user1)

            // raise(3) sends to the calling thread: a new thread that does not block the signal
            // (as a thread created before the routing): its handler forwards it.
            let raised = Task { () -> Signal? in
                var iterator = signals.makeAsyncIterator()
                return try await iterator.next()
            }
            let thread = try RaisingThread(SIGUSR2)
            thread.join()
            #expect(try await raised.value == .user2)

            // Cancelled while waiting: the next signal goes to the next wait.
            let cancelled = Task(executorPreference: reactor) { () -> Signal? in
                var iterator = signals.makeAsyncIterator()
                return try await iterator.next()
            }
            try await Task.sleep(for: .milliseconds(20))
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            kill(getpid(), SIGUSR2)
            var iterator = signals.makeAsyncIterator()
            #expect(try await iterator.next() == .user2)
            try await signals.close()
            #expect(throws: Errno.invalidArgument) { try Signals([Signal(rawValue: SIGKILL)], reactor: reactor) }
        }
    }
}

/// A thread that unblocks a signal, raises it on itself, and ends.
private final class RaisingThread: @unchecked Sendable {
    private var thread = pthread_t()

    init(_ signal: CInt) throws {
        let box = Unmanaged.passRetained(SignalBox(signal))
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<SignalBox>.fromOpaque(argument!).takeRetainedValue()
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            sigaddset(&unblocked, box.signal)
            pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
            raise(box.signal)
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw Errno(rawValue: result)
        }
    }

    func join() { pthread_join(thread, nil) }
}

private final class SignalBox {
    let signal: CInt
    init(_ signal: CInt) { self.signal = signal }
}
