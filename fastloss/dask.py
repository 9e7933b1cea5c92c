r"""fastloss on dask arrays: per-chunk statistics with the kernels, tree-reduced.

Install with ``pip install fastloss[dask]``; dask is imported only when a
function of this module is called.

Every function takes dask arrays (NumPy arrays are wrapped, chunked like
the main input) and returns a lazy dask array; ``.compute()`` gives the
value of the in-memory function of the same name:

1. Each block is handed to the same kernels as the in-memory call
   (``da.blockwise``), which return small float64 / int64 statistics:
   (sum of weighted losses, sum of weights) for the mean losses, the
   per-(image, class) soft-Dice sums, or the confusion counts.
2. The statistics are summed over the block grid by dask's tree reduction
   (``Array.sum(split_every=...)``): a fixed graph, so a fixed order.
3. A final task turns the O(N*C) statistics into the value with the same
   arithmetic as the in-memory function.

Chunking: any chunks along the batch and spatial axes.  The class axis
(axis 1; the last axis for ``multilabel_soft_margin_loss``, ``axis`` for
``js_div``) must be one chunk: a chunked class axis is rechunked whole with
a :class:`dask.array.PerformanceWarning` (a copy of the data through the
graph), or a ``ValueError`` with ``rechunk=False``.  Targets and weights
given as dask arrays must have the input's chunks on the axes they share
(``ValueError`` otherwise, saying how to rechunk); NumPy targets are
chunked to match.  Unknown (NaN) chunk sizes are a ``ValueError``.

Exactness: counts (confusion matrix, hard Dice / IoU) are bit-identical
to the in-memory call; float64 sums differ from the in-memory kernel's own
block order by rounding only (<= 1e-12 relative for well-conditioned
values).  cross_entropy, nll_loss and the soft Dice family carry float64
block sums for every input dtype; the element-wise losses take each
block's ``reduction='sum'`` value, which is rounded to the input's dtype
(exact for float64 input, ~1e-7 relative for float32).
"""

import functools
import warnings

import numpy as np

from fastloss import _catalogue as catalogue
from fastloss import _validate as V
from fastloss import metrics as _m
from fastloss._docs import doc, fill

__all__ = [
    "cross_entropy", "nll_loss",
    "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
    "generalized_dice_loss", "sensitivity_specificity_loss", "dice_ce_loss",
    "confusion_matrix", "dice_score", "iou_score", "dice_accumulator",
    "hausdorff_distance", "average_surface_distance", "surface_dice",
    "l1_penalty", "l2_penalty", "elastic_net_penalty",
    "gan_discriminator_loss", "gan_generator_loss",
] + sorted(_m.ELEMENTWISE_MEAN)

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


# ------------------------------------------------------------ element-wise



def _ew_block(x, t, *rest, loss, extra, has_sw, opts):
    kw = dict(zip(extra, rest))
    sw = rest[len(extra)] if has_sw else None
    return np.array(_m.loss_sums(loss, x, t, sample_weight=sw, **kw, **opts))


def _ew_none_block(x, t, *rest, loss, extra, has_sw, opts):
    import fastloss

    kw = dict(zip(extra, rest))
    sw = rest[len(extra)] if has_sw else None
    return getattr(fastloss, loss)(x, t, reduction="none", sample_weight=sw, **kw, **opts)


