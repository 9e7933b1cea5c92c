r"""Segmentation losses over large 2D/3D masks (MONAI semantics) and hard metrics.

Every soft loss reads logits ``(N, C, *spatial)`` once, applies the
activation on the fly and accumulates per-(image, class) sums

    PG = sum p g,  P = sum p,  P2 = sum p^2,  G = sum g,  G2 = sum g^2

over the non-ignored positions (``p`` the activated input, ``g`` the target
of the class).  Label maps ``(N, *spatial)`` are read in their own integer
width and never expanded into a one-hot copy: the extra memory is O(N*C).
The losses are then O(N*C) arithmetic on the sums.  With
``return_grad=True`` a second pass over the logits writes the gradient.
"""

import warnings

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("segmentation")

__all__ = [
    "dice_loss",
    "jaccard_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "sensitivity_specificity_loss",
    "dice_ce_loss",
    "confusion_matrix",
    "dice_score",
    "iou_score",
]

_EMPTY = V.EMPTY
_EMPTY3_F32 = np.empty((0, 0, 0), dtype=np.float32)
# the kernel's Activation and StatsMode enums
_ACT_NONE, _ACT_SOFTMAX = int(_k.Activation.ACT_NONE), int(_k.Activation.ACT_SOFTMAX)
_ACT = {None: _ACT_NONE, "none": _ACT_NONE, "sigmoid": int(_k.Activation.ACT_SIGMOID),
        "softmax": _ACT_SOFTMAX}
_OVERLAP, _SENSSPEC = int(_k.StatsMode.MODE_OVERLAP), int(_k.StatsMode.MODE_SENSSPEC)


# ------------------------------------------------------------ preparation

class _Prep:
    """Validated inputs of one call, viewed as (N, C, S) / (N, S)."""


def _prepare(input, target, activation, ignore_index, n_threads, reduction, allowed=V.REDUCTIONS,
             grad_out=None, weights=()):
    p = _Prep()
    p.in_dtype = np.asarray(input).dtype
    # float16 / bfloat16 are read in their own width by the kernels (widened
    # per block), computed in float32: p.dtype
    x = V.as_float(input, "input", half=True)
    p.dtype = V.compute_dtype(x.dtype)
    if x.ndim < 3:
        raise ValueError(
            f"input must have shape (N, C, d1, ...) with at least one spatial axis, got {x.shape}"
        )
    N, C = x.shape[0], x.shape[1]
    if C == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    S = int(np.prod(x.shape[2:], dtype=np.int64))
    p.x, p.x3, p.N, p.C, p.S = x, x.reshape(N, C, S), N, C, S
    V.check_reduction(reduction, allowed)
    if activation not in _ACT:
        raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
    p.act = _ACT[activation]
    if p.act == _ACT_SOFTMAX and C == 1:
        # MONAI's DiceLoss / TverskyLoss / GeneralizedDiceLoss warn and skip the softmax
        warnings.warn("single channel prediction, activation='softmax' ignored", UserWarning,
                      stacklevel=3)
        p.act = _ACT_NONE
    p.nt = V.threads(n_threads)
    if ignore_index is not None:
        ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    p.ignore = ignore_index
    t = np.asarray(target)
    want = (N,) + x.shape[2:]
    if t.shape == x.shape and C == 1 and ignore_index is not None:
        # one channel with ignore_index: MONAI compares the (N, 1, *spatial) target with it
        if t.dtype.kind == "f" or V.is_half(t.dtype):
            if not np.all(t == np.round(t)):
                raise ValueError("ignore_index with a single-channel float target needs "
                                 "integer values (0, 1 and ignore_index)")
            t = t.astype(np.int64)
        t = t.reshape(want)
    elif t.shape == x.shape and ignore_index is not None:
        t = _onehot_labels(t, ignore_index)
    if t.shape == x.shape:
        if t.dtype.kind not in "fbiu" and not V.is_half(t.dtype):
            raise TypeError(f"target must be numeric, got dtype {t.dtype}")
        p.soft = V.as_float(t, "target", dtype=p.dtype).reshape(N, C, S)
        p.lab = np.empty((0, 0), dtype=np.uint8)
        p.tflat = None
    else:
        accepts = (f"integer class indices of shape {want} or {(N, 1) + x.shape[2:]}, or "
                   f"one-hot / soft masks of the input's shape {x.shape} (any real dtype)")
        if t.dtype.kind == "f" or V.is_half(t.dtype):
            raise TypeError(f"target must hold {accepts}; got a float target of shape "
                            f"{t.shape}")
        if t.ndim == x.ndim and t.shape[1] == 1 and t.shape[:1] + t.shape[2:] == want:
            t = t.reshape(want)  # MONAI's (N, 1, *spatial) label form
        lab = V.as_labels(t, "target")
        if lab.shape != want:
            raise ValueError(f"target must hold {accepts}; got shape {lab.shape}")
        p.lab = lab.reshape(N, S)
        p.soft = np.empty((0, 0, 0), dtype=p.dtype)
        p.tflat = lab.reshape(-1)
    # a single channel with a label map is a binary mask: g = (label == 1)
    p.off = 1 if (C == 1 and p.tflat is not None) else 0
    p.grad_out = None
    if grad_out is not None:
        # float16 / bfloat16 input (computed in float32): its own dtype or float32
        gdt = V.grad_dtype(p.in_dtype, None, grad_out) if V.is_half(p.in_dtype) else x.dtype
        p.grad_out = V.check_out(grad_out, x.shape, gdt, "grad_out",
                                 (("input", x), ("target", p.soft), ("target", p.lab),
                                  *weights))
    return p


