r"""Exact Euclidean distance transforms, surface-distance metrics, distance losses.

``distance_transform`` is the exact Euclidean distance transform (the
values of ``scipy.ndimage.distance_transform_edt``), multi-threaded, with
anisotropic spacing, a multi-label mode and signed maps.  On it rest the
losses ``hausdorff_dt_loss`` and ``boundary_loss`` (MONAI's
``HausdorffDTLoss`` / ``BoundaryLoss``, with gradients) and the U-Net
edge weights ``unet_weight_map``.  The metrics
(Hausdorff distance and its percentiles, average surface distance, surface
Dice) follow MONAI 1.6 on label maps ``(N, *spatial)`` and one-hot masks
``(N, C, *spatial)``:

* the surface of a class is its set of *edge voxels*: voxels of the class
  with a face neighbour outside it, the outside of the image counting as
  background (``mask ^ binary_erosion(mask)``, face connectivity);
* distances are between voxel centres, in the units of ``spacing`` (one
  value per array axis, in array-axis order);
* for each (image, class) the distances from every predicted edge voxel to
  the nearest target edge voxel, and back, are computed inside the union
  bounding box of the class by an exact EDT whose sites are the edge
  voxels.

Empty masks (MONAI's rules): a class absent from both ``pred`` and
``target`` gives NaN; absent from one of them gives ``inf`` (Hausdorff,
average surface distance) or 0 (surface Dice), with a ``UserWarning``.
One deliberate difference: with a ``percentile`` and one empty mask the
Hausdorff distance is ``inf``, where MONAI returns NaN (MONAI issue #9095:
its NaN is then dropped by the mean, so a missed structure improves the
reported HD95).
"""

import math
import numbers
import threading
import warnings

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("distance")

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

_NO_FEAT = np.empty(0, dtype=np.int64)
_BOX_CODES = {np.uint8: 0, np.int8: 1, np.int16: 2, np.int32: 3, np.int64: 4}
_METRIC_REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------ validation

def _spacing(spacing, ndim, name="spacing"):
    """One positive finite float64 per spatial axis."""
    if spacing is None:
        return np.ones(ndim, dtype=np.float64)
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        s = np.full(ndim, float(spacing))
    else:
        try:
            s = np.asarray(spacing, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a sequence of {ndim} numbers, got {spacing!r}"
            ) from None
        if s.ndim != 1 or s.shape[0] != ndim:
            raise ValueError(
                f"{name} must have one value per spatial axis ({ndim}), got {s.tolist()}"
            )
    if not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"{name} must be finite and positive, got {s.tolist()}")
    return np.ascontiguousarray(s)


def _edt_flat(lab, shape, spacing, zero_bg, want_feat, take_sqrt, nt, skip=0, out=None):
    """Run the kernel on a C-contiguous integer array; (out, feat or None).

    The first ``skip`` axes are a batch of independent volumes (``spacing``
    has one value per axis, those of the batch axes unused).  ``out``: a
    float64 array of lab.size elements to write into."""
    if out is None:
        out = np.empty(lab.size, dtype=np.float64)
    feat = np.empty(lab.size, dtype=np.int64) if want_feat else _NO_FEAT
    shp = np.asarray(shape, dtype=np.int64)
    lab, spacing = np.ascontiguousarray(lab), np.ascontiguousarray(spacing, dtype=np.float64)
    if lab.size != out.size or shp.size != spacing.size or int(np.prod(shp)) != lab.size:
        raise AssertionError("_edt_flat: inconsistent sizes")
    if not 0 <= skip < shp.size:
        raise AssertionError("_edt_flat: no axis to transform")
    rc = _k.edt_sq(lab.ctypes.data, lab.dtype.itemsize, lab.size, shp.ctypes.data, shp.size,
                   skip, spacing.ctypes.data, zero_bg, out.ctypes.data, feat.ctypes.data,
                   want_feat, take_sqrt, nt)
    if rc:
        raise MemoryError("fastloss: cannot allocate the distance-transform scratch buffers")
    return out.reshape(shape), (feat.reshape(shape) if want_feat else None)


def _as_mask_u8(a):
    """Non-zero elements as a uint8 0/1 array (a view of a bool array)."""
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    return (a != 0).view(np.uint8)


# ------------------------------------------------------------ distance transform

def distance_transform(mask_or_labels, spacing=None, *, signed=False, return_indices=False,
                       n_threads=None):
    r"""Exact Euclidean distance transform, :math:`d(x) = \min_{y \in B} \|(x - y) \odot s\|_2`.

    For a mask (bool or float: non-zero is the object), :math:`B` is the set
    of zero elements, so every object voxel gets its distance to the
    nearest background voxel and background voxels get 0: the values of
    ``scipy.ndimage.distance_transform_edt(mask, sampling=spacing)``.  For
    an integer label map (multi-label mode, as the ``edt`` package), a
    voxel of label :math:`l \ne 0` gets its distance to the nearest voxel
    whose label is not :math:`l` (label 0 is background, distance 0); a
    0/1 label map is a mask.

    Parameters
    ----------
    mask_or_labels : array_like, shape (d1, ..., dk), k >= 1
        bool or float mask, or integer label map.
    spacing : float or sequence of k floats, optional
        Voxel size along each array axis (SciPy's ``sampling``); finite and
        positive.  Default 1.
    signed : bool
        Signed distance map of the mask ``mask_or_labels != 0``:
        :math:`d_{in}(x) - d_{out}(x)`, positive inside (the distance to the
        nearest outside voxel) and negative outside (minus the distance to
        the nearest inside voxel), the convention of ``edt.sdf``.
    return_indices : bool
        Also return the nearest site of every voxel, shape (k, d1, ..., dk)
        (SciPy's feature transform; the nearest zero element, or for
        ``signed`` the nearest voxel of the other side; ties may resolve to
        a different site than SciPy's at the same distance).  -1 where
        there is no site.
    n_threads : int, optional
        See :func:`fastloss.set_num_threads`.  The result does not depend on it.

    Returns
    -------
    distances : ndarray of float64, the input's shape
    indices : ndarray of int32 (int64 above 2**31 - 1 voxels), shape ``(k, *shape)``
        Only with ``return_indices=True``.

    Notes
    -----
    Separable: one pass per axis, each a lower envelope of parabolas
    (Felzenszwalb & Huttenlocher 2012) over squared distances in float64,
    O(k * voxels) work, 8 bytes per voxel for the result plus a per-thread
    scratch of 64 lines of the longest axis; with ``return_indices``, 8 more
    bytes per voxel during the transform and the index array itself.  Where a
    voxel has no site at all (a mask with no background, a label map of a
    single non-zero label) the distance is ``inf``; SciPy returns distances
    to a phantom point outside the image there (SciPy issue #15585).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.distance_transform(np.array([0, 1, 1, 1, 1, 0]))
    array([0., 1., 2., 2., 1., 0.])
    >>> fastloss.distance_transform(np.array([[0, 1, 1]]), spacing=(1.0, 0.5))
    array([[0. , 0.5, 1. ]])
    >>> fastloss.distance_transform(np.array([1, 1, 2, 2, 2, 0]))
    array([2., 1., 1., 2., 1., 0.])
    >>> fastloss.distance_transform(np.array([0, 1, 1, 0]) > 0, signed=True)
    array([-1.,  1.,  1., -1.])
    """
    a = np.asarray(mask_or_labels)
    kind = a.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"mask_or_labels must be a bool, integer or float array, got dtype {a.dtype}"
        )
    if a.ndim == 0:
        raise ValueError("mask_or_labels must have at least one axis, got a 0-d array")
    s = _spacing(spacing, a.ndim)
    nt = V.threads(n_threads)
    signed = bool(signed)
    if signed or kind in "bf":
        lab = np.ascontiguousarray(_as_mask_u8(a))
    else:
        lab = V.as_labels(a, "mask_or_labels")
    d, feat = _edt_flat(lab, a.shape, s, not signed, bool(return_indices), True, nt)
    if signed:
        np.negative(d, out=d, where=(lab == 0))
    if not return_indices:
        return d
    itype = np.int32 if a.size < 2**31 else np.int64
    ind = np.empty((a.ndim,) + a.shape, dtype=itype)
    if a.size:
        none = feat < 0
        ind[...] = np.unravel_index(np.where(none, 0, feat), a.shape)
        ind[:, none] = -1
    return d, ind