def _elementwise(name, input, target, reduction, sample_weight, n_threads, rechunk, arrays,
                 **opts):
    da = _da()
    first, second = ("p", "q") if name == "js_div" else ("input", "target")
    x = _input(input, first)
    if x.ndim == 0:
        raise ValueError(f"{first} must have at least one axis on dask, got a scalar")
    kind = _m.ELEMENTWISE_MEAN[name]
    axis = None
    if kind != "elem":
        axis = (x.ndim - 1) if kind == "lastaxis" else opts.get("axis", -1)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of bounds for {first} of {x.ndim} dimensions")
        axis %= x.ndim
        x = _whole(x, axis, first, rechunk)
    dtype = _float_dtype(x)
    allowed = ("mean", "sum", "none", "batchmean") if name == "kl_div" else V.REDUCTIONS
    V.check_reduction(reduction, allowed)
    grid = tuple(f"g{k}" for k in range(x.ndim))
    if axis is not None:
        grid = grid[:axis] + ("c",) + grid[axis + 1:]
    if axis is not None and _is_dask(target) and target.ndim == x.ndim:
        target = _whole(target, axis, second, rechunk)
    t, raw = _aligned(target, x.shape, x.chunks, second, first, broadcast=name == "kl_div")
    if t is None:
        raise ValueError(f"{second} must have the same shape as {first} {x.shape}, "
                         f"got {tuple(np.shape(raw))}")
    args = [(x, grid), (t, grid)]
    extra = []
    for k in catalogue.row(name).per_element:
        v = arrays.get(k)
        if v is None:
            continue
        if name == "multilabel_soft_margin_loss":  # (C,) class weights: passed whole
            opts[k] = np.asarray(v, dtype=np.float64)
            continue
        a, raw = _aligned(v, x.shape, x.chunks, k, first, broadcast=True,
                          dtype=None if _is_dask(v) else np.float64)
        if a is None:
            raise ValueError(f"{k} of shape {np.shape(raw)} cannot be broadcast to the "
                             f"input's shape {x.shape}")
        args.append((a, grid))
        extra.append(k)
    pos_shape, _ = _m._positions(x.shape, kind, axis if axis is not None else -1)
    pos_grid = tuple(g for g in grid if g != "c")
    pos_chunks = tuple(c for k, c in enumerate(x.chunks) if k != axis)
    has_sw = sample_weight is not None
    if has_sw:
        sw, raw = _aligned(sample_weight, pos_shape, pos_chunks, "sample_weight", first,
                           broadcast=True, dtype=None if _is_dask(sample_weight) else np.float64)
        if sw is None:
            raise ValueError(f"sample_weight of shape {np.shape(raw)} cannot be broadcast to "
                             f"the per-element loss shape {pos_shape}")
        args.append((sw, pos_grid))
    opts["n_threads"] = n_threads
    kw = dict(loss=name, extra=tuple(extra), has_sw=has_sw, opts=opts)
    if reduction == "none":
        pairs = []
        for a, ind in args:
            pairs += [a, ind]
        return da.blockwise(_ew_none_block, pos_grid, *pairs, dtype=dtype, concatenate=True,
                            meta=np.empty((0,) * len(pos_grid), dtype=dtype), **kw)
    s = _grid_reduce(_ew_block, args, pos_grid, (2,), np.float64, **kw)
    if reduction == "sum":
        return _finish(functools.partial(_total, dtype=dtype), s, (), dtype)
    if reduction == "batchmean":
        n = float(x.shape[0])
        return _finish(functools.partial(_batchmean, n=n, dtype=dtype), s, (), dtype)
    return _finish(functools.partial(_ratio, dtype=dtype), s, (), dtype)


def _batchmean(s, n, dtype):
    return V.reduce_total(s[0], n, "mean", dtype)


def _make_elementwise(name, extra_args=()):
    import fastloss

    ref = getattr(fastloss, name)

    def f(input, target, *args, reduction="mean", sample_weight=None, n_threads=None,
          rechunk=True, **opts):
        # positional arguments after target follow the in-memory signature
        import inspect

        params = [p for p in inspect.signature(ref).parameters][2:]
        for pname, v in zip(params, args):
            if pname in ("reduction", "sample_weight"):
                if pname == "reduction":
                    reduction = v
                else:
                    sample_weight = v
            else:
                opts[pname] = v
        arrays = {k: opts.pop(k, None) for k in extra_args}
        return _elementwise(name, input, target, reduction, sample_weight, n_threads, rechunk,
                            arrays, **opts)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = fill(_ELEMENTWISE_DOC.format(name=name, target=_DOC_TARGETS.get(name, "t")))
    return f


# the docstring example's target: labels in {-1, +1} where the loss requires them
_DOC_TARGETS = {"hinge_loss": "np.sign(t - 0.5)", "exponential_loss": "np.sign(t - 0.5)",
                "soft_margin_loss": "np.sign(t - 0.5)"}

_ELEMENTWISE_DOC = """:func:`fastloss.{name}` on dask arrays (lazy).

    The inputs are chunked anyhow (the reduced axis of
    ``multilabel_soft_margin_loss`` / ``js_div`` is rechunked whole),
    targets and per-element weights with the input's chunks.  'mean' and
    'sum' give a 0-d dask array from per-block (sum, weight sum) pairs,
    tree-reduced; 'none' gives the per-element losses.

    Parameters
    ----------
    input, target : dask.array.Array or array_like
        As in :func:`fastloss.{name}`; NumPy arrays are wrapped, chunked like
        the input.
    *args
        The in-memory function's further positional arguments, in its order.
    reduction : str
        As in :func:`fastloss.{name}`.
    sample_weight : dask.array.Array or array_like, optional
        Per-element weights with the input's chunks.
    %(dask_threads)s
    rechunk : bool
        Rechunk a chunked reduced axis (with a ``PerformanceWarning``);
        False raises ``ValueError`` instead.
    **opts
        The in-memory function's keyword options.

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.{name}`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.uniform(0.05, 0.95, (6, 4)), rng.uniform(0, 1, (6, 4))
    >>> t = {target}
    >>> v = fastloss.dask.{name}(da.from_array(x, chunks=(2, 4)), t).compute()
    >>> bool(np.isclose(v, fastloss.{name}(x, t), rtol=1e-6))
    True
    """


for _name in _m.ELEMENTWISE_MEAN:
    globals()[_name] = _make_elementwise(_name, catalogue.row(_name).per_element)
del _name


