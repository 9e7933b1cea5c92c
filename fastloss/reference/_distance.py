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
    for lab in np.unique(a):
        if lab == 0:
            continue
        m = a == lab
        d[m] = _edt(m, s)[m]
    if return_indices:
        raise NotImplementedError("reference: return_indices for label maps")
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
