"""fastloss.dask against the in-memory functions: chunkings, schedulers, errors."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import fastloss  # noqa: E402
import fastloss.dask as fd  # noqa: E402

RTOL = 1e-12

CHUNKINGS = [  # (N, C, H, W) chunks: batch only, spatial only, both, ragged
    (1, 4, 12, 10), (5, 4, 3, 10), (2, 4, 5, 3), (3, 4, 7, 1),
]


def _close(got, want, rtol=RTOL):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=2.0, size=(6, 4, 12, 10))
    y = rng.integers(0, 4, size=(6, 12, 10)).astype(np.uint8)
    pred = rng.integers(0, 4, size=y.shape).astype(np.int32)
    sw = rng.uniform(size=y.shape)
    return x, y, pred, sw


def _dask(x, y, chunks, *more):
    lab = chunks[:1] + chunks[2:]
    return (da.from_array(x, chunks=chunks), da.from_array(y, chunks=lab)) + \
        tuple(da.from_array(m, chunks=lab) for m in more)


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_classification_chunkings(data, chunks):
    x, y, _, sw = data
    X, Y, SW = _dask(x, y, chunks, sw)
    w = np.array([0.5, 1.0, 2.0, 1.5])
    got = fd.cross_entropy(X, Y, weight=w, sample_weight=SW, label_smoothing=0.1)
    assert isinstance(got, da.Array) and got.shape == ()
    _close(got.compute(), fastloss.cross_entropy(x, y, weight=w, sample_weight=sw,
                                                 label_smoothing=0.1))
    _close(fd.cross_entropy(X, Y, reduction="sum").compute(),
           fastloss.cross_entropy(x, y, reduction="sum"))
    _close(fd.cross_entropy(X, Y, reduction="none").compute(),
           fastloss.cross_entropy(x, y, reduction="none"), rtol=0)
    lp = fastloss.log_softmax(x, axis=1)
    _close(fd.nll_loss(da.from_array(lp, chunks=chunks), Y, ignore_index=2).compute(),
           fastloss.nll_loss(lp, y, ignore_index=2))
    p = fastloss.softmax(x, axis=1)
    _close(fd.cross_entropy(X, da.from_array(p, chunks=chunks)).compute(),
           fastloss.cross_entropy(x, p))


def test_classification_float32(data):
    x, y, _, _ = data
    x32 = x.astype(np.float32)
    X, Y = _dask(x32, y, (2, 4, 5, 3))
    got = fd.cross_entropy(X, Y).compute()
    assert got.dtype == np.float32
    # float64 block sums: the float32 results agree to float32 rounding
    _close(got, fastloss.cross_entropy(x32, y), rtol=2.5e-7)


SOFT = [
    ("dice_loss", {}), ("dice_loss", {"batch": True, "squared_pred": True}),
    ("jaccard_loss", {"include_background": False}),
    ("tversky_loss", {"alpha": 0.3, "beta": 0.7, "batch": True}),
    ("focal_tversky_loss", {"gamma": 0.5}), ("generalized_dice_loss", {}),
    ("sensitivity_specificity_loss", {"r": 0.2}),
    ("dice_ce_loss", {"lambda_dice": 0.7}), ("dice_ce_loss", {"batch": True}),
]


@pytest.mark.parametrize("chunks", CHUNKINGS[1:3])
@pytest.mark.parametrize("loss,opts", SOFT)
def test_soft_dice_family(data, chunks, loss, opts):
    x, y, _, _ = data
    X, Y = _dask(x, y, chunks)
    got = getattr(fd, loss)(X, Y, **opts)
    assert isinstance(got, da.Array)
    _close(got.compute(), getattr(fastloss, loss)(x, y, **opts))
    if loss != "dice_ce_loss":
        _close(getattr(fd, loss)(X, Y, reduction="none", **opts).compute(),
               getattr(fastloss, loss)(x, y, reduction="none", **opts))


def test_soft_dice_ignore_weights_and_soft_targets(data):
    x, y, _, sw = data
    y2 = y.copy()
    y2[:, :2] = 255
    X, Y, SW = _dask(x, y2, (2, 4, 5, 3), sw)
    w = np.array([0.5, 1.0, 2.0, 1.5])
    _close(fd.dice_ce_loss(X, Y, ignore_index=255, weight=w, sample_weight=SW).compute(),
           fastloss.dice_ce_loss(x, y2, ignore_index=255, weight=w, sample_weight=sw))
    t = np.random.default_rng(5).uniform(size=x.shape)
    _close(fd.dice_loss(X, da.from_array(t, chunks=X.chunks), activation="sigmoid").compute(),
           fastloss.dice_loss(x, t, activation="sigmoid"))


def test_dice_accumulator_from_dask(data):
    x, y, _, sw = data
    X, Y, SW = _dask(x, y, (4, 4, 5, 3), sw)
    lazy = fd.dice_accumulator(X, Y, ce=True, sample_weight=SW)
    acc = lazy.compute()
    _close(acc.result("dice_ce_loss"), fastloss.dice_ce_loss(x, y, batch=True, sample_weight=sw))
    _close(acc.per_class("jaccard_loss"), fastloss.jaccard_loss(x, y, batch=True,
                                                                reduction="none"))
    with pytest.raises(ValueError, match="ce=True needs activation='softmax'"):
        fd.dice_accumulator(X, Y, ce=True, activation="sigmoid")


@pytest.mark.parametrize("chunks", [(6, 12, 10), (1, 5, 3), (4, 12, 1)])
def test_hard_metrics_bit_identical(data, chunks):
    _, y, pred, _ = data
    P, Y = da.from_array(pred, chunks=chunks), da.from_array(y, chunks=chunks)
    cm = fd.confusion_matrix(P, Y, 4, ignore_index=3)
    assert isinstance(cm, da.Array) and cm.dtype == np.int64
    assert np.array_equal(cm.compute(), fastloss.confusion_matrix(pred, y, 4, ignore_index=3))
    np.testing.assert_array_equal(fd.dice_score(P, Y, 4).compute(), fastloss.dice_score(pred, y, 4))
    np.testing.assert_array_equal(fd.iou_score(P, Y, 4, per_image=True).compute(),
                                  fastloss.iou_score(pred, y, 4, per_image=True))
    # a class absent from the target: NaN by default (MONAI), empty_score with
    # ignore_empty=False where it is absent from both, as the in-memory functions
    y2, pred2 = np.where(y == 2, 0, y), np.where(pred == 2, 0, pred)
    pred2[0, 0, 0] = 2   # predicted once in image 0, never in the target
    P2, Y2 = da.from_array(pred2, chunks=chunks), da.from_array(y2, chunks=chunks)
    for kw in ({}, {"ignore_empty": False, "empty_score": 1.0}):
        for fn in ("dice_score", "iou_score"):
            got = getattr(fd, fn)(P2, Y2, 4, per_image=True, **kw).compute()
            want = getattr(fastloss, fn)(pred2, y2, 4, per_image=True, **kw)
            np.testing.assert_array_equal(got, want)
            assert np.isnan(want[:, 2]).all() == (kw == {})


ELEMENTWISE = [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("huber_loss", {"delta": 0.3}), ("log_cosh_loss", {}), ("pseudo_huber_loss", {}),
    ("mean_bias_error", {}), ("binary_cross_entropy", {}),
    ("binary_cross_entropy_with_logits", {}), ("soft_margin_loss", {}), ("kl_div", {}),
    ("sigmoid_focal_loss", {"reduction": "mean"}), ("hinge_loss", {"margin": 0.5}),
    ("exponential_loss", {}), ("multilabel_soft_margin_loss", {}), ("js_div", {}),
]


@pytest.mark.parametrize("name,opts", ELEMENTWISE)
def test_elementwise(name, opts):
    rng = np.random.default_rng(6)
    x, t = rng.uniform(0.05, 0.95, size=(9, 7)), rng.uniform(0.05, 0.95, size=(9, 7))
    if name in ("hinge_loss", "exponential_loss"):
        t = np.where(t > 0.5, 1.0, -1.0)
    X, T = da.from_array(x, chunks=(4, 3)), da.from_array(t, chunks=(4, 3))
    ctx = warnings.catch_warnings()
    with ctx:  # the along-axis losses rechunk the reduced axis
        warnings.simplefilter("ignore")
        _close(getattr(fd, name)(X, T, **opts).compute(), getattr(fastloss, name)(x, t, **opts))
        o = dict(opts, reduction="sum")
        _close(getattr(fd, name)(X, T, **o).compute(), getattr(fastloss, name)(x, t, **o))
        o = dict(opts, reduction="none")
        # per element: equal up to the kernel's SIMD-body vs tail rounding
        _close(getattr(fd, name)(X, T, **o).compute(), getattr(fastloss, name)(x, t, **o),
               rtol=1e-15)


def test_elementwise_weights_penalties_gan():
    rng = np.random.default_rng(7)
    x, t = rng.normal(size=(8, 6)), rng.uniform(size=(8, 6))
    sw, pw, w = rng.uniform(size=(8, 6)), rng.uniform(0.5, 2, 6), rng.uniform(size=(8, 6))
    X, T = da.from_array(x, chunks=(3, 4)), da.from_array(t, chunks=(3, 4))
    _close(fd.binary_cross_entropy_with_logits(X, T, weight=w, pos_weight=pw,
                                               sample_weight=sw).compute(),
           fastloss.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                     sample_weight=sw))
    _close(fd.kl_div(X, T, reduction="batchmean").compute(),
           fastloss.kl_div(x, t, reduction="batchmean"))
    _close(fd.elastic_net_penalty(X, x[0], l1_ratio=0.3).compute(),
           fastloss.elastic_net_penalty(x, x[0], l1_ratio=0.3))
    _close(fd.gan_discriminator_loss(X, T).compute(), fastloss.gan_discriminator_loss(x, t))
    _close(fd.gan_generator_loss(X, False, "sum").compute(),
           fastloss.gan_generator_loss(x, False, "sum"))


# -------------------------------------------------------------- schedulers

def _graph(data):
    x, y, pred, _ = data
    X, Y = _dask(x, y, (2, 4, 5, 3))
    P = da.from_array(pred, chunks=Y.chunks)
    lazy = (fd.cross_entropy(X, Y), fd.dice_ce_loss(X, Y), fd.confusion_matrix(P, Y, 4))
    want = (fastloss.cross_entropy(x, y), fastloss.dice_ce_loss(x, y),
            fastloss.confusion_matrix(pred, y, 4))
    return lazy, want


def _check(got, want):
    _close(got[0], want[0])
    _close(got[1], want[1])
    assert np.array_equal(got[2], want[2])


@pytest.mark.parametrize("scheduler", ["threads", "synchronous", "processes"])
def test_local_schedulers(data, scheduler):
    lazy, want = _graph(data)
    kw = {"num_workers": 2} if scheduler != "synchronous" else {}
    _check(dask.compute(*lazy, scheduler=scheduler, **kw), want)


def test_distributed_local_cluster(data):
    distributed = pytest.importorskip("distributed")
    lazy, want = _graph(data)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = client.compute(list(lazy), sync=True)
    _check(got, want)


# ------------------------------------------------------------------ errors

def test_class_axis_chunked(data):
    x, y, _, _ = data
    X, Y = da.from_array(x, chunks=(2, 2, 6, 10)), da.from_array(y, chunks=(2, 6, 10))
    with pytest.raises(ValueError, match="chunked along its class axis 1 .*rechunk"):
        fd.cross_entropy(X, Y, rechunk=False)
    with pytest.warns(da.PerformanceWarning, match="rechunking it to one chunk copies"):
        got = fd.dice_loss(X, Y)
    _close(got.compute(), fastloss.dice_loss(x, y))
    with pytest.raises(ValueError, match="p is chunked along its class axis 1"):
        fd.js_div(da.ones((4, 6), chunks=2), np.ones((4, 6)), rechunk=False)


def test_misaligned_label_chunks(data):
    x, y, pred, _ = data
    X = da.from_array(x, chunks=(2, 4, 6, 10))
    Y = da.from_array(y, chunks=(3, 6, 10))
    with pytest.raises(ValueError, match=r"target chunks .* are not aligned with input's chunks "
                                         r"along target axis 0 .*rechunk"):
        fd.cross_entropy(X, Y)
    with pytest.raises(ValueError, match="not aligned with input's chunks along target axis 2"):
        fd.dice_loss(X, da.from_array(y, chunks=(2, 6, 5)))
    with pytest.raises(ValueError, match="not aligned with pred's chunks"):
        fd.confusion_matrix(da.from_array(pred, chunks=2), Y, 4)
    with pytest.raises(ValueError, match=r"target of class indices must have shape \(6, 12, 10\)"):
        fd.cross_entropy(X, y[:, :5])
    with pytest.raises(ValueError, match="target label map must have shape"):
        fd.dice_loss(X, y[:3])


def test_other_errors(data):
    x, y, _, _ = data
    X = da.from_array(x, chunks=(2, 4, 6, 10))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fd.cross_entropy(X, y, reduction="max")
    with pytest.raises(ValueError, match="alpha must be in"):
        fd.tversky_loss(X, y, alpha=-1.0)
    with pytest.raises(TypeError, match="integer class indices"):
        fd.cross_entropy(X, y[..., None].astype(np.float64)[..., 0])
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        Xn = X[X[:, 0, 0, 0] > 0]
        fd.cross_entropy(Xn, y[:1])
    bad = y.copy()
    bad[5, 11, 9] = 9
    with pytest.raises(ValueError, match="target holds class index 9"):
        fd.cross_entropy(X, bad).compute()
