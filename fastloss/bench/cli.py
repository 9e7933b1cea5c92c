"""``python -m fastloss bench``: fastloss vs the reference and every installed peer.

Every workload of every module in ``fastloss/bench/workloads/`` runs at the
same thread count for all implementations, interleaved, median of repeats
after warm-up; each implementation's value is checked against the reference
(a disagreement is printed loudly).  The machine's read bandwidth and
vector-exp throughput are measured in the same run and give each workload
a memory floor (bytes / bandwidth) and an exp floor (exponentials /
throughput); fastloss's fraction of the limit is the larger floor divided
by its time.

Exit status: 0, or 1 when a fastloss implementation disagrees with the
reference or fails, 2 for bad options or when no workload matches.

JSON written by ``--json FILE`` (keys always present unless marked "or
absent"; times in milliseconds, bandwidth in 1e9 bytes/s)::

    {
      "schema": "fastloss-bench/1",
      "created": "2025-01-01T12:00:00+00:00",      # UTC, ISO 8601
      "argv": ["--quick", ...],
      "options": {"quick": bool, "threads": int, "repeat": int, "only": [str]},
      "machine": {
        "cpu_model": str, "cpu_count": int, "cpus_usable": int,
        "simd": [str], "caches": {"L1d": "32K", "L2": ..., "L3": ...},
        "memory_gib": float, "platform": str, "python": str,
        "fastloss": {"version": str, "openmp": bool, "default_threads": int,
                     "cpu_target": str, "cpu_target_reason": str,
                     "targets_built": [str]},
        "versions": {"numpy": str|null, "torch": ..., "scipy": ..., "monai": ...,
                     "scikit-learn": ..., "matplotlib": ..., "pytest-benchmark": ...,
                     "threadpoolctl": ...}
      },
      "limits": {
        "bandwidth": {"gbps": float, "method": str, "bytes": int,
                      "by_method": {str: float}, "widening_gbps": float},
        "exp": {"exp_per_s": float, "method": str, "elements": int,
                "exp_ns": float, "log_ns": float}   # ns per element per thread
      },
      "import_errors": {module: message},          # workload modules skipped
      "missing_peers": {impl: message},            # builders that raised PeerMissing
      "workloads": [{
        "name": str, "family": str, "description": str, "module": str,
        "quick": bool, "repeat": int,                 # rounds asked for
        "inputs": {key: "float32 (16384, 1000)"},    # the arrays make() returned
        "rtol": float, "bytes_moved": int, "bytes_moved_grad": int|null,
        "n_exp": int|null,
        "pass_bytes": int|null,                     # bytes the algorithm's own passes move
        "read_floor_ms": float (or absent),         # the fastest plain read of bytes_moved
        "read_floor_method": str (or absent),       # bytes timed in the workload's rounds
        "mem_floor_ms": float|null,                 # read_floor_ms, else bytes / bandwidth
        "exp_floor_ms": float|null,
        "pass_floor_ms": float|null,                # pass_bytes / bandwidth (not in the limit)
        "limit_ms": float|null, "bound": "memory"|"exp"|null,
        "fraction_of_limit": float|null,            # limit_ms / fastloss median_ms
        "error": str (or absent: make() failed, nothing else is filled),
        "impls": {
          impl: {
            "status": "ok"|"disagrees"|"missing"|"error",
            "error": str (or absent),
            "median_ms": float, "times_ms": [float], "repeats": int,
            "gbps": float,                            # bytes_moved / median
            "speedup": float (or absent),             # impl time / fastloss time
                                                      # ("x+grad": / fastloss+grad)
            "check": {"against": str, "rtol": float, "ok": bool|null,
                      "rel_err": float, "problem": str (or absent),
                      "note": str (or absent)} (or absent: the reference itself)
          }
        },
        "previous_ms": {impl: float} (or absent)     # with --compare
      }]
    }

``rel_err`` is max|value - reference| / max|reference| over the finite
entries (NaN and inf positions must match), values compared in float64;
a tuple result (loss, grad) is checked by its first element.
"""

import argparse
import datetime
import json
import sys

from fastloss.bench import machine, report, runner, sweep

SCHEMA = "fastloss-bench/1"


