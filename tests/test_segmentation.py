"""Segmentation family: vs the NumPy reference, MONAI, torch autograd, errors."""

import itertools

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref
from fastloss.testing import check_grad

torch = pytest.importorskip("torch")
monai_losses = pytest.importorskip("monai.losses")

SOFT_LOSSES = ["dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
               "generalized_dice_loss", "sensitivity_specificity_loss", "dice_ce_loss"]


def _data(shape=(2, 3, 5, 6), dtype=np.float64, ldtype=np.uint8, seed=0, empty=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(dtype) * 2
    y = rng.integers(0, shape[1], size=(shape[0],) + shape[2:]).astype(ldtype)
    if empty is not None:
        y[y == empty] = (empty + 1) % shape[1]
    return x, y


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-10)


def _kw_for(name, kw):
    kw = dict(kw)
    if name in ("tversky_loss", "focal_tversky_loss", "generalized_dice_loss",
                "sensitivity_specificity_loss"):
        kw.pop("squared_pred", None)
    if name == "generalized_dice_loss":
        kw.pop("weight", None)
    if name == "dice_ce_loss":
        kw.pop("activation", None)
        if kw.get("reduction") == "none":
            kw["reduction"] = "sum"
    return kw


# ------------------------------------------------------------- vs reference

OPTIONS = [
    dict(),
    dict(include_background=False),
    dict(squared_pred=True),
    dict(batch=True),
    dict(ignore_index=1),
    dict(ignore_index=255),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(activation="sigmoid"),
    dict(activation=None),
    dict(smooth_nr=0.0, smooth_dr=1e-3, batch=True, include_background=False),
]


@pytest.mark.parametrize("name", SOFT_LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (2, 4, 3, 4, 5)], ids=["2d", "3d"])
def test_vs_reference(name, dtype, shape):
    x, y = _data(shape, dtype, np.int64 if len(shape) == 5 else np.uint8)
    x[0, :, 0] = 7.0  # some confident positions
    for kw in OPTIONS:
        kw = _kw_for(name, kw)
        if kw.get("activation", "softmax") is None:
            x_in = ref._segmentation._activate(x.astype(np.float64), "softmax").astype(dtype)
        else:
            x_in = x
        if kw.get("ignore_index") == 255:
            y2 = y.copy()
            y2[:, 0] = 255
        else:
            y2 = y
        got = getattr(fl, name)(x_in, y2, **kw)
        want = getattr(ref, name)(x_in, y2, **kw)
        assert np.asarray(got).dtype == dtype, kw
        np.testing.assert_allclose(got, want, err_msg=str(kw), **_tol(dtype))


@pytest.mark.parametrize("C", [2, 3, 4, 5, 6, 7, 8, 9])
def test_float32_softmax_block_every_class_count(C):
    # float32 softmax over 2-8 classes with a label map takes the one-loop
    # block (flseg.h, with the squared sums of squared_pred too), 9 classes
    # the passes; 350 positions: a partial block
    x, y = _data((2, C, 7, 50), np.float32, np.int16, seed=C)
    x[1, :, 3] = 40.0                               # ties at a large shift
    y[0, 2, :9] = 250                               # the ignore_index=250 calls skip these
    for name, kw in [("dice_loss", {}), ("dice_loss", dict(include_background=False)),
                     ("dice_loss", dict(ignore_index=250, batch=True)),
                     ("jaccard_loss", dict(reduction="none")),
                     ("dice_loss", dict(squared_pred=True)),
                     ("jaccard_loss", dict(squared_pred=True, ignore_index=250)),
                     ("dice_ce_loss", dict(squared_pred=True, ignore_index=250)),
                     ("dice_ce_loss", dict(ignore_index=250)),
                     ("dice_ce_loss", dict(weight=np.linspace(0.5, 2.0, C), lambda_dice=0.5,
                                           ignore_index=250)),
                     ("dice_ce_loss", dict(sample_weight=np.linspace(0.5, 2.0, 700).reshape(
                                               2, 7, 50), ignore_index=250))]:
        yy = y if "ignore_index" in kw else np.where(y == 250, 1, y).astype(y.dtype)
        got, g = getattr(fl, name)(x, yy, return_grad=True, **kw)
        want = getattr(ref, name)(x, yy, **kw)
        np.testing.assert_allclose(got, want, err_msg=f"{name} {kw}", **_tol(np.float32))
        if kw.get("reduction") != "none":
            # float64 takes the passes: the gradients agree to float32 rounding
            _, g64 = getattr(fl, name)(x.astype(np.float64), yy, return_grad=True, **kw)
            np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-6 * np.abs(g64).max(),
                                       err_msg=f"{name} {kw} grad")
        # the half-precision path widens each block and runs the same block
        xb = x.astype(np.float16)
        np.testing.assert_allclose(getattr(fl, name)(xb, yy, **kw),
                                   getattr(ref, name)(xb.astype(np.float64), yy, **kw),
                                   err_msg=f"{name} {kw} f16", **_tol(np.float32))
    # dice_ce's Dice sums come from the same block with its cross-entropy
    # added: with lambda_ce=0 the loss is dice_loss's bit for bit
    yy = np.where(y == 250, 1, y).astype(y.dtype)
    for kw in ({}, dict(squared_pred=True)):
        assert fl.dice_ce_loss(x, yy, lambda_ce=0.0, **kw) == fl.dice_loss(x, yy, **kw)
    bad = np.where(y == 250, 1, y).astype(y.dtype)
    bad[1, 4, 17] = C
    with pytest.raises(ValueError, match=rf"class index {C} at flat position {350 + 4 * 50 + 17}"):
        fl.dice_ce_loss(x, bad)


