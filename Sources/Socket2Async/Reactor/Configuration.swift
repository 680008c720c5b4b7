// The sizes a user may choose for a reactor. The defaults suit a server of tens of thousands of
// connections per reactor; a server that must bound its memory more tightly, or that moves large
// messages, sets them (`Reactor(backend:configuration:)`, `ReactorGroup`).

extension Reactor {
    /// What a reactor keeps in the kernel and in memory: the io_uring rings and the receive pool
    /// that lean receives (``AsyncSocket/receive(_:)``) and read handlers
    /// (``AsyncSocket/startReading(_:)``) share. The epoll backend has no such state and ignores
    /// these settings (they are checked all the same).
    ///
    /// Every setting is checked when a reactor is made; a value out of range throws
    /// ``ReactorError/invalidConfiguration(_:)`` naming it.
    public struct Configuration: Sendable, Hashable {
        /// io_uring: entries of the submission queue, 1 to 32,768 (default 1,024); the kernel
        /// rounds them up to a power of two (`io_uring_setup(2)`'s `entries`). Operations that
        /// do not fit in one turn are submitted in several batches, not refused.
        public var submissionQueueEntries = Int(ReactorOptions().submissionEntries)
        /// io_uring: entries of the completion queue, from the submission entries to 65,536
        /// (default 8,192; `IORING_SETUP_CQSIZE`). An overflow loses nothing (the kernel keeps
        /// the completions, `IORING_FEAT_NODROP`) but costs a flush.
        public var completionQueueEntries = Int(ReactorOptions().completionEntries)
        /// io_uring: bytes per buffer of the receive pool, 1 to 1 GiB (default 64 KiB). Each
        /// buffer is its own mapping, so sizes that are not a multiple of the page size waste
        /// the rest of the last page. With incremental consumption (Linux 6.12) the small
        /// messages of many connections share a buffer; a stream takes up to four buffers'
        /// worth of bytes per turn of the reactor before the others are served.
        public var receiveBufferSize = ReceivePoolSize().bufferSize
        /// io_uring: buffers the pool keeps however idle the reactor is, 1 to
        /// ``maximumReceiveBuffers`` (default 4).
        public var minimumReceiveBuffers = ReceivePoolSize().minimumBuffers
        /// io_uring: buffers the pool holds at most, 1 to 32,768 (default 64: 4 MiB with the
        /// default size). The pool grows (doubling) when the kernel finds it empty and gives
        /// buffers back when they go unused; at the maximum, connections whose input finds no
        /// buffer wait their turn, first come first served, and lose no byte.
        public var maximumReceiveBuffers = ReceivePoolSize().maximumBuffers

        /// The defaults.
        public init() {}

        /// Throws ``ReactorError/invalidConfiguration(_:)`` for the first setting out of range.
        func validate() throws(ReactorError) {
            func check(_ valid: Bool, _ reason: @autoclosure () -> String) throws(ReactorError) {
                if !valid { throw .invalidConfiguration(reason()) }
            }
            try check((1...32768).contains(submissionQueueEntries),
                      "submissionQueueEntries is \(submissionQueueEntries); it must be 1...32768")
            try check((submissionQueueEntries...65536).contains(completionQueueEntries),
                      "completionQueueEntries is \(completionQueueEntries); it must be submissionQueueEntries...65536")
            try check((1...(1 << 30)).contains(receiveBufferSize),
                      "receiveBufferSize is \(receiveBufferSize); it must be 1...1073741824")
            try check((1...32768).contains(maximumReceiveBuffers),
                      "maximumReceiveBuffers is \(maximumReceiveBuffers); it must be 1...32768")
            try check((1...maximumReceiveBuffers).contains(minimumReceiveBuffers),
                      "minimumReceiveBuffers is \(minimumReceiveBuffers); it must be 1...maximumReceiveBuffers (\(maximumReceiveBuffers))")
        }
    }
}

extension ReactorOptions {
    /// The options of a reactor made with `configuration` (checked).
    init(_ configuration: Reactor.Configuration) throws(ReactorError) {
        try configuration.validate()
        self.init()
        submissionEntries = UInt32(configuration.submissionQueueEntries)
        completionEntries = UInt32(configuration.completionQueueEntries)
        receivePool.bufferSize = configuration.receiveBufferSize
        receivePool.minimumBuffers = configuration.minimumReceiveBuffers
        receivePool.maximumBuffers = configuration.maximumReceiveBuffers
    }
}