@doc
def _sigmoid_focal(inputs, targets, alpha=0.25, gamma=2.0, reduction="none", sample_weight=None,
                   *, n_threads=None, rechunk=True):
    """:func:`fastloss.sigmoid_focal_loss` on dask arrays (lazy).

    Parameters
    ----------
    inputs, targets : dask.array.Array or array_like
        Logits and binary targets of one shape; NumPy arrays are wrapped,
        chunked like ``inputs``.
    alpha, gamma : float
        As in :func:`fastloss.sigmoid_focal_loss`.
    reduction : {'none', 'mean', 'sum'}
        Default 'none', as torchvision: the per-element losses with the
        input's chunks.
    sample_weight : dask.array.Array or array_like, optional
        Per-element weights with the input's chunks.
    %(dask_threads)s
    rechunk : bool
        Unused by this element-wise loss (no axis is reduced whole).

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of
        :func:`fastloss.sigmoid_focal_loss`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.normal(size=(6, 4)), rng.integers(0, 2, (6, 4)).astype(float)
    >>> v = fastloss.dask.sigmoid_focal_loss(da.from_array(x, chunks=(2, 4)), t, reduction="mean")
    >>> bool(np.isclose(v.compute(), fastloss.sigmoid_focal_loss(x, t, reduction="mean")))
    True
    """
    return _elementwise("sigmoid_focal_loss", inputs, targets, reduction, sample_weight,
                        n_threads, rechunk, {}, alpha=alpha, gamma=gamma)


_sigmoid_focal.__name__ = _sigmoid_focal.__qualname__ = "sigmoid_focal_loss"
sigmoid_focal_loss = _sigmoid_focal  # torchvision's default reduction 'none'


# ----------------------------------------------------- penalties and GAN

def _sum_block(x, *, fn, opts):
    import fastloss

    return np.array([float(getattr(fastloss, fn)(x, **opts))])


def _array_sum(fn, a, name, **opts):
    x = _input(a, name)
    nd = max(x.ndim, 1)
    if x.ndim == 0:
        x = x.reshape(1)
    grid = tuple(f"g{k}" for k in range(nd))
    return _float_dtype(x), x.size, _grid_reduce(_sum_block, [(x, grid)], grid, (1,), np.float64,
                                                 fn=fn, opts=opts)


def _penalty(arrays, fn, **opts):
    da = _da()
    if not arrays:
        return da.from_array(np.float64(0.0))
    parts = [_array_sum(fn, a, f"arrays[{k}]", **opts) for k, a in enumerate(arrays)]
    dtype = np.result_type(*[p[0] for p in parts])
    s = da.concatenate([p[2] for p in parts])
    return _finish(functools.partial(_penalty_total, dtype=dtype), s, (), dtype)


def _penalty_total(s, dtype):
    total = 0.0
    for v in s:
        total += float(v)
    return V.scalar(total, dtype)


@doc
def l1_penalty(*arrays, n_threads=None):
    """:func:`fastloss.l1_penalty` of dask arrays (lazy).

    Parameters
    ----------
    *arrays : dask.array.Array or array_like
        The parameter arrays.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.l1_penalty`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=7)
    >>> d1, d2 = da.from_array(w1, chunks=(2, 4)), da.from_array(w2, chunks=3)
    >>> v = fastloss.dask.l1_penalty(d1, d2).compute()
    >>> bool(np.isclose(v, fastloss.l1_penalty(w1, w2)))
    True
    """
    return _penalty(arrays, "l1_penalty", n_threads=n_threads)


@doc
def l2_penalty(*arrays, n_threads=None):
    """:func:`fastloss.l2_penalty` of dask arrays (lazy).

    Parameters
    ----------
    *arrays : dask.array.Array or array_like
        The parameter arrays.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.l2_penalty`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=7)
    >>> d1, d2 = da.from_array(w1, chunks=(2, 4)), da.from_array(w2, chunks=3)
    >>> v = fastloss.dask.l2_penalty(d1, d2).compute()
    >>> bool(np.isclose(v, fastloss.l2_penalty(w1, w2)))
    True
    """
    return _penalty(arrays, "l2_penalty", n_threads=n_threads)


@doc
def elastic_net_penalty(*arrays, l1_ratio=0.5, n_threads=None):
    """:func:`fastloss.elastic_net_penalty` of dask arrays (lazy).

    Parameters
    ----------
    *arrays : dask.array.Array or array_like
        The parameter arrays.
    l1_ratio
        As in :func:`fastloss.elastic_net_penalty`.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.elastic_net_penalty`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=7)
    >>> d1, d2 = da.from_array(w1, chunks=(2, 4)), da.from_array(w2, chunks=3)
    >>> v = fastloss.dask.elastic_net_penalty(d1, d2, l1_ratio=0.3).compute()
    >>> bool(np.isclose(v, fastloss.elastic_net_penalty(w1, w2, l1_ratio=0.3)))
    True
    """
    l1_ratio = V.check_scalar(l1_ratio, "l1_ratio", 0.0, 1.0)
    return _penalty(arrays, "elastic_net_penalty", l1_ratio=l1_ratio, n_threads=n_threads)


