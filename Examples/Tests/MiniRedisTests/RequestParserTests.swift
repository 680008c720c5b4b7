import MiniRedis
import Testing

/// A seeded generator (SplitMix64): the same cases on every run, and a failure names its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Parses `bytes` (a copy: inline parsing rewrites in place) with `parser`; returns the outcome
/// and the arguments of a complete request.
func parse(_ bytes: [UInt8], with parser: inout RequestParser) -> (RequestParser.Outcome, [[UInt8]]) {
    var copy = bytes
    return copy.withUnsafeMutableBytes { buffer in
        let outcome = parser.parse(buffer)
        guard case .request = outcome else { return (outcome, []) }
        let arguments = parser.arguments.map { argument in
            // Every argument lies inside the input.
            precondition(argument.offset >= 0 && argument.count >= 0 && argument.offset + argument.count <= buffer.count)
            return Array(buffer[argument.offset..<(argument.offset + argument.count)])
        }
        return (outcome, arguments)
    }
}

func multibulk(_ arguments: [[UInt8]]) -> [UInt8] {
    var bytes = Array("*\(arguments.count)\r\n".utf8)
    for argument in arguments { bytes += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
    return bytes
}

func randomArguments(_ random: inout SeededGenerator, binary: Bool) -> [[UInt8]] {
    (0..<Int.random(in: 1...6, using: &random)).map { _ in
        (0..<Int.random(in: 0...40, using: &random)).map { _ in
            binary ? UInt8.random(in: 0...255, using: &random) : UInt8.random(in: 97...122, using: &random)
        }
    }
}

/// Bytes that make the parser's headers, quotes and escapes likely in random input.
let parserAlphabet: [UInt8] = Array("*$\r\n0123456789-+ \"'\\xab".utf8) + [0, 255]

@Suite struct RequestParserTests {
    @Test func multibulkRequestsParseAndEveryPrefixIsIncomplete() {
        var random = SeededGenerator(seed: 1)
        for _ in 0..<300 {
            let arguments = randomArguments(&random, binary: true)
            let bytes = multibulk(arguments)
            // Every prefix, each with a new parser: incomplete, never a request or an error.
            for end in 0..<bytes.count {
                var fresh = RequestParser(maxBulk: 1 << 20)
                let (outcome, _) = parse(Array(bytes[..<end]), with: &fresh)
                guard case .incomplete(let needed) = outcome else {
                    Issue.record("prefix of \(end) bytes of \(bytes): \(outcome)")
                    return
                }
                #expect(needed > end)
            }
            // The same prefixes fed to one parser, as reads arrive: it resumes.
            var parser = RequestParser(maxBulk: 1 << 20)
            var end = 0
            var last: (RequestParser.Outcome, [[UInt8]]) = (.incomplete(needed: 1), [])
            while true {
                last = parse(Array(bytes[..<end]), with: &parser)
                guard case .incomplete(let needed) = last.0 else { break }
                #expect(needed > end && needed <= bytes.count)
                end = min(bytes.count, end + Int.random(in: 1...(needed - end), using: &random))
            }
            #expect(last.0 == .request(length: bytes.count))
            #expect(last.1 == arguments)
        }
    }

    @Test func pipelinedRequestsParseOneAfterAnother() {
        var random = SeededGenerator(seed: 2)
        let requests = (0..<50).map { _ in randomArguments(&random, binary: true) }
        var bytes = requests.flatMap(multibulk)
        var parser = RequestParser(maxBulk: 1 << 20)
        for expected in requests {
            let (outcome, arguments) = parse(bytes, with: &parser)
            guard case .request(let length) = outcome else {
                Issue.record("\(outcome)")
                return
            }
            #expect(arguments == expected)
            bytes.removeFirst(length)
        }
        #expect(bytes.isEmpty)
    }

    @Test func inlineCommandsSplitAsRedisDoes() {
        let cases: [(String, [String]?)] = [
            ("GET k\r\n", ["GET", "k"]),
            ("  set   a  b \n", ["set", "a", "b"]),
            ("set \"a b\" 'c d'\r\n", ["set", "a b", "c d"]),
            ("echo \"\\x41\\n\\t\"\r\n", ["echo", "A\n\t"]),
            ("echo 'it\\'s'\r\n", ["echo", "it's"]),
            ("echo \"abc\r\n", nil),
            ("echo \"a\"b\r\n", nil),
            ("echo 'a\r\n", nil),
        ]
        for (line, expected) in cases {
            var parser = RequestParser(maxBulk: 100)
            let (outcome, arguments) = parse(Array(line.utf8), with: &parser)
            if let expected {
                #expect(outcome == .request(length: line.utf8.count), "\(line)")
                #expect(arguments == expected.map { Array($0.utf8) }, "\(line)")
            } else {
                #expect(outcome == .error(.unbalancedQuotes), "\(line)")
            }
        }
        var parser = RequestParser(maxBulk: 100)
        #expect(parse(Array("\r\n".utf8), with: &parser).0 == .empty(length: 2))
        #expect(parse(Array("   \n".utf8), with: &parser).0 == .empty(length: 4))
    }

    @Test func malformedInputIsTheErrorRedisReports() {
        let cases: [(String, RequestParser.ProtocolError)] = [
            ("*abc\r\n", .invalidMultibulkLength),
            ("*2147483648\r\n", .invalidMultibulkLength),
            ("*01\r\n", .invalidMultibulkLength),
            ("*1\r\nx3\r\nfoo\r\n", .expectedDollar(got: UInt8(ascii: "x"))),
            ("*1\r\n$-1\r\n", .invalidBulkLength),
            ("*1\r\n$abc\r\n", .invalidBulkLength),
            ("*1\r\n$101\r\n", .invalidBulkLength),  // over maxBulk
            ("*1\r\n$+1\r\n", .invalidBulkLength),
        ]
        for (input, error) in cases {
            var parser = RequestParser(maxBulk: 100)
            #expect(parse(Array(input.utf8), with: &parser).0 == .error(error), "\(input)")
        }
        var parser = RequestParser(maxBulk: 100)
        #expect(parse(Array("*0\r\n".utf8), with: &parser).0 == .empty(length: 4))
        #expect(parse(Array("*-1\r\n".utf8), with: &parser).0 == .empty(length: 5))
        #expect(parse(Array("*1\r\n$100\r\n".utf8), with: &parser).0 == .incomplete(needed: 112))
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: RequestParser.inlineMax + 1)
        parser = RequestParser(maxBulk: 100)
        #expect(parse(long, with: &parser).0 == .error(.tooBigInlineRequest))
        #expect(parse([UInt8(ascii: "*")] + long, with: &parser).0 == .error(.tooBigMultibulkCount))
        #expect(parse(Array("*1\r\n$".utf8) + long, with: &parser).0 == .error(.tooBigBulkCount))
        // A line just at the limit is still waited for.
        let atLimit = [UInt8](repeating: UInt8(ascii: "x"), count: RequestParser.inlineMax)
        #expect(parse(atLimit, with: &parser).0 == .incomplete(needed: atLimit.count + 1))
    }

    /// Bulk lengths that lie (longer or shorter than the data): the parser waits or misreads the
    /// rest as the next header, as Redis does, but never reads outside the input.
    @Test func lyingLengthsNeverReadOutOfBounds() {
        var random = SeededGenerator(seed: 3)
        for _ in 0..<2000 {
            let arguments = randomArguments(&random, binary: false)
            var text = "*\(arguments.count + Int.random(in: -1...2, using: &random))\r\n"
            for argument in arguments {
                let lie = max(0, argument.count + Int.random(in: -3...3, using: &random))
                text += "$\(lie)\r\n" + String(decoding: argument, as: UTF8.self) + "\r\n"
            }
            exhaust(Array(text.utf8), maxBulk: 64)
        }
    }

    @Test func randomBytesNeverCrash() {
        var random = SeededGenerator(seed: 4)
        for round in 0..<3000 {
            let count = Int.random(in: 0...200, using: &random)
            let bytes: [UInt8] = (0..<count).map { _ in
                round % 2 == 0 ? parserAlphabet.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            exhaust(bytes, maxBulk: Int.random(in: 0...100, using: &random))
        }
    }

    /// Parses `bytes` until an error or the end, consuming each request, also resuming over
    /// growing prefixes; every argument must lie inside the input.
    private func exhaust(_ bytes: [UInt8], maxBulk: Int) {
        var parser = RequestParser(maxBulk: maxBulk)
        var rest = bytes[...]
        var available = min(rest.count, 1)
        while true {
            let (outcome, _) = parse(Array(rest.prefix(available)), with: &parser)
            switch outcome {
            case .request(let length), .empty(let length):
                #expect(length > 0 && length <= available)
                rest = rest.dropFirst(length)
                available = min(rest.count, 1)
            case .incomplete(let needed):
                #expect(needed > available)
                if available == rest.count { return }
                available = min(rest.count, needed)
            case .error:
                return
            }
        }
    }

    /// The lean receive's form (`parse(readOnly:)`, in bytes it may not write) agrees with
    /// `parse` on multibulk input and on a request it began that `parse` resumes in a copy (an
    /// incomplete tail), declines inline commands, and leaves the bytes as they were.
    @Test func readOnlyParsingAgreesAndDeclinesInlineCommands() {
        var random = SeededGenerator(seed: 5)
        for round in 0..<3000 {
            var bytes: [UInt8] = round % 3 == 0
                ? multibulk(randomArguments(&random, binary: true))
                : (0..<Int.random(in: 0...120, using: &random)).map { _ in parserAlphabet.randomElement(using: &random)! }
            if round % 3 == 1, !bytes.isEmpty { bytes[0] = UInt8(ascii: "*") }
            let split = Int.random(in: 0...bytes.count, using: &random)
            let maxBulk = Int.random(in: 0...64, using: &random)
            var lean = RequestParser(maxBulk: maxBulk), copying = RequestParser(maxBulk: maxBulk)
            let first = Array(bytes[..<split])
            let leanOutcome = first.withUnsafeBytes { lean.parse(readOnly: $0) }
            let (copyingOutcome, _) = parse(first, with: &copying)
            guard let leanOutcome else {
                #expect(first.first.map { $0 != UInt8(ascii: "*") } == true)
                continue
            }
            #expect(leanOutcome == copyingOutcome, "\(first)")
            if case .request = leanOutcome {
                #expect(lean.arguments == copying.arguments)
            }
            guard case .incomplete = leanOutcome else { continue }
            let (resumed, leanArguments) = parse(bytes, with: &lean)
            let (whole, copyingArguments) = parse(bytes, with: &copying)
            #expect(resumed == whole && leanArguments == copyingArguments, "\(bytes) split at \(split)")
        }
    }

    @Test func integersParseAsRedisParsesThem() {
        func integer(_ text: String) -> Int64? {
            Array(text.utf8).withUnsafeBytes { parseInteger($0) }
        }
        #expect(integer("0") == 0)
        #expect(integer("-1") == -1)
        #expect(integer("9223372036854775807") == .max)
        #expect(integer("-9223372036854775808") == .min)
        for bad in ["", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1a"] {
            #expect(integer(bad) == nil, "\(bad)")
        }
    }
}
