#!/bin/bash
# Counts, per echoed message, the system calls and the Swift concurrency runtime calls that
# socket2-server makes under the peer harness's load generator: where the per-message cost
# beyond the kernel's goes. Needs root, perf (uprobes), the Benchmarks package built in release
# and ../shared/bench built (./build.sh), or LOADGEN naming a load generator built elsewhere
# (shared/ is read-only: build a copy of the harness and point LOADGEN at its build/loadgen).
#
#   scripts/runtime-calls.sh [--backend io_uring|epoll] [--mode tcp-echo|udp-echo] [-- LOADGEN ARGS]
#
# Defaults: io_uring, tcp-echo, `--conns 32 --size 64` (the harness's tcp-echo-32). A message is
# one reply: the counts are divided by the server's send system calls (sendto, sendmsg, write)
# in the same window, so the uprobes' own slowdown does not skew them. SERVER names another
# server binary to count (an experiment's build), with the same command-line contract.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=io_uring mode=tcp-echo
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--backend B] [--mode M] [-- loadgen args]" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || set -- --conns 32 --size 64
server=${SERVER:-Benchmarks/.build/release/socket2-server}
loadgen=${LOADGEN:-../shared/bench/build/loadgen}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "uprobes need root" >&2; exit 1; }
[ -x "$server" ] || { echo "build first: swift build -c release --package-path Benchmarks" >&2; exit 1; }
[ -x "$loadgen" ] || { echo "build the peer harness first: (cd ../shared/bench && ./build.sh)" >&2; exit 1; }

concurrency=$(readlink -f "$(ldd "$server" | awk '$1 == "libswift_Concurrency.so" {print $3}')")
core=$(readlink -f "$(ldd "$server" | awk '$1 == "libswiftCore.so" {print $3}')")
libc=$(readlink -f "$(ldd "$server" | awk '$1 == "libc.so.6" {print $3}')")
# getPreferredTaskExecutor is a C++ method with no exported name: probe it by address.
preferred=$(nm "$concurrency" | awk '$3 == "_ZN5swift9AsyncTask24getPreferredTaskExecutorEb" {print "0x" $1}')

group=s2rt
cleanup() {
    perf probe -q -d "$group:*" 2>/dev/null || true
    [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
add() { perf probe -q -x "$1" -a "$group:$2=$3"; }
add "$concurrency" task_switch swift_task_switch
add "$concurrency" task_enqueue swift_task_enqueue
add "$concurrency" continuation_resume swift_continuation_resume
add "$concurrency" add_cancellation_handler swift_task_addCancellationHandler
add "$concurrency" status_record_lock withStatusRecordLock
[ -n "$preferred" ] && add "$concurrency" preferred_task_executor "$preferred"
add "$concurrency" task_alloc swift_task_alloc
add "$core" retain swift_retain
add "$core" release swift_release
add "$libc" pthread_mutex_lock pthread_mutex_lock
add "$libc" malloc malloc

port=$((20000 + RANDOM % 20000))
taskset -c 0 "$server" --backend "$backend" --mode "$mode" --port "$port" >/dev/null 2>&1 &
spid=$!
sleep 1
taskset -c 1 "$loadgen" "$mode" --port "$port" --warmup 0.5 --duration 4 "$@" >/dev/null &
lpid=$!
sleep 1.5
counts=$(perf stat -x, -p "$spid" -e "$group:*" \
    -e syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_write \
    -e syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_read \
    -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_io_uring_enter -- sleep 2 2>&1 >/dev/null)
wait "$lpid"
echo "socket2-server --backend $backend --mode $mode; loadgen $mode $*"
echo "$counts" | awk -F, '
    { n[$3] = $1; order[++k] = $3 }
    END {
        m = n["syscalls:sys_enter_sendto"] + n["syscalls:sys_enter_sendmsg"] + n["syscalls:sys_enter_write"]
        if (m == 0) { print "no replies sent in the window"; exit 1 }
        printf "%d replies in the window\n", m
        for (i = 1; i <= k; i++) { name = order[i]; sub(/^(s2rt|syscalls):(sys_enter_)?/, "", name); printf "%8.2f  %s\n", n[order[i]] / m, name }
    }'
