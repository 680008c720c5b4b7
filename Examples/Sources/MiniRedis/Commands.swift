#if canImport(Glibc)
import Glibc
#endif

/// A parsed request: its arguments, borrowed from the connection's input.
///
/// `@unchecked Sendable` because a request crosses to the shard that owns its keys while its
/// connection waits for the answer: nobody touches the input meanwhile, and the request is not
/// kept after that call.
public struct Request: @unchecked Sendable {
    let base: UnsafeRawPointer
    let arguments: [RequestParser.Argument]

    public init(base: UnsafeRawPointer, arguments: [RequestParser.Argument]) {
        self.base = base
        self.arguments = arguments
    }

    public var count: Int { arguments.count }

    public subscript(i: Int) -> UnsafeRawBufferPointer {
        let argument = arguments[i]
        return UnsafeRawBufferPointer(start: base + argument.offset, count: argument.count)
    }

    /// Whether argument `i` is `word` (ASCII, any case).
    func `is`(_ i: Int, _ word: StaticString) -> Bool {
        equalsIgnoringCase(self[i], word)
    }
}

/// Whether `bytes` is `word` (lower-case ASCII) in any case.
@inline(__always)
func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
    guard bytes.count == word.utf8CodeUnitCount else { return false }
    let expected = word.utf8Start
    for i in 0..<bytes.count {
        let byte = bytes[i], want = expected[i]
        if byte == want { continue }
        if want >= UInt8(ascii: "a") && want <= UInt8(ascii: "z") && byte == want - 32 { continue }
        return false
    }
    return true
}

/// The commands mini-redis knows, with Redis's arity (negative: at least that many arguments,
/// the name included) and key positions.
public enum Command: CaseIterable, Sendable {
    case ping, echo, get, set, del, exists, incr, decr, mget, mset, expire, ttl
    case publish, subscribe, unsubscribe, quit, config, command, hello

    /// The lower-case name Redis reports in errors.
    public var name: StaticString {
        switch self {
        case .ping: "ping"
        case .echo: "echo"
        case .get: "get"
        case .set: "set"
        case .del: "del"
        case .exists: "exists"
        case .incr: "incr"
        case .decr: "decr"
        case .mget: "mget"
        case .mset: "mset"
        case .expire: "expire"
        case .ttl: "ttl"
        case .publish: "publish"
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .quit: "quit"
        case .config: "config"
        case .command: "command"
        case .hello: "hello"
        }
    }

    public var arity: Int {
        switch self {
        case .ping, .unsubscribe, .quit, .command, .hello: -1
        case .echo, .get, .incr, .decr, .ttl: 2
        case .set, .expire, .mset: -3
        case .del, .exists, .mget, .subscribe, .config: -2
        case .publish: 3
        }
    }

    /// Flags as `COMMAND` lists them.
    var flags: [StaticString] {
        switch self {
        case .get, .mget, .exists, .ttl: ["readonly", "fast"]
        case .set, .mset: ["write", "denyoom"]
        case .incr, .decr: ["write", "denyoom", "fast"]
        case .del, .expire: ["write", "fast"]
        case .publish: ["pubsub", "loading", "stale", "fast"]
        case .subscribe, .unsubscribe: ["pubsub", "noscript", "loading", "stale"]
        case .ping, .echo: ["fast"]
        case .quit, .hello: ["noscript", "loading", "stale", "fast", "no_auth"]
        case .config, .command: ["loading", "stale"]
        }
    }

    /// First key, last key (-1: the last argument), step; zeros for no keys.
    var keys: (first: Int, last: Int, step: Int) {
        switch self {
        case .get, .set, .incr, .decr, .expire, .ttl: (1, 1, 1)
        case .del, .exists, .mget: (1, -1, 1)
        case .mset: (1, -1, 2)
        default: (0, 0, 0)
        }
    }

    /// What a connection in subscribed mode may still run.
    var allowedWhileSubscribed: Bool {
        switch self {
        case .subscribe, .unsubscribe, .ping, .quit: true
        default: false
        }
    }

