#!/usr/bin/env python3
"""How far the peer harness's ratios can be trusted: for one run of `../shared/bench` (its
`results/<timestamp>/runs.jsonl`), each server's median against the baseline server's, with a
bootstrap interval for that ratio and a permutation test of whether the two medians differ.

The harness prints medians of a few repetitions; on a shared machine one cell's repetitions can
spread by 30% or more, and can fall into a fast and a slow phase at random (this project's VM
did, for every server alike), so a ratio of medians moves with how many repetitions each server
happened to get in the fast phase. This says which differences the run can tell apart.

Usage:
    scripts/harness-ratios.py RESULTS_DIR_OR_RUNS_JSONL [--metric rate] [--baseline c-epoll]
        [--confidence 0.9] [--resamples 4000]

    scripts/harness-ratios.py ../bench/results/20261207-181441
    scripts/harness-ratios.py ../bench/results/20261207-181441 --metric srv_cpu_per_op

Metrics: any number in runs.jsonl (rate, p99_us, max_us, srv_cpu_per_op, srv_rss_peak_kib, ...).
Per cell: the repetitions' values, the ratio of medians, its bootstrap interval (each server's
repetitions resampled with replacement), and p, the share of random relabellings of the two
servers' repetitions whose medians differ at least as much (a permutation test): small p (say
under 0.05) means the run tells the two apart; an interval that holds 1.00 means it does not.
Deterministic (fixed seed). Stdlib only.
"""

import argparse
import collections
import json
import math
import os
import random
import signal
import statistics
import sys


def load(path, metric):
    """{(config, server): [values]} of the repetitions that succeeded."""
    if os.path.isdir(path):
        path = os.path.join(path, "runs.jsonl")
    cells = collections.defaultdict(list)
    with open(path) as runs:
        for line in runs:
            run = json.loads(line)
            value = run.get(metric)
            if run.get("ok", True) and isinstance(value, (int, float)):
                cells[(run["config"], run["server"])].append(float(value))
    return cells


def bootstrap_interval(values, baseline, confidence, resamples, rng):
    ratios = []
    for _ in range(resamples):
        denominator = statistics.median(rng.choices(baseline, k=len(baseline)))
        if denominator:
            ratios.append(statistics.median(rng.choices(values, k=len(values))) / denominator)
    if not ratios:
        return None
    ratios.sort()
    tail = (1 - confidence) / 2
    return ratios[int(tail * (len(ratios) - 1))], ratios[int((1 - tail) * (len(ratios) - 1))]


def permutation_p(values, baseline, resamples, rng):
    observed = abs(statistics.median(values) - statistics.median(baseline))
    pooled = values + baseline
    at_least = 0
    for _ in range(resamples):
        rng.shuffle(pooled)
        difference = abs(statistics.median(pooled[:len(values)]) - statistics.median(pooled[len(values):]))
        at_least += difference >= observed - 1e-12
    return at_least / resamples


def short(value):
    """A value in three significant digits, with k or M for thousands and millions."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a harness results directory, or its runs.jsonl")
    parser.add_argument("--metric", default="rate")
    parser.add_argument("--baseline", default="c-epoll")
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--resamples", type=int, default=4000)
    args = parser.parse_args()
    if not 0 < args.confidence < 1:
        parser.error("--confidence must be between 0 and 1")
    if args.resamples < 100:
        parser.error("--resamples must be at least 100")
    try:
        cells = load(args.results, args.metric)
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"harness-ratios: cannot read {args.results}: {error}")
    if not cells:
        sys.exit(f"harness-ratios: no repetition in {args.results} has a number for {args.metric!r}")
    rng = random.Random(1)
    configs = sorted({config for config, _ in cells})
    servers = sorted({server for _, server in cells}, key=lambda s: (s != args.baseline, s))
    print(f"{args.metric}: ratio of medians against {args.baseline}, "
          f"{args.confidence:.0%} bootstrap interval, permutation p")
    for config in configs:
        baseline = cells.get((config, args.baseline))
        if not baseline:
            print(f"{config}: no {args.baseline} repetition")
            continue
        print(f"\n{config} ({args.baseline}: {' '.join(map(short, baseline))})")
        for server in servers:
            values = cells.get((config, server))
            if server == args.baseline or not values:
                continue
            base_median = statistics.median(baseline)
            if not base_median:
                print(f"  {server:12s} baseline median is 0")
                continue
            ratio = statistics.median(values) / base_median
            # The smallest p a permutation test of these sizes can give (the two extreme splits).
            if 2 / math.comb(len(values) + len(baseline), len(values)) >= 0.05:
                verdict_note = " (too few repetitions for p < 0.05)"
            else:
                verdict_note = ""
            interval = bootstrap_interval(values, baseline, args.confidence, args.resamples, rng)
            p = permutation_p(values, baseline, args.resamples, rng)
            shown = f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "[–]"
            verdict = ("tells apart" if p < 0.05 else "within the noise") + verdict_note
            print(f"  {server:12s} {ratio:5.2f}  {shown:14s} p={p:.2f}  {verdict}   "
                  f"({' '.join(map(short, values))})")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    main()
