"""The distance family: EDT vs SciPy, metrics vs MONAI and the reference, hand cases, errors."""

import warnings

import numpy as np
import pytest
from scipy import ndimage

import fastloss
import fastloss.reference as R
from tests._half import HALF, HALF_IDS

# ------------------------------------------------------------ distance_transform

SHAPES = [((37,), (1.0,)), ((37,), (0.3,)), ((23, 31), (1.0, 1.0)), ((23, 31), (2.5, 0.7)),
          ((13, 17, 19), (1.0, 1.0, 1.0)), ((13, 17, 19), (0.5, 1.7, 3.0)),
          ((4, 5, 6, 7), (1.0, 2.0, 0.5, 1.5))]


def _mask(rng, shape, p=0.85):
    return rng.random(shape) < p


@pytest.mark.parametrize("shape,spacing", SHAPES)
@pytest.mark.parametrize("dtype", [bool, np.float32, np.float64])
def test_edt_matches_scipy(rng, shape, spacing, dtype):
    m = _mask(rng, shape)
    m.flat[0] = False  # at least one background voxel
    x = m.astype(dtype)
    got = fastloss.distance_transform(x, spacing)
    want = ndimage.distance_transform_edt(m, sampling=spacing)
    assert got.dtype == np.float64 and got.shape == shape
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("shape,spacing", SHAPES[::2])
def test_edt_indices_point_at_a_nearest_site(rng, shape, spacing):
    m = _mask(rng, shape, 0.7)
    m.flat[-1] = False
    d, ind = fastloss.distance_transform(m, spacing, return_indices=True)
    want_d, want_ind = ndimage.distance_transform_edt(m, sampling=spacing, return_indices=True)
    assert ind.shape == want_ind.shape and ind.dtype == want_ind.dtype
    assert not m[tuple(ind)].any()  # every index is a background voxel
    grid = np.indices(shape)
    dist_to_site = np.sqrt(sum(((grid[a] - ind[a]) * spacing[a]) ** 2 for a in range(len(shape))))
    np.testing.assert_allclose(dist_to_site, want_d, rtol=1e-13)
    np.testing.assert_allclose(d, want_d, rtol=1e-13)


def test_edt_empty_full_single_voxel_and_border():
    assert np.array_equal(fastloss.distance_transform(np.zeros((5, 6), bool)), np.zeros((5, 6)))
    # no background at all: inf (SciPy measures to a phantom point outside the image)
    assert np.all(np.isinf(fastloss.distance_transform(np.ones((4, 3, 2), bool))))
    one = np.ones((9, 11), bool)
    one[4, 7] = False  # a single background voxel
    np.testing.assert_allclose(fastloss.distance_transform(one, (2.0, 1.0)),
                               ndimage.distance_transform_edt(one, sampling=(2.0, 1.0)))
    obj = np.zeros((7, 8, 9), bool)
    obj[3, 0, 8] = True  # one object voxel on the border
    d = fastloss.distance_transform(obj)
    assert d[3, 0, 8] == 1.0 and d.sum() == 1.0
    slab = np.zeros((6, 7), bool)
    slab[:, :3] = True  # object touching three borders: the border is not background
    np.testing.assert_array_equal(fastloss.distance_transform(slab),
                                  ndimage.distance_transform_edt(slab))


def test_edt_two_points_hand_computed():
    m = np.ones((5, 9), bool)
    m[0, 0] = m[4, 8] = False
    d = fastloss.distance_transform(m, spacing=(3.0, 1.0))
    assert d[0, 4] == 4.0  # (0, 4) -> (0, 0)
    assert d[4, 4] == 4.0
    assert d[2, 4] == pytest.approx(np.hypot(6.0, 4.0))


