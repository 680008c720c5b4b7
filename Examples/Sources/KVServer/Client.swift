import Socket2
import Socket2Async

/// The client side: connects by name and sends one request line.
public enum KVClient {
    /// Connects to `host`:`port` (both address families, Happy Eyeballs), sends `request` and
    /// returns the reply line.
    public static func send(_ request: String, host: String, port: UInt16, timeout: Duration = .seconds(5)) async throws -> String {
        let connection = try await AsyncSocket.connect(host: host, port: port, timeout: timeout)
        defer { connection.closeInBackground() }
        return try await AsyncSocket.withTimeout(timeout) {
            try await connection.sendAll(request + "\n")
            guard let reply = try await BufferedReader(connection).readLine(maxLength: 1 << 20) else {
                throw NoReply()
            }
            return reply
        }
    }
}

/// The server closed the connection without a reply line.
public struct NoReply: Error, CustomStringConvertible {
    public var description: String { "the server closed the connection without a reply" }
}