# ------------------------------------------------------------ metrics: inputs

class _Cases:
    """Validated metric inputs: per-(image, class) edge voxels (up to 3-D) or
    class boxes to extract them from (more axes)."""

    edges = None


def _metric_inputs(pred, target, num_classes, include_background, spacing, n_threads):
    c = _Cases()
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"target must have the same shape as pred {p.shape}, got {t.shape}")
    c.nt = V.threads(n_threads)
    if num_classes is not None:
        C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
        if p.ndim < 2:
            raise ValueError(
                f"pred must be a label map (N, *spatial) with at least one spatial axis, "
                f"got shape {p.shape}"
            )
        c.onehot = False
        c.p, c.t = V.as_labels(p, "pred"), V.as_labels(t, "target")
        c.N, c.C, c.spatial = p.shape[0], C, p.shape[1:]
        c.c0 = 0 if (include_background or c.C == 1) else 1
        S = math.prod(c.spatial)
        if len(c.spatial) <= 3:
            c.edges = _both(lambda name, lab, nt: _edge_lists(lab.reshape(c.N, S), c.spatial, C,
                                                             c.c0, nt, name),
                            (("pred", c.p), ("target", c.t)), c.nt)
        else:
            c.boxes = [_boxes(lab.reshape(c.N, S), c.spatial, C, c.nt, name)
                       for name, lab in (("pred", c.p), ("target", c.t))]
    else:
        if p.ndim < 3:
            raise ValueError(
                f"pred must be one-hot (N, C, *spatial) with at least one spatial axis "
                f"(or a label map with num_classes), got shape {p.shape}"
            )
        c.onehot = True
        c.N, c.C, c.spatial = p.shape[0], p.shape[1], p.shape[2:]
        c.p, c.t = _binary(p, "pred"), _binary(t, "target")
        c.p8, c.t8 = c.p.view(np.uint8), c.t.view(np.uint8)
        S, D = math.prod(c.spatial), len(c.spatial)
        c.c0 = 0 if (include_background or c.C == 1) else 1
        if D <= 3:
            # each channel a {0, 1} label map whose class 1 is the mask
            c.edges = _both(lambda name, m, nt: _edge_lists(m.reshape(c.N * c.C, S), c.spatial,
                                                           2, 1, nt, name),
                            (("pred", c.p8), ("target", c.t8)), c.nt)
        else:
            c.boxes = [_boxes(m.reshape(c.N * c.C, S), c.spatial, 2, c.nt, name)
                       [:, 1].reshape(c.N, c.C, 2 * D)
                       for name, m in (("pred", c.p8), ("target", c.t8))]
    c.ndim = len(c.spatial)
    c.spacing = _spacing(spacing, c.ndim)
    return c


def _both(fn, pairs, nt):
    """[fn(name, array, threads) for the (name, array) pairs]: with several
    threads, the two inputs on two Python threads, each kernel on one
    thread.  The edge passes are short (about a millisecond per 160^3 map):
    an OpenMP team would wait at every barrier for a thread that another
    process on the machine has delayed, two independent threads do not.
    Each result is computed the same way whichever thread runs it."""
    if nt < 2:
        return [fn(name, a, 1) for name, a in pairs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(pairs)) as pool:
        futures = [pool.submit(fn, name, a, 1) for name, a in pairs]
        return [f.result() for f in futures]


def _binary(a, name):
    """A one-hot mask as a C-contiguous bool array; values must be 0 or 1."""
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a bool, integer or float mask, got dtype {a.dtype}")
    if a.dtype != np.bool_:
        one = a == 1
        if not np.all(one | (a == 0)):
            raise ValueError(
                f"{name} must be a binary (0/1) one-hot mask; threshold probabilities first "
                "or pass label maps with num_classes"
            )
        a = one
    return np.ascontiguousarray(a)


def _boxes(lab2d, spatial, C, nt, name):
    box = np.empty((lab2d.shape[0], C, 2 * len(spatial)), dtype=np.int64)
    shp = np.asarray(spatial, dtype=np.int64)
    box[..., :len(spatial)] = shp
    box[..., len(spatial):] = -1
    lab2d = np.ascontiguousarray(lab2d)
    if box.size == 0 or lab2d.size == 0:
        return box
    bad = _k.class_bboxes(lab2d.ctypes.data, _BOX_CODES[lab2d.dtype.type], lab2d.shape[0],
                          lab2d.shape[1], shp.ctypes.data, shp.size, C, box.ctypes.data, nt)
    if bad >= 0:
        raise V.label_error(lab2d.reshape(-1), bad, C, None, name)
    return box


def _edges(m):
    """Edge voxels: ``m`` and a face neighbour outside ``m`` or outside the array."""
    inner = m.copy()
    for ax in range(m.ndim):
        lo = [slice(None)] * m.ndim
        hi = [slice(None)] * m.ndim
        lo[ax], hi[ax] = slice(1, None), slice(None, -1)
        inner[tuple(lo)] &= m[tuple(hi)]
        inner[tuple(hi)] &= m[tuple(lo)]
        lo[ax] = 0
        inner[tuple(lo)] = False
        lo[ax] = -1
        inner[tuple(lo)] = False
    return m & ~inner


def _edge_lists(lab2d, spatial, C, c0, nt, name):
    """Edge voxels of every class >= c0 of M label maps (M, S), in one kernel
    pass (counts) and a second (coordinates).  Returns (coords, bounds): the
    edges of class k in map m are coords[bounds[m * C + k]:bounds[m * C + k + 1]],
    int64 (count, D) in C order."""
    D = len(spatial)
    lab2d = np.ascontiguousarray(lab2d)
    M, S = lab2d.shape
    sh = np.array((1,) * (3 - D) + tuple(spatial), dtype=np.int64)
    nu = int(sh[0])  # the kernel's units: planes
    cnt = np.empty((M, nu, C), dtype=np.int64)
    if M * S == 0:
        return np.empty((0, D), dtype=np.int64), np.zeros(M * C + 1, dtype=np.int64)
    code = _BOX_CODES[lab2d.dtype.type]
    bad = _k.edges_all(lab2d.ctypes.data, code, M, S, sh.ctypes.data, D, C, c0,
                       cnt.ctypes.data, 0, nt)
    if bad == -2:
        raise MemoryError("fastloss: cannot allocate the edge buffers")
    if bad >= 0:
        raise V.label_error(lab2d.reshape(-1), bad, C, None, name)
    # output rows ordered by (map, class, unit): each class's edges in C order
    starts = np.zeros(M * C * nu + 1, dtype=np.int64)
    np.cumsum(cnt.transpose(0, 2, 1).reshape(-1), out=starts[1:])
    coords = np.empty((int(starts[-1]), D), dtype=np.int64)
    if coords.size:
        # a copy: the kernel advances these positions as it writes
        pos = starts[:-1].reshape(M, C, nu).transpose(0, 2, 1).copy()
        _k.edges_all(lab2d.ctypes.data, code, M, S, sh.ctypes.data, D, C, c0, pos.ctypes.data,
                     coords.ctypes.data, nt)
    return coords, starts[::nu]


