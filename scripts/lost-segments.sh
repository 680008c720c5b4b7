#!/bin/bash
# Runs a server under the peer harness's load generator (tcp-echo, 10,000 connections by default)
# and reports, beside the round trips' p99 and maximum, what the kernel lost and sent again in
# that run: packets dropped because a CPU's loopback backlog was full (`skb:kfree_skb` with
# reason CPU_BACKLOG; `net.core.netdev_max_backlog` packets), by CPU, and TCP retransmissions
# (`tcp:tcp_retransmit_skb`), by side: the server's (its source port is the listening port) or
# the load generator's. A lost data segment waits for a tail-loss probe or the retransmission
# timer (at least `net.ipv4.tcp_rto_min_us`, 200 ms): that is where round trips of 0.4 s at
# 10,000 connections come from. Needs root, perf and the peer harness built (LOADGEN names a load
# generator built elsewhere: shared/ is read-only).
#
#   scripts/lost-segments.sh [--conns N] [--runs N] -- SERVER COMMAND...
#
# The server is started with `--mode tcp-echo --port P` appended and pinned to CPU 0, the load
# generator to CPU 1, as the harness does; each run measures 5 s after 1 s of warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
conns=10000 runs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --conns) conns=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--conns N] [--runs N] -- SERVER COMMAND..." >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--conns N] [--runs N] -- SERVER COMMAND..." >&2; exit 2; }
loadgen=${LOADGEN:-../shared/bench/build/loadgen}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "tracepoints need root" >&2; exit 1; }
[ -x "$loadgen" ] || { echo "build the peer harness first: (cd ../shared/bench && ./build.sh)" >&2; exit 1; }
ulimit -n 20000

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

for run in $(seq "$runs"); do
    port=$((20000 + RANDOM % 20000))
    taskset -c 0 "$@" --mode tcp-echo --port "$port" >/dev/null 2>&1 &
    server_pid=$!
    ready=no
    for _ in $(seq 200); do
        (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && { ready=yes; break; }
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ $ready = yes ] || { echo "the server did not start listening on port $port: $*" >&2; exit 1; }
    perf record -q -a -e tcp:tcp_retransmit_skb,skb:kfree_skb -o "$work/perf.data" -- \
        taskset -c 1 "$loadgen" tcp-echo --port "$port" --conns "$conns" --size 64 -d 5 -w 1 \
        >"$work/loadgen.out" 2>/dev/null
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    server_pid=
    perf script -i "$work/perf.data" -F cpu,event,trace 2>/dev/null >"$work/events.txt"
    python3 - "$port" "$work/events.txt" "$work/loadgen.out" <<'PY'
import collections, re, sys
port, events, loadgen = sys.argv[1:4]
counts = collections.Counter()
for line in open(events):
    if 'tcp_retransmit_skb' in line:
        source = re.search(r'sport=(\d+)', line)
        counts['retransmitted by ' + ('server' if source and source.group(1) == port else 'client')] += 1
    elif 'CPU_BACKLOG' in line:
        counts['backlog drops on CPU %d' % int(line.split(']')[0].split('[')[1])] += 1
result = open(loadgen).read()
if 'RESULT' not in result:
    sys.exit('the load generator reported no result:\n' + result)
value = lambda key: float(re.search(r'\b' + key + r'=([0-9.]+)', result).group(1))
print('rate %.0f msg/s, p99 %.0f ms, max %.0f ms; %s' % (
    value('rate'), value('p99_us') / 1000, value('max_us') / 1000,
    ', '.join('%s %d' % item for item in sorted(counts.items())) or 'nothing lost or retransmitted'))
PY
done