def _onehot_labels(t, ignore_index):
    """A hard one-hot target (N, C, ...) with ``ignore_index`` as a label map (N, ...).

    MONAI masks a one-hot target by its ``ignore_index`` channel (positions of
    that class leave every sum) or, for an index outside [0, C), by its
    all-zero positions.  For a hard one-hot target both are exactly a label
    map whose ignored positions hold ``ignore_index``; other targets
    (soft, multi-label, or positions of no class that are kept) have no
    such form and raise.
    """
    C = t.shape[1]
    hot = (t == 1)
    if not np.all(hot | (t == 0)):
        raise ValueError(
            "ignore_index with a target of the input's shape needs a hard one-hot target "
            "(values 0 and 1); soft targets have no label to ignore")
    n_hot = hot.sum(axis=1)
    if np.any(n_hot > 1):
        raise ValueError(
            "ignore_index with a target of the input's shape needs one class per position; "
            "the target is multi-label")
    valid = 0 <= ignore_index < C
    if valid and np.any(n_hot == 0):
        raise ValueError(
            f"ignore_index={ignore_index} (a class) with a one-hot target that has positions "
            "of no class: those positions are kept with no class, which a label map cannot "
            "express; pass a label map, or an ignore_index outside [0, C) to drop them")
    lab = np.argmax(hot, axis=1).astype(
        np.int16 if -(2**15) <= ignore_index < 2**15 else np.int64)
    if not valid:
        lab[n_hot == 0] = ignore_index
    return lab


def _x_args(p):
    """The kernels' input arguments: (x,) for float32 / float64; for float16 /
    bfloat16 an empty float32 x, the storage as uint16 and its kind."""
    if p.dtype == p.x.dtype:
        return (p.x3,), {}
    kind = _k.KIND_F16 if p.x.dtype == np.float16 else _k.KIND_BF16
    return (_EMPTY3_F32,), {"xh": p.x3.view(np.uint16), "xkind": kind}


def _stats(p, mode, squared=False, do_ce=False, cw=None, sw=None):
    """Per-(image, class) sums (N, C, 5); P2 only when ``squared``."""
    st = np.empty((p.N, p.C, 5), dtype=np.float64)
    ce = np.empty(3, dtype=np.float64)
    xa, xk = _x_args(p)
    bad = _k.seg_stats(
        *xa, p.lab, p.soft, p.act, mode, bool(squared), p.off,
        0 if p.ignore is None else p.ignore, p.ignore is not None, do_ce,
        _EMPTY if cw is None else cw, _EMPTY if sw is None else sw, st, ce, p.nt, **xk,
    )
    if bad >= 0:
        raise V.label_error(p.tflat, bad, p.C + p.off, p.ignore)
    return st, ce


def _grad(p, mode, ca, cb, cb2, kce=0.0, cw=None, sw=None):
    xa, xk = _x_args(p)
    if xk and (p.grad_out is None or p.grad_out.dtype == p.x.dtype):
        # half input, half gradient: each block rounded to nearest even in the kernel
        g = p.grad_out if p.grad_out is not None else V.grad_array(None, p.x.shape, p.x.dtype)[0]
        out, gk = _EMPTY3_F32, {"gh": g.reshape(p.N, p.C, p.S).view(np.uint16),
                                "gkind": xk["xkind"]}
    else:
        # in the computation dtype: a float32 / float64 array or grad_out itself
        direct = p.grad_out is not None and p.grad_out.dtype == p.dtype
        g = p.grad_out if direct else V.grad_array(None, p.x.shape, p.dtype)[0]
        out, gk = g.reshape(p.N, p.C, p.S), {}
    _k.seg_grad(
        *xa, p.lab, p.soft, p.act, mode, p.off,
        0 if p.ignore is None else p.ignore, p.ignore is not None,
        np.ascontiguousarray(ca, dtype=np.float64), np.ascontiguousarray(cb, dtype=np.float64),
        np.ascontiguousarray(cb2, dtype=np.float64), float(kce),
        _EMPTY if cw is None else cw, _EMPTY if sw is None else sw,
        out, p.nt, **xk, **gk,
    )
    return g


def _first(p, include_background):
    """First class used: 1 without background (a single channel keeps it, as MONAI)."""
    return 0 if (include_background or p.C == 1) else 1


def _select(st, c0, batch):
    """Per-class sums (N, C') or, with batch, (C',): arrays PG, P, P2, G, G2."""
    s = st[:, c0:, :]
    if batch:
        s = s.sum(axis=0)
    return [s[..., k] for k in range(5)]


def _reduce(f, reduction, dtype):
    if reduction == "none":
        return f.astype(dtype), np.ones_like(f)
    if reduction == "sum":
        return V.scalar(np.sum(f), dtype), np.ones_like(f)
    return V.scalar(np.mean(f) if f.size else np.nan, dtype), np.full_like(f, 1.0 / max(f.size, 1))