def _case(c, n, k):
    """Edge-voxel coordinates (int64 (count, D), C order) of class k in image n
    of pred and target, in the union box of the class, and the box's shape."""
    D = c.ndim
    if c.edges is not None:
        i, C = (n * c.C + k, 2) if c.onehot else (n, c.C)
        kk = 1 if c.onehot else k
        sides = [co[b[i * C + kk]:b[i * C + kk + 1]] for co, b in c.edges]
        if not (len(sides[0]) or len(sides[1])):
            empty = np.empty((0, D), dtype=np.int64)
            return empty, empty, (1,) * D
        # column by column: NumPy's axis-0 reduction of a (count, 3) array is
        # about ten times slower than three strided 1-D ones
        both = [e for e in sides if len(e)]
        lo = np.array([min(int(e[:, a].min()) for e in both) for a in range(D)])
        hi = np.array([max(int(e[:, a].max()) for e in both) for a in range(D)])
        return sides[0] - lo, sides[1] - lo, tuple(int(v) for v in hi - lo + 1)
    bp, bt = c.boxes[0][n, k], c.boxes[1][n, k]
    lo = np.minimum(bp[:D], bt[:D])
    hi = np.maximum(bp[D:], bt[D:])
    if np.any(hi < lo):
        empty = np.empty((0, D), dtype=np.int64)
        return empty, empty, (1,) * D
    sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))
    if c.onehot:
        views, value = (c.p8[(n, k) + sl], c.t8[(n, k) + sl]), 1
    else:
        views, value = (c.p[(n,) + sl], c.t[(n,) + sl]), k
    box = tuple(int(b - a) + 1 for a, b in zip(lo, hi))
    return _edge_coords(views[0], value), _edge_coords(views[1], value), box


