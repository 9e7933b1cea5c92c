"""Softmax cross-entropy, negative log-likelihood and softmax focal loss:
the class axis of (N, C) rows or (N, C, d1, ...) maps reduced per position
(``src/_classification.pyx``; probability targets in ``src/_ce_soft.pyx``, the
focal kernel in ``src/_rowwise.pyx``)."""


import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("classification")
_ks = kernels("ce_soft")  # probability targets
_kr = kernels("rowwise")  # the focal kernel

__all__ = ["cross_entropy", "nll_loss", "softmax_focal_loss"]

_EMPTY = V.EMPTY

# Internal reduction: (sum of weighted losses, sum of weights) as float64, the
# pair that 'mean' divides.  fastloss.metrics and fastloss.dask merge these.
SUMS = "sums"


def _as_ncs(x, name="input"):
    """Check the class axis and view x as (N, C, S) without copying."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have a class axis: shape (C,), (N, C) or (N, C, d1, ...), "
                         "got a scalar")
    if x.ndim == 1:
        c = x.shape[0]
        return x.reshape(1, c, 1), True
    n, c = x.shape[0], x.shape[1]
    return x.reshape(n, c, int(np.prod(x.shape[2:], dtype=np.int64))), False


def _loss_shape(x, unbatched):
    return () if unbatched else (x.shape[0],) + x.shape[2:]


def _index_target(target, x, unbatched):
    t = V.as_labels(target, "target")
    want = _loss_shape(x, unbatched)
    if t.shape != want:
        raise ValueError(
            f"target of class indices must have shape {want} for input of shape "
            f"{x.shape}, got {t.shape}"
        )
    return t


def _finish(total, denom, reduction, loss_out, shape, dtype, grad, return_grad):
    if reduction == SUMS:
        return float(total), float(denom)
    loss = V.loss_value(total, denom, reduction, loss_out, shape, dtype)
    return (loss, grad) if return_grad else loss


def _check_common(input, target, reduction, n_threads, return_grad, grad_out,
                  allowed=V.REDUCTIONS, grad_dtype=None, weights=()):
    x = V.as_float(input, "input", half=True)
    V.check_reduction(reduction, allowed)
    nt = V.threads(n_threads)
    x3, unbatched = _as_ncs(x)
    if x3.shape[1] == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    grad, stream = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                                 inputs=(("input", x), ("target", np.asarray(target)),
                                         *weights))
                    if return_grad else (None, False))
    return x, x3, unbatched, nt, grad, stream


def _index_call(x, x3, unbatched, target, weight, ignore_index, reduction,
                label_smoothing, sample_weight, nt, grad, log_input, return_grad, stream):
    C = x3.shape[1]
    t = _index_target(target, x, unbatched)
    t2 = t.reshape(x3.shape[0], x3.shape[2])
    w = V.class_weight(weight, C)
    shape = _loss_shape(x, unbatched)
    sw = V.broadcast_weight(sample_weight, shape)
    w_arr = _EMPTY if w is None else w
    sw_arr = _EMPTY if sw is None else sw.reshape(-1)
    loss_out = np.empty(t2.size if reduction == "none" else 0, dtype=V.compute_dtype(x.dtype))
    gscale = 1.0
    if grad is not None and reduction == "mean":
        denom, bad = _k.index_weight_sum(t=t2.reshape(-1), weight=w_arr, sample_weight=sw_arr,
                                         ignore_index=ignore_index, C=C, n_threads=nt)
        if bad >= 0:
            raise V.label_error(t.reshape(-1), bad, C, ignore_index)
        gscale = 1.0 / denom if denom != 0 else 0.0
    kw = dict(weight=w_arr, sample_weight=sw_arr, ignore_index=ignore_index,
              label_smoothing=label_smoothing, loss_out=loss_out, gscale=gscale, n_threads=nt,
              log_input=log_input)
    if V.is_half(x.dtype):
        total, denom, bad = _k.ce_index_half(
            x=x, N=x3.shape[0], C=C, S=x3.shape[2], target=t2.reshape(-1),
            grad=None if grad is None else grad.reshape(-1), **kw)
    else:
        g_arr = grad.reshape(-1) if grad is not None else np.empty(0, dtype=x.dtype)
        total, denom, bad = _k.ce_index(x=x3, target=t2, grad=g_arr, stream=stream, **kw)
    V.raise_label_error(t.reshape(-1), bad, C, ignore_index)
    return _finish(total, denom, reduction, loss_out, shape, x.dtype, grad, return_grad)


@doc
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, sample_weight=None, *, return_grad=False,
                  grad_out=None, grad_dtype=None, n_threads=None):
    r"""Softmax cross-entropy between logits and class indices or probabilities.

    With class-index targets :math:`y`, per position

    .. math:: \ell = (1-\varepsilon)\, w_y (\operatorname{lse}(x) - x_y)
              + \frac{\varepsilon}{C} \sum_c w_c (\operatorname{lse}(x) - x_c)

    and with class probabilities :math:`t` (same shape as ``input``)

    .. math:: \ell = \sum_c w_c \big((1-\varepsilon) t_c + \tfrac{\varepsilon}{C}\big)
              (\operatorname{lse}(x) - x_c)

    where :math:`\operatorname{lse}` is the max-subtracted log-sum-exp over
    the class axis (axis 1), :math:`w` the class weights and
    :math:`\varepsilon` the label smoothing.  The gradient is
    :math:`A\, \operatorname{softmax}(x) - a` with :math:`a` the weights
    above and :math:`A = \sum_c a_c`.

    Parameters
    ----------
    input : array_like, shape (C,), (N, C) or (N, C, d1, ..., dk)
        Logits; float32 and float64 are computed natively, float16 and
        bfloat16 in float32 (with class indices, rows (N, C) of 32 to 4096
        classes and maps or narrow rows of up to 32 classes are read in
        their own width, with probabilities rows of up to 16384 classes and
        maps of up to 32; other shapes through a widened copy).  The class
        axis of NCHW / NCDHW data is read in place (no transposed copy).
    target : array_like
        Class indices of shape (), (N,) or (N, d1, ..., dk), any integer
        dtype (uint8 ... int64, read in its own width), or class
        probabilities of ``input``'s shape (converted to ``input``'s dtype;
        beside float16 / bfloat16 logits, read in their dtype or as float32).
    weight : array_like of shape (C,), optional
        Per-class weights.
    ignore_index : int
        Class-index targets equal to it contribute nothing, neither to the
        loss nor to the 'mean' denominator.  An all-ignored batch gives NaN
        with 'mean', as in torch.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by the sum of :math:`w_y` over non-ignored positions
        (class indices) or by the number of positions (probabilities).
    label_smoothing : float in [0, 1]
    sample_weight : array_like, optional
        Per-position weights broadcastable to the loss shape (fastloss's
        addition): the loss of each position is multiplied by it and 'mean'
        becomes :math:`\sum_i s_i \ell_i / \sum_i s_i w_{y_i}`.  A map of
        shape (N, H, W) gives the weighted pixel-wise cross-entropy.
    return_grad : bool
        Also return d(loss)/d(input), computed in the same pass.
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar or ndarray (``'none'``: the target's shape)
    grad : ndarray, only with ``return_grad=True``

    Notes
    -----
    Equivalent to ``torch.nn.functional.cross_entropy``.  Class indices
    outside ``[0, C)`` other than ``ignore_index`` raise ``ValueError``;
    they are detected inside the kernel, in the same pass.  One pass over
    the logits; with ``return_grad=True`` and ``'mean'``, a short pass over
    the targets first finds the denominator.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> logits = np.array([[4.1, 2.1, -0.5]])
    >>> round(float(fastloss.cross_entropy(logits, np.array([0]))), 5)
    0.13574
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    r = (None if grad_dtype is not None else
         _k.ce_call(input, target, weight, ignore_index, reduction, label_smoothing,
                    sample_weight, return_grad, grad_out, n_threads, False))
    if r is not None:
        return r
    return _ce(input, target, weight, ignore_index, reduction, label_smoothing, sample_weight,
               return_grad, grad_out, n_threads, grad_dtype=grad_dtype)


def _half_native(x, soft, log_input):
    """True when float16 / bfloat16 ``x`` has a kernel that reads it in its own
    width: ce_index_half's shapes with class indices (ce_half_fits), those of
    ce_prob_half with probabilities."""
    if x.ndim == 0:
        return False
    if soft:
        return not log_input and _ks.ce_prob_half_fits(*_as_ncs(x)[0].shape)
    _, C, S = _as_ncs(x)[0].shape
    return _k.ce_half_fits(C, S, log_input)


def _ce(input, target, weight, ignore_index, reduction, label_smoothing, sample_weight,
        return_grad, grad_out, n_threads, log_input=False, allowed=V.REDUCTIONS,
        grad_dtype=None):
    """cross_entropy, or nll_loss with ``log_input=True`` (``reduction=SUMS`` allowed)."""
    t_arr = np.asarray(target)
    xh = V.as_float(input, "input", half=True)
    soft = t_arr.shape == xh.shape and (t_arr.dtype.kind == "f" or V.is_half(t_arr.dtype))
    if V.is_half(xh.dtype) and not _half_native(xh, soft, log_input):
        # float16 / bfloat16 values no kernel reads in their own width: the
        # float32 kernels on a widened copy (the same results), the gradient
        # rounded back
        return V.via_float32(
            lambda x32, g32: _ce(x32, target, weight, ignore_index, reduction,
                                 label_smoothing, sample_weight, return_grad, g32, n_threads,
                                 log_input, allowed),
            xh, return_grad, grad_out, grad_dtype)
    x, x3, unbatched, nt, grad, stream = _check_common(
        xh, target, reduction, n_threads, return_grad, grad_out, allowed, grad_dtype,
        (("weight", weight), ("sample_weight", sample_weight)))
    label_smoothing = V.check_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    if not log_input and soft:
        return _prob_call(x, x3, unbatched, t_arr, weight, reduction, label_smoothing,
                          sample_weight, nt, grad, return_grad)
    ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    return _index_call(x, x3, unbatched, t_arr, weight, ignore_index, reduction,
                       label_smoothing, sample_weight, nt, grad, log_input, return_grad, stream)


def _prob_call(x, x3, unbatched, target, weight, reduction, label_smoothing,
               sample_weight, nt, grad, return_grad):
    half = V.is_half(x.dtype)
    # float16 / bfloat16 logits: probabilities of their dtype are read in
    # it, others as float32
    t_dt = x.dtype if not half or target.dtype == x.dtype else np.float32
    t3 = V.as_float(target, "target", dtype=t_dt).reshape(x3.shape)
    w = V.class_weight(weight, x3.shape[1])
    shape = _loss_shape(x, unbatched)
    sw = V.broadcast_weight(sample_weight, shape)
    n_pos = x3.shape[0] * x3.shape[2]
    loss_out = np.empty(n_pos if reduction == "none" else 0, dtype=V.compute_dtype(x.dtype))
    gscale = 1.0
    if grad is not None and reduction == "mean":
        denom = float(np.sum(sw)) if sw is not None else float(n_pos)
        gscale = 1.0 / denom if denom != 0 else 0.0
    w_arr, sw_arr = _EMPTY if w is None else w, _EMPTY if sw is None else sw.reshape(-1)
    kw = dict(target=t3, weight=w_arr, sample_weight=sw_arr, label_smoothing=label_smoothing,
              loss_out=loss_out, gscale=gscale, n_threads=nt)
    if half:
        N, C, S = x3.shape
        total, denom = _ks.ce_prob_half(
            x=x, N=N, C=C, S=S, grad=None if grad is None else grad.reshape(-1), **kw)
    else:
        g_arr = grad.reshape(-1) if grad is not None else np.empty(0, dtype=x.dtype)
        total, denom = _ks.ce_prob(x=x3, grad=g_arr, **kw)
    return _finish(total, denom, reduction, loss_out, shape, x.dtype, grad, return_grad)


@doc
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean",
             sample_weight=None, *, return_grad=False, grad_out=None, grad_dtype=None,
             n_threads=None):
    r"""Negative log-likelihood of log-probabilities at class indices.

    .. math:: \ell_i = -w_{y_i}\, x_{i, y_i}

    'mean' divides by :math:`\sum_i w_{y_i}` over non-ignored positions.
    ``input`` holds log-probabilities (e.g. from :func:`fastloss.log_softmax`)
    of shape (C,), (N, C) or (N, C, d1, ..., dk); ``target`` holds class
    indices of any integer dtype.  Options as in :func:`cross_entropy`
    (``sample_weight`` is fastloss's addition).  The gradient is
    :math:`-w_y` at the target class and 0 elsewhere, written in the same
    pass.  Equivalent to ``torch.nn.functional.nll_loss``.

    Parameters
    ----------
    input : array_like, shape (C,), (N, C) or (N, C, d1, ..., dk)
        Log-probabilities; float16 and bfloat16 are computed in float32
        (maps and narrow rows of up to 32 classes read in their own width,
        other shapes through a widened copy).
    target : array_like of int, shape (), (N,) or (N, d1, ..., dk)
        Class indices, any integer dtype.
    weight : array_like of shape (C,), optional
        Per-class weights.
    ignore_index : int
        Targets equal to it contribute neither to the loss nor to the 'mean'
        denominator.
    reduction : {'mean', 'sum', 'none'}
        'mean' divides by the sum of :math:`w_{y_i}` over non-ignored
        positions.
    sample_weight : array_like, optional
        Per-position weights broadcastable to the loss shape, as in
        :func:`cross_entropy`.
    %(return_grad)s
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or ndarray of the target's shape for 'none'
    grad : ndarray of ``input``'s shape, only with ``return_grad=True``

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.nll_loss(np.log([[0.25, 0.75]]), np.array([1])))  # -log 0.75
    0.2876820724517809
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    r = (None if grad_dtype is not None else
         _k.ce_call(input, target, weight, ignore_index, reduction, 0.0,
                    sample_weight, return_grad, grad_out, n_threads, True))
    if r is not None:
        return r
    return _ce(input, target, weight, ignore_index, reduction, 0.0, sample_weight,
               return_grad, grad_out, n_threads, log_input=True, grad_dtype=grad_dtype)


# ------------------------------------------------------------- focal loss

@doc
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
    %(grad_out)s
    %(grad_dtype)s
    %(n_threads)s

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if alpha is None and sample_weight is None and grad_dtype is None:
        r = _kr.focal_call(input, target, gamma, ignore_index, reduction, return_grad,
                           n_threads, grad_out)
        if r is not None:
            return r
    x = V.as_float(input, "input", half=True)
    x3, unbatched = _as_ncs(x)
    if V.is_half(x.dtype) and not _kr.focal_half_fits(*x3.shape):
        return V.via_float32(
            lambda x32, g32: softmax_focal_loss(
                x32, target, gamma, alpha, ignore_index, reduction, sample_weight=sample_weight,
                return_grad=return_grad, grad_out=g32, n_threads=n_threads),
            x, return_grad, grad_out, grad_dtype)
    V.check_reduction(reduction)
    nt = V.threads(n_threads)
    gamma = V.check_scalar(gamma, "gamma", 0.0)
    ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    C = x3.shape[1]
    if C == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    shape = _loss_shape(x, unbatched)
    t = _index_target(target, x, unbatched)
    t2 = t.reshape(x3.shape[0], x3.shape[2])
    if alpha is None:
        a = _EMPTY
    elif np.ndim(alpha) == 0:
        a = np.full(C, V.check_scalar(alpha, "alpha"), dtype=np.float64)
    else:
        a = V.class_weight(alpha, C, "alpha")
    sw = V.broadcast_weight(sample_weight, shape)
    sw_arr = _EMPTY if sw is None else sw.reshape(-1)
    grad = (V.grad_array(grad_out, x.shape, V.grad_dtype(x.dtype, grad_dtype, grad_out),
                         inputs=(("input", x), ("target", t), ("alpha", alpha),
                                 ("sample_weight", sample_weight)))[0]
            if return_grad else None)
    gscale = 1.0
    if grad is not None and reduction == "mean":
        denom, bad = _k.index_weight_sum(t=t2.reshape(-1), weight=_EMPTY, sample_weight=sw_arr,
                                         ignore_index=ignore_index, C=C, n_threads=nt)
        V.raise_label_error(t.reshape(-1), bad, C, ignore_index)
        gscale = 1.0 / denom if denom != 0 else 0.0
    loss_out = np.empty(t2.size if reduction == "none" else 0, dtype=V.compute_dtype(x.dtype))
    kw = dict(alpha=a, sample_weight=sw_arr, ignore_index=ignore_index, gamma=gamma,
              loss_out=loss_out, gscale=gscale, n_threads=nt)
    if V.is_half(x.dtype):  # float16 / bfloat16 logits read in their own width
        total, denom, bad = _kr.focal_half(
            x=x3, N=x3.shape[0], C=C, S=x3.shape[2], target=t2.reshape(-1),
            grad=None if grad is None else grad.reshape(-1), **kw)
    else:
        g_arr = grad.reshape(-1) if grad is not None else V.empty(x.dtype)
        total, denom, bad = _kr.focal(x=x3, target=t2, grad=g_arr, **kw)
    V.raise_label_error(t.reshape(-1), bad, C, ignore_index)
    loss = V.loss_value(total, denom, reduction, loss_out, shape, x.dtype)
    return (loss, grad) if return_grad else loss
