"""NumPy float64 oracle of the segmentation family: one-hot targets, plain sums."""

import numpy as np

__all__ = [
    "dice_loss",
    "jaccard_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "sensitivity_specificity_loss",
    "dice_ce_loss",
    "confusion_matrix",
    "dice_score",
    "iou_score",
]


def _activate(x, activation):
    if activation == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    return x


def _targets(x, target, ignore_index):
    """One-hot (or soft) target g and the 0/1 mask v, both of x's shape."""
    t = np.asarray(target)
    C = x.shape[1]
    if t.shape == x.shape:
        g = t.astype(np.float64)
        if ignore_index is None:
            return g, np.ones_like(x)
        # MONAI's create_ignore_mask: one channel is compared with ignore_index;
        # a class index masks that class's positions, another value the
        # positions of no class
        if C == 1:
            v = (t != ignore_index).astype(np.float64)
            g = (t == 1).astype(np.float64)
        elif 0 <= ignore_index < C:
            v = 1.0 - g[:, ignore_index:ignore_index + 1]
        else:
            v = (g.sum(axis=1, keepdims=True) > 0).astype(np.float64)
        v = v * np.ones_like(x)
        return g * v, v
    if t.ndim == x.ndim:
        t = t[:, 0]
    v = np.ones(t.shape) if ignore_index is None else (t != ignore_index).astype(np.float64)
    if C == 1:
        g = (t == 1).astype(np.float64)[:, None]
    else:
        g = np.stack([(t == c) for c in range(C)], axis=1).astype(np.float64)
    v = v[:, None] * np.ones_like(x)
    return g * v, v


def _sums(input, target, activation, ignore_index, include_background, batch):
    x = np.asarray(input, dtype=np.float64)
    if activation == "softmax" and x.shape[1] == 1:
        activation = None  # MONAI skips the softmax of one channel (with a warning)
    p = _activate(x, activation)
    g, v = _targets(x, target, ignore_index)
    c0 = 0 if (include_background or x.shape[1] == 1) else 1
    p, g, v = p[:, c0:], g[:, c0:], v[:, c0:]
    axes = tuple(range(2, x.ndim))
    if batch:
        axes = (0,) + axes
    return p, g, v, axes


def _reduce(f, reduction):
    if reduction == "sum":
        return np.sum(f)
    if reduction == "mean":
        return np.mean(f)
    return f


def dice_loss(input, target, *, activation="softmax", include_background=True,
              squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
              weight=None, ignore_index=None, reduction="mean", jaccard=False):
    """1 - (2 sum pg + snr) / (sum p + sum g + sdr), per image and class."""
    p, g, v, axes = _sums(input, target, activation, ignore_index, include_background, batch)
    pv = p * v
    inter = np.sum(pv * g, axis=axes)
    ps = np.sum(pv * p if squared_pred else pv, axis=axes)
    gs = np.sum(g * g if squared_pred else g, axis=axes)
    if jaccard:
        f = 1.0 - (2 * inter + smooth_nr) / (2 * (ps + gs - inter) + smooth_dr)
    else:
        f = 1.0 - (2 * inter + smooth_nr) / (ps + gs + smooth_dr)
    if weight is not None and f.shape[-1] > 1:  # MONAI skips it with one class used
        f = f * np.asarray(weight, dtype=np.float64)
    return _reduce(f, reduction)


def jaccard_loss(input, target, **kwargs):
    """1 - (2 sum pg + snr) / (2 (sum p + sum g - sum pg) + sdr)."""
    return dice_loss(input, target, jaccard=True, **kwargs)


