"""Element-wise losses: regression, binary/probabilistic, margin, divergences,
penalties and GAN losses (torch semantics where torch has the loss).

Every function validates in Python, then makes ONE pass over the data in
``src/_elementwise.pyx.tp`` that returns the weighted sum and, optionally, the
per-element losses and the gradient.  float16 and bfloat16 data are read in
their own width and computed in float32: the loss comes back in float32, the
gradient in the input's dtype (or float32 with ``grad_dtype=np.float32``).
"""

import numpy as np

from fastloss import _validate as V
from fastloss._axes import normalize_axis
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("elementwise")

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "elastic_net_penalty",
    "exponential_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "hinge_loss",
    "huber_loss",
    "js_div",
    "kl_div",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "log_cosh_loss",
    "mean_bias_error",
    "mse_loss",
    "multilabel_soft_margin_loss",
    "pseudo_huber_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
]

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
    if cdt != x.dtype or any(a is not None and a.dtype != cdt for a in (t, aux, grad)):
        # float16 / bfloat16 operands, read in their own width, computed in float32
        total, bad = _k.elementwise_half(
            lid, x, t, aux, float(a), float(b), float(c),
            _EMPTY64 if w is None else w.reshape(-1),
            V.empty(cdt) if loss_out is None else loss_out.reshape(-1), grad, float(gscale), nt,
        )
        return total, loss_out, bad
    e = V.empty(x.dtype)
    total, bad = _k.elementwise(
        lid, x.reshape(-1), e if t is None else t.reshape(-1),
        e if aux is None else aux.reshape(-1), float(a), float(b), float(c),
        _EMPTY64 if w is None else w.reshape(-1),
        e if loss_out is None else loss_out.reshape(-1),
        e if grad is None else grad.reshape(-1), float(gscale), nt, stream,
    )
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
    if (weight is None and sample_weight is None and aux is None and grad_out is None
            and grad_dtype is None and reductions is V.REDUCTIONS):
        r = _k.pointwise_call(lid, input, target, reduction, return_grad, n_threads, a, b, c)
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


# ----------------------------------------------------------- regression

@doc
def mse_loss(input, target, reduction="mean", sample_weight=None, *, return_grad=False,
             grad_out=None, grad_dtype=None, n_threads=None):
    r"""Mean squared error :math:`\ell_i = (x_i - y_i)^2`.

    Parameters
    ----------
    input : array_like, any shape
        Predictions; float32/float64 computed natively, float16/bfloat16
        read in their own width and computed in float32, integers as float64.
    target : array_like
        Same shape as ``input``, or broadcastable to it (torch broadcasts with
        a warning; here ``target`` is broadcast to ``input``'s shape).
    reduction : {'mean', 'sum', 'none'}
    %(sample_weight)s
    return_grad : bool
        Also return :math:`\partial L/\partial x = 2(x-y)` (scaled by the
        reduction), from the same pass.
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or ndarray of ``input``'s shape for 'none'
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    Equivalent to ``torch.nn.functional.mse_loss``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    2.5
    """
    return _pointwise(_MSE, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, broadcast=True, grad_dtype=grad_dtype)


@doc
def l1_loss(input, target, reduction="mean", sample_weight=None, *, return_grad=False,
            grad_out=None, grad_dtype=None, n_threads=None):
    r"""Mean absolute error :math:`\ell_i = |x_i - y_i|`.

    Gradient :math:`\operatorname{sign}(x_i - y_i)` (0 at 0, as torch).
    Arguments as in :func:`mse_loss`.  Equivalent to
    ``torch.nn.functional.l1_loss``.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.l1_loss(np.array([1.0, -2.0]), np.array([0.0, 0.0])))
    1.5
    """
    return _pointwise(_L1, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, broadcast=True, grad_dtype=grad_dtype)


