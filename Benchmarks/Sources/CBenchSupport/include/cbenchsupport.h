// GNU-only calls the benchmarks need and Swift's Glibc module does not import.
#ifndef CBENCHSUPPORT_H
#define CBENCHSUPPORT_H

/// Pins the calling thread (and the threads it creates later) to one CPU with
/// sched_setaffinity(2). Returns 0 or -1 with errno set.
int cbench_pin_to_cpu(int cpu);

/// The number of CPUs in the calling thread's affinity mask (sched_getaffinity(2)), or -1.
int cbench_allowed_cpus(void);

/// The CPU the calling thread runs on (sched_getcpu(3)).
int cbench_current_cpu(void);

#include <stdint.h>

/// pipe2(fds, O_CLOEXEC).
int cbench_pipe_cloexec(int fds[2]);

/// epoll_create1(EPOLL_CLOEXEC).
int cbench_epoll_create(void);

/// Adds `fd` for level-triggered EPOLLIN, tagged with `id`: epoll_ctl(EPOLL_CTL_ADD).
int cbench_epoll_add(int epfd, int fd, uint32_t id);

/// epoll_wait(2); writes the tags of up to `max` ready descriptors to `ids` (epoll_event is a
/// packed struct on x86-64, so it stays on the C side).
int cbench_epoll_wait(int epfd, uint32_t *ids, int max, int timeout_ms);

/// A counting perf event (perf_event_open(2)) of the tracepoint `tracepoint_id` (for example
/// raw_syscalls/sys_enter) on thread `tid`, any CPU. Returns the descriptor or -1.
int cbench_perf_tracepoint_counter(int tid, uint64_t tracepoint_id);

/// The thread id of the caller (gettid(2)).
int cbench_gettid(void);

/// The first io_uring setup flag set the kernel accepts, tried in the order Socket2Async's
/// reactor tries them (SINGLE_ISSUER|DEFER_TASKRUN, COOP_TASKRUN, none; each with SUBMIT_ALL
/// and CQSIZE), by io_uring_setup(2) on a throw-away ring. Returns the flags, or -errno.
long cbench_probe_io_uring_flags(void);

#endif