def _expand(d, p, c0, batch):
    """Coefficients for the used classes -> (N, C) with zeros for skipped ones."""
    out = np.zeros((p.N, p.C), dtype=np.float64)
    out[:, c0:] = np.broadcast_to(d, (p.N, p.C - c0)) if batch else d
    return out


def _dice_weight(weight, n_used, C):
    if weight is None:
        return None
    w = V.as_float(weight, "weight", dtype=np.float64)
    if n_used == 1:
        # MONAI applies class weights only when more than one class is used
        # (C == 1, or C == 2 without the background): the weight is not read.
        return None
    if w.ndim == 0:
        w = np.full(n_used, float(w))
    w = V.class_weight(w, n_used)
    if np.any(~(w >= 0)):
        raise ValueError(f"weight must be non-negative, got {w.tolist()}")
    return w


def _dice_ce_weights(weight, C, c0):
    """(CE weight of every class, Dice weight of the classes used): MONAI's
    DiceCELoss takes one weight per class and drops weight[0] for the Dice
    term without the background."""
    cw = V.class_weight(weight, C)
    return cw, (None if cw is None else _dice_weight(cw[c0:], C - c0, C))


def _check_smooth(smooth_nr, smooth_dr):
    return (V.check_scalar(smooth_nr, "smooth_nr", 0.0),
            V.check_scalar(smooth_dr, "smooth_dr", 0.0))


# ------------------------------------------------------------ Dice / Jaccard

def _overlap_terms(PG, P, P2, G, G2, squared, jaccard, snr, sdr):
    """f = 1 - num/den and df/dI, df/dPd (Pd = P2 when squared)."""
    Pd = P2 if squared else P
    Gd = G2 if squared else G
    num = 2.0 * PG + snr
    with np.errstate(divide="ignore", invalid="ignore"):
        if jaccard:
            den = 2.0 * (Pd + Gd - PG) + sdr
            f = 1.0 - num / den
            dI = -(2.0 * den + 2.0 * num) / den**2
            dP = 2.0 * num / den**2
        else:
            den = Pd + Gd + sdr
            f = 1.0 - num / den
            dI = -2.0 / den
            dP = num / den**2
    return f, dI, dP


def _dice_family(input, target, jaccard, activation, include_background, squared_pred,
                 smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                 return_grad, n_threads, grad_out=None):
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    st, _ = _stats(p, _OVERLAP, squared_pred)
    PG, P, P2, G, G2 = _select(st, c0, batch)
    f, dI, dP = _overlap_terms(PG, P, P2, G, G2, squared_pred, jaccard, snr, sdr)
    if w is not None:
        f, dI, dP = f * w, dI * w, dP * w
    loss, dL = _reduce(f, reduction, p.dtype)
    if not return_grad:
        return loss
    zero = np.zeros((p.N, p.C))
    ca = _expand(dL * dI, p, c0, batch)
    cP = _expand(dL * dP, p, c0, batch)
    if squared_pred:
        return loss, _grad(p, _OVERLAP, ca, zero, cP)
    return loss, _grad(p, _OVERLAP, ca, cP, zero)


_SEG_PARAMS = """\
input : array_like, shape (N, C, d1, ..., dk), k >= 1
    Logits (``activation='softmax'`` or ``'sigmoid'``) or probabilities
    (``activation=None``); float32 and float64 are computed natively.
    The class axis is read in place; a non-contiguous input is copied once.
target : array_like
    Integer label map of shape (N, d1, ..., dk) (any integer dtype, read
    in its own width; MONAI's (N, 1, d1, ...) form is accepted too), or
    one-hot / soft masks of ``input``'s shape (any real dtype: float,
    bool or integer, e.g. a uint8 one-hot).  With a single channel
    (C == 1) a label map is the binary mask (labels 0 and 1).
activation : {'softmax', 'sigmoid', None}
    Applied to ``input`` on the fly (MONAI's ``softmax=True`` /
    ``sigmoid=True``).  With a single channel (C == 1) ``'softmax'`` is
    ignored with a ``UserWarning``, as MONAI does.
include_background : bool
    False drops class 0 from every sum (ignored for C == 1, as MONAI).
smooth_nr, smooth_dr : float >= 0
    Added to the numerator and the denominator of each ratio.
batch : bool
    Sum the statistics over the batch before the ratio (one value per
    class) instead of per image.
ignore_index : int, optional
    Positions of a label map holding it are excluded from every sum
    (MONAI's mask).  Labels outside [0, C) other than ``ignore_index``
    raise ``ValueError`` naming the first bad value; they are detected
    inside the kernel, in the same pass.  With a hard one-hot target of
    ``input``'s shape, MONAI's rule: an index in [0, C) drops the
    positions of that class, any other value the positions of no class
    (soft or multi-label targets raise ``ValueError``).  With one
    channel the (N, 1, ...) target is compared with it.
reduction : {'mean', 'sum', 'none'}
    ``'none'`` gives the per-class losses, (N, C') or (C',) with
    ``batch=True`` (C' = classes used).
return_grad : bool
    Also return d(loss)/d(input) (for ``'none'``, of the sum).
%(grad_out)s
%(n_threads)s"""

