"""Time fastloss under several CPU targets and builds, interleaved call by call, in one process.

    python tools/bench_targets.py [--native DIR] [--targets x86_64_v4,x86_64_v3,baseline]
                                  [--rounds 7] [--repeat 3] [--threads 2] [--only PATTERN]
                                  [--json FILE]

Every bench workload (except the torch-interop ones) is timed with
fastloss's own implementation ("fastloss", and "fastloss+grad" where the
workload has it) under each configuration:

* each target of this checkout's build: every target's kernel modules are
  imported side by side and swapped into the wrapper modules
  (``fastloss.lse._k`` and the like) before its calls;
* with ``--native DIR``, the kernel modules of a second checkout of the same
  sources built for one target with ``-march=native``, loaded from their
  files under another package name and swapped in the same way;
* torch's implementation where the workload has one (the peer to beat).

Within a workload the configurations take turns: a round calls each of them
``--repeat`` times, in an order that changes from round to round so that
each one comes after each other one equally often (what a call leaves
behind -- caches, another runtime's threads still spinning -- does not land
on the same neighbour every time), and the drifts of a shared machine hit
them alike.  The table shows each configuration's median over the rounds
(of its per-round medians), in ms, and the ratios the wheel promises --
native / dispatched (the first target), baseline / x86_64_v3 (the AVX2
target), baseline / torch -- each the median of the per-round ratios
(paired within a round, so a slow minute does not enter one side only).
"""

import argparse
import glob
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

# wrapper module -> {attribute: kernel family}
SLOTS = {
    "fastloss.classification._entropy": {"_k": "classification", "_ks": "ce_soft",
                                         "_kr": "rowwise"},
    "fastloss.classification._margin": {"_kr": "margin"},
    "fastloss.lse": {"_k": "lse"},
    "fastloss.elementwise._core": {"_k": "elementwise"},
    "fastloss.embedding": {"_k": "embedding"},
    "fastloss.detection": {"_k": "rowwise"},
    "fastloss.segmentation._prep": {"_k": "segmentation"},
    "fastloss.segmentation._hard": {"_k": "confusion"},
    "fastloss.distance._transform": {"_k": "distance"},
    "fastloss.distance._surface": {"_k": "surface", "_kd": "distance"},
    "fastloss.distance._losses": {"_k": "dtloss"},
    "fastloss.gbdt._plan": {"_k": "gbdt"},
}
FAMILIES = sorted({fam for slots in SLOTS.values() for fam in slots.values()})


