// Clocks, CPU time, pinning and threads: the few operating-system facts the servers and the
// load generator share.
#if canImport(Glibc)
import Glibc
#endif
import CBenchSupport

/// An error of the benchmark harness itself, with a message for the reader.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    clockNanos(CLOCK_MONOTONIC)
}

/// CPU time of the whole process, all threads, user and system (`CLOCK_PROCESS_CPUTIME_ID`).
public func processCPUNanos() -> UInt64 {
    clockNanos(CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
public func threadCPUNanos() -> UInt64 {
    clockNanos(CLOCK_THREAD_CPUTIME_ID)
}

@inline(__always)
func clockNanos(_ clock: clockid_t) -> UInt64 {
    var time = timespec()
    clock_gettime(clock, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Sleeps for `seconds` (nanosleep, restarted after signals).
public func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Pins the calling thread, and every thread it starts afterwards, to `cpu`.
public func pinCurrentThread(toCPU cpu: Int) throws {
    if cbench_pin_to_cpu(CInt(cpu)) != 0 {
        throw BenchError("sched_setaffinity(cpu \(cpu)) failed: errno \(errno)")
    }
}

/// CPUs this process may run on.
public func allowedCPUCount() -> Int {
    Int(max(1, cbench_allowed_cpus()))
}

/// CPUs online in the machine (`sysconf(_SC_NPROCESSORS_ONLN)`).
public func onlineCPUCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// A joinable POSIX thread running `body`.
public struct JoinableThread: Sendable {
    private let thread: pthread_t

    /// Starts `body` on a new thread.
    public init(_ body: @escaping @Sendable () -> Void) throws {
        final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            box.body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            throw BenchError("pthread_create failed: \(result)")
        }
        self.thread = thread
    }

    /// Waits for the thread to end.
    public func join() {
        pthread_join(thread, nil)
    }

    /// Lets the thread end on its own, never joined.
    public func detach() {
        pthread_detach(thread)
    }
}

/// A counting semaphore (`sem_t`) for handing a result from one thread to another.
public final class Semaphore: @unchecked Sendable {
    // The semaphore must not move: it lives in its own allocation.
    private let semaphore: UnsafeMutablePointer<sem_t>

    public init(value: UInt32 = 0) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, value)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    public func signal() { sem_post(semaphore) }

    public func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }

    /// Waits at most `seconds`; returns false on timeout.
    public func wait(seconds: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanos = Int(deadline.tv_nsec) + Int(seconds * 1e9)
        deadline.tv_sec += nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        while true {
            if sem_timedwait(semaphore, &deadline) == 0 { return true }
            if errno != EINTR { return false }
        }
    }
}

/// Writes a line to standard error, unbuffered.
public func printError(_ line: String) {
    writeAll(2, line + "\n")
}

/// Writes all of `text` to `fd`.
public func writeAll(_ fd: CInt, _ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 { if errno == EINTR { continue }; return }
            offset += written
        }
    }
}

/// Reads lines from a descriptor, blocking.
public struct LineReader {
    private let fd: CInt
    private var buffer: [UInt8] = []

    public init(fd: CInt) { self.fd = fd }

    /// The next line without its newline, or nil at end of file.
    public mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}
