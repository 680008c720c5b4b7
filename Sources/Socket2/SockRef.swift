import SystemPackage

/// A non-owning view of a socket descriptor: every call and option of ``Socket``, without
/// closing the descriptor when it goes away.
///
/// The descriptor must stay open, and be a socket, for as long as the view is used.
public struct SockRef: SocketHandle, Sendable, Hashable {
    /// The borrowed descriptor.
    public let rawDescriptor: CInt

    /// A view of `socket`'s descriptor; valid while `socket` is alive.
    public init(_ socket: borrowing Socket) {
        rawDescriptor = socket.rawDescriptor
    }

    /// A view of any socket descriptor.
    ///
    /// - Precondition: `rawDescriptor >= 0`.
    public init(rawDescriptor: CInt) {
        precondition(rawDescriptor >= 0, "a socket descriptor is never negative")
        self.rawDescriptor = rawDescriptor
    }

    /// A view of a swift-system `FileDescriptor` that is a socket.
    public init(_ fileDescriptor: FileDescriptor) {
        self.init(rawDescriptor: fileDescriptor.rawValue)
    }
}
