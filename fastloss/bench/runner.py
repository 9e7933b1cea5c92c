"""Find the workloads, run them, time them, check their values.

Used by the CLI (``fastloss.bench.cli``) and by ``benchmarks/conftest.py``,
so both read the same workload definitions.

Timing protocol for one workload: make the inputs, build every
implementation (a builder raising PeerMissing marks the peer as not
installed), call each once (its value is kept for the agreement check) and
once more as warm-up when the first call was quick, then time the
implementations interleaved: each round calls every implementation once,
in the orders of ``round_order``, so that slow drifts of the machine (other
processes, thermal state) and the after-effects of one call on the next hit
all of them alike.  Each implementation is timed in its own steady state,
as in a loop of calls, not in the wake of another library: ``SETTLE_S``
seconds of quiet first (the thread pools of the library called before,
torch's OpenMP team or NumPy's OpenBLAS threads, keep spinning for
milliseconds after a call returns and would take cores from the next
call), then, for a call under ``WARM_S``, untimed calls of its own for
``WARM_RUN_S`` seconds (at least one: its threads and caches awake again,
and the cores back at the speed of a loop: on the 2-core Xeon VM a
(16384, 1000) ``cross_entropy`` took 2.64 ms right after one untimed call,
2.13 ms after 10 ms of them, 2.12 ms a call in a loop), then the timed
one.  The figure is the median of the rounds.  A
memory-bound workload times a plain read of as many bytes in the same
rounds, its memory floor under the same load.  An implementation whose
first call takes longer than ``SLOW_S`` seconds is timed in at most
``SLOW_REPEAT`` rounds.
"""

import fnmatch
import importlib
import pkgutil
import statistics
import sys
import time
import traceback

import numpy as np

from fastloss.bench.workload import PeerMissing, Workload

SLOW_S = 1.0
SLOW_REPEAT = 3
SETTLE_S = 0.02
WARM_S = 0.2
WARM_RUN_S = 0.01
READ = "(read floor) "  # prefix of the timed reads of a read_floor workload; not implementations
FIRST_MODULES = ("core",)


def discover(on_error=None):
    """Every ``WORKLOADS`` list of the modules in ``fastloss.bench.workloads``.

    Returns ``(workloads, errors)``: the workloads in module order ("core"
    first, then alphabetical) and ``{module: message}`` for each module that
    failed to import or holds no valid WORKLOADS list; ``on_error(module,
    message)`` is called once for each.
    """
    from fastloss.bench import workloads as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    names = [n for n in FIRST_MODULES if n in names] + [n for n in names if n not in FIRST_MODULES]
    found, errors = [], {}
    for name in names:
        try:
            mod = importlib.import_module(f"{pkg.__name__}.{name}")
            wl = list(mod.WORKLOADS)
            bad = [w for w in wl if not isinstance(w, Workload)]
            if bad:
                raise TypeError(f"WORKLOADS holds {type(bad[0]).__name__}, not Workload")
        except Exception as e:  # noqa: BLE001 - a broken module must not stop the bench
            msg = f"{type(e).__name__}: {e}"
            errors[name] = msg
            if on_error is not None:
                on_error(name, msg)
            continue
        for w in wl:
            w.module = name
        found.extend(wl)
    return found, errors


def matches(workload, patterns, known=()):
    """True if a pattern is a substring of, or fnmatch-matches, the name, family or module.

    A pattern that is itself one of the ``known`` names (every workload's
    name, family and module) selects that one exactly: ``ce_wide`` is not
    also ``ce_wide_bf16``.
    """
    if not patterns:
        return True
    keys = (workload.name, workload.family, getattr(workload, "module", None) or "")
    for p in patterns:
        for k in keys:
            if k == p or (p not in known and (p in k or fnmatch.fnmatchcase(k, p))):
                return True
    return False


def as_value(v):
    """An implementation's result as a float64 ndarray (first element of a tuple)."""
    if isinstance(v, (tuple, list)):
        v = v[0]
    if hasattr(v, "detach"):  # torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def rel_error(value, ref):
    """max |value - ref| / max |ref| (NaNs must sit at the same places).

    Returns ``(err, problem)``: ``problem`` is a message when the shapes or
    NaN positions differ (err is then inf).
    """
    if value.size != ref.size:
        return float("inf"), f"shape {value.shape} vs {ref.shape}"
    value = value.reshape(-1)
    ref = ref.reshape(-1)
    nan_v, nan_r = np.isnan(value), np.isnan(ref)
    if not np.array_equal(nan_v, nan_r):
        return float("inf"), f"NaN in {int(nan_v.sum())} vs {int(nan_r.sum())} places"
    keep = ~nan_r
    if not keep.any():
        return 0.0, None
    v, r = value[keep], ref[keep]
    inf_r = np.isinf(r)
    if inf_r.any():
        if not np.array_equal(v[inf_r], r[inf_r]):
            return float("inf"), "infinities differ"
        v, r = v[~inf_r], r[~inf_r]
        if r.size == 0:
            return 0.0, None
    scale = max(float(np.max(np.abs(r))), np.finfo(np.float64).tiny)
    err = float(np.max(np.abs(v - r))) / scale
    return (err, None) if np.isfinite(err) else (float("inf"), "non-finite values")