@doc
def smooth_l1_loss(input, target, reduction="mean", beta=1.0, sample_weight=None, *,
                   return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Smooth L1: :math:`0.5 d^2/\beta` if :math:`|d| < \beta`, else :math:`|d| - 0.5\beta`.

    :math:`d = x - y`; ``beta >= 0`` (``beta=0`` is exactly :func:`l1_loss`).
    Arguments as in :func:`mse_loss`.  Equivalent to
    ``torch.nn.functional.smooth_l1_loss``.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    %(reduction)s
    beta : float >= 0
        Where the quadratic part ends (0: the L1 loss).
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.smooth_l1_loss(np.array([0.5, 3.0]), np.array([0.0, 0.0])))
    1.3125
    """
    beta = V.check_scalar(beta, "beta", 0.0)
    return _pointwise(_SMOOTH_L1, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, beta, broadcast=True, grad_dtype=grad_dtype)


@doc
def huber_loss(input, target, reduction="mean", delta=1.0, sample_weight=None, *,
               return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Huber: :math:`0.5 d^2` if :math:`|d| < \delta`, else :math:`\delta(|d| - 0.5\delta)`.

    ``delta > 0``.  Arguments as in :func:`mse_loss`.  Equivalent to
    ``torch.nn.functional.huber_loss``.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    %(reduction)s
    delta : float > 0
        Where the quadratic part ends.
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.huber_loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]), delta=2.0))
    2.0625
    """
    delta = V.check_scalar(delta, "delta", 0.0, lo_open=True)
    return _pointwise(_HUBER, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, delta, broadcast=True, grad_dtype=grad_dtype)


@doc
def log_cosh_loss(input, target, reduction="mean", sample_weight=None, *,
                  return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Log-cosh: :math:`\ell = \log\cosh d = |d| + \log(1 + e^{-2|d|}) - \log 2`.

    The right-hand form never overflows (finite for any finite :math:`d`);
    computed in double for both dtypes.  Gradient :math:`\tanh d`.
    ``target`` must have ``input``'s shape.  No torch equivalent
    (``torch.log(torch.cosh(x - y)).mean()`` overflows for :math:`|d| > 89`
    in float32).

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.log_cosh_loss(np.array([1.0]), np.array([0.0]))), 6)
    0.433781
    """
    return _pointwise(_LOG_COSH, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, grad_dtype=grad_dtype)


@doc
def pseudo_huber_loss(input, target, delta=1.0, reduction="mean", sample_weight=None, *,
                      return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Pseudo-Huber: :math:`\delta^2(\sqrt{1 + (d/\delta)^2} - 1)`.

    Evaluated as :math:`\delta |d|\, r / (\sqrt{1+r^2} + 1)`, :math:`r = |d|/\delta`
    (no cancellation near 0), in double.  Gradient
    :math:`d / \sqrt{1 + (d/\delta)^2}`.  ``delta > 0``; ``target`` of
    ``input``'s shape.  No torch equivalent.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    delta : float > 0
        Scale of the transition from quadratic to linear.
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.pseudo_huber_loss(np.array([1.0]), np.array([0.0]))), 6)
    0.414214
    """
    delta = V.check_scalar(delta, "delta", 0.0, lo_open=True)
    return _pointwise(_PSEUDO_HUBER, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, delta, grad_dtype=grad_dtype)


