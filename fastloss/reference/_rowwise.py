"""NumPy float64 oracle of the row-wise losses, written for clarity.

Every function returns float64 results and, with ``return_grad=True``, the
gradients computed from the formulas directly (no fused tricks), so the
test-suite can check the kernels' values and gradients against them.
"""

import numpy as np

from fastloss.reference._lse import log_softmax, softmax

__all__ = [
    "softmax_focal_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "triplet_margin_loss",
    "contrastive_loss",
    "center_loss",
    "cosface_loss",
    "arcface_loss",
    "sphereface_loss",
    "fast_rcnn_loss",
]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _reduce(per, reduction, sample_weight=None, denom_mask=None):
    """Reduce per-row losses; 'mean' = sum(w * l) / sum(w) over counted rows."""
    per = _f64(per)
    w = np.ones(per.shape) if sample_weight is None else np.broadcast_to(
        _f64(sample_weight), per.shape)
    if denom_mask is None:
        denom_mask = np.ones(per.shape, dtype=bool)
    weighted = np.where(denom_mask, per * w, 0.0)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return np.float64(weighted.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64(weighted.sum() / np.sum(np.where(denom_mask, w, 0.0)))


def _grad_scale(reduction, sample_weight, shape, denom_mask=None):
    """d(reduced loss)/d(per-row loss), per row."""
    w = np.ones(shape) if sample_weight is None else np.broadcast_to(
        _f64(sample_weight), shape)
    if denom_mask is not None:
        w = np.where(denom_mask, w, 0.0)
    if reduction == "mean":
        total = w.sum()
        return w / total if total != 0 else np.zeros(shape)
    return np.array(w, dtype=np.float64)


def _check_labels(t, n_classes, ignore_index=None):
    t = np.asarray(t).astype(np.int64)
    valid = (t >= 0) & (t < n_classes)
    if ignore_index is not None:
        valid |= t == ignore_index
    if not np.all(valid):
        raise ValueError("target holds a class index out of range")
    return t


def _rows(x):
    x = _f64(x)
    return (x.reshape(1, -1), True) if x.ndim == 1 else (x, False)


def _out(x, unbatched):
    return x.reshape(-1) if unbatched else x


# ------------------------------------------------------------------ focal

def softmax_focal_loss(input, target, gamma=2.0, alpha=None, ignore_index=-100,
                       reduction="mean", *, sample_weight=None, return_grad=False, **_):
    x = _f64(input)
    unbatched = x.ndim == 1
    x3 = x.reshape(1, -1, 1) if unbatched else x.reshape(x.shape[0], x.shape[1], -1)
    n, c, s = x3.shape
    t = _check_labels(np.asarray(target).reshape(n, s), c, ignore_index)
    keep = t != ignore_index
    tc = np.where(keep, t, 0)
    a = np.ones(c) if alpha is None else np.broadcast_to(_f64(alpha), (c,))
    logp = log_softmax(x3, axis=1)
    p_all = softmax(x3, axis=1)
    lp = np.take_along_axis(logp, tc[:, None, :], axis=1)[:, 0, :]
    p = np.exp(lp)
    q = -np.expm1(lp)
    ay = a[tc]
    per = np.where(keep, -ay * q ** gamma * lp, 0.0)
    shape = () if unbatched else (x.shape[0],) + x.shape[2:]
    sw = (None if sample_weight is None
          else np.broadcast_to(_f64(sample_weight), shape).reshape(n, s))
    loss = _reduce(per, reduction, sw, keep)
    if reduction == "none":
        loss = loss.reshape(shape)
    if not return_grad:
        return loss
    # d loss / d lp = -alpha (q^g - g q^(g-1) p lp); limit at q = 0 handled by where
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, lp / q, -1.0)
    K = q ** gamma * (1 - gamma * p * ratio)
    scale = _grad_scale(reduction, sw, (n, s), keep)
    coef = np.where(keep, ay * K * scale, 0.0)
    onehot = np.zeros_like(x3)
    np.put_along_axis(onehot, tc[:, None, :], 1.0, axis=1)
    g = coef[:, None, :] * (p_all - onehot)
    return loss, g.reshape(x.shape)


# ---------------------------------------------------------- margin losses