def tversky_loss(input, target, *, alpha=0.5, beta=0.5, activation="softmax",
                 include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", gamma=None):
    """1 - (TP + snr) / (TP + alpha FP + beta FN + sdr)."""
    p, g, v, axes = _sums(input, target, activation, ignore_index, include_background, batch)
    pv = p * v
    tp = np.sum(pv * g, axis=axes)
    fp = np.sum(pv * (1 - g), axis=axes)
    fn = np.sum((1 - p) * g, axis=axes)
    f = 1.0 - (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)
    if gamma is not None:
        f = f**gamma
    if weight is not None and f.shape[-1] > 1:  # as dice_loss (MONAI's rule)
        f = f * np.asarray(weight, dtype=np.float64)
    return _reduce(f, reduction)


def focal_tversky_loss(input, target, *, alpha=0.5, beta=0.5, gamma=0.75, **kwargs):
    """(Tversky loss per class) ** gamma."""
    return tversky_loss(input, target, alpha=alpha, beta=beta, gamma=gamma, **kwargs)


def generalized_dice_loss(input, target, *, w_type="square", activation="softmax",
                          include_background=True, smooth_nr=1e-5, smooth_dr=1e-5,
                          batch=False, ignore_index=None, reduction="mean"):
    """1 - (2 sum_c w_c I_c + snr) / (sum_c w_c (P_c + G_c) + sdr), w from G."""
    p, g, v, axes = _sums(input, target, activation, ignore_index, include_background, batch)
    pv = p * v
    inter = np.sum(pv * g, axis=axes)
    ps = np.sum(pv, axis=axes)
    gs = np.sum(g, axis=axes)
    with np.errstate(divide="ignore"):
        w = {"square": 1.0 / gs**2, "simple": 1.0 / gs, "uniform": np.ones_like(gs)}[w_type]
    finite_max = np.max(np.where(np.isinf(w), 0.0, w), axis=-1, keepdims=True)
    w = np.where(np.isinf(w), finite_max, w)
    f = 1.0 - (2 * np.sum(w * inter, axis=-1) + smooth_nr) / (
        np.sum(w * (ps + gs), axis=-1) + smooth_dr)
    return _reduce(np.atleast_1d(f), reduction)


def sensitivity_specificity_loss(input, target, *, r=0.05, activation="softmax",
                                 include_background=True, smooth_nr=0.0, smooth_dr=1e-5,
                                 batch=False, weight=None, ignore_index=None,
                                 reduction="mean"):
    """r sum (g-p)^2 g / sum g + (1-r) sum (g-p)^2 (1-g) / sum (1-g), masked."""
    p, g, v, axes = _sums(input, target, activation, ignore_index, include_background, batch)
    d2 = (g - p) ** 2
    sens = (np.sum(d2 * g, axis=axes) + smooth_nr) / (np.sum(g, axis=axes) + smooth_dr)
    spec = (np.sum(d2 * (1 - g) * v, axis=axes) + smooth_nr) / (
        np.sum((1 - g) * v, axis=axes) + smooth_dr)
    f = r * sens + (1 - r) * spec
    if weight is not None and f.shape[-1] > 1:  # as dice_loss (MONAI's rule)
        f = f * np.asarray(weight, dtype=np.float64)
    return _reduce(f, reduction)


def dice_ce_loss(input, target, *, lambda_dice=1.0, lambda_ce=1.0, include_background=True,
                 squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5,
                 batch=False, weight=None, ignore_index=None, sample_weight=None,
                 reduction="mean"):
    """lambda_dice * Dice(softmax) + lambda_ce * weighted pixel-wise cross-entropy."""
    x = np.asarray(input, dtype=np.float64)
    C = x.shape[1]
    c0 = 0 if include_background else 1
    dw = None if weight is None else np.asarray(weight, dtype=np.float64)[c0:]
    dice = dice_loss(x, target, activation="softmax", include_background=include_background,
                     squared_pred=squared_pred, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                     batch=batch, weight=dw, ignore_index=ignore_index, reduction=reduction,
                     jaccard=jaccard)
    logp = np.log(_activate(x, "softmax"))
    g, v = _targets(x, target, ignore_index)
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    wshape = (1, C) + (1,) * (x.ndim - 2)
    a = g * w.reshape(wshape)                       # per-class target weights
    sw = np.ones((x.shape[0],) + x.shape[2:]) if sample_weight is None else \
        np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), (x.shape[0],) + x.shape[2:])
    per_pos = -np.sum(a * logp, axis=1) * sw
    if reduction == "sum":
        ce = np.sum(per_pos)
    elif np.asarray(target).shape == x.shape:
        ce = np.sum(per_pos) / np.sum(sw)
    else:
        ce = np.sum(per_pos) / np.sum(a.sum(axis=1) * sw)
    return lambda_dice * dice + lambda_ce * ce


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """M[i, j] = #positions with target i and prediction j."""
    p = np.asarray(pred).ravel().astype(np.int64)
    t = np.asarray(target).ravel().astype(np.int64)
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    C = num_classes
    return np.bincount(t[keep] * C + p[keep], minlength=C * C).reshape(C, C)


def _scores(pred, target, num_classes, ignore_index, per_image, ignore_empty, empty_score,
            iou, multilabel=False):
    if multilabel:  # each channel of (N, C, ...) masks on its own
        p = np.asarray(pred).astype(bool)
        t = np.asarray(target).astype(bool)
        axes = tuple(i for i in range(p.ndim) if i != 1 and (i != 0 or not per_image))
        tp, st, sp = [np.sum(a, axis=axes).astype(np.float64) for a in (p & t, t, p)]
        num, den = (tp, st + sp - tp) if iou else (2 * tp, st + sp)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ignore_empty:
                return np.where(st == 0, np.nan, num / den)
            return np.where(den == 0, empty_score, num / den)
    if per_image:
        return np.stack([_scores(p, t, num_classes, ignore_index, False, ignore_empty,
                                 empty_score, iou)
                         for p, t in zip(np.asarray(pred), np.asarray(target))])
    cm = confusion_matrix(pred, target, num_classes, ignore_index).astype(np.float64)
    tp = np.diag(cm)
    st, sp = cm.sum(axis=1), cm.sum(axis=0)
    num, den = (tp, st + sp - tp) if iou else (2 * tp, st + sp)
    with np.errstate(divide="ignore", invalid="ignore"):
        if ignore_empty:  # MONAI: a class absent from the target is NaN
            return np.where(st == 0, np.nan, num / den)
        return np.where(den == 0, empty_score, num / den)


def dice_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
               ignore_empty=True, empty_score=np.nan, multilabel=False):
    """2 |P & T| / (|P| + |T|) per class (per image with per_image)."""
    return _scores(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                   empty_score, False, multilabel)


def iou_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
              ignore_empty=True, empty_score=np.nan, multilabel=False):
    """|P & T| / |P | T| per class (per image with per_image)."""
    return _scores(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                   empty_score, True, multilabel)
