"""NumPy/SciPy float64 oracle of the distance family: SciPy's EDT per label, KD-trees.

Written independently of the kernels' method: distance maps come from
``scipy.ndimage.distance_transform_edt`` (one call per label), surface
distances from a KD-tree over the spacing-scaled edge coordinates of the
whole image (no cropping), edges from ``scipy.ndimage.binary_erosion``.
"""

import math
import warnings

import numpy as np

__all__ = [
    "distance_transform",
    "surface_distances",
    "hausdorff_distance",
    "average_surface_distance",
    "surface_dice",
    "hausdorff_dt_loss",
    "boundary_loss",
    "unet_weight_map",
]


def _sampling(spacing, ndim):
    if spacing is None:
        return np.ones(ndim)
    s = np.asarray(spacing, dtype=np.float64)
    return np.full(ndim, float(s)) if s.ndim == 0 else s


def _edt(mask, sampling):
    """SciPy's EDT of a bool mask; inf where there is no zero element at all."""
    from scipy import ndimage

    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=sampling)


def distance_transform(mask_or_labels, spacing=None, *, signed=False, return_indices=False,
                       n_threads=None):
    """Reference of :func:`fastloss.distance_transform` (``return_indices`` is SciPy's)."""
    from scipy import ndimage

    a = np.asarray(mask_or_labels)
    s = _sampling(spacing, a.ndim)
    if signed:
        m = a != 0
        d = np.where(m, _edt(m, s), -_edt(~m, s))
        if return_indices:
            ii = ndimage.distance_transform_edt(m, sampling=s, return_indices=True)[1]
            io = ndimage.distance_transform_edt(~m, sampling=s, return_indices=True)[1]
            return d, np.where(m, ii, io)
        return d
    if a.dtype.kind in "bf":
        m = a != 0
        d = _edt(m, s)
        if return_indices:
            return d, ndimage.distance_transform_edt(m, sampling=s, return_indices=True)[1]
        return d
    d = np.zeros(a.shape)
    # label 0 is its own site; a label's voxels take SciPy's nearest voxel of
    # another label (-1 where there is none)
    ind = np.indices(a.shape) if return_indices else None
    for lab in np.unique(a):
        if lab == 0:
            continue
        m = a == lab
        d[m] = _edt(m, s)[m]
        if return_indices:
            if m.all():
                ind[:, m] = -1
            else:
                ind[:, m] = ndimage.distance_transform_edt(m, sampling=s,
                                                           return_indices=True)[1][:, m]
    if return_indices:
        return d, ind
    return d


# ------------------------------------------------------------ metrics

def _masks(pred, target, num_classes):
    """(N, C, *spatial) bool one-hot masks of both inputs."""
    p, t = np.asarray(pred), np.asarray(target)
    if num_classes is None:
        return p == 1, t == 1
    cls = np.arange(num_classes).reshape((1, -1) + (1,) * (p.ndim - 1))
    return p[:, None] == cls, t[:, None] == cls


def _edge(m):
    from scipy import ndimage

    if not m.any():
        return m
    return m ^ ndimage.binary_erosion(m, border_value=0)


def _directed(a, b, s):
    """Distances from the True points of a to the nearest True point of b (KD-tree)."""
    from scipy.spatial import cKDTree

    pa = np.argwhere(a) * s
    if not len(pa):
        return np.empty(0)
    pb = np.argwhere(b) * s
    if not len(pb):
        return np.full(len(pa), np.inf)
    return cKDTree(pb).query(pa, k=1)[0]


def _cases(pred, target, num_classes, spacing, include_background):
    P, T = _masks(pred, target, num_classes)
    s = _sampling(spacing, P.ndim - 2)
    c0 = 0 if (include_background or P.shape[1] == 1) else 1
    out = []
    for n in range(P.shape[0]):
        row = []
        for c in range(c0, P.shape[1]):
            pe, te = _edge(P[n, c]), _edge(T[n, c])
            row.append((_directed(pe, te, s), _directed(te, pe, s),
                        int(pe.sum()), int(te.sum()), c))
        out.append(row)
    return out


