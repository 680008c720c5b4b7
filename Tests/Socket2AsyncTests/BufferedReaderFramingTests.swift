import Testing
@testable import Socket2Async

// The reader's framing against a reference parser over the whole input, with the input split
// at every position, in random chunks and one byte at a time, for every prefix of valid input,
// random bytes and random and lying length prefixes. No socket: an in-memory source delivers
// the chunks.

/// Delivers chosen chunks, then the end of the stream.
final class ChunkSource: ByteSource {
    private var chunks: [[UInt8]]
    private var next = 0
    /// Called at the start of every receive.
    var onReceive: () -> Void = {}
    /// The largest chunk.
    let largest: Int

    init(_ chunks: [[UInt8]]) {
        self.chunks = chunks.filter { !$0.isEmpty }   // an empty chunk would mean the end
        largest = chunks.map(\.count).max() ?? 0
    }

    nonisolated(nonsending) func receive<R>(_ body: (RawSpan) throws -> R) async throws -> R {
        onReceive()
        let chunk = next < chunks.count ? chunks[next] : []
        next += 1
        return try body(chunk.span.bytes)
    }
}

/// A seeded generator (SplitMix64): the same cases on every run.
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

/// What one read gave.
enum ReadOutcome: Equatable, CustomStringConvertible {
    case item([UInt8])
    case end
    case error(BufferedReaderError)

    var description: String {
        switch self {
        case .item(let bytes): return "item\(bytes)"
        case .end: return "end"
        case .error(let error): return "error(\(error))"
        }
    }
}

/// What the reader should give for `input` read with `framing` until the end: a simple parser
/// of the whole input that follows the documented rules.
func referenceOutcomes(_ framing: BufferedReader.Framing, _ input: [UInt8]) -> [ReadOutcome] {
    var outcomes: [ReadOutcome] = []
    var index = 0
    while index < input.count {
        let remaining = input.count - index
        switch framing {
        case .delimiter(let delimiter, let maxLength, let strippingCR):
            if let found = input[index...].firstIndex(of: delimiter) {
                var length = found - index
                if strippingCR, length > 0, input[found - 1] == 0x0D { length -= 1 }
                outcomes.append(length > maxLength ? .error(.tooLong(limit: maxLength)) : .item(Array(input[index..<(index + length)])))
                index = found + 1
            } else if remaining >= maxLength + (strippingCR ? 2 : 1) {
                outcomes.append(.error(.tooLong(limit: maxLength)))
                index = input.count
            } else {
                outcomes.append(.error(.endOfStream(partial: Array(input[index...]))))
                index = input.count
            }
        case .count(let count):
            if remaining >= count {
                outcomes.append(.item(Array(input[index..<(index + count)])))
                index += count
            } else {
                outcomes.append(.error(.endOfStream(partial: Array(input[index...]))))
                index = input.count
            }
        case .frame(let prefix, let maxLength):
            let width = prefix.byteCount
            guard remaining >= width else {
                outcomes.append(.error(.endOfStream(partial: Array(input[index...]))))
                index = input.count
                break
            }
            let length = input[index..<(index + width)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if length > UInt64(maxLength) {
                outcomes.append(.error(.frameTooLong(length: length, limit: maxLength)))
                index += width + Int(min(length, UInt64(remaining - width)))
            } else if UInt64(remaining - width) >= length {
                outcomes.append(.item(Array(input[(index + width)..<(index + width + Int(length))])))
                index += width + Int(length)
            } else {
                outcomes.append(.error(.endOfStream(partial: Array(input[index...]))))
                index = input.count
            }
        }
    }
    outcomes.append(.end)
    return outcomes
}

/// Reads `framing` from `chunks` until the end, alternately with the closure form and the
/// array form, checking after each read that the reader's buffer stays within its bound.
func readAll(_ framing: BufferedReader.Framing, _ chunks: [[UInt8]]) async -> [ReadOutcome] {
    let source = ChunkSource(chunks)
    let reader = BufferedReader(source: source)
    var outcomes: [ReadOutcome] = []
    let limit: Int
    switch framing {
    case .delimiter(_, let maxLength, _): limit = maxLength + 2
    case .count(let count): limit = count
    case .frame(let prefix, let maxLength): limit = min(maxLength, 1 << 30) + prefix.byteCount
    }
    let bound = max(256, 2 * (limit + source.largest))
    for round in 0..<10_000 {
        do {
            let item: [UInt8]?
            if round % 2 == 0 {
                item = try await reader.read(framing) { [UInt8](copying: $0) }
            } else {
                var copy: [UInt8] = []
                let found: Void? = try await reader.read(framing) { copy = [UInt8](copying: $0) }
                item = found.map { copy }
            }
            guard let item else {
                outcomes.append(.end)
                break
            }
            outcomes.append(.item(item))
        } catch let error as BufferedReaderError {
            outcomes.append(.error(error))
        } catch {
            Issue.record("unexpected \(error)")
            break
        }
        #expect(reader.bufferCapacity <= bound, "buffer of \(reader.bufferCapacity) bytes, bound \(bound)")
    }
    return outcomes
}

/// Every way of cutting `input` into two chunks, into random chunks, and into single bytes.
func chunkings(_ input: [UInt8], random: inout SeededGenerator, randomCount: Int = 4) -> [[[UInt8]]] {
    var result = (0...input.count).map { [Array(input[..<$0]), Array(input[$0...])] }
    result.append(input.map { [$0] })
    for _ in 0..<randomCount {
        var chunks: [[UInt8]] = []
        var index = 0
        while index < input.count {
            let size = Int.random(in: 1...8, using: &random)
            chunks.append(Array(input[index..<min(input.count, index + size)]))
            index += size
        }
        result.append(chunks)
    }
    return result
}

/// Checks the reader against the reference for `input` in every chunking.
func checkFraming(_ framing: BufferedReader.Framing, _ input: [UInt8], random: inout SeededGenerator) async {
    let expected = referenceOutcomes(framing, input)
    for chunks in chunkings(input, random: &random) {
        let outcomes = await readAll(framing, chunks)
        #expect(outcomes == expected, "\(framing) of \(input) in chunks \(chunks.map(\.count))")
        if outcomes != expected { return }
    }
}

/// Big-endian bytes of `value` in `width` bytes.
func bigEndian(_ value: UInt64, width: Int) -> [UInt8] {
    (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(width - 1 - $0))) }
}

