"""Metric-learning losses of embeddings: triplet margin, contrastive and
center loss.

Each reduces a row of an embedding (its distance to another, or to its
class center) and then the rows, in one pass over the data that also writes
the gradient when asked (see the design notes of ``src/_embedding.pyx``).
"""

import math

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("embedding")

__all__ = ["triplet_margin_loss", "contrastive_loss", "center_loss"]


def _embeddings(arrays, names, half=False):
    """Same-shape (N, D) or (D,) float arrays in one computation dtype.

    With ``half``, arrays that all have one float16/bfloat16 dtype are kept
    in it (the computation dtype is then float32).
    """
    raw = [np.asarray(a) for a in arrays]
    for a, nm in zip(raw, names):
        if a.dtype.kind not in "biuf" and not V.is_half(a.dtype):
            raise TypeError(f"{nm} must be a real numeric array, got dtype {a.dtype}")
    dt = V.float_dtype(*raw)
    keep = half and V.is_half(raw[0].dtype) and all(a.dtype == raw[0].dtype for a in raw)
    xs = [V.as_float(a, nm, dtype=raw[0].dtype if keep else dt) for a, nm in zip(raw, names)]
    for a, nm in zip(xs[1:], names[1:]):
        V.same_shape(xs[0], a, names[0], nm)
    x0 = xs[0]
    if x0.ndim not in (1, 2):
        raise ValueError(f"{names[0]} must have shape (N, D) or (D,), got {x0.shape}")
    unbatched = x0.ndim == 1
    return [x.reshape(1, -1) if unbatched else x for x in xs], unbatched, dt


@doc
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        squared=False, reduction="mean", *, sample_weight=None,
                        return_grad=False, n_threads=None):
    r"""Triplet margin loss, torch semantics (plus squared distances).

    .. math:: \ell_i = \max(0,\ d(a_i, p_i) - d(a_i, n_i) + \text{margin}),
              \qquad d(x, y) = \lVert x - y + \varepsilon \rVert_p

    (:math:`\varepsilon` is added to the difference, as in torch's
    ``pairwise_distance``).  With ``swap=True`` the negative distance is
    :math:`\min(d(a, n), d(p, n))` (distance swap, Balntas et al. 2016);
    at a tie the anchor's distance is used.  ``squared=True`` uses
    :math:`d^2` (FaceNet).

    Parameters
    ----------
    anchor, positive, negative : array_like, shape (N, D) or (D,)
        Embeddings, all of the same shape.  float32 when all are float32.
    margin : float
    p : float > 0
        Norm degree (1 and 2 have fast paths).
    eps : float
    swap : bool
    squared : bool
    reduction : {'mean', 'sum', 'none'}
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return ``(g_anchor, g_positive, g_negative)``, each of the
        inputs' shape, from the same pass.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grads : tuple of three ndarrays, only with ``return_grad=True``

    Notes
    -----
    Equivalent to ``torch.nn.functional.triplet_margin_loss`` when
    ``squared=False``.  The gradient of a distance whose difference vector is
    exactly zero is taken as 0 (as torch's norm backward does).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> a = np.array([[0.0, 0.0]]); p = np.array([[3.0, 4.0]]); n = np.array([[1.0, 0.0]])
    >>> round(float(fastloss.triplet_margin_loss(a, p, n, eps=0.0)), 6)  # 5 - 1 + 1
    5.0
    """
    r = _k.triplet_call(anchor, positive, negative, margin, p, eps, swap, squared, reduction,
                        sample_weight, return_grad, n_threads)
    if r is not None:
        return r
    raw = (np.asarray(anchor), np.asarray(positive), np.asarray(negative))
    (a, pp, n), unbatched, dt = _embeddings(raw, ("anchor", "positive", "negative"),
                                            half=True)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    margin = V.check_scalar(margin, "margin")
    p = V.check_scalar(p, "p", 0.0, math.inf, lo_open=True, hi_open=True)
    eps = V.check_scalar(eps, "eps")
    N = a.shape[0]
    sw, sw_arr = V.row_weights(sample_weight, N, unbatched)
    shape = () if unbatched else (N,)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if V.is_half(a.dtype) and not 1 <= a.shape[1] <= _k.HALF_ROW_MAX:
        a, pp, n = (x.astype(dt) for x in (a, pp, n))  # rows too long for the half kernel
    kw = dict(anchor=a, positive=pp, negative=n, margin=margin, p=p, eps=eps, swap=bool(swap),
              squared=bool(squared), sample_weight=sw_arr, loss_out=loss_out,
              gscale=V.row_scale(reduction, N, sw), n_threads=nt)
    if V.is_half(a.dtype):
        # read in their own width; the gradients in it too
        grads, stream = _grad_arrays(a.shape, a.dtype, 3) if return_grad else (None, False)
        g = grads if return_grad else (None, None, None)
        total, denom = _k.triplet_half(**kw, ga=g[0], gp=g[1], gn=g[2], stream=stream)
    else:
        stream = False
        if return_grad:
            grads, stream = _grad_arrays(a.shape, dt, 3)
            g = [x.reshape(-1) for x in grads]
        else:
            grads = None
            g = [V.empty(dt)] * 3
        total, denom = _k.triplet(**kw, ga=g[0], gp=g[1], gn=g[2], stream=stream)
    loss = V.loss_value(total, denom, reduction, loss_out, shape, dt)
    if not return_grad:
        return loss
    if unbatched:
        grads = [x.reshape(-1) for x in grads]
    return loss, V.grads_in_dtypes(grads, raw)