@doc
def mean_bias_error(input, target, reduction="mean", sample_weight=None, *,
                    return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Mean bias error: the signed mean of :math:`x_i - y_i`.

    Gradient 1 (times the reduction's scale).  ``target`` of ``input``'s
    shape.  No torch equivalent (``(x - y).mean()``).

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Targets, of ``input``'s shape (see above for the domain and broadcasting).
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.mean_bias_error(np.array([1.0, 2.0]), np.array([2.0, 2.0])))
    -0.5
    """
    return _pointwise(_BIAS, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, grad_dtype=grad_dtype)


# ----------------------------------------------- binary / probabilistic

@doc
def binary_cross_entropy(input, target, weight=None, reduction="mean", sample_weight=None, *,
                         return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Binary cross-entropy of probabilities.

    .. math:: \ell = -w\,[y \max(\log x, -100) + (1-y)\max(\log(1-x), -100)]

    The logs are clamped at -100 as in torch, so 0/1 probabilities give
    finite losses; the gradient is :math:`w (x - y) / \max(x(1-x), 10^{-12})`
    (torch's).  ``input`` and ``target`` must hold values in [0, 1] and
    have the same shape (ValueError otherwise, detected in the kernel);
    ``weight`` broadcasts to the input's shape and, unlike
    ``sample_weight``, does not enter the 'mean' denominator (torch).
    Equivalent to ``torch.nn.functional.binary_cross_entropy``.

    Parameters
    ----------
    input : array_like
        Probabilities in [0, 1], any shape.
    target : array_like
        Targets in [0, 1], of ``input``'s shape.
    weight : array_like, optional
        Per-element weights broadcastable to ``input`` (torch's ``weight``;
        not part of the 'mean' denominator).
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.binary_cross_entropy(np.array([0.8]), np.array([1.0]))), 6)
    0.223144
    """
    x = _input(input)
    return _pointwise(_BCE, x, target, reduction, sample_weight, return_grad, grad_out,
                      n_threads, weight=_weight_full(weight, x.shape), check=_prob_error,
                      grad_dtype=grad_dtype)


@doc
def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean", sample_weight=None, *,
                                     return_grad=False, grad_out=None, grad_dtype=None,
                                     n_threads=None):
    r"""Binary cross-entropy on logits.

    .. math:: \ell = w\,[p\,y\,\operatorname{softplus}(-x) + (1-y)\operatorname{softplus}(x)]

    with :math:`p` the ``pos_weight`` — torch's
    :math:`(1-y)x + (1+(p-1)y)\operatorname{softplus}(-x)` regrouped so that
    a term with a zero coefficient is exactly 0: at :math:`x = \pm\infty`
    the loss and the gradient :math:`w[(1-y)\sigma(x) - p\,y\,\sigma(-x)]`
    are the mathematically right values (torch gives NaN for
    :math:`x=+\infty, y=1`).  ``target`` must have the input's shape;
    ``weight`` and ``pos_weight`` broadcast to it as in torch (``pos_weight``
    of shape (C,) applies along the last axis).  A ``pos_weight`` is
    materialised once at the input's shape and dtype.
    Equivalent to ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Parameters
    ----------
    input : array_like
        Logits, any shape.
    target : array_like
        Targets in [0, 1], of ``input``'s shape.
    weight : array_like, optional
        Per-element weights broadcastable to ``input`` (torch's ``weight``).
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis (shape
        (C,)) as in torch.
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.binary_cross_entropy_with_logits(np.array([0.0]), np.array([1.0]))), 6)
    0.693147
    """
    x = _input(input)
    aux = None
    lid = _BCE_LOGITS
    if pos_weight is not None:
        pw = V.as_operand(pos_weight, "pos_weight", x.dtype)
        try:
            aux = np.ascontiguousarray(np.broadcast_to(pw, x.shape))
        except ValueError:
            raise ValueError(
                f"pos_weight of shape {pw.shape} cannot be broadcast to the input's "
                f"shape {x.shape}"
            ) from None
        lid = _BCE_LOGITS_PW
    return _pointwise(lid, x, target, reduction, sample_weight, return_grad, grad_out,
                      n_threads, weight=_weight_full(weight, x.shape), aux=aux,
                      grad_dtype=grad_dtype)