def _edge_coords(v, value):
    """Coordinates of the edge voxels of ``v == value`` (border = background)."""
    D = v.ndim
    if D > 3:
        return np.argwhere(_edges(v == value))
    pad = 3 - D
    shape = np.array((1,) * pad + v.shape, dtype=np.int64)
    strides = np.array((0,) * pad + tuple(s // v.itemsize for s in v.strides), dtype=np.int64)
    cap = v.size // 4 + 1024
    while True:
        out = np.empty((cap, D), dtype=np.int64)
        cnt = _k.edge_coords(v.ctypes.data, _BOX_CODES[v.dtype.type], strides.ctypes.data,
                             shape.ctypes.data, D, int(value), out.ctypes.data, cap)
        if cnt >= 0:
            return out[:cnt]
        cap = v.size


# The k-d tree answers a query in O(log k); the EDT costs O(box) however few
# the edges.  The tree is used when the edges are fewer than 1/KD_RATIO of
# the box's voxels (both are exact).
_KD_RATIO = 16
# (queries x sites) up to which the far queries scan every site (about
# 1 ns per pair) rather than build a k-d tree (about 100 ns per site)
_BRUTE_MAX = 1 << 21


def _directed(src, dst, box, spacing, nt):
    """Distances from every ``src`` edge voxel to the nearest ``dst`` edge voxel
    (coordinate arrays in a box of shape ``box``)."""
    ns, nd = len(src), len(dst)
    if ns == 0:
        return np.empty(0, dtype=np.float64)
    if nd == 0:
        return np.full(ns, np.inf)
    if len(box) <= 3 and (ns + nd) * _KD_RATIO < math.prod(box):
        # first the few nearest offsets by lookup (most surface voxels of two
        # similar masks are within two voxels of the other surface), then a
        # k-d tree for the rest
        d2 = np.empty(ns, dtype=np.float64)
        offs, offd2 = _offsets(tuple(spacing.tolist()), _REACH)
        src = np.ascontiguousarray(src, dtype=np.int64)
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        shp = np.asarray(box, dtype=np.int64)
        miss = _k.local_sq(dst.ctypes.data, nd, src.ctypes.data, ns, len(box), shp.ctypes.data,
                           offs.ctypes.data, offd2.ctypes.data, len(offd2), d2.ctypes.data, nt)
        if miss < 0:
            raise MemoryError("fastloss: cannot allocate the site map")
        if miss:
            rest = np.flatnonzero(d2 < 0)
            # coordinates times spacing, as MONAI's KD-tree path
            sites = np.ascontiguousarray(dst * spacing)
            queries = np.ascontiguousarray(src[rest] * spacing)
            dr = np.empty(len(rest), dtype=np.float64)
            if len(rest) * nd <= _BRUTE_MAX:
                # a few far queries: scanning every site beats building a tree
                sT = np.ascontiguousarray(sites.T)
                _k.brute_sq(sT.ctypes.data, nd, queries.ctypes.data, len(rest), len(box),
                            dr.ctypes.data, nt)
            elif _k.nearest_sq(sites.ctypes.data, nd, queries.ctypes.data, len(rest), len(box),
                               dr.ctypes.data, nt):
                raise MemoryError("fastloss: cannot allocate the k-d tree")
            d2[rest] = dr
        return np.sqrt(d2)
    sites = np.ones(box, dtype=np.uint8)
    sites[tuple(dst.T)] = 0
    d2, _ = _edt_flat(sites, box, spacing, True, False, False, nt)
    return np.sqrt(d2[tuple(src.T)])


_OFFSETS = {}


_REACH = 6  # the lookup's offsets reach this many voxels along each axis


def _offsets(spacing, reach):
    """Every offset with |o_a| <= reach on each axis, shorter than
    (reach + 1) * min(spacing), sorted by squared physical length: any
    offset left out is at least that long, so the first site found along
    this table is a nearest one."""
    key = (spacing, reach)
    if key not in _OFFSETS:
        D = len(spacing)
        w = np.asarray(spacing)
        o = np.stack(np.meshgrid(*([np.arange(-reach, reach + 1)] * D), indexing="ij"),
                     -1).reshape(-1, D)
        d2 = ((o * w) ** 2).sum(axis=1)
        keep = d2 < ((reach + 1) * w.min()) ** 2
        order = np.argsort(d2[keep], kind="stable")
        _OFFSETS[key] = (np.ascontiguousarray(o[keep][order], dtype=np.int64),
                         np.ascontiguousarray(d2[keep][order]))
    return _OFFSETS[key]


def _all_distances(c, symmetric, warn=True):
    """Per (image, used class): (pred->gt, gt->pred or None, n_pred_edges, n_gt_edges).

    The (image, class) cases, then their directed distances, are shared out
    over ``c.nt`` Python threads (the kernels release the GIL), each kernel
    on one thread: the cases are small, and one thread per case keeps both
    cores busy where the parallel regions of one small case would not.  A
    single case keeps the kernels' own threads.  Each result is computed the
    same way whichever thread runs it.
    """
    jobs = [(n, k) for n in range(c.N) for k in range(c.c0, c.C)]
    pool = None
    nt = c.nt
    if c.nt > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(min(c.nt, 2 * len(jobs)))
        nt = 1
    try:
        run = pool.map if pool is not None else map
        cases = list(run(lambda j: _case(c, *j), jobs))
        tasks = [(i, 0) for i in range(len(jobs))]
        if symmetric:
            tasks += [(i, 1) for i in range(len(jobs))]

        def directed(task):
            i, back = task
            pe, te, box = cases[i]
            return _directed(te, pe, box, c.spacing, nt) if back else \
                _directed(pe, te, box, c.spacing, nt)

        dists = list(run(directed, tasks))
    finally:
        if pool is not None:
            pool.shutdown()
    out = []
    for i, (_, k) in enumerate(jobs):
        if k == c.c0:
            out.append([])
        npe, nte = len(cases[i][0]), len(cases[i][1])
        if warn and nte == 0:
            warnings.warn(f"the ground truth of class {k} is all 0, this may result in "
                          "nan/inf distance.", UserWarning, stacklevel=3)
        if warn and npe == 0:
            warnings.warn(f"the prediction of class {k} is all 0, this may result in "
                          "nan/inf distance.", UserWarning, stacklevel=3)
        dgp = dists[len(jobs) + i] if symmetric else None
        out[-1].append((dists[i], dgp, npe, nte))
    return out


def _reduce(f, reduction):
    """MONAI's do_metric_reduction for 'mean' and 'sum' (NaN skipped, inf kept)."""
    V.check_reduction(reduction, _METRIC_REDUCTIONS)
    if reduction == "none":
        return f
    ok = ~np.isnan(f)
    z = np.where(ok, f, 0.0)
    if reduction == "sum":
        return np.float64(z.sum())
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore"):
        per = np.where(cnt > 0, z.sum(axis=1) / np.maximum(cnt, 1), 0.0)
    nimg = int((cnt > 0).sum())
    return np.float64(per.sum() / nimg) if nimg else np.float64(0.0)


def _check_percentile(percentile):
    if percentile is None:
        return None
    return V.check_scalar(percentile, "percentile", 0.0, 100.0)


# ------------------------------------------------------------ metrics: public

_SHAPES_DOC = """\
pred, target : array_like, same shape
    Label maps (N, d1, ..., dk) of integers with ``num_classes``, or
    one-hot masks (N, C, d1, ..., dk) of bool / 0-1 integers / 0-1 floats
    without it (MONAI's layout; other values are a ValueError).
num_classes : int, optional
    Number of classes of label maps; every label must lie in [0, num_classes).
spacing : float or sequence of k floats, optional
    Voxel size per spatial axis, in array-axis order (default 1).
include_background : bool
    Include class 0 (default False, as MONAI; a single class is always kept)."""

_shapes_doc = doc(shapes=_SHAPES_DOC)


@_shapes_doc
def surface_distances(pred, target, *, num_classes=None, spacing=None,
                      include_background=False, n_threads=None):
    r"""Raw surface distances per (image, class), for several statistics from one pass.

    For image n and class c, with :math:`\partial P` and :math:`\partial T` the
    edge voxels of the prediction and the target (face-connected erosion,
    the image border counting as background), returns
    :math:`d_{PT}(p) = \min_{t \in \partial T} \|(p - t) \odot s\|` for every
    :math:`p \in \partial P` and :math:`d_{TP}` the other way.

    Parameters
    ----------
    %(shapes)s
    %(n_threads)s

    Returns
    -------
    list of N lists of C' tuples ``(pred_to_target, target_to_pred)``
        float64 arrays, one distance per edge voxel in C order of the voxel
        positions.  An empty edge set gives an empty array; when only the
        other side is empty, the distances are ``inf`` (MONAI's
        ``get_surface_distance``).  C' = C, or C - 1 without the background.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.zeros((1, 5), dtype=int); p[0, 1] = 1
    >>> t = np.zeros((1, 5), dtype=int); t[0, 4] = 1
    >>> [(a.tolist(), b.tolist()) for a, b in fastloss.surface_distances(p, t, num_classes=2)[0]]
    [([3.0], [3.0])]
    """
    c = _metric_inputs(pred, target, num_classes, include_background, spacing, n_threads)
    return [[(d[0], d[1]) for d in row] for row in _all_distances(c, True, warn=False)]



@_shapes_doc
def hausdorff_distance(pred, target, *, num_classes=None, percentile=None, directed=False,
                       spacing=None, include_background=False, reduction="none",
                       mode="monai", n_threads=None):
    r"""Hausdorff distance (or a percentile of it) per image and class, MONAI 1.6 semantics.

    .. math::

        HD_q = \max\big(Q_q(d_{PT}),\ Q_q(d_{TP})\big)

    with :math:`d_{PT}`, :math:`d_{TP}` the directed surface distances (see
    :func:`surface_distances`) and :math:`Q_q` the q-th percentile with
    linear interpolation (``torch.quantile``), or the maximum when
    ``percentile`` is None.  ``directed=True`` keeps :math:`Q_q(d_{PT})`.

    Parameters
    ----------
    %(shapes)s
    percentile : float in [0, 100], optional
        95 gives HD95.  0 is the minimum (MONAI treats 0 as None, the maximum).
    directed : bool
        Prediction-to-target only.
    reduction : {'none', 'mean', 'sum'}
        'none': the (N, C') array; 'mean' and 'sum' as MONAI's
        ``do_metric_reduction`` (NaN skipped, inf kept; 'mean' averages
        the classes of each image, then the images).
    mode : {'monai', 'pooled'}
        'pooled' takes the percentile of both directions' distances
        together (medpy's ``hd95``); the maximum is the same in both modes.
    %(n_threads)s

    Returns
    -------
    ndarray (N, C') of float64, or a float64 scalar with a reduction.
    Both masks empty: NaN; one empty: ``inf`` with a ``UserWarning`` (also
    with a percentile, where MONAI returns NaN: MONAI issue #9095).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> t = np.zeros((1, 8, 8), dtype=np.uint8); t[0, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=2)
    >>> fastloss.hausdorff_distance(p, t, num_classes=2)
    array([[2.]])
    >>> fastloss.hausdorff_distance(p, t, num_classes=2, spacing=(1.0, 0.5))
    array([[1.]])
    """
    q = _check_percentile(percentile)
    if mode not in ("monai", "pooled"):
        raise ValueError(f"mode must be 'monai' or 'pooled', got {mode!r}")
    V.check_reduction(reduction, _METRIC_REDUCTIONS)
    c = _metric_inputs(pred, target, num_classes, include_background, spacing, n_threads)
    dists = _all_distances(c, not directed)
    f = np.empty((c.N, c.C - c.c0), dtype=np.float64)
    for n, row in enumerate(dists):
        for j, (dpg, dgp, npe, nte) in enumerate(row):
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = math.inf
            elif directed:
                f[n, j] = _stat(dpg, q)
            elif mode == "pooled":
                f[n, j] = _stat(np.concatenate((dpg, dgp)), q)
            else:
                f[n, j] = max(_stat(dpg, q), _stat(dgp, q))
    return _reduce(f, reduction)



def _stat(d, q):
    if q is None:
        return float(d.max())
    return float(np.percentile(d, q))


@_shapes_doc
def average_surface_distance(pred, target, *, num_classes=None, symmetric=False, spacing=None,
                             include_background=False, reduction="none", n_threads=None):
    r"""Average surface distance per image and class, MONAI 1.6 semantics.

    Directed (default, MONAI's): :math:`\mathrm{mean}(d_{PT})`.  Symmetric
    (ASSD): the mean of both directions pooled,
    :math:`(\sum d_{PT} + \sum d_{TP}) / (|\partial P| + |\partial T|)`
    (MONAI ``symmetric=True``, medpy ``assd`` 0.5.2).

    Parameters
    ----------
    %(shapes)s
    symmetric : bool
    reduction : {'none', 'mean', 'sum'}
        As in :func:`hausdorff_distance`.
    %(n_threads)s

    Returns
    -------
    ndarray (N, C') of float64, or a float64 scalar with a reduction.
    Both masks empty: NaN; one empty: ``inf`` (with a ``UserWarning``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> t = np.zeros((1, 8, 8), dtype=np.uint8); t[0, 2:5, 2:5] = 1
    >>> p = np.roll(t, 1, axis=1)
    >>> fastloss.average_surface_distance(p, t, num_classes=2, symmetric=True)
    array([[0.5]])
    """
    V.check_reduction(reduction, _METRIC_REDUCTIONS)
    c = _metric_inputs(pred, target, num_classes, include_background, spacing, n_threads)
    dists = _all_distances(c, bool(symmetric))
    f = np.empty((c.N, c.C - c.c0), dtype=np.float64)
    for n, row in enumerate(dists):
        for j, (dpg, dgp, npe, nte) in enumerate(row):
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = math.inf
            elif symmetric:
                f[n, j] = (dpg.sum() + dgp.sum()) / (dpg.size + dgp.size)
            else:
                f[n, j] = dpg.mean()
    return _reduce(f, reduction)



@_shapes_doc
def surface_dice(pred, target, class_thresholds, *, num_classes=None, spacing=None,
                 include_background=False, use_subvoxels=False, reduction="none",
                 n_threads=None):
    r"""Normalised surface Dice at a tolerance per class, MONAI 1.6 semantics.

    .. math::

        NSD_c = \frac{|\{d_{PT} \le \tau_c\}| + |\{d_{TP} \le \tau_c\}|}
                     {|\partial P| + |\partial T|}

    every edge voxel counting 1 (MONAI's default ``use_subvoxels=False``;
    Seidlitz et al., arXiv 2111.05408).  With ``use_subvoxels=True`` each
    surface element :math:`s` (a point of the voxel-corner grid) counts its
    area :math:`a_s`:
    :math:`\big(\sum_{d_{PT}(s) \le \tau_c} a_s + \sum_{d_{TP}(s) \le \tau_c} a_s\big)
    / \big(\sum_{s \in \partial P} a_s + \sum_{s \in \partial T} a_s\big)`.

    Parameters
    ----------
    %(shapes)s
    class_thresholds : sequence of C' floats
        Tolerance :math:`\tau_c` of each used class, in the units of
        ``spacing``; finite and >= 0.
    use_subvoxels : bool
        MONAI's ``use_subvoxels=True`` (DeepMind's ``surface_dice_at_tolerance``
        up to its surfel details): the surface elements are the points of the
        voxel-corner grid between inside and outside, each weighted by the
        surface area (3-D) or contour length (2-D) of its neighbour
        configuration, from DeepMind's lookup table as MONAI ships it
        (needs MONAI installed; 2-D and 3-D images).  Computed class by class
        with NumPy: slower than the default.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`hausdorff_distance`.
    %(n_threads)s

    Returns
    -------
    ndarray (N, C') of float64 in [0, 1], or a float64 scalar with a reduction.
    Both masks empty: NaN; one empty: 0 (with a ``UserWarning``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> t = np.zeros((1, 8, 8), dtype=np.uint8); t[0, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=1)
    >>> fastloss.surface_dice(p, t, [1.0], num_classes=2)
    array([[0.625]])
    """
    V.check_reduction(reduction, _METRIC_REDUCTIONS)
    c = _metric_inputs(pred, target, num_classes, include_background, spacing, n_threads)
    ncls = c.C - c.c0
    try:
        tau = np.asarray(class_thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"class_thresholds must be a sequence of {ncls} numbers, got {class_thresholds!r}"
        ) from None
    if tau.shape != (ncls,):
        raise ValueError(
            f"class_thresholds must have one value per used class ({ncls}), got "
            f"{np.atleast_1d(tau).tolist()}"
        )
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError(f"class_thresholds must be finite and >= 0, got {tau.tolist()}")
    if use_subvoxels:
        return _reduce(_subvoxel_surface_dice(c, tau), reduction)
    dists = _all_distances(c, True)
    f = np.empty((c.N, ncls), dtype=np.float64)
    for n, row in enumerate(dists):
        for j, (dpg, dgp, npe, nte) in enumerate(row):
            if npe == 0 and nte == 0:
                f[n, j] = math.nan
            elif npe == 0 or nte == 0:
                f[n, j] = 0.0
            else:
                f[n, j] = (np.count_nonzero(dpg <= tau[j]) + np.count_nonzero(dgp <= tau[j])) \
                    / (npe + nte)
    return _reduce(f, reduction)



def _class_mask(c, side, n, k):
    """Image n's bool mask of class k in pred (side 0) or target (side 1)."""
    if c.onehot:
        return (c.p, c.t)[side][n, k]
    return (c.p, c.t)[side][n] == k


def _subvoxel_surface_dice(c, tau):
    """(N, C') surface Dice with MONAI's ``use_subvoxels=True``.

    The surface elements are the points of the grid of voxel corners (the
    image padded by one background voxel on every side) whose 2^D
    neighbouring voxels are neither all inside nor all outside the mask;
    each carries the surface area (3-D) or contour length (2-D) of its
    neighbour configuration, scaled by ``spacing``, from DeepMind's lookup
    table as MONAI ships it (``monai.metrics.utils.get_code_to_measure_table``,
    read as data along with its code weights).  A point's distance is to the
    nearest surface point of the other mask; NSD is the area within the
    tolerance over the total area of both surfaces.
    """
    if c.ndim not in (2, 3):
        raise ValueError(f"use_subvoxels=True needs 2-D or 3-D images, got {c.ndim}-D")
    try:
        from monai.metrics.utils import get_code_to_measure_table
    except ImportError:
        raise ImportError(
            "surface_dice(use_subvoxels=True) reads the surfel-area table of DeepMind's "
            "surface-distance (as MONAI ships it): install monai"
        ) from None
    table, kern = get_code_to_measure_table(tuple(float(v) for v in c.spacing))
    table = np.asarray(table.detach().cpu().numpy(), dtype=np.float64)
    weights = np.asarray(kern.detach().cpu().numpy()).reshape((2,) * c.ndim).astype(np.int64)
    full = len(table) - 1
    f = np.empty((c.N, c.C - c.c0), dtype=np.float64)
    for n in range(c.N):
        for j, k in enumerate(range(c.c0, c.C)):
            sides = []
            for side in (0, 1):
                m = np.pad(_class_mask(c, side, n, k).astype(np.int64), 1)
                # code of each corner point: the weighted sum of its 2^D voxels
                code = np.zeros(tuple(s - 1 for s in m.shape), dtype=np.int64)
                for off in np.ndindex(*((2,) * c.ndim)):
                    sl = tuple(slice(o, o + s) for o, s in zip(off, code.shape))
                    code += weights[off] * m[sl]
                edge = (code != 0) & (code != full)
                sides.append((np.argwhere(edge), table[code[edge]]))
            (pe, pa), (te, ta) = sides
            if len(te) == 0:
                warnings.warn(f"the ground truth of class {k} is all 0, this may result in "
                              "nan/inf distance.", UserWarning, stacklevel=3)
            if len(pe) == 0:
                warnings.warn(f"the prediction of class {k} is all 0, this may result in "
                              "nan/inf distance.", UserWarning, stacklevel=3)
            total = pa.sum() + ta.sum()
            if total == 0:
                f[n, j] = math.nan
                continue
            box = tuple(int(s) - 1 + 2 for s in c.spatial)
            dpg = _directed(pe, te, box, c.spacing, c.nt)
            dgp = _directed(te, pe, box, c.spacing, c.nt)
            f[n, j] = (pa[dpg <= tau[j]].sum() + ta[dgp <= tau[j]].sum()) / total
    return f


# ------------------------------------------------------------ losses

_ACTIVATIONS = (None, "none", "sigmoid", "softmax")


class _LossInputs:
    """Validated loss inputs: probabilities and the target (soft or labels)."""


def _loss_inputs(input, target, activation, include_background, reduction, spacing,
                 n_threads):
    q = _LossInputs()
    x = V.as_float(input, "input")
    if x.ndim < 3:
        raise ValueError(
            f"input must have shape (N, C, d1, ...) with at least one spatial axis, got {x.shape}"
        )
    N, C = x.shape[:2]
    if C == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    V.check_reduction(reduction)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
    if activation == "softmax" and C == 1:
        raise ValueError("activation='softmax' needs at least 2 classes on axis 1, got 1; "
                         "use activation='sigmoid' for a single channel")
    q.x, q.N, q.C, q.spatial = x, N, C, x.shape[2:]
    q.nt = V.threads(n_threads)
    q.spacing = _spacing(spacing, x.ndim - 2)
    t = np.asarray(target)
    q.off = 0
    if t.shape == x.shape and (t.dtype.kind in "fb" or C == 1):
        q.g, q.lab = V.as_float(t, "target", dtype=np.float64), None
    else:
        if t.dtype.kind == "f":
            raise TypeError(
                f"target must hold integer class indices of shape {(N,) + q.spatial} or "
                f"masks of the input's shape {x.shape}, got dtype {t.dtype} and shape {t.shape}"
            )
        want = (N,) + q.spatial
        if t.ndim == x.ndim and t.shape[1] == 1 and t.shape[:1] + t.shape[2:] == want:
            t = t.reshape(want)
        lab = V.as_labels(t, "target")
        if lab.shape != want:
            raise ValueError(
                f"target label map must have shape {want} for input of shape {x.shape} "
                f"(or masks of the input's shape), got {lab.shape}"
            )
        ncls = 2 if C == 1 else C
        bad = np.flatnonzero((lab < 0) | (lab >= ncls))
        if bad.size:
            raise V.label_error(lab.reshape(-1), int(bad[0]), ncls, None)
        q.g, q.lab = None, lab
        q.off = 1 if C == 1 else 0  # a single channel is the binary mask (label == 1)
    q.x = np.ascontiguousarray(x)
    q.act = activation
    q.c0 = 0 if (include_background or C == 1) else 1
    return q


_ACT_CODES = {None: 0, "none": 0, "sigmoid": 1, "softmax": 2}
_scratch_local = threading.local()
_SCRATCH_MAX = 256 << 20   # bytes of field scratch kept per thread between calls


def _scratch(slot, n, dtype=np.float64):
    """A reused 1-D scratch array of n elements for the fields (never
    handed out): a fresh array costs the OS's zeroing of its pages, about
    as long as the loss pass itself."""
    kept = getattr(_scratch_local, "kept", None)
    if kept is None:
        kept = _scratch_local.kept = {}
    a = kept.get(slot)
    if a is None or a.size != n or a.dtype != dtype:
        a = np.empty(n, dtype=dtype)
        kept[slot] = a
        if sum(v.nbytes for v in kept.values()) > _SCRATCH_MAX:
            kept.clear()
    return a


def _fields(masks, spacing, nt, squared=False, slot=None):
    """For a stack of masks (K, *spatial): each voxel's distance to the nearest
    voxel on the other side of its mask (EDT(mask) + EDT(~mask), one
    multi-label pass for the whole stack), squared with ``squared``.  A mask
    that is all one value has no other side: its field is +inf (the loss
    pass reads it as 0, MONAI's value)."""
    m = np.ascontiguousarray(masks)
    if m.size == 0:
        return np.zeros(m.shape)
    sp = np.concatenate(([1.0], spacing))
    out = _scratch(slot, m.size) if slot is not None else None
    d, _ = _edt_flat(m.view(np.uint8), m.shape, sp, False, False, not squared, nt, skip=1,
                     out=out)
    return d


def _target_masks(q):
    """(N, C', S) uint8 masks of the used target classes (g > 0.5, or label == c)."""
    S = math.prod(q.spatial)
    if q.g is not None:
        m = q.g[:, q.c0:] > 0.5
    else:
        cls = np.arange(q.c0, q.C, dtype=np.int64).reshape(1, -1, 1) + q.off
        m = q.lab.reshape(q.N, 1, S) == cls
    return np.ascontiguousarray(m).view(np.uint8).reshape(q.N, q.C - q.c0, S)


def _pred_masks(q):
    """(N, C', S) uint8 masks p > 0.5 of the used classes, p the activation."""
    S = math.prod(q.spatial)
    out = np.empty((q.N, q.C - q.c0, S), dtype=np.uint8)
    if out.size and _k.prob_masks(q.x.ctypes.data, q.x.dtype == np.float32, q.N, q.C, S,
                                  _ACT_CODES[q.act], q.c0, out.ctypes.data, q.nt):
        raise MemoryError("fastloss: cannot allocate the loss scratch")
    return out


def _loss_pass(q, gm, fa, fb, alpha, kind, scale, grad):
    """Per-(image, class) sums of the loss terms, and the gradient into ``grad``."""
    S = math.prod(q.spatial)
    ncls = q.C - q.c0
    nch = -(-S // _LCHUNK)
    part = np.zeros((q.N, ncls, nch))
    if q.N * ncls * S == 0:
        if grad is not None:
            grad[...] = 0
        return part.sum(axis=2)
    gs = None
    if gm is None:
        gs = np.ascontiguousarray(q.g, dtype=np.float64)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    rc = _k.loss_pass(q.x.ctypes.data, q.x.dtype == np.float32,
                      grad.ctypes.data if grad is not None else 0, q.N, q.C, S,
                      _ACT_CODES[q.act], q.c0, gm.ctypes.data if gm is not None else 0,
                      gs.ctypes.data if gs is not None else 0, fa.ctypes.data,
                      fb.ctypes.data if fb is not None else 0, float(alpha), kind,
                      scale.ctypes.data, grad is not None, part.ctypes.data, q.nt)
    if rc:
        raise MemoryError("fastloss: cannot allocate the loss scratch")
    return part.sum(axis=2)


_LCHUNK = 16384  # voxels per partial sum in the kernel (its LCHUNK)


_KIND_HD, _KIND_BOUNDARY = 0, 1


def _loss_run(q, kind, alpha, gm, fa, fb, batch, reduction, log, return_grad):
    """The loss (and gradient) from the target masks and the fields.

    Per (image, class) f = sum / S; ``batch`` averages f over the images;
    then the reduction, and log1p of the result with ``log``.  The
    gradient's factor per (image, class) is d(loss)/d(f) times d(f)/d(sum)
    (times 2 (p - g) w for Hausdorff, phi for boundary, inside the kernel);
    without ``log`` it does not depend on the values, so loss and gradient
    come out of one pass; with ``log`` it needs the loss: two passes.
    """
    S = math.prod(q.spatial)
    ncls = q.C - q.c0
    if q.g is not None:
        gm = None  # soft targets: the kernel reads q.g, its masks are g > 0.5
    nf = ncls if batch else q.N * ncls
    dL = np.full((q.N, ncls), 1.0 / nf if reduction == "mean" else 1.0)
    if batch:
        dL /= q.N
    dL /= max(S, 1)
    grad = None
    if return_grad:
        grad, _ = V.grad_array(None, q.x.shape, q.x.dtype)
    one_pass = return_grad and not log
    sums = _loss_pass(q, gm, fa, fb, alpha, kind, dL, grad if one_pass else None)
    f = sums / S if S else np.full((q.N, ncls), np.nan)
    if batch:
        f = f.mean(axis=0)
    if reduction == "none":
        red = f
    elif reduction == "sum":
        red = f.sum()
    else:
        red = f.mean() if f.size else np.nan
    loss = np.log1p(red) if log else red
    loss = np.asarray(loss).astype(q.x.dtype) if reduction == "none" else V.scalar(loss,
                                                                                    q.x.dtype)
    if not return_grad:
        return loss
    if log:
        # d log(1 + r) / d r = 1 / (1 + r), per class for 'none'
        k = 1.0 / (1.0 + np.asarray(red, dtype=np.float64))
        dL = dL * (np.broadcast_to(k, (q.N, ncls)) if np.ndim(k) else k)
        _loss_pass(q, gm, fa, fb, alpha, kind, dL, grad)
    return loss, grad


_LOSS_INPUTS = """\
input : array_like, shape (N, C, d1, ..., dk), k >= 1
    Logits (``activation='softmax'`` or ``'sigmoid'``) or probabilities
    (``activation=None``), float32 or float64.
target : array_like
    Integer label map (N, d1, ..., dk) (or MONAI's (N, 1, d1, ...)), or
    one-hot / soft masks of ``input``'s shape.  With C == 1 a label map
    is the binary mask (labels 0 and 1).
activation : {'softmax', 'sigmoid', None}
    MONAI's ``softmax=True`` / ``sigmoid=True``."""

_LOSS_OPTIONS = """\
batch : bool
    Average over the batch too: one value per class.
reduction : {'mean', 'sum', 'none'}
    'none': the per-class losses, (N, C') or (C',) with ``batch``.
return_grad : bool
    Also return d(loss)/d(input) (for 'none', of the sum); the distance
    maps are constants, as in MONAI (computed without gradient).
%(n_threads)s"""

_loss_doc = doc(loss_inputs=_LOSS_INPUTS, loss_options=_LOSS_OPTIONS)


@_loss_doc
def hausdorff_dt_loss(input, target, *, alpha=2.0, log=False, activation="softmax",
                      include_background=False, batch=False, reduction="mean",
                      return_grad=False, n_threads=None):
    r"""Hausdorff distance-transform loss (Karimi & Salcudean 2019), MONAI semantics.

    Per image and class

    .. math:: \ell = \frac{1}{S} \sum_x (p_x - g_x)^2 \, (d_p(x)^\alpha + d_g(x)^\alpha)

    with :math:`S` the number of voxels and :math:`d_p`, :math:`d_g` the
    distance fields of the thresholded prediction :math:`p > 0.5` and of
    the target :math:`g > 0.5`: every voxel's distance to the nearest voxel
    on the other side of the mask (MONAI's ``EDT(fg) + EDT(~fg)``, here one
    multi-label pass), zero for a mask that is all one value.  Equals
    ``monai.losses.HausdorffDTLoss(alpha, include_background, softmax=True,
    to_onehot_y=True, batch=batch, reduction=reduction)``; ``log=True`` is
    ``LogHausdorffDTLoss``: :math:`\log(1 + L)` after the reduction.

    Parameters
    ----------
    %(loss_inputs)s
    include_background : bool
        False drops class 0 (ignored for C == 1, as MONAI); default False.
    %(loss_options)s
    alpha : float
        Exponent of the distances (MONAI's default 2).
    log : bool
        :math:`\log(1 + L)`, MONAI's ``LogHausdorffDTLoss``.

    Returns
    -------
    %(loss_grad)s

    Notes
    -----
    Two multi-label distance transforms, one over the stack of every
    (image, class) thresholded prediction and one over the targets, each
    O(voxels) with 8 bytes per used (image, class) voxel (scratch kept per
    thread between calls, up to 256 MiB); then one pass computes the
    activation, the loss terms and the gradient through the activation,
    voxel block by voxel block, in double.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.array([[[[0.0, 1.0, 1.0, 0.0]]]])      # (1, 1, 1, 4) probabilities
    >>> g = np.array([[[0, 0, 1, 1]]])                # binary label map
    >>> # d_p = [1, 1, 1, 1], d_g = [2, 1, 1, 2]: (1 * (1 + 1) + 1 * (1 + 4)) / 4
    >>> float(fastloss.hausdorff_dt_loss(p, g, activation=None))
    1.75
    """
    a = V.check_scalar(alpha, "alpha", 0.0)
    q = _loss_inputs(input, target, activation, include_background, reduction, None,
                     n_threads)
    gm = _target_masks(q)
    # d^alpha = (d^2)^(alpha / 2) from the squared fields: alpha = 2 (the
    # default) needs no power at all and its weights are exact integers
    shp = (gm.shape[0] * gm.shape[1],) + q.spatial
    fa = _fields(_pred_masks(q).reshape(shp), q.spacing, q.nt, squared=True, slot="a")
    fb = _fields(gm.reshape(shp), q.spacing, q.nt, squared=True, slot="b")
    return _loss_run(q, _KIND_HD, a, gm, fa, fb, batch, reduction, log, return_grad)



@_loss_doc
def boundary_loss(input, target, spacing=None, *, activation="softmax", include_background=True,
                  batch=False, reduction="mean", return_grad=False, n_threads=None):
    r"""Boundary loss (Kervadec et al. 2019), MONAI 1.6 ``BoundaryLoss`` semantics.

    Per image and class

    .. math:: \ell = \frac{1}{S} \sum_x p_x \, \phi_g(x), \qquad
              \phi_g(x) = \begin{cases} d(x, G) & x \notin G \\
                                        -(d(x, \bar G) - 1) & x \in G \end{cases}

    with :math:`G = \{g > 0.5\}`, :math:`d` the Euclidean distance to the
    nearest voxel of the set (0 on the inner border, negative deeper,
    positive outside) and :math:`\phi_g = 0` for a class absent or filling
    the image.  The loss is negative for a good prediction, by design.
    Without ``spacing`` it equals ``monai.losses.BoundaryLoss(softmax=True,
    to_onehot_y=True, batch=batch, reduction=reduction)``; with ``spacing``
    the map is Kervadec's ``one_hot2dist(seg, resolution=spacing)``.

    Parameters
    ----------
    %(loss_inputs)s
    include_background : bool
        False drops class 0 (ignored for C == 1, as MONAI); default True.
    %(loss_options)s
    spacing : float or sequence of k floats, optional
        Voxel size per spatial axis (Kervadec's ``resolution``); default 1.

    Returns
    -------
    %(loss_grad)s

    Notes
    -----
    One multi-label distance transform over the stack of every (image,
    class) target gives both sides of the signed maps (each voxel's distance
    to the other side of its mask); one pass then computes the activation,
    the loss terms and the gradient, voxel block by voxel block, in double.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.array([[[[0.0, 1.0, 1.0, 0.0]]]])      # (1, 1, 1, 4) probabilities
    >>> g = np.array([[[0, 0, 1, 1]]])                # phi = [2, 1, 0, -1]
    >>> float(fastloss.boundary_loss(p, g, activation=None))   # (1 + 0) / 4
    0.25
    """
    q = _loss_inputs(input, target, activation, include_background, reduction, spacing,
                     n_threads)
    gm = _target_masks(q)
    fa = _fields(gm.reshape((gm.shape[0] * gm.shape[1],) + q.spatial), q.spacing, q.nt,
                 slot="a")
    return _loss_run(q, _KIND_BOUNDARY, 2.0, gm, fa, None, batch, reduction, False,
                     return_grad)



# ------------------------------------------------------------ U-Net weight map

_INSTANCE_CHUNK = 16  # instance masks transformed per kernel call


@doc
def unet_weight_map(labels, w0=10.0, sigma=5.0, class_weight="balanced", instances=None, *,
                    n_threads=None):
    r"""U-Net edge weight map (Ronneberger et al. 2015, eq. 2) for weighted cross-entropy.

    Per image and position :math:`x`

    .. math:: w(x) = w_c(\ell(x)) + [\ell(x) = 0]\; w_0
              \exp\!\Big(-\frac{(d_1(x) + d_2(x))^2}{2 \sigma^2}\Big)

    with :math:`\ell` the label, :math:`w_c` the class weights and
    :math:`d_1`, :math:`d_2` the distances from :math:`x` to the nearest and
    the second-nearest object instance (:math:`d_2 = \infty`, so no border
    term, with fewer than two instances).  The border term is applied to
    background pixels only, as the common implementations do.  The map is
    the ``sample_weight`` of :func:`fastloss.cross_entropy` (shape
    (N, d1, ..., dk)): the paper's weighted pixel-wise cross-entropy.

    Parameters
    ----------
    labels : array_like of integers, shape (N, d1, ..., dk), k >= 1
        Class labels, 0 is the background; values must be >= 0.
    w0 : float >= 0
        Weight of the border term (the paper's 10).
    sigma : float > 0
        Width of the border term in pixels (the paper's "about 5").
    class_weight : 'balanced', None or array_like
        'balanced': per image :math:`w_c = S / (K n_c)` (scikit-learn's
        convention; :math:`S` pixels, :math:`K` classes present, :math:`n_c`
        pixels of class c); None: 1; an array: one weight per label value
        (its length must exceed the largest label).
    instances : array_like of integers, optional
        Instance ids of the shape of ``labels`` (0: no instance).  Default:
        the face-connected components of ``labels != 0`` of each image,
        which needs SciPy (``scipy.ndimage.label``).
    %(n_threads)s

    Returns
    -------
    ndarray of float64, the shape of ``labels``.

    Notes
    -----
    One exact distance transform per instance (batched, 16 instances per
    kernel call), keeping the two smallest distances per pixel: O(K * S)
    work and 8 * 19 bytes per pixel of scratch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> lab = np.zeros((1, 1, 7), dtype=np.uint8)
    >>> lab[0, 0, :2] = 1; lab[0, 0, 5:] = 1      # two cells, a 3-pixel gap
    >>> w = fastloss.unet_weight_map(lab, w0=10.0, sigma=5.0, class_weight=None)
    >>> w.round(3)        # in the gap d1 + d2 = 4: 1 + 10 exp(-16 / 50)
    array([[[1.   , 1.   , 8.261, 8.261, 8.261, 1.   , 1.   ]]])
    >>> x = np.zeros((1, 2, 1, 7), dtype=np.float32)   # logits (N, C, H, W)
    >>> round(float(fastloss.cross_entropy(x, lab, sample_weight=w, reduction="sum")), 3)
    19.952
    """
    lab = V.as_labels(labels, "labels")
    if lab.ndim < 2:
        raise ValueError(
            f"labels must have shape (N, d1, ...) with at least one spatial axis, got {lab.shape}"
        )
    if lab.size and lab.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(lab.min())}")
    w0 = V.check_scalar(w0, "w0", 0.0)
    sigma = V.check_scalar(sigma, "sigma", 0.0, lo_open=True)
    nt = V.threads(n_threads)
    if instances is None:
        try:
            from scipy import ndimage
        except ImportError:
            raise ImportError(
                "unet_weight_map needs SciPy to find the instances (connected components); "
                "install scipy or pass instances="
            ) from None
        inst = np.empty(lab.shape, dtype=np.int32)
        for n in range(lab.shape[0]):
            ndimage.label(lab[n] != 0, output=inst[n])
    else:
        inst = V.as_labels(instances, "instances")
        if inst.shape != lab.shape:
            raise ValueError(
                f"instances must have the shape of labels {lab.shape}, got {inst.shape}"
            )
    cw = None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced', None or an array, "
                             f"got {class_weight!r}")
    elif class_weight is not None:
        cw = V.as_float(class_weight, "class_weight", dtype=np.float64)
        if cw.ndim != 1 or (lab.size and cw.shape[0] <= int(lab.max())):
            raise ValueError(
                f"class_weight must have one value per label (at least {int(lab.max()) + 1}), "
                f"got shape {cw.shape}"
            )
        if not np.all(np.isfinite(cw)) or np.any(cw < 0):
            raise ValueError(f"class_weight must be finite and >= 0, got {cw.tolist()}")
    spatial = lab.shape[1:]
    ones = np.ones(len(spatial) + 1)
    out = np.empty(lab.shape, dtype=np.float64)
    for n in range(lab.shape[0]):
        ln = lab[n]
        if class_weight is None:
            w = np.ones(spatial)
        elif cw is not None:
            w = cw[ln]
        else:
            cnt = np.bincount(ln.reshape(-1))
            present = cnt > 0
            wc = np.zeros(cnt.shape)
            wc[present] = ln.size / (present.sum() * cnt[present])
            w = wc[ln]
        ids = np.unique(inst[n])
        ids = ids[ids != 0]
        if ids.size >= 2 and w0 > 0:
            d1 = np.full(spatial, np.inf)
            d2 = np.full(spatial, np.inf)
            tmp = np.empty(spatial)
            for i in range(0, ids.size, _INSTANCE_CHUNK):
                chunk = ids[i:i + _INSTANCE_CHUNK]
                cls = chunk.reshape((-1,) + (1,) * len(spatial))
                sites = np.ascontiguousarray(inst[n][None] != cls)  # 0 on the instance
                d, _ = _edt_flat(sites.view(np.uint8), sites.shape, ones, True, False, True,
                                 nt, skip=1)
                for dk in d:  # the two smallest so far: d1 <= d2
                    np.maximum(d1, dk, out=tmp)
                    np.minimum(d2, tmp, out=d2)
                    np.minimum(d1, dk, out=d1)
            bg = ln == 0
            w[bg] += w0 * np.exp(-((d1[bg] + d2[bg]) ** 2) / (2.0 * sigma * sigma))
        out[n] = w
    return out