def _hinge_rows(input, target, p, margin, weight, divide, reduction, sample_weight,
                return_grad):
    x, unbatched = _rows(input)
    n, c = x.shape
    t = _check_labels(np.asarray(target).reshape(-1), c)
    xy = x[np.arange(n), t]
    h = np.maximum(0.0, margin - xy[:, None] + x)
    h[np.arange(n), t] = 0.0
    w = np.ones(c) if weight is None else _f64(weight)
    factor = w[t] / (c if divide else 1)
    per = factor * np.sum(h ** p, axis=1)
    loss = _reduce(per, reduction, sample_weight)
    if reduction == "none":
        loss = _out(loss, unbatched).reshape(() if unbatched else (n,))
    if not return_grad:
        return loss
    scale = _grad_scale(reduction, sample_weight, (n,)) * factor
    dh = (h > 0) * 1.0 if p == 1 else 2.0 * h
    g = scale[:, None] * dh
    g[np.arange(n), t] = -g.sum(axis=1)
    return loss, g.reshape(np.shape(input))


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean", *,
                      sample_weight=None, return_grad=False, **_):
    return _hinge_rows(input, target, p, margin, weight, True, reduction, sample_weight,
                       return_grad)


def multiclass_hinge_loss(input, target, margin=1.0, squared=False, reduction="mean", *,
                          sample_weight=None, return_grad=False, **_):
    return _hinge_rows(input, target, 2 if squared else 1, margin, None, False, reduction,
                       sample_weight, return_grad)


# -------------------------------------------------------- metric learning

def _pdist(u, v, p, eps, squared):
    """||u - v + eps||_p per row (squared: its square), and d(dist)/d(diff)."""
    diff = u - v + eps
    nrm = np.sum(np.abs(diff) ** p, axis=1) ** (1.0 / p)
    with np.errstate(divide="ignore", invalid="ignore"):
        dn = np.sign(diff) * np.abs(diff) ** (p - 1) / nrm[:, None] ** (p - 1)
    dn = np.where(nrm[:, None] > 0, dn, 0.0)
    if squared:
        return nrm ** 2, 2 * nrm[:, None] * dn
    return nrm, dn


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        squared=False, reduction="mean", *, sample_weight=None,
                        return_grad=False, **_):
    a, unbatched = _rows(anchor)
    pp, _u = _rows(positive)
    n, _u = _rows(negative)
    dap, gap = _pdist(a, pp, p, eps, squared)
    dan, gan = _pdist(a, n, p, eps, squared)
    use_pn = np.zeros(len(a), dtype=bool)
    dneg = dan
    if swap:
        dpn, gpn = _pdist(pp, n, p, eps, squared)
        use_pn = dpn < dan
        dneg = np.where(use_pn, dpn, dan)
    h = dap - dneg + margin
    per = np.maximum(h, 0.0)
    loss = _reduce(per, reduction, sample_weight)
    if reduction == "none" and unbatched:
        loss = loss.reshape(())
    if not return_grad:
        return loss
    k = (_grad_scale(reduction, sample_weight, per.shape) * (h > 0))[:, None]
    un = use_pn[:, None]
    ga = k * (gap - np.where(un, 0.0, gan))
    gp = k * (-gap - (np.where(un, gpn, 0.0) if swap else 0.0))
    gn = k * np.where(un, gpn if swap else 0.0, gan)
    return loss, tuple(_out(g, unbatched) for g in (ga, gp, gn))


def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean", *, sample_weight=None,
                     return_grad=False, **_):
    a, unbatched = _rows(x1)
    b, _u = _rows(x2)
    y = _f64(label).reshape(-1)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("label must hold 0 or 1")
    diff = a - b
    d = np.sqrt(np.sum(diff ** 2, axis=1))
    hinge = np.maximum(margin - d, 0.0)
    per = (1 - y) * 0.5 * d ** 2 + y * 0.5 * hinge ** 2
    loss = _reduce(per, reduction, sample_weight)
    if reduction == "none" and unbatched:
        loss = loss.reshape(())
    if not return_grad:
        return loss
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(y == 0, 1.0, np.where(d > 0, -hinge / d, 0.0))
    g = (_grad_scale(reduction, sample_weight, per.shape) * f)[:, None] * diff
    return loss, (_out(g, unbatched), _out(-g, unbatched))


def center_loss(features, labels, centers, reduction="mean", *, sample_weight=None,
                return_grad=False, **_):
    x = _f64(features)
    c = _f64(centers)
    t = _check_labels(np.asarray(labels).reshape(-1), c.shape[0])
    diff = x - c[t]
    per = 0.5 * np.sum(diff ** 2, axis=1)
    loss = _reduce(per, reduction, sample_weight)
    if not return_grad:
        return loss
    gx = _grad_scale(reduction, sample_weight, per.shape)[:, None] * diff
    gc = np.zeros_like(c)
    np.add.at(gc, t, -gx)
    return loss, (gx, gc)


# --------------------------------------------------------- margin softmax

