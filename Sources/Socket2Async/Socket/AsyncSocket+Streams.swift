#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

extension AsyncSocket {
    /// The connections accepted on this listening socket, as an `AsyncSequence` of
    /// `(socket, address)`.
    ///
    /// With io_uring one multishot `IORING_OP_ACCEPT` feeds the sequence; with epoll each
    /// element is one `accept4(2)`. The sequence ends when the listener is closed; it throws
    /// `CancellationError` when the iterating task is cancelled while waiting (no connection is
    /// lost: the next call returns it), and ``ReactorError/shutDown``. Connections the kernel
    /// accepted for the sequence but that were never taken from it when the iterator goes away
    /// stay with the listener: its next ``accept()`` or sequence returns them first.
    /// `EMFILE`/`ENFILE` never end it: accepting backs off and resumes.
    public var incoming: IncomingConnections { IncomingConnections(listener: self) }

    /// The datagrams received on this socket, as an `AsyncSequence` of `(bytes, address)`;
    /// datagrams longer than `maxSize` are truncated. On a stream socket the elements are
    /// chunks of the byte stream of at most `maxSize` bytes each (nothing is cut), with an empty
    /// address, and the sequence ends at the end of the stream.
    ///
    /// With io_uring one multishot `IORING_OP_RECVMSG` with a ring of provided buffers feeds the
    /// sequence (re-armed whenever the kernel stops it, as after `ENOBUFS`); with epoll each
    /// element is one `recvfrom(2)`. The sequence ends when the socket is closed. Datagrams the
    /// multishot request took from the kernel but the iterator did not hand out before it went
    /// away (with `break`, say) are not lost: they stay with the socket, and its next receive
    /// (`recv`, `recvFrom`, `recvMsg`, a stream, a batch) returns them first, in order.
    public func datagrams(maxSize: Int = 65536) -> ReceivedDatagrams {
        ReceivedDatagrams(socket: self, maxSize: max(1, maxSize))
    }
}

/// The connections accepted on a listening socket: see ``AsyncSocket/incoming``.
public struct IncomingConnections: AsyncSequence, Sendable {
    /// An accepted connection and its peer's address.
    public typealias Element = (socket: AsyncSocket, address: SockAddr)

    let listener: AsyncSocket

    /// A new iterator (with io_uring, its own multishot request, started at the first `next()`).
    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: listener.reactor.supportsMultishot ? MultishotHandle(listener, .accept, maxSize: 0) : nil,
                 listener: listener)
    }

    /// Iterates over accepted connections.
    public struct Iterator: AsyncIteratorProtocol {
        let stream: MultishotHandle?
        let listener: AsyncSocket

        /// The next element; `nil` once the socket is closed.
        public mutating func next() async throws -> Element? {
            try await nextConnection()
        }

        /// The next element, waited for in the caller's isolation (no hop off an actor).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
            try await nextConnection()
        }

        private nonisolated(nonsending) func nextConnection() async throws -> Element? {
            do {
                if let stream { return try await stream.nextConnection() }
                return try await listener.accept()
            } catch ReactorError.socketClosed {
                return nil
            }
        }
    }
}

/// The datagrams received on a socket: see ``AsyncSocket/datagrams(maxSize:)``.
public struct ReceivedDatagrams: AsyncSequence, Sendable {
    /// A datagram and its sender's address.
    public typealias Element = (bytes: [UInt8], address: SockAddr)

    let socket: AsyncSocket
    let maxSize: Int

    /// A new iterator (with io_uring, its own multishot request, started at the first `next()`).
    public func makeAsyncIterator() -> Iterator {
        if socket.reactor.supportsMultishot {
            return Iterator(stream: MultishotHandle(socket, .recvMsg, maxSize: maxSize), scratch: nil, socket: socket)
        }
        return Iterator(stream: nil, scratch: ScratchBuffer(maxSize), socket: socket)
    }

    /// Iterates over received datagrams.
    public struct Iterator: AsyncIteratorProtocol {
        let stream: MultishotHandle?
        let scratch: ScratchBuffer?
        let socket: AsyncSocket

        /// The next element; `nil` once the socket is closed.
        public mutating func next() async throws -> Element? {
            try await nextDatagram()
        }

        /// The next element, waited for in the caller's isolation (no hop off an actor).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
            try await nextDatagram()
        }

        private nonisolated(nonsending) func nextDatagram() async throws -> Element? {
            do {
                let element: Element
                if let stream {
                    element = try await stream.nextDatagram()
                } else {
                    let buffer = scratch!.raw
                    let (count, address) = try await socket.recvFrom(into: buffer)
                    element = (Array(UnsafeRawBufferPointer(rebasing: buffer[..<Swift.min(count, buffer.count)])), address)
                }
                // An empty chunk of a stream socket is its end; an empty datagram is a datagram.
                return element.bytes.isEmpty && socket.io.isStream ? nil : element
            } catch ReactorError.socketClosed {
                return nil
            }
        }
    }
}

/// Memory an iterator reuses for every element.
final class ScratchBuffer: @unchecked Sendable {
    let raw: UnsafeMutableRawBufferPointer
    init(_ count: Int) { raw = .allocate(byteCount: count, alignment: 16) }
    deinit { raw.deallocate() }
}
