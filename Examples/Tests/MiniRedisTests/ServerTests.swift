import Foundation
import MiniRedis
import Socket2
import Socket2Async
import Synchronization
import SystemPackage
import Testing

/// Each server test runs on both backends, with one reactor and with two (where keys and
/// subscribers sit on different shards).
let setups: [(Reactor.Backend, Int)] = [(.epoll, 1), (.ioUring, 1), (.epoll, 2), (.ioUring, 2)]

struct TimedOut: Error {}

/// Runs `body` against a mini-redis server on 127.0.0.1 (a port the kernel picks), stopped
/// afterwards; the whole under a deadline.
func withServer(
    _ backend: Reactor.Backend, threads: Int, configuration: Configuration = Configuration(),
    _ body: @escaping @Sendable (UInt16) async throws -> Void
) async throws {
    let server = try await MiniRedisServer(threads: threads, backend: backend, configuration: configuration)
    defer { server.shutdown() }
    #expect(server.backend == backend)
    let (ports, continuation) = AsyncStream.makeStream(of: UInt16.self)
    let serving = Task {
        try await server.serve(on: SockAddr(SocketAddrV4(.localhost, 0))) { listening in
            continuation.yield(listening.localAddress.asSocketIpv4()!.port)
        }
    }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw TimedOut() }
    try await withThrowingTaskGroup { group in
        group.addTask { try await body(port) }
        group.addTask {
            try await Task.sleep(for: .seconds(60))
            throw TimedOut()
        }
        defer { group.cancelAll() }
        try await group.next()
    }
    serving.cancel()
    _ = try? await serving.value
}

/// Runs a program and returns its standard output; standard input from `input`.
@discardableResult
func run(_ program: String, _ arguments: [String], input: [UInt8] = []) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    try stdin.fileHandleForWriting.write(contentsOf: Data(input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self)
}

