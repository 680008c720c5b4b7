#define _GNU_SOURCE
#include <sched.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <linux/io_uring.h>
#include <errno.h>
#include "cbenchsupport.h"

int cbench_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

int cbench_allowed_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int cbench_current_cpu(void) {
    return sched_getcpu();
}

int cbench_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int cbench_epoll_add(int epfd, int fd, uint32_t id) {
    struct epoll_event event = { .events = EPOLLIN, .data = { .u32 = id } };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int cbench_epoll_wait(int epfd, uint32_t *ids, int max, int timeout_ms) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int count = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < count; i++) ids[i] = events[i].data.u32;
    return count;
}

int cbench_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cbench_perf_tracepoint_counter(int tid, uint64_t tracepoint_id) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = tracepoint_id;
    attr.disabled = 0;
    attr.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int cbench_gettid(void) {
    return (int)syscall(SYS_gettid);
}

long cbench_probe_io_uring_flags(void) {
    const unsigned sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int error = EINVAL;
    for (unsigned i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        struct io_uring_params params;
        memset(&params, 0, sizeof(params));
        params.flags = sets[i] | IORING_SETUP_CQSIZE;
        params.cq_entries = 8192;
        long fd = syscall(SYS_io_uring_setup, 1024, &params);
        if (fd >= 0) {
            close((int)fd);
            return (long)params.flags;
        }
        error = errno;
        if (error != EINVAL) break;
    }
    return -error;
}