def _short(e):
    text = f"{type(e).__name__}: {e}"
    return text if len(text) < 300 else text[:297] + "..."


def _warm(fn):
    """Untimed calls of fn for WARM_RUN_S seconds, at least one."""
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < WARM_RUN_S:
        fn()


def round_order(n, r):
    """The order in which round r calls n implementations (indices 0..n-1).

    A Williams design: the rows 0, 1, n-1, 2, n-2, ... shifted by r (mod n),
    and for odd n the same rows reversed too.  Over n rounds (2n for odd n)
    each implementation comes first equally often and follows each of the
    others equally often.  Plain rotation would put each implementation
    after the same neighbour in every round, and whatever that neighbour
    leaves behind (its caches, its OpenMP threads still spinning) would
    always fall on it.
    """
    if n <= 1:
        return list(range(n))
    base, lo, hi = [0], 1, n - 1
    while lo <= hi:
        base.append(lo)
        lo += 1
        if lo <= hi:
            base.append(hi)
            hi -= 1
    k = r % (n if n % 2 == 0 else 2 * n)
    row = [(j + k) % n for j in base]
    return row[::-1] if k >= n else row


def run_workload(w, *, quick, threads, repeat, on_missing=None, floor_reader=None):
    """Run one workload; returns its result dict (see the JSON schema in cli.py).

    ``floor_reader(nbytes)``, for a workload marked ``read_floor``, returns
    ``{method: (callable, close)}``: plain reads of ``bytes_moved`` bytes,
    each timed among the implementations in every round; the smallest
    median is ``read_floor_ms`` (its method ``read_floor_method``).
    ``on_missing(impl, message)`` is called for each peer whose builder
    raised PeerMissing (a "fastloss..." implementation raising it is shown
    in the workload's own table instead: the function is not built yet).
    The inputs are dropped before returning.
    """
    res = {
        "name": w.name, "family": w.family, "description": w.description,
        "module": getattr(w, "module", None), "quick": bool(quick), "repeat": repeat,
        "rtol": w.rtol, "impls": {},
    }
    try:
        data = w.make(quick)
        data["n_threads"] = threads
        res["inputs"] = {k: f"{v.dtype} {tuple(v.shape)}" for k, v in data.items()
                         if isinstance(v, np.ndarray)}
        res["bytes_moved"] = int(w.bytes_moved(data))
        res["bytes_moved_grad"] = int(w.bytes_moved_grad(data)) if w.bytes_moved_grad else None
        res["n_exp"] = int(w.n_exp(data)) if w.n_exp else None
        res["pass_bytes"] = int(w.pass_bytes(data)) if w.pass_bytes else None
    except Exception as e:  # noqa: BLE001
        res["error"] = "make failed: " + _short(e)
        res["traceback"] = traceback.format_exc()
        return res

    impls = res["impls"]
    fns = {}
    for name, builder in w.impls.items():
        try:
            fns[name] = builder(data)
            impls[name] = {"status": "ok"}
        except PeerMissing as e:
            impls[name] = {"status": "missing", "error": str(e)}
            if on_missing is not None and not name.startswith("fastloss"):
                on_missing(name, str(e))
        except Exception as e:  # noqa: BLE001
            impls[name] = {"status": "error", "error": "build failed: " + _short(e)}

    torch = sys.modules.get("torch")  # same threads for torch even if a builder forgot
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)

    # First call (value) and warm-up.
    values, first = {}, {}
    for name in list(fns):
        try:
            t0 = time.perf_counter()
            v = fns[name]()
            first[name] = time.perf_counter() - t0
            values[name] = as_value(v)
            del v
            if first[name] < WARM_S:
                fns[name]()
        except Exception as e:  # noqa: BLE001
            impls[name] = {"status": "error", "error": "call failed: " + _short(e)}
            del fns[name]

    # Agreement with the reference (or the impl named in compare_to).
    default_ref = "reference" if "reference" in w.impls else "fastloss"
    for name in values:
        against = w.compare_to.get(name, default_ref)
        if against is None or against == name:
            continue
        chk = {"against": against, "rtol": w.rtol}
        if against not in values:
            chk.update(ok=None, note=f"{against} has no value")
        else:
            err, problem = rel_error(values[name], values[against])
            chk.update(rel_err=err, ok=bool(err <= w.rtol))
            if problem:
                chk["problem"] = problem
        impls[name]["check"] = chk
        if chk.get("ok") is False:
            impls[name]["status"] = "disagrees"
    values.clear()

    # Interleaved timing, the memory floor's read among the implementations.
    reads, closes = {}, []
    if w.read_floor and floor_reader is not None and fns:
        for method, (fn, close) in floor_reader(res["bytes_moved"]).items():
            closes.append(close)
            reads[READ + method] = method
            fns[READ + method] = fn
            fn()
            first[READ + method] = 0.0
    names = list(fns)
    reps = {n: (repeat if first[n] < SLOW_S else max(1, min(repeat, SLOW_REPEAT))) for n in names}
    times = {n: [] for n in names}
    for r in range(max(reps.values(), default=0)):
        order = [names[i] for i in round_order(len(names), r)]
        for n in order:
            if len(times[n]) >= reps[n] or n not in fns:
                continue
            try:
                time.sleep(SETTLE_S)
                if first[n] < WARM_S:
                    _warm(fns[n])
                t0 = time.perf_counter()
                fns[n]()
                times[n].append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001
                impls[n] = {"status": "error", "error": "call failed: " + _short(e)}
                del fns[n]
    fns.clear()
    for close in closes:
        close()
    del data

    floors = {m: statistics.median(times.pop(n)) * 1e3 for n, m in reads.items() if times.get(n)}
    names = [n for n in names if n not in reads]
    if floors:
        res["read_floor_method"] = min(floors, key=floors.get)
        res["read_floor_ms"] = floors[res["read_floor_method"]]
    for n in names:
        if not times[n] or impls[n]["status"] == "error":
            continue
        med = statistics.median(times[n])
        impls[n]["median_ms"] = med * 1e3
        impls[n]["times_ms"] = [t * 1e3 for t in times[n]]
        impls[n]["repeats"] = len(times[n])
        nbytes = res["bytes_moved"]
        if n.endswith(("+grad", "+grad_out")) and res["bytes_moved_grad"]:
            nbytes = res["bytes_moved_grad"]
        impls[n]["gbps"] = nbytes / med / 1e9
    _speedups(res)
    return res


