#ifndef SOCKET2_CURING_SHIM_H
#define SOCKET2_CURING_SHIM_H

#include <liburing.h>
#include <linux/io_uring.h>

// MARK: - Socket2Async: declarations Swift's Glibc module does not import (epoll, eventfd)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <pthread.h>

/// accept4(2); glibc's declaration takes a transparent union Swift cannot pass.
static inline int socket2async_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

/// pthread_setname_np(3), declared only under _GNU_SOURCE.
static inline int socket2async_set_thread_name(pthread_t thread, const char *name) {
    return pthread_setname_np(thread, name);
}

#endif
