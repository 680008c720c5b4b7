import Socket2
import Testing

/// The README's synchronous example, as written there, so that it stays true.
@Test func readmeSynchronousExampleWorks() throws {
    let listener = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try listener.setReuseAddress(true)
    try listener.bind(SockAddr(try SocketAddrV4("127.0.0.1:0")))
    try listener.listen(128)
    let address = try listener.localAddr()

    let client = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try client.setTcpNodelay(true)
    try client.connectTimeout(address, timeout: .seconds(1))
    _ = try client.send(Array("hello".utf8))

    let connection = try listener.accept()
    try connection.socket.setReadTimeout(.seconds(5))  // bounds the test, not in the README
    let bytes = try connection.socket.recv(maxCount: 64)
    #expect(String(decoding: bytes, as: UTF8.self) == "hello")
    #expect(connection.address == (try client.localAddr()))
}