def test_float32_dice_ce_large_logits():
    # the one-loop block takes each position's cross-entropy in float as
    # (shift - x_y) + log(sum): no digits lost to a large common offset
    x, y = _data((2, 4, 16, 16, 16), np.float32, seed=3)
    for off in (1e2, 1e3, 1e4):
        xo = x + np.float32(off)
        for kw in ({}, dict(weight=[0.5, 1.0, 2.0, 1.5], include_background=False)):
            got = fl.dice_ce_loss(xo, y, lambda_dice=0.0, **kw)
            want = fl.dice_ce_loss(xo.astype(np.float64), y, lambda_dice=0.0, **kw)
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{off} {kw}")


@pytest.mark.parametrize("name", SOFT_LOSSES)
def test_soft_targets_and_weights(name):
    x, y = _data((2, 3, 4, 5))
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    rng = np.random.default_rng(1)
    soft = rng.dirichlet(np.ones(3), size=(2, 4, 5)).transpose(0, 3, 1, 2).copy()
    kw = {} if name == "generalized_dice_loss" else dict(weight=[0.5, 2.0, 1.0])
    f = getattr(fl, name)
    if name != "dice_ce_loss":  # torch's weighted CE 'mean' differs between the two forms
        np.testing.assert_allclose(f(x, onehot, **kw), f(x, y, **kw), rtol=1e-12)
    for sq in ([False, True] if name in ("dice_loss", "jaccard_loss", "dice_ce_loss") else [False]):
        kw2 = dict(kw, squared_pred=True) if sq else kw
        np.testing.assert_allclose(f(x, soft, **kw2), getattr(ref, name)(x, soft, **kw2),
                                   rtol=1e-10)
    # MONAI's (N, 1, *spatial) label form
    np.testing.assert_allclose(f(x, y[:, None], **kw), f(x, y, **kw), rtol=1e-15)


def test_single_channel_binary():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 1, 4, 4))
    y = rng.integers(0, 2, size=(2, 4, 4))
    for name in SOFT_LOSSES[:-1]:
        got = getattr(fl, name)(x, y, activation="sigmoid")
        want = getattr(ref, name)(x, y, activation="sigmoid")
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(fl.dice_loss(x, y, activation="sigmoid"),
                               fl.dice_loss(x, y[:, None].astype(np.float64), activation="sigmoid"))


def test_integer_onehot_target():
    # the case: a uint8 one-hot target of the input's shape
    x = np.zeros((1, 2, 3), np.float32)
    t = np.array([[[1, 0, 1], [0, 1, 0]]], np.uint8)
    want = fl.dice_loss(x, t.astype(np.float32))
    np.testing.assert_equal(fl.dice_loss(x, t), want)
    np.testing.assert_equal(fl.dice_loss(x, t.astype(bool)), want)
    np.testing.assert_allclose(fl.dice_loss(x, t), fl.dice_loss(x, np.array([[0, 1, 0]])),
                               rtol=1e-6)
    xt = torch.tensor(x)
    m = monai_losses.DiceLoss(softmax=True)(xt, torch.tensor(t))
    np.testing.assert_allclose(fl.dice_loss(x, t), m.item(), rtol=1e-6)
    x2, y2 = _data((2, 3, 4, 5), seed=11)
    oh = np.moveaxis(np.eye(3, dtype=np.int64)[y2], -1, 1)
    for f in ("dice_ce_loss", "tversky_loss", "generalized_dice_loss"):
        a, ga = getattr(fl, f)(x2, oh, return_grad=True)
        b, gb = getattr(fl, f)(x2, oh.astype(np.float64), return_grad=True)
        assert a == b and np.array_equal(ga, gb), f