def _margin_ce(cosine, target, psi_and_grad, reduction, sample_weight, return_grad):
    x, unbatched = _rows(cosine)
    n, c = x.shape
    t = _check_labels(np.asarray(target).reshape(-1), c)
    rows = np.arange(n)
    psi, dpsi = psi_and_grad(x[rows, t])
    z = x.copy()
    z[rows, t] = psi
    logp = log_softmax(z, axis=1)
    per = -logp[rows, t]
    loss = _reduce(per, reduction, sample_weight)
    if reduction == "none" and unbatched:
        loss = loss.reshape(())
    if not return_grad:
        return loss
    g = np.exp(logp)
    g[rows, t] = 0.0
    g[rows, t] = -g.sum(axis=1)  # p_y - 1 = -sum of the other classes' p
    g *= _grad_scale(reduction, sample_weight, (n,))[:, None]
    g[rows, t] *= dpsi
    return loss, g.reshape(np.shape(cosine))


def cosface_loss(cosine, target, s=30.0, m=0.35, reduction="mean", *, sample_weight=None,
                 return_grad=False, **_):
    def psi(cy):
        return s * (cy - m), s * np.ones_like(cy)

    return _scaled(cosine, target, s, psi, reduction, sample_weight, return_grad)


def _scaled(cosine, target, s, psi, reduction, sample_weight, return_grad):
    """CE of s*cos with the target logit psi(cos_y) (psi returns s*psi, s*psi')."""
    x = _f64(cosine)
    res = _margin_ce(s * x, target, lambda zy: psi(zy / s), reduction, sample_weight,
                     return_grad)
    if not return_grad:
        return res
    loss, g = res
    # the CE was taken w.r.t. z = s * cos; off-target entries need the factor s,
    # the target entry already carries d(s psi)/d cos from psi's second output
    n_rows = 1 if x.ndim == 1 else x.shape[0]
    g2 = g.reshape(n_rows, -1).copy()
    t = np.asarray(target).reshape(-1).astype(np.int64)
    mask = np.ones(g2.shape, dtype=bool)
    mask[np.arange(n_rows), t] = False
    g2[mask] *= s
    return loss, g2.reshape(x.shape)


def arcface_loss(cosine, target, s=64.0, m=0.5, easy_margin=False, reduction="mean", *,
                 sample_weight=None, return_grad=False, **_):
    def psi(c):
        cc = np.clip(c, -1.0, 1.0)
        theta = np.arccos(cc)
        phi = np.cos(theta + m)
        sin = np.sin(theta)
        dphi = np.cos(m) + cc * np.sin(m) / np.maximum(sin, 1e-4)
        if easy_margin:
            use = c > 0
            val, der = np.where(use, phi, c), np.where(use, dphi, 1.0)
        else:
            use = c > np.cos(np.pi - m)
            val = np.where(use, phi, c - m * np.sin(np.pi - m))
            der = np.where(use, dphi, 1.0)
        return s * val, s * der

    return _scaled(cosine, target, s, psi, reduction, sample_weight, return_grad)


def sphereface_loss(cosine, target, s=30.0, m=4, reduction="mean", *, sample_weight=None,
                    return_grad=False, **_):
    def psi(c):
        cc = np.clip(c, -1.0, 1.0)
        theta = np.arccos(cc)
        k = np.clip(np.floor(m * theta / np.pi), 0, m - 1)
        sign = (-1.0) ** k
        val = sign * np.cos(m * theta) - 2 * k
        # d cos(m theta)/d cos = m sin(m theta) / sin(theta) (-> m^2 at theta = 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.sin(theta) > 1e-12, np.sin(m * theta) / np.sin(theta),
                             m * np.cos(m * theta) / np.cos(theta))
        return s * val, s * sign * m * ratio

    return _scaled(cosine, target, s, psi, reduction, sample_weight, return_grad)


# ------------------------------------------------------------- Fast R-CNN

def fast_rcnn_loss(class_logits, labels, box_regression, box_targets, *, box_weight=1.0,
                   beta=1.0, return_parts=False, **_):
    x = _f64(class_logits)
    n, c = x.shape
    t = _check_labels(np.asarray(labels).reshape(-1), c)
    ce = np.mean(-log_softmax(x, axis=1)[np.arange(n), t])
    b = _f64(box_regression)
    if b.shape[1] != 4:
        b = b.reshape(n, c, 4)[np.arange(n), t]
    d = np.abs(b - _f64(box_targets))
    sl1 = np.where(d < beta, 0.5 * d ** 2 / beta if beta > 0 else 0.0, d - 0.5 * beta)
    box = box_weight * np.sum(sl1[t >= 1]) / n
    total = np.float64(ce + box)
    return (total, np.float64(ce), np.float64(box)) if return_parts else total
