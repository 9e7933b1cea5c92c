"""fastloss.torch's MONAI classes against MONAI 1.6's own, option by option.

Each case builds ``fastloss.torch.<Class>(**kw)`` and ``monai.losses.<Class>(**kw)``
with the same arguments, runs both on the same tensors (2-D and 3-D,
float32 and float64) and compares the values, the gradients with respect
to the input (backward with the same non-uniform ``grad_output``), MONAI's
warnings and MONAI's errors; it also checks which path ran (fastloss's
kernel or MONAI's code), as the class table of docs/guide/monai.md says.

MONAI computes some steps in float32 (``Tensor.float()`` in FocalLoss and
in GeneralizedDiceLoss's weights); for float64 inputs MONAI runs with
``Tensor.float`` keeping float64 tensors as they are, so that both sides
are compared at float64 precision (values 1e-10, gradients 1e-8).
"""

import contextlib
import warnings

import numpy as np
import pytest
import torch

ML = pytest.importorskip("monai.losses")
import fastloss.torch as ft  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LABEL_KINDS = ("label", "label_u8", "label_f", "label_ig")


@contextlib.contextmanager
def _monai_float64():
    """MONAI's code in float64 throughout: ``Tensor.float()`` gives float64 and
    MONAI's one-hot targets are float64 (both are float32 in MONAI)."""
    import monai.losses.dice as md
    import monai.losses.focal_loss as mf
    import monai.losses.tversky as mt

    orig_float, orig_onehot = torch.Tensor.float, md.one_hot

    def as64(self, *args, **kwargs):
        if self.dtype == torch.float32 or args or kwargs:
            return orig_float(self, *args, **kwargs)
        return self.to(torch.float64)

    def onehot64(labels, num_classes, dtype=torch.float, dim=1):
        return orig_onehot(labels, num_classes, torch.float64 if dtype == torch.float else dtype,
                           dim)

    torch.Tensor.float = as64
    for m in (md, mf, mt):
        m.one_hot = onehot64
    try:
        yield
    finally:
        torch.Tensor.float = orig_float
        for m in (md, mf, mt):
            m.one_hot = orig_onehot


def _make(kind, shape, dtype, seed):
    """Logits of ``shape`` and a target of the given kind."""
    g = torch.Generator().manual_seed(seed)
    N, C, sp = shape[0], shape[1], shape[2:]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    lab = torch.randint(0, max(C, 2), (N, 1) + sp, generator=g)
    if kind == "label":
        t = lab
    elif kind == "label_u8":
        t = lab.to(torch.uint8)
    elif kind == "label_f":
        t = lab.to(dtype)
    elif kind == "label_ig":
        t = lab.clone()
        t[:, :, 0] = 255
    elif kind in ("onehot", "onehot_u8", "onehot_gap"):
        t = torch.nn.functional.one_hot(lab[:, 0], C).movedim(-1, 1)
        if kind == "onehot_gap":
            t[:, :, 0] = 0
        t = t.to(torch.uint8 if kind == "onehot_u8" else dtype)
    elif kind == "soft":
        t = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1).to(dtype)
    elif kind == "multihot":
        t = (torch.rand(shape, generator=g) > 0.5).to(dtype)
    elif kind == "binary":
        t = (torch.rand(shape, generator=g) > 0.5).to(dtype)
    else:
        raise AssertionError(kind)
    return x, t


def _ran_kernel(loss):
    """True when fastloss's kernel node is in the autograd graph of ``loss``."""
    seen, todo = set(), [loss.grad_fn]
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        if type(f).__name__ in ("_FnBackward", "_SumOfKernelsBackward"):
            return True
        todo.extend(n for n, _ in f.next_functions)
    return False


def _run(mod, x, t, exact=False):
    xx = x.clone().requires_grad_()
    ctx = _monai_float64() if exact else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            with ctx:
                loss = mod(xx, t)
                go = torch.linspace(0.5, 1.5, max(loss.numel(), 1), dtype=loss.dtype)
                go = go[:loss.numel()].reshape(loss.shape)
                loss.backward(go)
        except Exception as e:  # MONAI's errors must be ours too
            return e, None, None, None
    msgs = sorted({str(w.message) for w in rec if "ignored" in str(w.message)})
    return loss.detach(), xx.grad, msgs, _ran_kernel(loss)