def _softplus_sum(logits, name, sign, n_threads):
    """Lazy sum of softplus(-x) (sign=+1: BCE against 1) or softplus(x) (sign=-1)."""
    dtype, n, s = _array_sum("gan_generator_loss", logits, name,
                             non_saturating=sign > 0, reduction="sum", n_threads=n_threads)
    return dtype, n, s


def _gan_value(s, parts, reduction):
    total = 0.0
    for (sign, n, dtype), v in zip(parts, s):
        val = sign * float(v)
        total += V.reduce_total(val, n, reduction, dtype)
    return V.scalar(total, parts[0][2])


@doc
def gan_discriminator_loss(real_logits, fake_logits, reduction="mean", *, n_threads=None):
    """:func:`fastloss.gan_discriminator_loss` on dask arrays (lazy; 'mean' or 'sum').

    Parameters
    ----------
    real_logits, fake_logits : dask.array.Array or array_like
        Discriminator logits of real and generated samples.
    reduction : str
        As in :func:`fastloss.gan_discriminator_loss`.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.gan_discriminator_loss`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> r, f = rng.normal(size=12), rng.normal(size=12)
    >>> dr, df = da.from_array(r, chunks=4), da.from_array(f, chunks=4)
    >>> v = fastloss.dask.gan_discriminator_loss(dr, df).compute()
    >>> bool(np.isclose(v, fastloss.gan_discriminator_loss(r, f)))
    True
    """
    da = _da()
    V.check_reduction(reduction, ("mean", "sum"))
    dr, nr, sr = _softplus_sum(real_logits, "real_logits", 1, n_threads)
    df, nf, sf = _softplus_sum(fake_logits, "fake_logits", -1, n_threads)
    parts = [(1.0, nr, dr), (-1.0, nf, df)]
    return _finish(functools.partial(_gan_value, parts=parts, reduction=reduction),
                   da.concatenate([sr, sf]), (), dr)


@doc
def gan_generator_loss(fake_logits, non_saturating=True, reduction="mean", *, n_threads=None):
    """:func:`fastloss.gan_generator_loss` on dask arrays (lazy; 'mean' or 'sum').

    Parameters
    ----------
    fake_logits : dask.array.Array or array_like
        Discriminator logits of generated samples.
    non_saturating
        As in :func:`fastloss.gan_generator_loss`.
    reduction : str
        As in :func:`fastloss.gan_generator_loss`.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.gan_generator_loss`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> r, f = rng.normal(size=12), rng.normal(size=12)
    >>> dr, df = da.from_array(r, chunks=4), da.from_array(f, chunks=4)
    >>> v = fastloss.dask.gan_generator_loss(df).compute()
    >>> bool(np.isclose(v, fastloss.gan_generator_loss(f)))
    True
    """
    V.check_reduction(reduction, ("mean", "sum"))
    if not isinstance(non_saturating, (bool, np.bool_)):
        raise TypeError(f"non_saturating must be a bool, got {type(non_saturating).__name__}")
    d, n, s = _array_sum("gan_generator_loss", fake_logits, "fake_logits",
                         non_saturating=non_saturating, reduction="sum", n_threads=n_threads)
    return _finish(functools.partial(_gan_value, parts=[(1.0, n, d)], reduction=reduction),
                   s, (), d)


# ------------------------------------------------------------ segmentation

def _seg_block(x, t, *rest, opts, C, has_sw):
    sw = rest[0] if has_sw else None
    st, ce = _m.soft_stats(x, t, sample_weight=sw, **opts)
    out = np.zeros((st.shape[0], C * 5 + 3), dtype=np.float64)
    out[:, :C * 5] = st.reshape(st.shape[0], C * 5)
    if st.shape[0]:
        out[0, C * 5:] = ce
    return out


def _seg_value(s, loss, options, C, label_map, dtype, reduction, batch):
    st = s[:, :C * 5].reshape(-1, C, 5)
    ce = np.append(s[:, C * 5:].sum(axis=0), 1.0 if label_map else 0.0)
    return _m.soft_value(loss, st, ce, dict(options, batch=batch), dtype, reduction)


