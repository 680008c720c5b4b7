#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

/// One instruction of a classic BPF program (`struct sock_filter`, linux/filter.h), for
/// ``SocketHandle/attachFilter(_:)`` (`SO_ATTACH_FILTER`) and
/// ``SocketHandle/attachReuseportCbpf(_:)`` (`SO_ATTACH_REUSEPORT_CBPF`).
///
/// See the kernel's Documentation/networking/filter.rst for the instruction set; `tcpdump -dd`
/// prints programs in this form.
public struct SockFilter: Hashable, Sendable {
    /// The operation (`BPF_LD | BPF_W | BPF_ABS`, `BPF_RET | BPF_K`, …).
    public var code: UInt16
    /// The jump offset when a conditional jump is taken.
    public var jt: UInt8
    /// The jump offset when it is not.
    public var jf: UInt8
    /// The generic field: a constant, an offset, a return value.
    public var k: UInt32

    /// An instruction from its four fields, as socket2's `SockFilter::new`.
    public init(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    var raw: sock_filter { sock_filter(code: code, jt: jt, jf: jf, k: k) }
}

/// Runs `body` with a `struct sock_fprog` that points at `program` for the duration of the call.
/// A program longer than `UInt16.max` instructions cannot be described and is
/// `Errno.invalidArgument`; an empty one is left to the kernel to refuse.
func withSocketFilterProgram(
    _ program: [SockFilter], _ body: (sock_fprog) throws(Errno) -> Void
) throws(Errno) {
    guard let count = UInt16(exactly: program.count) else { throw .invalidArgument }
    var instructions = program.map(\.raw)
    let result = instructions.withUnsafeMutableBufferPointer { buffer in
        Result { () throws(Errno) in try body(sock_fprog(len: count, filter: buffer.baseAddress)) }
    }
    try result.get()
}
