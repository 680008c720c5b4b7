#!/usr/bin/env bash
# mini-redis against redis-server, measured by redis-benchmark.
#
#   Examples/bench.sh            # 3 repetitions, 200,000 requests, 10,000 idle connections
#   Examples/bench.sh --quick    # 1 repetition, 20,000 requests, 1,000 idle connections
#   Examples/bench.sh --idle     # only the idle connections row (3 repetitions, 10,000)
#   Examples/bench.sh --reps 5   # more repetitions (after the options above)
#
# Servers: redis-server (--save "" --appendonly no) and mini-redis on epoll and on io_uring
# (--threads 1), each on CPU 0 (taskset -c 0), redis-benchmark on CPU 1, medians of the
# repetitions. The three servers run side by side for a repetition (each on its own port) and
# take turns run by run, in an order that rotates from one repetition to the next: a slow spell
# of this shared machine then falls on all three, not on one server's block of runs. Rows: SET
# and GET with 50 clients without pipelining and with -P 16 (requests/s), and the server's RSS
# growth for idle connections (kB, opened by scripts/idle-clients.py, 5,000 a process); and for
# each redis-benchmark run the server's CPU time per request (user + system, from /proc), the
# longest request (redis-benchmark's maximum latency: a stall such as a reply held back by
# Nagle's algorithm shows there first) and the client's CPU use (one core saturated by
# redis-benchmark means the client sets the rate). Prints a markdown table with ratios against
# redis-server.
set -euo pipefail
cd "$(dirname "$0")"

reps=3 requests=200000 idle=10000 metrics="set-P1 get-P1 set-P16 get-P16 idle"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) reps=1 requests=20000 idle=1000 ;;
        --idle) metrics="idle" ;;
        --reps) reps="${2:?--reps needs a number}"; shift ;;
        *) echo "usage: bench.sh [--quick] [--idle] [--reps N]" >&2; exit 2 ;;
    esac
    shift
done
for tool in redis-server redis-benchmark redis-cli taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench.sh needs $tool (apt-get install -y redis-server redis-tools util-linux python3)" >&2; exit 1; }
done

swift build -c release --product mini-redis >&2
binary="$(swift build -c release --show-bin-path)/mini-redis"
servers=(redis epoll io_uring)
declare -A port=([redis]=16390 [epoll]=16391 [io_uring]=16392) pid=()
results=$(mktemp)
trap 'rm -f "$results" "$results.csv"; kill ${pid[@]} 2>/dev/null || true' EXIT

start() {  # start SERVER: redis | epoll | io_uring
    local p=${port[$1]}
    case "$1" in
        redis) taskset -c 0 redis-server --port $p --bind 127.0.0.1 --save "" --appendonly no \
                   --daemonize no --logfile /dev/null & ;;
        *) taskset -c 0 "$binary" --port $p --backend "$1" --threads 1 >/dev/null & ;;
    esac
    pid[$1]=$!
    for _ in $(seq 200); do redis-cli -p $p ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "the $1 server did not start" >&2; exit 1
}

stop() {  # stop SERVER
    kill ${pid[$1]}; wait ${pid[$1]} 2>/dev/null || true; unset "pid[$1]"
}

cpu_ticks() { awk '{ print $14 + $15 }' /proc/${pid[$1]}/stat; }  # user + system, clock ticks

rss_kb() { awk '/^VmRSS/ { print $2 }' /proc/${pid[$1]}/status; }

idle_rss_delta() {  # SERVER: kB it grows by for $idle idle connections
    local before after pids=() fifos=() dir
    dir=$(mktemp -d)
    before=$(rss_kb $1)
    local left=$idle i=0
    while [ $left -gt 0 ]; do
        local n=$(( left > 5000 ? 5000 : left ))
        mkfifo "$dir/in$i"
        taskset -c 1 python3 scripts/idle-clients.py ${port[$1]} $n < "$dir/in$i" > "$dir/out$i" &
        pids+=($!)
        exec {fd}>"$dir/in$i"; fifos+=($fd)
        # One batch at a time: each waits for its PONG, so the server accepted all before.
        until grep -q ready "$dir/out$i" 2>/dev/null; do sleep 0.05; done
        left=$(( left - n )); i=$(( i + 1 ))
    done
    sleep 1
    after=$(rss_kb $1)
    for fd in "${fifos[@]}"; do exec {fd}>&-; done
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir"
    echo $(( after - before ))
}

