"""fastloss.dask: cross_entropy and nll_loss."""

import functools

import numpy as np

from fastloss import _validate as V
from fastloss import metrics as _m
from fastloss._docs import doc
from fastloss.dask._graph import (
    _aligned,
    _da,
    _finish,
    _float_dtype,
    _grid_reduce,
    _input,
    _is_dask,
    _ratio,
    _total,
    _whole,
)

# ---------------------------------------------------------- classification

def _ce_block(x, t, *rest, opts, log_input, has_sw):
    sw = rest[0] if has_sw else None
    return np.array(_m.ce_sums(x, t, sample_weight=sw, log_input=log_input, **opts))


def _ce_none_block(x, t, *rest, fn, opts, has_sw):
    import fastloss

    return getattr(fastloss, fn)(x, t, reduction="none", sample_weight=rest[0] if has_sw else None,
                                 **opts)


def _classification(fn, input, target, weight, ignore_index, reduction, label_smoothing,
                    sample_weight, n_threads, rechunk, log_input):
    da = _da()
    V.check_reduction(reduction)
    x = _input(input, "input")
    if x.ndim < 2:
        raise ValueError(f"input must have shape (N, C) or (N, C, d1, ...) on dask, got {x.shape}")
    x = _whole(x, 1, "input", rechunk)
    dtype = _float_dtype(x)
    loss_shape = (x.shape[0],) + x.shape[2:]
    loss_chunks = (x.chunks[0],) + x.chunks[2:]
    t_kind = target.dtype.kind if hasattr(target, "dtype") else np.asarray(target).dtype.kind
    soft = (not log_input) and tuple(np.shape(target)) == tuple(x.shape) and t_kind == "f"
    if soft:
        if _is_dask(target):
            target = _whole(target, 1, "target", rechunk)
        t, _ = _aligned(target, x.shape, x.chunks, "target", "input")
    else:
        t, raw = _aligned(target, loss_shape, loss_chunks, "target", "input")
        if t is None:
            raise ValueError(f"target of class indices must have shape {loss_shape} for input "
                             f"of shape {x.shape}, got {tuple(np.shape(raw))}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}; "
                            "pass class probabilities with the input's shape instead")
    nd = len(loss_shape)
    grid = tuple(f"g{k}" for k in range(nd))
    xi = grid[:1] + ("c",) + grid[1:]
    args = [(x, xi), (t, xi if soft else grid)]
    has_sw = sample_weight is not None
    if has_sw:
        sw, raw = _aligned(sample_weight, loss_shape, loss_chunks, "sample_weight", "input",
                           dtype=np.float64 if not _is_dask(sample_weight) else None,
                           broadcast=True)
        if sw is None:
            raise ValueError(f"sample_weight of shape {np.shape(raw)} cannot be broadcast to "
                             f"the per-element loss shape {loss_shape}")
        args.append((sw, grid))
    opts = dict(weight=None if weight is None else np.asarray(weight, dtype=np.float64),
                n_threads=n_threads)
    if not log_input:
        opts["label_smoothing"] = V.check_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    if not soft:
        opts["ignore_index"] = V.check_scalar(ignore_index, "ignore_index", integer=True)
    if reduction == "none":
        pairs = []
        for a, ind in args:
            pairs += [a, ind]
        return da.blockwise(_ce_none_block, grid, *pairs, dtype=dtype, concatenate=True,
                            meta=np.empty((0,) * nd, dtype=dtype), fn=fn, opts=opts,
                            has_sw=has_sw)
    s = _grid_reduce(_ce_block, args, grid, (2,), np.float64, opts=opts, log_input=log_input,
                     has_sw=has_sw)
    return _finish(functools.partial(_ratio if reduction == "mean" else _total, dtype=dtype),
                   s, (), dtype)


@doc
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, sample_weight=None, *, n_threads=None, rechunk=True):
    """:func:`fastloss.cross_entropy` on dask arrays (lazy).

    ``input`` (N, C, d1, ...) chunked anyhow along N and d1..dk (the class
    axis is rechunked whole, see the module notes); ``target`` class
    indices (N, d1, ...) with the matching chunks, or class probabilities
    of the input's shape and chunks; ``sample_weight`` broadcastable to the
    loss shape.  'mean' / 'sum' give a 0-d dask array from one pass of the
    kernel per block ((sum, weight-sum) in float64, tree-reduced); 'none'
    gives the per-position losses with the target's chunks.

    Parameters
    ----------
    input : dask.array.Array or array_like
        As in :func:`fastloss.cross_entropy`; chunked anyhow along N and the spatial
        axes (the class axis is rechunked whole).
    target : dask.array.Array or array_like
        As in :func:`fastloss.cross_entropy`, with the input's chunks (NumPy targets are
        chunked to match).
    weight, ignore_index, label_smoothing
        As in :func:`fastloss.cross_entropy`.
    reduction : str
        As in :func:`fastloss.cross_entropy`.
    sample_weight : dask.array.Array or array_like, optional
        As in :func:`fastloss.cross_entropy`, with the chunks of the loss's shape.
    %(dask_threads)s
    rechunk : bool
        Rechunk a chunked class axis (with a ``PerformanceWarning``); False
        raises ``ValueError`` instead.

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.cross_entropy`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> x = np.random.default_rng(0).normal(size=(8, 3, 4, 4))
    >>> y = np.arange(128).reshape(8, 4, 4) % 3
    >>> v = fastloss.dask.cross_entropy(da.from_array(x, chunks=(2, 3, 2, 4)), y).compute()
    >>> bool(np.isclose(v, fastloss.cross_entropy(x, y), rtol=1e-12))
    True
    """
    return _classification("cross_entropy", input, target, weight, ignore_index, reduction,
                           label_smoothing, sample_weight, n_threads, rechunk, False)


@doc
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean",
             sample_weight=None, *, n_threads=None, rechunk=True):
    """:func:`fastloss.nll_loss` on dask arrays (lazy); as :func:`cross_entropy`.

    Parameters
    ----------
    input : dask.array.Array or array_like
        As in :func:`fastloss.nll_loss`; chunked anyhow along N and the spatial
        axes (the class axis is rechunked whole).
    target : dask.array.Array or array_like
        As in :func:`fastloss.nll_loss`, with the input's chunks (NumPy targets are
        chunked to match).
    weight, ignore_index
        As in :func:`fastloss.nll_loss`.
    reduction : str
        As in :func:`fastloss.nll_loss`.
    sample_weight : dask.array.Array or array_like, optional
        As in :func:`fastloss.nll_loss`, with the chunks of the loss's shape.
    %(dask_threads)s
    rechunk : bool
        Rechunk a chunked class axis (with a ``PerformanceWarning``); False
        raises ``ValueError`` instead.

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.nll_loss`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 3, 8, 8)); y = rng.integers(0, 3, (4, 8, 8))
    >>> dx = da.from_array(x, chunks=(1, 3, 4, 8))
    >>> v = fastloss.dask.nll_loss(dx, y).compute()
    >>> bool(np.isclose(v, fastloss.nll_loss(x, y), rtol=1e-12))
    True
    """
    return _classification("nll_loss", input, target, weight, ignore_index, reduction, 0.0,
                           sample_weight, n_threads, rechunk, True)