def test_softmax_single_channel_warns():
    x, y = _data((2, 1, 4, 3), seed=12)
    y = (y % 2).astype(np.uint8)
    p = 1 / (1 + np.exp(-x))
    for f in ("dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
              "generalized_dice_loss"):
        with pytest.warns(UserWarning, match="single channel prediction, activation='softmax'"):
            got = getattr(fl, f)(p, y)
        np.testing.assert_equal(got, getattr(fl, f)(p, y, activation=None))
    xt = torch.tensor(p)
    with pytest.warns(UserWarning, match="single channel"):
        m = monai_losses.DiceLoss(softmax=True)(xt, torch.tensor(y[:, None].astype(np.float64)))
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(fl.dice_loss(p, y), m.item(), rtol=1e-10)


def test_ignore_index_target_forms():
    x, y = _data((2, 3, 5, 4), seed=13)
    xt = torch.tensor(x)
    # one channel, (N, 1, H, W) target holding 0, 1 and 255 (the 0.596 case)
    x1 = x[:, :1]
    y1 = (y % 2).astype(np.int64)[:, None]
    y1[0, 0, 1, :] = 255
    for ig, yy in ((255, y1), (0, (y1 % 2)[:, :, ::-1].copy())):
        m = monai_losses.DiceLoss(sigmoid=True, ignore_index=ig)(torch.tensor(x1),
                                                                  torch.tensor(yy))
        for t in (yy, yy[:, 0], yy.astype(np.float64)):
            np.testing.assert_allclose(fl.dice_loss(x1, t, activation="sigmoid",
                                                    ignore_index=ig), m.item(), rtol=1e-10)
            np.testing.assert_allclose(ref.dice_loss(x1, t, activation="sigmoid",
                                                     ignore_index=ig), m.item(), rtol=1e-10)
    # one-hot targets: an index in [0, C) drops that class's positions,
    # another value the positions of no class (MONAI's create_ignore_mask)
    oh = np.moveaxis(np.eye(3, dtype=np.uint8)[y], -1, 1)
    oh_gap = oh.copy()
    oh_gap[1, :, 2, :] = 0
    for t, ig in ((oh, 1), (oh, 2), (oh_gap, 255), (oh_gap, -1)):
        for cls, f, kw in ((monai_losses.DiceLoss, fl.dice_loss, {}),
                           (monai_losses.DiceLoss, fl.jaccard_loss, dict(jaccard=True)),
                           (monai_losses.TverskyLoss, fl.tversky_loss, dict(alpha=0.3, beta=0.7))):
            xg = xt.clone().requires_grad_()
            m = cls(softmax=True, ignore_index=ig, **kw)(xg, torch.tensor(t))
            (gm,) = torch.autograd.grad(m, xg)
            ours = {k: v for k, v in kw.items() if k != "jaccard"}
            got, g = f(x, t, ignore_index=ig, return_grad=True, **ours)
            np.testing.assert_allclose(got, m.item(), rtol=1e-10, err_msg=f"{f.__name__} {ig}")
            np.testing.assert_allclose(got, getattr(ref, f.__name__)(x, t, ignore_index=ig,
                                                                     **ours), rtol=1e-10)
            np.testing.assert_allclose(g, gm.numpy(), rtol=1e-7, atol=1e-12)


# ------------------------------------------------------------------ vs MONAI

def _monai(cls, x, y, **kw):
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.tensor(y.astype(np.int64))[:, None]
    loss = cls(softmax=True, to_onehot_y=True, **kw)(xt, yt)
    (g,) = torch.autograd.grad(loss.sum(), xt)
    return loss.detach().numpy(), g.numpy()


MONAI_OPTIONS = [dict(include_background=ib, squared_pred=sq, batch=b, jaccard=j)
                 for ib, sq, b, j in itertools.product([True, False], repeat=4)
                 if (ib + sq + b + j) % 2 == 0 or not (sq or j)]


@pytest.mark.parametrize("kw", MONAI_OPTIONS, ids=str)
def test_dice_vs_monai(kw):
    x, y = _data((2, 3, 4, 3, 5), np.float64, np.uint8, seed=5)
    for red in ("mean", "sum", "none"):
        w1 = [0.3, 1.0] if not kw["include_background"] else [0.3, 1, 2]
        for ig, w in ((None, None), (1, w1)):
            want, gw = _monai(monai_losses.DiceLoss, x, y, reduction=red, ignore_index=ig,
                              weight=w, **kw)
            ours = dict(kw)
            f = fl.jaccard_loss if ours.pop("jaccard") else fl.dice_loss
            got, g = f(x, y, reduction=red, ignore_index=ig, weight=w, return_grad=True, **ours)
            # MONAI uses norms with squared_pred and keeps the weights in float32
            rtol = 1e-6 if kw["squared_pred"] or w is not None else 1e-10
            np.testing.assert_allclose(got, want.reshape(np.shape(got)), rtol=rtol)
            np.testing.assert_allclose(g, gw, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("ib", [False, True])
def test_tversky_gdl_vs_monai(batch, ib):
    x, y = _data((2, 3, 6, 5), seed=7, empty=2)  # class 2 empty in the target
    for a, b in ((0.5, 0.5), (0.3, 0.7)):
        want, gw = _monai(monai_losses.TverskyLoss, x, y, alpha=a, beta=b, batch=batch,
                          include_background=ib, reduction="none")
        got, g = fl.tversky_loss(x, y, alpha=a, beta=b, batch=batch, include_background=ib,
                                 reduction="none", return_grad=True)
        np.testing.assert_allclose(got, want, rtol=1e-10)
        np.testing.assert_allclose(g, gw, rtol=1e-6, atol=1e-10)
    for wt in ("square", "simple", "uniform"):
        want, gw = _monai(monai_losses.GeneralizedDiceLoss, x, y, w_type=wt, batch=batch,
                          include_background=ib)
        got, g = fl.generalized_dice_loss(x, y, w_type=wt, batch=batch, include_background=ib,
                                          return_grad=True)
        np.testing.assert_allclose(got, want, rtol=1e-6)  # MONAI's weights are float32
        np.testing.assert_allclose(g, gw, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kw", [dict(), dict(include_background=False, batch=True),
                                dict(squared_pred=True, jaccard=True),
                                dict(weight=[0.2, 1.0, 3.0], lambda_dice=0.3, lambda_ce=2.0),
                                dict(reduction="sum")], ids=str)