def _compare(name, kw, x, t, kernel, f32_gatol=2e-6):
    """Ours vs MONAI on the same tensors (errors, warnings), and vs MONAI in float64."""
    try:
        theirs = getattr(ML, name)(**kw)
    except Exception as e:  # MONAI's constructor errors are ours too
        with pytest.raises(type(e)):
            getattr(ft, name)(**kw)
        return
    ours = getattr(ft, name)(**kw)
    assert isinstance(ours, getattr(ML, name))
    la, ga, wa, path = _run(ours, x, t)
    lb, gb, wb, _ = _run(theirs, x, t)
    if isinstance(lb, Exception):
        assert isinstance(la, type(lb)), (la, lb)
        return
    assert not isinstance(la, Exception), la
    assert wa == wb
    if kernel is not None:
        assert path == kernel, f"expected the {'kernel' if kernel else 'MONAI'} path"
    # the loose check against MONAI in the same dtype (MONAI's float32 steps included)
    np.testing.assert_allclose(la.double().numpy(), lb.double().numpy(), rtol=1e-4, atol=1e-5)
    # the exact one: MONAI in float64 throughout
    t64 = t.double() if t.is_floating_point() else t
    kw64 = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in kw.items()}
    lc, gc, _, _ = _run(getattr(ML, name)(**kw64), x.double(), t64, exact=True)
    scale = float(gc.abs().max()) if gc.numel() else 1.0
    if x.dtype == torch.float32 or not path:
        # float32 data, or MONAI's own code (float32 steps) on float64 data
        vtol, gtol = dict(rtol=1e-6, atol=1e-6), dict(rtol=1e-4, atol=f32_gatol * scale)
    elif kw.get("squared_pred") or kw.get("soft_label"):
        # MONAI's norm form (|p|^2 + |g|^2 - |p - g|^2) / 2 of sum p g keeps ~1e-8 in
        # float64; the kernels sum p g directly (checked against the reference elsewhere)
        vtol, gtol = dict(rtol=1e-7, atol=1e-12), dict(rtol=1e-6, atol=1e-9 * scale)
    else:
        vtol, gtol = dict(rtol=1e-10, atol=1e-12), dict(rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(la.double().numpy(), lc.numpy(), **vtol)
    np.testing.assert_allclose(ga.double().numpy(), gc.numpy(), **gtol)


# (class, constructor arguments, target kind, channels, kernel path?) -- the option matrix
_SM, _OH = dict(softmax=True), dict(to_onehot_y=True)
CASES = [
    # DiceLoss
    ("DiceLoss", dict(_SM, **_OH), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH), "label_u8", 3, True),
    ("DiceLoss", dict(_SM, **_OH), "label_f", 3, True),
    ("DiceLoss", dict(sigmoid=True, **_OH), "label", 3, True),
    ("DiceLoss", dict(_OH), "label", 3, True),                       # raw input
    ("DiceLoss", dict(_SM), "onehot", 3, True),
    ("DiceLoss", dict(_SM), "onehot_u8", 3, True),
    ("DiceLoss", dict(_SM), "soft", 3, True),
    ("DiceLoss", dict(_SM, **_OH, include_background=False, batch=True), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, squared_pred=True, reduction="sum"), "label", 3, True),
    ("DiceLoss", dict(sigmoid=True, **_OH, jaccard=True), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, jaccard=True, squared_pred=True, batch=True), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, smooth_nr=0.0, smooth_dr=1e-3), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, weight=[0.2, 1.0, 3.0]), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, weight=2.0, include_background=False), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, weight=[1.0, 2.0], include_background=False), "label", 2, True),
    ("DiceLoss", dict(_SM, **_OH, weight=[1.0, 2.0]), "label", 3, None),  # MONAI's error
    ("DiceLoss", dict(_SM, **_OH, weight=[1.0, -2.0, 1.0]), "label", 3, None),
    ("DiceLoss", dict(other_act=torch.tanh, **_OH), "label", 3, True),
    ("DiceLoss", dict(other_act=lambda v: torch.log_softmax(v, 1), **_OH), "label", 3, True),
    ("DiceLoss", dict(_SM, **_OH, ignore_index=255), "label_ig", 3, True),
    ("DiceLoss", dict(_SM, **_OH, ignore_index=1), "label", 3, True),
    ("DiceLoss", dict(_SM, ignore_index=1), "onehot", 3, True),
    ("DiceLoss", dict(_SM, ignore_index=-1), "onehot_gap", 3, True),
    ("DiceLoss", dict(_SM, ignore_index=1), "soft", 3, False),
    ("DiceLoss", dict(sigmoid=True, ignore_index=255), "label_ig", 1, True),
    ("DiceLoss", dict(sigmoid=True), "binary", 1, True),
    ("DiceLoss", dict(_SM), "binary", 1, True),                      # warns, no softmax
    ("DiceLoss", dict(_SM, **_OH, include_background=False), "binary", 1, True),  # warns
    ("DiceLoss", dict(_SM, **_OH, soft_label=True), "label", 3, True),
    ("DiceLoss", dict(_SM, soft_label=True), "onehot", 3, True),
    ("DiceLoss", dict(_SM, soft_label=True), "soft", 3, False),
    ("DiceLoss", dict(soft_label=True), "soft", 3, False),
    ("DiceLoss", dict(_SM, soft_label=True, squared_pred=True), "soft", 3, True),
    ("DiceLoss", dict(_SM, **_OH, reduction="none"), "label", 3, False),
    # GeneralizedDiceLoss
    ("GeneralizedDiceLoss", dict(_SM, **_OH), "label", 3, True),
    ("GeneralizedDiceLoss", dict(_SM, **_OH, w_type="simple", batch=True), "label", 3, True),
    ("GeneralizedDiceLoss", dict(sigmoid=True, **_OH, w_type="uniform"), "label", 3, True),
    ("GeneralizedDiceLoss", dict(_SM, **_OH, include_background=False, reduction="sum"),
     "label_u8", 4, True),
    ("GeneralizedDiceLoss", dict(_SM), "onehot_u8", 3, True),
    ("GeneralizedDiceLoss", dict(_SM), "binary", 1, True),
    ("GeneralizedDiceLoss", dict(other_act=torch.sigmoid, **_OH), "label", 3, True),
    ("GeneralizedDiceLoss", dict(_SM, soft_label=True), "soft", 3, False),
    ("GeneralizedDiceLoss", dict(_SM, **_OH, reduction="none"), "label", 3, False),
    # TverskyLoss
    ("TverskyLoss", dict(_SM, **_OH), "label", 3, True),
    ("TverskyLoss", dict(_SM, **_OH, alpha=0.3, beta=0.7, batch=True), "label", 3, True),
    ("TverskyLoss", dict(sigmoid=True, **_OH, alpha=0.8, beta=0.2, include_background=False),
     "label", 3, True),
    ("TverskyLoss", dict(_SM, **_OH, ignore_index=255, reduction="sum"), "label_ig", 3, True),
    ("TverskyLoss", dict(_SM, ignore_index=2), "onehot", 3, True),
    ("TverskyLoss", dict(_SM), "soft", 3, True),
    ("TverskyLoss", dict(_SM), "binary", 1, True),
    ("TverskyLoss", dict(_SM, **_OH, reduction="none"), "label", 3, False),
    ("TverskyLoss", dict(_SM, soft_label=True), "soft", 3, False),
    # FocalLoss
    ("FocalLoss", dict(_OH), "label", 3, True),
    ("FocalLoss", dict(_OH), "label_u8", 3, True),
    ("FocalLoss", dict(), "onehot", 3, True),
    ("FocalLoss", dict(), "soft", 3, False),  # MONAI's (1 - p_t) differs for soft targets
    ("FocalLoss", dict(), "binary", 1, True),
    ("FocalLoss", dict(_OH, gamma=0.0, reduction="sum"), "label", 3, True),
    ("FocalLoss", dict(_OH, gamma=1.5, alpha=0.25, reduction="none"), "label", 3, True),
    ("FocalLoss", dict(_OH, include_background=False, weight=[1.0, 3.0]), "label", 3, True),
    ("FocalLoss", dict(_OH, weight=2.0, reduction="sum"), "label", 3, True),
    ("FocalLoss", dict(_OH, weight=[0.5, 1.0, 2.0], reduction="none"), "label", 3, True),
    ("FocalLoss", dict(_OH, alpha=[0.2, 0.3, 0.5]), "label", 3, True),
    ("FocalLoss", dict(_OH, alpha=[0.2, 0.3, 0.5], weight=2.0, reduction="sum"), "label", 3,
     True),
    ("FocalLoss", dict(alpha=[0.2, 0.3], include_background=False, ignore_index=255,
                       reduction="none"), "onehot", 3, True),
    ("FocalLoss", dict(_OH, alpha=[0.2, 0.3]), "label", 3, None),     # MONAI's length error
    ("FocalLoss", dict(_OH, ignore_index=255), "label_ig", 3, True),
    ("FocalLoss", dict(_OH, ignore_index=1, weight=[1.0, 2.0, 0.5], reduction="sum"), "label",
     3, True),
    ("FocalLoss", dict(_OH, ignore_index=255, reduction="none", alpha=0.3), "label_ig", 3,
     True),
    ("FocalLoss", dict(ignore_index=0), "onehot", 3, True),
    ("FocalLoss", dict(ignore_index=-1, reduction="sum"), "onehot_gap", 3, True),
    ("FocalLoss", dict(ignore_index=255), "label_ig", 1, True),
    ("FocalLoss", dict(_OH, use_softmax=True, ignore_index=255), "label_ig", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True, ignore_index=2, include_background=False,
                       reduction="sum"), "label", 4, True),
    ("FocalLoss", dict(_OH, use_softmax=True, ignore_index=255, reduction="sum",
                       weight=[1.0, 0.5, 2.0]), "label_ig", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True), "label", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True, alpha=0.25, reduction="sum"), "label", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True, alpha=[0.2, 0.3, 0.5]), "label_u8", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True, include_background=False), "label", 4, True),
    ("FocalLoss", dict(_OH, use_softmax=True, include_background=False, alpha=0.25),
     "label", 3, True),  # warns: scalar alpha ignored
    ("FocalLoss", dict(_OH, use_softmax=True, weight=[1.0, 2.0, 0.5], gamma=1.0), "label", 3,
     True),
    ("FocalLoss", dict(use_softmax=True), "soft", 3, False),
    ("FocalLoss", dict(_OH, use_softmax=True, reduction="none"), "label", 3, True),
    ("FocalLoss", dict(_OH, use_softmax=True, reduction="none", include_background=False,
                       ignore_index=255, alpha=[0.3, 0.7]), "label_ig", 3, True),
    # DiceCELoss
    ("DiceCELoss", dict(_SM, **_OH), "label", 3, True),
    ("DiceCELoss", dict(_SM, **_OH), "label_u8", 3, True),
    ("DiceCELoss", dict(_SM), "onehot", 3, True),
    ("DiceCELoss", dict(_SM), "onehot_u8", 3, True),
    ("DiceCELoss", dict(_SM), "soft", 3, True),
    ("DiceCELoss", dict(_OH), "label", 3, True),                     # MONAI's default
    ("DiceCELoss", dict(sigmoid=True, **_OH), "label", 3, True),
    ("DiceCELoss", dict(sigmoid=True), "binary", 1, True),           # BCE
    ("DiceCELoss", dict(sigmoid=True, weight=torch.tensor([0.5])), "binary", 1, True),
    ("DiceCELoss", dict(other_act=torch.tanh, **_OH), "label", 3, True),
    ("DiceCELoss", dict(_SM, **_OH, weight=torch.tensor([0.5, 1.0, 2.0]),
                        include_background=False), "label", 3, True),
    ("DiceCELoss", dict(_SM, **_OH, weight=torch.tensor([0.5, 1.0]), include_background=False),
     "label", 2, True),
    ("DiceCELoss", dict(_SM, **_OH, lambda_dice=0.3, lambda_ce=2.0, batch=True, jaccard=True,
                        reduction="sum"), "label", 3, True),
    ("DiceCELoss", dict(_SM, **_OH, squared_pred=True), "label", 3, True),
    ("DiceCELoss", dict(_SM, **_OH, label_smoothing=0.1), "label", 3, True),  # Dice on kernel
    ("DiceCELoss", dict(_SM), "label", 3, None),                      # MONAI's shape error
    ("DiceCELoss", dict(_SM, include_background=False), "onehot", 3, True),
    ("DiceCELoss", dict(_SM, weight=torch.tensor([0.5, 1.0, 2.0]), batch=True), "soft", 3, True),
    ("DiceCELoss", dict(_SM, **_OH), "label_f", 3, True),
    ("DiceCELoss", dict(_SM, **_OH, reduction="none"), "label", 3, None),  # MONAI's error
    # DiceFocalLoss
    ("DiceFocalLoss", dict(_SM, **_OH), "label", 3, True),
    ("DiceFocalLoss", dict(sigmoid=True, **_OH, gamma=1.0, alpha=0.4), "label_u8", 3, True),
    ("DiceFocalLoss", dict(_SM), "onehot", 3, True),
    ("DiceFocalLoss", dict(_SM, **_OH, include_background=False, weight=[1.0, 2.0]),
     "label", 3, True),
    ("DiceFocalLoss", dict(_SM, **_OH, lambda_dice=0.5, lambda_focal=2.0, batch=True,
                           reduction="sum"), "label", 3, True),
    ("DiceFocalLoss", dict(sigmoid=True), "binary", 1, True),
    ("DiceFocalLoss", dict(_SM, weight=[0.5, 1.0, 2.0], gamma=0.5), "onehot_u8", 3, True),
    ("DiceFocalLoss", dict(other_act=torch.sigmoid, **_OH, alpha=0.7), "label", 3, True),
    # 'none': the Dice term runs MONAI's code, the focal term its kernel
    ("DiceFocalLoss", dict(_SM, **_OH, reduction="none"), "label", 3, True),
    # GeneralizedDiceFocalLoss
    ("GeneralizedDiceFocalLoss", dict(_SM, **_OH), "label", 3, True),
    ("GeneralizedDiceFocalLoss", dict(sigmoid=True, **_OH, w_type="simple", gamma=1.0,
                                      weight=[1.0, 2.0, 3.0]), "label", 3, True),
    ("GeneralizedDiceFocalLoss", dict(_SM, **_OH, include_background=False, batch=True),
     "label", 3, True),
    ("GeneralizedDiceFocalLoss", dict(_SM), "onehot", 3, True),
]