def _reduce(f, reduction):
    if reduction == "none":
        return f
    ok = ~np.isnan(f)
    z = np.where(ok, f, 0.0)
    if reduction == "sum":
        return z.sum()
    cnt = ok.sum(axis=1)
    per = np.where(cnt > 0, z.sum(axis=1) / np.maximum(cnt, 1), 0.0)
    nimg = (cnt > 0).sum()
    return per.sum() / nimg if nimg else 0.0


def _warn(npe, nte, c):
    if nte == 0:
        warnings.warn(f"the ground truth of class {c} is all 0, this may result in "
                      "nan/inf distance.", UserWarning, stacklevel=3)
    if npe == 0:
        warnings.warn(f"the prediction of class {c} is all 0, this may result in "
                      "nan/inf distance.", UserWarning, stacklevel=3)


def surface_distances(pred, target, *, num_classes=None, spacing=None,
                      include_background=False, n_threads=None):
    cases = _cases(pred, target, num_classes, spacing, include_background)
    return [[(a, b) for a, b, _, _, _ in row] for row in cases]


def hausdorff_distance(pred, target, *, num_classes=None, percentile=None, directed=False,
                       spacing=None, include_background=False, reduction="none",
                       mode="monai", n_threads=None):
    cases = _cases(pred, target, num_classes, spacing, include_background)
    f = np.empty((len(cases), len(cases[0]) if cases else 0))

    def stat(d):
        return d.max() if percentile is None else np.percentile(d, percentile)

    for n, row in enumerate(cases):
        for j, (a, b, npe, nte, c) in enumerate(row):
            _warn(npe, nte, c)
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = math.inf
            elif directed:
                f[n, j] = stat(a)
            elif mode == "pooled":
                f[n, j] = stat(np.concatenate((a, b)))
            else:
                f[n, j] = max(stat(a), stat(b))
    return _reduce(f, reduction)


def average_surface_distance(pred, target, *, num_classes=None, symmetric=False, spacing=None,
                             include_background=False, reduction="none", n_threads=None):
    cases = _cases(pred, target, num_classes, spacing, include_background)
    f = np.empty((len(cases), len(cases[0]) if cases else 0))
    for n, row in enumerate(cases):
        for j, (a, b, npe, nte, c) in enumerate(row):
            _warn(npe, nte, c)
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = math.inf
            else:
                f[n, j] = np.concatenate((a, b)).mean() if symmetric else a.mean()
    return _reduce(f, reduction)


def surface_dice(pred, target, class_thresholds, *, num_classes=None, spacing=None,
                 include_background=False, use_subvoxels=False, reduction="none",
                 n_threads=None):
    cases = _cases(pred, target, num_classes, spacing, include_background)
    tau = np.asarray(class_thresholds, dtype=np.float64)
    f = np.empty((len(cases), len(cases[0]) if cases else 0))
    for n, row in enumerate(cases):
        for j, (a, b, npe, nte, c) in enumerate(row):
            _warn(npe, nte, c)
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = 0.0
            else:
                f[n, j] = ((a <= tau[j]).sum() + (b <= tau[j]).sum()) / (npe + nte)
    return _reduce(f, reduction)


# ------------------------------------------------------------ losses

def _probs_and_targets(input, target, activation):
    x = np.asarray(input, dtype=np.float64)
    C = x.shape[1]
    if activation == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    elif activation == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-x))
    else:
        p = x
    t = np.asarray(target)
    if t.shape == x.shape and (t.dtype.kind in "fb" or C == 1):
        g = t.astype(np.float64)
    else:
        if t.ndim == x.ndim:
            t = t[:, 0]
        if C == 1:
            g = (t == 1).astype(np.float64)[:, None]
        else:
            g = np.stack([t == c for c in range(C)], axis=1).astype(np.float64)
    return x, p, g


def _scipy_field(mask, sampling):
    """MONAI's EDT(fg) + EDT(~fg), zero for a mask that is all one value."""
    from scipy import ndimage

    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return (ndimage.distance_transform_edt(mask, sampling=sampling)
            + ndimage.distance_transform_edt(~mask, sampling=sampling))


def _chain(x, p, dp, activation):
    if activation == "sigmoid":
        return dp * p * (1 - p)
    if activation == "softmax":
        return p * (dp - (p * dp).sum(axis=1, keepdims=True))
    return dp