def test_dice_ce_vs_monai(kw):
    x, y = _data((2, 3, 5, 4), seed=9)
    mkw = dict(kw)
    if "weight" in mkw:
        mkw["weight"] = torch.tensor(mkw["weight"], dtype=torch.float64)
    want, gw = _monai(monai_losses.DiceCELoss, x, y, **mkw)
    got, g = fl.dice_ce_loss(x, y, return_grad=True, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-6 if kw.get("squared_pred") else 1e-10)
    np.testing.assert_allclose(g, gw, rtol=1e-5, atol=1e-9)
    # soft (one-hot) target: MONAI's probability cross-entropy
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    xt = torch.tensor(x, requires_grad=True)
    m = monai_losses.DiceCELoss(softmax=True, **mkw)(xt, torch.tensor(onehot))
    (gw,) = torch.autograd.grad(m, xt)
    got, g = fl.dice_ce_loss(x, onehot, return_grad=True, **kw)
    np.testing.assert_allclose(got, m.item(), rtol=1e-6 if kw.get("squared_pred") else 1e-10)
    np.testing.assert_allclose(g, gw.numpy(), rtol=1e-5, atol=1e-9)


def test_dice_ce_ignore_and_sample_weight_vs_torch():
    x, y = _data((2, 3, 5, 4), seed=11)
    y[0, 0] = 7
    sw = np.random.default_rng(2).uniform(0.5, 2, size=y.shape)
    w = np.array([0.5, 1.0, 2.0])
    xt = torch.tensor(x, requires_grad=True)
    yl = torch.tensor(y.astype(np.int64))
    dice = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, ignore_index=7)(xt, yl[:, None])
    ce_map = torch.nn.functional.cross_entropy(xt, yl, weight=torch.tensor(w), ignore_index=7,
                                               reduction="none")
    wy = torch.tensor(np.where(y == 7, 0.0, w[np.where(y == 7, 0, y)]))
    ce = (ce_map * torch.tensor(sw)).sum() / (wy * torch.tensor(sw)).sum()
    # weight also enters the Dice term (as MONAI DiceCELoss), so compare with no Dice weight
    got, g = fl.dice_ce_loss(x, y, ignore_index=7, sample_weight=sw, weight=w, lambda_dice=0.0,
                             return_grad=True)
    np.testing.assert_allclose(got, ce.item(), rtol=1e-10)
    got, g = fl.dice_ce_loss(x, y, ignore_index=7, sample_weight=sw, return_grad=True)
    ce_u = torch.nn.functional.cross_entropy(xt, yl, ignore_index=7, reduction="none")
    ce_u = (ce_u * torch.tensor(sw)).sum() / (torch.tensor((y != 7) * sw)).sum()
    (gw,) = torch.autograd.grad(dice + ce_u, xt)
    np.testing.assert_allclose(got, (dice + ce_u).item(), rtol=1e-10)
    np.testing.assert_allclose(g, gw.numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(got, ref.dice_ce_loss(x, y, ignore_index=7, sample_weight=sw),
                               rtol=1e-10)


def test_sigmoid_vs_monai():
    x, y = _data((2, 3, 4, 4), seed=4)
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    xt = torch.tensor(x, requires_grad=True)
    m = monai_losses.DiceLoss(sigmoid=True, squared_pred=True)(xt, torch.tensor(onehot))
    (gw,) = torch.autograd.grad(m, xt)
    got, g = fl.dice_loss(x, onehot, activation="sigmoid", squared_pred=True, return_grad=True)
    np.testing.assert_allclose(got, m.item(), rtol=1e-6)
    np.testing.assert_allclose(g, gw.numpy(), rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------- gradients

GRAD_OPTIONS = [dict(), dict(include_background=False, batch=True, ignore_index=2),
                dict(activation="sigmoid", reduction="none"), dict(activation=None),
                dict(squared_pred=True, reduction="sum")]


@pytest.mark.parametrize("name", SOFT_LOSSES)
@pytest.mark.parametrize("kw", GRAD_OPTIONS, ids=str)
def test_check_grad(name, kw):
    x, y = _data((2, 3, 3, 4), seed=13)
    kw = _kw_for(name, kw)
    if kw.get("activation", "softmax") is None:
        x = ref._segmentation._activate(x, "softmax")
    f = getattr(fl, name)
    check_grad(lambda a, **k: f(a, y, **k), x, rtol=1e-5, atol=1e-8, **kw)
    soft = np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 3, 4)).transpose(0, 3, 1, 2)
    kw.pop("ignore_index", None)
    check_grad(lambda a, **k: f(a, soft, **k), x, rtol=1e-5, atol=1e-8, **kw)