def _id(case):
    name, kw, kind, C, _ = case
    args = ",".join(f"{k}={getattr(v, '__name__', v) if callable(v) else v}"
                    for k, v in kw.items())
    return f"{name}({args})-{kind}-C{C}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("spatial", [(5, 4), (3, 4, 3)], ids=["2d", "3d"])
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_monai(case, spatial, dtype):
    name, kw, kind, C, kernel = case
    x, t = _make(kind, (2, C) + spatial, dtype, seed=len(spatial) * 100 + C)
    _compare(name, kw, x, t, kernel)


# ---- MONAI's own test inputs and expected values (tests/losses/test_*.py), as data ----

def _T(v, dtype=torch.float32):
    return torch.tensor(v, dtype=dtype)


_X23 = [[[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]
_Y13 = [[[1.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]]]
_X22 = [[[[1.0, -1.0], [-1.0, 1.0]]]]
_Y22 = [[[[1.0, 0.0], [1.0, 1.0]]]]
_XB = [[[[1.0, -1.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]]
_YB = [[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 0.0], [1.0, 0.0]]]]
_XB0 = [[[[1.0, -0.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]]
_P = [[[[0.3, 0.4], [0.7, 0.9]]], [[[1.0, 0.1], [0.5, 0.3]]]]
_XCE = [[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]
_XCE100 = [[[100.0, 100.0, 0.0], [0.0, 0.0, 1.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]
_YCE = [[[0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]]
_SMOOTH4 = dict(smooth_nr=1e-4, smooth_dr=1e-4)

MONAI_CASES = [
    ("DiceLoss", dict(sigmoid=True, smooth_nr=1e-6, smooth_dr=1e-6), _X22, _Y22, 0.307576),
    ("DiceLoss", dict(sigmoid=True, **_SMOOTH4), _XB, _YB, 0.416657),
    ("DiceLoss", dict(soft_label=True, **_SMOOTH4), _P, _P, 0.0),
    ("DiceLoss", dict(soft_label=False, **_SMOOTH4), _P, _P, 0.307773),
    ("DiceLoss", dict(include_background=False, to_onehot_y=True, smooth_nr=0, smooth_dr=0),
     _XCE, _YCE, 0.0),
    ("DiceLoss", dict(to_onehot_y=True, sigmoid=True, **_SMOOTH4), _X23, _Y13, 0.435050),
    ("DiceLoss", dict(to_onehot_y=True, sigmoid=True, reduction="none", **_SMOOTH4), _X23, _Y13,
     [[[0.296529], [0.415136]], [[0.599976], [0.428559]]]),
    ("DiceLoss", dict(to_onehot_y=True, softmax=True, **_SMOOTH4), _X23, _Y13, 0.383713),
    ("DiceLoss", dict(to_onehot_y=True, softmax=True, reduction="sum", **_SMOOTH4), _X23, _Y13,
     1.534853),
    ("DiceLoss", dict(sigmoid=True, squared_pred=True), _X22, _Y22, 0.178337),
    ("DiceLoss", dict(sigmoid=True, jaccard=True), _X22, _Y22, 0.470451),
    ("DiceLoss", dict(other_act=torch.tanh, **_SMOOTH4), _XB, _YB, 0.999963),
    ("DiceLoss", dict(to_onehot_y=True, other_act=lambda v: torch.log_softmax(v, dim=1),
                      **_SMOOTH4), _X23, _Y13, -8.522593),
    ("DiceLoss", dict(other_act=torch.tanh, batch=True, **_SMOOTH4), _XB0, _YB, 0.774718),
    ("DiceLoss", dict(other_act=torch.tanh, smooth_nr=0, smooth_dr=1e-4, batch=True), _XB0, _YB,
     0.774733),
    ("DiceLoss", dict(other_act=torch.tanh, smooth_nr=0, smooth_dr=1e-4, batch=False), _XB0,
     _YB, 0.840058),
    ("DiceLoss", dict(to_onehot_y=True, other_act=lambda v: torch.log_softmax(v, dim=1),
                      weight=(0, 1), **_SMOOTH4), _X23, _Y13, -8.268515),
    ("DiceCELoss", dict(to_onehot_y=True), _XCE, _YCE, 0.3133),
    ("DiceCELoss", dict(to_onehot_y=False), _XCE, _XCE, 0.3133),
    ("DiceCELoss", dict(to_onehot_y=False), _XCE, ("u8", _XCE), 0.3133),
    ("DiceCELoss", dict(include_background=False, to_onehot_y=True, weight=_T([1.0, 1.0])),
     _XCE100, _YCE, 0.2088),
    ("DiceCELoss", dict(include_background=False, to_onehot_y=True, weight=_T([1.0, 1.0]),
                        lambda_dice=1.0, lambda_ce=2.0), _XCE100, _YCE, 0.4176),
    ("DiceCELoss", dict(include_background=False, to_onehot_y=True, weight=_T([0.0, 1.0])),
     _XCE100, _YCE, 0.3133),
    ("DiceCELoss", dict(weight=_T([0.5]), sigmoid=True), [[[0.8, 0.6, 0.0]], [[0.0, 0.0, 0.9]]],
     _YCE, 1.445239),
    ("TverskyLoss", dict(sigmoid=True, smooth_nr=1e-6, smooth_dr=1e-6), _X22, _Y22, 0.307576),
    ("TverskyLoss", dict(sigmoid=True, **_SMOOTH4), _XB, _YB, 0.416657),
    ("TverskyLoss", dict(soft_label=True, **_SMOOTH4), _P, _P, 0.0),
    ("TverskyLoss", dict(soft_label=False, **_SMOOTH4), _P, _P, 0.307773),
    ("TverskyLoss", dict(include_background=False, to_onehot_y=True, smooth_nr=0, smooth_dr=0),
     _XCE, _YCE, 0.0),
    ("TverskyLoss", dict(include_background=False, to_onehot_y=True, smooth_nr=0,
                         smooth_dr=1e-3), _XCE, _YCE, 0.000999),
    ("TverskyLoss", dict(to_onehot_y=True, sigmoid=True, **_SMOOTH4), _X23, _Y13, 0.435050),
    ("TverskyLoss", dict(to_onehot_y=True, sigmoid=True, batch=True), _X23, _Y13, 0.422979),
    ("TverskyLoss", dict(to_onehot_y=True, sigmoid=True, reduction="sum", **_SMOOTH4), _X23,
     _Y13, 1.74013),
    ("TverskyLoss", dict(to_onehot_y=True, softmax=True, **_SMOOTH4), _X23, _Y13, 0.383713),
    ("TverskyLoss", dict(to_onehot_y=True, softmax=True, reduction="none", **_SMOOTH4), _X23,
     _Y13, [[0.210961, 0.295339], [0.599952, 0.428547]]),
    ("TverskyLoss", dict(sigmoid=True, alpha=0.3, beta=0.7, smooth_nr=1e-6, smooth_dr=1e-6),
     _X22, _Y22, 0.3589),
    ("TverskyLoss", dict(sigmoid=True, alpha=0.7, beta=0.3, smooth_nr=1e-6, smooth_dr=1e-6),
     _X22, _Y22, 0.247366),
    ("TverskyLoss", dict(other_act=torch.tanh, **_SMOOTH4), _XB, _YB, 0.999963),
    ("TverskyLoss", dict(other_act=torch.tanh, smooth_nr=0, smooth_dr=1e-3, batch=True), _XB,
     _YB, 0.999963),
    ("TverskyLoss", dict(to_onehot_y=True, other_act=lambda v: torch.log_softmax(v, dim=1),
                         **_SMOOTH4), _X23, _Y13, -8.533317),
    ("GeneralizedDiceLoss", dict(sigmoid=True, smooth_nr=1e-6, smooth_dr=1e-6), _X22, _Y22,
     0.307576),
    ("GeneralizedDiceLoss", dict(sigmoid=True, **_SMOOTH4), _XB, _YB, 0.416597),
    ("GeneralizedDiceLoss", dict(soft_label=True, **_SMOOTH4), _P, _P, 0.0),
    ("GeneralizedDiceLoss", dict(soft_label=False, **_SMOOTH4), _P, _P, 0.307748),
    ("GeneralizedDiceLoss", dict(include_background=False, to_onehot_y=True, smooth_nr=0.0,
                                 smooth_dr=0.0), _XCE, _YCE, 0.0),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, sigmoid=True, **_SMOOTH4), _X23, _Y13,
     0.469964),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, softmax=True, **_SMOOTH4), _X23, _Y13,
     0.414507),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, softmax=True, reduction="sum", **_SMOOTH4),
     _X23, _Y13, 0.829015),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, softmax=True, reduction="none", **_SMOOTH4),
     _X23, _Y13, [[[0.273476]], [[0.555539]]]),
    ("GeneralizedDiceLoss", dict(include_background=False, to_onehot_y=True, smooth_nr=1e-8,
                                 smooth_dr=1e-8), _XCE, [[[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]],
     0.0),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, softmax=True, w_type="simple", smooth_nr=0,
                                 smooth_dr=0), [[[0.0, 10.0, 10.0, 10.0], [10.0, 0.0, 0.0, 0.0]]],
     ("i64", [[[1, 1, 0, 0]]]), 0.250023),
    ("GeneralizedDiceLoss", dict(other_act=torch.tanh, **_SMOOTH4), _XB, _YB, 0.99970),
    ("GeneralizedDiceLoss", dict(to_onehot_y=True, other_act=lambda v: torch.log_softmax(v, dim=1),
                                 **_SMOOTH4), _X23, _Y13, -0.097833),
]