@Suite struct BufferedReaderFramingTests {
    @Test func linesInEveryChunking() async {
        var random = SeededGenerator(seed: 1)
        let fixed: [[UInt8]] = [
            Array("hello\nworld\n".utf8), Array("\n\n\n".utf8), Array("a\r\nbb\r\n\r\n".utf8),
            Array("no newline at the end".utf8), Array("toolongline\nok\n".utf8), Array("\r\r\n\r".utf8),
        ]
        for input in fixed {
            for maxLength in [0, 2, 5, 30] {
                for strippingCR in [false, true] {
                    await checkFraming(.delimiter(0x0A, maxLength: maxLength, strippingCR: strippingCR), input, random: &random)
                }
            }
        }
    }

    @Test func randomDelimitedInputAndEveryPrefix() async {
        var random = SeededGenerator(seed: 2)
        // Binary bytes with the delimiter (0) and CR frequent, so that they fall on chunk edges.
        let alphabet: [UInt8] = [0, 0, 0x0D, 0x0A, 0x41, 0xFF]
        for _ in 0..<200 {
            let input = (0..<Int.random(in: 0...24, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            let maxLength = Int.random(in: 0...6, using: &random)
            let delimiter: UInt8 = Bool.random(using: &random) ? 0 : 0x0A
            let framing = BufferedReader.Framing.delimiter(delimiter, maxLength: maxLength, strippingCR: Bool.random(using: &random))
            await checkFraming(framing, input, random: &random)
        }
        let valid = Array("first\nsecond line\n\nlast\n".utf8)
        for end in 0...valid.count {
            await checkFraming(.delimiter(0x0A, maxLength: 16, strippingCR: true), Array(valid[..<end]), random: &random)
        }
    }

    @Test func exactCountsInEveryChunkingAndPrefix() async {
        var random = SeededGenerator(seed: 3)
        let input = (0..<23).map { UInt8($0) }
        for count in [1, 2, 5, 23, 40] {
            for end in 0...input.count {
                await checkFraming(.count(count), Array(input[..<end]), random: &random)
            }
        }
    }

    @Test func framesInEveryChunkingAndPrefix() async {
        var random = SeededGenerator(seed: 4)
        for prefix in [BufferedReader.LengthPrefix.uint8, .uint16, .uint32, .uint64] {
            let width = prefix.byteCount
            // Valid frames, an empty one among them.
            var valid: [UInt8] = []
            for length in [3, 0, 7, 1] {
                valid += bigEndian(UInt64(length), width: width) + (0..<length).map { UInt8(0x60 + $0) }
            }
            for end in 0...valid.count {
                await checkFraming(.frame(prefix, maxLength: 7), Array(valid[..<end]), random: &random)
            }
            // A frame over the limit, then a valid one: the first is dropped, the second read.
            let overLong = bigEndian(9, width: width) + [UInt8](repeating: 0xAA, count: 9) + bigEndian(2, width: width) + [1, 2]
            await checkFraming(.frame(prefix, maxLength: 8), overLong, random: &random)
        }
    }

    @Test func randomAndLyingLengthPrefixes() async {
        var random = SeededGenerator(seed: 5)
        for _ in 0..<200 {
            let prefix = [BufferedReader.LengthPrefix.uint8, .uint16, .uint32, .uint64].randomElement(using: &random)!
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                // Lengths that fit, lengths past the limit, lengths past the input, and huge ones.
                let length: UInt64 = [0, 1, 5, 9, 40, UInt64.max, UInt64.max >> 1, 1 << 40]
                    .randomElement(using: &random)!
                input += bigEndian(length, width: prefix.byteCount)
                input += (0..<Int.random(in: 0...10, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            let maxLength = [0, 4, 9, 100, Int.max].randomElement(using: &random)!
            await checkFraming(.frame(prefix, maxLength: maxLength), input, random: &random)
        }
    }

    @Test func anOverLongLineIsDroppedAndReadingGoesOn() async throws {
        // 1,000 bytes without a newline in 10-byte chunks, then a short line: the reader throws
        // once its limit is passed, keeps no more than about the limit, and reads on.
        let long = [UInt8](repeating: 0x61, count: 1000)
        let input = long + Array("\nnext\n".utf8)
        let chunks = stride(from: 0, to: input.count, by: 10).map { Array(input[$0..<min(input.count, $0 + 10)]) }
        let source = ChunkSource(chunks)
        let reader = BufferedReader(source: source)
        var largest = 0
        source.onReceive = { [unowned reader] in largest = max(largest, reader.bufferCapacity) }
        await #expect(throws: BufferedReaderError.tooLong(limit: 16)) { try await reader.readLine(maxLength: 16) }
        #expect(try await reader.readLine(maxLength: 16) == "next")
        #expect(try await reader.readLine(maxLength: 16) == nil)
        #expect(largest <= 256)
    }

    @Test func anIdleReaderHoldsNoBuffer() async throws {
        // Two lines in one chunk, then a line split over two chunks.
        let source = ChunkSource([Array("one\ntwo\nth".utf8), Array("ree\n".utf8)])
        let reader = BufferedReader(source: source)
        var heldWhileReceiving: [Int] = []
        source.onReceive = { [unowned reader] in heldWhileReceiving.append(reader.bufferCapacity) }
        #expect(try await reader.readLine() == "one")
        #expect(reader.bufferedByteCount == 6)           // "two\nth" kept from the chunk
        #expect(try await reader.readLine() == "two")
        #expect(try await reader.readLine() == "three")
        #expect(try await reader.readLine() == nil)
        // The first receive had nothing, the second waited with the partial "th", the third
        // (the end) with an empty buffer released.
        #expect(heldWhileReceiving.count == 3)
        #expect(heldWhileReceiving[0] == 0 && heldWhileReceiving[1] > 0 && heldWhileReceiving[2] == 0)
    }

    @Test func anErrorOfTheBodyConsumesTheItemAndKeepsTheRest() async throws {
        struct Refused: Error {}
        let reader = BufferedReader(source: ChunkSource([Array("a\nb\n".utf8)]))
        await #expect(throws: Refused.self) { try await reader.readLine { _ in throw Refused() } }
        #expect(try await reader.readLine() == "b")
    }

    @Test func theEndInsideAnItemHandsOverItsBytes() async throws {
        let reader = BufferedReader(source: ChunkSource([Array("done\npart".utf8)]))
        #expect(try await reader.readLine() == "done")
        await #expect(throws: BufferedReaderError.endOfStream(partial: Array("part".utf8))) { try await reader.readLine() }
        #expect(try await reader.readLine() == nil)
        #expect(reader.bufferCapacity == 0)
    }
}
