"""Markdown tables of a `python -m fastloss bench --json FILE` run (README, docs).

    python tools/bench_table.py docs/bench.json            # times and speed-ups
    python tools/bench_table.py --floors docs/bench.json   # times against the floors

The floors are the run's own: bytes / read bandwidth and exponentials /
the reference exp loop's throughput (src/flprobe.h), the larger of the
two; for ``+grad``, the bytes of the input read and the gradient written.
"""

import json
import sys

PEERS = ("torch", "monai", "scipy", "sklearn", "numpy", "edt")


def fmt(ms):
    if ms is None:
        return "-"
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def _times(w):
    """{implementation: median ms} of a workload's successful timings."""
    return {k: v.get("median_ms") for k, v in w["impls"].items() if v.get("status") == "ok"}


def main(path):
    with open(path) as f:
        run = json.load(f)
    lim = run["limits"]
    print(f"{run['options']['threads']} threads; read bandwidth "
          f"{lim['bandwidth']['gbps']:.1f} GB/s, exp {lim['exp']['exp_per_s'] / 1e9:.2f} G/s; "
          "times in ms (median); speed-up = peer time / fastloss time\n")
    print("| workload | fastloss | +grad | reference | peers (ms) | speed-up over peers | "
          "% of limit |")
    print("|---|---|---|---|---|---|---|")
    for w in run["workloads"]:
        ms = _times(w)
        base = ms.get("fastloss")
        peers, ups = [], []
        for name, t in ms.items():
            if t is None or name.split("+")[0] not in PEERS:
                continue
            peers.append(f"{name} {fmt(t)}")
            ours = ms.get("fastloss+grad") if name.endswith("+grad") else base
            if ours:
                ups.append(f"{name} {t / ours:.1f}x")
        frac = w.get("fraction_of_limit")
        print(f"| {w['name']} | {fmt(base)} | {fmt(ms.get('fastloss+grad'))} | "
              f"{fmt(ms.get('reference'))} | {', '.join(peers) or '-'} | "
              f"{', '.join(ups) or '-'} | {'-' if frac is None else f'{100 * frac:.0f}%'} |")


def floors(path):
    with open(path) as f:
        run = json.load(f)
    lim = run["limits"]
    gbps, eps = lim["bandwidth"]["gbps"], lim["exp"]["exp_per_s"]
    print(f"{run['options']['threads']} threads; read bandwidth {gbps:.1f} GB/s "
          f"({lim['bandwidth']['method']}); exp {eps / 1e9:.2f} G/s "
          f"({lim['exp'].get('exp_ns', float('nan')):.3f} ns per element per thread, "
          f"{lim['exp']['method']}); times and floors in ms (median)\n")
    print("| workload | fastloss | memory floor | exp floor | x floor | +grad | +grad floor "
          "| x floor |")
    print("|---|---|---|---|---|---|---|---|")
    for w in run["workloads"]:
        ms = _times(w)
        base, grad = ms.get("fastloss"), ms.get("fastloss+grad")
        limit = w.get("limit_ms")
        exp_floor = w.get("exp_floor_ms")
        gfloor = None
        if grad and w.get("bytes_moved_grad"):
            gfloor = max(w["bytes_moved_grad"] / gbps / 1e6, exp_floor or 0.0)
        print(f"| {w['name']} | {fmt(base)} | {fmt(w.get('mem_floor_ms'))} | "
              f"{fmt(exp_floor)} | {f'{base / limit:.2f}' if base and limit else '-'} | "
              f"{fmt(grad)} | {fmt(gfloor)} | {f'{grad / gfloor:.2f}' if gfloor else '-'} |")


if __name__ == "__main__":
    if sys.argv[1] == "--floors":
        floors(sys.argv[2])
    else:
        main(sys.argv[1])
