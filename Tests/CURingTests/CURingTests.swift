import Testing
import CURing

/// Proves that liburing links and that this kernel lets the process create a ring.
@Test func ringCanBeCreated() {
    var ring = io_uring()
    let result = io_uring_queue_init(8, &ring, 0)
    #expect(result == 0, "io_uring_queue_init returned \(result)")
    if result == 0 {
        #expect(ring.ring_fd >= 0)
        io_uring_queue_exit(&ring)
    }
}