/// `redis-cli -p port --no-raw` with `commands` (one a line) on standard input.
func redisCLI(_ port: UInt16, _ commands: [String]) throws -> [String] {
    let output = try run("/usr/bin/redis-cli", ["-p", "\(port)", "--no-raw"],
                         input: Array(commands.joined(separator: "\n").utf8) + [10])
    return output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

/// A blocking client socket with a receive time-out, for raw bytes.
func rawConnection(_ port: UInt16) throws -> Socket {
    let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try socket.connect(SockAddr(SocketAddrV4(.localhost, port)))
    try socket.setReadTimeout(.seconds(5))
    return socket
}

/// What a server answered to some bytes, and whether it closed the connection after.
typealias Answer = (reply: [UInt8], closed: Bool)

/// Sends `bytes` and reads replies. Without `like`, until the server closes or said nothing for
/// `quiet`. With `like` (another server's answer to the same bytes): as many bytes as it
/// replied; then, if it closed, until the close (an event, bounded by the socket's time-out),
/// else for `quiet` more, to see any extra byte or a close it did not make.
func exchange(_ port: UInt16, _ bytes: [UInt8], like: Answer? = nil, quiet: Duration = .milliseconds(150)) throws -> Answer {
    let socket = try rawConnection(port)
    if like.map({ !$0.closed && $0.reply.isEmpty }) ?? true { try socket.setReadTimeout(quiet) }
    do {
        _ = try socket.send(bytes)
    } catch {
        // The server may close before it read everything (as redis-server does).
        guard error == .connectionReset || error == .brokenPipe else { throw error }
    }
    var reply: [UInt8] = []
    while true {
        do {
            let chunk = try socket.recv(maxCount: 65536)
            if chunk.isEmpty { return (reply, true) }
            reply += chunk
            if let like, !like.closed, reply.count >= like.reply.count { try socket.setReadTimeout(quiet) }
        } catch Errno.resourceTemporarilyUnavailable {
            return (reply, false)
        } catch Errno.connectionReset {
            return (reply, true)
        } catch {
            throw error
        }
    }
}

/// redis-server's answers to the bad-input cases, asked once for all setups (each costs a quiet
/// period where it keeps the connection).
let redisAnswers = Mutex<[Answer]?>(nil)

@Suite(.serialized) struct ServerTests {
    @Test(arguments: setups)
    func everyCommandThroughRedisCLI(backend: Reactor.Backend, threads: Int) async throws {
        try await withServer(backend, threads: threads) { port in
            let script: [(String, String)] = [
                ("PING", "PONG"),
                ("PING hello", "\"hello\""),
                ("ECHO \"a b\"", "\"a b\""),
                ("SET k1 v1", "OK"),
                ("GET k1", "\"v1\""),
                ("GET missing", "(nil)"),
                ("SET k1 v2 XX", "OK"),
                ("SET k1 v3 NX", "(nil)"),
                ("SET k2 v NX", "OK"),
                ("SET k3 v XX", "(nil)"),
                ("GET k1", "\"v2\""),
                ("SET k1 v4 GET", "\"v2\""),
                ("EXISTS k1 k2 k3 k1", "(integer) 3"),
                ("DEL k1 k2 k3", "(integer) 2"),
                ("EXISTS k1", "(integer) 0"),
                ("INCR n", "(integer) 1"),
                ("INCR n", "(integer) 2"),
                ("DECR n", "(integer) 1"),
                ("DECR m", "(integer) -1"),
                ("SET s abc", "OK"),
                ("INCR s", "(error) ERR value is not an integer or out of range"),
                ("SET big 9223372036854775807", "OK"),
                ("INCR big", "(error) ERR increment or decrement would overflow"),
                ("MSET a 1 b 2 c 3", "OK"),
                ("MGET a b nope c", "1) \"1\"\n2) \"2\"\n3) (nil)\n4) \"3\""),
                ("MSET a", "(error) ERR wrong number of arguments for 'mset' command"),
                ("TTL a", "(integer) -1"),
                ("TTL nope", "(integer) -2"),
                ("EXPIRE a 100", "(integer) 1"),
                ("TTL a", "(integer) 100"),
                ("EXPIRE nope 100", "(integer) 0"),
                ("EXPIRE a 50 GT", "(integer) 0"),
                ("EXPIRE a 50 LT", "(integer) 1"),
                ("TTL a", "(integer) 50"),
                ("SET e v EX 100", "OK"),
                ("TTL e", "(integer) 100"),
                ("SET e v PX 200000", "OK"),
                ("TTL e", "(integer) 200"),
                ("SET e w KEEPTTL", "OK"),
                ("TTL e", "(integer) 200"),
                ("SET e v", "OK"),
                ("TTL e", "(integer) -1"),
                ("SET e v EX 0", "(error) ERR invalid expire time in 'set' command"),
                ("SET e v EX 10 PX 10", "(error) ERR syntax error"),
                ("EXPIRE a -1", "(integer) 1"),
                ("GET a", "(nil)"),
                ("GET", "(error) ERR wrong number of arguments for 'get' command"),
                ("NOPE x y", "(error) ERR unknown command 'NOPE', with args beginning with: 'x' 'y' "),
                ("CONFIG GET save", "1) \"save\"\n2) \"\""),
                ("CONFIG GET appendonly", "1) \"appendonly\"\n2) \"no\""),
                ("HELLO 3", "(error) NOPROTO unsupported protocol version"),
                ("COMMAND COUNT", "(integer) \(Command.allCases.count)"),
                ("PUBLISH nobody hi", "(integer) 0"),
            ]
            let output = try redisCLI(port, script.map(\.0))
            let expected = script.flatMap { $0.1.split(separator: "\n").map(String.init) }
            #expect(output == expected)
        }
    }

    @Test(arguments: setups)
    func keysExpireLazilyAndBySweep(backend: Reactor.Backend, threads: Int) async throws {
        var configuration = Configuration()
        configuration.sweepInterval = .milliseconds(10)
        try await withServer(backend, threads: threads, configuration: configuration) { port in
            #expect(try redisCLI(port, ["SET gone v PX 1", "SET kept v"]) == ["OK", "OK"])
            // Past the deadline the key is gone, whether a read finds it first or the sweep.
            var output: [String] = []
            for _ in 0..<100 {
                output = try redisCLI(port, ["GET gone", "EXISTS gone kept"])
                if output == ["(nil)", "(integer) 1"] { break }
            }
            #expect(output == ["(nil)", "(integer) 1"])
        }
    }

    @Test(arguments: setups)
    func publishReachesASubscriberOnAnotherConnection(backend: Reactor.Backend, threads: Int) async throws {
        try await withServer(backend, threads: threads) { port in
            // Two subscribers (with two reactors, likely on different shards) and a publisher.
            let first = try rawConnection(port), second = try rawConnection(port)
            for subscriber in [SockRef(first), SockRef(second)] {
                _ = try subscriber.send(Array("SUBSCRIBE news other\r\n".utf8))
                let expected = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:2\r\n"
                #expect(String(decoding: try readExactly(subscriber, expected.utf8.count), as: UTF8.self) == expected)
                _ = try subscriber.send(Array("GET x\r\nPING\r\n".utf8))
                let refused = "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                #expect(String(decoding: try readExactly(subscriber, refused.utf8.count), as: UTF8.self) == refused)
            }
            #expect(try redisCLI(port, ["PUBLISH news hello", "PUBLISH nobody x"]) == ["(integer) 2", "(integer) 0"])
            let message = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
            for subscriber in [SockRef(first), SockRef(second)] {
                #expect(String(decoding: try readExactly(subscriber, message.utf8.count), as: UTF8.self) == message)
            }
            // Unsubscribed: no more messages; the subscriber can run commands again.
            _ = try SockRef(first).send(Array("UNSUBSCRIBE news\r\n".utf8))
            let left = "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n"
            #expect(String(decoding: try readExactly(SockRef(first), left.utf8.count), as: UTF8.self) == left)
            #expect(try redisCLI(port, ["PUBLISH news again"]) == ["(integer) 1"])
            _ = try SockRef(first).send(Array("UNSUBSCRIBE\r\nPING\r\n".utf8))
            let all = "*3\r\n$11\r\nunsubscribe\r\n$5\r\nother\r\n:0\r\n+PONG\r\n"
            #expect(String(decoding: try readExactly(SockRef(first), all.utf8.count), as: UTF8.self) == all)
            let again = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nagain\r\n"
            #expect(String(decoding: try readExactly(SockRef(second), again.utf8.count), as: UTF8.self) == again)
        }
    }

    @Test(arguments: setups)
    func pipelinedRequestsAreAllAnsweredInOrder(backend: Reactor.Backend, threads: Int) async throws {
        try await withServer(backend, threads: threads) { port in
            // redis-cli --pipe: 10,000 requests in RESP, streamed.
            var requests: [UInt8] = []
            for i in 0..<10_000 { requests += multibulk([Array("SET".utf8), Array("key:\(i)".utf8), Array("\(i)".utf8)]) }
            let report = try run("/usr/bin/redis-cli", ["-p", "\(port)", "--pipe"], input: requests)
            #expect(report.contains("errors: 0, replies: 10000"))
            // A raw socket: 1,000 requests of several shards in one write, replies in order.
            var batch: [UInt8] = []
            var expected: [UInt8] = []
            for i in 0..<1000 {
                batch += multibulk([Array("GET".utf8), Array("key:\(i * 7)".utf8)])
                expected += Array("$\("\(i * 7)".utf8.count)\r\n\(i * 7)\r\n".utf8)
                batch += Array("INCR counter\r\n".utf8)  // inline, mixed in
                expected += Array(":\(i + 1)\r\n".utf8)
            }
            let socket = try rawConnection(port)
            _ = try socket.send(batch)
            #expect(try readExactly(SockRef(socket), expected.count) == expected)
        }
    }

    /// Malformed input, limits and errors, sent byte for byte to mini-redis and to redis-server:
    /// the same replies, and the connection closed where redis-server closes it.
    @Test(arguments: setups)
    func badInputIsAnsweredAsRedisServerAnswers(backend: Reactor.Backend, threads: Int) async throws {
        let texts: [String] = [
            "*abc\r\n", "*1\r\nx3\r\nfoo\r\n", "*1\r\n$-1\r\n", "*1\r\n$abc\r\n", "*2147483648\r\n",
            "*1\r\n$600000000\r\n", "*1\r\n\r\n\r\n", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
            "*1\r\n$4\r\nPING\r\n*x\r\n", "*0\r\n*-1\r\n\r\nPING\r\n", "*3\r\n$3\r\nfoo\r\n",
            "foo a b\r\n", "*2\r\n$3\r\nfoo\r\n$1\r\na\r\n", "FOO \"a\\r\\nb\"\r\n", "*1\r\n$0\r\n\r\n",
            "set \"abc\r\n", "set 'a' \"b\\x41\"\r\nget a\r\ndel a\r\n", "get\r\n", "set k\r\n", "ping a b\r\n",
            "incr nope\r\nset s abc\r\nincr s\r\ndel nope s\r\n", "quit\r\nping\r\n",
            "set k v ex 0\r\nset k v ex abc\r\nset k v px 10 ex 10\r\nset k v nx xx\r\nset k v foo\r\n",
            "expire k abc\r\nexpire k 10 foo\r\nexpire k 10 nx xx\r\nexpire k 10 gt lt\r\nttl\r\nmset a\r\nmset a b c\r\n",
            "subscribe a\r\nget x\r\nping x\r\nunsubscribe\r\nunsubscribe\r\n", "config foo\r\nconfig get\r\n",
            "hello abc\r\nhello 4\r\nhello 2 foo\r\n",
        ]
        let ones = [UInt8](repeating: UInt8(ascii: "1"), count: 70_000)
        var cases: [[UInt8]] = texts.map { Array($0.utf8) }
        cases.append(Array("*1\r\n$".utf8) + ones)                               // too big bulk count
        cases.append([UInt8](repeating: UInt8(ascii: "x"), count: 70_000))      // too big inline
        cases.append([UInt8(ascii: "*")] + ones)                                 // too big mbulk count
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 200)
        cases.append(Array("*3\r\n$3\r\nfoo\r\n$200\r\n".utf8) + long + Array("\r\n$1\r\nb\r\n".utf8))
        let allCases = cases
        let answers = try redisAnswers.withLock { answers in
            if let answers { return answers }
            let redis = try RedisServer.start()
            defer { redis.stop() }
            answers = try allCases.map { try exchange(redis.port, $0) }
            return answers!
        }
        var configuration = Configuration()
        configuration.maxBulk = 512 << 20  // Redis's limit, for the comparison
        try await withServer(backend, threads: threads, configuration: configuration) { port in
            for (input, theirs) in zip(allCases, answers) {
                let ours = try exchange(port, input, like: theirs)
                #expect(ours.reply == theirs.reply, "\(String(decoding: input.prefix(80), as: UTF8.self))")
                #expect(ours.closed == theirs.closed, "\(String(decoding: input.prefix(80), as: UTF8.self))")
            }
        }
    }

    @Test(arguments: setups)
    func limitsBoundWhatAClientCanMakeTheServerHold(backend: Reactor.Backend, threads: Int) async throws {
        var configuration = Configuration()
        configuration.maxBulk = 1000
        try await withServer(backend, threads: threads, configuration: configuration) { port in
            let over = try exchange(port, Array("*2\r\n$3\r\nGET\r\n$1001\r\n".utf8))
            #expect(over.reply == Array("-ERR Protocol error: invalid bulk length\r\n".utf8))
            #expect(over.closed)
            // A request with more than maxRequest bytes of small arguments: closed, no reply.
            let socket = try rawConnection(port)
            _ = try socket.send(Array("*100000000\r\n".utf8))
            let argument = Array(String(repeating: "$1\r\na\r\n", count: 10_000).utf8)
            var closed = false
            for _ in 0..<100 where !closed {
                do { _ = try socket.send(argument) } catch { closed = true }
            }
            if !closed { closed = try socket.recv(maxCount: 1).isEmpty }
            #expect(closed)
            // Others are served all along.
            #expect(try redisCLI(port, ["PING"]) == ["PONG"])
        }
    }

    /// A graceful stop (what SIGTERM does): a request that had arrived is answered, every
    /// connection — busy or idle, each read by a handler with no task — then sees its close,
    /// and `serve` returns normally.
    @Test(arguments: setups)
    func aGracefulStopAnswersWhatCameAndClosesEveryConnection(backend: Reactor.Backend, threads: Int) async throws {
        let server = try await MiniRedisServer(threads: threads, backend: backend)
        defer { server.shutdown() }
        let (listening, continuation) = AsyncStream.makeStream(of: Server.self)
        let serving = Task {
            try await server.serve(on: SockAddr(SocketAddrV4(.localhost, 0))) { continuation.yield($0) }
        }
        var iterator = listening.makeAsyncIterator()
        let listener = try #require(await iterator.next())
        let port = listener.localAddress.asSocketIpv4()!.port
        let idle = try rawConnection(port), busy = try rawConnection(port)
        for connection in [SockRef(idle), SockRef(busy)] {
            _ = try connection.send(Array("PING\r\n".utf8))
            #expect(try readExactly(connection, 7) == Array("+PONG\r\n".utf8))
        }
        _ = try busy.send(Array("SET k v\r\nGET k\r\n".utf8))
        listener.shutdown(gracePeriod: .seconds(30))
        #expect(try readExactly(SockRef(busy), 14) == Array("+OK\r\n$1\r\nv\r\n".utf8))
        #expect(try busy.recv(maxCount: 1).isEmpty)
        #expect(try idle.recv(maxCount: 1).isEmpty)
        try await serving.value
    }

    @Test(arguments: setups)
    func aClientThatVanishesMidRequestCostsOthersNothing(backend: Reactor.Backend, threads: Int) async throws {
        try await withServer(backend, threads: threads) { port in
            #expect(try redisCLI(port, ["SET shared 1"]) == ["OK"])
            for partial in ["*3\r\n$3\r\nSET\r\n$6\r\nshared\r\n$1", "*3\r\n$3\r\nSET\r\n$6\r\nshared\r\n$60000000\r\nxx", "SET shared 2"] {
                let socket = try rawConnection(port)
                _ = try socket.send(Array(partial.utf8))
                try socket.setLinger(.zero)  // a reset, not a close
            }
            #expect(try redisCLI(port, ["GET shared", "INCR shared"]) == ["\"1\"", "(integer) 2"])
        }
    }
}