@doc
def soft_margin_loss(input, target, reduction="mean", sample_weight=None, *,
                     return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Logistic loss :math:`\ell = \log(1 + e^{-y x})`, targets usually in {-1, +1}.

    Computed as :math:`\operatorname{softplus}(-yx)` (no overflow in float32
    where torch's ``log(1 + exp(-y x))`` gives inf); gradient
    :math:`-y\,\sigma(-yx)`.  ``target`` of the input's shape.  Equivalent to
    ``torch.nn.functional.soft_margin_loss``.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Labels in {-1, +1}, of ``input``'s shape.
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.soft_margin_loss(np.array([0.0]), np.array([1.0]))), 6)
    0.693147
    """
    return _pointwise(_SOFT_MARGIN, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, grad_dtype=grad_dtype)


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


@doc
def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean",
                                sample_weight=None, *, return_grad=False, grad_out=None,
                                grad_dtype=None, n_threads=None):
    r"""Multi-label one-versus-all logistic loss, averaged over classes.

    .. math:: \ell_n = -\frac{1}{C}\sum_c w_c\,[y_{nc}\log\sigma(x_{nc})
              + (1-y_{nc})\log\sigma(-x_{nc})]

    ``input`` (N, C) or (C,) (the class axis is the last), ``target`` of the
    same shape with values in [0, 1], ``weight`` of shape (C,) (broadcast as
    torch).  'none' gives the per-sample losses (N,); ``sample_weight``
    weighs samples.  Same kernel as
    :func:`binary_cross_entropy_with_logits`.  Equivalent to
    ``torch.nn.functional.multilabel_soft_margin_loss``.

    Parameters
    ----------
    input : array_like, shape (N, C) or (C,)
        Logits.
    target : array_like
        Labels in {0, 1} (or in [0, 1]), of ``input``'s shape.
    weight : array_like of shape (C,), optional
        Per-class weights.
    reduction : {'mean', 'sum', 'none'}
        'none' gives the per-sample losses, shape (N,).
    sample_weight : array_like of shape (N,), optional
        Per-sample weights; 'mean' becomes :math:`\sum w\ell / \sum w`.
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x, y = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    >>> round(float(fastloss.multilabel_soft_margin_loss(x, y)), 6)
    0.693147
    """
    x = _input(input)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    if x.ndim == 0:
        raise ValueError("input must have a class axis: shape (C,) or (N, C), got a scalar")
    t = _target(target, x)
    C = x.shape[-1]
    w = _weight_full(weight, x.shape)
    # cap = inf: torch's log-sigmoid form gives NaN at infinite logits (0 * inf)
    return _along_axis(_BCE_LOGITS, x, t, -1, reduction, sample_weight, w,
                       1.0 / C if C else np.nan, return_grad, grad_out, grad_dtype, nt,
                       c=np.inf)


@doc
def kl_div(input, target, reduction="mean", log_target=False, sample_weight=None, *,
           return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Kullback-Leibler divergence with ``input`` holding log-probabilities.

    .. math:: \ell = y(\log y - x) \quad (0 \log 0 = 0), \qquad
              \ell = e^{y}(y - x) \text{ with log\_target}

    Gradient :math:`-y` (:math:`-e^y`).  ``reduction`` adds 'batchmean'
    (the sum divided by ``input.shape[0]``, the mathematically right KL);
    'mean' averages over all elements, as torch.  ``target`` broadcasts to
    the input's shape.  Equivalent to ``torch.nn.functional.kl_div``.

    Parameters
    ----------
    input : array_like
        Log-probabilities, any shape.
    target : array_like
        Probabilities (log-probabilities with ``log_target=True``),
        broadcastable to ``input``.
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        'batchmean' divides the sum by ``input.shape[0]``; 'mean' averages
        over all elements.
    log_target : bool
        ``target`` holds log-probabilities.
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    >>> round(float(fastloss.kl_div(np.log(q), p, reduction="sum")), 6)
    0.510826
    """
    if not isinstance(log_target, (bool, np.bool_)):
        raise TypeError(f"log_target must be a bool, got {type(log_target).__name__}")
    return _pointwise(_KL_LOG if log_target else _KL, input, target, reduction,
                      sample_weight, return_grad, grad_out, n_threads, broadcast=True,
                      reductions=("mean", "sum", "none", "batchmean"), grad_dtype=grad_dtype)


