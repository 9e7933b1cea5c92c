"""NumPy float64 oracle: element-wise losses, written for clarity."""

import numpy as np

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


def _f(a):
    return np.asarray(a, dtype=np.float64)


def _pair(input, target):
    x = _f(input)
    return x, np.broadcast_to(_f(target), x.shape)


def _reduce(per, reduction, sample_weight=None, batch=None):
    per = np.asarray(per, dtype=np.float64)
    w = (np.ones(per.shape) if sample_weight is None
         else np.broadcast_to(_f(sample_weight), per.shape))
    if reduction == "none":
        return per * w
    if reduction == "sum":
        return np.float64(np.sum(per * w))
    if reduction == "batchmean":
        return np.float64(np.sum(per * w) / batch)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64(np.sum(per * w) / np.sum(w))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return np.exp(-_softplus(-z))


def mse_loss(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    return _reduce((x - t) ** 2, reduction, sample_weight)


def l1_loss(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    return _reduce(np.abs(x - t), reduction, sample_weight)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0, sample_weight=None, **_):
    x, t = _pair(input, target)
    d = np.abs(x - t)
    if beta == 0:
        per = d
    else:
        per = np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(per, reduction, sample_weight)


def huber_loss(input, target, reduction="mean", delta=1.0, sample_weight=None, **_):
    x, t = _pair(input, target)
    d = np.abs(x - t)
    per = np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(per, reduction, sample_weight)


def log_cosh_loss(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    d = x - t
    # log cosh d = log((e^d + e^-d) / 2)
    per = np.logaddexp(d, -d) - np.log(2.0)
    return _reduce(per, reduction, sample_weight)


def pseudo_huber_loss(input, target, delta=1.0, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    r = (x - t) / delta
    per = delta ** 2 * (np.sqrt(1.0 + r * r) - 1.0)
    return _reduce(per, reduction, sample_weight)


def mean_bias_error(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    return _reduce(x - t, reduction, sample_weight)


def binary_cross_entropy(input, target, weight=None, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    if np.any(~((x >= 0) & (x <= 1))) or np.any((t < 0) | (t > 1)):
        raise ValueError("input and target must hold values in [0, 1]")
    with np.errstate(divide="ignore"):
        per = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))
    if weight is not None:
        per = per * _f(weight)
    return _reduce(per, reduction, sample_weight)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    pw = 1.0 if pos_weight is None else _f(pos_weight)
    a = pw * t
    b = 1.0 - t
    # a term whose coefficient is zero is zero, also at infinite logits
    with np.errstate(invalid="ignore"):
        per = np.where(a == 0, 0.0, a * _softplus(-x)) + np.where(b == 0, 0.0, b * _softplus(x))
    if weight is not None:
        per = per * _f(weight)
    return _reduce(per, reduction, sample_weight)


def soft_margin_loss(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    return _reduce(_softplus(-t * x), reduction, sample_weight)


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean",
                                sample_weight=None, **_):
    x, t = _pair(input, target)
    per = t * _softplus(-x) + (1 - t) * _softplus(x)
    if weight is not None:
        per = per * _f(weight)
    per = per.sum(axis=-1) / x.shape[-1]
    return _reduce(per, reduction, sample_weight)


def kl_div(input, target, reduction="mean", log_target=False, sample_weight=None, **_):
    x, t = _pair(input, target)
    if log_target:
        per = np.exp(t) * (t - x)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            tlogt = np.where(t == 0, 0.0, t * np.log(t))
        per = tlogt - t * x
    return _reduce(per, reduction, sample_weight, batch=x.shape[0] if x.ndim else 1)


def js_div(p, q, axis=-1, reduction="mean", sample_weight=None, **_):
    p, q = _pair(p, q)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p == 0, 0.0, p * np.log(p / m))
        kq = np.where(q == 0, 0.0, q * np.log(q / m))
    per = 0.5 * np.sum(kp + kq, axis=axis)
    return _reduce(per, reduction, sample_weight)


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none",
                       sample_weight=None, **_):
    x, t = _pair(inputs, targets)
    p = _sigmoid(x)
    ce = binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    per = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        per = per * (alpha * t + (1 - alpha) * (1 - t))
    return _reduce(per, reduction, sample_weight)


def _check_pm1(t):
    if np.any((t != 1) & (t != -1)):
        raise ValueError("target must hold labels in {-1, +1}")


def hinge_loss(input, target, margin=1.0, squared=False, reduction="mean",
               sample_weight=None, **_):
    x, t = _pair(input, target)
    _check_pm1(t)
    h = np.maximum(0.0, margin - t * x)
    return _reduce(h * h if squared else h, reduction, sample_weight)


def exponential_loss(input, target, reduction="mean", sample_weight=None, **_):
    x, t = _pair(input, target)
    _check_pm1(t)
    return _reduce(np.exp(-t * x), reduction, sample_weight)


def l1_penalty(*arrays, **_):
    return np.float64(sum(np.sum(np.abs(_f(a))) for a in arrays))


def l2_penalty(*arrays, **_):
    return np.float64(sum(np.sum(_f(a) ** 2) for a in arrays))


def elastic_net_penalty(*arrays, l1_ratio=0.5, **_):
    return np.float64(l1_ratio * l1_penalty(*arrays) + (1 - l1_ratio) * l2_penalty(*arrays))


def gan_discriminator_loss(real_logits, fake_logits, reduction="mean", **_):
    r, f = _f(real_logits), _f(fake_logits)
    if reduction == "none":
        return _softplus(-r), _softplus(f)
    red = np.sum if reduction == "sum" else np.mean
    return np.float64(red(_softplus(-r)) + red(_softplus(f)))


def gan_generator_loss(fake_logits, non_saturating=True, reduction="mean", **_):
    f = _f(fake_logits)
    per = _softplus(-f) if non_saturating else -_softplus(f)
    if reduction == "none":
        return per
    return np.float64(np.sum(per) if reduction == "sum" else np.mean(per))
