/// One request line of the protocol: `GET key`, `SET key value`, `DEL key`, `QUIT`.
/// Keys contain no spaces; a value is the rest of the line after one space and may contain
/// spaces.
public enum Command: Equatable, Sendable {
    case get(key: String)
    case set(key: String, value: String)
    case delete(key: String)
    case quit

    /// Parses a line (without its line ending). Throws `ProtocolError` for anything else.
    public init(parsing line: Substring) throws(ProtocolError) {
        let verbEnd = line.firstIndex(of: " ") ?? line.endIndex
        let verb = line[..<verbEnd]
        let rest = verbEnd == line.endIndex ? "" : line[line.index(after: verbEnd)...]
        switch verb {
        case "GET": self = .get(key: try Self.key(rest))
        case "DEL": self = .delete(key: try Self.key(rest))
        case "SET":
            guard let space = rest.firstIndex(of: " ") else { throw .wrongArguments("SET") }
            self = .set(key: try Self.key(rest[..<space]), value: String(rest[rest.index(after: space)...]))
        case "QUIT":
            guard rest.isEmpty else { throw .wrongArguments("QUIT") }
            self = .quit
        default: throw .unknownCommand
        }
    }

    private static func key(_ text: Substring) throws(ProtocolError) -> String {
        guard !text.isEmpty, !text.contains(" ") else { throw .badKey }
        return String(text)
    }
}

/// A request the server answers with `ERR …`.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case unknownCommand
    case wrongArguments(String)
    case badKey

    public var description: String {
        switch self {
        case .unknownCommand: "unknown command"
        case .wrongArguments(let verb): "wrong number of arguments for \(verb)"
        case .badKey: "a key is one word"
        }
    }
}
