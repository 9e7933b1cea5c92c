"""Markdown table of a `python -m fastloss bench --json FILE` run (for the README).

    python tools/bench_table.py docs/bench.json
"""

import json
import sys

PEERS = ("torch", "monai", "scipy", "sklearn", "numpy")


def fmt(ms):
    if ms is None:
        return "-"
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


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
        im = w["impls"]
        ms = {k: v.get("median_ms") for k, v in im.items() if v.get("status") == "ok"}
        base = ms.get("fastloss")
        peers, ups = [], []
        for name, t in ms.items():
            if t is None or not name.split("+")[0] in PEERS:
                continue
            peers.append(f"{name} {fmt(t)}")
            ours = ms.get("fastloss+grad") if name.endswith("+grad") else base
            if ours:
                ups.append(f"{name} {t / ours:.1f}x")
        frac = w.get("fraction_of_limit")
        print(f"| {w['name']} | {fmt(base)} | {fmt(ms.get('fastloss+grad'))} | "
              f"{fmt(ms.get('reference'))} | {', '.join(peers) or '-'} | "
              f"{', '.join(ups) or '-'} | {'-' if frac is None else f'{100 * frac:.0f}%'} |")


if __name__ == "__main__":
    main(sys.argv[1])