def test_edt_multilabel_and_signed(rng):
    lab = rng.integers(0, 4, size=(15, 16, 17)).astype(np.int16)
    lab[lab == 3] = 0
    got = fastloss.distance_transform(lab, (1.0, 2.0, 0.5))
    np.testing.assert_allclose(got, R.distance_transform(lab, (1.0, 2.0, 0.5)), rtol=1e-13)
    for dt in (np.uint8, np.int8, np.int32, np.int64, np.uint16):
        np.testing.assert_array_equal(fastloss.distance_transform(lab.astype(dt)),
                                      fastloss.distance_transform(lab))
    # a 0/1 label map is a mask
    m = rng.random((20, 21)) < 0.8
    np.testing.assert_array_equal(fastloss.distance_transform(m.astype(np.uint8)),
                                  ndimage.distance_transform_edt(m))
    sd = fastloss.distance_transform(m, (1.5, 1.0), signed=True)
    want = (ndimage.distance_transform_edt(m, sampling=(1.5, 1.0))
            - ndimage.distance_transform_edt(~m, sampling=(1.5, 1.0)))
    np.testing.assert_allclose(sd, want, rtol=1e-13)
    sd2, ind = fastloss.distance_transform(m, (1.5, 1.0), signed=True, return_indices=True)
    np.testing.assert_array_equal(sd2, sd)
    assert np.all(m[tuple(ind)] != m)  # the nearest site lies on the other side


def test_edt_matches_the_edt_package(rng):
    edt = pytest.importorskip("edt")
    lab = rng.integers(0, 4, size=(20, 21, 22)).astype(np.uint8)
    sp = (1.0, 2.0, 0.5)
    # edt returns float32: compare at its precision
    np.testing.assert_allclose(fastloss.distance_transform(lab, sp),
                               edt.edt(lab, anisotropy=sp), rtol=1e-6, atol=1e-6)
    m = rng.random((30, 31)) < 0.6
    np.testing.assert_allclose(fastloss.distance_transform(m, (1.5, 1.0), signed=True),
                               edt.sdf(m, anisotropy=(1.5, 1.0)), rtol=1e-6, atol=1e-6)


def test_edt_threads_bit_identical(rng):
    m = rng.random((40, 50, 60)) < 0.9
    a = fastloss.distance_transform(m, (0.7, 1.1, 1.9), n_threads=1)
    b = fastloss.distance_transform(m, (0.7, 1.1, 1.9), n_threads=2)
    assert a.tobytes() == b.tobytes()
    lab = rng.integers(0, 5, size=(30, 31, 32))
    a, ia = fastloss.distance_transform(lab, n_threads=1, signed=True, return_indices=True)
    b, ib = fastloss.distance_transform(lab, n_threads=2, signed=True, return_indices=True)
    assert a.tobytes() == b.tobytes() and np.array_equal(ia, ib)


def test_edt_noncontiguous_input(rng):
    m = rng.random((20, 30)) < 0.8
    v = m[:, ::2].T
    np.testing.assert_array_equal(fastloss.distance_transform(v),
                                  ndimage.distance_transform_edt(v))


@pytest.mark.parametrize("spacing,exc", [((1.0,), ValueError), ((1.0, 2.0, 3.0), ValueError),
                                         ((1.0, 0.0), ValueError), ((1.0, -2.0), ValueError),
                                         ((np.nan, 1.0), ValueError), ((1.0, np.inf), ValueError),
                                         ("ab", TypeError)])
def test_edt_bad_spacing(spacing, exc):
    with pytest.raises(exc, match="spacing"):
        fastloss.distance_transform(np.ones((3, 4), bool), spacing)


def test_edt_bad_input():
    with pytest.raises(TypeError, match="mask_or_labels"):
        fastloss.distance_transform(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="mask_or_labels"):
        fastloss.distance_transform(np.array(True))
    with pytest.raises(ValueError, match="n_threads"):
        fastloss.distance_transform(np.ones(3, bool), n_threads=0)


# ------------------------------------------------------------ metrics