def test_float32_grad_matches_float64():
    x, y = _data((2, 4, 6, 7), seed=17)
    for name in SOFT_LOSSES:
        _, g64 = getattr(fl, name)(x, y, return_grad=True)
        l32, g32 = getattr(fl, name)(x.astype(np.float32), y, return_grad=True)
        assert g32.dtype == np.float32 and isinstance(l32, np.float32)
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-6, err_msg=name)


# -------------------------------------------------- layout, threads, memory

def test_non_contiguous_and_threads():
    rng = np.random.default_rng(21)
    big = rng.normal(size=(3, 8, 40, 70)).astype(np.float32)
    x = big[:, ::2, :, ::2]  # non-contiguous, S = 1400 > PLANE_BLOCK
    y = rng.integers(0, 4, size=(3, 40, 35)).astype(np.int16)
    y[1, :3] = -1
    for name in SOFT_LOSSES:
        kw = dict(ignore_index=-1, return_grad=True)
        a, ga = getattr(fl, name)(x, y, n_threads=1, **kw)
        b, gb = getattr(fl, name)(x, y, n_threads=2, **kw)
        c, gc = getattr(fl, name)(np.ascontiguousarray(x), y, n_threads=2, **kw)
        assert a.tobytes() == b.tobytes() == c.tobytes(), name
        assert ga.tobytes() == gb.tobytes() == gc.tobytes(), name
        np.testing.assert_allclose(a, getattr(ref, name)(x, y, ignore_index=-1), rtol=1e-4)


def test_large_spatial_units():
    # more than MAX_UNITS * PLANE_BLOCK positions per image: several blocks per unit
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 2, 300, 250))
    y = rng.integers(0, 2, size=(1, 300, 250)).astype(np.uint8)
    np.testing.assert_allclose(fl.dice_ce_loss(x, y, n_threads=2), ref.dice_ce_loss(x, y),
                               rtol=1e-10)


def test_perfect_prediction_and_empty_classes():
    y = np.array([[[0, 0, 1, 1]]], dtype=np.uint8)  # class 2 absent
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    x = onehot * 40.0
    assert fl.dice_loss(x, y) < 1e-5
    assert fl.jaccard_loss(x, y) < 1e-5
    assert fl.sensitivity_specificity_loss(onehot, y, activation=None) == 0
    np.testing.assert_allclose(fl.dice_loss(x, y, reduction="none")[0, 2], 0.0, atol=1e-10)
    # hand value: p = 0.5 on both positions of a binary map [1, 0]
    p = np.full((1, 1, 1, 2), 0.5)
    t = np.array([[[1, 0]]])
    np.testing.assert_allclose(fl.dice_loss(p, t, activation=None, smooth_nr=0, smooth_dr=0),
                               0.5, rtol=1e-15)
    np.testing.assert_allclose(fl.jaccard_loss(p, t, activation=None, smooth_nr=0, smooth_dr=0),
                               2 / 3, rtol=1e-15)


# --------------------------------------------------------------- hard metrics

