#!/usr/bin/env python3
"""Resident memory per idle connection of echo servers that obey the peer harness's contract
(`SERVER ... --mode tcp-echo --port N`, 127.0.0.1 only).

For each server: start it, make a few warm-up connections (one echo each, then closed) so that
pools and per-thread memory exist, read its resident memory (VmRSS), open N connections, echo
64 bytes once on each, let them idle, read VmRSS again, and print (after - before) / N. The
connections then echo once more each (a check that every one still works) and are closed.

Usage:
    scripts/idle-memory.py [--conns N] [--rounds R] [--max-kib K] NAME=COMMAND [NAME=COMMAND ...]

    scripts/idle-memory.py --conns 10000 \\
        'epoll=Benchmarks/.build/release/socket2-server --backend epoll' \\
        'io_uring=Benchmarks/.build/release/socket2-server --backend io_uring'

The client side holds N descriptors: N must stay under the process's limit (this machine
allows 20,000). Each server runs R times (default 1), in turn; the medians are printed.
With --max-kib, exits with status 1 when a median is above K KiB per connection (the
benchmark smoke test uses it as a gate). Stdlib only.
"""

import argparse
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_ready(port, process, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server not ready")


def echo(sock, message):
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = sock.recv(len(message) - len(received))
        if not chunk:
            raise RuntimeError("connection closed during an echo")
        received += chunk
    if received != message:
        raise RuntimeError("wrong echo")


def settle(pid, seconds=1.0):
    """VmRSS once it stops changing (at most `seconds` of waiting)."""
    previous = rss_bytes(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = rss_bytes(pid)
        if current == previous:
            return current
        previous = current
    return previous


def measure(command, conns):
    port = free_port()
    process = subprocess.Popen(shlex.split(command) + ["--mode", "tcp-echo", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(port, process)
        message = bytes(range(64))
        for _ in range(16):
            with socket.create_connection(("127.0.0.1", port)) as warm:
                echo(warm, message)
        before = settle(process.pid)
        held = []
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", port))
            echo(sock, message)
            held.append(sock)
        after = settle(process.pid)
        for sock in held:
            echo(sock, message)
        for sock in held:
            sock.close()
        return before, after
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-kib", type=float, default=None,
                        help="exit with status 1 when a server's median exceeds this (KiB per connection)")
    parser.add_argument("servers", nargs="+", metavar="NAME=COMMAND")
    arguments = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = arguments.conns + 64
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    servers = [entry.split("=", 1) for entry in arguments.servers]
    results = {name: [] for name, _ in servers}
    for _ in range(arguments.rounds):
        for name, command in servers:
            before, after = measure(command, arguments.conns)
            results[name].append((before, after))
    over = []
    print(f"| server | RSS before | RSS with {arguments.conns} idle | per connection |")
    print("| --- | ---: | ---: | ---: |")
    for name, runs in results.items():
        before = statistics.median(run[0] for run in runs)
        after = statistics.median(run[1] for run in runs)
        per = statistics.median((run[1] - run[0]) / arguments.conns for run in runs)
        print(f"| {name} | {before / 2**20:.1f} MiB | {after / 2**20:.1f} MiB | {per / 1024:.2f} KiB |")
        if arguments.max_kib is not None and per / 1024 > arguments.max_kib:
            over.append(f"{name}: {per / 1024:.2f} KiB per idle connection, above {arguments.max_kib} KiB")
    for line in over:
        print(f"error: {line}", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
