"""Row-wise losses: multi-class margins, softmax focal, metric learning,
margin-softmax face losses and the Fast R-CNN loss.

Each loss reduces a row (the class axis or an embedding) and then the rows,
in one pass over the data that also writes the gradient when asked (see the
design notes of ``src/_rowwise.pyx``).
"""

import math

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels

_k = kernels("rowwise")
_kc = kernels("classification")

__all__ = [
    "softmax_focal_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "triplet_margin_loss",
    "contrastive_loss",
    "center_loss",
    "cosface_loss",
    "arcface_loss",
    "sphereface_loss",
    "fast_rcnn_loss",
]

_EMPTY = np.empty(0, dtype=np.float64)


# ------------------------------------------------------------------ helpers

def _empty(dtype):
    return np.empty(0, dtype=dtype)


def _rows(x, name):
    """x as (N, C) rows: (C,) is one unbatched row."""
    if x.ndim == 1:
        return x.reshape(1, x.shape[0]), True
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C) or (C,), got {x.shape}")
    return x, False


def _row_labels(target, n, unbatched, name="target"):
    t = V.as_labels(target, name)
    want = () if unbatched else (n,)
    if t.shape != want:
        raise ValueError(f"{name} must have shape {want}, got {t.shape}")
    return t.reshape(-1)


def _sw(sample_weight, n, unbatched):
    shape = () if unbatched else (n,)
    sw = V.broadcast_weight(sample_weight, shape)
    return sw, (_EMPTY if sw is None else sw.reshape(-1))


def _gscale(reduction, n, sw):
    """Gradient scale of 'mean' over rows: 1 / (N or sum of sample weights)."""
    if reduction != "mean":
        return 1.0
    denom = float(np.sum(sw)) if sw is not None else float(n)
    return 1.0 / denom if denom != 0 else 0.0


def _result(total, denom, reduction, loss_out, shape, dtype):
    if reduction == "none":
        return loss_out.reshape(shape)
    return V.reduce_total(total, denom, reduction, V.compute_dtype(dtype))


def _in_dtypes(grads, arrays):
    """Gradients of float16/bfloat16 arrays (computed in float32) rounded to nearest
    even into their dtype."""
    return tuple(g.astype(a.dtype) if V.is_half(a.dtype) else g
                 for g, a in zip(grads, arrays))


def _raise_bad(t_flat, bad, C, ignore_index=None, name="target"):
    if bad >= 0:
        raise V.label_error(t_flat, bad, C, ignore_index, name)


def _class_rows_call(input, target, reduction, sample_weight, return_grad, grad_out,
                     n_threads, name="input", half=False, grad_dtype=None, weight=None):
    """Common checks of the (N, C) class-score losses (``name``: the score argument).

    ``half``: float16/bfloat16 scores are kept (for a kernel that reads them).
    """
    x = V.as_float(input, name, half=half)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    x2, unbatched = _rows(x, name)
    if x2.shape[1] == 0:
        raise ValueError(f"{name} must have at least one class (axis 1), got shape {x.shape}")
    t = _row_labels(target, x2.shape[0], unbatched)
    sw, sw_arr = _sw(sample_weight, x2.shape[0], unbatched)
    grad = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                         inputs=((name, x), ("target", t), ("weight", weight),
                                 ("sample_weight", sample_weight)))[0]
            if return_grad else None)
    shape = () if unbatched else (x2.shape[0],)
    loss_out = np.empty(x2.shape[0] if reduction == "none" else 0,
                        dtype=V.compute_dtype(x.dtype))
    g_arr = grad.reshape(-1) if grad is not None else _empty(x.dtype)
    return x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out


# ------------------------------------------------------------- focal loss

