"""Log-sum-exp, softmax and log-softmax (scipy.special semantics)."""

import numpy as np

from fastloss import _buffers
from fastloss import _validate as V
from fastloss._axes import as_pkq, normalize_axis, reduced_shape
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("lse")

__all__ = ["logsumexp", "softmax", "log_softmax"]


def logsumexp(a, axis=None, keepdims=False, *, n_threads=None):
    r"""Log of the sum of exponentials, computed stably.

    .. math:: \operatorname{lse}(a) = m + \log \sum_i e^{a_i - m},
              \quad m = \max_i a_i

    (``m`` is replaced by 0 when it is not finite, so an all ``-inf`` slice
    gives ``-inf`` and a ``+inf`` entry gives ``+inf``, as in SciPy.)

    Parameters
    ----------
    a : array_like
        Input; float32 stays float32, float16 and bfloat16 are computed in
        float32 (read in their own width, through a float32 copy only for a
        reduced axis of more than 16384 values, or more than 32 along a
        strided axis), other real dtypes in float64.
    axis : None, int or tuple of ints
        Axes to reduce (None: all).  Adjacent axes are reduced in place; any
        other set of axes costs one transposed copy of ``a``.
    keepdims : bool
        Keep the reduced axes with length 1.
    n_threads : int or None
        Threads (see :func:`fastloss.get_num_threads`).

    Returns
    -------
    ndarray or scalar
        A NumPy scalar when every axis is reduced without keepdims.

    Equivalent to ``scipy.special.logsumexp(a, axis, keepdims=keepdims)``
    and ``torch.logsumexp``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.logsumexp(np.log([1.0, 2.0, 3.0, 4.0])))  # log(10)
    2.302585092994046
    """
    r = _k.lse_call(a, axis, keepdims, n_threads, 0)
    if r is not None:
        return r
    x = V.as_float(a, "a", half=True)
    axes = normalize_axis(axis, x.ndim)
    nt = V.threads(n_threads)
    x3, _ = as_pkq(x, axes)
    out = np.empty(x3.shape[0] * x3.shape[2], dtype=V.compute_dtype(x.dtype))
    if x3.shape[1] == 0:
        out.fill(-np.inf)
    else:
        _run(x3, out, 0, False, nt)
    shape = reduced_shape(x.shape, axes, keepdims)
    if shape == ():
        return out.dtype.type(out[0])
    return out.reshape(shape)


def _run(x3, out, mode, stream, nt):
    """The kernel over x3 (P, K, Q) into out: float16 / bfloat16 read in their
    own width where lse_half takes the shape, else through one float32 copy."""
    if not V.is_half(x3.dtype):
        _k.lse_kernel(x3, out, mode, stream, nt)
    elif _k.half_fits(*x3.shape):
        _k.lse_half(np.ascontiguousarray(x3), *x3.shape, out, mode, nt)
    else:
        _k.lse_kernel(x3.astype(np.float32), out, mode, stream, nt)


def _softmax(a, axis, n_threads, mode, out):
    if out is None:
        r = _k.lse_call(a, axis, False, n_threads, mode)
        if r is not None:
            return r
    x = V.as_float(a, "x", half=True)
    cdt = V.compute_dtype(x.dtype)
    axes = normalize_axis(axis, x.ndim)
    nt = V.threads(n_threads)
    if out is not None:
        V.check_out(out, x.shape, cdt, "out", inputs=(("x", x),))
    x3, back = as_pkq(x, axes)
    adjacent = np.may_share_memory(x3, x)  # else x3 is a transposed copy
    if out is not None and adjacent:
        res, warm = out.reshape(x3.shape), True
    else:
        # the output comes from fastloss._buffers: an array the caller
        # dropped is written again (mapped pages, no first-touch zeroing);
        # of the input's shape where it can be, as the prepared call's
        res, warm = _buffers.gradient_array(x.shape if adjacent else x3.shape, cdt)
    # a reused or caller's array larger than the cache is out of it:
    # streamed stores
    _run(x3, res.reshape(-1), mode, warm and res.nbytes >= _buffers.stream_bytes(), nt)
    if out is None:
        return back(res)
    if not adjacent:
        out[...] = back(res)
    return out


@doc
def softmax(x, axis=None, *, n_threads=None, out=None):
    r"""Softmax: :math:`e^{x_i - \operatorname{lse}(x)}` over ``axis``.

    ``axis=None`` normalises over all elements, as ``scipy.special.softmax``
    (torch's ``softmax(x, dim)`` is ``axis=dim``).  One exponential per
    element; the result has ``x``'s shape and float dtype (float32 for
    float16 and bfloat16).  Non-adjacent axis tuples cost one transposed
    copy.

    Parameters
    ----------
    x : array_like
        Input; float32 stays float32, float16 and bfloat16 are computed in
        float32 (as for :func:`logsumexp`), other real dtypes in float64.
    axis : None, int or tuple of ints
        Axes to normalise over (None: all).
    %(n_threads)s
    out : ndarray, optional
        Where to write the result: C-contiguous, of ``x``'s shape and float
        dtype, not overlapping ``x``.  Without it, an output of 1 MiB or
        more comes from the gradient cache (see
        :func:`fastloss.set_gradient_cache`): an earlier result the caller
        no longer references is written again instead of a new array.

    Returns
    -------
    out : ndarray
        The softmax, of ``x``'s shape and float dtype (``out`` if given).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.softmax(np.log([1.0, 3.0]))
    array([0.25, 0.75])
    """
    return _softmax(x, axis, n_threads, 1, out)


@doc
def log_softmax(x, axis=None, *, n_threads=None, out=None):
    r"""Log-softmax: :math:`x_i - \operatorname{lse}(x)` over ``axis``.

    Exact where softmax underflows (no log of a rounded probability).
    Semantics of ``scipy.special.log_softmax``; torch's
    ``log_softmax(x, dim)`` is ``axis=dim``.

    Parameters
    ----------
    x : array_like
        Input; float32 stays float32, float16 and bfloat16 are computed in
        float32 (as for :func:`logsumexp`), other real dtypes in float64.
    axis : None, int or tuple of ints
        Axes to normalise over (None: all).
    %(n_threads)s
    out : ndarray, optional
        As for :func:`softmax`.

    Returns
    -------
    out : ndarray
        The log-softmax, of ``x``'s shape and float dtype (``out`` if given).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    """
    return _softmax(x, axis, n_threads, 2, out)