/// Reads exactly `count` bytes.
func readExactly(_ socket: SockRef, _ count: Int) throws -> [UInt8] {
    var bytes: [UInt8] = []
    while bytes.count < count {
        let chunk = try socket.recv(maxCount: count - bytes.count)
        if chunk.isEmpty { break }
        bytes += chunk
    }
    return bytes
}

/// A real redis-server on a free port, for comparisons: `--save "" --appendonly no`.
final class RedisServer: Sendable {
    let process: Process
    let port: UInt16

    private init(process: Process, port: UInt16) {
        self.process = process
        self.port = port
    }

    static func start() throws -> RedisServer {
        // A free port: bind one, note it, close it.
        let probe = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        try probe.bind(SockAddr(SocketAddrV4(.localhost, 0)))
        let port = try probe.localAddr().asSocketIpv4()!.port
        _ = consume probe
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<500 {  // until it answers
            if (try? redisCLI(port, ["PING"])) == ["PONG"] { return RedisServer(process: process, port: port) }
            usleep(10_000)
        }
        process.terminate()
        throw TimedOut()
    }

    /// SIGKILL and `waitpid` (Foundation's `waitUntilExit` can hang in an async test).
    func stop() {
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        var status: CInt = 0
        waitpid(pid, &status, 0)
    }
}
