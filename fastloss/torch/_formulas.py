"""fastloss's own losses written with torch ops: the fallbacks of fastloss.torch.

Each function computes the same formula as the fastloss kernel of the same
loss (the NumPy reference, transcribed), with torch's autograd.  They run
when the fast path cannot (other devices and dtypes, a 'none' reduction of
the Dice family, a target that requires grad), and the tests compare the
kernels against them.
"""

import math
import warnings

import torch
import torch.nn.functional as F


def _reduce(v, reduction):
    if reduction == "mean":
        return v.mean()
    if reduction == "sum":
        return v.sum()
    return v


def log_cosh_loss(input, target, reduction="mean"):
    d = input - target
    # log cosh d = d + log(1 + exp(-2d)) - log 2, finite for any |d|
    return _reduce(d + F.softplus(-2.0 * d) - math.log(2.0), reduction)


def pseudo_huber_loss(input, target, delta=1.0, reduction="mean"):
    r = (input - target) / delta
    return _reduce(delta * delta * (torch.sqrt(1.0 + r * r) - 1.0), reduction)


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none",
                       sample_weight=None):
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if sample_weight is None:
        return _reduce(loss, reduction)
    w = torch.broadcast_to(sample_weight, loss.shape)
    if reduction == "mean":
        return (w * loss).sum() / w.sum()
    return _reduce(w * loss, reduction)


def softmax_focal_loss(input, target, gamma=2.0, alpha=None, ignore_index=-100,
                         reduction="mean"):
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target)).long()
    logpt = F.log_softmax(input, 1).gather(1, t.unsqueeze(1)).squeeze(1)
    loss = -((1 - logpt.exp()) ** gamma) * logpt
    if alpha is not None:
        loss = loss * torch.as_tensor(alpha, dtype=input.dtype, device=input.device)[t]
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    if reduction == "mean":
        return loss.sum() / keep.sum()
    return _reduce(loss, reduction)


def _margin_logits(cosine, target, psi):
    onehot = F.one_hot(target.long(), cosine.shape[-1]).bool()
    return torch.where(onehot, psi, cosine)


def cosface_loss(cosine, target, s=30.0, m=0.35, reduction="mean"):
    logits = s * _margin_logits(cosine, target, cosine - m)
    return F.cross_entropy(logits, target.long(), reduction=reduction)


def arcface_loss(cosine, target, s=64.0, m=0.5, easy_margin=False, reduction="mean"):
    c = cosine.clamp(-1.0, 1.0)
    phi = torch.cos(torch.acos(c) + m)
    if easy_margin:
        phi = torch.where(c > 0, phi, c)
    else:
        phi = torch.where(c > math.cos(math.pi - m), phi, c - math.sin(math.pi - m) * m)
    logits = s * _margin_logits(cosine, target, phi)
    return F.cross_entropy(logits, target.long(), reduction=reduction)


def _seg_targets(x, target, ignore_index):
    """One-hot (or soft) target g and the 0/1 ignore mask v, both of x's shape."""
    C = x.shape[1]
    if target.shape == x.shape and not (C == 1 and ignore_index is not None):
        g = target.to(x.dtype)
        if ignore_index is None:
            return g, torch.ones_like(x)
        # MONAI's mask of a one-hot target: a class index drops that class's
        # positions, another value the positions of no class
        if 0 <= ignore_index < C:
            v = 1.0 - g[:, ignore_index:ignore_index + 1]
        else:
            v = (g.sum(1, keepdim=True) > 0).to(x.dtype)
        v = v.expand_as(x)
        return g * v, v
    t = target[:, 0] if target.dim() == x.dim() else target
    v = torch.ones(t.shape, dtype=x.dtype, device=x.device)
    if ignore_index is not None:
        v = (t != ignore_index).to(x.dtype)
    if x.shape[1] == 1:
        g = (t == 1).to(x.dtype)[:, None]
    else:
        g = F.one_hot(torch.where(v > 0, t, 0).long(), x.shape[1]).movedim(-1, 1).to(x.dtype)
    v = v[:, None].expand_as(x)
    return g * v, v


def _seg_terms(input, target, activation, ignore_index, include_background, batch):
    """Activated p, target g, mask v (background dropped if asked) and the sum axes."""
    if activation == "softmax" and input.shape[1] == 1:
        warnings.warn("single channel prediction, activation='softmax' ignored", UserWarning,
                      stacklevel=4)
        activation = None
    p = {"softmax": lambda x: torch.softmax(x, 1), "sigmoid": torch.sigmoid,
         None: lambda x: x}[activation](input)
    g, v = _seg_targets(input, target, ignore_index)
    if not include_background and input.shape[1] > 1:
        p, g, v = p[:, 1:], g[:, 1:], v[:, 1:]
    axes = tuple(a for a in range(0 if batch else 2, input.dim()) if a != 1)
    return p, g, v, axes