@pytest.mark.parametrize("case", MONAI_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MONAI_CASES)])
def test_monai_test_cases(case):
    name, kw, x, y, expected = case
    x = _T(x)
    if isinstance(y, tuple):
        y = _T(y[1], {"u8": torch.uint8, "i64": torch.int64}[y[0]])
    else:
        y = _T(y)
    loss = getattr(ft, name)(**kw)(x, y)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    # MONAI's inputs include saturated softmaxes (logits 0 and 10), whose float32
    # gradients carry the rounding of 1 - p (about 1e-3 of the largest gradient)
    _compare(name, kw, x, y, None, f32_gatol=1e-3)
    _compare(name, kw, x.double(), y.double() if y.is_floating_point() else y, None)


def test_issue_cases():
    # softmax=True on one channel: MONAI's warning, no error
    with pytest.warns(UserWarning, match="single channel prediction, `softmax=True` ignored"):
        v = ft.DiceLoss(softmax=True)(torch.ones(1, 1, 3), torch.ones(1, 1, 3))
    assert v.item() == pytest.approx(0.0, abs=1e-6)
    # sigmoid Dice with ignore_index=255 on MONAI's (N, 1, H, W) target form
    x = torch.tensor([[[[2.0, -1.0, 0.5], [0.3, -2.0, 1.0]]]], requires_grad=True)
    y = torch.tensor([[[[1, 0, 255], [1, 255, 0]]]])
    ours = ft.DiceLoss(sigmoid=True, ignore_index=255)(x, y)
    want = ML.DiceLoss(sigmoid=True, ignore_index=255)(x, y)
    torch.testing.assert_close(ours, want)
    assert _ran_kernel(ours)


