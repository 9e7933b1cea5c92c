"""What the machine can do, measured in the same run as the workloads.

* :func:`machine_info`: CPU model, core counts, caches, memory, fastloss's
  build (OpenMP, CPU target) and the versions of the peer libraries.
* :func:`measure_bandwidth`: memory read bandwidth, the best of several
  parallel vectorized float32 sums over an array larger than the last-level
  cache (a reference read loop compiled with the package, torch.sum with
  the bench's thread count, and NumPy's sum over one contiguous chunk per
  thread; the fastest counts).  A sum that widens each
  float32 to float64 is measured too but not used: it is compute-bound and
  reaches only about half of the bandwidth.
* :func:`measure_exp`: vector-exp throughput of a reference loop compiled
  with the package (``src/flprobe.h``): an exp summed over an L1-resident
  buffer per thread, never a loss kernel, so the floors do not depend on
  the code they judge.  It agrees with the C probe of ``shared/limits``.

The memory floor of a workload is bytes / bandwidth, the exp floor is
exponentials / throughput; the limit is the larger of the two.  A workload
marked ``read_floor`` has its memory floor timed in its own rounds instead
(:func:`read_floor`: the same sum over as many bytes as it reads), so that
a busy host slows the floor and the kernel alike.
"""

import importlib.metadata
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PEER_DISTRIBUTIONS = (
    "numpy", "torch", "scipy", "monai", "scikit-learn", "matplotlib",
    "pytest-benchmark", "threadpoolctl",
)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _cpu_model():
    text = _read("/proc/cpuinfo")
    if text:
        for line in text.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cache_sizes():
    """{'L1d': '64 KiB', 'L2': ..., 'L3': ...} of cpu0, as the kernel reports them."""
    out = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return out
    for e in entries:
        level = _read(f"{base}/{e}/level")
        kind = _read(f"{base}/{e}/type")
        size = _read(f"{base}/{e}/size")
        if not (level and kind and size):
            continue
        kind = kind.strip()
        name = f"L{level.strip()}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[name] = size.strip()
    return out


def _mem_total_gib():
    text = _read("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _simd_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    wanted = ("SSE42", "AVX", "AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512_SKX")
    return [f for f in wanted if __cpu_features__.get(f)]


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def fastloss_config():
    """The facts of ``fastloss.show_config()`` as a dict."""
    import fastloss
    from fastloss import _dispatch

    return {
        "version": fastloss.__version__,
        "openmp": bool(fastloss._openmp_enabled()),
        "default_threads": fastloss.get_num_threads(),
        "cpu_target": _dispatch.TARGET,
        "cpu_target_reason": _dispatch.REASON,
        "targets_built": [t for t, _ in _dispatch.TARGETS if _dispatch._built(t)],
    }


def machine_info():
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "simd": _simd_features(),
        "caches": _cache_sizes(),
        "memory_gib": _mem_total_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "fastloss": fastloss_config(),
        "versions": {d: _version(d) for d in PEER_DISTRIBUTIONS},
    }


def _best(fn, tries):
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def readers(threads, a):
    """Zero-argument callables that read all of float32 ``a`` with ``threads`` threads.

    ``{method: (callable, close)}``: a reference read loop compiled with
    the package (``src/flprobe.h``: a vector sum, one contiguous share per
    OpenMP thread, so the figure does not depend on how NumPy's or torch's
    sum loops are built), NumPy's sum over
    one contiguous chunk per thread (a thread pool), and torch.sum at the
    thread count when torch is installed.  ``close()`` releases the
    method's resources.
    """
    out = {}
    from fastloss._dispatch import TARGET, kernels

    probe = kernels("probe").read_probe
    out[f"reference read loop (src/flprobe.h, {TARGET}), {threads} thread(s)"] = (
        lambda: probe(a, threads), lambda: None)
    chunks = np.array_split(a, threads)
    pool = ThreadPoolExecutor(threads)

    def np_sum():
        list(pool.map(np.sum, chunks))

    out[f"numpy.sum float32, {threads} chunk(s) in threads"] = (np_sum, pool.shutdown)
    try:
        import torch
    except ImportError:
        pass
    else:
        ta = torch.from_numpy(a)

        def th_sum():
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                torch.sum(ta)
            finally:
                torch.set_num_threads(old)

        out[f"torch.sum float32, {threads} thread(s)"] = (th_sum, lambda: None)
    return out


def read_floor(threads, nbytes):
    """:func:`readers` of a fresh array of ``nbytes`` (float32, every page mapped).

    The bench times them in the same rounds as a memory-bound workload of
    that many bytes, and the faster one is the workload's memory floor:
    measured side by side, under the same load from the rest of the
    machine.  (A thread-pool sum started right after an OpenMP region can
    lose a core to the region's still-spinning workers; timing every
    method keeps the floor from depending on that.)
    """
    return readers(threads, np.ones(max(1, nbytes // 4), dtype=np.float32))


def measure_bandwidth(threads, nbytes=512 * 2**20, tries=7):
    """Read bandwidth in GB/s (1e9 bytes/s), the best method of several.

    Returns a dict: ``gbps`` (the figure used for the floors), ``method``,
    ``bytes``, ``by_method`` (every method's GB/s) and ``widening_gbps``
    (a float32 -> float64 sum, for comparison only).
    """
    a = np.ones(nbytes // 4, dtype=np.float32)  # written once: every page is mapped
    by_method = {}
    for method, (fn, close) in readers(threads, a).items():
        try:
            fn()
            by_method[method] = a.nbytes / _best(fn, tries) / 1e9
        finally:
            close()
    chunks = np.array_split(a, threads)
    with ThreadPoolExecutor(threads) as pool:
        def np_wide():
            list(pool.map(lambda c: np.sum(c, dtype=np.float64), chunks))

        np_wide()
        widening = a.nbytes / _best(np_wide, max(2, tries // 3)) / 1e9
    method = max(by_method, key=by_method.get)
    return {
        "gbps": by_method[method],
        "method": method,
        "bytes": int(a.nbytes),
        "by_method": by_method,
        "widening_gbps": widening,
    }


def measure_exp(threads, tries=15, reps=2000):
    """Vector exp (and log) throughput, measured apart from every kernel.

    The reference loop of ``src/flprobe.h``, compiled with the package for
    the dispatched CPU target: fastmath's float exp (the one the softmax
    kernels evaluate, within 1 ulp) summed over a 16 KiB buffer that stays
    in L1d, one buffer per thread, all threads at once.  No memory traffic
    and no other work, so the figure is the exp's own throughput, the same
    quantity as the polynomial exp of ``shared/limits`` (its C probe).  The
    best of ``tries`` runs of ``reps`` passes.

    Returns ``exp_per_s`` (all threads together; the figure used for the
    floors), ``exp_ns`` (ns per element per thread), ``log_ns`` (fastmath's
    float log, the same way; for comparison), ``method`` and ``elements``
    (per thread and run).
    """
    from fastloss._dispatch import TARGET, kernels

    probe = kernels("probe").math_probe
    out = {"elements": int(4096 * reps)}
    for name, func in (("exp_ns", 0), ("log_ns", 1)):
        probe(func, threads, 50)  # the threads and the code warm
        out[name] = min(probe(func, threads, reps) for _ in range(tries)) * 1e9
    out["exp_per_s"] = threads / out["exp_ns"] * 1e9
    out["method"] = (f"fastmath float exp over a 16 KiB L1-resident buffer per thread "
                     f"(src/flprobe.h, {TARGET}), {threads} thread(s), best of {tries}")
    return out
