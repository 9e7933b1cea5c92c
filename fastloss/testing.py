"""Testing tools: gradients checked by central finite differences."""

import numpy as np


def numerical_grad(fn, inputs, index=0, eps=1e-6):
    """d sum(fn(*inputs)) / d inputs[index] by 5-point central differences."""
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


def check_grad(fn, *inputs, eps=1e-6, rtol=1e-5, atol=1e-8, wrt=0, **kwargs):
    """Compare ``fn(..., return_grad=True)`` with central finite differences.

    ``fn`` is a fastloss function; it is called as ``fn(*inputs, **kwargs)``
    for the value and with ``return_grad=True`` for the analytic gradient.
    Inputs are converted to float64.  ``wrt`` selects which input (or, for
    functions returning a tuple of gradients, which gradient) to check; it
    may be a sequence of indices.  For ``reduction='none'`` the gradient of
    the sum is checked, as documented.

    Raises ``AssertionError`` naming the worst element on mismatch and
    returns the largest relative error otherwise.
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
