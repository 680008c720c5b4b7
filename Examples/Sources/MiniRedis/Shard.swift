import Socket2
import Socket2Async

/// The limits of a server.
public struct Configuration: Sendable {
    /// The largest bulk argument (Redis's `proto-max-bulk-len`, 512 MiB there).
    public var maxBulk = 64 << 20
    /// The most a connection may buffer of one request, its arguments' bookkeeping included
    /// (Redis's `client-query-buffer-limit`, 1 GiB there): a client past it is closed.
    public var maxRequest: Int { 2 * maxBulk + (1 << 20) }
    /// Undelivered pub/sub messages a subscriber may have before it is closed (Redis's
    /// `client-output-buffer-limit pubsub`, 32 MiB).
    public var maxPending = 32 << 20
    /// How often each shard removes expired keys.
    public var sweepInterval: Duration = .milliseconds(100)

    public init() {}
}

/// One client connection: its socket, buffers, parser and subscriptions. Used by its shard only
/// (on its reactor's thread).
final class Connection {
    let socket: AsyncSocket
    /// What `HELLO` reports.
    let id: Int
    /// Received bytes that could not be run in the receive that lent them: the tail of an
    /// incomplete request, or requests that wait on another shard or on a write. Empty, and
    /// without memory, while the connection is idle.
    let input = ByteBuffer()
    let output = ByteBuffer()
    var parser: RequestParser
    var subscriptions: Set<Key> = []
    /// Pub/sub messages not yet written, while a write is under way.
    var pending: [UInt8] = []
    var writing = false
    var closing = false

    /// Replies are written when this much has gathered, and an output buffer grown past it
    /// shrinks back after the write.
    static let flushSize = 64 << 10

    init(socket: AsyncSocket, id: Int, maxBulk: Int) {
        self.socket = socket
        self.id = id
        self.parser = RequestParser(maxBulk: maxBulk)
    }
}

/// A reference that crosses to another shard while its owner waits for the call to return.
struct Lent<T>: @unchecked Sendable {
    let value: T
}

