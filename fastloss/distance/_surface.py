"""fastloss.distance: the surface metrics (edge voxels, directed distances,
Hausdorff, average surface distance, surface Dice)."""

import math
import warnings

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc
from fastloss._threads import pool_map
from fastloss.distance._transform import (
    _BOX_CODES,
    _METRIC_REDUCTIONS,
    _edt_flat,
    _spacing,
)

_k = kernels("surface")
_kd = kernels("distance")  # class_bboxes

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
    return pool_map(lambda pair: fn(pair[0], pair[1], 1), pairs, min(nt, len(pairs)))


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
    bad = _kd.class_bboxes(lab_addr=lab2d.ctypes.data, code=_BOX_CODES[lab2d.dtype.type],
                           N=lab2d.shape[0], S=lab2d.shape[1], shape_addr=shp.ctypes.data,
                           D=shp.size, C=C, box_addr=box.ctypes.data, n_threads=nt)
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
    # the edge flags of the first call, one bit per voxel, for the second
    bits = np.empty((M, nu, (int(sh[1]) * int(sh[2]) + 63) // 64), dtype=np.uint64)
    kw = dict(lab_addr=lab2d.ctypes.data, code=code, N=M, S=S, shape_addr=sh.ctypes.data, D=D,
              C=C, c0=c0, bits_addr=bits.ctypes.data, n_threads=nt)
    bad = _k.edges_all(cnt_addr=cnt.ctypes.data, out_addr=0, **kw)
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
        _k.edges_all(cnt_addr=pos.ctypes.data, out_addr=coords.ctypes.data, **kw)
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
        cnt = _k.edge_coords(lab_addr=v.ctypes.data, code=_BOX_CODES[v.dtype.type],
                             strides_addr=strides.ctypes.data, shape_addr=shape.ctypes.data,
                             D=D, k=int(value), out_addr=out.ctypes.data, cap=cap)
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
        offs, offd2, tab2 = _offsets(tuple(spacing.tolist()), _REACH)
        src = np.ascontiguousarray(src, dtype=np.int64)
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        shp = np.asarray(box, dtype=np.int64)
        w = np.ascontiguousarray(spacing, dtype=np.float64)
        miss = _k.local_sq(sites_addr=dst.ctypes.data, k=nd, queries_addr=src.ctypes.data, m=ns,
                           D=len(box), shape_addr=shp.ctypes.data, offs_addr=offs.ctypes.data,
                           offd2_addr=offd2.ctypes.data, no=len(offd2),
                           spacing_addr=w.ctypes.data, tab2=tab2, out_addr=d2.ctypes.data,
                           n_threads=nt)
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
                _k.brute_sq(sitesT_addr=sT.ctypes.data, k=nd, queries_addr=queries.ctypes.data,
                            m=len(rest), D=len(box), out_addr=dr.ctypes.data, n_threads=nt)
            elif _k.nearest_sq(sites_addr=sites.ctypes.data, k=nd,
                               queries_addr=queries.ctypes.data, m=len(rest), D=len(box),
                               out_addr=dr.ctypes.data, n_threads=nt):
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
    """Every offset with |o_a| <= reach on each axis, of squared physical
    length below tab2 = ((reach + 1) * min(spacing))^2, sorted by that
    length: any offset left out is at least that long, so the first site
    found along this table is a nearest one.  Returns (offsets, squared
    lengths, tab2)."""
    key = (spacing, reach)
    if key not in _OFFSETS:
        D = len(spacing)
        w = np.asarray(spacing)
        o = np.stack(np.meshgrid(*([np.arange(-reach, reach + 1)] * D), indexing="ij"),
                     -1).reshape(-1, D)
        d2 = ((o * w) ** 2).sum(axis=1)
        tab2 = float(((reach + 1) * w.min()) ** 2)
        keep = d2 < tab2
        order = np.argsort(d2[keep], kind="stable")
        _OFFSETS[key] = (np.ascontiguousarray(o[keep][order], dtype=np.int64),
                         np.ascontiguousarray(d2[keep][order]), tab2)
    return _OFFSETS[key]


# Images below this many voxels take their cases one after the other on the
# calling thread: a small case is mostly Python (about 0.1 ms), which a
# second thread can only wait for (the GIL), and handing cases over costs
# more than their kernels.
_POOL_MIN_VOXELS = 1 << 15


def _all_distances(c, symmetric, warn=True):
    """Per (image, used class): (pred->gt, gt->pred or None, n_pred_edges, n_gt_edges).

    The (image, class) cases, then their directed distances, are shared out
    over ``c.nt`` Python threads (the kernels release the GIL), each kernel
    on one thread: the cases are small, and one thread per case keeps both
    cores busy where the parallel regions of one small case would not.  A
    single case, and the cases of images under ``_POOL_MIN_VOXELS``, keep
    the calling thread and the kernels' own threads (which take one thread
    for small work).  Each result is computed the same way whichever thread
    runs it.
    """
    jobs = [(n, k) for n in range(c.N) for k in range(c.c0, c.C)]
    workers = (min(c.nt, 2 * len(jobs))
               if len(jobs) > 1 and math.prod(c.spatial) >= _POOL_MIN_VOXELS else 1)
    nt = 1 if workers > 1 else c.nt
    cases = pool_map(lambda j: _case(c, *j), jobs, workers)
    tasks = [(i, 0) for i in range(len(jobs))]
    if symmetric:
        tasks += [(i, 1) for i in range(len(jobs))]

    def directed(task):
        i, back = task
        pe, te, box = cases[i]
        return _directed(te, pe, box, c.spacing, nt) if back else \
            _directed(pe, te, box, c.spacing, nt)

    dists = pool_map(directed, tasks, workers)
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