    /// The command named by `name`, in any case.
    @inline(__always)
    public init?(_ name: UnsafeRawBufferPointer) {
        switch name.count {
        case 3:
            if equalsIgnoringCase(name, "get") { self = .get; return }
            if equalsIgnoringCase(name, "set") { self = .set; return }
            if equalsIgnoringCase(name, "del") { self = .del; return }
            if equalsIgnoringCase(name, "ttl") { self = .ttl; return }
        case 4:
            if equalsIgnoringCase(name, "ping") { self = .ping; return }
            if equalsIgnoringCase(name, "echo") { self = .echo; return }
            if equalsIgnoringCase(name, "incr") { self = .incr; return }
            if equalsIgnoringCase(name, "decr") { self = .decr; return }
            if equalsIgnoringCase(name, "mget") { self = .mget; return }
            if equalsIgnoringCase(name, "mset") { self = .mset; return }
            if equalsIgnoringCase(name, "quit") { self = .quit; return }
        case 5:
            if equalsIgnoringCase(name, "hello") { self = .hello; return }
        case 6:
            if equalsIgnoringCase(name, "exists") { self = .exists; return }
            if equalsIgnoringCase(name, "expire") { self = .expire; return }
            if equalsIgnoringCase(name, "config") { self = .config; return }
        case 7:
            if equalsIgnoringCase(name, "publish") { self = .publish; return }
            if equalsIgnoringCase(name, "command") { self = .command; return }
        case 9:
            if equalsIgnoringCase(name, "subscribe") { self = .subscribe; return }
        case 11:
            if equalsIgnoringCase(name, "unsubscribe") { self = .unsubscribe; return }
        default:
            break
        }
        return nil
    }

    /// Whether `count` arguments (the name included) suit the arity.
    func accepts(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }
}

// MARK: - Commands on keys, run by the shard that owns them

/// How `SET` sets a deadline.
private enum Expiry { case none, ex, px, exat, pxat }

extension Store {
    /// Runs a command on keys that this store owns, appending its reply to `out`. The caller
    /// checked the command's arity.
    public mutating func run(_ command: Command, _ request: Request, into out: ByteBuffer, now: Int64) {
        switch command {
        case .get:
            withValue(request[1], now: now) { value in
                if let value { out.appendBulk(value) } else { out.appendNil() }
            }
        case .set:
            set(request, into: out, now: now)
        case .incr:
            add(1, to: request[1], into: out, now: now)
        case .decr:
            add(-1, to: request[1], into: out, now: now)
        case .del:
            var removed: Int64 = 0
            for i in 1..<request.count where remove(request[i], now: now) { removed += 1 }
            out.appendInteger(removed)
        case .exists:
            var found: Int64 = 0
            for i in 1..<request.count where contains(request[i], now: now) { found += 1 }
            out.appendInteger(found)
        case .mget:
            out.appendArrayHeader(request.count - 1)
            for i in 1..<request.count { run(.get, key: i, of: request, into: out, now: now) }
        case .mset:
            for i in stride(from: 1, to: request.count, by: 2) {
                _ = run(.set, key: i, of: request, into: out, now: now)
            }
            out.appendOK()
        case .expire:
            expire(request, into: out, now: now)
        case .ttl:
            switch deadline(request[1], now: now) {
            case nil: out.appendInteger(-2)
            case 0: out.appendInteger(-1)
            case let deadline?: out.appendInteger((deadline - now + 500) / 1000)
            }
        default:
            preconditionFailure("\(command) has no keys")
        }
    }

    /// One key of a multi-key command, for a command whose keys several shards own:
    /// `.get` appends the value (or nil) as `MGET` does, `.set` sets the key to the argument
    /// after it, `.del` and `.exists` return 1 or 0.
    @discardableResult
    public mutating func run(_ command: Command, key i: Int, of request: Request, into out: ByteBuffer, now: Int64) -> Int64 {
        switch command {
        case .get:
            withValue(request[i], now: now) { value in
                if let value { out.appendBulk(value) } else { out.appendNil() }
            }
            return 0
        case .set:
            set(request[i], request[i + 1], deadline: 0, now: now)
            return 0
        case .del:
            return remove(request[i], now: now) ? 1 : 0
        case .exists:
            return contains(request[i], now: now) ? 1 : 0
        default:
            preconditionFailure("\(command) is not a per-key operation")
        }
    }