def base_of(impl):
    """The fastloss implementation a peer is compared with ("x+grad" -> "fastloss+grad")."""
    return "fastloss+grad" if impl.endswith("+grad") else "fastloss"


def _speedups(res):
    impls = res["impls"]
    for n, d in impls.items():
        if n.startswith("fastloss") or "median_ms" not in d:
            continue
        base = impls.get(base_of(n), {})
        if "median_ms" in base:
            d["speedup"] = d["median_ms"] / base["median_ms"]


def add_limits(res, bandwidth_gbps, exp_per_s):
    """Memory and exp floors of a result and fastloss's fraction of the limit.

    The memory floor is the read timed in the workload's own rounds where
    there is one (``read_floor_ms``), else bytes / the run's bandwidth.
    """
    if "bytes_moved" not in res:
        return res
    if res.get("read_floor_ms"):
        res["mem_floor_ms"] = res["read_floor_ms"]
    else:
        res["mem_floor_ms"] = (
            res["bytes_moved"] / (bandwidth_gbps * 1e9) * 1e3 if bandwidth_gbps else None)
    res["exp_floor_ms"] = (
        res["n_exp"] / exp_per_s * 1e3 if (res.get("n_exp") and exp_per_s) else None)
    res["pass_floor_ms"] = (
        res["pass_bytes"] / (bandwidth_gbps * 1e9) * 1e3
        if (res.get("pass_bytes") and bandwidth_gbps) else None)
    floors = [f for f in (res["mem_floor_ms"], res["exp_floor_ms"]) if f]
    res["limit_ms"] = max(floors) if floors else None
    res["bound"] = None
    if floors:
        res["bound"] = "exp" if res["limit_ms"] == res["exp_floor_ms"] else "memory"
    fl = res["impls"].get("fastloss", {})
    res["fraction_of_limit"] = (
        res["limit_ms"] / fl["median_ms"] if res["limit_ms"] and "median_ms" in fl else None)
    return res
