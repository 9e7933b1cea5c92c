"""Time fastloss under several builds and CPU targets, interleaved, in one run.

    python tools/bench_targets.py [--native DIR] [--targets x86_64_v4,x86_64_v3,baseline]
                                  [--rounds 3] [--repeat 5] [--threads 2] [--only PATTERN]

Every bench workload (except the torch-interop ones) is timed with
fastloss's own implementation ("fastloss", and "fastloss+grad" where the
workload has it) in a child process per configuration:

* each target of this checkout's build, forced with FASTLOSS_CPU_TARGET;
* with ``--native DIR``, a second checkout built for one target with
  ``-march=native`` (the target it dispatches to is what runs);
* torch's implementation where the workload has one (the peer to beat).

The configurations take turns (round 1: all of them, round 2: all of them,
starting with the second, ...), so machine noise hits them alike; the table shows the median over the
rounds of each configuration's median of ``--repeat`` calls, in ms, and the
ratios the wheel promises: native / dispatched and baseline / best target.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args):
    """Time the selected workloads in this process; print one JSON line."""
    from fastloss import _dispatch
    from fastloss.bench.runner import discover, matches
    from fastloss.bench.workload import PeerMissing

    out = {"target": _dispatch.TARGET, "times": {}}
    for w in discover()[0]:
        if w.family == "torch_interop" or (args.only and not matches(w, args.only)):
            continue
        data = w.make(False)
        data["n_threads"] = args.threads
        names = ["torch", "torch+grad"] if args.peer else ["fastloss", "fastloss+grad"]
        for name in names:
            if name not in w.impls:
                continue
            try:
                fn = w.impls[name](data)
            except PeerMissing:
                continue
            fn()
            ts = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            out["times"][f"{w.name}|{name.replace('torch', 'fastloss')}"] = \
                1e3 * statistics.median(ts)
        del data
    print(json.dumps(out))


def run_config(root, env_extra, args, peer=False):
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = root
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--repeat", str(args.repeat),
           "--threads", str(args.threads)]
    for p in args.only or ():
        cmd += ["--only", p]
    if peer:
        cmd.append("--peer")
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"configuration {env_extra} in {root} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native", metavar="DIR", help="a checkout built with -march=native")
    ap.add_argument("--targets", default="x86_64_v4,x86_64_v3,baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", action="append",
                    help="workload name, family or glob (repeatable, or comma-separated)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.only = [q for p in args.only or () for q in p.split(",") if q] or None
    if args.child:
        return child(args)

    configs = [(t, HERE, {"FASTLOSS_CPU_TARGET": t}, False) for t in args.targets.split(",")]
    if args.native:
        configs.append(("native", os.path.abspath(args.native), {}, False))
    configs.append(("torch", HERE, {}, True))
    runs = {name: [] for name, *_ in configs}
    for r in range(args.rounds):
        # each round starts with the next configuration: none is always first
        k = r % len(configs)
        for name, root, env, peer in configs[k:] + configs[:k]:
            print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            runs[name].append(run_config(root, env, args, peer)["times"])

    med = {name: {} for name in runs}
    for name, rs in runs.items():
        for key in rs[0]:
            med[name][key] = statistics.median(x[key] for x in rs if key in x)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "repeat": args.repeat, "threads": args.threads,
                       "median_ms": med}, f, indent=1)

    targets = args.targets.split(",")
    best = targets[0]
    cols = targets + (["native"] if args.native else []) + ["torch"]
    print(f"\nfastloss ms per call, {args.threads} thread(s), median of {args.rounds} "
          f"interleaved rounds x {args.repeat} calls")
    head = f"| workload | {' | '.join(cols)} |"
    if args.native:
        head += f" native / {best} |"
    head += f" baseline / {best} | baseline / torch |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for key in med[best]:
        row = [med[c].get(key) for c in cols]
        cells = [f"{v:.3g}" if v is not None else "-" for v in row]
        line = f"| {key.replace('|fastloss', '')} | {' | '.join(cells)} |"
        if args.native:
            line += f" {med['native'][key] / med[best][key]:.2f} |"
        base = med.get("baseline", {}).get(key)
        line += f" {base / med[best][key]:.2f} |" if base else " - |"
        th = med["torch"].get(key)
        line += f" {base / th:.2f} |" if base and th else " - |"
        print(line)


if __name__ == "__main__":
    main()