@doc
def js_div(p, q, axis=-1, reduction="mean", sample_weight=None, *, return_grad=False,
           grad_out=None, grad_dtype=None, n_threads=None):
    r"""Jensen-Shannon divergence of probability vectors along ``axis`` (natural log).

    .. math:: JS(p, q) = \tfrac12 \sum_k p_k \log\frac{2p_k}{p_k+q_k}
              + \tfrac12 \sum_k q_k \log\frac{2q_k}{p_k+q_k}

    with :math:`0\log 0 = 0`.  ``p`` and ``q`` have the same shape; the
    result has that shape without ``axis`` for 'none', and 'mean' averages
    over those positions.  The gradient is d/dp:
    :math:`\tfrac12\log(2p/(p+q))` (:math:`-\infty` where :math:`p = 0 < q`).
    Like ``scipy.spatial.distance.jensenshannon(p, q, axis=axis) ** 2`` for
    normalised inputs.

    Parameters
    ----------
    p : array_like
        Probability vectors along ``axis``.
    q : array_like
        Probability vectors of ``p``'s shape.
    axis : int
        The axis holding the distributions.
    reduction : {'mean', 'sum', 'none'}
        'none' gives one divergence per position, ``p``'s shape without
        ``axis``.
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or ndarray for 'none'
    grad : ndarray of ``p``'s shape (d/dp), only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.js_div(np.array([1.0, 0.0]), np.array([0.0, 1.0]))), 6)  # log 2
    0.693147
    """
    x = _input(p, "p")
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    if x.ndim == 0:
        raise ValueError("p must have at least one axis, got a scalar")
    t = _target(q, x, name="q")
    return _along_axis(_JS, x, t, axis, reduction, sample_weight, None, 1.0,
                       return_grad, grad_out, grad_dtype, nt)


@doc
def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none",
                       sample_weight=None, *, return_grad=False, grad_out=None, grad_dtype=None,
                       n_threads=None):
    r"""Focal loss on logits (RetinaNet).

    .. math:: \ell = \alpha_t\, \mathrm{BCE}(x, y)\, (1 - p_t)^\gamma, \quad
              p = \sigma(x),\ p_t = p y + (1-p)(1-y),\
              \alpha_t = \alpha y + (1-\alpha)(1-y)

    (:math:`\alpha_t = 1` when ``alpha < 0``).  :math:`1 - p_t` is computed
    as :math:`\sigma(x)(1-y) + \sigma(-x)y` (no cancellation) and the
    gradient is finite for every ``gamma >= 0`` including 0 and values
    below 1.  The default reduction is 'none', as torchvision.  Equivalent to
    ``torchvision.ops.sigmoid_focal_loss``.

    Parameters
    ----------
    inputs : array_like
        Logits, any shape.
    targets : array_like
        Binary targets (0 or 1; soft values in [0, 1] are accepted), of
        ``inputs``' shape.
    alpha : float in [0, 1] or negative
        Weight of the positive class (a negative value turns the weighting
        off, as torchvision).
    gamma : float >= 0
        Focusing exponent.
    reduction : {'none', 'mean', 'sum'}
        Default 'none', as torchvision.
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.sigmoid_focal_loss(np.array([0.0]), np.array([1.0]))[0]), 6)
    0.043322
    """
    alpha = V.check_scalar(alpha, "alpha", hi=1.0)
    gamma = V.check_scalar(gamma, "gamma", 0.0)
    return _pointwise(_FOCAL, inputs, targets, reduction, sample_weight, return_grad,
                      grad_out, n_threads, alpha, gamma, 1.0 if alpha >= 0 else 0.0,
                      names=("inputs", "targets"), grad_dtype=grad_dtype)


# -------------------------------------------------------- binary margin

