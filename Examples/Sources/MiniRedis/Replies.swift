/// RESP2 replies, appended to a connection's output.
extension ByteBuffer {
    public func appendOK() { append("+OK\r\n") }
    public func appendNil() { append("$-1\r\n") }

    public func appendInteger(_ value: Int64) {
        append(UInt8(ascii: ":"))
        appendDecimal(value)
        append("\r\n")
    }

    public func appendArrayHeader(_ count: Int) {
        append(UInt8(ascii: "*"))
        appendDecimal(Int64(count))
        append("\r\n")
    }

    public func appendBulk(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count + 24)
        append(UInt8(ascii: "$"))
        appendDecimal(Int64(bytes.count))
        append("\r\n")
        append(bytes)
        append("\r\n")
    }

    public func appendBulk(_ string: StaticString) {
        string.withUTF8Buffer { appendBulk(UnsafeRawBufferPointer($0)) }
    }

    public func appendBulk(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { appendBulk($0) }
    }

    /// `-ERR <message>`, with CR and LF in `message` turned into spaces as Redis does.
    public func appendError(_ message: String, prefix: StaticString = "ERR") {
        append(UInt8(ascii: "-"))
        append(prefix)
        append(UInt8(ascii: " "))
        appendErrorText(Array(message.utf8))
        append("\r\n")
    }

    /// Bytes of an error message, with CR and LF turned into spaces.
    func appendErrorText(_ bytes: [UInt8]) {
        for byte in bytes { append(byte == 13 || byte == 10 ? 32 : byte) }
    }

    /// `-ERR wrong number of arguments for '<name>' command`.
    func appendArityError(_ name: String) {
        append("-ERR wrong number of arguments for '")
        append(Array(name.utf8))
        append("' command\r\n")
    }

    /// The reply to malformed input, byte for byte redis-server's.
    public func appendProtocolError(_ error: RequestParser.ProtocolError) {
        if case .expectedDollar(let got) = error {
            append("-ERR Protocol error: expected '$', got '")
            appendErrorText([got])
            append("'\r\n")
        } else {
            appendError(error.message)
        }
    }

    /// `-ERR unknown command '<name>', with args beginning with: '<arg>' …`: the name and the
    /// arguments cut as Redis cuts them (128 bytes, and at a NUL byte, being C strings).
    func appendUnknownCommand(_ request: Request) {
        var text: [UInt8] = Array("unknown command '".utf8)
        text += cString(request[0], max: 128)
        text += Array("', with args beginning with: ".utf8)
        var args: [UInt8] = []
        var i = 1
        while i < request.count && args.count < 128 {
            args.append(UInt8(ascii: "'"))
            args += cString(request[i], max: 128 - (args.count - 1))
            args += [UInt8(ascii: "'"), UInt8(ascii: " ")]
            i += 1
        }
        append("-ERR ")
        appendErrorText(text + args)
        append("\r\n")
    }
}

/// At most `max` bytes of `bytes`, ending at the first NUL (C's `%.*s`).
private func cString(_ bytes: UnsafeRawBufferPointer, max: Int) -> [UInt8] {
    var out: [UInt8] = []
    for byte in bytes.prefix(Swift.max(max, 0)) {
        if byte == 0 { break }
        out.append(byte)
    }
    return out
}