def _load_file(path, alias):
    spec = importlib.util.spec_from_file_location(alias, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def kernel_sets(targets, native):
    """{config: {family: kernel module}} for this checkout's targets and the native build."""
    from fastloss import _dispatch

    sets = {t: {f: _dispatch._load(t, f) for f in FAMILIES} for t in targets}
    if native:
        found = sorted(glob.glob(os.path.join(native, "fastloss", "_*", "_lse.*")))
        found = [p for p in found if not os.path.basename(os.path.dirname(p)) == "__pycache__"]
        if not found:
            sys.exit(f"no built kernels under {native}/fastloss: build it with "
                     "FASTLOSS_TARGETS=<one target> and -march=native first")
        tdir = os.path.dirname(found[0])
        sets["native"] = {}
        for f in FAMILIES:
            (path,) = glob.glob(os.path.join(tdir, f"_{f}.*"))
            # the init function is PyInit__<family>: the alias keeps that last component
            sets["native"][f] = _load_file(path, f"fastloss_native_build._{f}")
    return sets


def use(kernels):
    """Point every wrapper module at one kernel set."""
    for modname, slots in SLOTS.items():
        mod = importlib.import_module(modname)
        for attr, fam in slots.items():
            setattr(mod, attr, kernels[fam])


def _median_call(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def interleave(configs, rounds, repeat):
    """{config: [per-round median ms]} for configs = {name: (before, fn)}.

    A round calls each configuration ``repeat`` times, ``before()`` first and
    untimed, in the order of the bench's ``round_order`` (each configuration
    follows each other one equally often); one untimed call of each warms up.
    """
    from fastloss.bench.runner import round_order

    names = list(configs)
    times = {c: [] for c in names}
    for c in names:
        before, fn = configs[c]
        before()
        fn()
    for r in range(rounds):
        for c in (names[i] for i in round_order(len(names), r)):
            before, fn = configs[c]
            before()
            times[c].append(_median_call(fn, repeat))
    return times


def _nothing():
    pass


def time_workload(w, sets, args):
    """{impl key: {config: [per-round median ms]}} for one workload."""
    from fastloss.bench.workload import PeerMissing

    data = w.make(False)
    data["n_threads"] = args.threads
    out = {}
    for name in ("fastloss", "fastloss+grad"):
        if name not in w.impls:
            continue
        fn = w.impls[name](data)
        configs = {c: (lambda k=k: use(k), fn) for c, k in sets.items()}
        peer_name = name.replace("fastloss", "torch")
        if peer_name in w.impls:
            try:
                configs["torch"] = (_nothing, w.impls[peer_name](data))
            except PeerMissing:
                pass
        out[f"{w.name}{name[len('fastloss'):]}"] = interleave(configs, args.rounds, args.repeat)
    del data
    return out


def time_all(only, time_one):
    """The merged dicts of time_one(w) over the bench workloads that match
    `only` (all if None), torch-interop ones excepted; Ctrl-C (or
    ``timeout -s INT``) ends the loop and keeps what was timed."""
    from fastloss.bench.runner import discover, matches

    results = {}
    try:
        found = discover()[0]
        known = {k for w in found for k in (w.name, w.family, getattr(w, "module", None) or "")}
        for w in found:
            if w.family == "torch_interop" or (only and not matches(w, only, known)):
                continue
            print(f"{w.name} ...", file=sys.stderr, flush=True)
            results.update(time_one(w))
    except KeyboardInterrupt:
        print("interrupted: the table holds the workloads timed so far", file=sys.stderr)
    return results


def paired(times, a, b):
    """Median over the rounds of times[a][r] / times[b][r]."""
    if a not in times or b not in times:
        return None
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native", metavar="DIR",
                    help="a checkout of the same sources built with -march=native")
    ap.add_argument("--targets", help="comma-separated, best first (default: every built "
                    "target this CPU runs)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", action="append",
                    help="workload name, family or glob (repeatable, or comma-separated)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    args.only = [q for p in args.only or () for q in p.split(",") if q] or None

    import fastloss  # noqa: F401 - the wrapper modules whose kernels are swapped
    from fastloss import _dispatch

    if args.targets:
        targets = args.targets.split(",")
    else:
        targets = _dispatch.runnable()
    sets = kernel_sets(targets, args.native)
    try:
        results = time_all(args.only, lambda w: time_workload(w, sets, args))
    finally:
        use(sets[_dispatch.TARGET] if _dispatch.TARGET in sets else
            {f: _dispatch.kernels(f) for f in FAMILIES})

    best = targets[0]
    cols = targets + (["native"] if args.native else []) + ["torch"]
    ratios = [(f"native / {best}", "native", best)] if args.native else []
    if "baseline" in targets:
        avx2 = "x86_64_v3" if "x86_64_v3" in targets else best
        ratios += [(f"baseline / {avx2}", "baseline", avx2),
                   ("baseline / torch", "baseline", "torch")]
    med = {key: {c: statistics.median(v) for c, v in t.items()} for key, t in results.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "repeat": args.repeat, "threads": args.threads,
                       "median_ms": med, "rounds_ms": results,
                       "ratios": {key: {lab: paired(t, a, b) for lab, a, b in ratios}
                                  for key, t in results.items()}}, f, indent=1)
    print(f"\nfastloss ms per call, {args.threads} thread(s), {args.rounds} interleaved rounds "
          f"x {args.repeat} calls; times: median of the per-round medians; ratios: median of "
          "the per-round ratios")
    head = f"| workload | {' | '.join(cols)} | {' | '.join(lab for lab, _, _ in ratios)} |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for key, t in results.items():
        cells = [f"{med[key][c]:.3g}" if c in med[key] else "-" for c in cols]
        rs = [paired(t, a, b) for _, a, b in ratios]
        cells += [f"{r:.2f}" if r is not None else "-" for r in rs]
        print(f"| {key} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
