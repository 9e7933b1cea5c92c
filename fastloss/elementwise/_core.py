"""The element-wise family's one call path: loss ids, input checks, the
kernel pass and the reduction (shared by every loss of the package).

``_pointwise`` is the path of a loss of (input, target): the kernel's
prepared call (``pointwise_call``, no Python layer) when no option needs
Python, else the checks, the gradient buffer and one ``_run`` of the
kernel; ``_along_axis`` reduces the per-element terms along one axis first
(the losses defined per sample over the classes)."""

import numpy as np

from fastloss import _validate as V
from fastloss._axes import normalize_axis
from fastloss._dispatch import kernels

_k = kernels("elementwise")

# Loss ids: the kernel's own LossId enum (src/_elementwise.pyx.tp), as ints.
_ID = {m.name: int(m) for m in _k.LossId}
_MSE, _L1, _SMOOTH_L1, _HUBER = _ID["MSE"], _ID["L1"], _ID["SMOOTH_L1"], _ID["HUBER"]
_LOG_COSH, _PSEUDO_HUBER, _BIAS = _ID["LOG_COSH"], _ID["PSEUDO_HUBER"], _ID["BIAS"]
_BCE, _BCE_LOGITS, _BCE_LOGITS_CONST = _ID["BCE"], _ID["BCE_LOGITS"], _ID["BCE_LOGITS_CONST"]
_BCE_LOGITS_PW, _SOFT_MARGIN = _ID["BCE_LOGITS_PW"], _ID["SOFT_MARGIN"]
_HINGE, _SQ_HINGE, _EXPONENTIAL = _ID["HINGE"], _ID["SQ_HINGE"], _ID["EXPONENTIAL"]
_KL, _KL_LOG, _JS, _FOCAL, _ENET = _ID["KL"], _ID["KL_LOG"], _ID["JS"], _ID["FOCAL"], _ID["ENET"]

_EMPTY64 = V.EMPTY


# ------------------------------------------------------------ plumbing

def _input(input, name="input"):
    """The data array: float32/float64 as given, float16/bfloat16 read in their own width."""
    return V.as_float(input, name, half=True)


def _target(target, x, name="target", broadcast=False):
    """``target`` in x's dtype and shape (broadcast to it where torch broadcasts)."""
    t = np.asarray(target)
    if t.dtype.kind not in "biuf" and not V.is_half(t.dtype):
        raise TypeError(f"{name} must be a real numeric array, got dtype {t.dtype}")
    if t.shape != x.shape:
        if not broadcast:
            raise ValueError(f"{name} must have the same shape as input {x.shape}, got {t.shape}")
        try:
            t = np.broadcast_to(t, x.shape)
        except ValueError:
            raise ValueError(
                f"{name} of shape {t.shape} cannot be broadcast to the input's shape {x.shape}"
            ) from None
    if (t.dtype == np.bool_ or t.dtype == np.uint8) and x.dtype != np.float64 \
            and t.flags.c_contiguous:
        return t  # a mask: the float32 kernels read its bytes (exact values, 1/4 the traffic)
    return V.as_operand(t, name, x.dtype)


def _multiplier(*weights):
    """The product of the given float64 per-element weights (None: absent)."""
    ws = [w for w in weights if w is not None]
    if not ws:
        return None
    out = ws[0]
    for w in ws[1:]:
        out = out * w
    return np.ascontiguousarray(out, dtype=np.float64)


def _sample_weight(sample_weight, shape):
    return V.broadcast_weight(sample_weight, shape)


def _run(lid, x, t=None, aux=None, a=0.0, b=0.0, c=0.0, w=None, *, none=False,
         grad=None, gscale=1.0, nt=1, stream=False):
    """One kernel pass.  Returns (weighted sum, per-element losses or None, first bad or -1).

    `stream` writes `grad` with non-temporal stores: for a caller's
    grad_out or a reused gradient array larger than the cache, whose lines
    are likely out of it.  A gradient that was just allocated is written with ordinary
    stores: the OS zeroes each new page as it is first touched, which
    leaves it in the cache.
    """
    cdt = V.compute_dtype(x.dtype)
    loss_out = np.empty(x.shape, dtype=cdt) if none else None
    kw = dict(loss=lid, a=float(a), b=float(b), c=float(c),
              weight=_EMPTY64 if w is None else w.reshape(-1), gscale=float(gscale), n_threads=nt)
    if cdt != x.dtype or any(a is not None and a.dtype != cdt for a in (t, aux, grad)):
        # float16 / bfloat16 operands, read in their own width, computed in float32
        total, bad = _k.elementwise_half(
            x=x, t=t, aux=aux, loss_out=V.empty(cdt) if loss_out is None else loss_out.reshape(-1),
            grad=grad, stream=stream, **kw)
        return total, loss_out, bad
    e = V.empty(x.dtype)
    total, bad = _k.elementwise(
        x=x.reshape(-1), t=e if t is None else t.reshape(-1),
        aux=e if aux is None else aux.reshape(-1),
        loss_out=e if loss_out is None else loss_out.reshape(-1),
        grad=e if grad is None else grad.reshape(-1), stream=stream, **kw)
    return total, loss_out, bad