@pytest.mark.parametrize("C", [2, 3, 4, 5, 9, 20])
@pytest.mark.parametrize("dts", [(np.uint8, np.uint8), (np.int64, np.uint8), (np.int16, np.int32)])
def test_confusion_matrix(C, dts):
    rng = np.random.default_rng(C)
    shape = (3, 50, 47, 13) if C == 4 else (2, 33, 41)
    pred = rng.integers(0, C, size=shape).astype(dts[0])
    target = rng.integers(0, C, size=shape).astype(dts[1])
    want = ref.confusion_matrix(pred, target, C)
    got = fl.confusion_matrix(pred, target, C, n_threads=2)
    assert got.dtype == np.int64 and got.shape == (C, C)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fl.confusion_matrix(pred, target, C, n_threads=1), want)
    tt = torch.tensor(target[1].astype(np.int64).ravel())
    tp = torch.tensor(pred[1].astype(np.int64).ravel())
    np.testing.assert_array_equal(
        fl.confusion_matrix(pred[1], target[1], C),
        torch.bincount(tt * C + tp, minlength=C * C).reshape(C, C).numpy())
    # one pair everywhere: every byte counter of a sub-chunk reaches its 255
    same = np.full((2, 40000), C - 1)
    np.testing.assert_array_equal(
        fl.confusion_matrix(same.astype(dts[0]), same.astype(dts[1]), C),
        np.pad([[80000]], ((C - 1, 0), (C - 1, 0))))
    target[:, 0] = C - 1 if dts[1] == np.uint8 else -1
    ig = int(target[0, 0].ravel()[0])
    np.testing.assert_array_equal(fl.confusion_matrix(pred, target, C, ignore_index=ig),
                                  ref.confusion_matrix(pred, target, C, ignore_index=ig))