@doc
def hinge_loss(input, target, margin=1.0, squared=False, reduction="mean", sample_weight=None,
               *, return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Binary hinge loss :math:`\max(0, m - y x)` (squared: its square), y in {-1, +1}.

    ``target`` of the input's shape; any other label raises ValueError
    (checked in the kernel).  Gradient :math:`-y` where the margin is
    violated (squared: :math:`-2y\max(0, m - yx)`), else 0.
    Like ``sklearn.metrics.hinge_loss`` on decision values.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Labels in {-1, +1}, of ``input``'s shape.
    margin : float
        The margin :math:`m`.
    squared : bool
        Square each term.
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.hinge_loss(np.array([0.5, 2.0]), np.array([1.0, 1.0])))
    0.25
    """
    margin = V.check_scalar(margin, "margin")
    if not isinstance(squared, (bool, np.bool_)):
        raise TypeError(f"squared must be a bool, got {type(squared).__name__}")
    return _pointwise(_SQ_HINGE if squared else _HINGE, input, target, reduction,
                      sample_weight, return_grad, grad_out, n_threads, margin,
                      check=_sign_error, grad_dtype=grad_dtype)


@doc
def exponential_loss(input, target, reduction="mean", sample_weight=None, *,
                     return_grad=False, grad_out=None, grad_dtype=None, n_threads=None):
    r"""Exponential (AdaBoost) loss :math:`e^{-y x}`, y in {-1, +1}.

    ``target`` of the input's shape; other labels raise ValueError.
    Gradient :math:`-y e^{-yx}`.

    Parameters
    ----------
    input : array_like
        Predictions, any shape; float32 and float64 are computed natively.
    target : array_like
        Labels in {-1, +1}, of ``input``'s shape.
    %(reduction)s
    %(sample_weight)s
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    %(loss_grad)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.exponential_loss(np.array([0.0]), np.array([-1.0])))
    1.0
    """
    return _pointwise(_EXPONENTIAL, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, check=_sign_error, grad_dtype=grad_dtype)


# ------------------------------------------------------------ penalties

def _penalty(arrays, l1_ratio, return_grad, n_threads):
    nt = V.threads(n_threads)
    total = 0.0
    grads = []
    dtype = None
    for k, a in enumerate(arrays):
        x = _input(a, f"arrays[{k}]")
        cdt = V.compute_dtype(x.dtype)
        dtype = cdt if dtype is None else np.promote_types(dtype, cdt)
        g, stream = V.grad_array(None, x.shape, x.dtype) if return_grad else (None, False)
        s, _, _ = _run(_ENET, x, a=l1_ratio, grad=g, nt=nt, stream=stream)
        total += s
        if return_grad:
            grads.append(g)
    value = V.scalar(total, dtype if dtype is not None else np.float64)
    return (value, tuple(grads)) if return_grad else value


@doc
def l1_penalty(*arrays, return_grad=False, n_threads=None):
    r"""L1 penalty :math:`\sum_k \sum_i |w_{k,i}|` over any number of arrays.

    With ``return_grad=True`` returns ``(value, grads)``, ``grads`` a tuple
    with one :math:`\operatorname{sign}(w_k)` per array.  The result dtype is
    float32 only if every array is float32.

    Parameters
    ----------
    *arrays : array_like
        The parameter arrays.
    %(return_grad)s
    %(n_threads)s

    Returns
    -------
    value : NumPy scalar
    grads : tuple of ndarrays, one per array, only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.l1_penalty(np.array([1.0, -2.0]), np.array([[3.0]])))
    6.0
    """
    return _penalty(arrays, 1.0, return_grad, n_threads)


@doc
def l2_penalty(*arrays, return_grad=False, n_threads=None):
    r"""L2 penalty :math:`\sum_k \sum_i w_{k,i}^2` (no 1/2, unlike scikit-learn).

    Gradients :math:`2 w_k`, one per array.  See :func:`l1_penalty`.

    Parameters
    ----------
    *arrays : array_like
        The parameter arrays.
    %(return_grad)s
    %(n_threads)s

    Returns
    -------
    value : NumPy scalar
    grads : tuple of ndarrays, one per array, only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.l2_penalty(np.array([1.0, -2.0])))
    5.0
    """
    return _penalty(arrays, 0.0, return_grad, n_threads)


@doc
def elastic_net_penalty(*arrays, l1_ratio=0.5, return_grad=False, n_threads=None):
    r"""Elastic net :math:`r\sum|w| + (1-r)\sum w^2`, ``r = l1_ratio`` in [0, 1].

    Gradients :math:`r\operatorname{sign}(w_k) + 2(1-r)w_k`, one per array.

    Parameters
    ----------
    *arrays : array_like
        The parameter arrays.
    l1_ratio : float in [0, 1]
        Weight of the L1 term; 1 - l1_ratio weighs the L2 term.
    %(return_grad)s
    %(n_threads)s

    Returns
    -------
    value : NumPy scalar
    grads : tuple of ndarrays, one per array, only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.elastic_net_penalty(np.array([1.0, -2.0]), l1_ratio=0.5))
    4.0
    """
    l1_ratio = V.check_scalar(l1_ratio, "l1_ratio", 0.0, 1.0)
    return _penalty(arrays, l1_ratio, return_grad, n_threads)


# ------------------------------------------------------------------ GAN

def _bce_const(logits, y, sign, name, reduction, return_grad, nt):
    x = _input(logits, name)
    denom = float(x.size)
    grad, stream = V.grad_array(None, x.shape, x.dtype) if return_grad else (None, False)
    total, loss_out, _ = _run(_BCE_LOGITS_CONST, x, a=y, b=1.0, none=reduction == "none",
                              grad=grad, gscale=sign * V.mean_scale(reduction, denom), nt=nt,
                              stream=stream)
    if loss_out is not None and sign < 0:
        loss_out = -loss_out
    loss, g = _result(sign * total, loss_out, reduction, denom, x.dtype, grad, True)
    return loss, g


@doc
def gan_discriminator_loss(real_logits, fake_logits, reduction="mean", *, return_grad=False,
                           n_threads=None):
    r"""Standard GAN discriminator loss on logits.

    .. math:: L = \operatorname{mean}\,\operatorname{softplus}(-r)
              + \operatorname{mean}\,\operatorname{softplus}(f)

    i.e. BCE-with-logits of the real logits against 1 plus that of the fake
    logits against 0 (the BCE-with-logits kernel with a constant target).
    'sum' sums both terms; 'none' returns the pair of per-element arrays.
    With ``return_grad=True`` returns ``(loss, (grad_real, grad_fake))``.

    Parameters
    ----------
    real_logits : array_like
        Discriminator logits of real samples.
    fake_logits : array_like
        Discriminator logits of generated samples.
    reduction : {'mean', 'sum', 'none'}
        'none' returns the pair of per-element arrays.
    return_grad : bool
        Also return the gradients with respect to both inputs.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or a pair of ndarrays for 'none'
    grads : tuple (grad_real, grad_fake), only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.gan_discriminator_loss(np.array([0.0]), np.array([0.0]))), 6)
    1.386294
    """
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    lr, gr = _bce_const(real_logits, 1.0, 1.0, "real_logits", reduction, return_grad, nt)
    lf, gf = _bce_const(fake_logits, 0.0, 1.0, "fake_logits", reduction, return_grad, nt)
    loss = (lr, lf) if reduction == "none" else lr + lf
    return (loss, (gr, gf)) if return_grad else loss


@doc
def gan_generator_loss(fake_logits, non_saturating=True, reduction="mean", *,
                       return_grad=False, n_threads=None):
    r"""GAN generator loss on the discriminator's logits for fake samples.

    Non-saturating (default): :math:`\operatorname{mean}\,\operatorname{softplus}(-f)`
    (BCE against 1).  Minimax: :math:`-\operatorname{mean}\,\operatorname{softplus}(f)`
    (:math:`= \operatorname{mean}\log(1 - \sigma(f))`, minus the BCE against 0).
    The gradient is with respect to ``fake_logits``.

    Parameters
    ----------
    fake_logits : array_like
        Discriminator logits of generated samples.
    non_saturating : bool
        The non-saturating loss (BCE against 1); False: the minimax loss.
    reduction : {'mean', 'sum', 'none'}
    return_grad : bool
        Also return the gradient with respect to ``fake_logits``.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or ndarray for 'none'
    grad : ndarray of ``fake_logits``' shape, only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(float(fastloss.gan_generator_loss(np.array([0.0]))), 6)
    0.693147
    """
    V.check_reduction(reduction)
    if not isinstance(non_saturating, (bool, np.bool_)):
        raise TypeError(f"non_saturating must be a bool, got {type(non_saturating).__name__}")
    nt = V.threads(n_threads)
    if non_saturating:
        loss, g = _bce_const(fake_logits, 1.0, 1.0, "fake_logits", reduction, return_grad, nt)
    else:
        loss, g = _bce_const(fake_logits, 0.0, -1.0, "fake_logits", reduction, return_grad, nt)
    return (loss, g) if return_grad else loss
