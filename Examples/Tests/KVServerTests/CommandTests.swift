import KVServer
import Testing

/// A seeded generator (SplitMix64), so that a failure can be repeated.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct CommandTests {
    @Test func validCommandsParse() throws {
        #expect(try Command(parsing: "GET a") == .get(key: "a"))
        #expect(try Command(parsing: "SET a hello world") == .set(key: "a", value: "hello world"))
        #expect(try Command(parsing: "SET a ") == .set(key: "a", value: ""))
        #expect(try Command(parsing: "DEL a") == .delete(key: "a"))
        #expect(try Command(parsing: "QUIT") == .quit)
    }

    @Test func badCommandsAreRefused() {
        #expect(throws: ProtocolError.unknownCommand) { try Command(parsing: "get a") }
        #expect(throws: ProtocolError.unknownCommand) { try Command(parsing: "") }
        #expect(throws: ProtocolError.badKey) { try Command(parsing: "GET") }
        #expect(throws: ProtocolError.badKey) { try Command(parsing: "GET  a") }
        #expect(throws: ProtocolError.wrongArguments("SET")) { try Command(parsing: "SET a") }
        #expect(throws: ProtocolError.wrongArguments("QUIT")) { try Command(parsing: "QUIT now") }
    }

    /// Every prefix of valid lines, and random lines over the protocol's own characters: each
    /// parses or is refused, and a parsed command printed again parses to itself.
    @Test func prefixesAndRandomLinesNeverCrash() throws {
        var random = SeededGenerator(state: 13)
        let alphabet = Array("GETSDLQUI a\u{e9}\r\t ")
        var lines = ["GET key", "SET key a value", "DEL key", "QUIT"].flatMap { line in
            (0...line.count).map { String(line.prefix($0)) }
        }
        for _ in 0..<20_000 {
            lines.append(String((0..<Int.random(in: 0...12, using: &random)).map { _ in alphabet.randomElement(using: &random)! }))
        }
        for line in lines {
            guard let command = try? Command(parsing: line[...]) else { continue }
            let printed = switch command {
            case .get(let key): "GET \(key)"
            case .set(let key, let value): "SET \(key) \(value)"
            case .delete(let key): "DEL \(key)"
            case .quit: "QUIT"
            }
            #expect(try Command(parsing: printed[...]) == command, "\(line.debugDescription)")
        }
    }
}