@pytest.mark.parametrize("C", [1, 2, 3, 4])
def test_confusion_matrix_uint8_few_classes(C):
    # two uint8 maps of at most 4 classes are counted from bit masks of
    # 64-position rows: lengths around a row and around a 65536-position
    # unit, images that start inside a row, ignore_index and bad labels in
    # the body and in the last, partial row
    rng = np.random.default_rng(40 + C)
    for shape in [(1, 1), (1, 63), (1, 64), (1, 65), (3, 1000), (2, 65536 + 77), (1, 200000)]:
        pred = rng.integers(0, C, size=shape, dtype=np.uint8)
        target = rng.integers(0, C, size=shape, dtype=np.uint8)
        for per_image in (False, True):
            for nt in (1, 2):
                got = fl.confusion_matrix(pred, target, C, n_threads=nt) if not per_image else \
                    _per_image_confusion(pred, target, C, nt)
                want = ref.confusion_matrix(pred, target, C) if not per_image else \
                    np.stack([ref.confusion_matrix(p, t, C) for p, t in zip(pred, target)])
                np.testing.assert_array_equal(got, want)
        # ignore_index a class, a byte no label holds, and one no uint8 holds
        for ig in (C - 1, 200, 255, 300, -1):
            t2 = target.copy()
            if 0 <= ig <= 255:
                t2.reshape(-1)[::3] = ig
            np.testing.assert_array_equal(fl.confusion_matrix(pred, t2, C, ignore_index=ig),
                                          ref.confusion_matrix(pred, t2, C, ignore_index=ig))
        for where in (0, pred.size // 2, pred.size - 1):
            for bad_value in (C, 255):
                p2 = pred.copy()
                p2.reshape(-1)[where] = bad_value
                with pytest.raises(ValueError,
                                   match=f"pred holds class index {bad_value} at flat position "
                                         f"{where};"):
                    fl.confusion_matrix(p2, target, C, n_threads=2)
                t2 = target.copy()
                t2.reshape(-1)[where] = bad_value
                with pytest.raises(ValueError, match=f"target holds class index {bad_value} at "
                                                     f"flat position {where};"):
                    fl.confusion_matrix(pred, t2, C, n_threads=2)
                # an ignored target at a bad prediction's position is not an error
                if bad_value != C - 1:
                    t2.reshape(-1)[where] = bad_value
                    p2 = pred.copy()
                    p2.reshape(-1)[where] = bad_value
                    np.testing.assert_array_equal(
                        fl.confusion_matrix(p2, t2, C, ignore_index=bad_value),
                        ref.confusion_matrix(p2, t2, C, ignore_index=bad_value))


def _per_image_confusion(pred, target, C, nt):
    from fastloss.segmentation import _hard
    out = np.empty(pred.shape[0] * C * C, np.int64)
    bad = _hard._k.confusion(pred, target, C, 0, False, True, out, nt)
    assert bad == -1
    return out.reshape(pred.shape[0], C, C)


def test_dice_iou_scores():
    rng = np.random.default_rng(8)
    pred = rng.integers(0, 3, size=(2, 6, 7)).astype(np.uint8)
    target = rng.integers(0, 3, size=(2, 6, 7)).astype(np.uint8)
    pred[0][pred[0] == 2] = 0
    target[0][target[0] == 2] = 1  # class 2 empty in image 0
    for pi in (False, True):
        for es in (np.nan, 1.0):
            for f in ("dice_score", "iou_score"):
                got = getattr(fl, f)(pred, target, 4, per_image=pi, empty_score=es,
                                     ignore_empty=False)
                want = getattr(ref, f)(pred, target, 4, per_image=pi, empty_score=es,
                                       ignore_empty=False)
                np.testing.assert_allclose(got, want, rtol=1e-15)
    from monai.metrics import compute_dice, compute_iou
    oh = lambda a: torch.tensor(np.moveaxis(np.eye(3)[a], -1, 1))  # noqa: E731
    np.testing.assert_allclose(fl.dice_score(pred, target, 3, per_image=True),
                               compute_dice(oh(pred), oh(target)).numpy(), rtol=1e-7)
    np.testing.assert_allclose(fl.iou_score(pred, target, 3, per_image=True),
                               compute_iou(oh(pred), oh(target)).numpy(), rtol=1e-7)
    np.testing.assert_allclose(fl.dice_score([0, 1, 1, 1], [0, 0, 1, 1], 2), [2 / 3, 0.8])


@pytest.mark.parametrize("f", ["dice_score", "iou_score"])
def test_scores_multilabel(f):
    from monai.metrics import compute_dice, compute_iou
    mf = compute_dice if f == "dice_score" else compute_iou
    rng = np.random.default_rng(22)
    lab = rng.integers(0, 4, size=(3, 6, 5, 4))
    # BraTS-style nested regions: whole tumour >= 1, tumour core in {1, 3}, enhancing == 3
    tgt = np.stack([lab >= 1, (lab == 1) | (lab == 3), lab == 3], axis=1)
    pl = np.where(rng.random(lab.shape) < 0.3, rng.integers(0, 4, size=lab.shape), lab)
    pred = np.stack([pl >= 1, (pl == 1) | (pl == 3), pl == 3], axis=1)
    tgt[1, 2] = False                        # channel 2 empty in image 1
    pred[2, :, :, 0] = False                 # positions of no class
    for ie, es in ((True, np.nan), (False, 1.0)):
        want = mf(torch.tensor(pred), torch.tensor(tgt), ignore_empty=ie).numpy()
        for p, t in ((pred, tgt), (pred.astype(np.uint8), tgt.astype(np.float32))):
            got = getattr(fl, f)(p, t, 3, per_image=True, multilabel=True, ignore_empty=ie,
                                 empty_score=es)
            np.testing.assert_allclose(got, want, rtol=1e-7)
            np.testing.assert_array_equal(got, getattr(ref, f)(
                p, t, 3, per_image=True, multilabel=True, ignore_empty=ie, empty_score=es))
    whole = getattr(fl, f)(pred, tgt, 3, multilabel=True)
    tp = (pred & tgt).sum(axis=(0, 2, 3, 4))
    np.testing.assert_allclose(
        whole, 2 * tp / (pred.sum(axis=(0, 2, 3, 4)) + tgt.sum(axis=(0, 2, 3, 4)))
        if f == "dice_score" else tp / (pred | tgt).sum(axis=(0, 2, 3, 4)), rtol=1e-15)
    with pytest.raises(ValueError, match="only 0 and 1"):
        getattr(fl, f)(pred * 2, tgt, 3, multilabel=True)
    with pytest.raises(ValueError, match=r"shape \(N, num_classes=4, ...\)"):
        getattr(fl, f)(pred, tgt, 4, multilabel=True)
    with pytest.raises(ValueError, match="ignore_index applies to label maps"):
        getattr(fl, f)(pred, tgt, 3, multilabel=True, ignore_index=0)


@pytest.mark.parametrize("f", ["dice_score", "iou_score"])
def test_scores_ignore_empty(f):
    from monai.metrics import compute_dice, compute_iou
    mf = compute_dice if f == "dice_score" else compute_iou
    # the case: class 1 predicted, absent from the target
    got = getattr(fl, f)(np.array([[[1, 1]]]), np.array([[[0, 0]]]), 2, per_image=True)
    np.testing.assert_array_equal(got, [[0.0, np.nan]])
    got = getattr(fl, f)(np.array([[[1, 1]]]), np.array([[[0, 0]]]), 2, per_image=True,
                         ignore_empty=False)
    np.testing.assert_array_equal(got, [[0.0, 0.0]])
    rng = np.random.default_rng(21)
    pred = rng.integers(0, 4, size=(3, 5, 6)).astype(np.uint8)
    target = rng.integers(0, 4, size=(3, 5, 6)).astype(np.uint8)
    target[0][target[0] == 3] = 1            # class 3 predicted, absent from the target
    pred[1][pred[1] == 2] = 0
    target[1][target[1] == 2] = 0            # class 2 absent from both
    oh = lambda a: torch.tensor(np.moveaxis(np.eye(4)[a], -1, 1))  # noqa: E731
    for ie, es in ((True, np.nan), (False, 1.0)):
        want = mf(oh(pred), oh(target), ignore_empty=ie).numpy()
        got = getattr(fl, f)(pred, target, 4, per_image=True, ignore_empty=ie, empty_score=es)
        np.testing.assert_allclose(got, want, rtol=1e-7)
        np.testing.assert_array_equal(
            got, getattr(ref, f)(pred, target, 4, per_image=True, ignore_empty=ie,
                                 empty_score=es))
    assert np.isnan(fl.dice_score(pred, target, 4, per_image=True)[0, 3])
    assert fl.dice_score(pred, target, 4, per_image=True, ignore_empty=False)[0, 3] == 0.0
    # MONAI's mean over images leaves NaN out (do_metric_reduction 'mean_batch')
    from monai.metrics import do_metric_reduction
    m, _ = do_metric_reduction(mf(oh(pred), oh(target)), "mean_batch")
    np.testing.assert_allclose(np.nanmean(getattr(fl, f)(pred, target, 4, per_image=True),
                                          axis=0), m.numpy(), rtol=1e-6)


# --------------------------------------------------------------- error paths

def test_errors():
    x, y = _data((2, 3, 4, 4))
    bad = y.copy()
    bad[1, 2, 3] = 5
    with pytest.raises(ValueError, match=r"class index 5 at flat position 27"):
        fl.dice_loss(x, bad)
    with pytest.raises(ValueError, match=r"class index 5 .* or ignore_index=4"):
        fl.dice_ce_loss(x, bad, ignore_index=4, return_grad=True)
    fl.dice_loss(x, bad, ignore_index=5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fl.dice_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        fl.dice_ce_loss(x, y, reduction="none")
    with pytest.raises(ValueError, match="activation must be"):
        fl.dice_loss(x, y, activation="relu")
    with pytest.raises(ValueError, match="at least 2 classes"):
        fl.dice_ce_loss(x[:, :1], y)
    with pytest.raises(ValueError, match="at least one spatial axis"):
        fl.dice_loss(x[:, :, 0, 0], y[:, 0, 0])
    accepts = (r"target must hold integer class indices of shape \(2, 4, 4\) or "
               r"\(2, 1, 4, 4\), or one-hot / soft masks of the input's shape \(2, 3, 4, 4\)")
    with pytest.raises(ValueError, match=accepts + r".*; got shape \(2, 3, 4\)"):
        fl.dice_loss(x, y[:, :3])
    with pytest.raises(TypeError, match=accepts + r".*got a float target of shape \(2, 4, 4\)"):
        fl.dice_loss(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="needs a hard one-hot target"):
        fl.dice_loss(x, np.full(x.shape, 0.5), ignore_index=0)
    with pytest.raises(ValueError, match="multi-label"):
        fl.dice_loss(x, np.ones(x.shape), ignore_index=0)
    with pytest.raises(ValueError, match="positions of no class"):
        fl.dice_loss(x, np.zeros(x.shape, np.uint8), ignore_index=0)
    with pytest.raises(ValueError, match="single-channel float target needs integer"):
        fl.dice_loss(x[:, :1], np.full((2, 1, 4, 4), 0.5), ignore_index=255,
                     activation="sigmoid")
    with pytest.raises(ValueError, match=r"weight must have shape \(2,\)"):
        fl.dice_loss(x, y, include_background=False, weight=[1, 2, 3])
    with pytest.raises(ValueError, match="weight must be non-negative"):
        fl.dice_loss(x, y, weight=[1, -2, 3])
    with pytest.raises(ValueError, match="smooth_dr must be in"):
        fl.dice_loss(x, y, smooth_dr=float("nan"))
    with pytest.raises(ValueError, match="alpha must be in"):
        fl.tversky_loss(x, y, alpha=-1)
    with pytest.raises(ValueError, match="gamma must be in"):
        fl.focal_tversky_loss(x, y, gamma=0)
    with pytest.raises(ValueError, match="w_type must be"):
        fl.generalized_dice_loss(x, y, w_type="cube")
    with pytest.raises(ValueError, match="r must be in"):
        fl.sensitivity_specificity_loss(x, y, r=2)
    with pytest.raises(ValueError, match="lambda_ce must be in"):
        fl.dice_ce_loss(x, y, lambda_ce=-1)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        fl.dice_ce_loss(x, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="n_threads must be"):
        fl.dice_loss(x, y, n_threads=0)
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        fl.dice_loss(x.astype(complex), y)
    # hard metrics
    with pytest.raises(ValueError, match=r"pred holds class index 3 at flat position 1"):
        fl.confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match=r"target holds class index -1 at flat position 0"):
        fl.dice_score(np.array([0, 1]), np.array([-1, 1]), 3)
    with pytest.raises(ValueError, match="target must have the same shape as pred"):
        fl.confusion_matrix(np.zeros(3, int), np.zeros(4, int), 2)
    with pytest.raises(TypeError, match="pred must hold integer"):
        fl.confusion_matrix(np.zeros(3), np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="num_classes must be in"):
        fl.iou_score(np.zeros(3, int), np.zeros(3, int), 0)
    # ignored target positions are not checked in pred
    np.testing.assert_array_equal(
        fl.confusion_matrix(np.array([9, 1]), np.array([7, 1]), 2, ignore_index=7),
        [[0, 0], [0, 1]])
