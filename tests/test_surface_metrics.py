"""The surface metrics (Hausdorff, ASSD, NSD): MONAI, the reference, medpy, hand cases,
accumulators, dask, errors."""

import warnings

import numpy as np
import pytest

import fastloss
import fastloss.reference as R
from tests._blobs import blobs

# ------------------------------------------------------------ metrics

def _pair(rng, N, shape, C):
    t = np.stack([blobs(rng, shape, C) for _ in range(N)])
    p = np.stack([blobs(rng, shape, C) for _ in range(N)])
    p[0] = np.where(rng.random(shape) < 0.9, t[0], p[0])  # one close prediction
    return p, t


def _onehot(lab, C):
    return np.moveaxis(np.eye(C, dtype=np.uint8)[lab], -1, 1)


def _monai(name, p, t, C, **kw):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = getattr(metrics, name)(torch.from_numpy(_onehot(p, C)),
                                     torch.from_numpy(_onehot(t, C)), **kw)
    return out.double().numpy()


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# MONAI returns float32 distances: compare at float32 precision
TOL = dict(rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("shape,spacing", [((24, 21, 18), None), ((24, 21, 18), (1.0, 2.0, 0.6)),
                                           ((40, 33), (0.8, 1.3))])
@pytest.mark.parametrize("include_background", [False, True])
def test_hausdorff_matches_monai(rng, shape, spacing, include_background):
    C = 3
    p, t = _pair(rng, 2, shape, C)
    for percentile in (None, 95, 50.5):
        for directed in (False, True):
            want = _monai("compute_hausdorff_distance", p, t, C, percentile=percentile,
                          directed=directed, spacing=spacing,
                          include_background=include_background)
            got = _quiet(fastloss.hausdorff_distance, p, t, num_classes=C, percentile=percentile,
                         directed=directed, spacing=spacing,
                         include_background=include_background)
            np.testing.assert_allclose(got, want, **TOL)
            oh = _quiet(fastloss.hausdorff_distance, _onehot(p, C), _onehot(t, C),
                        percentile=percentile, directed=directed, spacing=spacing,
                        include_background=include_background)
            np.testing.assert_array_equal(oh, got)


@pytest.mark.parametrize("spacing", [None, (1.5, 1.0, 0.7)])
def test_average_surface_distance_and_nsd_match_monai(rng, spacing):
    C = 3
    p, t = _pair(rng, 2, (20, 22, 19), C)
    for symmetric in (False, True):
        want = _monai("compute_average_surface_distance", p, t, C, symmetric=symmetric,
                      spacing=spacing)
        got = _quiet(fastloss.average_surface_distance, p, t, num_classes=C,
                     symmetric=symmetric, spacing=spacing)
        np.testing.assert_allclose(got, want, **TOL)
    th = [1.0, 2.5]
    want = _monai("compute_surface_dice", p, t, C, class_thresholds=th, spacing=spacing)
    got = _quiet(fastloss.surface_dice, p, t, th, num_classes=C, spacing=spacing)
    np.testing.assert_allclose(got, want, **TOL)
    got_oh = _quiet(fastloss.surface_dice, _onehot(p, C).astype(np.float32),
                    _onehot(t, C).astype(bool), th, spacing=spacing)
    np.testing.assert_array_equal(got_oh, got)


def test_metrics_match_reference(rng):
    C = 4
    p, t = _pair(rng, 3, (18, 16, 17), C)
    sp = (1.2, 0.8, 2.0)
    for fn, kw in [("hausdorff_distance", dict(percentile=90)),
                   ("hausdorff_distance", dict(mode="pooled", percentile=95)),
                   ("average_surface_distance", dict(symmetric=True)),
                   ("surface_dice", dict(class_thresholds=[1.0, 0.0, 3.0]))]:
        for red in ("none", "mean", "sum"):
            got = _quiet(getattr(fastloss, fn), p, t, num_classes=C, spacing=sp, reduction=red,
                         **kw)
            want = _quiet(getattr(R, fn), p, t, num_classes=C, spacing=sp, reduction=red, **kw)
            np.testing.assert_allclose(got, want, rtol=1e-12)
    got = fastloss.surface_distances(p, t, num_classes=C, spacing=sp, include_background=True)
    want = R.surface_distances(p, t, num_classes=C, spacing=sp, include_background=True)
    for gr, wr in zip(got, want):
        assert len(gr) == C
        for (a, b), (c, d) in zip(gr, wr):
            np.testing.assert_allclose(a, c, rtol=1e-12)
            np.testing.assert_allclose(b, d, rtol=1e-12)


def test_metric_reduction_matches_monai():
    monai = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    from fastloss.distance._surface import _reduce

    f = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [2.0, 7.0, 0.5]])
    for red in ("mean", "sum"):
        want = float(monai.do_metric_reduction(torch.from_numpy(f.copy()), red)[0])
        assert _reduce(f.copy(), red) == pytest.approx(want, rel=1e-6)  # MONAI: float32
    f[2, 1] = np.inf
    assert _reduce(f, "mean") == np.inf


