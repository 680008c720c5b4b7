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

#endif