_SEG_RETURNS = """\
Returns
-------
%(loss_grad)s

Notes
-----
One pass over the input computes the per-(image, class) sums; with
``return_grad=True`` a second pass writes the gradient (dL/dp from the
sums, chained through the activation).  Extra memory is O(N*C)."""


_seg_doc = doc(seg_params=_SEG_PARAMS, seg_returns=_SEG_RETURNS)


@_seg_doc
def dice_loss(input, target, *, activation="softmax", include_background=True,
              squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
              weight=None, ignore_index=None, reduction="mean", return_grad=False,
              grad_out=None, n_threads=None):
    r"""Soft Dice loss over ``(N, C, *spatial)`` predictions.

    Per image and class (or per class with ``batch=True``)

    .. math:: \ell = 1 - \frac{2 \sum p g + s_{nr}}{\sum p + \sum g + s_{dr}}

    (with ``squared_pred=True`` the denominator is :math:`\sum p^2 + \sum g^2`),
    multiplied by ``weight[c]`` when given, then reduced.  Equivalent to
    ``monai.losses.DiceLoss(softmax=True, to_onehot_y=True, ...)`` with the
    label map as target (``sigmoid=True`` for ``activation='sigmoid'``).

    Parameters
    ----------
    %(seg_params)s
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background, as MONAI), non-negative; not read when one class is
        used (C == 1, or C == 2 without the background), as MONAI.
    squared_pred : bool
        Use squared predictions and targets in the denominator.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[9.0, -9.0]], [[-9.0, 9.0]]]])   # (1, 2, 1, 2) logits
    >>> y = np.array([[[0, 1]]], dtype=np.uint8)          # (1, 1, 2) labels
    >>> float(fastloss.dice_loss(x, y)) < 1e-7   # 1 - 2*sigma(18) / 2 per class
    True
    """
    return _dice_family(input, target, False, activation, include_background, squared_pred,
                        smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                        return_grad, n_threads, grad_out)


@_seg_doc
def jaccard_loss(input, target, *, activation="softmax", include_background=True,
                 squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", return_grad=False,
                 grad_out=None, n_threads=None):
    r"""Soft Jaccard (IoU) loss, MONAI's ``DiceLoss(jaccard=True)``.

    .. math:: \ell = 1 - \frac{2 \sum p g + s_{nr}}
              {2 (\sum p + \sum g - \sum p g) + s_{dr}}

    (squared sums with ``squared_pred=True``); options as :func:`dice_loss`.

    Parameters
    ----------
    %(seg_params)s
    squared_pred : bool
        Use squared predictions and targets in the denominator.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])                     # (1, 1, 1, 2) probabilities
    >>> y = np.array([[[1, 0]]])                           # binary label map
    >>> round(float(fastloss.jaccard_loss(x, y, activation=None, smooth_nr=0, smooth_dr=0)), 6)
    0.666667
    """
    return _dice_family(input, target, True, activation, include_background, squared_pred,
                        smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                        return_grad, n_threads, grad_out)


# ------------------------------------------------------------------ Tversky

def _tversky_terms(PG, P, G, alpha, beta, gamma, snr, sdr):
    """f = (1 - TI)^gamma (gamma None: 1 - TI) and df/dI, df/dP."""
    num = PG + snr
    den = PG + alpha * (P - PG) + beta * (G - PG) + sdr
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 1.0 - num / den
        dI = -(den - num * (1.0 - alpha - beta)) / den**2
        dP = num * alpha / den**2
        if gamma is not None:
            chain = gamma * np.power(f, gamma - 1.0)
            f = np.power(f, gamma)
            dI, dP = chain * dI, chain * dP
    return f, dI, dP


def _tversky(input, target, alpha, beta, gamma, activation, include_background, smooth_nr,
             smooth_dr, batch, weight, ignore_index, reduction, return_grad, n_threads,
             grad_out=None):
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    alpha = V.check_scalar(alpha, "alpha", 0.0)
    beta = V.check_scalar(beta, "beta", 0.0)
    if gamma is not None:
        gamma = V.check_scalar(gamma, "gamma", 0.0, lo_open=True)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    st, _ = _stats(p, _OVERLAP)
    PG, P, _, G, _ = _select(st, c0, batch)
    f, dI, dP = _tversky_terms(PG, P, G, alpha, beta, gamma, snr, sdr)
    if w is not None:
        f, dI, dP = f * w, dI * w, dP * w
    loss, dL = _reduce(f, reduction, p.dtype)
    if not return_grad:
        return loss
    zero = np.zeros((p.N, p.C))
    return loss, _grad(p, _OVERLAP, _expand(dL * dI, p, c0, batch),
                       _expand(dL * dP, p, c0, batch), zero)