def _blobs(rng, shape, C, n=6):
    """A label map of a few boxes per class (surfaces, not noise)."""
    lab = np.zeros(shape, dtype=np.uint8)
    for c in range(1, C):
        for _ in range(n):
            lo = [int(rng.integers(0, s - 2)) for s in shape]
            hi = [min(s, a + int(rng.integers(2, max(3, s // 2)))) for a, s in zip(lo, shape)]
            lab[tuple(slice(a, b) for a, b in zip(lo, hi))] = c
    return lab


def _pair(rng, N, shape, C):
    t = np.stack([_blobs(rng, shape, C) for _ in range(N)])
    p = np.stack([_blobs(rng, shape, C) for _ in range(N)])
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


# ------------------------------------------------------------ losses

def _blob_labels(rng, N, shape, C):
    return np.stack([_blobs(rng, shape, C) for _ in range(N)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch", [False, True])
def test_losses_match_monai(rng, reduction, batch):
    torch = pytest.importorskip("torch")
    losses = pytest.importorskip("monai.losses")
    x = rng.standard_normal((2, 3, 14, 12, 10))
    y = _blob_labels(rng, 2, (14, 12, 10), 3)
    y[1] = 0  # an image whose target fields are all zero
    cases = [(losses.HausdorffDTLoss, fastloss.hausdorff_dt_loss, {}, {}),
             (losses.HausdorffDTLoss, fastloss.hausdorff_dt_loss, dict(alpha=1.3),
              dict(alpha=1.3, include_background=True)),
             (losses.LogHausdorffDTLoss, fastloss.hausdorff_dt_loss, {}, dict(log=True)),
             (losses.BoundaryLoss, fastloss.boundary_loss, {}, {}),
             (losses.BoundaryLoss, fastloss.boundary_loss, dict(include_background=False),
              dict(include_background=False))]
    for cls, fn, mkw, fkw in cases:
        if "include_background" in fkw:
            mkw = dict(mkw, include_background=fkw["include_background"])
        xt = torch.from_numpy(x).requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = cls(softmax=True, to_onehot_y=True, reduction=reduction, batch=batch, **mkw)
            want = m(xt, torch.from_numpy(y)[:, None])
        want.sum().backward()
        got, grad = fn(x, y, reduction=reduction, batch=batch, return_grad=True, **fkw)
        # MONAI computes its distance maps in float32
        np.testing.assert_allclose(np.asarray(got).ravel(), want.detach().numpy().ravel(),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5,
                                   atol=1e-6 * np.abs(grad).max())
        assert float(np.asarray(fn(x, y, reduction=reduction, batch=batch, **fkw)).sum()) == \
            float(np.asarray(got).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_match_reference_and_keep_dtype(rng, dtype):
    x = rng.standard_normal((2, 2, 11, 13)).astype(dtype)
    t = (rng.random((2, 2, 11, 13)) < 0.4).astype(dtype)  # one-hot-shaped soft masks
    for fn, kw in [("hausdorff_dt_loss", dict(activation="sigmoid", include_background=True)),
                   ("boundary_loss", dict(activation="sigmoid", spacing=(0.5, 2.0))),
                   ("boundary_loss", dict(activation=None))]:
        got, g = getattr(fastloss, fn)(x, t, return_grad=True, **kw)
        want, gw = getattr(R, fn)(x, t, return_grad=True, **kw)
        assert got.dtype == dtype and g.dtype == dtype and g.shape == x.shape
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(float(got), want, rtol=rtol)
        np.testing.assert_allclose(g, gw, rtol=rtol, atol=rtol * np.abs(gw).max())


@pytest.mark.parametrize("dt", HALF, ids=HALF_IDS)
def test_losses_half_input_gradient_in_its_dtype(rng, dt):
    # computed in float32 (one widened copy): the loss is the float32 loss of
    # the widened values, the gradient the float32 gradient rounded
    x = rng.standard_normal((2, 3, 9, 7)).astype(dt)
    y = rng.integers(0, 3, (2, 9, 7))
    for fn, kw in [("hausdorff_dt_loss", dict(log=True)), ("boundary_loss", {}),
                   ("hausdorff_dt_loss", dict(reduction="none"))]:
        got, g = getattr(fastloss, fn)(x, y, return_grad=True, **kw)
        want, g32 = getattr(fastloss, fn)(x.astype(np.float32), y, return_grad=True, **kw)
        assert np.asarray(got).dtype == np.float32 and g.dtype == x.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(g, g32.astype(dt))
        # and no wider than the float64 reference allows
        _, gw = getattr(R, fn)(x.astype(np.float64), y, return_grad=True, **kw)
        np.testing.assert_allclose(g.astype(np.float64), gw,
                                   atol=(2.0 ** -9 if dt == np.float16 else 2.0 ** -6)
                                   * np.abs(gw).max())


def test_loss_gradients_by_finite_differences(rng):
    # logits away from 0: no probability crosses the 0.5 threshold of the maps
    x = rng.uniform(0.3, 2.0, (1, 2, 7, 6)) * rng.choice([-1.0, 1.0], (1, 2, 7, 6))
    y = _blob_labels(rng, 1, (7, 6), 2)
    for fn, kw in [(fastloss.hausdorff_dt_loss, dict(activation="softmax", log=True)),
                   (fastloss.boundary_loss, dict(activation="sigmoid"))]:
        _, g = fn(x, y, return_grad=True, **kw)
        num = np.zeros_like(x)
        eps = 1e-6
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += eps
            xm[i] -= eps
            num[i] = (float(fn(xp, y, **kw)) - float(fn(xm, y, **kw))) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-9)


def test_losses_threads_bit_identical(rng):
    # 2 images of 40 * 30 * 36 voxels: several partial-sum chunks per image
    x = rng.standard_normal((2, 3, 40, 30, 36)).astype(np.float32)
    y = _blob_labels(rng, 2, (40, 30, 36), 3)
    for fn, kw in [(fastloss.hausdorff_dt_loss, {}),
                   (fastloss.hausdorff_dt_loss, dict(alpha=1.5, log=True, reduction="none")),
                   (fastloss.boundary_loss, dict(batch=True))]:
        a, ga = fn(x, y, return_grad=True, n_threads=1, **kw)
        b, gb = fn(x, y, return_grad=True, n_threads=2, **kw)
        assert a.tobytes() == b.tobytes() and ga.tobytes() == gb.tobytes()


def test_losses_soft_targets_softmax_match_reference(rng):
    x = rng.standard_normal((2, 3, 9, 8, 7))
    t = rng.dirichlet(np.ones(3), size=(2, 9, 8, 7)).transpose(0, 4, 1, 2, 3)
    for fn, kw in [("hausdorff_dt_loss", dict(alpha=1.3)),
                   ("hausdorff_dt_loss", dict(log=True, reduction="none", batch=True)),
                   ("boundary_loss", dict(include_background=False, reduction="sum"))]:
        got, g = getattr(fastloss, fn)(x, t, return_grad=True, **kw)
        want, gw = getattr(R, fn)(x, t, return_grad=True, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        np.testing.assert_allclose(g, gw, rtol=1e-11, atol=1e-12 * np.abs(gw).max())


@pytest.mark.parametrize("fn", [fastloss.hausdorff_dt_loss, fastloss.boundary_loss])
def test_loss_bad_input(fn):
    x = np.zeros((2, 3, 5, 6))
    y = np.zeros((2, 5, 6), dtype=np.int64)
    with pytest.raises(ValueError, match="target"):
        fn(x, np.zeros((2, 5, 7), np.int64))
    with pytest.raises(TypeError, match="target"):
        fn(x, y.astype(np.float32))
    bad = y.copy()
    bad[1, 2, 3] = 3
    with pytest.raises(ValueError, match="target holds class index 3"):
        fn(x, bad)
    with pytest.raises(ValueError, match="activation"):
        fn(x, y, activation="relu")
    with pytest.raises(ValueError, match="reduction"):
        fn(x, y, reduction="batch")
    with pytest.raises(ValueError, match="input"):
        fn(np.zeros((2, 3)), y)
    with pytest.raises(TypeError, match="input"):
        fn(x.astype(complex), y)
    if fn is fastloss.boundary_loss:
        with pytest.raises(ValueError, match="spacing"):
            fn(x, y, spacing=(1.0, -1.0))
    else:
        with pytest.raises(ValueError, match="alpha"):
            fn(x, y, alpha=-1.0)


# ------------------------------------------------------------ unet_weight_map

def test_unet_weight_map_matches_reference(rng):
    scipy_nd = pytest.importorskip("scipy.ndimage")
    lab = np.stack([_blobs(rng, (40, 37), 3, n=5) for _ in range(2)])
    for kw in [dict(), dict(class_weight=None, w0=5.0, sigma=3.0),
               dict(class_weight=[1.0, 2.0, 0.5])]:
        np.testing.assert_allclose(fastloss.unet_weight_map(lab, **kw),
                                   R.unet_weight_map(lab, **kw), rtol=1e-12)
    # explicit instances: both cells of one class, touching images
    inst = np.stack([scipy_nd.label(lab[n] != 0)[0] for n in range(2)])
    np.testing.assert_array_equal(fastloss.unet_weight_map(lab, instances=inst),
                                  fastloss.unet_weight_map(lab))
    a = fastloss.unet_weight_map(lab.astype(np.int16), n_threads=1)
    b = fastloss.unet_weight_map(lab.astype(np.int16), n_threads=2)
    assert a.tobytes() == b.tobytes()


def test_unet_weight_map_hand_case_and_errors():
    lab = np.zeros((1, 5, 9), dtype=np.uint8)
    lab[0, :, :3] = 1
    lab[0, :, 6:] = 2  # two objects of two classes, a 3-pixel gap
    w = fastloss.unet_weight_map(lab, w0=10.0, sigma=2.0, class_weight=None)
    gap = 1.0 + 10.0 * np.exp(-16.0 / 8.0)  # d1 + d2 = 4 in the gap
    np.testing.assert_allclose(w[0, :, 3:6], gap)
    assert np.all(w[0, :, :3] == 1.0) and np.all(w[0, :, 6:] == 1.0)
    one = np.zeros((1, 5, 9), dtype=np.uint8)
    one[0, 1:3, 1:3] = 1  # a single instance: no border term
    assert np.all(fastloss.unet_weight_map(one, class_weight=None) == 1.0)
    with pytest.raises(ValueError, match="labels"):
        fastloss.unet_weight_map(np.zeros(5, np.uint8))
    with pytest.raises(TypeError, match="labels"):
        fastloss.unet_weight_map(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="labels"):
        fastloss.unet_weight_map(-np.ones((1, 5), np.int8))
    with pytest.raises(ValueError, match="sigma"):
        fastloss.unet_weight_map(lab, sigma=0.0)
    with pytest.raises(ValueError, match="w0"):
        fastloss.unet_weight_map(lab, w0=-1.0)
    with pytest.raises(ValueError, match="class_weight"):
        fastloss.unet_weight_map(lab, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="class_weight"):
        fastloss.unet_weight_map(lab, class_weight="inverse")
    with pytest.raises(ValueError, match="instances"):
        fastloss.unet_weight_map(lab, instances=np.zeros((1, 5, 8), np.int32))


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


def test_metrics_and_losses_on_empty_batches_and_full_images():
    z = np.zeros((0, 4, 5), np.uint8)
    assert fastloss.hausdorff_distance(z, z, num_classes=3).shape == (0, 2)
    zo = np.zeros((0, 3, 4, 5), bool)
    assert fastloss.surface_dice(zo, zo, [1.0, 1.0]).shape == (0, 2)
    full = np.ones((1, 4, 5), np.uint8)
    with pytest.warns(UserWarning):
        hd = fastloss.hausdorff_distance(full, full, num_classes=2, include_background=True)
    assert np.isnan(hd[0, 0]) and hd[0, 1] == 0.0  # absent in both; the same full image
    assert fastloss.hausdorff_dt_loss(np.zeros((0, 2, 3, 3)), np.zeros((0, 3, 3), np.int64),
                                      reduction="none").shape == (0, 1)
    loss, g = fastloss.boundary_loss(np.zeros((1, 2, 3, 3), np.float32),
                                     np.zeros((1, 3, 3), np.int64), return_grad=True)
    assert loss == 0 and not g.any()  # an absent or full class has a zero map


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


@pytest.mark.parametrize("shape,spacing", [((41,), (0.7,)), ((17, 23), (1.0, 2.0)),
                                           ((9, 11, 13), (1.5, 1.0, 0.6))])
def test_edt_label_map_indices_match_reference(rng, shape, spacing):
    lab = rng.integers(0, 4, size=shape).astype(np.int16)
    lab[(slice(0, 3),) * len(shape)] = 2                 # a block: interior distances > 1
    d, ind = fastloss.distance_transform(lab, spacing, return_indices=True)
    rd, rind = R.distance_transform(lab, spacing, return_indices=True)
    np.testing.assert_allclose(d, rd, rtol=1e-12)
    # ties may pick another site at the same distance: compare the distances
    # to the sites each returned, and that each site holds another label
    w = np.asarray(spacing).reshape((-1,) + (1,) * len(shape))
    grid = np.indices(shape)
    for idx in (ind, rind):
        np.testing.assert_allclose(np.sqrt((((idx - grid) * w) ** 2).sum(axis=0)), d,
                                   rtol=1e-12, atol=1e-12)
        site = lab[tuple(idx)]
        assert np.all((lab == 0) | (site != lab))
    np.testing.assert_array_equal(rind[:, lab == 0], grid[:, lab == 0])
    # one label filling the image: no site (-1), in both
    full = np.ones(shape, dtype=np.uint8) * 3
    assert np.all(fastloss.distance_transform(full, return_indices=True)[1] == -1)
    assert np.all(R.distance_transform(full, return_indices=True)[1] == -1)
