"""Thread-count resolution, with scikit-learn's ``n_threads`` semantics.

* ``None``: the process-wide value set by :func:`set_num_threads`, else
  ``omp_get_max_threads()`` (which honours ``OMP_NUM_THREADS`` and
  threadpoolctl limits) capped at the CPUs this process may use;
* ``n > 0``: n threads;
* ``n < 0``: ``cpu_count + 1 + n`` (so -1 means all CPUs), at least 1;
* ``0``: a ValueError.

Without OpenMP every kernel runs on one thread whatever is asked.  The
count is an upper bound: a kernel uses at most one thread per 16384
elements of work (``threads_for_work`` in src/_common.pxd), and a call
whose work is a single unit runs on the calling thread without an OpenMP
region.  Results do not depend on the count.
"""

import numbers
import os

from fastloss._openmp_helpers import omp_max_threads, openmp_enabled

_override = None


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _check(n_threads, name="n_threads"):
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {type(n_threads).__name__}")
    if n_threads == 0:
        raise ValueError(f"{name} must be a non-zero integer or None, got 0")
    return int(n_threads)


def effective_n_threads(n_threads=None):
    """The number of threads a kernel uses for ``n_threads``."""
    if not openmp_enabled():
        if n_threads is not None:
            _check(n_threads)
        return 1
    if n_threads is None:
        if _override is not None:
            return _override
        return max(1, min(omp_max_threads(), _cpu_count()))
    n = _check(n_threads)
    if n < 0:
        return max(1, _cpu_count() + 1 + n)
    return n


def get_num_threads() -> int:
    """Threads used by fastloss when a call passes ``n_threads=None``.

    Returns
    -------
    int
        The default set by :func:`set_num_threads`, else OpenMP's
        (``OMP_NUM_THREADS``, threadpoolctl limits), at most the usable CPUs;
        1 in a build without OpenMP.

    Examples
    --------
    >>> import fastloss
    >>> fastloss.get_num_threads() >= 1
    True
    """
    return effective_n_threads(None)


def set_num_threads(n: int | None) -> None:
    """Set the process-wide default thread count (``None`` restores OpenMP's).

    Parameters
    ----------
    n : int or None
        The default for calls with ``n_threads=None``.  Negative values
        count from the number of CPUs as in scikit-learn (-1: all of them);
        0 is a ``ValueError``.

    Returns
    -------
    None

    Examples
    --------
    >>> import fastloss
    >>> fastloss.set_num_threads(1)
    >>> fastloss.get_num_threads()
    1
    >>> fastloss.set_num_threads(None)
    """
    global _override
    if n is None:
        _override = None
        return
    n = _check(n, "n")
    _override = max(1, _cpu_count() + 1 + n) if n < 0 else n


# ---- Python threads for kernels that release the GIL --------------------------------

_pools = {}


def _forget_pools():
    _pools.clear()  # a forked child has the executors but not their threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def pool_map(fn, items, workers):
    """``[fn(x) for x in items]``, on up to ``workers`` Python threads.

    For work made of a few independent kernel calls (which release the
    GIL), each too short for an OpenMP team of its own.  The threads are
    kept between calls: starting two costs about 0.1 ms on a busy machine
    and several times that once its cores have gone idle.  The tasks must
    not themselves wait on tasks of this pool.
    """
    items = list(items)
    if workers < 2 or len(items) < 2:
        return [fn(x) for x in items]
    pool = _pools.get(workers)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="fastloss")
    return list(pool.map(fn, items))