def _class_weighted(f, weight, input):
    if weight is not None and f.shape[-1] > 1:  # MONAI: only with more than one class used
        f = f * torch.as_tensor(weight, dtype=f.dtype, device=f.device)
    return f


def dice_loss(input, target, activation="softmax", include_background=True,
              squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False, weight=None,
              ignore_index=None, reduction="mean", jaccard=False):
    """fastloss.dice_loss / jaccard_loss (MONAI's DiceLoss) in torch ops."""
    p, g, v, axes = _seg_terms(input, target, activation, ignore_index, include_background,
                               batch)
    pv = p * v
    inter = (pv * g).sum(axes)
    ps = (pv * p if squared_pred else pv).sum(axes)
    gs = (g * g if squared_pred else g).sum(axes)
    if jaccard:
        f = 1.0 - (2 * inter + smooth_nr) / (2 * (ps + gs - inter) + smooth_dr)
    else:
        f = 1.0 - (2 * inter + smooth_nr) / (ps + gs + smooth_dr)
    return _reduce(_class_weighted(f, weight, input), reduction)


def tversky_loss(input, target, alpha=0.5, beta=0.5, activation="softmax",
                 include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", gamma=None):
    """fastloss.tversky_loss / focal_tversky_loss (MONAI's TverskyLoss) in torch ops."""
    p, g, v, axes = _seg_terms(input, target, activation, ignore_index, include_background,
                               batch)
    pv = p * v
    tp = (pv * g).sum(axes)
    fp = (pv * (1 - g)).sum(axes)
    fn = ((1 - p) * g).sum(axes)
    f = 1.0 - (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)
    if gamma is not None:
        f = f ** gamma
    return _reduce(_class_weighted(f, weight, input), reduction)


def focal_tversky_loss(input, target, alpha=0.5, beta=0.5, gamma=0.75, **kw):
    return tversky_loss(input, target, alpha, beta, gamma=gamma, **kw)


def generalized_dice_loss(input, target, w_type="square", activation="softmax",
                          include_background=True, smooth_nr=1e-5, smooth_dr=1e-5,
                          batch=False, ignore_index=None, reduction="mean"):
    """fastloss.generalized_dice_loss (MONAI's GeneralizedDiceLoss) in torch ops."""
    p, g, v, axes = _seg_terms(input, target, activation, ignore_index, include_background,
                               batch)
    pv = p * v
    inter, ps, gs = (pv * g).sum(axes), pv.sum(axes), g.sum(axes)
    w = {"square": 1.0 / gs ** 2, "simple": 1.0 / gs, "uniform": torch.ones_like(gs)}[w_type]
    inf = torch.isinf(w)
    finite_max = torch.where(inf, 0.0, w).amax(-1, keepdim=True)
    w = torch.where(inf, finite_max, w)
    f = 1.0 - (2 * (w * inter).sum(-1) + smooth_nr) / ((w * (ps + gs)).sum(-1) + smooth_dr)
    return _reduce(f.reshape(-1), reduction)


def sensitivity_specificity_loss(input, target, r=0.05, activation="softmax",
                                 include_background=True, smooth_nr=0.0, smooth_dr=1e-5,
                                 batch=False, weight=None, ignore_index=None,
                                 reduction="mean"):
    """fastloss.sensitivity_specificity_loss in torch ops."""
    p, g, v, axes = _seg_terms(input, target, activation, ignore_index, include_background,
                               batch)
    d2 = (g - p) ** 2
    sens = ((d2 * g).sum(axes) + smooth_nr) / (g.sum(axes) + smooth_dr)
    spec = ((d2 * (1 - g) * v).sum(axes) + smooth_nr) / (((1 - g) * v).sum(axes) + smooth_dr)
    return _reduce(_class_weighted(r * sens + (1 - r) * spec, weight, input), reduction)


def jaccard_loss(input, target, **kw):
    return dice_loss(input, target, jaccard=True, **kw)


def dice_ce_loss(input, target, lambda_dice=1.0, lambda_ce=1.0, include_background=True,
                 squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5,
                 batch=False, weight=None, ignore_index=None, reduction="mean"):
    """fastloss.dice_ce_loss (MONAI's DiceCELoss with softmax) in torch ops."""
    dw = None
    if weight is not None:
        dw = torch.as_tensor(weight, dtype=input.dtype, device=input.device)
        dw = dw if include_background else dw[1:]
    dice = dice_loss(input, target, "softmax", include_background, squared_pred, smooth_nr,
                       smooth_dr, batch, dw, ignore_index, reduction, jaccard)
    g, _ = _seg_targets(input, target, ignore_index)
    shape = (1, input.shape[1]) + (1,) * (input.dim() - 2)
    a = g if weight is None else g * torch.as_tensor(
        weight, dtype=input.dtype, device=input.device).reshape(shape)
    total = -(a * F.log_softmax(input, 1)).sum()
    if reduction == "sum":
        ce = total
    elif target.shape == input.shape and target.is_floating_point():
        ce = total / (input.numel() // input.shape[1])
    else:
        ce = total / a.sum()
    return lambda_dice * dice + lambda_ce * ce


_CHEBYSHEV = {1: lambda c: c, 2: lambda c: 2 * c * c - 1,
              3: lambda c: (4 * c * c - 3) * c, 4: lambda c: 8 * c * c * (c * c - 1) + 1}


def sphereface_loss(cosine, target, s=30.0, m=4, reduction="mean"):
    """fastloss.sphereface_loss in torch ops: psi = (-1)^k T_m(cos) - 2k."""
    c = cosine.clamp(-1.0, 1.0)
    k = torch.floor(m * torch.acos(c.detach()) / math.pi).clamp(0, m - 1)
    psi = (1 - 2 * torch.remainder(k, 2)) * _CHEBYSHEV[m](c) - 2 * k
    logits = s * _margin_logits(c, target, psi)
    return F.cross_entropy(logits, target.long(), reduction=reduction)


def hinge_loss(input, target, margin=1.0, squared=False, reduction="mean"):
    h = (margin - target * input).clamp(min=0)
    return _reduce(h * h if squared else h, reduction)


def exponential_loss(input, target, reduction="mean"):
    return _reduce(torch.exp(-target * input), reduction)


def multiclass_hinge_loss(input, target, margin=1.0, squared=False, reduction="mean"):
    x = input if input.dim() == 2 else input.unsqueeze(0)
    t = target.reshape(-1).long()
    xy = x.gather(1, t.unsqueeze(1))
    h = (margin - xy + x).clamp(min=0)
    h = torch.where(F.one_hot(t, x.shape[1]).bool(), 0.0, h)
    per = (h * h if squared else h).sum(1)
    return _reduce(per if input.dim() == 2 else per[0], reduction)


def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean"):
    d = (x1 - x2).pow(2).sum(-1).sqrt()
    y = label.to(d.dtype)
    per = (1 - y) * 0.5 * d * d + y * 0.5 * (margin - d).clamp(min=0) ** 2
    return _reduce(per, reduction)


def js_div(p, q, dim=-1, reduction="mean"):
    s = p + q
    s1 = torch.where(s > 0, s, torch.ones_like(s))  # 0 log 0 = 0 with finite gradients

    def half_kl(a):
        a1 = torch.where(a > 0, a, torch.ones_like(a))
        return torch.where(a > 0, a * torch.log(2.0 * a1 / s1), torch.zeros_like(a))

    return _reduce(0.5 * (half_kl(p) + half_kl(q)).sum(dim), reduction)


def center_loss(features, labels, centers, reduction="mean"):
    d = features - centers[labels.long()]
    return _reduce(0.5 * (d * d).sum(-1), reduction)


def gan_discriminator_loss(real_logits, fake_logits, reduction="mean"):
    real, fake = F.softplus(-real_logits), F.softplus(fake_logits)
    if reduction == "none":
        return real, fake
    return _reduce(real, reduction) + _reduce(fake, reduction)


def gan_generator_loss(fake_logits, non_saturating=True, reduction="mean"):
    v = F.softplus(-fake_logits) if non_saturating else -F.softplus(fake_logits)
    return _reduce(v, reduction)


def l1_penalty(*arrays):
    return sum(a.abs().sum() for a in arrays)


def l2_penalty(*arrays):
    return sum((a * a).sum() for a in arrays)


def elastic_net_penalty(*arrays, l1_ratio=0.5):
    return l1_ratio * l1_penalty(*arrays) + (1.0 - l1_ratio) * l2_penalty(*arrays)
