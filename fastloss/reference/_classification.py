"""NumPy float64 oracle: cross-entropy and NLL, written for clarity."""

import numpy as np

from fastloss.reference._lse import log_softmax

__all__ = ["cross_entropy", "nll_loss"]


def _ncs(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x.reshape(1, -1, 1), True
    return x.reshape(x.shape[0], x.shape[1], -1), False


def _reduce(per, denom, reduction, shape):
    if reduction == "none":
        return per.reshape(shape)
    if reduction == "sum":
        return np.float64(per.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64(per.sum() / denom)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean",
             sample_weight=None, **_):
    x, unbatched = _ncs(input)
    n, c, s = x.shape
    t = np.asarray(target).reshape(n, s).astype(np.int64)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    keep = t != ignore_index
    if np.any(keep & ((t < 0) | (t >= c))):
        raise ValueError("target holds a class index out of range")
    tc = np.where(keep, t, 0)
    picked = np.take_along_axis(x, tc[:, None, :], axis=1)[:, 0, :]
    wy = np.where(keep, w[tc], 0.0)
    shape = () if unbatched else (n,) + np.shape(input)[2:]
    sw = np.ones(n * s) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, dtype=np.float64), shape).reshape(-1)
    per = -(wy * picked).reshape(-1) * sw
    return _reduce(per, np.sum(wy.reshape(-1) * sw), reduction, shape)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, sample_weight=None, **_):
    x, unbatched = _ncs(input)
    n, c, s = x.shape
    logp = log_softmax(x, axis=1)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    shape = () if unbatched else (n,) + np.shape(input)[2:]
    sw = np.ones(n * s) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, dtype=np.float64), shape).reshape(-1)
    eps = label_smoothing
    tgt = np.asarray(target)
    if tgt.dtype.kind == "f" and tgt.shape == np.shape(input):
        p = tgt.astype(np.float64).reshape(n, c, s) * (1 - eps) + eps / c
        per = -np.sum(w[None, :, None] * p * logp, axis=1).reshape(-1) * sw
        return _reduce(per, np.sum(sw), reduction, shape)
    t = tgt.reshape(n, s).astype(np.int64)
    keep = t != ignore_index
    if np.any(keep & ((t < 0) | (t >= c))):
        raise ValueError("target holds a class index out of range")
    tc = np.where(keep, t, 0)
    nll = -np.take_along_axis(logp, tc[:, None, :], axis=1)[:, 0, :]
    smooth = -np.sum(w[None, :, None] * logp, axis=1) / c
    wy = np.where(keep, w[tc], 0.0)
    per = np.where(keep, (1 - eps) * wy * nll + eps * smooth, 0.0).reshape(-1) * sw
    return _reduce(per, np.sum(wy.reshape(-1) * sw), reduction, shape)
