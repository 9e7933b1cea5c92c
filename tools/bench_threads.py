"""Time fastloss at several thread counts, interleaved call by call, in one process.

    python tools/bench_threads.py [--threads 1,2,4,8,16] [--rounds 5] [--repeat 3]
                                  [--only PATTERN] [--torch] [--json FILE]

Every bench workload (except the torch-interop ones) is timed with
fastloss's own implementation ("fastloss", and "fastloss+grad" where the
workload has it) at each thread count (default: 1, 2, 4, ... up to the
machine's CPU count), and with ``--torch`` torch's implementation at the
same counts.  The thread counts take turns as in tools/bench_targets.py
(a round calls each ``--repeat`` times, each count following each other
one equally often over the rounds).  The table shows, per thread count,
the median over the rounds of the per-round medians in ms and the
speed-up over one thread (the median of the per-round ratios).
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_targets import HERE, _nothing, interleave, paired, time_all  # noqa: E402

sys.path.insert(0, HERE)


def time_workload(w, counts, args):
    """{impl key: {thread count label: [per-round median ms]}} for one workload."""
    from fastloss.bench.workload import PeerMissing

    data = w.make(False)
    out = {}
    for name in ("fastloss", "fastloss+grad"):
        if name not in w.impls:
            continue
        key = w.name + name[len("fastloss"):]
        configs = {}
        for t in counts:
            data["n_threads"] = t
            configs[f"{t}"] = (_nothing, w.impls[name](data))
        out[key] = interleave(configs, args.rounds, args.repeat)
        peer_name = name.replace("fastloss", "torch")
        if args.torch and peer_name in w.impls:
            try:
                import torch

                configs = {}
                for t in counts:
                    data["n_threads"] = t
                    configs[f"{t}"] = (lambda t=t: torch.set_num_threads(t),
                                       w.impls[peer_name](data))
            except (ImportError, PeerMissing):
                continue
            out[f"{key} (torch)"] = interleave(
                configs, args.rounds, args.repeat)
    del data
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ncpu = os.cpu_count() or 1
    default = [1 << i for i in range(ncpu.bit_length()) if 1 << i <= ncpu]
    ap.add_argument("--threads", default=",".join(map(str, default)),
                    help="comma-separated thread counts (default: powers of 2 up to the CPU count)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--torch", action="store_true", help="also time torch at each count")
    ap.add_argument("--only", action="append",
                    help="workload name, family or glob (repeatable, or comma-separated)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    args.only = [q for p in args.only or () for q in p.split(",") if q] or None
    counts = [int(t) for t in args.threads.split(",")]
    if counts[0] != 1 or any(t < 1 for t in counts):
        sys.exit("--threads: the first count must be 1 (the speed-ups are against it)")

    from fastloss import _dispatch

    results = time_all(args.only, lambda w: time_workload(w, counts, args))

    labels = [str(t) for t in counts]
    med = {key: {c: statistics.median(v) for c, v in t.items()} for key, t in results.items()}
    speedup = {key: {c: paired(t, "1", c) for c in labels} for key, t in results.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "repeat": args.repeat, "threads": counts,
                       "cpu_count": ncpu, "target": _dispatch.TARGET,
                       "median_ms": med, "rounds_ms": results, "speedup": speedup}, f, indent=1)
    print(f"\nms per call ({args.rounds} interleaved rounds x {args.repeat} calls; median of the "
          "per-round medians) and speed-up over 1 thread (median of the per-round ratios)")
    head = f"| workload | {' | '.join(f'{t} thr' for t in counts)} |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for key in results:
        cells = [f"{med[key][c]:.3g}" + ("" if c == "1" else f" ({speedup[key][c]:.2f}x)")
                 for c in labels]
        print(f"| {key} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