measure() {  # SERVER TEST PIPELINE REP: one redis-benchmark run
    local server=$1 test=$2 pipeline=$3 rep=$4 ticks client_time rps server_us
    ticks=$(cpu_ticks $server)
    client_time=$( { TIMEFORMAT='%R %U %S'; time taskset -c 1 redis-benchmark -p ${port[$server]} -t $test \
          -n $requests -c 50 -P $pipeline -q --csv > "$results.csv"; } 2>&1 )
    rps=$(awk -F'"' 'toupper($2) == toupper("'$test'") { print $4 }' "$results.csv")
    server_us=$(( ($(cpu_ticks $server) - ticks) * 1000000 / $(getconf CLK_TCK) ))
    echo "$server ${test}-P$pipeline $rps" >> "$results"
    echo "$server ${test}-P$pipeline-cpu $(awk -v us=$server_us -v n=$requests 'BEGIN { print us / n }')" >> "$results"
    echo "$server ${test}-P$pipeline-client $(echo $client_time | awk '{ print ($2 + $3) / $1 }')" >> "$results"
    echo "$server ${test}-P$pipeline-max $(awk -F'"' 'toupper($2) == toupper("'$test'") { print $16 }' "$results.csv")" >> "$results"
    echo "rep $rep: $server $test -P $pipeline: $rps requests/s, server CPU $server_us us, client $client_time (real user sys)" >&2
}

for rep in $(seq $reps); do
    # This repetition's order: rotated by one server from the previous one.
    shift_by=$(( (rep - 1) % ${#servers[@]} ))
    order=("${servers[@]:$shift_by}" "${servers[@]:0:$shift_by}")
    for server in "${order[@]}"; do start $server; done
    for test in set get; do
        for pipeline in 1 16; do
            [[ " $metrics " == *" $test-P$pipeline "* ]] || continue
            for server in "${order[@]}"; do measure $server $test $pipeline $rep; done
        done
    done
    for server in "${order[@]}"; do
        if [[ " $metrics " == *" idle "* ]]; then
            delta=$(idle_rss_delta $server)
            echo "$server idle $delta" >> "$results"
            echo "rep $rep: $server $idle idle connections: +$delta kB" >&2
        fi
        stop $server
    done
done

python3 - "$results" "$reps" "$requests" "$idle" "$metrics" <<'PY'
import statistics, sys
path, reps, requests, idle, metrics = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()
values = {}
for line in open(path):
    server, metric, value = line.split()
    values.setdefault((server, metric), []).append(float(value))
def median(server, metric):
    return statistics.median(values[(server, metric)])
rows = [("set-P1", "SET, 50 clients (requests/s)"), ("get-P1", "GET, 50 clients (requests/s)"),
        ("set-P16", "SET, 50 clients, -P 16 (requests/s)"), ("get-P16", "GET, 50 clients, -P 16 (requests/s)"),
        ("idle", f"{int(idle):,} idle connections (server RSS growth, kB)")]
rows = [row for row in rows if row[0] in metrics]
rows = [(metric, title, ",.0f") for metric, title in rows]
rows += [(metric + "-cpu", title.replace(" (requests/s)", ": server CPU per request (µs)"), ".2f")
         for metric, title, _ in rows if metric != "idle"] \
      + [(metric + "-max", title.replace(" (requests/s)", ": longest request (ms)"), ".2f")
         for metric, title, _ in rows if metric != "idle"]
print(f"Medians of {reps} interleaved repetitions, {int(requests):,} requests each; ratio against redis-server.\n")
print("| | redis-server | mini-redis epoll | mini-redis io_uring |")
print("| --- | ---: | ---: | ---: |")
for metric, title, form in rows:
    base = median("redis", metric)
    cells = [format(base, form)]
    for server in ("epoll", "io_uring"):
        v = median(server, metric)
        cells.append(f"{v:{form}} ({v / base:.2f}×)" if base else format(v, form))
    print(f"| {title} | " + " | ".join(cells) + " |")
client = [v for (server, metric), vs in values.items() if metric.endswith("-client") for v in vs]
if client:
    print(f"\nredis-benchmark's CPU (user + system over wall time, its own core): median {statistics.median(client):.2f},"
          f" lowest {min(client):.2f}. Near 1.00 the client, not the server, sets the rate:"
          " compare the servers' CPU per request then.")
PY
