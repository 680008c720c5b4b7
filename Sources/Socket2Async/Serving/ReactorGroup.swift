#if canImport(Glibc)
import Glibc
#endif
import Socket2
import Synchronization

/// Several reactors, one per core by default: a server scales across cores with its listening
/// socket shared by the reactors (``listen(on:options:)``, ``serve(on:options:ready:_:)``) and
/// each connection's task on the reactor that accepted it.
public final class ReactorGroup: Sendable {
    /// The reactors, each with its own thread.
    public let reactors: [Reactor]
    private let counter = Atomic<UInt>(0)

    /// One reactor per online processor (`sysconf(_SC_NPROCESSORS_ONLN)`).
    public static var defaultCount: Int { onlineProcessorCount() }

    /// Starts `count` reactors (default: one per online processor) with `backend` and
    /// `configuration` (each reactor has rings and a receive pool of its own of those sizes).
    public init(
        count: Int = ReactorGroup.defaultCount, backend: Reactor.Backend = .automatic,
        configuration: Reactor.Configuration = Reactor.Configuration()
    ) throws {
        let options = try ReactorOptions(configuration)
        var reactors: [Reactor] = []
        do {
            for _ in 0..<max(count, 1) { reactors.append(try Reactor(backend: backend, options: options)) }
        } catch {
            for reactor in reactors { reactor.shutdown() }
            throw error
        }
        self.reactors = reactors
    }

    /// The next reactor, round robin.
    public func next() -> Reactor {
        reactors[Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(reactors.count))]
    }

    /// Shuts every reactor down (see ``Reactor/shutdown()``).
    public func shutdown() {
        for reactor in reactors { reactor.shutdown() }
    }
}