@_seg_doc
def tversky_loss(input, target, *, alpha=0.5, beta=0.5, activation="softmax",
                 include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", return_grad=False,
                 grad_out=None, n_threads=None):
    r"""Tversky loss, MONAI's ``TverskyLoss``.

    .. math:: \ell = 1 - \frac{TP + s_{nr}}{TP + \alpha FP + \beta FN + s_{dr}},
       \quad TP = \sum p g,\ FP = \sum p (1 - g),\ FN = \sum (1 - p) g

    ``alpha`` weighs false positives, ``beta`` false negatives;
    alpha = beta = 0.5 is the Dice loss.  ``weight`` (per used class)
    multiplies each class's loss (fastloss's addition).

    Parameters
    ----------
    %(seg_params)s
    alpha, beta : float >= 0
        Weights of the false positives and the false negatives.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.tversky_loss(x, y, activation=None, alpha=0.3, beta=0.7,
    ...                                   smooth_nr=0, smooth_dr=0)), 6)
    0.5
    """
    return _tversky(input, target, alpha, beta, None, activation, include_background,
                    smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                    return_grad, n_threads, grad_out)


@_seg_doc
def focal_tversky_loss(input, target, *, alpha=0.5, beta=0.5, gamma=0.75,
                       activation="softmax", include_background=True, smooth_nr=1e-5,
                       smooth_dr=1e-5, batch=False, weight=None, ignore_index=None,
                       reduction="mean", return_grad=False, grad_out=None, n_threads=None):
    r"""Focal Tversky loss: the Tversky loss of each class raised to ``gamma``.

    .. math:: \ell = \Big(1 - \frac{TP + s_{nr}}{TP + \alpha FP + \beta FN + s_{dr}}\Big)^{\gamma}

    (Abraham & Khan 2019 with gamma = 1/their gamma); other options as
    :func:`tversky_loss`.  With ``gamma < 1`` the gradient is infinite where
    a class's Tversky loss is exactly 0.

    Parameters
    ----------
    %(seg_params)s
    alpha, beta : float >= 0
        Weights of the false positives and the false negatives.
    gamma : float > 0
        Exponent of each class's Tversky loss.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.focal_tversky_loss(x, y, activation=None, gamma=0.5,
    ...                                         smooth_nr=0, smooth_dr=0)), 6)
    0.707107
    """
    return _tversky(input, target, alpha, beta, gamma, activation, include_background,
                    smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                    return_grad, n_threads, grad_out)


# ---------------------------------------------------------- generalized Dice

def _generalized_terms(PG, P, G, w_type, snr, sdr):
    """f = 1 - (2 sum_c w_c I_c + snr) / (sum_c w_c (P_c + G_c) + sdr), df/dI, df/dP.

    w_c = 1/G_c^2, 1/G_c or 1; an infinite weight (empty class) becomes the
    largest finite weight of its row, as MONAI does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if w_type == "square":
            w = 1.0 / (G * G)
        elif w_type == "simple":
            w = 1.0 / G
        else:
            w = np.ones_like(G)
        inf = np.isinf(w)
        w[inf] = 0.0
        w = w + inf * np.max(w, axis=-1, keepdims=True)
        numer = 2.0 * np.sum(w * PG, axis=-1) + snr
        denom = np.sum(w * (P + G), axis=-1) + sdr
        f = np.atleast_1d(1.0 - numer / denom)
        dI = -2.0 * w / denom[..., None]
        dP = w * (numer / denom**2)[..., None]
    return f, dI, dP


@_seg_doc
def generalized_dice_loss(input, target, *, w_type="square", activation="softmax",
                          include_background=True, smooth_nr=1e-5, smooth_dr=1e-5,
                          batch=False, ignore_index=None, reduction="mean",
                          return_grad=False, grad_out=None, n_threads=None):
    r"""Generalized Dice loss (Sudre et al. 2017), MONAI's ``GeneralizedDiceLoss``.

    Per image (or once with ``batch=True``)

    .. math:: \ell = 1 - \frac{2 \sum_c w_c \sum p g + s_{nr}}
              {\sum_c w_c (\sum p + \sum g) + s_{dr}}

    with :math:`w_c = 1/(\sum g)^2` (``'square'``), :math:`1/\sum g`
    (``'simple'``) or 1 (``'uniform'``); an infinite weight (a class absent
    from the target) is replaced by the largest finite weight of the image,
    as MONAI.  ``'none'`` gives one value per image, (N,), or (1,) with
    ``batch=True``.  MONAI computes the weights in float32; fastloss in
    float64.

    Parameters
    ----------
    %(seg_params)s
    w_type : {'square', 'simple', 'uniform'}
        The class weights :math:`w_c` above.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[9.0, -9.0]], [[-9.0, 9.0]]]])
    >>> y = np.array([[[0, 1]]])
    >>> float(fastloss.generalized_dice_loss(x, y)) < 1e-3
    True
    """
    if w_type not in ("square", "simple", "uniform"):
        raise ValueError(f"w_type must be 'square', 'simple' or 'uniform', got {w_type!r}")
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    st, _ = _stats(p, _OVERLAP)
    PG, P, _, G, _ = _select(st, c0, batch)
    f, dI, dP = _generalized_terms(PG, P, G, w_type, snr, sdr)
    loss, dL = _reduce(f, reduction, p.dtype)
    if not return_grad:
        return loss
    dL = dL[0] if batch else dL[:, None]
    zero = np.zeros((p.N, p.C))
    return loss, _grad(p, _OVERLAP, _expand(dL * dI, p, c0, batch),
                       _expand(dL * dP, p, c0, batch), zero)


# ------------------------------------------------- sensitivity-specificity

def _sensspec_terms(E1, E0, NEG, G, r, snr, sdr):
    """f = r (E1 + snr)/(G + sdr) + (1 - r)(E0 + snr)/(NEG + sdr), df/dE1, df/dE0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = r / (G + sdr)
        d0 = (1.0 - r) / (NEG + sdr)
        f = (E1 + snr) * d1 + (E0 + snr) * d0
    return f, d1, d0


