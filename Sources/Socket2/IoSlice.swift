#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// The buffers of vectored I/O (`readv`-style scatter/gather through `recvmsg(2)` and
// `sendmsg(2)`). Both types have the layout of `struct iovec`, so an array of them is handed to
// the kernel as it is, without copying.

/// A buffer the kernel may write into, for the vectored receive calls; socket2's
/// `MaybeUninitSlice`. It has the layout of `struct iovec`.
///
/// It holds a pointer, not the memory: the memory must stay valid (and not be accessed by
/// anything else) until the call that uses the slice returns. The kernel writes only the bytes
/// it received, so the memory may be uninitialised. Like socket2's type it is `Sendable`; the
/// caller is responsible for the memory it points to, wherever the slice goes.
public struct MaybeUninitSlice: @unchecked Sendable {
    var vector: iovec

    /// A slice over `buffer`.
    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
    }

    /// The memory the slice points to.
    public var buffer: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: vector.iov_base, count: vector.iov_len)
    }
}

/// A buffer the kernel reads from, for the vectored send calls; Rust's `IoSlice`. It has the
/// layout of `struct iovec`.
///
/// It holds a pointer, not the memory: the memory must stay valid until the call that uses the
/// slice returns.
public struct IoSlice: @unchecked Sendable {
    var vector: iovec

    /// A slice over `buffer`.
    public init(_ buffer: UnsafeRawBufferPointer) {
        vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                       iov_len: buffer.count)
    }

    /// The memory the slice points to.
    public var buffer: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len)
    }
}

// MARK: - Handing buffers to the kernel as iovecs

/// `UIO_MAXIOV`: the most buffers one call takes. More would make the kernel fail with
/// `EMSGSIZE`; the owned-array forms refuse them up front with the same error, which also bounds
/// how deeply they nest their closures.
let maximumIovecs = 1024

/// Runs `body` over `slices` seen as an array of `iovec` (they share its layout).
///
/// The kernel never writes into the `iovec`s themselves (it copies them), so handing out a
/// mutable pointer to read-only storage is sound.
func withIovecs<Slice, R>(
    _ slices: [Slice], _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R
) throws(Errno) -> R {
    precondition(MemoryLayout<Slice>.stride == MemoryLayout<iovec>.stride)
    let result: Result<R, Errno> = slices.withUnsafeBytes { raw in
        let iovecs = UnsafeMutableRawBufferPointer(mutating: raw).bindMemory(to: iovec.self)
        return Result { () throws(Errno) -> R in try body(iovecs) }
    }
    return try result.get()
}

/// Runs `body` with one `iovec` over the storage of each array, in order, for the kernel to
/// read (a send).
func withIovecs<R>(
    reading arrays: [[UInt8]], _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R
) throws(Errno) -> R {
    try arrays.withUnsafeBufferPointer { outer in
        withPinnedIovecs(count: outer.count, body) { index, next in
            outer[index].withUnsafeBytes { next(UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count) }
        }
    }.get()
}

/// Runs `body` with one `iovec` over the storage of each array, in order, for the kernel to
/// write in place (a receive: each array's `count` is its buffer's size).
func withIovecs<R>(
    writing arrays: inout [[UInt8]], _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R
) throws(Errno) -> R {
    // The arrays are reached through a buffer pointer, so that the nested accesses to distinct
    // elements do not overlap as accesses to `arrays` would.
    try arrays.withUnsafeMutableBufferPointer { outer in
        withPinnedIovecs(count: outer.count, body) { index, next in
            outer[index].withUnsafeMutableBytes { next($0.baseAddress, $0.count) }
        }
    }.get()
}

/// Pins `count` buffers, each by a closure nested in the previous one so that all pointers are
/// valid at once, and runs `body` over their `iovec`s.
///
/// `pin(index, next)` must call `next` with the base and size of buffer `index` while it is
/// pinned. More than `UIO_MAXIOV` buffers fail with `EMSGSIZE`, as the kernel would, before
/// any nesting.
private func withPinnedIovecs<R>(
    count: Int,
    _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R,
    pin: (Int, (UnsafeMutableRawPointer?, Int) -> Result<R, Errno>) -> Result<R, Errno>
) -> Result<R, Errno> {
    guard count <= maximumIovecs else { return .failure(.messageTooLong) }
    // `pin` is called recursively from inside its own argument; it never outlives this call.
    return withoutActuallyEscaping(pin) { pin in
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { iovecs in
            func pinFrom(_ index: Int) -> Result<R, Errno> {
                if index == count { return Result { () throws(Errno) -> R in try body(iovecs) } }
                return pin(index) { base, size in
                    iovecs.initializeElement(at: index, to: iovec(iov_base: base, iov_len: size))
                    return pinFrom(index + 1)
                }
            }
            return pinFrom(0)
        }
    }
}