class _Progress:
    """One status line on stderr: rewritten in place on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def show(self, text):
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self):
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastloss bench",
        description="Benchmark fastloss against fastloss.reference and every installed "
                    "peer (torch, SciPy, scikit-learn, MONAI) at the same thread count, "
                    "with the machine's memory-bandwidth and exp-throughput floors.",
    )
    p.add_argument("--quick", action="store_true",
                   help="small sizes (the whole run takes well under a minute)")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="run the workloads whose name, family or module (core, "
                        "elementwise, ...) contains PATTERN or "
                        "matches it as a glob (repeatable, or comma-separated)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for every implementation (default: fastloss.get_num_threads())")
    p.add_argument("--repeat", type=int, default=None, metavar="N",
                   help="timed rounds per workload (default 7; --quick: 3)")
    p.add_argument("--json", metavar="FILE", help="write machine info and every timing as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="bar chart of fastloss's speed-ups (needs matplotlib)")
    p.add_argument("--compare", metavar="FILE.json",
                   help="show each timing's change against an earlier --json run")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--sweep", action="store_true",
                   help="only the size sweep (fastloss against torch / MONAI from a "
                        "mini-batch to 64 MiB; the default run ends with a short one)")
    p.add_argument("--no-sweep", action="store_true", help="skip the short size sweep")
    p.add_argument("--sweep-plot", metavar="FILE.png",
                   help="log-log chart of the sweep: time per call against input bytes")
    return p


def _threadpool_limit(threads):
    """Limit BLAS/OpenMP pools of other libraries (NumPy's BLAS) when threadpoolctl is there."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def main(argv=None, out=None):
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def say(text=""):
        print(text, file=out, flush=True)

    import fastloss

    patterns = [p for item in args.only for p in item.split(",") if p]
    threads = args.threads if args.threads is not None else fastloss.get_num_threads()
    if threads < 1:
        say(f"--threads must be >= 1, got {threads}")
        return 2
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 7)
    if repeat < 1:
        say(f"--repeat must be >= 1, got {repeat}")
        return 2
    prev = None
    if args.compare:
        try:
            with open(args.compare) as f:
                prev_doc = json.load(f)
        except (OSError, ValueError) as e:
            say(f"--compare: cannot read {args.compare}: {e}")
            return 2
        prev = report.previous_index(prev_doc)
        prev_opts = prev_doc.get("options", {})

    workloads, import_errors = runner.discover(
        on_error=lambda m, msg: say(f"!!! workload module {m!r} skipped: {msg}"))
    known = {k for w in workloads
             for k in (w.name, w.family, getattr(w, "module", None) or "")}
    selected = [w for w in workloads if runner.matches(w, patterns, known)]
    if args.list:
        for w in workloads:
            say(f"{w.name:24s} {w.family:16s} {w.description}")
        return 0
    if not selected:
        say(f"no workload matches {patterns}; known: {', '.join(w.name for w in workloads)}")
        return 2

    info = machine.machine_info()
    cfg = info["fastloss"]
    say(f"fastloss {cfg['version']} bench: {len(selected)} workload(s), {threads} thread(s), "
        f"median of {repeat}{' (quick sizes)' if args.quick else ''}")
    say(f"  CPU: {info['cpu_model']}, {info['cpus_usable']} usable of {info['cpu_count']} CPUs, "
        f"SIMD {'/'.join(info['simd']) or '-'}, caches {info['caches'] or '?'}, "
        f"{info['memory_gib']} GiB")
    say(f"  build: target {cfg['cpu_target']} ({cfg['cpu_target_reason']}), OpenMP "
        f"{'on' if cfg['openmp'] else 'OFF (serial build)'}")
    say("  versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))
    if args.compare:
        say(f"  comparing with {args.compare} ({prev_doc.get('created', '?')}, "
            f"{prev_doc.get('machine', {}).get('cpu_model', '?')})")
        for key, now in (("threads", threads), ("quick", args.quick)):
            if key in prev_opts and prev_opts[key] != now:
                say(f"  note: the earlier run used {key}={prev_opts[key]}, this one {key}={now}: "
                    "the timings are not comparable")

    progress = _Progress()
    if args.sweep:
        rows = _sweep(args, threads, say, progress)
        if args.json:
            doc = {"schema": SCHEMA + "+sweep",
                   "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                       timespec="seconds"),
                   "argv": argv, "options": {"quick": args.quick, "threads": threads},
                   "machine": info, "sweep": rows}
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1, default=_json_default)
            say(f"wrote {args.json}")
        return 0
    progress.show("measuring memory bandwidth and exp throughput ...")
    with _threadpool_limit(threads):
        bw = machine.measure_bandwidth(threads, nbytes=(256 if args.quick else 512) * 2**20,
                                       tries=3 if args.quick else 7)
        ex = machine.measure_exp(threads, tries=5 if args.quick else 15)
    progress.clear()
    limits = {"bandwidth": bw, "exp": ex}
    say(f"  read bandwidth: {bw['gbps']:.1f} GB/s ({bw['method']}, {bw['bytes'] >> 20} MiB; "
        f"a sum widening float32 to float64 reaches only {bw['widening_gbps']:.1f} GB/s, "
        "it is compute-bound and measures about half of the bandwidth at best)")
    say(f"  vector exp: {ex['exp_per_s'] / 1e9:.2f} G exp/s ({ex['exp_ns']:.3f} ns per element "
        f"per thread; log {ex['log_ns']:.3f} ns), {ex['method']}")
    say()

    missing = {}

    def on_missing(impl, msg):
        if impl not in missing:
            missing[impl] = msg
            say(f"note: peer {impl!r} is not installed ({msg}); its rows are skipped")

    results = []
    for i, w in enumerate(selected):
        progress.show(f"[{i + 1}/{len(selected)}] {w.name} ({len(selected) - i - 1} remaining)")
        with _threadpool_limit(threads):
            res = runner.run_workload(
                w, quick=args.quick, threads=threads, repeat=repeat, on_missing=on_missing,
                floor_reader=lambda nbytes: machine.read_floor(threads, nbytes))
        runner.add_limits(res, bw["gbps"], ex["exp_per_s"])
        if prev:
            old = {n: prev[(w.name, n)] for n in res["impls"] if (w.name, n) in prev}
            if old:
                res["previous_ms"] = old
        res.pop("traceback", None)
        results.append(res)
        progress.clear()
        say(report.workload_block(res, prev))
        say()
    say(report.summary(results, limits, threads, prev))
    if missing:
        say("not installed: " + ", ".join(sorted(missing)))
    if import_errors:
        say("workload modules skipped: " + ", ".join(sorted(import_errors)))

    sweep_rows = None
    if not args.no_sweep and not patterns:
        say()
        sweep_rows = _sweep(args, threads, say, progress)

    failed = [f"{r['name']}/{n}" for r in results for n, d in r.get("impls", {}).items()
              if n.startswith("fastloss") and d["status"] in ("disagrees", "error")]
    failed += [r["name"] for r in results if r.get("error")]
    if failed:
        say("!!! FAILED (disagrees with the reference or raised): " + ", ".join(failed))

    if args.json:
        doc = {
            "schema": SCHEMA,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "argv": argv,
            "options": {"quick": args.quick, "threads": threads, "repeat": repeat,
                        "only": patterns},
            "machine": info,
            "limits": limits,
            "import_errors": import_errors,
            "missing_peers": missing,
            "workloads": results,
        }
        if sweep_rows is not None:
            doc["sweep"] = sweep_rows
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=_json_default)
        say(f"wrote {args.json}")
    if args.plot:
        msg = report.plot(results, args.plot, threads)
        say(msg if msg else f"wrote {args.plot}")
    return 1 if failed else 0


def _sweep(args, threads, say, progress):
    with _threadpool_limit(threads):
        rows = sweep.run_sweep(quick=args.quick or not args.sweep, threads=threads,
                               repeat=args.repeat or (5 if args.quick else 9),
                               progress=progress.show)
    progress.clear()
    say("size sweep (fastloss vs peer, interleaved; ratio = median of per-round "
        "peer / fastloss):")
    say(sweep.table(rows))
    if args.sweep_plot:
        msg = sweep.plot(rows, args.sweep_plot)
        say(msg if msg else f"wrote {args.sweep_plot}")
    return rows


def _json_default(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


if __name__ == "__main__":
    sys.exit(main())