@_seg_doc
def sensitivity_specificity_loss(input, target, *, r=0.05, activation="softmax",
                                 include_background=True, smooth_nr=0.0, smooth_dr=1e-5,
                                 batch=False, weight=None, ignore_index=None,
                                 reduction="mean", return_grad=False, grad_out=None,
                                 n_threads=None):
    r"""Sensitivity-specificity loss (Brosch et al. 2015), per class.

    .. math:: \ell = r \frac{\sum (g - p)^2 g + s_{nr}}{\sum g + s_{dr}}
              + (1 - r) \frac{\sum (g - p)^2 (1 - g) + s_{nr}}{\sum (1 - g) + s_{dr}}

    the sums running over the non-ignored positions.  ``smooth_nr`` defaults
    to 0 so that a perfect prediction gives 0 (NiftyNet's form);
    ``weight`` multiplies each used class's loss.  No MONAI equivalent.

    Parameters
    ----------
    %(seg_params)s
    r : float in [0, 1]
        Weight of the sensitivity term; 1 - r weighs the specificity term.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.sensitivity_specificity_loss(x, y, activation=None, r=0.5,
    ...                                                   smooth_dr=0)), 6)
    0.25
    """
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    r = V.check_scalar(r, "r", 0.0, 1.0)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    st, _ = _stats(p, _SENSSPEC)
    E1, E0, NEG, G, _ = _select(st, c0, batch)
    f, d1, d0 = _sensspec_terms(E1, E0, NEG, G, r, snr, sdr)
    if w is not None:
        f, d1, d0 = f * w, d1 * w, d0 * w
    loss, dL = _reduce(f, reduction, p.dtype)
    if not return_grad:
        return loss
    zero = np.zeros((p.N, p.C))
    return loss, _grad(p, _SENSSPEC, _expand(dL * d1, p, c0, batch),
                       _expand(dL * d0, p, c0, batch), zero)


# ------------------------------------------------------------------ Dice+CE

@doc
def dice_ce_loss(input, target, *, lambda_dice=1.0, lambda_ce=1.0, include_background=True,
                 squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5,
                 batch=False, weight=None, ignore_index=None, sample_weight=None,
                 reduction="mean", return_grad=False, grad_out=None, n_threads=None):
    r"""Dice (softmax) + cross-entropy of logits, MONAI's ``DiceCELoss(softmax=True)``.

    .. math:: L = \lambda_{dice} L_{dice} + \lambda_{ce} L_{ce}

    :math:`L_{dice}` is :func:`dice_loss` (``jaccard=True``:
    :func:`jaccard_loss`) with the softmax activation; :math:`L_{ce}` is the
    pixel-wise cross-entropy ``torch.nn.functional.cross_entropy(input,
    target, weight)`` (class indices) or its probability form (soft target).
    The softmax is computed once for both terms.

    Parameters
    ----------
    lambda_dice, lambda_ce : float >= 0
    weight : array_like of shape (C,), optional
        Class weights of the cross-entropy; the Dice term uses
        ``weight[1:]`` without the background (as MONAI).
    ignore_index : int, optional
        Label-map positions holding it are excluded from the Dice sums and
        from the cross-entropy (torch's ``ignore_index``).
    sample_weight : array_like, optional
        Per-pixel weights broadcastable to (N, d1, ..., dk) for the
        cross-entropy: 'mean' becomes :math:`\sum s_i w_{y_i} \ell_i / \sum
        s_i w_{y_i}` (probability targets: :math:`/ \sum s_i`).
    reduction : {'mean', 'sum'}
        Applied to both terms (MONAI rejects 'none' too).
    %(grad_out)s

    Other parameters as :func:`dice_loss` (C >= 2).

    Returns
    -------
    loss : NumPy scalar; with ``return_grad=True`` also the gradient.

    Notes
    -----
    One pass computes the Dice sums and the cross-entropy together; with
    ``return_grad=True`` a second pass writes the gradient of both terms.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.zeros((1, 2, 1, 2))
    >>> y = np.array([[[0, 1]]])
    >>> round(float(fastloss.dice_ce_loss(x, y, smooth_nr=0, smooth_dr=0)), 6)  # 0.5 + log 2
    1.193147
    """
    shape = np.shape(input)
    if len(shape) >= 2 and shape[1] == 1:
        raise ValueError(
            "dice_ce_loss needs at least 2 classes on axis 1 (softmax), got 1; for a single "
            "channel use dice_loss(activation='sigmoid') + binary_cross_entropy_with_logits "
            "(what MONAI's DiceCELoss does there)")
    # the class and sample weights are read by the gradient pass too
    p = _prepare(input, target, "softmax", ignore_index, n_threads, reduction,
                 allowed=("mean", "sum"), grad_out=grad_out if return_grad else None,
                 weights=(("weight", weight), ("sample_weight", sample_weight)))
    lambda_dice = V.check_scalar(lambda_dice, "lambda_dice", 0.0)
    lambda_ce = V.check_scalar(lambda_ce, "lambda_ce", 0.0)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    cw, wd = _dice_ce_weights(weight, p.C, c0)
    sw = V.broadcast_weight(sample_weight, (p.N,) + p.x.shape[2:])
    sw = None if sw is None else sw.reshape(-1)
    st, ce = _stats(p, _OVERLAP, squared_pred, True, cw, sw)
    PG, P, P2, G, G2 = _select(st, c0, batch)
    f, dI, dP = _overlap_terms(PG, P, P2, G, G2, squared_pred, jaccard, snr, sdr)
    if wd is not None:
        f, dI, dP = f * wd, dI * wd, dP * wd
    dice, dL = _reduce(f, reduction, np.float64)
    ce_den = ce[1] if p.tflat is not None else ce[2]
    if reduction == "sum":
        ce_val, kce = ce[0], 1.0
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ce_val = ce[0] / ce_den
        kce = 1.0 / ce_den if ce_den != 0 else 0.0
    loss = V.scalar(lambda_dice * float(dice) + lambda_ce * ce_val, p.dtype)
    if not return_grad:
        return loss
    zero = np.zeros((p.N, p.C))
    ca = _expand(lambda_dice * dL * dI, p, c0, batch)
    cP = _expand(lambda_dice * dL * dP, p, c0, batch)
    kce = lambda_ce * kce
    if squared_pred:
        return loss, _grad(p, _OVERLAP, ca, zero, cP, kce, cw, sw)
    return loss, _grad(p, _OVERLAP, ca, cP, zero, kce, cw, sw)