def softmax_focal_loss(input, target, gamma=2.0, alpha=None, ignore_index=-100,
                       reduction="mean", *, sample_weight=None, return_grad=False,
                       grad_out=None, grad_dtype=None, n_threads=None):
    r"""Multi-class focal loss on logits (Lin et al., 2017, softmax form).

    Per position, with :math:`p = \operatorname{softmax}(x)_y` over the class
    axis (axis 1),

    .. math:: \ell = -\alpha_y\, (1 - p)^{\gamma} \log p

    and :math:`\partial\ell/\partial x_c = \alpha_y K (p_c - [c = y])`,
    :math:`K = q^\gamma (1 - \gamma\, p \log(p) / q)`, :math:`q = 1 - p`
    computed as ``-expm1(log p)``.  Since :math:`\log(p)/q \to -1`, the
    gradient is finite for every :math:`\gamma \ge 0`, including
    :math:`0 < \gamma < 1`.  :math:`\gamma = 0`, :math:`\alpha = 1` is the
    cross-entropy.

    Parameters
    ----------
    input : array_like, shape (C,), (N, C) or (N, C, d1, ..., dk)
        Logits.  The class axis of NCHW / NCDHW data is read in place.
    target : array_like of int, shape (), (N,) or (N, d1, ..., dk)
        Class indices, any integer dtype.
    gamma : float >= 0
    alpha : None, float or array_like of shape (C,)
        Per-class factor :math:`\alpha_c` (None: 1).
    ignore_index : int
        Positions with this target contribute nothing and are not counted.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by the number of non-ignored positions (by the sum of
        their sample weights when given); :math:`\alpha` is a factor of the
        loss, not of the denominator (as in torchvision's sigmoid focal loss).
    sample_weight : array_like, optional
        Per-position weights broadcastable to the loss shape.
    return_grad : bool
        Also return d(loss)/d(input), from the same pass.
    grad_out : ndarray, optional
        C-contiguous buffer for the gradient.
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray (``'none'``: the target's shape)
    grad : ndarray of ``input``'s shape, only with ``return_grad=True``

    Notes
    -----
    torch has no built-in softmax focal loss; the usual torch code is
    ``-alpha[y] * (1 - p) ** gamma * log_softmax(x)[y]``, averaged.
    With ``'mean'`` and ``return_grad=True`` a short pass over the targets
    finds the denominator first (as in :func:`fastloss.cross_entropy`).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[2.0, 0.0, -1.0]]); y = np.array([0])
    >>> round(float(fastloss.softmax_focal_loss(x, y, gamma=0.0)), 6)  # == CE
    0.169846
    """
    x = V.as_float(input, "input", half=True)
    if V.is_half(x.dtype):
        return V.via_float32(
            lambda x32, g32: softmax_focal_loss(
                x32, target, gamma, alpha, ignore_index, reduction, sample_weight=sample_weight,
                return_grad=return_grad, grad_out=g32, n_threads=n_threads),
            x, return_grad, grad_out, grad_dtype)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    gamma = V.check_scalar(gamma, "gamma", 0.0)
    ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    if x.ndim == 0:
        raise ValueError("input must have a class axis: shape (C,), (N, C) or (N, C, d1, ...), "
                         "got a scalar")
    unbatched = x.ndim == 1
    if unbatched:
        x3 = x.reshape(1, x.shape[0], 1)
    else:
        x3 = x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64)))
    C = x3.shape[1]
    if C == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    shape = () if unbatched else (x.shape[0],) + x.shape[2:]
    t = V.as_labels(target, "target")
    if t.shape != shape:
        raise ValueError(
            f"target of class indices must have shape {shape} for input of shape "
            f"{x.shape}, got {t.shape}"
        )
    t2 = t.reshape(x3.shape[0], x3.shape[2])
    if alpha is None:
        a = _EMPTY
    elif np.ndim(alpha) == 0:
        a = np.full(C, V.check_scalar(alpha, "alpha"), dtype=np.float64)
    else:
        a = V.class_weight(alpha, C, "alpha")
    sw = V.broadcast_weight(sample_weight, shape)
    sw_arr = _EMPTY if sw is None else sw.reshape(-1)
    grad = (V.grad_array(grad_out, x.shape, x.dtype,
                         inputs=(("input", x), ("target", t), ("alpha", alpha),
                                 ("sample_weight", sample_weight)))[0]
            if return_grad else None)
    gscale = 1.0
    if grad is not None and reduction == "mean":
        denom, bad = _kc.index_weight_sum(t2.reshape(-1), _EMPTY, sw_arr, ignore_index, C, nt)
        _raise_bad(t.reshape(-1), bad, C, ignore_index)
        gscale = 1.0 / denom if denom != 0 else 0.0
    loss_out = np.empty(t2.size if reduction == "none" else 0, dtype=x.dtype)
    g_arr = grad.reshape(-1) if grad is not None else _empty(x.dtype)
    total, denom, bad = _k.focal(x3, t2, a, sw_arr, ignore_index, gamma, loss_out,
                                 g_arr, gscale, nt)
    _raise_bad(t.reshape(-1), bad, C, ignore_index)
    loss = _result(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss


# ---------------------------------------------------- multi-class margins

def _margin_rows(input, target, p, margin, weight, reduction, sample_weight,
                 return_grad, grad_out, n_threads, divide_by_c, grad_dtype=None):
    if weight is None and sample_weight is None and grad_out is None and grad_dtype is None:
        r = _k.margin_call(input, target, p, margin, divide_by_c, reduction, return_grad,
                           n_threads)
        if r is not None:
            return r
    xh = V.as_float(input, "input", half=True)
    if V.is_half(xh.dtype) and not 1 <= (xh.shape[-1] if xh.ndim else 0) <= _k.HALF_ROW_MAX:
        return V.via_float32(
            lambda x32, g32: _margin_rows(x32, target, p, margin, weight, reduction,
                                          sample_weight, return_grad, g32, n_threads,
                                          divide_by_c),
            xh, return_grad, grad_out, grad_dtype)
    x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out = _class_rows_call(
        xh, target, reduction, sample_weight, return_grad, grad_out, n_threads,
        half=True, grad_dtype=grad_dtype, weight=weight)
    C = x2.shape[1]
    w = V.class_weight(weight, C)
    args = (_EMPTY if w is None else w, sw_arr, p, margin, 1.0 / C if divide_by_c else 1.0,
            loss_out)
    if V.is_half(x.dtype):  # float16 / bfloat16 rows read in their own width
        total, denom, bad = _k.multi_margin_half(
            x2, t, *args, None if grad is None else grad.reshape(-1),
            _gscale(reduction, x2.shape[0], sw), nt)
    else:
        total, denom, bad = _k.multi_margin(x2, t, *args, g_arr,
                                            _gscale(reduction, x2.shape[0], sw), nt)
    _raise_bad(t, bad, C)
    loss = _result(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean", *,
                      sample_weight=None, return_grad=False, grad_out=None, grad_dtype=None,
                      n_threads=None):
    r"""Multi-class margin (hinge) loss, torch semantics.

    .. math:: \ell_i = \frac{w_{y_i}}{C} \sum_{j \ne y_i}
              \max(0,\ \text{margin} - x_{i, y_i} + x_{i j})^p

    Parameters
    ----------
    input : array_like, shape (N, C) or (C,)
    target : array_like of int, shape (N,) or ()
        Class indices in [0, C), any integer dtype.
    p : {1, 2}
    margin : float
    weight : array_like of shape (C,), optional
        Per-class weight, applied by the target class.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by N (not by the sum of class weights), as torch does;
        by the sum of ``sample_weight`` when that is given.
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return d(loss)/d(input) (shape of ``input``), same pass.
    grad_out : ndarray, optional
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    Equivalent to ``torch.nn.functional.multi_margin_loss``.
    :func:`multiclass_hinge_loss` is the same sum without the 1/C.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> s = np.array([[2.1, 1.4, -0.1], [2.1, 1.3, -2.2], [-0.5, 1.5, 3.1]])
    >>> np.round(fastloss.multi_margin_loss(s, np.array([0, 1, 2]), reduction="none"), 6)
    array([0.1, 0.6, 0. ])
    """
    if isinstance(p, (bool, np.bool_)) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    margin = V.check_scalar(margin, "margin")
    return _margin_rows(input, target, int(p), margin, weight, reduction, sample_weight,
                        return_grad, grad_out, n_threads, True, grad_dtype)


def multiclass_hinge_loss(input, target, margin=1.0, squared=False, reduction="mean", *,
                          sample_weight=None, return_grad=False, grad_out=None, grad_dtype=None,
                          n_threads=None):
    r"""Weston–Watkins multi-class SVM (hinge) loss.

    .. math:: \ell_i = \sum_{j \ne y_i} \max(0,\ s_{ij} - s_{i y_i} + \text{margin})

    (each term squared with ``squared=True``).  Unlike
    :func:`multi_margin_loss` there is no division by the number of classes.

    Parameters
    ----------
    input : array_like, shape (N, C) or (C,)
        Class scores.
    target : array_like of int, shape (N,) or ()
    margin : float
    squared : bool
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by N (or the sum of ``sample_weight``).
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
    grad_out : ndarray, optional
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    ``C * torch.nn.functional.multi_margin_loss(input, target, p=1 or 2,
    margin=margin, reduction='none')``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> s = np.array([[2.1, 1.4, -0.1], [2.1, 1.3, -2.2], [-0.5, 1.5, 3.1]])
    >>> y = np.array([0, 1, 2])
    >>> np.round(fastloss.multiclass_hinge_loss(s, y, reduction="none"), 6)
    array([0.3, 1.8, 0. ])
    >>> round(float(fastloss.multiclass_hinge_loss(s, y)), 6)
    0.7
    """
    margin = V.check_scalar(margin, "margin")
    if not isinstance(squared, (bool, np.bool_)):
        raise TypeError(f"squared must be a bool, got {type(squared).__name__}")
    return _margin_rows(input, target, 2 if squared else 1, margin, None, reduction,
                        sample_weight, return_grad, grad_out, n_threads, False, grad_dtype)


# --------------------------------------------------------- metric learning

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
    n_threads : int, optional

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
    raw = (np.asarray(anchor), np.asarray(positive), np.asarray(negative))
    (a, pp, n), unbatched, dt = _embeddings(raw, ("anchor", "positive", "negative"),
                                            half=True)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    margin = V.check_scalar(margin, "margin")
    p = V.check_scalar(p, "p", 0.0, math.inf, lo_open=True, hi_open=True)
    eps = V.check_scalar(eps, "eps")
    N = a.shape[0]
    sw, sw_arr = _sw(sample_weight, N, unbatched)
    shape = () if unbatched else (N,)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if V.is_half(a.dtype) and not 1 <= a.shape[1] <= _k.HALF_ROW_MAX:
        a, pp, n = (x.astype(dt) for x in (a, pp, n))  # rows too long for the half kernel
    if V.is_half(a.dtype):
        # read in their own width; the gradients in it too
        grads = [V.grad_array(None, a.shape, a.dtype)[0] for _ in range(3)] if return_grad else None
        total, denom = _k.triplet_half(
            a, pp, n, margin, p, eps, bool(swap), bool(squared), sw_arr, loss_out,
            *(grads if return_grad else (None, None, None)), _gscale(reduction, N, sw), nt)
    else:
        if return_grad:
            grads = [V.grad_array(None, a.shape, dt)[0] for _ in range(3)]
            g = [x.reshape(-1) for x in grads]
        else:
            grads = None
            g = [_empty(dt)] * 3
        total, denom = _k.triplet(a, pp, n, margin, p, eps, bool(swap), bool(squared), sw_arr,
                                  loss_out, g[0], g[1], g[2], _gscale(reduction, N, sw), nt)
    loss = _result(total, denom, reduction, loss_out, shape, dt)
    if not return_grad:
        return loss
    if unbatched:
        grads = [x.reshape(-1) for x in grads]
    return loss, _in_dtypes(grads, raw)


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
    n_threads : int, optional

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
    raw = (np.asarray(x1), np.asarray(x2))
    (a, b), unbatched, dt = _embeddings(raw, ("x1", "x2"))
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    margin = V.check_scalar(margin, "margin")
    N = a.shape[0]
    t = _binary_labels(label, N, unbatched)
    sw, sw_arr = _sw(sample_weight, N, unbatched)
    shape = () if unbatched else (N,)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if return_grad:
        grads = [V.grad_array(None, a.shape, dt)[0] for _ in range(2)]
        g = [x.reshape(-1) for x in grads]
    else:
        grads = None
        g = [_empty(dt)] * 2
    total, denom, bad = _k.contrastive(a, b, t, margin, sw_arr, loss_out, g[0], g[1],
                                       _gscale(reduction, N, sw), nt)
    if bad >= 0:
        raise ValueError(
            f"label holds {t[bad]} at flat position {bad}; expected 0 (similar) "
            "or 1 (dissimilar)"
        )
    loss = _result(total, denom, reduction, loss_out, shape, dt)
    if not return_grad:
        return loss
    if unbatched:
        grads = [x.reshape(-1) for x in grads]
    return loss, _in_dtypes(grads, raw)


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
        pass (deterministic, no atomic adds).
    n_threads : int, optional

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
    (x,), _, dt = _embeddings((features,), ("features",))
    f_raw = np.asarray(features)
    if f_raw.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {f_raw.shape}")
    c = V.as_float(centers, "centers", dtype=dt)
    if c.ndim != 2 or c.shape[1] != x.shape[1]:
        raise ValueError(f"centers must have shape (C, {x.shape[1]}), got {c.shape}")
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    N = x.shape[0]
    t = _row_labels(labels, N, False, "labels")
    sw, sw_arr = _sw(sample_weight, N, False)
    loss_out = np.empty(N if reduction == "none" else 0, dtype=dt)
    if return_grad:
        gx = V.grad_array(None, x.shape, dt)[0]
        gc = V.grad_array(None, c.shape, dt)[0]
        ga, gb = gx.reshape(-1), gc.reshape(-1)
    else:
        ga = gb = _empty(dt)
    total, denom, bad = _k.center(x, t, c, sw_arr, loss_out, ga, gb,
                                  _gscale(reduction, N, sw), nt)
    _raise_bad(t, bad, c.shape[0], name="labels")
    loss = _result(total, denom, reduction, loss_out, (N,), dt)
    return (loss, _in_dtypes((gx, gc), (f_raw, np.asarray(centers)))) if return_grad else loss


# --------------------------------------------------------- margin softmax

_MARGIN_KIND = {"cosface": int(_k.MarginKind.MARGIN_COSFACE),
                "arcface": int(_k.MarginKind.MARGIN_ARCFACE),
                "sphereface": int(_k.MarginKind.MARGIN_SPHEREFACE)}


def _margin_softmax(kind, cosine, target, s, m, easy_margin, reduction, sample_weight,
                    return_grad, grad_out, n_threads, grad_dtype=None):
    xh = V.as_float(cosine, "cosine", half=True)
    if V.is_half(xh.dtype):
        return V.via_float32(
            lambda x32, g32: _margin_softmax(kind, x32, target, s, m, easy_margin, reduction,
                                             sample_weight, return_grad, g32, n_threads),
            xh, return_grad, grad_out, grad_dtype)
    x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out = _class_rows_call(
        cosine, target, reduction, sample_weight, return_grad, grad_out, n_threads, "cosine")
    C = x2.shape[1]
    total, denom, bad = _k.margin_softmax(
        x2, t, _MARGIN_KIND[kind], s, m, bool(easy_margin), sw_arr, loss_out, g_arr,
        _gscale(reduction, x2.shape[0], sw), nt)
    _raise_bad(t, bad, C)
    loss = _result(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss


def cosface_loss(cosine, target, s=30.0, m=0.35, reduction="mean", *, sample_weight=None,
                 return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""CosFace / additive margin softmax loss (Wang et al., 2018).

    .. math:: \ell_i = -\log \frac{e^{s(\cos\theta_{y} - m)}}
              {e^{s(\cos\theta_{y} - m)} + \sum_{j \ne y} e^{s \cos\theta_j}}

    i.e. :math:`\psi(c) = c - m`.  The loss of row i is the softmax
    cross-entropy of the logits :math:`s\cos\theta_{ij}` with the target
    logit replaced by :math:`s\,\psi(\cos\theta_{iy_i})`, computed in one
    fused pass over the cosine matrix.

    Parameters
    ----------
    cosine : array_like, shape (N, C) or (C,)
        Cosines between normalized embeddings and normalized class weights.
    target : array_like of int, shape (N,) or ()
    s : float > 0
        Scale.
    m : float
        Additive cosine margin.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by N (or the sum of ``sample_weight``).
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return d(loss)/d(cosine), same pass.
    grad_out : ndarray, optional
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    The torch equivalent is
    ``F.cross_entropy(s * (cosine - m * one_hot(target)), target)``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> c = np.array([[0.9, 0.1, -0.2]])
    >>> round(float(fastloss.cosface_loss(c, np.array([0]), s=1.0, m=0.0)), 6)
    0.577849
    """
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m")
    return _margin_softmax("cosface", cosine, target, s, m, False, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)


def arcface_loss(cosine, target, s=64.0, m=0.5, easy_margin=False, reduction="mean", *,
                 sample_weight=None, return_grad=False, grad_out=None, grad_dtype=None,
                 n_threads=None):
    r"""ArcFace / additive angular margin loss (Deng et al., 2019).

    Softmax cross-entropy of :math:`s\cos\theta_j` with the target logit
    :math:`s\,\psi(\cos\theta_y)`, where

    .. math:: \psi(c) = \cos(\theta + m) = c \cos m - \sqrt{1 - c^2} \sin m
              \quad \text{if } c > \cos(\pi - m),
              \qquad \psi(c) = c - m \sin m \quad \text{otherwise}

    (the usual fallback once :math:`\theta > \pi - m`, where
    :math:`\cos(\theta + m)` would stop decreasing).  With
    ``easy_margin=True``: :math:`\psi(c) = \cos(\theta + m)` if :math:`c > 0`,
    else :math:`c`.  One fused pass over the cosine matrix.

    Parameters
    ----------
    cosine : array_like, shape (N, C) or (C,)
    target : array_like of int, shape (N,) or ()
    s : float > 0
    m : float in [0, pi)
        Angular margin in radians.
    easy_margin : bool
    reduction : {'mean', 'sum', 'none'}
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return d(loss)/d(cosine), same pass.
    grad_out : ndarray, optional
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    NaN-free at :math:`\cos\theta = \pm 1`: :math:`\sin\theta` is
    :math:`\sqrt{\max(0, 1 - c^2)}` of the cosine clipped to [-1, 1] (so the
    value is exact there), and the derivative
    :math:`\psi'(c) = \cos m + c \sin m / \sin\theta`, infinite at
    :math:`c = \pm 1`, uses :math:`\max(\sin\theta, 10^{-4})`: finite,
    and exact wherever :math:`|c| < \sqrt{1 - 10^{-8}}`.
    The torch equivalent is the insightface ``ArcMarginProduct`` logits fed to
    ``F.cross_entropy`` (which gives NaN gradients at :math:`c = \pm 1`).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> c = np.array([[1.0, 0.0]])  # psi(1) = cos(0 + 0.5)
    >>> round(float(fastloss.arcface_loss(c, np.array([0]), s=1.0, m=0.5)), 6)
    0.347685
    """
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m", 0.0, math.pi, hi_open=True)
    return _margin_softmax("arcface", cosine, target, s, m, easy_margin, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)


def sphereface_loss(cosine, target, s=30.0, m=4, reduction="mean", *, sample_weight=None,
                    return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""SphereFace / multiplicative angular margin loss (Liu et al., 2017).

    Softmax cross-entropy of :math:`s\cos\theta_j` with the target logit
    :math:`s\,\psi(\theta_y)`,

    .. math:: \psi(\theta) = (-1)^k \cos(m\theta) - 2k, \qquad
              \theta \in [k\pi/m, (k+1)\pi/m],\ k \in \{0, .., m-1\}

    which is monotone in :math:`\theta` and equals :math:`\cos\theta` for
    ``m=1``.  :math:`\cos(m\theta)` is the Chebyshev polynomial
    :math:`T_m(\cos\theta)`, so the value and the derivative
    :math:`(-1)^k T_m'(c)` are polynomials of the cosine: finite at
    :math:`\pm 1` (cosines are clipped to [-1, 1]).  One fused pass.

    Parameters
    ----------
    cosine : array_like, shape (N, C) or (C,)
    target : array_like of int, shape (N,) or ()
    s : float > 0
        Scale (SphereFace's original uses the feature norm; the common
        normalized variant uses a fixed scale).
    m : int in 1..4
    reduction : {'mean', 'sum', 'none'}
    sample_weight : array_like of shape (N,), optional
    return_grad : bool
        Also return d(loss)/d(cosine), same pass.
    grad_out : ndarray, optional
    grad_dtype : dtype, optional
        For float16/bfloat16 input: the gradient's dtype, the input's
        (default; rounded to nearest even) or float32.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar or ndarray of shape (N,)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    No torch built-in; equivalent to ``F.cross_entropy`` of the logits
    above (the original's lambda annealing is not included).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> c = np.array([[0.5, 0.0]])   # theta = pi/3, m = 2: k = 0, psi = cos(2 pi/3)
    >>> round(float(fastloss.sphereface_loss(c, np.array([0]), s=1.0, m=2)), 6)
    0.974077
    """
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m", 1, 4, integer=True)
    return _margin_softmax("sphereface", cosine, target, s, float(m), False, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)


# ----------------------------------------------------------- Fast R-CNN

def fast_rcnn_loss(class_logits, labels, box_regression, box_targets, *, box_weight=1.0,
                   beta=1.0, return_parts=False, return_grad=False, n_threads=None):
    r"""Fast R-CNN multi-task loss: classification CE plus box smooth L1.

    .. math:: L = \operatorname{CE}_{\text{mean}}(x, y) + \lambda \frac{1}{N}
              \sum_{i:\, y_i \ge 1} \sum_{k=1}^{4}
              \operatorname{smoothL1}_\beta(b_{ik} - t_{ik})

    with :math:`\operatorname{smoothL1}_\beta(d) = d^2/(2\beta)` for
    :math:`|d| < \beta`, :math:`|d| - \beta/2` otherwise (L1 at
    :math:`\beta = 0`); label 0 is the background.

    Parameters
    ----------
    class_logits : array_like, shape (N, C)
    labels : array_like of int, shape (N,)
        Class indices in [0, C), 0 = background.
    box_regression : array_like, shape (N, 4) or (N, 4 C)
        Box deltas; with 4 C columns (class-specific), row i uses columns
        ``4 y_i .. 4 y_i + 3``.
    box_targets : array_like, shape (N, 4)
    box_weight : float >= 0
        :math:`\lambda`.
    beta : float >= 0
        Smooth-L1 threshold.  ``beta=1/9`` (with ``box_weight=1``)
        reproduces torchvision's internal
        ``torchvision.models.detection.roi_heads.fastrcnn_loss``
        (classification loss + box loss).
    return_parts : bool
        Return ``(total, ce, box)`` instead of ``total``.
    return_grad : bool
        Also return ``(g_class_logits, g_box_regression)``.
    n_threads : int, optional

    Returns
    -------
    loss : NumPy scalar, or the tuple ``(total, ce, box)``
    grads : tuple of two ndarrays, only with ``return_grad=True``

    Notes
    -----
    The cross-entropy part is :func:`fastloss.cross_entropy` (one pass over
    the logits); the box part is one pass over the regression rows, which
    also checks the labels.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.zeros((2, 3)); y = np.array([0, 2])
    >>> b = np.zeros((2, 4)); t = np.array([[0, 0, 0, 0], [0.5, 0, 0, 2.0]])
    >>> round(float(fastloss.fast_rcnn_loss(x, y, b, t)), 6)  # log 3 + (0.125 + 1.5) / 2
    1.911112
    """
    x_raw = np.asarray(class_logits)
    x = V.as_float(x_raw, "class_logits")
    if x.ndim != 2:
        raise ValueError(f"class_logits must have shape (N, C), got {x.shape}")
    N, C = x.shape
    t = _row_labels(labels, N, False, "labels")
    b = V.as_float(box_regression, "box_regression", dtype=x.dtype)
    if b.ndim != 2 or b.shape[0] != N or b.shape[1] not in (4, 4 * C):
        raise ValueError(
            f"box_regression must have shape ({N}, 4) or ({N}, {4 * C}), got {b.shape}")
    bt = V.as_float(box_targets, "box_targets", dtype=x.dtype)
    if bt.shape != (N, 4):
        raise ValueError(f"box_targets must have shape ({N}, 4), got {bt.shape}")
    box_weight = V.check_scalar(box_weight, "box_weight", 0.0)
    beta = V.check_scalar(beta, "beta", 0.0)
    nt = V.threads(n_threads)
    gb = V.grad_array(None, b.shape, x.dtype)[0] if return_grad else None
    scale = box_weight / N if N > 0 else 0.0
    box_sum, _, bad = _k.box_smooth_l1(
        b, bt, t, C, beta, gb.reshape(-1) if gb is not None else _empty(x.dtype), scale, nt)
    _raise_bad(t, bad, C, name="labels")
    from fastloss.classification import cross_entropy

    if return_grad:
        ce, gx = cross_entropy(x, t, return_grad=True, n_threads=nt)
    else:
        ce = cross_entropy(x, t, n_threads=nt)
    with np.errstate(invalid="ignore", divide="ignore"):
        box = V.scalar(box_weight * box_sum / N if N > 0 else np.nan, x.dtype)
    total = V.scalar(np.float64(ce) + np.float64(box), x.dtype)
    loss = (total, ce, box) if return_parts else total
    if not return_grad:
        return loss
    return loss, _in_dtypes((gx, gb), (x_raw, np.asarray(box_regression)))
