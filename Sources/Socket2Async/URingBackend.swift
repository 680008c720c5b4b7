import CURing

final class URingBackend: ReactorBackend {
    var kind: Reactor.Backend { .ioUring }
    var tracksReadiness: Bool { false }
    init(reactor: Reactor, failProbe: Bool) throws {
        throw ReactorError.ioUringUnavailable("not implemented yet")
    }
    func start(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {}
    func cancel(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {}
    func retry(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {}
    func poll(timeout: UInt64?) {}
    func forget(_ io: IOState) {}
    func destroy() {}
}
