"""fastloss.segmentation: the checks and kernel passes the soft losses share
(inputs, activation, per-(image, class) sums, the gradient pass, reductions)."""

import warnings

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels

_k = kernels("segmentation")

_EMPTY = V.EMPTY
_EMPTY3_F32 = np.empty((0, 0, 0), dtype=np.float32)
# the kernel's activation codes and StatsMode enum
_ACT = _k.ACTIVATIONS
_ACT_NONE, _ACT_SOFTMAX = _ACT[None], _ACT["softmax"]
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
    """The kernels' input and label arguments: x for float32 / float64; for
    float16 / bfloat16 an empty float32 x, the storage as uint16 and its kind."""
    kw = dict(lab=p.lab, soft=p.soft, act=p.act, off=p.off,
              ignore=0 if p.ignore is None else p.ignore, has_ignore=p.ignore is not None,
              n_threads=p.nt)
    if p.dtype == p.x.dtype:
        return dict(x=p.x3, **kw)
    kind = _k.KIND_F16 if p.x.dtype == np.float16 else _k.KIND_BF16
    return dict(x=_EMPTY3_F32, xh=p.x3.view(np.uint16), xkind=kind, **kw)


def _stats(p, mode, squared=False, do_ce=False, cw=None, sw=None):
    """Per-(image, class) sums (N, C, 5); P2 only when ``squared``."""
    st = np.empty((p.N, p.C, 5), dtype=np.float64)
    ce = np.empty(3, dtype=np.float64)
    bad = _k.seg_stats(
        mode=mode, squared=bool(squared), do_ce=do_ce, cw=_EMPTY if cw is None else cw,
        sw=_EMPTY if sw is None else sw, stats=st, ce_out=ce, **_x_args(p))
    if bad >= 0:
        raise V.label_error(p.tflat, bad, p.C + p.off, p.ignore)
    return st, ce


def _grad(p, mode, ca, cb, cb2, kce=0.0, cw=None, sw=None):
    xk = _x_args(p)
    if "xh" in xk and (p.grad_out is None or p.grad_out.dtype == p.x.dtype):
        # half input, half gradient: each block rounded to nearest even in the kernel
        g = p.grad_out if p.grad_out is not None else V.grad_array(None, p.x.shape, p.x.dtype)[0]
        gk = dict(grad=_EMPTY3_F32, gh=g.reshape(p.N, p.C, p.S).view(np.uint16),
                  gkind=xk["xkind"])
    else:
        # in the computation dtype: a float32 / float64 array or grad_out itself
        direct = p.grad_out is not None and p.grad_out.dtype == p.dtype
        g = p.grad_out if direct else V.grad_array(None, p.x.shape, p.dtype)[0]
        gk = dict(grad=g.reshape(p.N, p.C, p.S))
    _k.seg_grad(
        mode=mode, ca=np.ascontiguousarray(ca, dtype=np.float64),
        cb=np.ascontiguousarray(cb, dtype=np.float64),
        cb2=np.ascontiguousarray(cb2, dtype=np.float64), kce=float(kce),
        cw=_EMPTY if cw is None else cw, sw=_EMPTY if sw is None else sw, **xk, **gk)
    return g


def _first(p, include_background):
    """First class used: 1 without background (a single channel keeps it, as MONAI)."""
    return 0 if (include_background or p.C == 1) else 1


def _loss(p, kind, c0, w, batch, snr, sdr, reduction, return_grad, *, squared=False,
          jaccard=False, a=0.0, b=0.0, g=0.0, wtype=0, cw=None, sw=None):
    """The full path after the checks: the sums, the loss of ``kind`` from them
    (the kernel's seg_finish, as the prepared call) and, with return_grad,
    the gradient pass."""
    mode = _SENSSPEC if kind == _k.SENSSPEC else _OVERLAP
    st, ce = _stats(p, mode, squared, kind == _k.DICE_CE, cw, sw)
    r = _k.seg_finish(kind=kind, st=st, ce=ce, labels=p.tflat is not None,
                      w=_EMPTY if w is None else w, c0=c0, batch=bool(batch), squared=squared,
                      jaccard=jaccard, wtype=wtype, snr=snr, sdr=sdr, a=a, b=b, g=g,
                      reduction=reduction, typenum=np.dtype(p.dtype).num, coef=return_grad)
    if not return_grad:
        return r
    loss, ca, cb, cb2, kce = r
    return loss, _grad(p, mode, ca, cb, cb2, kce, cw, sw)


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