def _loss_out(f, dfdp, x, p, c0, activation, batch, reduction, return_grad, log=False):
    N = f.shape[0]
    if batch:
        f = f.mean(axis=0)
    red = f if reduction == "none" else (f.sum() if reduction == "sum" else f.mean())
    dL = np.ones_like(f) if reduction != "mean" else np.full_like(f, 1.0 / f.size)
    out = red
    if log:
        out = np.log1p(red)
        dL = dL / (1.0 + red)
    if not return_grad:
        return out
    if batch:
        dL = np.broadcast_to(dL / N, (N,) + dL.shape)
    full = np.zeros(x.shape[:2])
    full[:, c0:] = dL
    dp = dfdp * full.reshape(full.shape + (1,) * (x.ndim - 2))
    return out, _chain(x, p, dp, activation)


def hausdorff_dt_loss(input, target, *, alpha=2.0, log=False, activation="softmax",
                      include_background=False, batch=False, reduction="mean",
                      return_grad=False, n_threads=None):
    x, p, g = _probs_and_targets(input, target, activation)
    c0 = 0 if (include_background or x.shape[1] == 1) else 1
    p_, g_ = p[:, c0:], g[:, c0:]
    w = np.zeros(p_.shape)
    for n in range(p_.shape[0]):
        for c in range(p_.shape[1]):
            w[n, c] = (_scipy_field(p_[n, c] > 0.5, None) ** alpha
                       + _scipy_field(g_[n, c] > 0.5, None) ** alpha)
    S = np.prod(x.shape[2:])
    axes = tuple(range(2, x.ndim))
    f = ((p_ - g_) ** 2 * w).sum(axis=axes) / S
    dfdp = np.zeros(x.shape)
    dfdp[:, c0:] = 2 * (p_ - g_) * w / S
    return _loss_out(f, dfdp, x, p, c0, activation, batch, reduction, return_grad, log)


def boundary_loss(input, target, spacing=None, *, activation="softmax", include_background=True,
                  batch=False, reduction="mean", return_grad=False, n_threads=None):
    from scipy import ndimage

    x, p, g = _probs_and_targets(input, target, activation)
    c0 = 0 if (include_background or x.shape[1] == 1) else 1
    p_, g_ = p[:, c0:], g[:, c0:]
    phi = np.zeros(p_.shape)
    for n in range(p_.shape[0]):
        for c in range(p_.shape[1]):
            m = g_[n, c] > 0.5
            if m.any() and not m.all():
                phi[n, c] = np.where(m, 1.0 - ndimage.distance_transform_edt(m, sampling=spacing),
                                     ndimage.distance_transform_edt(~m, sampling=spacing))
    S = np.prod(x.shape[2:])
    f = (p_ * phi).sum(axis=tuple(range(2, x.ndim))) / S
    dfdp = np.zeros(x.shape)
    dfdp[:, c0:] = phi / S
    return _loss_out(f, dfdp, x, p, c0, activation, batch, reduction, return_grad)


def unet_weight_map(labels, w0=10.0, sigma=5.0, class_weight="balanced", instances=None, *,
                    n_threads=None):
    from scipy import ndimage

    lab = np.asarray(labels)
    out = np.empty(lab.shape)
    for n in range(lab.shape[0]):
        ln = lab[n]
        inst = ndimage.label(ln != 0)[0] if instances is None else np.asarray(instances)[n]
        if class_weight is None:
            w = np.ones(ln.shape)
        elif isinstance(class_weight, str):
            vals, cnt = np.unique(ln, return_counts=True)
            table = dict(zip(vals.tolist(), (ln.size / (len(vals) * cnt)).tolist()))
            w = np.vectorize(table.get)(ln).astype(np.float64)
        else:
            w = np.asarray(class_weight, dtype=np.float64)[ln]
        ids = [i for i in np.unique(inst) if i != 0]
        if len(ids) >= 2 and w0 > 0:
            d = np.sort(np.stack([ndimage.distance_transform_edt(inst != i) for i in ids]), axis=0)
            border = w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))
            w = w + np.where(ln == 0, border, 0.0)
        out[n] = w
    return out