def _grad_arrays(shape, dtype, k):
    """``(arrays, stream)``: ``k`` gradient arrays of one shape and dtype (one per
    embedding input); ``stream`` when every one is to be written with
    non-temporal stores (V.grad_array's)."""
    got = [V.grad_array(None, shape, dtype, per_call=k) for _ in range(k)]
    return [g for g, _ in got], all(s for _, s in got)


def _binary_labels(label, n, unbatched):
    """0/1 labels as an integer array; float labels must hold 0.0 or 1.0."""
    t = np.asarray(label)
    want = () if unbatched else (n,)
    if t.shape != want:
        raise ValueError(f"label must have shape {want}, got {t.shape}")
    if t.dtype == np.bool_:
        return t.astype(np.uint8).reshape(-1)
    if t.dtype.kind == "f" or V.is_half(t.dtype):
        flat = t.reshape(-1)
        bad = np.flatnonzero((flat != 0) & (flat != 1))
        if bad.size:
            raise ValueError(
                f"label holds {flat[bad[0]]} at flat position {int(bad[0])}; "
                "expected 0 (similar) or 1 (dissimilar)"
            )
        return flat.astype(np.uint8)
    return V.as_labels(t, "label").reshape(-1)


@doc
def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean", *, sample_weight=None,
                     return_grad=False, n_threads=None):
    r"""Contrastive loss of embedding pairs (Hadsell, Chopra & LeCun 2006).

    .. math:: \ell_i = (1 - y_i)\, \tfrac12 d_i^2
              + y_i\, \tfrac12 \max(0,\ \text{margin} - d_i)^2,
              \qquad d_i = \lVert x1_i - x2_i \rVert_2

    with label 0 = similar pair, 1 = dissimilar pair.

    Parameters
    ----------
    x1, x2 : array_like, shape (N, D) or (D,)
    label : array_like of shape (N,) or ()
        0 or 1: integers, bools, or floats equal to 0.0 / 1.0.
    margin : float
    reduction : {'mean', 'sum', 'none'}
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return ``(g_x1, g_x2)`` (``g_x2 = -g_x1``).  For a dissimilar
        pair with :math:`d = 0` the (direction-less) gradient is taken as 0.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grads : tuple of two ndarrays, only with ``return_grad=True``

    Notes
    -----
    torch has no built-in; the usual torch code is
    ``((1 - y) * d**2 + y * clamp(margin - d, min=0)**2) / 2`` with
    ``d = F.pairwise_distance(x1, x2, eps=0)``.  Labels other than 0/1 raise
    ``ValueError`` naming the value and position (found in the kernel).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x1 = np.array([[0.0, 0.0], [0.0, 0.0]]); x2 = np.array([[0.3, 0.4], [0.3, 0.4]])
    >>> np.round(fastloss.contrastive_loss(x1, x2, np.array([0, 1]), reduction="none"), 6)
    array([0.125, 0.125])
    """
    r = _k.contrastive_call(x1, x2, label, margin, reduction, sample_weight, return_grad,
                            n_threads)
    if r is not None:
        return r
    raw = (np.asarray(x1), np.asarray(x2))
    (a, b), unbatched, dt = _embeddings(raw, ("x1", "x2"), half=True)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    margin = V.check_scalar(margin, "margin")
    N = a.shape[0]
    t = _binary_labels(label, N, unbatched)
    sw, sw_arr = V.row_weights(sample_weight, N, unbatched)
    shape = () if unbatched else (N,)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if V.is_half(a.dtype) and not 1 <= a.shape[1] <= _k.HALF_ROW_MAX:
        a, b = a.astype(dt), b.astype(dt)  # rows too long for the half kernel
    # float16 / bfloat16 rows are read in their own width, the gradients written in it
    gdt = a.dtype
    grads, stream = _grad_arrays(a.shape, gdt, 2) if return_grad else (None, False)
    kw = dict(x1=a, x2=b, label=t, margin=margin, sample_weight=sw_arr, loss_out=loss_out,
              gscale=V.row_scale(reduction, N, sw), n_threads=nt)
    if V.is_half(a.dtype):
        g = grads if return_grad else (None, None)
        total, denom, bad = _k.contrastive_half(**kw, g1=g[0], g2=g[1], stream=stream)
    else:
        g = [x.reshape(-1) for x in grads] if return_grad else [V.empty(dt)] * 2
        total, denom, bad = _k.contrastive(**kw, g1=g[0], g2=g[1])
    if bad >= 0:
        raise ValueError(
            f"label holds {t[bad]} at flat position {bad}; expected 0 (similar) "
            "or 1 (dissimilar)"
        )
    loss = V.loss_value(total, denom, reduction, loss_out, shape, dt)
    if not return_grad:
        return loss
    if unbatched:
        grads = [x.reshape(-1) for x in grads]
    return loss, V.grads_in_dtypes(grads, raw)