    private mutating func add(_ delta: Int64, to key: UnsafeRawBufferPointer, into out: ByteBuffer, now: Int64) {
        let current: Int64? = withValue(key, now: now) { value in
            guard let value else { return 0 }
            return parseInteger(value)
        }
        guard let current else {
            out.appendError("value is not an integer or out of range")
            return
        }
        let (result, overflow) = current.addingReportingOverflow(delta)
        if overflow {
            out.appendError("increment or decrement would overflow")
            return
        }
        setInteger(key, result, now: now)
        out.appendInteger(result)
    }

    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`, checked in Redis's
    /// order with Redis's errors.
    private mutating func set(_ request: Request, into out: ByteBuffer, now: Int64) {
        var nx = false, xx = false, get = false, keepTTL = false
        var expiry = Expiry.none
        var expiryArgument = 0
        var i = 3
        while i < request.count {
            let hasNext = i + 1 < request.count
            if request.is(i, "nx") && !xx {
                nx = true
            } else if request.is(i, "xx") && !nx {
                xx = true
            } else if request.is(i, "get") {
                get = true
            } else if request.is(i, "keepttl") && expiry == .none {
                keepTTL = true
            } else if hasNext && !keepTTL, let kind = Self.expiryKind(request[i]),
                      expiry == .none || expiry == kind {
                expiry = kind
                expiryArgument = i + 1
                i += 1
            } else {
                out.appendError("syntax error")
                return
            }
            i += 1
        }
        var deadline: Int64? = keepTTL ? nil : 0
        if expiry != .none {
            guard let amount = parseInteger(request[expiryArgument]) else {
                out.appendError("value is not an integer or out of range")
                return
            }
            let seconds = expiry == .ex || expiry == .exat
            guard amount > 0, !seconds || amount <= Int64.max / 1000 else {
                out.appendError("invalid expire time in 'set' command")
                return
            }
            let milliseconds = seconds ? amount * 1000 : amount
            if expiry == .ex || expiry == .px {
                guard milliseconds <= Int64.max - now else {
                    out.appendError("invalid expire time in 'set' command")
                    return
                }
                deadline = now + milliseconds
            } else {
                // An absolute Unix time: the same distance from now on the monotonic clock.
                deadline = now + (milliseconds - wallClockMilliseconds())
            }
        }
        let key = request[1]
        if get {
            withValue(key, now: now) { value in
                if let value { out.appendBulk(value) } else { out.appendNil() }
            }
        }
        let exists = contains(key, now: now)
        if (nx && exists) || (xx && !exists) {
            if !get { out.appendNil() }
            return
        }
        if let deadline, deadline != 0, deadline <= now {
            remove(key, now: now)  // already past: as if set and expired at once
        } else {
            set(key, request[2], deadline: deadline, now: now)
        }
        if !get { out.appendOK() }
    }

    private static func expiryKind(_ word: UnsafeRawBufferPointer) -> Expiry? {
        if equalsIgnoringCase(word, "ex") { return .ex }
        if equalsIgnoringCase(word, "px") { return .px }
        if equalsIgnoringCase(word, "exat") { return .exat }
        if equalsIgnoringCase(word, "pxat") { return .pxat }
        return nil
    }

    /// `EXPIRE key seconds [NX|XX|GT|LT]`.
    private mutating func expire(_ request: Request, into out: ByteBuffer, now: Int64) {
        var nx = false, xx = false, gt = false, lt = false
        for i in 3..<max(request.count, 3) {
            if request.is(i, "nx") { nx = true }
            else if request.is(i, "xx") { xx = true }
            else if request.is(i, "gt") { gt = true }
            else if request.is(i, "lt") { lt = true }
            else {
                var text = Array("Unsupported option ".utf8)
                text += Array(request[i].prefix { $0 != 0 })
                out.append("-ERR ")
                out.appendErrorText(text)
                out.append("\r\n")
                return
            }
        }
        if nx && (xx || gt || lt) {
            out.appendError("NX and XX, GT or LT options at the same time are not compatible")
            return
        }
        if gt && lt {
            out.appendError("GT and LT options at the same time are not compatible")
            return
        }
        guard let seconds = parseInteger(request[2]) else {
            out.appendError("value is not an integer or out of range")
            return
        }
        guard seconds <= Int64.max / 1000, seconds >= Int64.min / 1000, seconds * 1000 <= Int64.max - now else {
            out.appendError("invalid expire time in 'expire' command")
            return
        }
        let when = now + seconds * 1000
        let key = request[1]
        guard let current = deadline(key, now: now) else {
            out.appendInteger(0)
            return
        }
        if (nx && current != 0) || (xx && current == 0) || (gt && (current == 0 || when <= current))
            || (lt && current != 0 && when >= current) {
            out.appendInteger(0)
            return
        }
        if when <= now {
            remove(key, now: now)
        } else {
            setDeadline(key, when, now: now)
        }
        out.appendInteger(1)
    }
}
