// The DocC articles' Swift snippets, copied verbatim (scripts/check-doc-snippets.py keeps each
// copy equal to its article): compiled with the tests, and run where they can run.

import Socket2
import SystemPackage
import Testing

@Suite("DocC articles")
struct DocArticleTests {
    /// "Sending and receiving through spans".
    @Test func spanArticle() throws {
        let pair = try Socket.pair(domain: .unix, type: .dgram)
        _ = try pair.first.send(Array("ping".utf8).span.bytes)

        // A new array, filled by the kernel: no unsafe pointer, no zeroing.
        let datagram = try [UInt8](capacity: 1500) { (span: inout OutputSpan<UInt8>) throws(Errno) in
            try pair.second.recv(into: &span)
        }

        // One buffer, reused from call to call.
        var storage = [UInt8](repeating: 0, count: 1500)
        var span = storage.mutableSpan
        var buffer = span.mutableBytes
        _ = try pair.first.send(datagram.span.bytes)
        let count = try pair.second.recv(into: &buffer)
        _ = try pair.second.send(buffer.bytes.extracting(first: count))
        #expect(datagram == Array("ping".utf8))
        #expect(count == 4 && storage.prefix(4) == datagram[...])
        #expect(try pair.first.recv(maxCount: 8) == datagram)
    }
}

// "Getting started": a server that serves forever, a client of a server on port 7000 and a
// multicast receiver; compiled, never run.
private enum GettingStarted {
    static func echoServer() throws {
        let listener = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        try listener.setReuseAddress(true)
        try listener.bind(SockAddr(try SocketAddrV4("127.0.0.1:7000")))
        try listener.listen(128)

        while true {
            let connection = try listener.accept()
            print("connection from \(connection.address)")
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try connection.socket.recv(into: $0) }
                if count == 0 { break }  // end of stream
                _ = try connection.socket.send(Array(buffer[..<count]))
            }
        }  // each connection is closed when its value goes out of scope
    }

    static func client() throws {
        let client = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        try client.setTcpNodelay(true)
        try client.connectTimeout(SockAddr(try SocketAddrV4("127.0.0.1:7000")), timeout: .seconds(2))
        _ = try client.send(Array("hello".utf8))
        let reply = try client.recv(maxCount: 5)
        print(String(decoding: reply, as: UTF8.self))
    }

    static func multicastReceiver() throws {
        let group = try IPv4Address("239.255.0.1")
        let receiver = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
        try receiver.setReuseAddress(true)
        try receiver.bind(SockAddr(SocketAddrV4(.unspecified, 5000)))
        try receiver.joinMulticastV4(group, interface: .unspecified)

        while true {
            let (bytes, sender) = try receiver.recvFrom(maxCount: 1500)
            print("\(bytes.count) bytes from \(sender)")
        }
    }
}
