"""fastloss.dask's shared steps: dask inputs, chunk alignment, per-block
statistics reduced over the block grid."""

import warnings

import numpy as np

from fastloss import _validate as V

SPLIT_EVERY = 8


def _da():
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - exercised without dask only
        raise ImportError(
            "fastloss.dask needs dask: pip install 'fastloss[dask]' (or dask[array])"
        ) from None
    return da


def _is_dask(a):
    return hasattr(a, "dask") and hasattr(a, "chunks")


def _check_known(x, name):
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(f"{name} has unknown chunk sizes {x.chunks}; call "
                         f"{name}.compute_chunk_sizes() first")


def _input(a, name, chunks="auto"):
    da = _da()
    if not _is_dask(a):
        a = np.asarray(a)
        a = da.from_array(a, chunks=chunks)
    _check_known(a, name)
    return a


def _whole(x, axis, name, rechunk):
    """x with axis ``axis`` in one chunk (rechunked with a warning)."""
    if len(x.chunks[axis]) <= 1:
        return x
    if not rechunk:
        raise ValueError(
            f"{name} is chunked along its class axis {axis} (chunks {x.chunks[axis]}); "
            "the kernels need every class of a position in one block: rechunk it with "
            f"{name}.rechunk({{{axis}: -1}}) or pass rechunk=True"
        )
    from dask.array import PerformanceWarning

    warnings.warn(
        f"{name} is chunked along its class axis {axis} (chunks {x.chunks[axis]}); "
        "rechunking it to one chunk copies the data through the graph. Store the "
        "data with the class axis whole to avoid this.",
        PerformanceWarning, stacklevel=3,
    )
    return x.rechunk({axis: -1})


def _aligned(a, shape, chunks, name, main, dtype=None, broadcast=False):
    """``a`` as a dask array of ``shape`` chunked as ``chunks`` (from ``main``)."""
    da = _da()
    if not _is_dask(a):
        arr = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
        if arr.shape != tuple(shape):
            if not broadcast and arr.shape != ():
                return None, arr
            try:
                arr = np.broadcast_to(arr, shape)
            except ValueError:
                return None, arr
        return da.from_array(arr, chunks=chunks), arr
    _check_known(a, name)
    if tuple(a.shape) != tuple(shape):
        if not broadcast:
            return None, a
        try:
            a = da.broadcast_to(a, shape).rechunk(chunks)
        except ValueError:
            return None, a
    for ax, (got, want) in enumerate(zip(a.chunks, chunks)):
        if tuple(got) != tuple(want):
            raise ValueError(
                f"{name} chunks {a.chunks} are not aligned with {main}'s chunks along "
                f"{name} axis {ax} ({tuple(got)} vs {tuple(want)}); rechunk it with "
                f"{name}.rechunk({tuple(tuple(c) for c in chunks)})"
            )
    return a, a


# ------------------------------------------------------------ graph helpers

def _call_block(*blocks, _func, _ndim, _keep, **kw):
    """Run a statistics function on one block, shaped for the block grid."""
    out = np.asarray(_func(*blocks, **kw))
    if _keep:
        return out.reshape(out.shape[:1] + (1,) * (_ndim - 1) + out.shape[1:])
    return out.reshape((1,) * _ndim + out.shape)


def _grid_reduce(func, args, grid, stat_shape, dtype, keep_batch=False, **kw):
    """Per-block statistics of ``stat_shape`` summed over the block grid.

    ``args`` is a list of (dask array, index) pairs; indices use the grid
    letters of ``grid`` and 'c' for an axis held whole (contracted).
    With ``keep_batch`` the first grid axis keeps its length (statistics
    per image): func returns (n_block, *stat_shape).
    """
    da = _da()
    ndim = len(grid)
    stat = tuple(f"s{k}" for k in range(len(stat_shape)))
    pairs = []
    for a, ind in args:
        pairs += [a, ind]
    adjust = {g: 1 for g in grid[(1 if keep_batch else 0):]}
    out = da.blockwise(
        _call_block, grid + stat, *pairs,
        new_axes=dict(zip(stat, stat_shape)), adjust_chunks=adjust, dtype=dtype,
        concatenate=True, meta=np.empty((0,) * (ndim + len(stat_shape)), dtype=dtype),
        _func=func, _ndim=ndim, _keep=keep_batch, **kw,
    )
    axes = tuple(range(1 if keep_batch else 0, ndim))
    if axes:
        out = out.sum(axis=axes, split_every=SPLIT_EVERY, dtype=dtype)
    return out


def _finish(fn, stats, shape, dtype):
    """A lazy dask array (of ``shape``) holding fn(stats computed)."""
    import dask

    da = _da()
    return da.from_delayed(dask.delayed(fn)(stats), shape=shape, dtype=dtype)


def _float_dtype(x):
    return V.as_float(np.empty(0, dtype=x.dtype), "input").dtype


def _ratio(s, dtype):
    return V.reduce_total(s[0], s[1], "mean", dtype)


def _total(s, dtype):
    return V.scalar(s[0], dtype)
