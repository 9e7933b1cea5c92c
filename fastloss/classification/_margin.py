"""The (N, C) class-score losses on the row kernels of ``src/_margin.pyx``:
multi-class margins (multi-margin, multiclass hinge) and the margin-softmax
face-recognition losses (CosFace, ArcFace, SphereFace)."""

import math

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_kr = kernels("margin")

__all__ = [
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "cosface_loss",
    "arcface_loss",
    "sphereface_loss",
]

_EMPTY = V.EMPTY


def _class_rows(input, target, reduction, sample_weight, return_grad, grad_out,
               n_threads, name="input", half=False, grad_dtype=None, weight=None):
    """Common checks of the (N, C) class-score losses (``name``: the score argument).

    ``half``: float16/bfloat16 scores are kept (for a kernel that reads them).
    """
    x = V.as_float(input, name, half=half)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    x2, unbatched = V.rows(x, name)
    if x2.shape[1] == 0:
        raise ValueError(f"{name} must have at least one class (axis 1), got shape {x.shape}")
    t = V.row_labels(target, x2.shape[0], unbatched)
    sw, sw_arr = V.row_weights(sample_weight, x2.shape[0], unbatched)
    grad, stream = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                                 inputs=((name, x), ("target", t), ("weight", weight),
                                         ("sample_weight", sample_weight)))
                    if return_grad else (None, False))
    shape = () if unbatched else (x2.shape[0],)
    loss_out = np.empty(x2.shape[0] if reduction == "none" else 0,
                        dtype=V.compute_dtype(x.dtype))
    g_arr = grad.reshape(-1) if grad is not None else V.empty(x.dtype)
    return x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out, stream




# ---------------------------------------------------- multi-class margins

def _margin_rows(input, target, p, margin, weight, reduction, sample_weight,
                 return_grad, grad_out, n_threads, divide_by_c, grad_dtype=None):
    if weight is None and sample_weight is None and grad_dtype is None:
        r = _kr.margin_call(input, target, p, margin, divide_by_c, reduction, return_grad,
                           n_threads, grad_out)
        if r is not None:
            return r
    xh = V.as_float(input, "input", half=True)
    if V.is_half(xh.dtype) and not 1 <= (xh.shape[-1] if xh.ndim else 0) <= _kr.HALF_ROW_MAX:
        return V.via_float32(
            lambda x32, g32: _margin_rows(x32, target, p, margin, weight, reduction,
                                          sample_weight, return_grad, g32, n_threads,
                                          divide_by_c),
            xh, return_grad, grad_out, grad_dtype)
    x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out, stream = _class_rows(
        xh, target, reduction, sample_weight, return_grad, grad_out, n_threads,
        half=True, grad_dtype=grad_dtype, weight=weight)
    C = x2.shape[1]
    w = V.class_weight(weight, C)
    kw = dict(x=x2, target=t, weight=_EMPTY if w is None else w, sample_weight=sw_arr, p=p,
              margin=margin, scale=1.0 / C if divide_by_c else 1.0, loss_out=loss_out,
              gscale=V.row_scale(reduction, x2.shape[0], sw), n_threads=nt)
    if V.is_half(x.dtype):  # float16 / bfloat16 rows read in their own width
        total, denom, bad = _kr.multi_margin_half(
            grad=None if grad is None else grad.reshape(-1), **kw)
    else:
        total, denom, bad = _kr.multi_margin(grad=g_arr, stream=stream, **kw)
    V.raise_label_error(t, bad, C)
    loss = V.loss_value(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss


@doc
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
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if isinstance(p, (bool, np.bool_)) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    margin = V.check_scalar(margin, "margin")
    return _margin_rows(input, target, int(p), margin, weight, reduction, sample_weight,
                        return_grad, grad_out, n_threads, True, grad_dtype)


@doc
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
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    margin = V.check_scalar(margin, "margin")
    if not isinstance(squared, (bool, np.bool_)):
        raise TypeError(f"squared must be a bool, got {type(squared).__name__}")
    return _margin_rows(input, target, 2 if squared else 1, margin, None, reduction,
                        sample_weight, return_grad, grad_out, n_threads, False, grad_dtype)

# --------------------------------------------------------- margin softmax

_MARGIN_KIND = {"cosface": int(_kr.MarginKind.MARGIN_COSFACE),
                "arcface": int(_kr.MarginKind.MARGIN_ARCFACE),
                "sphereface": int(_kr.MarginKind.MARGIN_SPHEREFACE)}


def _margin_softmax(kind, cosine, target, s, m, easy_margin, reduction, sample_weight,
                    return_grad, grad_out, n_threads, grad_dtype=None):
    if sample_weight is None and grad_dtype is None:
        r = _kr.margin_softmax_call(_MARGIN_KIND[kind], cosine, target, s, m, easy_margin,
                                    reduction, return_grad, n_threads, grad_out)
        if r is not None:
            return r
    xh = V.as_float(cosine, "cosine", half=True)
    if V.is_half(xh.dtype) and not 1 <= (xh.shape[-1] if xh.ndim else 0) <= _kr.HALF_ROW_MAX:
        return V.via_float32(
            lambda x32, g32: _margin_softmax(kind, x32, target, s, m, easy_margin, reduction,
                                             sample_weight, return_grad, g32, n_threads),
            xh, return_grad, grad_out, grad_dtype)
    x, x2, t, sw, sw_arr, nt, grad, g_arr, shape, loss_out, stream = _class_rows(
        xh, target, reduction, sample_weight, return_grad, grad_out, n_threads, "cosine",
        half=True, grad_dtype=grad_dtype)
    C = x2.shape[1]
    kw = dict(cosine=x2, target=t, kind=_MARGIN_KIND[kind], s=s, m=m,
              easy_margin=bool(easy_margin), sample_weight=sw_arr, loss_out=loss_out,
              gscale=V.row_scale(reduction, x2.shape[0], sw), n_threads=nt)
    if V.is_half(x.dtype):  # float16 / bfloat16 rows read in their own width
        total, denom, bad = _kr.margin_softmax_half(
            grad=None if grad is None else grad.reshape(-1), **kw)
    else:
        total, denom, bad = _kr.margin_softmax(grad=g_arr, stream=stream, **kw)
    V.raise_label_error(t, bad, C)
    loss = V.loss_value(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss


@doc
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
        Also return d(loss)/d(cosine), same pass; an entry below the
        smallest normal number of its dtype (1.2e-38 in float32) is 0.
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m")
    return _margin_softmax("cosface", cosine, target, s, m, False, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)


@doc
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
        Also return d(loss)/d(cosine), same pass; an entry below the
        smallest normal number of its dtype (1.2e-38 in float32) is 0.
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m", 0.0, math.pi, hi_open=True)
    return _margin_softmax("arcface", cosine, target, s, m, easy_margin, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)


@doc
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
        Also return d(loss)/d(cosine), same pass; an entry below the
        smallest normal number of its dtype (1.2e-38 in float32) is 0.
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    s = V.check_scalar(s, "s", 0.0, math.inf, lo_open=True, hi_open=True)
    m = V.check_scalar(m, "m", 1, 4, integer=True)
    return _margin_softmax("sphereface", cosine, target, s, float(m), False, reduction,
                           sample_weight, return_grad, grad_out, n_threads, grad_dtype)
