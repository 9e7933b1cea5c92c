"""Regression losses: squared, absolute, smooth/Huber, log-cosh, bias."""


from fastloss import _validate as V
from fastloss._docs import doc
from fastloss.elementwise._core import (
    _BIAS,
    _HUBER,
    _L1,
    _LOG_COSH,
    _MSE,
    _PSEUDO_HUBER,
    _SMOOTH_L1,
    _pointwise,
)

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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
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
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _pointwise(_BIAS, input, target, reduction, sample_weight, return_grad,
                      grad_out, n_threads, grad_dtype=grad_dtype)