def test_shifted_cube_hausdorff_is_the_shift():
    t = np.zeros((1, 30, 30, 30), dtype=np.uint8)
    t[0, 8:18, 9:19, 7:17] = 1
    shift = (3, -2, 4)
    p = np.roll(t, shift, axis=(1, 2, 3))
    sp = (1.0, 2.0, 0.5)
    hd = fastloss.hausdorff_distance(p, t, num_classes=2, spacing=sp)
    assert hd[0, 0] == pytest.approx(np.sqrt(sum((s * w) ** 2 for s, w in zip(shift, sp))))
    hd_dir = fastloss.hausdorff_distance(p, t, num_classes=2, spacing=sp, directed=True)
    assert hd_dir[0, 0] == pytest.approx(hd[0, 0])
    # two single voxels: every statistic is their distance
    a = np.zeros((1, 10, 10), dtype=np.int32)
    b = np.zeros((1, 10, 10), dtype=np.int32)
    a[0, 1, 2] = 1
    b[0, 7, 6] = 1
    d = np.hypot(6.0, 4.0)
    assert fastloss.hausdorff_distance(a, b, num_classes=2, percentile=95)[0, 0] == pytest.approx(d)
    assert fastloss.average_surface_distance(a, b, num_classes=2)[0, 0] == pytest.approx(d)
    assert fastloss.surface_dice(a, b, [7.22], num_classes=2)[0, 0] == 1.0
    assert fastloss.surface_dice(a, b, [7.2], num_classes=2)[0, 0] == 0.0


def test_empty_masks_and_warnings():
    t = np.zeros((2, 8, 8), dtype=np.uint8)
    p = np.zeros((2, 8, 8), dtype=np.uint8)
    t[0, 2:5, 2:5] = 1  # image 0: prediction empty; image 1: both empty
    with pytest.warns(UserWarning, match="prediction of class 1 is all 0"):
        hd = fastloss.hausdorff_distance(p, t, num_classes=2)
    assert hd[0, 0] == np.inf and np.isnan(hd[1, 0])
    with pytest.warns(UserWarning):
        hd95 = fastloss.hausdorff_distance(p, t, num_classes=2, percentile=95)
    assert hd95[0, 0] == np.inf  # MONAI: NaN (MONAI #9095), deliberately not reproduced
    with pytest.warns(UserWarning, match="ground truth of class 1 is all 0"):
        asd = fastloss.average_surface_distance(t, p, num_classes=2, symmetric=True)
    assert asd[0, 0] == np.inf and np.isnan(asd[1, 0])
    with pytest.warns(UserWarning):
        nsd = fastloss.surface_dice(p, t, [1.0], num_classes=2)
    assert nsd[0, 0] == 0.0 and np.isnan(nsd[1, 0])
    with pytest.warns(UserWarning):
        assert fastloss.hausdorff_distance(p, t, num_classes=2, reduction="mean") == np.inf
    # MONAI agrees everywhere except the percentile case
    want = _monai("compute_hausdorff_distance", p, t, 2)
    np.testing.assert_array_equal(hd, want)


def test_metrics_threads_bit_identical(rng):
    p, t = _pair(rng, 2, (30, 26, 28), 3)
    a = _quiet(fastloss.hausdorff_distance, p, t, num_classes=3, percentile=95, n_threads=1)
    b = _quiet(fastloss.hausdorff_distance, p, t, num_classes=3, percentile=95, n_threads=2)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int64])
