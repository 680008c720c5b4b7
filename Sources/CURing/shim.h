#ifndef SOCKET2_CURING_SHIM_H
#define SOCKET2_CURING_SHIM_H

// The kernel's <linux/io_uring.h> first: swift-system's CSystem module includes it too, and
// liburing's own copy (same include guard, different text) would then clash with it in any
// Swift file that imports both modules. liburing works with the kernel's definitions.
#include <linux/io_uring.h>
// liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE before its includes, which renames fields of
// some glibc types (fd_set's __fds_bits becomes fds_bits). Included first, with the default
// features Swift's Glibc module uses, they keep one definition across both modules.
#include <sys/select.h>
#include <liburing.h>

// MARK: - Socket2Async: declarations Swift's Glibc module does not import (epoll, eventfd)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <ucontext.h>
#include <unistd.h>

/// accept4(2); glibc's declaration takes a transparent union Swift cannot pass.
static inline int socket2async_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

/// The buffer group of a request that selects a provided buffer (a field in a union).
static inline void socket2async_sqe_set_buf_group(struct io_uring_sqe *sqe, unsigned short group) {
    sqe->buf_group = group;
}

/// The byte limit of a multishot receive (`optlen`, Linux 6.17, in the union of `file_index`,
/// which liburing 2.3's header names): the request ends once it has received that many bytes.
static inline void socket2async_sqe_set_multishot_limit(struct io_uring_sqe *sqe, unsigned limit) {
    sqe->file_index = limit;
}

/// The submission ring's flags the kernel sets (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW).
static inline unsigned socket2async_sq_flags(const struct io_uring *ring) {
    return IO_URING_READ_ONCE(*ring->sq.kflags);
}

/// pthread_setname_np(3), declared only under _GNU_SOURCE.
static inline int socket2async_set_thread_name(pthread_t thread, const char *name) {
    return pthread_setname_np(thread, name);
}

/// The handler of a signal routed to signalfds: a thread that did not block the signal (one
/// created before the routing) blocks it from now on (the mask restored when the handler returns
/// is the context's) and sends it to the process again, where it waits, pending, until a
/// signalfd reads it. Only async-signal-safe calls; `errno` is kept.
static void socket2async_forward_signal(int signal, siginfo_t *info, void *context) {
    (void)info;
    int saved = errno;
    sigaddset(&((ucontext_t *)context)->uc_sigmask, signal);
    kill(getpid(), signal);
    errno = saved;
}

/// sigaction(2) installing `socket2async_forward_signal` for `signal`.
static inline int socket2async_route_signal(int signal) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = socket2async_forward_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(signal, &action, NULL);
}

#endif
