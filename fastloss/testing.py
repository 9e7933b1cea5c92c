"""Testing tools: gradients checked by central finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["check_grad", "numerical_grad"]


def numerical_grad(fn: Callable[..., Any], inputs: Sequence[ArrayLike], index: int = 0,
                   eps: float = 1e-6) -> NDArray[np.float64]:
    """``d sum(fn(*inputs)) / d inputs[index]`` by 5-point central differences.

    Parameters
    ----------
    fn : callable
        Called as ``fn(*inputs)``; its result is summed in float64.
    inputs : sequence of array_like
        The arguments; ``inputs[index]`` is copied to float64 and perturbed
        one element at a time.
    index : int
        Which input to differentiate.
    eps : float
        Step of the central differences.

    Returns
    -------
    ndarray of float64, of ``inputs[index]``'s shape

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.testing import numerical_grad
    >>> g = numerical_grad(lambda x: x ** 3, [np.array([1.0, 2.0])])
    >>> np.allclose(g, [3.0, 12.0])
    True
    """
    args = [np.array(a, dtype=np.float64 if i == index else None, copy=True)
            for i, a in enumerate(inputs)]
    x = args[index]
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)

    def f():
        return float(np.sum(np.asarray(fn(*args), dtype=np.float64)))

    for i in range(flat.size):
        x0 = flat[i]
        vals = []
        for k in (2, 1, -1, -2):
            flat[i] = x0 + k * eps
            vals.append(f())
        flat[i] = x0
        gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * eps)
    return g


def check_grad(fn: Callable[..., Any], *inputs: ArrayLike, eps: float = 1e-6,
               rtol: float = 1e-5, atol: float = 1e-8, wrt: int | Sequence[int] = 0,
               **kwargs: Any) -> float:
    """Compare ``fn(..., return_grad=True)`` with central finite differences.

    ``fn`` is a fastloss function; it is called as ``fn(*inputs, **kwargs)``
    for the value and with ``return_grad=True`` for the analytic gradient.
    Inputs are converted to float64.  For ``reduction='none'`` the gradient
    of the sum is checked, as documented.

    Parameters
    ----------
    fn : callable
        A fastloss function accepting ``return_grad=True``.
    *inputs : array_like
        Its positional arguments; float inputs are converted to float64.
    eps : float
        Step of the 5-point central differences.
    rtol, atol : float
        An element passes when ``|analytic - numerical| <= atol + rtol *
        |numerical|``.
    wrt : int or sequence of ints
        Which input (or, for functions returning a tuple of gradients,
        which gradient) to check.
    **kwargs
        Passed to ``fn``.

    Returns
    -------
    float
        The largest relative error.

    Raises
    ------
    AssertionError
        Naming the worst element, when an element is outside the tolerance.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> from fastloss.testing import check_grad
    >>> x = np.array([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]])
    >>> check_grad(fastloss.cross_entropy, x, np.array([2, 0])) < 1e-6
    True
    """
    inputs = [np.asarray(a) for a in inputs]
    inputs = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs]
    _, grads = fn(*inputs, return_grad=True, **kwargs)
    indices = (wrt,) if np.ndim(wrt) == 0 else tuple(wrt)
    if not isinstance(grads, tuple):
        grads = (grads,)
    worst = 0.0
    for k, index in enumerate(indices):
        analytic = np.asarray(grads[k], dtype=np.float64)
        numeric = numerical_grad(lambda *a: fn(*a, **kwargs), inputs, index, eps)
        if analytic.shape != numeric.shape:
            raise AssertionError(
                f"gradient {k} has shape {analytic.shape}, input {index} has {numeric.shape}"
            )
        err = np.abs(analytic - numeric)
        tol = atol + rtol * np.abs(numeric)
        if err.size and np.any(~(err <= tol)):
            i = int(np.argmax(err - tol))
            pos = np.unravel_index(i, err.shape)
            raise AssertionError(
                f"gradient of input {index} differs at {pos}: analytic "
                f"{analytic[pos]!r}, numerical {numeric[pos]!r}"
            )
        if err.size:
            worst = max(worst, float(np.max(err / np.maximum(np.abs(numeric), atol))))
    return worst
