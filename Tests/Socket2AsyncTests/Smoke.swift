import Testing
import Socket2

@Test func asyncPlaceholder() throws {
    let s = try Socket(domain: .ipv4, type: .stream)
    #expect(s.rawDescriptor >= 0)
}
