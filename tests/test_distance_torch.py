"""fastloss.torch's distance losses against MONAI's classes (values and autograd gradients)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ML = pytest.importorskip("monai.losses")

import fastloss  # noqa: E402
from fastloss.testing import check_grad  # noqa: E402
from fastloss.torch import _distance as TD  # noqa: E402

CLASSES = TD.make_classes()


def _labels(rng, N, shape, C):
    """Label maps of a few boxes per class (boundaries in every direction)."""
    y = np.zeros((N,) + shape, dtype=np.int64)
    for n in range(N):
        for c in range(1, C):
            lo = [int(rng.integers(0, s // 2)) for s in shape]
            hi = [lo_ + int(rng.integers(2, s // 2 + 1)) for lo_, s in zip(lo, shape)]
            y[(n,) + tuple(slice(a, b) for a, b in zip(lo, hi))] = c
    return y


def _pair(cls_name, kw, x, y):
    """(ours, MONAI's) values and input gradients for one configuration."""
    xs = []
    outs = []
    for cls in (CLASSES[cls_name], getattr(ML, cls_name)):
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = cls(**kw)(xt, torch.from_numpy(y))
        out.sum().backward()
        xs.append(xt.grad.numpy())
        outs.append(out.detach().numpy())
    return outs, xs


CONFIGS = [
    ("HausdorffDTLoss", dict(softmax=True, to_onehot_y=True)),
    ("HausdorffDTLoss", dict(softmax=True, to_onehot_y=True, include_background=True, alpha=1.5)),
    ("HausdorffDTLoss", dict(sigmoid=True, to_onehot_y=True, batch=True, reduction="sum")),
    ("HausdorffDTLoss", dict(softmax=True, to_onehot_y=True, reduction="none")),
    ("HausdorffDTLoss", dict(softmax=True, to_onehot_y=True, reduction="none", batch=True)),
    ("HausdorffDTLoss", dict(other_act=lambda t: torch.softmax(t, 1), to_onehot_y=True)),
    ("LogHausdorffDTLoss", dict(softmax=True, to_onehot_y=True)),
    ("LogHausdorffDTLoss", dict(softmax=True, to_onehot_y=True, reduction="none")),
    ("BoundaryLoss", dict(softmax=True, to_onehot_y=True)),
    ("BoundaryLoss", dict(softmax=True, to_onehot_y=True, include_background=False,
                          reduction="sum")),
    ("BoundaryLoss", dict(sigmoid=True, to_onehot_y=True, batch=True)),
    ("BoundaryLoss", dict(softmax=True, to_onehot_y=True, reduction="none", batch=True)),
]


@pytest.mark.parametrize("cls_name,kw", CONFIGS,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize("shape", [(13, 11), (9, 8, 7)], ids=["2d", "3d"])
def test_classes_match_monai(rng, cls_name, kw, shape):
    x = rng.standard_normal((2, 3) + shape)
    y = _labels(rng, 2, shape, 3)[:, None]
    (ours, theirs), (g, gm) = _pair(cls_name, kw, x, y)
    assert ours.shape == theirs.shape
    # MONAI's distance maps are float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g, gm, rtol=1e-5, atol=1e-6 * np.abs(gm).max())


@pytest.mark.parametrize("cls_name", ["HausdorffDTLoss", "BoundaryLoss"])
def test_classes_one_hot_targets_and_float32(rng, cls_name):
    x = rng.standard_normal((2, 4, 10, 9, 8)).astype(np.float32)
    lab = _labels(rng, 2, (10, 9, 8), 4)
    onehot = np.moveaxis(np.eye(4, dtype=np.float32)[lab], -1, 1)
    (ours, theirs), (g, gm) = _pair(cls_name, dict(softmax=True), x, onehot)
    assert ours.dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=2e-5)
    np.testing.assert_allclose(g, gm, rtol=1e-4, atol=1e-5 * np.abs(gm).max())


def test_classes_run_the_kernels(rng, monkeypatch):
    calls = []
    for name in ("hausdorff_dt_loss", "boundary_loss"):
        real = getattr(fastloss, name)

        def spy(*a, _real=real, **k):
            calls.append(_real.__name__)
            return _real(*a, **k)
        monkeypatch.setattr(fastloss, name, spy)
    x = torch.from_numpy(rng.standard_normal((1, 3, 8, 8))).requires_grad_(True)
    y = torch.from_numpy(_labels(rng, 1, (8, 8), 3)[:, None])
    CLASSES["HausdorffDTLoss"](softmax=True, to_onehot_y=True)(x, y).backward()
    CLASSES["LogHausdorffDTLoss"](softmax=True, to_onehot_y=True)(x, y).backward()
    CLASSES["BoundaryLoss"](softmax=True, to_onehot_y=True)(x, y).backward()
    assert calls == ["hausdorff_dt_loss", "hausdorff_dt_loss", "boundary_loss"]
    # MONAI's code where MONAI warns: one channel with softmax
    calls.clear()
    x1 = torch.from_numpy(rng.standard_normal((1, 1, 8, 8)))
    with pytest.warns(UserWarning, match="single channel"):
        v = CLASSES["HausdorffDTLoss"](softmax=True)(x1, (x1 > 0).double())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ML.HausdorffDTLoss(softmax=True)(x1, (x1 > 0).double())
    assert calls == [] and float(v) == pytest.approx(float(want))


def test_classes_keep_monai_constructor_and_errors():
    m = CLASSES["HausdorffDTLoss"](alpha=3.0, softmax=True)
    assert isinstance(m, ML.HausdorffDTLoss) and m.alpha == 3.0
    assert repr(m) == repr(ML.HausdorffDTLoss(alpha=3.0, softmax=True))
    with pytest.raises(ValueError, match="Incompatible values"):
        CLASSES["BoundaryLoss"](softmax=True, sigmoid=True)
    with pytest.raises(ValueError, match="Only 2D"):
        CLASSES["HausdorffDTLoss"]()(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(AssertionError, match="different shape"):
        CLASSES["HausdorffDTLoss"]()(torch.zeros(2, 3, 4, 4), torch.zeros(2, 2, 4, 4))


@pytest.mark.parametrize("fn", ["hausdorff_dt_loss", "boundary_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_functional_fast_path_equals_torch_ops(rng, fn, reduction):
    # the kernels (mean/sum) and the torch-op version ('none', half precision
    # inputs, a target requiring grad) against each other
    x = rng.standard_normal((2, 3, 9, 10, 6))
    y = _labels(rng, 2, (9, 10, 6), 3)
    kw = dict(alpha=1.7, log=True) if fn == "hausdorff_dt_loss" else dict(spacing=(0.5, 1.0, 2.0))
    f = getattr(TD, fn)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = f(xt, torch.from_numpy(y), reduction=reduction, **kw)
    out.sum().backward()
    want, gw = getattr(fastloss, fn)(x, y, reduction=reduction, return_grad=True, **kw)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), gw, rtol=1e-10, atol=1e-13)
    # the torch-op version directly
    xt2 = torch.from_numpy(x).requires_grad_(True)
    t2 = getattr(TD, "_hd_torch" if fn == "hausdorff_dt_loss" else "_boundary_torch")(
        xt2, torch.from_numpy(y), reduction=reduction, **kw)
    t2.sum().backward()
    np.testing.assert_allclose(t2.detach().numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(xt2.grad.numpy(), gw, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_functional_other_dtypes_run_torch_ops(rng, dtype):
    x = rng.standard_normal((1, 2, 12, 12)).astype(np.float32)
    y = _labels(rng, 1, (12, 12), 2)
    xt = torch.from_numpy(x).to(getattr(torch, dtype)).requires_grad_(True)
    out = TD.boundary_loss(xt, torch.from_numpy(y))
    assert out.dtype == xt.dtype          # torch's dtype rules: the torch-op path
    out.backward()
    want, g = fastloss.boundary_loss(xt.detach().float().numpy(), y, return_grad=True)
    # bfloat16 keeps 8 bits: its sums over 144 voxels are good to a few percent
    assert float(out.detach()) == pytest.approx(float(want), rel=5e-2)
    np.testing.assert_allclose(xt.grad.float().numpy(), g, atol=0.02 * np.abs(g).max())


def test_functional_gradients_by_finite_differences(rng):
    # logits away from 0: the thresholded maps do not move under the steps
    x = rng.uniform(0.4, 2.0, (1, 3, 6, 5)) * rng.choice([-1.0, 1.0], (1, 3, 6, 5))
    y = _labels(rng, 1, (6, 5), 3)
    for fn, kw in [(fastloss.hausdorff_dt_loss, dict(alpha=1.5, log=True)),
                   (fastloss.boundary_loss, dict(activation="sigmoid", spacing=(2.0, 0.5)))]:
        check_grad(fn, x, y, rtol=1e-6, **kw)
        xt = torch.from_numpy(x).requires_grad_(True)
        f = getattr(TD, fn.__name__)(xt, torch.from_numpy(y), **kw)
        f.backward()
        _, g = fn(x, y, return_grad=True, **kw)
        np.testing.assert_allclose(xt.grad.numpy(), g, rtol=1e-13, atol=1e-15)


def test_functional_under_compile(rng):
    if not hasattr(torch, "compile"):
        pytest.skip("no torch.compile")
    x = torch.from_numpy(rng.standard_normal((1, 3, 8, 8))).requires_grad_(True)
    y = torch.from_numpy(_labels(rng, 1, (8, 8), 3))
    try:
        f = torch.compile(lambda a, b: TD.hausdorff_dt_loss(a, b), backend="eager",
                          fullgraph=True)
        out = f(x, y)
    except Exception as e:  # pragma: no cover - a torch without dynamo support here
        pytest.skip(f"torch.compile unavailable: {e}")
    out.backward()
    want, g = fastloss.hausdorff_dt_loss(x.detach().numpy(), y.numpy(), return_grad=True)
    assert float(out) == pytest.approx(float(want), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-12)
