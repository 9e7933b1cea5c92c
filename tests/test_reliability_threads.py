"""Determinism across thread counts, and concurrent Python callers.

* every registered function gives bit-identical results (loss and gradient)
  for n_threads = 1, 2, 3 and 7 on inputs spanning several work units;
* 8 Python threads calling losses at once get the serial results, and run in
  parallel (the kernels release the GIL).
"""

import threading
import time

import numpy as np
import pytest

import fastloss

from _registry import REGISTRY


def _bytes(out):
    if isinstance(out, (tuple, list)):
        return [b for o in out for b in _bytes(o)]
    a = np.asarray(out)
    return [(a.dtype.str, a.shape, a.tobytes())]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bit_identical_across_thread_counts(name, dtype):
    e = REGISTRY[name]
    fn = getattr(fastloss, name, None)
    assert fn is not None, f"fastloss.{name} is missing"
    args, kwargs = e.call(np.random.default_rng(11), dtype, dims=e.big_dims, flags=e.full)
    big = sum(a.size for a in args if isinstance(a, np.ndarray))
    assert big > 16384, f"{name}: big_dims give only {big} elements"
    if e.grad:
        kwargs["return_grad"] = True
    reds = [r for r in e.reductions if r != "batchmean"] or [None]
    for red in reds:
        kw = dict(kwargs) if red is None else dict(kwargs, reduction=red)
        with np.errstate(all="ignore"):
            results = {n: _bytes(fn(*args, **kw, n_threads=n)) for n in (1, 2, 3, 7)}
        for n in (2, 3, 7):
            assert results[n] == results[1], \
                f"{name} reduction={red}: n_threads={n} differs from n_threads=1"


def _concurrent_work(rng):
    calls = []
    for i in range(8):
        x = rng.standard_normal(2_000_000).astype(np.float32)
        y = rng.standard_normal(2_000_000).astype(np.float32)
        logits = rng.standard_normal((200_000, 20)).astype(np.float32)
        t = rng.integers(0, 20, 200_000)
        if i % 2:
            calls.append((fastloss.mse_loss, (x, y), {}))
        else:
            calls.append((fastloss.cross_entropy, (logits, t), {}))
        calls.append((fastloss.log_cosh_loss, (x, y), {"return_grad": True}))
    return calls


def _run_serial(calls):
    return [fn(*a, **k, n_threads=1) for fn, a, k in calls]


def _run_threads(calls, per_thread):
    out = [None] * len(calls)
    barrier = threading.Barrier(8)

    def worker(j):
        barrier.wait()
        for i in range(j, len(calls), 8):
            fn, a, k = calls[i]
            out[i] = fn(*a, **k, n_threads=1)

    ts = [threading.Thread(target=worker, args=(j,)) for j in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_concurrent_callers_get_serial_results(rng):
    calls = _concurrent_work(rng)
    serial = _run_serial(calls)
    for _ in range(3):
        par = _run_threads(calls, 8)
        for i, (s, p) in enumerate(zip(serial, par)):
            assert _bytes(s) == _bytes(p), f"call {i} differs when run from 8 threads"


def _big_calls(rng):
    x = rng.standard_normal(8_000_000)
    y = rng.standard_normal(8_000_000)
    logits = rng.standard_normal((400_000, 20))
    t = rng.integers(0, 20, 400_000)
    seg = rng.standard_normal((2, 4, 512, 512))
    lab = rng.integers(0, 4, (2, 512, 512)).astype(np.uint8)
    return {
        "log_cosh_loss": (fastloss.log_cosh_loss, (x, y), {"return_grad": True}),
        "mse_loss": (fastloss.mse_loss, (x, y), {"return_grad": True}),
        "cross_entropy": (fastloss.cross_entropy, (logits, t), {"return_grad": True}),
        "dice_loss": (fastloss.dice_loss, (seg, lab), {"return_grad": True}),
        "softmax": (fastloss.softmax, (logits,), {"axis": 1}),
    }


@pytest.mark.parametrize("name", ["log_cosh_loss", "mse_loss", "cross_entropy", "dice_loss",
                                  "softmax"])
def test_kernel_releases_the_gil(name, rng):
    """While one thread runs a long kernel, the main thread keeps running Python.

    Independent of machine load: with the GIL held for the whole call, the
    main thread's loop would stall for the whole kernel duration.
    """
    fn, a, k = _big_calls(rng)[name]
    t0 = time.perf_counter()
    for _ in range(3):
        fn(*a, **k, n_threads=1)
    single = (time.perf_counter() - t0) / 3

    def longest_stall():
        done = threading.Event()

        def worker():
            for _ in range(3):
                fn(*a, **k, n_threads=1)
            done.set()

        th = threading.Thread(target=worker)
        stamps = [time.perf_counter()]
        th.start()
        while not done.is_set():
            time.sleep(0)
            stamps.append(time.perf_counter())
        th.join()
        return float(np.max(np.diff(stamps))) if len(stamps) > 1 else float("inf")

    # up to five tries: a kernel holding the GIL stalls the loop every time,
    # a busy host only now and then (on a shared 2-vCPU VM three tries in a
    # row once saw a 47 ms gap beside a 33 ms call: longer than the call, so
    # not the kernel)
    for _ in range(5):
        gap = longest_stall()
        if gap < 0.5 * single + 0.02:
            break
    assert gap < 0.5 * single + 0.02, (
        f"{name}: main thread stalled {gap * 1e3:.0f} ms while a {single * 1e3:.0f} ms "
        "kernel ran in another thread: the GIL is not released")