# ------------------------------------------------------------ hard metrics

def _cm_inputs(pred, target, num_classes, ignore_index, per_image):
    pr = V.as_labels(pred, "pred")
    tg = V.as_labels(target, "target")
    V.same_shape(pr, tg, "pred", "target")
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    if ignore_index is not None:
        ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    if per_image:
        if pr.ndim < 1:
            raise ValueError(
                "per_image=True needs label maps with a leading image axis, got a scalar")
        N = pr.shape[0]
    else:
        N = 1
    S = pr.size // N if N else 0
    return pr.reshape(N, S), tg.reshape(N, S), C, ignore_index, N


def _confusion(pred, target, num_classes, ignore_index, per_image, n_threads):
    pr, tg, C, ig, N = _cm_inputs(pred, target, num_classes, ignore_index, per_image)
    nt = V.threads(n_threads)
    out = np.empty((N if per_image else 1) * C * C, dtype=np.int64)
    bad = _k.confusion(pr, tg, C, 0 if ig is None else ig, ig is not None, per_image, out, nt)
    if bad >= 0:
        t, q = tg.reshape(-1)[bad], pr.reshape(-1)[bad]
        which, val = ("target", t) if (t < 0 or t >= C) else ("pred", q)
        allowed = f"[0, {C})"
        if ig is not None and which == "target":
            allowed += f" or ignore_index={ig}"
        raise ValueError(f"{which} holds class index {val} at flat position {bad}; "
                         f"expected values in {allowed}")
    return out.reshape((N, C, C) if per_image else (C, C))


@doc
def confusion_matrix(pred, target, num_classes, ignore_index=None, *, n_threads=None):
    r"""Confusion matrix of two label maps: ``M[i, j]`` = #positions with
    target ``i`` and prediction ``j`` (rows = target, columns = pred).

    Parameters
    ----------
    pred, target : array_like of integers, same shape
        Label maps of any shape and integer dtype (each read in its own width).
    num_classes : int >= 1
    ignore_index : int, optional
        Positions whose *target* equals it are not counted.  Any other
        value outside [0, num_classes), in either array, raises ValueError
        naming the array, the value and its position.
    %(n_threads)s

    Returns
    -------
    ndarray of shape (C, C), int64 (exact counts).

    Notes
    -----
    One pass over both arrays; per-thread private matrices merged in order.
    Same as ``sklearn.metrics.confusion_matrix(target.ravel(), pred.ravel(),
    labels=range(C))`` and ``np.bincount(C * target + pred, minlength=C*C)``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """
    return _confusion(pred, target, num_classes, ignore_index, False, n_threads)


def _multilabel_counts(pred, target, num_classes, ignore_index, per_image):
    """(tp, |T|, |P|) per class (per image) of multi-label masks (N, C, ...)."""
    pr, tg = np.asarray(pred), np.asarray(target)
    V.same_shape(pr, tg, "pred", "target")
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    if pr.ndim < 2 or pr.shape[1] != C:
        raise ValueError(f"multilabel=True needs masks of shape (N, num_classes={C}, ...), "
                         f"got pred of shape {pr.shape}")
    if ignore_index is not None:
        raise ValueError("ignore_index applies to label maps; with multilabel=True leave the "
                         "ignored positions 0 in pred and target, or mask them out")
    masks = []
    for name, a in (("pred", pr), ("target", tg)):
        if a.dtype.kind == "b":
            masks.append(a)
            continue
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a boolean or 0/1 mask, got dtype {a.dtype}")
        b = a != 0
        if not np.all(b == (a == 1)):
            raise ValueError(f"{name} must hold only 0 and 1 with multilabel=True")
        masks.append(b)
    pb, tb = masks
    axes = tuple(i for i in range(pr.ndim) if i != 1 and (i != 0 or not per_image))
    return (np.sum(pb & tb, axis=axes, dtype=np.int64).astype(np.float64),
            np.sum(tb, axis=axes, dtype=np.int64).astype(np.float64),
            np.sum(pb, axis=axes, dtype=np.int64).astype(np.float64))