@doc
def center_loss(features, labels, centers, reduction="mean", *, sample_weight=None,
                return_grad=False, n_threads=None):
    r"""Center loss (Wen et al., 2016).

    .. math:: \ell_i = \tfrac12 \lVert x_i - c_{y_i} \rVert_2^2

    Parameters
    ----------
    features : array_like, shape (N, D)
    labels : array_like of int, shape (N,)
        Class indices in [0, C), any integer dtype.
    centers : array_like, shape (C, D)
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by N (or the sum of ``sample_weight``).
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return ``(g_features, g_centers)``:
        :math:`g_{x_i} = s_i (x_i - c_{y_i})` and
        :math:`g_{c_k} = -\sum_{i: y_i = k} g_{x_i}` (times 1/N for 'mean').
        The centers' gradient is summed per class in row order after the row
        pass (deterministic, no atomic adds).  float16 / bfloat16 features
        (rows of up to 2048 values) are read in their own width, with the
        centers in float32: ``g_features`` comes back in the features'
        dtype, ``g_centers`` in the centers' dtype, summed from the float32
        row gradients before rounding.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grads : tuple of two ndarrays, only with ``return_grad=True``

    Notes
    -----
    torch has no built-in; the usual torch code is
    ``((x - centers[y]) ** 2).sum(1) / 2`` averaged over the batch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[1.0, 2.0]]); c = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> float(fastloss.center_loss(x, np.array([1]), c))
    0.5
    """
    r = _k.center_call(features, labels, centers, reduction, sample_weight, return_grad,
                       n_threads)
    if r is not None:
        return r
    (x,), _, dt = _embeddings((features,), ("features",), half=True)
    f_raw = np.asarray(features)
    if f_raw.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {f_raw.shape}")
    c = V.as_float(centers, "centers", dtype=dt)
    if c.ndim != 2 or c.shape[1] != x.shape[1]:
        raise ValueError(f"centers must have shape (C, {x.shape[1]}), got {c.shape}")
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    N = x.shape[0]
    t = V.row_labels(labels, N, False, "labels")
    sw, sw_arr = V.row_weights(sample_weight, N, False)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if V.is_half(x.dtype) and not 1 <= x.shape[1] <= _k.HALF_ROW_MAX:
        x = x.astype(dt)  # rows too long for the half kernel
    gx = V.grad_array(None, x.shape, x.dtype)[0] if return_grad else None
    gc = V.grad_array(None, c.shape, dt)[0] if return_grad else None
    kw = dict(x=x, labels=t, centers=c, sample_weight=sw_arr, loss_out=loss_out,
              gc=gc.reshape(-1) if return_grad else V.empty(dt),
              gscale=V.row_scale(reduction, N, sw), n_threads=nt)
    if V.is_half(x.dtype):
        # features read in their own width, their gradient written in it; the
        # centers (a (C, D) parameter table) in float32
        total, denom, bad = _k.center_half(**kw, gx=gx)
    else:
        total, denom, bad = _k.center(**kw, gx=gx.reshape(-1) if return_grad else V.empty(dt))
    V.raise_label_error(t, bad, c.shape[0], name="labels")
    loss = V.loss_value(total, denom, reduction, loss_out, (N,), dt)
    if not return_grad:
        return loss
    return loss, V.grads_in_dtypes((gx, gc), (f_raw, np.asarray(centers)))
