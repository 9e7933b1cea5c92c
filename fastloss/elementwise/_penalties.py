"""Weight penalties (L1, L2, elastic net) over any number of arrays."""

import numpy as np

from fastloss import _validate as V
from fastloss._docs import doc
from fastloss.elementwise._core import (
    _ENET,
    _input,
    _k,
    _run,
)

# ------------------------------------------------------------ penalties

def _penalty_call(arrays, l1_ratio, return_grad, n_threads):
    """The penalty through the prepared call of each array (its unrounded
    sum), or None where an array needs the full path."""
    total = 0.0
    f64 = False
    grads = []
    for a in arrays:
        r = _k.pointwise_call(_ENET, a, None, "sum", return_grad, n_threads, l1_ratio,
                              raw=True)
        if r is None:
            return None
        total += r[0]
        f64 = f64 or a.dtype.char == "d"
        grads.append(r[1])
    value = np.float64(total) if f64 else np.float32(total)
    return (value, tuple(grads)) if return_grad else value


def _penalty(arrays, l1_ratio, return_grad, n_threads):
    if arrays:
        r = _penalty_call(arrays, l1_ratio, return_grad, n_threads)
        if r is not None:
            return r
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
