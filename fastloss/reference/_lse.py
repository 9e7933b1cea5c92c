"""NumPy float64 oracle: log-sum-exp, softmax, log-softmax."""

import numpy as np

__all__ = ["logsumexp", "softmax", "log_softmax"]


def _shifted(a, axis):
    a = np.asarray(a, dtype=np.float64)
    m = np.max(a, axis=axis, keepdims=True) if a.size else np.zeros((1,) * a.ndim)
    m = np.where(np.isfinite(m), m, 0.0)
    return a, m


def logsumexp(a, axis=None, keepdims=False, **_):
    a, m = _shifted(a, axis)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out[()] if out.ndim == 0 else out


def softmax(x, axis=None, **_):
    x, m = _shifted(x, axis)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=None, **_):
    return np.asarray(x, dtype=np.float64) - logsumexp(x, axis=axis, keepdims=True)
