import Synchronization

/// The key-value map, shared by every connection of every reactor of the server's group.
///
/// Why a `Mutex` and not an actor: the connections run on several reactor threads at once
/// (a `ReactorGroup` hands each connection to a reactor in turn). An actor bound to one
/// reactor (`unownedExecutor`) would make the connections of every other reactor hop to that
/// thread and back for each command; a default actor hops off every reactor. A command holds
/// the lock only for one dictionary operation and never suspends inside it, so the lock is
/// cheap, never held across an `await`, and the store is usable from any thread.
public final class Store: Sendable {
    private let entries = Mutex<[String: String]>([:])

    public init() {}

    public func get(_ key: String) -> String? { entries.withLock { $0[key] } }

    public func set(_ key: String, _ value: String) { entries.withLock { $0[key] = value } }

    /// Removes `key`; whether it was there.
    public func delete(_ key: String) -> Bool { entries.withLock { $0.removeValue(forKey: key) != nil } }

    public var count: Int { entries.withLock { $0.count } }
}