def _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                   empty_score, n_threads, iou, multilabel=False):
    empty_score = float(empty_score)
    if multilabel:
        tp, st, sp = _multilabel_counts(pred, target, num_classes, ignore_index, per_image)
    else:
        cm = _confusion(pred, target, num_classes, ignore_index, per_image, n_threads)
        tp, st, sp = _confusion_counts(cm)
    return _score_from_counts(tp, st, sp, iou, ignore_empty, empty_score)


def _confusion_counts(cm):
    """(true positives, target counts, prediction counts) per class of (..., C, C) counts."""
    return (np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64),
            cm.sum(axis=-1).astype(np.float64),    # rows: the target's classes
            cm.sum(axis=-2).astype(np.float64))    # columns: the prediction's


def _score_from_counts(tp, st, sp, iou, ignore_empty, empty_score):
    """Hard Dice 2TP / (|T| + |P|) or IoU TP / (|T| + |P| - TP) per class.

    ``ignore_empty``: NaN for a class absent from the target (MONAI's
    metrics); otherwise ``empty_score`` where the class is absent from both.
    """
    den = st + sp - tp if iou else st + sp
    num = tp if iou else 2.0 * tp
    with np.errstate(divide="ignore", invalid="ignore"):
        score = num / den
    if ignore_empty:
        return np.where(st == 0, np.nan, score)
    return np.where(den == 0, float(empty_score), score)


def dice_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
               ignore_empty=True, empty_score=np.nan, multilabel=False, n_threads=None):
    r"""Hard Dice score per class of two label maps: :math:`2|P \cap T| / (|P| + |T|)`.

    Parameters
    ----------
    pred, target : array_like of integers, same shape (N, ...) or any shape
    num_classes : int
    ignore_index : int, optional
        Positions whose target equals it are not counted.
    per_image : bool
        One score per image (first axis) and class, shape (N, C).
    ignore_empty : bool
        True (default): a class absent from the target scores NaN, whatever
        the prediction, as MONAI's ``DiceMetric`` / ``compute_dice`` with
        their default ``ignore_empty=True`` (NaN entries are left out of
        MONAI's means; ``np.nanmean`` does the same).  False: such a class
        scores 0 when predicted and ``empty_score`` when absent from both.
    empty_score : float
        With ``ignore_empty=False``, the score of a class absent from both
        pred and target (default NaN; 1.0 is MONAI's ``ignore_empty=False``).
    multilabel : bool
        ``pred`` and ``target`` are masks of shape (N, num_classes, ...)
        (bool or 0/1) whose channels may overlap (BraTS-style regions) or
        all be 0 at a position; each channel is scored on its own, as
        MONAI's ``compute_dice(pred, target)`` on such masks.  Not with
        ``ignore_index``.

    Returns
    -------
    ndarray (C,) or (N, C), float64.

    Notes
    -----
    One pass (the confusion-matrix kernel).  Equivalent to MONAI's
    ``compute_dice(one_hot(pred), one_hot(target), include_background=True,
    ignore_empty=ignore_empty)`` (with ``empty_score=1.0`` when
    ``ignore_empty=False``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.dice_score(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), 3)
    array([0.66666667, 0.5       ,        nan])
    >>> fastloss.dice_score(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), 3,
    ...                     ignore_empty=False)
    array([0.66666667, 0.5       , 0.        ])
    """
    return _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                          empty_score, n_threads, False, multilabel)


@doc
def iou_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
              ignore_empty=True, empty_score=np.nan, multilabel=False, n_threads=None):
    r"""Hard IoU (Jaccard index) per class: :math:`|P \cap T| / |P \cup T|`.

    Options, shapes and passes as :func:`dice_score`; MONAI's
    ``compute_iou`` on one-hot inputs.

    Parameters
    ----------
    pred, target : array_like of integers
        Label maps of the same shape, (N, ...) or any shape.
    num_classes : int
    ignore_index : int, optional
        Positions whose target equals it are not counted.
    per_image : bool
        One score per image (first axis) and class, shape (N, C).
    ignore_empty : bool
        True (default): NaN for a class absent from the target, as MONAI's
        ``MeanIoU`` / ``compute_iou``; False: 0 when only predicted and
        ``empty_score`` when absent from both.
    empty_score : float
        With ``ignore_empty=False``, the score of a class absent from both
        maps (default NaN; 1.0 is MONAI's ``ignore_empty=False``).
    multilabel : bool
        Masks (N, num_classes, ...) with channels scored on their own, as
        :func:`dice_score`; MONAI's ``compute_iou`` on such masks.
    %(n_threads)s

    Returns
    -------
    ndarray (C,) or (N, C), float

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.iou_score(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 2)
    array([0.5       , 0.66666667])
    """
    return _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                          empty_score, n_threads, True, multilabel)