def _result(total, loss_out, reduction, denom, dtype, grad, return_grad):
    if reduction == "none":
        loss = loss_out
    else:
        loss = V.reduce_total(total, denom, "sum" if reduction == "sum" else "mean",
                              V.compute_dtype(dtype))
    if not return_grad:
        return loss
    return loss, grad


def _pointwise(lid, input, target, reduction, sample_weight, return_grad, grad_out,
               n_threads, a=0.0, b=0.0, c=0.0, *, broadcast=False, weight=None,
               aux=None, check=None, reductions=V.REDUCTIONS, names=("input", "target"),
               grad_dtype=None):
    """The common path: per-element loss of (input, target), reduced."""
    # the prepared call takes 'mean', 'sum', 'none' and, where the function
    # has it, 'batchmean' (else it returns None): right for every function
    # that accepts the reduction asked for
    if (weight is None and sample_weight is None and aux is None and grad_dtype is None
            and (reductions is V.REDUCTIONS
                 or (type(reduction) is str and reduction in reductions))):
        r = _k.pointwise_call(lid, input, target, reduction, return_grad, n_threads, a, b, c,
                              "batchmean" in reductions, _k.Rows.ROWS_NONE, False, grad_out)
        if r is not None:
            return r
    x = _input(input, names[0])
    V.check_reduction(reduction, reductions)
    nt = V.threads(n_threads)
    t = None if target is None else _target(target, x, name=names[1], broadcast=broadcast)
    sw = _sample_weight(sample_weight, x.shape)
    w = _multiplier(weight, sw)
    if reduction == "batchmean":
        denom = float(x.shape[0]) if x.ndim > 0 else 1.0
    else:
        denom = float(np.sum(sw)) if sw is not None else float(x.size)
    grad, stream = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                                 inputs=((names[0], x), (names[1], t), ("pos_weight", aux),
                                         ("weight", weight), ("sample_weight", sample_weight)))
                    if return_grad else (None, False))
    total, loss_out, bad = _run(lid, x, t, aux, a, b, c, w, none=reduction == "none",
                                grad=grad, gscale=V.mean_scale(reduction, denom), nt=nt,
                                stream=stream)
    if bad >= 0:
        raise check(x.reshape(-1), None if t is None else t.reshape(-1), bad)
    return _result(total, loss_out, reduction, denom, x.dtype, grad, return_grad)


def _prob_error(x, t, bad):
    xv = x[bad]
    if not (0 <= xv <= 1):
        return ValueError(
            f"input holds {float(xv)!r} at flat position {bad}; binary_cross_entropy expects "
            "probabilities in [0, 1] (all elements of input should be between 0 and 1)"
        )
    return ValueError(
        f"target holds {float(t[bad])!r} at flat position {bad}; expected values in [0, 1]"
    )


def _sign_error(x, t, bad):
    return ValueError(
        f"target holds {float(t[bad])!r} at flat position {bad}; expected labels in {{-1, +1}}"
    )


def _weight_full(weight, shape, name="weight"):
    """A torch-style weight broadcast to the per-element shape, float64."""
    if weight is None:
        return None
    w = V.as_float(weight, name, dtype=np.float64)
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {w.shape} cannot be broadcast to the input's shape {tuple(shape)}"
        ) from None


def _along_axis(lid, x, t, axis, reduction, sample_weight, w_elem, scale, return_grad,
                grad_out, grad_dtype, nt, a=0.0, c=0.0):
    """Per-element loss summed along ``axis`` (times ``scale``), then reduced."""
    axis = normalize_axis(axis, x.ndim)[0]
    pos_shape = x.shape[:axis] + x.shape[axis + 1:]
    sw = _sample_weight(sample_weight, pos_shape)
    sw_elem = None if sw is None else np.expand_dims(sw, axis)
    w = _multiplier(None if w_elem is None else np.broadcast_to(w_elem, x.shape),
                    None if sw_elem is None else np.broadcast_to(sw_elem, x.shape))
    n_pos = int(np.prod(pos_shape, dtype=np.int64))
    denom = float(np.sum(sw)) if sw is not None else float(n_pos)
    grad, stream = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                                 inputs=(("input", x), ("target", t), ("weight", w_elem),
                                         ("sample_weight", sample_weight)))
                    if return_grad else (None, False))
    total, loss_out, _ = _run(lid, x, t, None, a, 0.0, c, w, none=reduction == "none",
                              grad=grad, gscale=V.mean_scale(reduction, denom, scale), nt=nt,
                              stream=stream)
    if reduction == "none":
        cdt = V.compute_dtype(x.dtype)
        loss = (loss_out.sum(axis=axis) * cdt.type(scale)).astype(cdt)
        return (loss, grad) if return_grad else loss
    return _result(total * scale, None, reduction, denom, x.dtype, grad, return_grad)