def _soft(loss, input, target, options, reduction, n_threads, rechunk, sample_weight=None,
          mode="overlap", stats_only=False):
    x = _input(input, "input")
    if x.ndim < 3:
        raise ValueError(f"input must have shape (N, C, d1, ...) with at least one spatial "
                         f"axis, got {x.shape}")
    x = _whole(x, 1, "input", rechunk)
    dtype = _float_dtype(x)
    C = x.shape[1]
    lab_shape = (x.shape[0],) + x.shape[2:]
    lab_chunks = (x.chunks[0],) + x.chunks[2:]
    nd = len(lab_shape)
    grid = tuple(f"g{k}" for k in range(nd))
    xi = grid[:1] + ("c",) + grid[1:]
    tshape = tuple(np.shape(target))
    tkind = target.dtype.kind if hasattr(target, "dtype") else np.asarray(target).dtype.kind
    label_map = not (tshape == tuple(x.shape) and (tkind in "fb" or C == 1))
    if label_map:
        if len(tshape) == x.ndim and tshape[1] == 1:  # MONAI's (N, 1, *spatial)
            target = target[:, 0]
        t, raw = _aligned(target, lab_shape, lab_chunks, "target", "input")
        if t is None:
            raise ValueError(f"target label map must have shape {lab_shape} for input of "
                             f"shape {x.shape} (or one-hot/soft masks of the input's shape), "
                             f"got {tuple(np.shape(raw))}")
        args = [(x, xi), (t, grid)]
    else:
        if _is_dask(target):
            target = _whole(target, 1, "target", rechunk)
        t, _ = _aligned(target, x.shape, x.chunks, "target", "input")
        args = [(x, xi), (t, xi)]
    ce = loss == "dice_ce_loss"
    has_sw = sample_weight is not None
    if has_sw:
        sw, raw = _aligned(sample_weight, lab_shape, lab_chunks, "sample_weight", "input",
                           broadcast=True, dtype=None if _is_dask(sample_weight) else np.float64)
        if sw is None:
            raise ValueError(f"sample_weight of shape {np.shape(raw)} cannot be broadcast to "
                             f"{lab_shape}")
        args.append((sw, grid))
    activation = "softmax" if ce else options.get("activation", "softmax")
    opts = dict(activation=activation, ignore_index=options.get("ignore_index"), mode=mode,
                ce=ce, weight=options.get("weight") if ce else None, n_threads=n_threads)
    if activation not in (None, "none", "sigmoid", "softmax"):
        raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
    if activation == "softmax" and C == 1:
        raise ValueError("activation='softmax' needs at least 2 classes on axis 1, got 1; "
                         "use activation='sigmoid' for a single channel")
    batch = bool(options.get("batch", False))
    finish = functools.partial(_seg_value, loss=loss, options=options, C=C, label_map=label_map,
                               dtype=dtype, reduction=reduction, batch=batch)
    # validate the options now, on zero statistics, rather than at compute time
    with np.errstate(all="ignore"):
        probe = finish(np.zeros((1, C * 5 + 3)))
    s = _grid_reduce(_seg_block, args, grid, (C * 5 + 3,), np.float64, keep_batch=True,
                     opts=opts, C=C, has_sw=has_sw)
    s = s.rechunk({0: -1})
    if stats_only:
        return s, C, label_map, dtype
    shape = np.shape(probe)
    if reduction == "none" and not batch and loss != "generalized_dice_loss":
        shape = (x.shape[0],) + shape[1:]
    elif reduction == "none" and loss == "generalized_dice_loss" and not batch:
        shape = (x.shape[0],)
    return _finish(finish, s, shape, dtype)


def _soft_family(loss, mode="overlap"):
    import fastloss

    ref = getattr(fastloss, loss)

    def f(input, target, *, reduction="mean", n_threads=None, rechunk=True, **options):
        sw = options.pop("sample_weight", None)
        return _soft(loss, input, target, options, reduction, n_threads, rechunk, sw, mode)

    f.__name__ = f.__qualname__ = loss
    f.__doc__ = fill(_SOFT_DOC.format(name=ref.__name__))
    return f


_SOFT_DOC = """:func:`fastloss.{name}` (value) on dask arrays (lazy).

    Each block gives its per-(image, class) sums (one kernel pass; O(N*C)
    floats), summed over the spatial blocks by a tree reduction; a final
    task applies the loss formula.

    Parameters
    ----------
    input : dask.array.Array or array_like, shape (N, C, d1, ..., dk)
        Chunked anyhow along N and d1..dk; the class axis is rechunked whole.
    target : dask.array.Array or array_like
        Label map (N, d1, ..., dk) or masks of ``input``'s shape, with the
        input's chunks (NumPy targets are chunked to match).
    reduction : {{'mean', 'sum', 'none'}}
        As in :func:`fastloss.{name}`.
    %(dask_threads)s
    rechunk : bool
        Rechunk a chunked class axis (with a ``PerformanceWarning``); False
        raises ``ValueError`` instead.
    **options
        The keyword options of :func:`fastloss.{name}`.

    Returns
    -------
    dask.array.Array
        Lazy; ``.compute()`` gives the value of :func:`fastloss.{name}`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 3, 8, 8)); y = rng.integers(0, 3, (4, 8, 8))
    >>> v = fastloss.dask.{name}(da.from_array(x, chunks=(1, 3, 4, 8)), y).compute()
    >>> bool(np.isclose(v, fastloss.{name}(x, y), rtol=1e-10))
    True
    """


dice_loss = _soft_family("dice_loss")
jaccard_loss = _soft_family("jaccard_loss")
tversky_loss = _soft_family("tversky_loss")
focal_tversky_loss = _soft_family("focal_tversky_loss")
generalized_dice_loss = _soft_family("generalized_dice_loss")
sensitivity_specificity_loss = _soft_family("sensitivity_specificity_loss", "sensspec")
dice_ce_loss = _soft_family("dice_ce_loss")


