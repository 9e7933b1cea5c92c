"""Binary and probabilistic losses: BCE (probabilities, logits), soft and
multilabel margins, divergences, sigmoid focal, hinge/exponential margins
and the GAN losses (BCE-with-logits against a constant target)."""

import numpy as np

from fastloss import _validate as V
from fastloss._docs import doc
from fastloss.elementwise._core import (
    _BCE,
    _BCE_LOGITS,
    _BCE_LOGITS_CONST,
    _BCE_LOGITS_PW,
    _EXPONENTIAL,
    _FOCAL,
    _HINGE,
    _JS,
    _KL,
    _KL_LOG,
    _SOFT_MARGIN,
    _SQ_HINGE,
    _along_axis,
    _input,
    _k,
    _pointwise,
    _prob_error,
    _result,
    _run,
    _sign_error,
    _target,
    _weight_full,
)

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _pointwise(_SOFT_MARGIN, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, grad_dtype=grad_dtype)


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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if weight is None and sample_weight is None and grad_dtype is None:
        r = _k.pointwise_call(_BCE_LOGITS, input, target, reduction, return_grad, n_threads,
                              0.0, 0.0, np.inf, False, _k.Rows.ROWS_MEAN, False, grad_out)
        if r is not None:
            return r
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if type(axis) is int and axis == -1 and sample_weight is None and grad_dtype is None:
        r = _k.pointwise_call(_JS, p, q, reduction, return_grad, n_threads, 0.0, 0.0, 0.0,
                              False, _k.Rows.ROWS_SUM, False, grad_out)
        if r is not None:
            return r
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _pointwise(_EXPONENTIAL, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, check=_sign_error, grad_dtype=grad_dtype)


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
    r = _k.pointwise_call(_BCE_LOGITS_CONST, real_logits, None, reduction, return_grad,
                          n_threads, 1.0, 1.0)
    f = None if r is None else _k.pointwise_call(_BCE_LOGITS_CONST, fake_logits, None,
                                                 reduction, return_grad, n_threads, 0.0, 1.0)
    if f is not None:
        if not return_grad:
            return (r, f) if reduction == "none" else r + f
        return ((r[0], f[0]) if reduction == "none" else r[0] + f[0]), (r[1], f[1])
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
    if non_saturating is True:
        r = _k.pointwise_call(_BCE_LOGITS_CONST, fake_logits, None, reduction, return_grad,
                              n_threads, 1.0, 1.0)
        if r is not None:
            return r
    V.check_reduction(reduction)
    if not isinstance(non_saturating, (bool, np.bool_)):
        raise TypeError(f"non_saturating must be a bool, got {type(non_saturating).__name__}")
    nt = V.threads(n_threads)
    if non_saturating:
        loss, g = _bce_const(fake_logits, 1.0, 1.0, "fake_logits", reduction, return_grad, nt)
    else:
        loss, g = _bce_const(fake_logits, 0.0, -1.0, "fake_logits", reduction, return_grad, nt)
    return (loss, g) if return_grad else loss