def test_state_dict_and_pickle():
    import pickle

    for name in ("DiceCELoss", "DiceFocalLoss", "GeneralizedDiceFocalLoss", "FocalLoss"):
        kw = dict(weight=torch.tensor([0.5, 1.0, 2.0])) if name != "GeneralizedDiceFocalLoss" \
            else dict(weight=[0.5, 1.0, 2.0])
        ours, theirs = getattr(ft, name)(**kw), getattr(ML, name)(**kw)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]
        back = pickle.loads(pickle.dumps(ours))
        assert type(back) is type(ours)
        x, t = _make("label", (1, 3, 4, 4), torch.float64, 0)
        kw2 = dict(to_onehot_y=True)
        torch.testing.assert_close(getattr(ft, name)(**kw2)(x, t),
                                   pickle.loads(pickle.dumps(getattr(ft, name)(**kw2)))(x, t))


def test_dice_focal_single_node_retain_graph_and_no_grad():
    # DiceFocalLoss on a label map: Dice and focal kernels in one autograd node
    x, t = _make("label", (2, 3, 4, 5), torch.float64, 7)
    kw = dict(softmax=True, to_onehot_y=True, lambda_dice=0.7, lambda_focal=1.3,
              include_background=False)
    ours, theirs = ft.DiceFocalLoss(**kw), ML.DiceFocalLoss(**kw)
    xa = x.clone().requires_grad_()
    la = ours(xa, t)
    assert type(la.grad_fn).__name__ == "_SumOfKernelsBackward"
    la.backward(torch.tensor(2.0, dtype=la.dtype), retain_graph=True)
    first = xa.grad.clone()
    xa.grad = None
    la.backward()                          # recomputed from the saved input
    xb = x.clone().requires_grad_()
    with _monai_float64():
        lb = theirs(xb, t)
        lb.backward()
    torch.testing.assert_close(la.detach(), lb.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(first, 2 * xb.grad, rtol=1e-8, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, t), la.detach(), rtol=1e-12, atol=1e-14)