def _to_accumulator(s, C, label_map, dtype, opts):
    acc = _m.DiceAccumulator(activation=opts["activation"], ignore_index=opts["ignore_index"],
                             ce=opts["ce"], weight=opts["weight"])
    acc.num_classes, acc.dtype, acc.label_map = C, dtype, label_map
    acc._st = _m._DD((C, 5))
    acc._st.add(s[:, :C * 5].reshape(-1, C, 5).sum(axis=0))
    acc._ce.add(s[:, C * 5:].sum(axis=0))
    return acc


@doc
def dice_accumulator(input, target, *, activation="softmax", ignore_index=None, ce=False,
                     weight=None, sample_weight=None, n_threads=None, rechunk=True):
    """A lazy :class:`fastloss.metrics.DiceAccumulator` filled from dask arrays.

    One pass over the data gives every ``batch=True`` value of the soft Dice
    family (and, with ``ce=True``, Dice+CE) through the accumulator's
    ``result`` / ``per_class``: e.g. the per-class Dice and the Dice+CE of
    a dataset from a single read of the store.  Returns a
    ``dask.delayed`` object; ``.compute()`` gives the accumulator, which
    can be merged with others (e.g. from other datasets or machines).

    Parameters
    ----------
    input : dask.array.Array or array_like
        As in :func:`fastloss.dice_loss`; chunked anyhow along N and the spatial
        axes (the class axis is rechunked whole).
    target : dask.array.Array or array_like
        As in :func:`fastloss.dice_loss`, with the input's chunks (NumPy targets are
        chunked to match).
    activation, ignore_index, ce, weight
        As in :class:`fastloss.metrics.DiceAccumulator`.
    sample_weight : dask.array.Array or array_like, optional
        As in :func:`fastloss.dice_loss`, with the chunks of the loss's shape.
    %(dask_threads)s
    rechunk : bool
        Rechunk a chunked class axis (with a ``PerformanceWarning``); False
        raises ``ValueError`` instead.

    Returns
    -------
    dask.delayed.Delayed
        ``.compute()`` gives a :class:`fastloss.metrics.DiceAccumulator`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 3, 8, 8)); y = rng.integers(0, 3, (4, 8, 8))
    >>> dx = da.from_array(x, chunks=(1, 3, 4, 8))
    >>> acc = fastloss.dask.dice_accumulator(dx, y, ce=True).compute()
    >>> ref = fastloss.dice_ce_loss(x, y, batch=True)
    >>> bool(np.isclose(acc.result('dice_ce_loss'), ref, rtol=1e-10))
    True
    """
    import dask

    if ce and activation != "softmax":
        raise ValueError(f"ce=True needs activation='softmax', got {activation!r}")
    loss = "dice_ce_loss" if ce else "dice_loss"
    options = dict(activation=activation, ignore_index=ignore_index, weight=weight)
    s, C, label_map, dtype = _soft(loss, input, target, options, "mean", n_threads, rechunk,
                                   sample_weight, stats_only=True)
    opts = dict(activation=activation, ignore_index=ignore_index, ce=ce, weight=weight)
    return dask.delayed(_to_accumulator)(s, C, label_map, dtype, opts)


# ------------------------------------------------------------ hard metrics

def _cm_block(p, t, *, C, ignore_index, per_image, n_threads):
    return _m.confusion_sums(p, t, C, ignore_index, per_image, n_threads)


def _label_pair(pred, target, per_image):
    p = _input(pred, "pred")
    t, raw = _aligned(target, p.shape, p.chunks, "target", "pred")
    if t is None:
        raise ValueError(f"target must have the same shape as pred {p.shape}, "
                         f"got {tuple(np.shape(raw))}")
    for name, a in (("pred", p), ("target", t)):
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    if p.ndim == 0:
        if per_image:
            raise ValueError("per_image=True needs label maps with a leading image axis, "
                             "got a scalar")
        p, t = p.reshape(1), t.reshape(1)
    return p, t


def _confusion(pred, target, num_classes, ignore_index, per_image, n_threads):
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    if ignore_index is not None:
        ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    p, t = _label_pair(pred, target, per_image)
    grid = tuple(f"g{k}" for k in range(p.ndim))
    s = _grid_reduce(_cm_block, [(p, grid), (t, grid)], grid, (C, C), np.int64,
                     keep_batch=per_image, C=C, ignore_index=ignore_index,
                     per_image=per_image, n_threads=n_threads)
    return s, C


