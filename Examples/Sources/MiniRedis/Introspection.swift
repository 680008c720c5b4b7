/// What clients ask a server about itself on connect: `CONFIG GET` (redis-benchmark asks for
/// `save` and `appendonly`), `COMMAND` (redis-cli asks for `COMMAND DOCS`), `HELLO`.
enum Introspection {
    /// The parameters `CONFIG GET` knows, with their values.
    static let parameters: [(name: StaticString, value: StaticString)] = [
        ("appendonly", "no"),
        ("save", ""),
    ]

    /// `CONFIG GET pattern...` (glob patterns, any case); other subcommands are unknown.
    static func config(_ request: Request, into out: ByteBuffer) {
        guard request.is(1, "get") else {
            unknownSubcommand(request, "CONFIG", into: out)
            return
        }
        guard request.count >= 3 else {
            out.appendArityError("config|get")
            return
        }
        var matched = [Bool](repeating: false, count: parameters.count)
        for i in 2..<request.count {
            for (j, parameter) in parameters.enumerated() where !matched[j] {
                parameter.name.withUTF8Buffer { name in
                    matched[j] = globMatches(request[i], UnsafeRawBufferPointer(name))
                }
            }
        }
        out.appendArrayHeader(2 * matched.count { $0 })
        for (j, parameter) in parameters.enumerated() where matched[j] {
            out.appendBulk(parameter.name)
            out.appendBulk(parameter.value)
        }
    }

    /// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS [name...]` (no docs).
    static func command(_ request: Request, into out: ByteBuffer) {
        if request.count == 1 {
            out.appendArrayHeader(Command.allCases.count)
            for command in Command.allCases { info(command, into: out) }
        } else if request.is(1, "count") {
            guard request.count == 2 else { return out.appendArityError("command|count") }
            out.appendInteger(Int64(Command.allCases.count))
        } else if request.is(1, "info") {
            guard request.count >= 3 else { return out.appendArityError("command|info") }
            out.appendArrayHeader(request.count - 2)
            for i in 2..<request.count {
                if let command = Command(request[i]) { info(command, into: out) } else { out.appendNil() }
            }
        } else if request.is(1, "docs") {
            out.appendArrayHeader(0)
        } else {
            unknownSubcommand(request, "COMMAND", into: out)
        }
    }

    /// One command's entry in `COMMAND` (RESP2, Redis 7's ten fields).
    private static func info(_ command: Command, into out: ByteBuffer) {
        out.appendArrayHeader(10)
        out.appendBulk(command.name)
        out.appendInteger(Int64(command.arity))
        out.appendArrayHeader(command.flags.count)
        for flag in command.flags {
            out.append(UInt8(ascii: "+"))
            out.append(flag)
            out.append("\r\n")
        }
        let keys = command.keys
        out.appendInteger(Int64(keys.first))
        out.appendInteger(Int64(keys.last))
        out.appendInteger(Int64(keys.step))
        for _ in 0..<4 { out.appendArrayHeader(0) }  // ACL categories, tips, key specs, subcommands
    }

    /// `HELLO [protover [SETNAME name]]`: RESP2 only, so `HELLO 3` is refused with `NOPROTO` as
    /// a server refuses a protocol version it does not speak (and clients fall back to RESP2).
    static func hello(_ request: Request, connectionID: Int, into out: ByteBuffer) {
        if request.count >= 2 {
            guard let version = parseInteger(request[1]) else {
                return out.appendError("Protocol version is not an integer or out of range")
            }
            guard version == 2 else { return out.append("-NOPROTO unsupported protocol version\r\n") }
            var i = 2
            while i < request.count {
                guard request.is(i, "setname"), i + 1 < request.count else {
                    var text = Array("Syntax error in HELLO option '".utf8)
                    text += Array(request[i].prefix { $0 != 0 }) + [UInt8(ascii: "'")]
                    out.append("-ERR ")
                    out.appendErrorText(text)
                    out.append("\r\n")
                    return
                }
                i += 2
            }
        }
        out.appendArrayHeader(14)
        out.appendBulk("server"); out.appendBulk("redis")
        out.appendBulk("version"); out.appendBulk("7.0.0")
        out.appendBulk("proto"); out.appendInteger(2)
        out.appendBulk("id"); out.appendInteger(Int64(connectionID))
        out.appendBulk("mode"); out.appendBulk("standalone")
        out.appendBulk("role"); out.appendBulk("master")
        out.appendBulk("modules"); out.appendArrayHeader(0)
    }

    /// `-ERR unknown subcommand '<name>'. Try <COMMAND> HELP.`
    private static func unknownSubcommand(_ request: Request, _ command: StaticString, into out: ByteBuffer) {
        var text = Array("unknown subcommand '".utf8)
        text += Array(request[1].prefix(128).prefix { $0 != 0 })
        text += Array("'. Try \(command) HELP.".utf8)
        out.append("-ERR ")
        out.appendErrorText(text)
        out.append("\r\n")
    }
}

/// Whether `name` matches the glob `pattern` (`*`, `?`; ASCII letters in any case), as
/// `CONFIG GET` matches.
func globMatches(_ pattern: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> Bool {
    func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }
    var p = 0, n = 0
    var star = -1, resume = 0
    while n < name.count {
        if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || lower(pattern[p]) == lower(name[n])) {
            p += 1; n += 1
        } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
            star = p; resume = n; p += 1
        } else if star >= 0 {
            p = star + 1; resume += 1; n = resume
        } else {
            return false
        }
    }
    while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
    return p == pattern.count
}
