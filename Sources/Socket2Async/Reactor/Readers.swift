// Streams read by a handler instead of a task (`AsyncSocket.startReading`): the reactor calls
// the handler with each chunk as the backend receives it, so a connection that waits for input
// holds no task, no frame and no buffer: only its socket state and the handler's closure.

/// A stream's read handler: the bytes (empty at the end of the stream or with an error) and the
/// error. Called on the reactor thread.
typealias ReadHandler = (RawSpan, (any Error)?) -> ReadHandling

extension Reactor {
    /// Makes `handler` the reader of `io` (reactor thread). Input the reactor already holds, or
    /// that is queued in the kernel, is handed over from the next loop turn on: never inside
    /// this call.
    func startReading(_ io: IOState, of socket: AnyObject, _ handler: @escaping ReadHandler) throws {
        if stopping { throw ReactorError.shutDown }
        if io.closed { throw ReactorError.socketClosed }
        guard io.isStream else { throw Errno.notSupported }
        // One reader at a time: another handler, or a receive waiting on the socket.
        guard io.readHandler == nil, !receiveWaits(io) else { throw Errno.alreadyInProcess }
        let result = impl.prepareReading(io)
        if result < 0 { throw ResultCode.error(for: result) }
        io.readHandler = handler
        io.readSocket = socket
        readers[ObjectIdentifier(io)] = io
        readersToServe.append(io)
    }

    /// Whether an operation waits for `io`'s input. The multishot request of the lean receive
    /// and of handlers (io_uring), which stays armed between them, is not one.
    private func receiveWaits(_ io: IOState) -> Bool {
        var index = io.inputHead
        while index >= 0 {
            if index != io.pooled.armed { return true }
            index = ops.record(index).pointee.next
        }
        return false
    }

    /// Hands `bytes` to `io`'s read handler, if it has one. Empty `bytes` are the end of the
    /// stream (or, with `error`, its failure): reading stops after them, as after
    /// `.stopReading` (reactor thread).
    func deliverInput(_ io: IOState, _ bytes: UnsafeRawBufferPointer, error: (any Error)? = nil) {
        guard let handler = io.readHandler else { return }
        let handling = handler(RawSpan(_unsafeBytes: bytes), error)
        if bytes.isEmpty || handling == .stopReading { stopReading(io) }
    }

    /// Tells `io`'s read handler that its stream ended (or failed with `error`); reading stops.
    func endInput(_ io: IOState, error: (any Error)? = nil) {
        deliverInput(io, UnsafeRawBufferPointer(start: nil, count: 0), error: error)
    }

    /// Drops `io`'s read handler (reactor thread). Bytes that arrive from now on wait in the
    /// kernel for the socket's next receive: on io_uring its multishot request is cancelled, so
    /// that a socket not read meanwhile (its handler's task waits for a slow peer) does not
    /// take, and hold, buffers of the pool the reactor's sockets share.
    func stopReading(_ io: IOState) {
        guard io.readHandler != nil else { return }
        io.readHandler = nil
        uring?.stopPooled(io, reason: .cancelled)
        readers[ObjectIdentifier(io)] = nil
        io.readSocket = nil  // last: it may be the socket's last reference
    }

    /// Serves the readers queued by `startReading` and by backends that ended a turn with input
    /// left (after the poll, on the reactor thread).
    func serveQueuedReaders() {
        swap(&readersToServe, &readersServing)
        for io in readersServing where io.readHandler != nil && !io.closed { impl.serveReader(io) }
        readersServing.removeAll(keepingCapacity: true)
    }

    /// At shutdown: every reader learns that the reactor is shut down, and is dropped.
    func endReaders() {
        let reading = Array(readers.values)
        for io in reading {
            endInput(io, error: ReactorError.shutDown)
        }
        readersToServe.removeAll()
    }
}