@doc
def confusion_matrix(pred, target, num_classes, ignore_index=None, *, n_threads=None):
    """:func:`fastloss.confusion_matrix` of dask label maps: a lazy (C, C) int64 array.

    Per-block counts tree-summed: bit-identical to the in-memory call for
    any chunking.  ``target`` needs ``pred``'s chunks.

    Parameters
    ----------
    pred, target : dask.array.Array or array_like
        Integer label maps of one shape and chunks.
    num_classes, ignore_index
        As in :func:`fastloss.confusion_matrix`.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy (C, C) int64 counts (``per_image``: (N, C, C)).

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> p = rng.integers(0, 3, (4, 8, 8)); t = rng.integers(0, 3, (4, 8, 8))
    >>> dp = da.from_array(p, chunks=(1, 4, 8))
    >>> cm = fastloss.dask.confusion_matrix(dp, t, 3).compute()
    >>> bool((cm == fastloss.confusion_matrix(p, t, 3)).all())
    True
    """
    s, C = _confusion(pred, target, num_classes, ignore_index, False, n_threads)
    return s


def _score(pred, target, num_classes, ignore_index, per_image, ignore_empty, empty_score,
           n_threads, iou):
    empty_score = float(empty_score)
    s, C = _confusion(pred, target, num_classes, ignore_index, per_image, n_threads)
    if per_image:
        s = s.rechunk({0: -1})
    return s.map_blocks(_m.overlap_from_confusion, iou=iou, empty_score=empty_score,
                        ignore_empty=bool(ignore_empty), drop_axis=s.ndim - 1,
                        dtype=np.float64)


@doc
def dice_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
               ignore_empty=True, empty_score=np.nan, n_threads=None):
    """:func:`fastloss.dice_score` of dask label maps (lazy (C,) or (N, C) float64).

    Parameters
    ----------
    pred, target : dask.array.Array or array_like
        Integer label maps of one shape and chunks.
    num_classes, ignore_index, per_image, empty_score
        As in :func:`fastloss.dice_score`.
    ignore_empty
        As in :func:`fastloss.dice_score`: NaN for a class absent from the target
        (MONAI's metrics), else ``empty_score`` where it is absent from both.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy (C,) or (N, C) float64 scores.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> p = rng.integers(0, 3, (4, 8, 8)); t = rng.integers(0, 3, (4, 8, 8))
    >>> dp = da.from_array(p, chunks=(1, 4, 8))
    >>> s = fastloss.dask.dice_score(dp, t, 3).compute()
    >>> bool(np.array_equal(s, fastloss.dice_score(p, t, 3)))
    True
    """
    return _score(pred, target, num_classes, ignore_index, per_image, ignore_empty, empty_score,
                  n_threads, False)


@doc
def iou_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
              ignore_empty=True, empty_score=np.nan, n_threads=None):
    """:func:`fastloss.iou_score` of dask label maps (lazy (C,) or (N, C) float64).

    Parameters
    ----------
    pred, target : dask.array.Array or array_like
        Integer label maps of one shape and chunks.
    num_classes, ignore_index, per_image, empty_score
        As in :func:`fastloss.iou_score`.
    ignore_empty
        As in :func:`fastloss.iou_score`: NaN for a class absent from the target
        (MONAI's metrics), else ``empty_score`` where it is absent from both.
    %(dask_threads)s

    Returns
    -------
    dask.array.Array
        Lazy (C,) or (N, C) float64 scores.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> rng = np.random.default_rng(0)
    >>> p = rng.integers(0, 3, (4, 8, 8)); t = rng.integers(0, 3, (4, 8, 8))
    >>> dp = da.from_array(p, chunks=(1, 4, 8))
    >>> s = fastloss.dask.iou_score(dp, t, 3).compute()
    >>> bool(np.array_equal(s, fastloss.iou_score(p, t, 3)))
    True
    """
    return _score(pred, target, num_classes, ignore_index, per_image, ignore_empty, empty_score,
                  n_threads, True)


# ------------------------------------------------------------ surface metrics

def _whole_images(x, name, rechunk):
    """x with every axis but the first (images) in one chunk."""
    axes = [ax for ax in range(1, x.ndim) if len(x.chunks[ax]) > 1]
    if not axes:
        return x
    if not rechunk:
        raise ValueError(
            f"{name} is chunked along axes {axes} (chunks {x.chunks}); a surface metric "
            f"needs each image whole: rechunk it with {name}.rechunk({{{axes[0]}: -1, ...}}) "
            "(chunks along the first axis only) or pass rechunk=True"
        )
    from dask.array import PerformanceWarning

    warnings.warn(
        f"{name} is chunked along axes {axes} (chunks {x.chunks}); rechunking each image "
        "to one chunk copies the data through the graph. Store the images whole (chunks "
        "along the first axis only) to avoid this.",
        PerformanceWarning, stacklevel=4,
    )
    return x.rechunk({ax: -1 for ax in range(1, x.ndim)})


def _surface_block(p, t, *, fn, kw):
    from fastloss import distance as _dist

    return getattr(_dist, fn)(p, t, reduction="none", **kw)