@pytest.mark.parametrize("shape", [(70,), (1, 67), (9, 1), (13, 70), (5, 9, 70), (1, 6, 5),
                                   (7, 1, 1)])
@pytest.mark.parametrize("c0", [0, 1])
def test_edge_lists_match_numpy_erosion(rng, dtype, shape, c0):
    """Every class's edge voxels (face neighbour of another label or outside
    the image), in C order, against a NumPy erosion: the byte-label planes
    64 voxels a step (AVX-512BW builds) and the byte-flag path of the others,
    on plane widths around 64 and planes of one row or column."""
    from fastloss.distance._surface import _edge_lists, _edges

    C = 3
    lab = rng.integers(0, C, (2,) + shape).astype(dtype)
    lab[1, ...] = np.where(rng.random(shape) < 0.8, 1, lab[1])
    coords, bounds = _edge_lists(lab.reshape(2, -1), shape, C, c0, 2, "pred")
    for n in range(2):
        for k in range(C):
            got = coords[bounds[n * C + k]:bounds[n * C + k + 1]]
            want = np.argwhere(_edges(lab[n] == k)) if k >= c0 else np.empty((0, len(shape)))
            np.testing.assert_array_equal(got, want)
    bad = lab.copy()
    bad[(1,) + tuple(s // 2 for s in shape)] = -3 if dtype == np.int8 else 7
    flat = np.ravel_multi_index((1,) + tuple(s // 2 for s in shape), bad.shape)
    with pytest.raises(ValueError, match=f"pred holds class index {bad.flat[flat]} at flat "
                                         f"position {flat}"):
        _edge_lists(bad.reshape(2, -1), shape, C, c0, 2, "pred")


@pytest.mark.parametrize("fn,args", [("hausdorff_distance", ()), ("average_surface_distance", ()),
                                     ("surface_dice", ([1.0],)), ("surface_distances", ())])
def test_metric_bad_input(fn, args):
    f = getattr(fastloss, fn)
    p = np.zeros((2, 6, 7), dtype=np.uint8)
    with pytest.raises(ValueError, match="target"):
        f(p, np.zeros((2, 6, 8), np.uint8), *args, num_classes=2)
    with pytest.raises(ValueError, match="spacing"):
        f(p, p, *args, num_classes=2, spacing=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="spacing"):
        f(p, p, *args, num_classes=2, spacing=(1.0, np.nan))
    with pytest.raises(ValueError, match="spacing"):
        f(p, p, *args, num_classes=2, spacing=(0.0, 1.0))
    with pytest.raises(TypeError, match="pred"):
        f(p.astype(np.float32), p, *args, num_classes=2)
    with pytest.raises(TypeError, match="target"):
        f(p, p.astype(np.float64), *args, num_classes=2)
    bad = p.copy()
    bad[1, 2, 3] = 5
    with pytest.raises(ValueError, match="target holds class index 5"):
        f(p, bad, *args, num_classes=2)
    with pytest.raises(ValueError, match="pred"):
        f(np.full((1, 2, 4, 4), 0.5), np.zeros((1, 2, 4, 4)), *args)  # soft one-hot
    with pytest.raises(ValueError, match="num_classes"):
        f(p, p, *args, num_classes=0)


def test_metric_bad_options():
    p = np.zeros((1, 6, 7), dtype=np.uint8)
    for q in (-1, 100.5, np.nan):
        with pytest.raises(ValueError, match="percentile"):
            fastloss.hausdorff_distance(p, p, num_classes=2, percentile=q)
    with pytest.raises(ValueError, match="mode"):
        fastloss.hausdorff_distance(p, p, num_classes=2, mode="x")
    with pytest.raises(ValueError, match="reduction"):
        fastloss.average_surface_distance(p, p, num_classes=2, reduction="batch")
    for th in ([1.0, 2.0], [-1.0], [np.inf], []):
        with pytest.raises(ValueError, match="class_thresholds"):
            fastloss.surface_dice(p, p, th, num_classes=2)
    with pytest.raises(ValueError, match="use_subvoxels=True needs 2-D or 3-D"):
        fastloss.surface_dice(p[:, 0], p[:, 0], [1.0], num_classes=2, use_subvoxels=True)



@pytest.mark.parametrize("ratio,reach,brute", [(0, 6, 1 << 21), (10**9, 6, 1 << 21),
                                                (10**9, 0, 1 << 21), (10**9, 1, 0)])
def test_metrics_both_search_paths(rng, monkeypatch, ratio, reach, brute):
    # ratio 0: always the EDT of the box; huge: the site-map lookup up to
    # ``reach`` voxels, then the scan of every site (brute > 0) or the k-d tree
    import fastloss.distance._surface as FD

    monkeypatch.setattr(FD, "_KD_RATIO", ratio)
    monkeypatch.setattr(FD, "_BRUTE_MAX", brute)
    monkeypatch.setattr(FD, "_REACH", reach)
    p, t = _pair(rng, 2, (17, 19, 15), 3)
    sp = (0.9, 1.7, 1.1)
    for fn, kw in [("hausdorff_distance", dict(percentile=95)),
                   ("average_surface_distance", dict(symmetric=True)),
                   ("surface_dice", dict(class_thresholds=[1.0, 2.0]))]:
        got = _quiet(getattr(fastloss, fn), p, t, num_classes=3, spacing=sp, **kw)
        want = _quiet(getattr(R, fn), p, t, num_classes=3, spacing=sp, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # 1-D, 2-D and 4-D images (4-D: NumPy edges and the EDT)
    for shape in [(40,), (23, 26), (6, 7, 5, 6)]:
        p, t = (rng.integers(0, 3, size=(2,) + shape) for _ in range(2))
        got = _quiet(fastloss.hausdorff_distance, p, t, num_classes=3, percentile=80)
        want = _quiet(R.hausdorff_distance, p, t, num_classes=3, percentile=80)
        np.testing.assert_allclose(got, want, rtol=1e-12)


# ------------------------------------------------------------ accumulators

def test_metric_reduction_rows_match_monai(rng):
    torch = pytest.importorskip("torch")
    from monai.metrics.utils import do_metric_reduction

    from fastloss._distance_metrics import REDUCTIONS, reduce_rows

    f = rng.random((5, 3)) * 4
    f[0, 1] = f[2, :1] = np.nan
    f[3, :] = np.nan                    # an image with no value at all
    f[4, 2] = np.inf                    # a class missed in one image
    for reduction in REDUCTIONS:
        got, n = reduce_rows(f.copy(), reduction)
        want, wn = do_metric_reduction(torch.from_numpy(f.copy()), reduction)
        np.testing.assert_allclose(got, want.double().numpy(), rtol=1e-7)
        np.testing.assert_array_equal(np.asarray(n, dtype=np.float64), wn.double().numpy())
    with pytest.raises(ValueError, match="reduction"):
        reduce_rows(f, "median")


@pytest.mark.parametrize("onehot", [False, True])
def test_accumulators_match_monai_metrics(rng, onehot):
    torch = pytest.importorskip("torch")
    MM = pytest.importorskip("monai.metrics")
    from fastloss._distance_metrics import (
        HausdorffAccumulator,
        SurfaceDiceAccumulator,
        SurfaceDistanceAccumulator,
    )

    C, shape = 3, (16, 14, 12)
    p, t = _pair(rng, 4, shape, C)
    p[2][p[2] == 2] = 0                       # class 2 missed in image 2: inf / 0
    t[3][t[3] == 1] = 0                       # class 1 absent from a target: inf
    p[3][p[3] == 1] = 0                       # ... and its prediction: NaN
    sp = (1.0, 1.5, 0.8)
    nc = None if onehot else C
    cases = [(HausdorffAccumulator(nc, spacing=sp), MM.HausdorffDistanceMetric(),
              dict(spacing=sp)),
             (HausdorffAccumulator(nc, spacing=sp, directed=True),
              MM.HausdorffDistanceMetric(directed=True), dict(spacing=sp)),
             (SurfaceDistanceAccumulator(nc, symmetric=True, spacing=sp),
              MM.SurfaceDistanceMetric(symmetric=True), dict(spacing=sp)),
             (SurfaceDiceAccumulator([1.0, 2.0], nc, spacing=sp),
              MM.SurfaceDiceMetric([1.0, 2.0]), dict(spacing=sp))]
    for acc, metric, call_kw in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for lo, hi in ((0, 1), (1, 4)):
                a, b = p[lo:hi], t[lo:hi]
                if onehot:
                    a, b = _onehot(a, C), _onehot(b, C)
                acc.update(a, b)
                metric(torch.from_numpy(_onehot(p[lo:hi], C)),
                       torch.from_numpy(_onehot(t[lo:hi], C)), **call_kw)
        np.testing.assert_allclose(acc.values(), metric.get_buffer().double().numpy(), **TOL)
        assert np.isinf(acc.values()[2, 1]) or acc.values()[2, 1] == 0.0
        assert np.isnan(acc.values()[3, 0])
        for reduction in ("mean", "sum", "mean_batch", "sum_channel"):
            metric.reduction = reduction
            got, n = acc.result(reduction)
            want, wn = metric.aggregate(), None
            if isinstance(want, (list, tuple)):
                want, wn = want
            np.testing.assert_allclose(got, want.double().numpy(), **TOL)
        metric.reset()


def test_accumulators_merge_split_and_pickle(rng):
    import pickle

    from fastloss._distance_metrics import HausdorffAccumulator, SurfaceDiceAccumulator

    p, t = _pair(rng, 5, (15, 13, 11), 3)
    whole = HausdorffAccumulator(3, percentile=95)
    whole.update(p, t)
    parts = [HausdorffAccumulator(3, percentile=95) for _ in range(3)]
    for acc, sl in zip(parts, (slice(0, 2), slice(2, 3), slice(3, 5))):
        acc.update(p[sl], t[sl])
    merged = pickle.loads(pickle.dumps(parts[0])).merge(parts[1]).merge(parts[2])
    np.testing.assert_array_equal(merged.values(), whole.values())
    np.testing.assert_array_equal(whole.values(),
                                  fastloss.hausdorff_distance(p, t, num_classes=3,
                                                              percentile=95))
    for reduction in ("mean", "sum", "mean_batch"):
        a, b = merged.result(reduction), whole.result(reduction)
        assert np.asarray(a[0]).tobytes() == np.asarray(b[0]).tobytes()
    # another order of merges: the exactly rounded reductions are bit-identical
    other = HausdorffAccumulator(3, percentile=95).merge(parts[2]).merge(parts[0]).merge(parts[1])
    assert np.asarray(other.result("mean")[0]).tobytes() == \
        np.asarray(whole.result("mean")[0]).tobytes()
    with pytest.raises(ValueError, match="different percentile"):
        whole.merge(HausdorffAccumulator(3))
    with pytest.raises(TypeError, match="can only merge"):
        whole.merge(SurfaceDiceAccumulator([1.0, 1.0], 3))
    with pytest.raises(ValueError, match="class_thresholds"):
        SurfaceDiceAccumulator([1.0, -1.0], 3)
    with pytest.raises(ValueError, match="percentile"):
        HausdorffAccumulator(3, percentile=101)
    empty = HausdorffAccumulator(3)
    assert empty.result("mean") == (0.0, 0)
    whole.reset()
    assert whole.values().shape == (0, 0)


# ------------------------------------------------------------ dask

@pytest.mark.parametrize("onehot", [False, True])
def test_dask_surface_metrics_match_in_memory(rng, onehot):
    da = pytest.importorskip("dask.array")
    import fastloss.dask as fd

    C = 3
    p, t = _pair(rng, 5, (14, 12, 10), C)
    p[1][p[1] == 2] = 0                               # a missed class: inf
    if onehot:
        p, t = _onehot(p, C), _onehot(t, C)
    kw = dict(num_classes=None if onehot else C, spacing=(1.0, 0.7, 1.3))
    dp = da.from_array(p, chunks=(2,) + p.shape[1:])
    for fn, extra in [("hausdorff_distance", dict(percentile=95)),
                      ("average_surface_distance", dict(symmetric=True)),
                      ("surface_dice", dict(class_thresholds=[1.0, 1.5]))]:
        args = (extra.pop("class_thresholds"),) if "class_thresholds" in extra else ()
        for reduction in ("none", "mean", "sum"):
            got = _quiet(lambda: getattr(fd, fn)(  # noqa: B023 (called right here)
                dp, t, *args, reduction=reduction, **kw, **extra).compute())  # noqa: B023
            want = _quiet(getattr(fastloss, fn), p, t, *args, reduction=reduction, **kw,
                          **extra)
            np.testing.assert_array_equal(got, want)


def test_dask_surface_metrics_chunking_rules(rng):
    da = pytest.importorskip("dask.array")
    from dask.array import PerformanceWarning

    import fastloss.dask as fd

    p, t = _pair(rng, 2, (10, 9, 8), 3)
    dp = da.from_array(p, chunks=(1, 5, 9, 8))        # images split: rechunked
    with pytest.warns(PerformanceWarning, match="rechunking each image"):
        got = fd.hausdorff_distance(dp, t, num_classes=3)   # lazy: nothing computed yet
    np.testing.assert_array_equal(_quiet(got.compute),
                                  _quiet(fastloss.hausdorff_distance, p, t, num_classes=3))
    with pytest.raises(ValueError, match="needs each image whole"):
        fd.hausdorff_distance(dp, t, num_classes=3, rechunk=False)
    with pytest.raises(ValueError, match="same shape"):
        fd.surface_dice(dp, t[:1], [1.0, 1.0], num_classes=3)
    with pytest.raises(ValueError, match="reduction"):
        fd.average_surface_distance(dp, t, num_classes=3, reduction="max")


# ------------------------------------------------------------ medpy (pooled conventions)

@pytest.mark.parametrize("spacing", [None, (1.5, 0.8, 1.1)])
def test_pooled_mode_and_assd_match_medpy(rng, spacing):
    mb = pytest.importorskip("medpy.metric.binary")
    p, t = _pair(rng, 3, (18, 16, 14), 2)
    hd95 = fastloss.hausdorff_distance(p, t, num_classes=2, percentile=95, mode="pooled",
                                       spacing=spacing)
    hd = fastloss.hausdorff_distance(p, t, num_classes=2, mode="pooled", spacing=spacing)
    assd = fastloss.average_surface_distance(p, t, num_classes=2, symmetric=True,
                                             spacing=spacing)
    for n in range(3):
        a, b = p[n] == 1, t[n] == 1
        assert hd95[n, 0] == pytest.approx(mb.hd95(a, b, voxelspacing=spacing), rel=1e-12)
        assert hd[n, 0] == pytest.approx(mb.hd(a, b, voxelspacing=spacing), rel=1e-12)
        assert assd[n, 0] == pytest.approx(mb.assd(a, b, voxelspacing=spacing), rel=1e-12)


@pytest.mark.parametrize("shape,spacing", [((20, 17, 15), (1.0, 1.0, 1.0)),
                                           ((20, 17, 15), (1.5, 0.7, 1.2)),
                                           ((31, 26), (0.8, 1.3))])
def test_surface_dice_subvoxels_matches_monai(rng, shape, spacing):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_surface_dice

    C = 3
    p, t = _pair(rng, 2, shape, C)
    p[1][p[1] == 2] = 0                      # a missed class
    thr = [1.0, 1.7]
    got = _quiet(fastloss.surface_dice, p, t, thr, num_classes=C, spacing=spacing,
                 use_subvoxels=True)
    want = _quiet(compute_surface_dice, torch.from_numpy(_onehot(p, C)),
                  torch.from_numpy(_onehot(t, C)), thr, spacing=spacing, use_subvoxels=True)
    np.testing.assert_allclose(got, want.double().numpy(), rtol=1e-5, atol=1e-7)
    assert got[1, 1] == 0.0
    # one-hot input, and the default mode differs (edge voxels, not corner points)
    got1 = _quiet(fastloss.surface_dice, _onehot(p, C), _onehot(t, C), thr, spacing=spacing,
                  use_subvoxels=True)
    np.testing.assert_array_equal(got1, got)
    plain = _quiet(fastloss.surface_dice, p, t, thr, num_classes=C, spacing=spacing)
    assert not np.allclose(plain[0], got[0])
