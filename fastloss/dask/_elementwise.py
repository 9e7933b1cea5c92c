"""fastloss.dask: the element-wise losses, the penalties and the GAN losses."""

import functools

import numpy as np

from fastloss import _catalogue as catalogue
from fastloss import _validate as V
from fastloss import metrics as _m
from fastloss._docs import doc, fill
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
