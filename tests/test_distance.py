"""The distance family: EDT vs SciPy, the losses vs MONAI and the reference, the U-Net
weight map, hand cases, errors (the surface metrics: test_surface_metrics.py)."""

import warnings

import numpy as np
import pytest
from scipy import ndimage

import fastloss
import fastloss.reference as R
from tests._blobs import blobs
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


@pytest.mark.parametrize("spacing", [None, (1.3, 0.7, 2.1)])
def test_edt_short_and_long_distances_every_path(rng, spacing):
    """Strided lines of one-byte labels go 8 at a time by their nearby sites
    (AVX-512 builds) where the distances are short, and to the lower
    envelope where they are long (a large empty region), with indices, or
    when the labels are wider: the same values on every path (with unit
    spacing to the bit; with other spacings two sites at the same distance
    in real numbers can differ by an ulp, and the paths may take either),
    and the reference's."""
    lab = np.zeros((30, 41, 77), dtype=np.uint8)
    lab[:, :20] = rng.integers(0, 3, (30, 20, 77))   # short distances
    lab[5:25, 25:35, 10:60] = 2                      # a block in a wide empty region
    tol = dict(rtol=0) if spacing is None else dict(rtol=4e-16)
    for m in (lab, lab > 0):
        got = fastloss.distance_transform(m, spacing)
        np.testing.assert_allclose(fastloss.distance_transform(m.astype(np.uint16), spacing),
                                   got, **tol)
        d, ind = fastloss.distance_transform(m, spacing, return_indices=True)
        np.testing.assert_allclose(d, got, **tol)
        np.testing.assert_allclose(got, R.distance_transform(m, spacing), rtol=1e-13)
        fg = m != 0
        assert np.all(m[tuple(ind)][fg] != m[fg])


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


# ------------------------------------------------------------ losses

def _blob_labels(rng, N, shape, C):
    return np.stack([blobs(rng, shape, C) for _ in range(N)])


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
    lab = np.stack([blobs(rng, (40, 37), 3, n=5) for _ in range(2)])
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
