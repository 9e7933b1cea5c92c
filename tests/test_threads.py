"""n_threads resolution: scikit-learn's semantics, OMP_NUM_THREADS, threadpoolctl."""

import numpy as np
import pytest

import fastloss as fl
from fastloss._threads import _cpu_count, effective_n_threads

from conftest import run_python


def test_explicit_and_negative_counts():
    assert effective_n_threads(3) == 3
    assert effective_n_threads(-1) == _cpu_count()
    assert effective_n_threads(-_cpu_count() - 5) == 1
    with pytest.raises(ValueError, match="n_threads must be a non-zero integer or None, got 0"):
        effective_n_threads(0)
    with pytest.raises(TypeError, match="n_threads must be an int or None, got float"):
        effective_n_threads(2.0)
    with pytest.raises(TypeError, match="n_threads must be an int or None, got bool"):
        effective_n_threads(True)


def test_set_num_threads_roundtrip():
    default = fl.get_num_threads()
    assert 1 <= default <= _cpu_count()
    try:
        fl.set_num_threads(1)
        assert fl.get_num_threads() == 1
        fl.set_num_threads(-1)
        assert fl.get_num_threads() == _cpu_count()
        with pytest.raises(ValueError, match="n must be a non-zero integer or None, got 0"):
            fl.set_num_threads(0)
    finally:
        fl.set_num_threads(None)
    assert fl.get_num_threads() == default


def _child(code, env):
    out = run_python(code, env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_omp_num_threads_is_honoured():
    code = "import fastloss; print(fastloss.get_num_threads())"
    assert _child(code, {"OMP_NUM_THREADS": "1"}) == "1"


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.zeros((4, 3))
    fl.cross_entropy(x, np.zeros(4, np.int64))  # make sure the OpenMP runtime is loaded
    if not fl._openmp_enabled():
        pytest.skip("serial build: nothing to limit")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fl.get_num_threads() == 1
    assert fl.get_num_threads() == min(_cpu_count(), fl._threads.omp_max_threads())


def test_pool_map_order_and_fork():
    """pool_map keeps the order of its items, runs on its kept threads, and a
    forked child (whose executor has no threads) gets a new pool."""
    import multiprocessing
    import threading

    from fastloss._threads import pool_map

    main = threading.get_ident()
    seen = pool_map(lambda i: (i * i, threading.get_ident()), range(40), 2)
    assert [v for v, _ in seen] == [i * i for i in range(40)]
    assert any(t != main for _, t in seen)
    assert pool_map(lambda i: threading.get_ident(), [0, 1], 1) == [main, main]
    if "fork" not in multiprocessing.get_all_start_methods():
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as p:
        assert p.apply(_squares_in_pool) == [i * i for i in range(10)]


def _squares_in_pool():
    from fastloss._threads import pool_map

    return pool_map(lambda i: i * i, range(10), 2)