/// One shard of the key space, and the connections of one reactor: an actor whose executor is
/// its reactor, so that its connections run the commands on keys it owns without a lock or a
/// thread hop, and a command on another shard's keys is one `await` on that shard.
///
/// Keys are spread over the shards by a hash of their bytes. Pub/sub channels are not sharded:
/// each shard knows its own connections' subscriptions, and `PUBLISH` visits every shard.
public actor Shard {
    public let reactor: Reactor
    public let index: Int
    let configuration: Configuration
    var store = Store()
    private var peers: [Shard] = []
    private var channels: [Key: [Connection]] = [:]
    private var connectionCount = 0

    public nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }

    public init(reactor: Reactor, index: Int, configuration: Configuration) {
        self.reactor = reactor
        self.index = index
        self.configuration = configuration
    }

    /// Tells the shard about all shards (itself included), by index.
    func join(_ shards: [Shard]) { peers = shards }

    /// The index of the shard that owns `key` (FNV-1a of its bytes).
    @inline(__always)
    private func owner(_ key: UnsafeRawBufferPointer) -> Int {
        if peers.count == 1 { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(hash % UInt64(peers.count))
    }

    // MARK: Expiry

    /// Removes expired keys every `sweepInterval` until cancelled (on the reactor's thread: a
    /// sleep that resumes on this actor's executor).
    func sweepExpiredKeys() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.sweepInterval) } catch { return }
            while store.sweep(now: monotonicMilliseconds()).more {
                await Task.yield()  // a large backlog of expired keys does not stall clients
            }
        }
    }

    // MARK: Serving a connection

    /// Serves `socket` until the client leaves, sends `QUIT` or malformed input, or the reactor
    /// stops; then closes it. Call it from a task on the shard's reactor (`ReactorGroup.serve`
    /// runs handlers there): it returns once reading has started.
    ///
    /// The connection is read by a handler (`AsyncSocket.startReading`): while it is idle it
    /// holds no task, only its socket, its `Connection` and the closure. The handler runs the
    /// requests straight from the lent bytes and writes the replies with a non-blocking send;
    /// what has to wait (a reply the kernel cannot take at once, a request on another shard's
    /// keys, the rest of a request that spans reads, the end of the connection) goes to a task,
    /// which reads again when it is done (`finishInTask`).
    ///
    /// The handler and the task enter the shard synchronously (`assumeIsolated`: both run on the
    /// thread of the actor's executor, whose `checkIsolated` accepts it).
    public nonisolated func serve(_ socket: AsyncSocket) async {
        // As redis-server does: replies go out at once, not held back by Nagle's algorithm until
        // the client acknowledges the previous segment. A pipelined batch whose requests arrive
        // in two reads is answered in two sends, and the client, having nothing to send until it
        // has every reply, delays that acknowledgement by up to 40 ms (measured: a batch of 16
        // SETs waited 44 ms; io_uring -P 16 ran at a third of epoll's rate). A failure here only
        // means a connection that is already gone, which the read finds out.
        try? socket.setTcpNodelay(true)
        await read(onShard { $0.open(socket) })
    }

    /// Starts reading `connection` with a handler (see `serve`).
    private nonisolated func read(_ connection: Lent<Connection>) async {
        let socket = connection.value.socket
        do {
            try await socket.startReading { bytes, error in
                if error != nil {
                    // The client left (a reset) or the reactor stopped: nothing to answer.
                    self.onShard { $0.forget(connection.value) }
                    socket.closeInBackground()
                    return .stopReading
                }
                let received = bytes.withUnsafeBytes { raw in
                    let lent = Lent(value: raw)
                    return self.onShard { $0.take(lent.value, connection.value) }
                }
                if received == .taken && connection.value.input.isEmpty && self.onShard({ $0.writeNow(connection.value) }) {
                    return .keepReading
                }
                Task(executorPreference: socket.reactor) { await self.finishInTask(connection, received) }
                return .stopReading
            }
        } catch {
            onShard { $0.forget(connection.value) }
            socket.closeInBackground()
        }
    }

    /// What a read left to a task: the requests in the input (some on other shards), writing the
    /// replies, the end of the connection; then reading again.
    private nonisolated func finishInTask(_ connection: Lent<Connection>, _ received: Received) async {
        do {
            var keepOpen = received != .close
            if keepOpen && !connection.value.input.isEmpty { keepOpen = await runRequests(connection) }
            if !connection.value.output.isEmpty { try await Self.flush(connection.value) }
            if keepOpen && received != .ended && !connection.value.closing {
                if connection.value.input.isEmpty { connection.value.input.shrink(to: 0) }
                await read(connection)
                return
            }
        } catch {
            // The client left (a reset) or the reactor stopped: nothing to answer.
        }
        onShard { $0.forget(connection.value) }
        try? await connection.value.socket.close()
    }

    /// Runs `body` on this shard from code on its reactor's thread that is not isolated to it
    /// (a task that prefers the reactor); traps anywhere else.
    private nonisolated func onShard<T: Sendable>(_ body: (isolated Shard) -> T) -> T {
        assumeIsolated(body)
    }

    /// A new connection of this shard.
    private func open(_ socket: AsyncSocket) -> Lent<Connection> {
        connectionCount += 1
        return Lent(value: Connection(
            socket: socket, id: connectionCount * peers.count + index, maxBulk: configuration.maxBulk))
    }

    /// What became of the bytes a receive lent.
    private enum Received {
        /// All run, or kept in the connection's input to run after the receive.
        case taken
        /// The stream ended (the requests before the end still run).
        case ended
        /// The connection must close once the replies so far are written.
        case close
    }

    /// Runs the requests in `bytes` (lent by a receive) that can run at once, appending their
    /// replies to the output, and copies the rest into the connection's input: the tail of an
    /// incomplete request, or everything from a request that must wait (on another shard, or
    /// for a write of the output). Bytes that come while the input holds some join it.
    private func take(_ bytes: UnsafeRawBufferPointer, _ connection: Connection) -> Received {
        if bytes.isEmpty { return .ended }
        let input = connection.input
        if !input.isEmpty {
            input.append(bytes)
            return .taken
        }
        var offset = 0
        requests: while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            // Inline commands are unescaped in place: in the input, which is the server's.
            guard let outcome = connection.parser.parse(readOnly: rest) else { break requests }
            switch outcome {
            case .incomplete(let needed):
                if exceedsQueryLimit(needed, connection) { return .close }
                input.append(rest)
                return .taken
            case .empty(let length):
                offset += length
            case .error(let error):
                connection.output.appendProtocolError(error)
                return .close
            case .request(let length):
                let request = Request(base: rest.baseAddress!, arguments: connection.parser.arguments)
                switch runHere(request, connection) {
                case .done: offset += length
                case .quit: return .close
                case .needsOtherShards: input.append(rest); return .taken
                }
                if connection.output.count >= Connection.flushSize { break requests }  // written first
            }
        }
        input.append(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        return .taken
    }

    /// Whether an incomplete request that needs `needed` bytes is past the query buffer limit
    /// (then the connection closes without a reply, as Redis closes it). What arrived is all a
    /// connection holds: one that announces a large bulk and sends nothing holds nothing.
    private func exceedsQueryLimit(_ needed: Int, _ connection: Connection) -> Bool {
        let bookkeeping = connection.parser.arguments.count * MemoryLayout<RequestParser.Argument>.stride
        return needed + bookkeeping > configuration.maxRequest
    }

    /// Runs every complete request in the connection's input, appending the replies to its
    /// output; false when the connection must close.
    private func runRequests(_ lent: Lent<Connection>) async -> Bool {
        let connection = lent.value
        let input = connection.input
        let output = connection.output
        while !input.isEmpty {
            switch connection.parser.parse(input.readable) {
            case .incomplete(let needed):
                return !exceedsQueryLimit(needed, connection)
            case .empty(let length):
                input.consume(length)
            case .error(let error):
                output.appendProtocolError(error)
                return false
            case .request(let length):
                let keepOpen = await run(
                    Request(base: input.readable.baseAddress!, arguments: connection.parser.arguments), connection)
                input.consume(length)
                if !keepOpen { return false }
                if output.count >= Connection.flushSize {
                    do { try await Self.flush(connection) } catch { return false }
                }
            }
        }
        return true
    }

    /// What `runHere` did with a request.
    private enum Ran {
        case done
        /// `QUIT`: the connection must close.
        case quit
        /// Nothing yet: the request has keys another shard owns, or publishes to other shards.
        case needsOtherShards(Command)
    }

    /// Runs one request; false when the connection must close (`QUIT`).
    private func run(_ request: Request, _ connection: Connection) async -> Bool {
        switch runHere(request, connection) {
        case .done: return true
        case .quit: return false
        case .needsOtherShards(let command):
            await runAcrossShards(command, request, connection)
            return true
        }
    }

    /// Runs the parts of `run` that `runHere` leaves.
    private func runAcrossShards(_ command: Command, _ request: Request, _ connection: Connection) async {
        let out = connection.output
        switch command {
        case .get, .set, .incr, .decr, .expire, .ttl:
            await peers[owner(request[1])].run(command, Lent(value: request), into: Lent(value: out))
        case .del, .exists, .mget, .mset:
            await runOnKeys(command, request, into: out)
        case .publish:
            let receivers = await publish(request[1], request[2])
            out.appendInteger(receivers)
        default:
            preconditionFailure("\(command.name) runs on its shard")
        }
    }

    /// Runs one request if it needs no other shard (without suspending, so that it may run in
    /// bytes a receive lends).
    private func runHere(_ request: Request, _ connection: Connection) -> Ran {
        let out = connection.output
        guard let command = Command(request[0]) else {
            out.appendUnknownCommand(request)
            return .done
        }
        guard command.accepts(request.count) else {
            out.appendArityError(command.name.description)
            return .done
        }
        if !connection.subscriptions.isEmpty && !command.allowedWhileSubscribed {
            out.appendError(
                "Can't execute '\(command.name)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            return .done
        }
        switch command {
        case .get, .set, .incr, .decr, .expire, .ttl:
            guard owner(request[1]) == index else { return .needsOtherShards(command) }
            store.run(command, request, into: out, now: monotonicMilliseconds())
        case .del, .exists, .mget, .mset:
            if command == .mset && request.count % 2 == 0 {
                out.appendArityError("mset")
                return .done
            }
            let step = command == .mset ? 2 : 1
            for i in stride(from: 1, to: request.count, by: step) where owner(request[i]) != index {
                return .needsOtherShards(command)
            }
            store.run(command, request, into: out, now: monotonicMilliseconds())
        case .ping:
            guard request.count <= 2 else {
                out.appendArityError("ping")
                return .done
            }
            if connection.subscriptions.isEmpty {
                if request.count == 1 { out.append("+PONG\r\n") } else { out.appendBulk(request[1]) }
            } else {
                out.append("*2\r\n$4\r\npong\r\n")
                if request.count == 1 { out.append("$0\r\n\r\n") } else { out.appendBulk(request[1]) }
            }
        case .echo:
            out.appendBulk(request[1])
        case .quit:
            out.appendOK()
            return .quit
        case .publish:
            guard peers.count == 1 else { return .needsOtherShards(command) }
            out.appendInteger(deliver(Self.messageFrame(request[1], request[2]), on: Key(borrowing: request[1])))
        case .subscribe:
            subscribe(connection, request)
        case .unsubscribe:
            unsubscribe(connection, request)
        case .config:
            Introspection.config(request, into: out)
        case .command:
            Introspection.command(request, into: out)
        case .hello:
            Introspection.hello(request, connectionID: connection.id, into: out)
        }
        return .done
    }

    /// Runs a command on keys this shard owns (called by another shard).
    func run(_ command: Command, _ request: Lent<Request>, into out: Lent<ByteBuffer>) {
        store.run(command, request.value, into: out.value, now: monotonicMilliseconds())
    }

    /// One key of a multi-key command (called by another shard).
    func run(_ command: Command, key: Int, of request: Lent<Request>, into out: Lent<ByteBuffer>) -> Int64 {
        store.run(command, key: key, of: request.value, into: out.value, now: monotonicMilliseconds())
    }

    /// `DEL`, `EXISTS`, `MGET`, `MSET` with keys of other shards: at once on the shard that
    /// owns all the keys; else key by key on their shards, in order (atomic per key, not as a
    /// whole).
    private func runOnKeys(_ command: Command, _ request: Request, into out: ByteBuffer) async {
        let step = command == .mset ? 2 : 1
        let first = owner(request[1])
        var single = true
        for i in stride(from: 1 + step, to: request.count, by: step) where owner(request[i]) != first {
            single = false
            break
        }
        if single {
            await peers[first].run(command, Lent(value: request), into: Lent(value: out))
            return
        }
        if command == .mget { out.appendArrayHeader(request.count - 1) }
        let perKey: Command = command == .mget ? .get : command == .mset ? .set : command
        var total: Int64 = 0
        for i in stride(from: 1, to: request.count, by: step) {
            let shard = owner(request[i])
            if shard == index {
                total += store.run(perKey, key: i, of: request, into: out, now: monotonicMilliseconds())
            } else {
                total += await peers[shard].run(perKey, key: i, of: Lent(value: request), into: Lent(value: out))
            }
        }
        switch command {
        case .mset: out.appendOK()
        case .del, .exists: out.appendInteger(total)
        default: break
        }
    }

    // MARK: Writing

    /// Writes the output with a non-blocking send; true when it all went (or there was none).
    /// The rest is written by `flush`, from a task.
    private func writeNow(_ connection: Connection) -> Bool {
        let output = connection.output
        if output.isEmpty { return true }
        if connection.writing || connection.closing { return false }  // a delivery task writes: join its queue
        let sent = (try? connection.socket.sendWithFlags(UnsafeRawBufferPointer(output.readable), flags: .noSignal)) ?? 0
        output.consume(sent)
        guard output.isEmpty else { return false }
        output.clear()
        if output.capacity > Connection.flushSize { output.shrink(to: Connection.flushSize) }
        return true
    }

    /// Writes the connection's output, then any pub/sub messages that came meanwhile. While a
    /// delivery task writes, the output joins its queue instead, so that writes never overlap.
    private nonisolated(nonsending) static func flush(_ connection: Connection) async throws {
        let output = connection.output
        if connection.writing {
            connection.pending.append(contentsOf: UnsafeRawBufferPointer(output.readable))
            output.clear()
            return
        }
        connection.writing = true
        defer { connection.writing = false }
        try await connection.socket.sendAll(UnsafeRawBufferPointer(output.readable))
        output.clear()
        if output.capacity > Connection.flushSize { output.shrink(to: Connection.flushSize) }
        try await writePending(connection)
    }

    /// `writePending` from a task of this shard: calling it through a method of the actor is
    /// what makes the delivery task isolated to the shard (a `Task` in an actor method inherits
    /// the actor only when it uses `self`), so that the non-sendable connection stays in it.
    private func writePendingHere(_ connection: Connection) async throws {
        try await Self.writePending(connection)
    }

    private nonisolated(nonsending) static func writePending(_ connection: Connection) async throws {
        while !connection.pending.isEmpty {
            let bytes = connection.pending
            connection.pending = []
            try await connection.socket.sendAll(bytes)
        }
    }

    // MARK: Pub/sub

    private func subscribe(_ connection: Connection, _ request: Request) {
        let out = connection.output
        for i in 1..<request.count {
            let channel = Key(copying: request[i])
            if connection.subscriptions.insert(channel).inserted {
                channels[channel, default: []].append(connection)
            }
            out.append("*3\r\n$9\r\nsubscribe\r\n")
            out.appendBulk(request[i])
            out.appendInteger(Int64(connection.subscriptions.count))
        }
    }

    private func unsubscribe(_ connection: Connection, _ request: Request) {
        let out = connection.output
        let names: [Key] = request.count > 1
            ? (1..<request.count).map { Key(copying: request[$0]) }
            : Array(connection.subscriptions)
        if names.isEmpty {
            out.append("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
            return
        }
        for channel in names {
            if connection.subscriptions.remove(channel) != nil { removeSubscriber(connection, from: channel) }
            out.append("*3\r\n$11\r\nunsubscribe\r\n")
            out.appendBulk(channel.bytes)
            out.appendInteger(Int64(connection.subscriptions.count))
        }
    }

    private func removeSubscriber(_ connection: Connection, from channel: Key) {
        guard var subscribers = channels.removeValue(forKey: channel) else { return }
        subscribers.removeAll { $0 === connection }
        if !subscribers.isEmpty { channels[channel] = subscribers }
    }

    /// A connection that ends leaves its channels.
    private func forget(_ connection: Connection) {
        connection.closing = true
        for channel in connection.subscriptions { removeSubscriber(connection, from: channel) }
        connection.subscriptions = []
        connection.pending = []
    }

    /// Delivers `message` on `channel` to the subscribers of every shard; returns how many got it.
    private func publish(_ channel: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer) async -> Int64 {
        let frame = Self.messageFrame(channel, message)
        var receivers = deliver(frame, on: Key(borrowing: channel))
        if peers.count > 1 {
            let name = Array(channel)
            for peer in peers where peer !== self {
                receivers += await peer.deliver(frame, on: name)
            }
        }
        return receivers
    }

    /// Delivers a message frame to this shard's subscribers of `channel` (called by the shard
    /// whose client published it).
    func deliver(_ frame: [UInt8], on channel: [UInt8]) -> Int64 {
        deliver(frame, on: Key(channel))
    }

    private func deliver(_ frame: [UInt8], on channel: Key) -> Int64 {
        guard let subscribers = channels[channel] else { return 0 }
        for connection in subscribers where !connection.closing {
            connection.pending += frame
            if connection.pending.count > configuration.maxPending {
                // A subscriber that does not read: closed, as Redis closes it.
                connection.closing = true
                connection.pending = []
                let socket = connection.socket
                Task { try? await socket.shutdown(.both) }
                continue
            }
            if !connection.writing {
                connection.writing = true
                Task {
                    defer { connection.writing = false }
                    try? await self.writePendingHere(connection)
                }
            }
        }
        return Int64(subscribers.count)
    }

    /// `*3\r\n$7\r\nmessage\r\n$<n>\r\n<channel>\r\n$<n>\r\n<message>\r\n`.
    private static func messageFrame(_ channel: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer) -> [UInt8] {
        let buffer = ByteBuffer(capacity: channel.count + message.count + 48)
        buffer.append("*3\r\n$7\r\nmessage\r\n")
        buffer.appendBulk(channel)
        buffer.appendBulk(message)
        return Array(UnsafeRawBufferPointer(buffer.readable))
    }
}
