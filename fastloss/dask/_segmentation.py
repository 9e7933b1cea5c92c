"""fastloss.dask: the soft Dice family, its accumulator and the hard metrics."""

import functools

import numpy as np

from fastloss import _validate as V
from fastloss import metrics as _m
from fastloss._docs import doc, fill
from fastloss.dask._graph import (
    _aligned,
    _finish,
    _float_dtype,
    _grid_reduce,
    _input,
    _is_dask,
    _whole,
)

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