def _surface(fn, pred, target, num_classes, include_background, reduction, rechunk, kw):
    from fastloss import distance as _dist

    V.check_reduction(reduction, _dist._METRIC_REDUCTIONS)
    p = _input(pred, "pred")
    t, raw = _aligned(target, p.shape, p.chunks, "target", "pred")
    if t is None:
        raise ValueError(f"target must have the same shape as pred {p.shape}, "
                         f"got {tuple(np.shape(raw))}")
    if num_classes is None:
        if p.ndim < 3:
            raise ValueError(f"pred must be one-hot (N, C, *spatial) or a label map with "
                             f"num_classes, got shape {p.shape}")
        C = p.shape[1]
    else:
        C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
        if p.ndim < 2:
            raise ValueError(f"pred must be a label map (N, *spatial), got shape {p.shape}")
    Cu = C if (include_background or C == 1) else C - 1
    p, t = _whole_images(p, "pred", rechunk), _whole_images(t, "target", rechunk)
    da = _da()
    ind = "n" + "abcdefghijlmopqrstuvwxyz"[:p.ndim - 1]   # one letter per axis
    kw = dict(kw, num_classes=num_classes, include_background=include_background)
    out = da.blockwise(_surface_block, "nk", p, ind, t, ind, new_axes={"k": Cu},
                       concatenate=True, dtype=np.float64, meta=np.empty((0, 0)),
                       fn=fn, kw=kw)
    if reduction == "none":
        return out
    return _finish(functools.partial(_dist._reduce, reduction=reduction), out, (), np.float64)


_SURFACE_DOC = """\
pred, target : dask.array.Array or array_like
    Label maps (N, d1, ...) with ``num_classes``, or one-hot masks
    (N, C, d1, ...), of one shape; chunks along the first axis only
    (each image whole; other chunkings are rechunked with a
    PerformanceWarning, or a ValueError with ``rechunk=False``).
rechunk : bool
    Rechunk images split over several chunks (default True).
%(dask_threads)s"""

_surface_doc = doc(surface=_SURFACE_DOC)


@_surface_doc
def hausdorff_distance(pred, target, *, num_classes=None, percentile=None, directed=False,
                       spacing=None, include_background=False, reduction="none",
                       mode="monai", rechunk=True, n_threads=None):
    """:func:`fastloss.hausdorff_distance` of a stack of volumes, one task per block of images.

    Each block of whole images is scored by the in-memory function
    (``reduction='none'``); the (N, C') values are then reduced as it does.

    Parameters
    ----------
    %(surface)s
    num_classes, percentile, directed, spacing, include_background, mode
        As in :func:`fastloss.hausdorff_distance`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.hausdorff_distance`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=2)
    >>> dp = da.from_array(p, chunks=(2, 8, 8))
    >>> fastloss.dask.hausdorff_distance(dp, t, num_classes=2, reduction="mean").compute()
    np.float64(2.0)
    """
    from fastloss import distance as _dist

    kw = dict(percentile=_dist._check_percentile(percentile), directed=bool(directed),
              spacing=spacing, mode=mode, n_threads=n_threads)
    return _surface("hausdorff_distance", pred, target, num_classes, bool(include_background),
                    reduction, rechunk, kw)


@_surface_doc
def average_surface_distance(pred, target, *, num_classes=None, symmetric=False, spacing=None,
                             include_background=False, reduction="none", rechunk=True,
                             n_threads=None):
    """:func:`fastloss.average_surface_distance` of a stack of volumes, one task per block.

    Parameters
    ----------
    %(surface)s
    num_classes, symmetric, spacing, include_background
        As in :func:`fastloss.average_surface_distance`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.average_surface_distance`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 1, axis=1)
    >>> dp = da.from_array(p, chunks=(1, 8, 8))
    >>> fastloss.dask.average_surface_distance(dp, t, num_classes=2, symmetric=True,
    ...                                        reduction="mean").compute()
    np.float64(0.5)
    """
    kw = dict(symmetric=bool(symmetric), spacing=spacing, n_threads=n_threads)
    return _surface("average_surface_distance", pred, target, num_classes,
                    bool(include_background), reduction, rechunk, kw)


@_surface_doc
def surface_dice(pred, target, class_thresholds, *, num_classes=None, spacing=None,
                 include_background=False, use_subvoxels=False, reduction="none",
                 rechunk=True, n_threads=None):
    """:func:`fastloss.surface_dice` of a stack of volumes, one task per block of images.

    Parameters
    ----------
    %(surface)s
    class_thresholds, num_classes, spacing, include_background, use_subvoxels
        As in :func:`fastloss.surface_dice`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.surface_dice`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=1)
    >>> dp = da.from_array(p, chunks=(2, 8, 8))
    >>> fastloss.dask.surface_dice(dp, t, [1.0], num_classes=2).compute().ravel()
    array([0.625, 0.625, 0.625, 0.625])
    """
    kw = dict(class_thresholds=np.asarray(class_thresholds, dtype=np.float64).tolist(),
              spacing=spacing, use_subvoxels=bool(use_subvoxels), n_threads=n_threads)
    return _surface("surface_dice", pred, target, num_classes, bool(include_background),
                    reduction, rechunk, kw)

