"""fastloss.torch.functional's own losses (no torch namesake) against their
formulas in torch ops: values, gradients, options, fallbacks."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastloss  # noqa: E402
import fastloss.torch as ft  # noqa: E402
from fastloss.torch import functional as FF  # noqa: E402

from conftest import compile_or_skip  # noqa: E402


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _own_cases(g):
    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    def cos(*s):
        return torch.rand(*s, generator=g, dtype=torch.float64) * 1.98 - 0.99

    lab = torch.tensor([[0, 1, 2], [3, -100, 1], [2, 2, 0], [1, 0, 3], [0, 0, 0], [3, 3, 1]])
    pm1 = torch.randint(0, 2, (5, 3), generator=g).to(torch.float64) * 2 - 1
    return {
        "log_cosh_loss": (dict(input=r(5, 3), target=r(5, 3)), {}, ("input", "target")),
        "pseudo_huber_loss": (dict(input=r(5, 3), target=r(5, 3)), dict(delta=0.7),
                              ("input", "target")),
        "sigmoid_focal_loss": (dict(inputs=r(5, 3),
                                    targets=torch.rand(5, 3, generator=g,
                                                       dtype=torch.float64).round()),
                               dict(gamma=1.5), ("inputs",)),
        "softmax_focal_loss": (dict(input=r(6, 4, 3), target=lab),
                               dict(alpha=[0.5, 1.0, 2.0, 1.5]), ("input",)),
        "cosface_loss": (dict(cosine=cos(6, 5), target=torch.randint(0, 5, (6,), generator=g)),
                         {}, ("cosine",)),
        "arcface_loss": (dict(cosine=cos(6, 5), target=torch.randint(0, 5, (6,), generator=g)),
                         dict(s=8.0), ("cosine",)),
        "sphereface_loss": (dict(cosine=cos(6, 5),
                                 target=torch.randint(0, 5, (6,), generator=g)),
                            dict(s=4.0, m=3), ("cosine",)),
        "hinge_loss": (dict(input=r(5, 3), target=pm1), dict(margin=0.8, squared=True),
                       ("input",)),
        "exponential_loss": (dict(input=r(5, 3), target=pm1), {}, ("input",)),
        "multiclass_hinge_loss": (dict(input=r(6, 5),
                                       target=torch.randint(0, 5, (6,), generator=g)),
                                  dict(margin=1.5), ("input",)),
        "contrastive_loss": (dict(x1=r(6, 4), x2=r(6, 4),
                                  label=torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
                                                     dtype=torch.float64)),
                             dict(margin=3.0), ("x1", "x2")),
        "js_div": (dict(p=torch.softmax(r(4, 3, 5), -1), q=torch.softmax(r(4, 3, 5), -1)),
                   {}, ("p",)),
        "center_loss": (dict(features=r(7, 3), labels=torch.tensor([0, 3, 1, 1, 0, 3, 3]),
                             centers=r(4, 3)), {}, ("features", "centers")),
        "gan_discriminator_loss": (dict(real_logits=r(5), fake_logits=r(3, 2)), {},
                                   ("real_logits", "fake_logits")),
        "gan_generator_loss": (dict(fake_logits=r(5, 3)), dict(non_saturating=False),
                               ("fake_logits",)),
    }


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["log_cosh_loss", "pseudo_huber_loss", "sigmoid_focal_loss",
                                  "softmax_focal_loss", "cosface_loss", "arcface_loss",
                                  "sphereface_loss", "hinge_loss", "exponential_loss",
                                  "multiclass_hinge_loss", "contrastive_loss", "js_div",
                                  "center_loss", "gan_discriminator_loss",
                                  "gan_generator_loss"])
def test_own_losses_match_their_torch_formula(name, reduction):
    """The kernel path equals the torch-op fallback (an independent implementation)."""
    from fastloss.torch import _core

    args, kw, diff = _own_cases(_g(11))[name]
    kw = dict(kw, reduction=reduction)
    a = {k: v.clone().requires_grad_(k in diff) for k, v in args.items()}
    b = {k: v.clone().requires_grad_(k in diff) for k, v in args.items()}
    la = getattr(ft.functional, name)(**a, **kw)
    lb = _core.REGISTRY[name].fallback(**b, **kw)
    if isinstance(la, tuple):  # gan_discriminator_loss 'none': the pair, one tensor here
        la, lb = (torch.cat([v.reshape(-1) for v in pair]) for pair in (la, lb))
    # a 'none' whose outputs mix many inputs runs the torch formula (spec.none is None)
    fast = reduction != "none" or _core.REGISTRY[name].none is not None
    assert (type(la.grad_fn).__name__ == "_FnBackward") == fast  # which path ran
    go = torch.rand(la.shape, generator=_g(12), dtype=la.dtype) + 0.5
    la.backward(go)
    lb.backward(go)
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
    for k in diff:
        torch.testing.assert_close(a[k].grad, b[k].grad, rtol=1e-8, atol=1e-10)
    x = {k: v.clone().requires_grad_(k in diff) for k, v in args.items()}
    keys = list(x)

    def f(*ts):
        return getattr(ft.functional, name)(**dict(zip(keys, ts)), **kw)
    assert torch.autograd.gradcheck(f, tuple(x[k] for k in keys))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("wshape", [(1, 3, 1), (4, 3, 5)], ids=["per_class", "per_element"])
def test_sigmoid_focal_sample_weight(wshape, reduction):
    from fastloss.torch import _core

    g = _g(31)
    x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    t = (torch.rand(4, 3, 5, generator=g) > 0.5).to(torch.float64)
    w = torch.rand(wshape, generator=g, dtype=torch.float64) + 0.25
    kw = dict(alpha=0.3, gamma=1.5, reduction=reduction)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    la = ft.functional.sigmoid_focal_loss(xa, t, sample_weight=w, **kw)
    lb = _core.REGISTRY["sigmoid_focal_loss"].fallback(xb, t, sample_weight=w, **kw)
    assert type(la.grad_fn).__name__ == "_FnBackward"
    # the weighted mean by hand, from the unweighted per-element losses
    per = ft.functional.sigmoid_focal_loss(x, t, alpha=0.3, gamma=1.5, reduction="none")
    wb = w.expand_as(per)
    want = {"mean": (wb * per).sum() / wb.sum(), "sum": (wb * per).sum(), "none": wb * per}
    torch.testing.assert_close(la, want[reduction], rtol=1e-12, atol=1e-14)
    go = torch.rand(la.shape, generator=g, dtype=la.dtype) + 0.5
    la.backward(go)
    lb.backward(go)
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-10)
    assert torch.autograd.gradcheck(
        lambda v: ft.functional.sigmoid_focal_loss(v, t, sample_weight=w, **kw),
        (x.clone().requires_grad_(),))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["l1_penalty", "l2_penalty", "elastic_net_penalty"])
def test_penalties_over_any_number_of_tensors(name, dtype):
    g = _g(21)
    ws = [torch.randn(*s, generator=g, dtype=dtype) for s in ((3, 4), (5,), (2, 1, 3))]
    ws[1][2] = 0.0  # sign(0) = 0, as torch's abs
    kw = dict(l1_ratio=0.3) if name == "elastic_net_penalty" else {}
    from fastloss.torch import _core

    a = [w.clone().requires_grad_() for w in ws]
    b = [w.clone().requires_grad_() for w in ws]
    la = getattr(FF, name)(*a, **kw)
    lb = _core.REGISTRY[name].fallback(*b, **kw)
    assert type(la.grad_fn).__name__ == "_FnBackward"
    assert la.dtype == dtype
    (la * 1.5).backward()
    (lb * 1.5).backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(la, lb, **tol)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad, **tol)
    # a tensor that does not require grad gets none; the others still do
    c = [ws[0].clone(), ws[1].clone().requires_grad_()]
    getattr(FF, name)(*c, **kw).backward()
    assert c[0].grad is None and c[1].grad is not None
    if dtype == torch.float64:
        assert torch.autograd.gradcheck(lambda *t: getattr(FF, name)(*t, **kw),
                                        tuple(w.clone().requires_grad_() for w in ws))
    # mixed float dtypes run the torch formula
    m = [ws[0].float().requires_grad_(), ws[1].double().requires_grad_()]
    lm = getattr(FF, name)(*m, **kw)
    assert type(lm.grad_fn).__name__ != "_FnBackward"
    torch.testing.assert_close(lm, _core.REGISTRY[name].fallback(*m, **kw))


def test_penalty_of_a_models_parameters_under_compile():
    model = torch.nn.Linear(6, 3).double()

    def step(x):
        return model(x).square().mean() + 0.01 * FF.elastic_net_penalty(*model.parameters(),
                                                                        l1_ratio=0.2)

    x = torch.randn(8, 6, dtype=torch.float64)
    cstep = compile_or_skip(step)
    cstep(x).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    from fastloss.torch import _formulas as T
    (model(x).square().mean()
     + 0.01 * T.elastic_net_penalty(*model.parameters(), l1_ratio=0.2)).backward()
    for gg, p in zip(got, model.parameters()):
        torch.testing.assert_close(gg, p.grad)


def test_js_div_off_the_fast_path():
    g = _g(23)
    p = torch.softmax(torch.randn(3, 4, generator=g, dtype=torch.float64), 0)
    q = torch.softmax(torch.randn(3, 4, generator=g, dtype=torch.float64), 0)
    from fastloss.torch import _formulas as T
    # a class axis other than the last, and a q that requires grad: the torch formula
    for kw, qq in ((dict(dim=0), q), ({}, q.clone().requires_grad_())):
        pp = p.clone().requires_grad_()
        got = FF.js_div(pp, qq, reduction="none", **kw)
        assert type(got.grad_fn).__name__ != "_FnBackward"
        torch.testing.assert_close(got, T.js_div(p, q, reduction="none", **kw))
        pn = p.numpy()
        qn = q.numpy()
        want = fastloss.js_div(pn, qn, axis=kw.get("dim", -1), reduction="none")
        torch.testing.assert_close(got, torch.from_numpy(np.asarray(want)))


def test_own_losses_fall_back_off_the_fast_path():
    args, kw, diff = _own_cases(_g(13))["arcface_loss"]
    class _Sub(torch.Tensor):  # a tensor subclass: torch's formulas, not the kernel
        pass

    c_sub = args["cosine"].as_subclass(_Sub)
    assert not ft.is_accelerated(c_sub)
    got = ft.functional.arcface_loss(c_sub, args["target"], **kw)
    ref = ft.functional.arcface_loss(args["cosine"], args["target"], **kw)
    torch.testing.assert_close(got.as_subclass(torch.Tensor), ref)


_DICE_OPTIONS = [
    dict(),
    dict(include_background=False, squared_pred=True),
    dict(batch=True, weight=[0.5, 1.0, 2.0, 1.5]),
    dict(ignore_index=255, smooth_nr=0.0, smooth_dr=1e-6),
    dict(include_background=False, weight=[1.0, 2.0, 0.5]),
    dict(activation="sigmoid", include_background=False, weight=[1.0, 2.0, 0.5]),
]


_SEG_OPTIONS = {
    "dice_loss": _DICE_OPTIONS,
    "jaccard_loss": _DICE_OPTIONS,
    "dice_ce_loss": _DICE_OPTIONS,
    "tversky_loss": [dict(), dict(alpha=0.3, beta=0.7, include_background=False),
                     dict(batch=True, weight=[0.5, 1.0, 2.0, 1.5]), dict(ignore_index=255),
                     dict(activation="sigmoid")],
    "focal_tversky_loss": [dict(), dict(gamma=2.0, alpha=0.3, beta=0.7, batch=True),
                           dict(ignore_index=255, include_background=False)],
    "generalized_dice_loss": [dict(), dict(w_type="simple", include_background=False),
                              dict(w_type="uniform", batch=True), dict(ignore_index=255)],
    "sensitivity_specificity_loss": [
        dict(), dict(r=0.5, include_background=False, weight=[1.0, 2.0, 0.5]),
        dict(batch=True), dict(ignore_index=255, activation="sigmoid")],
}


def _dice_params():
    out = []
    for name, options in _SEG_OPTIONS.items():
        for opts in options:
            if name == "dice_ce_loss":
                if opts.get("activation"):
                    continue  # dice_ce_loss is softmax-only
                if "weight" in opts and opts.get("include_background") is False:
                    # DiceCELoss takes one weight per class (the CE needs them all)
                    opts = dict(opts, weight=[0.3] + opts["weight"])
            out.append(pytest.param(name, opts, id=f"{name}-{opts}"))
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name,opts", _dice_params())
def test_segmentation_losses_match_their_torch_formula(name, opts, reduction):
    from fastloss.torch import _core

    g = _g(21)
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64, generator=g)
    t = torch.randint(0, 4, (2, 5, 3), generator=g).to(torch.uint8)
    if "ignore_index" in opts:
        t[0, 1, :] = 255
    kw = dict(opts, reduction=reduction)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    la = getattr(ft.functional, name)(xa, t, **kw)
    lb = _core.REGISTRY[name].fallback(xb, t, **kw)
    assert type(la.grad_fn).__name__ == "_FnBackward"  # the fastloss path ran
    la.backward()
    lb.backward()
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-10)
    x3 = x[:1, :, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z: getattr(ft.functional, name)(z, t[:1, :2], **kw), (x3,))


_FORMS = [("onehot_u8", None), ("onehot_u8", 1), ("onehot_gap", 255), ("single", 255),
          ("single_softmax", None)]
_FORM_CASES = [
    pytest.param(name, form, ig, id=f"{name}-{form}-{ig}")
    for name in ("dice_loss", "jaccard_loss", "tversky_loss", "generalized_dice_loss",
                 "dice_ce_loss")
    for form, ig in _FORMS
    # MONAI's GeneralizedDiceLoss has no ignore_index; dice_ce_loss needs C >= 2
    if not (name == "generalized_dice_loss" and ig is not None)
    and not (name == "dice_ce_loss" and form.startswith("single"))
]


@pytest.mark.parametrize("name,form,ignore", _FORM_CASES)
def test_segmentation_target_forms_match_their_torch_formula(name, form, ignore):
    from fastloss.torch import _core

    g = _g(23)
    C = 1 if form.startswith("single") else 4
    x = torch.randn(2, C, 5, 3, dtype=torch.float64, generator=g)
    lab = torch.randint(0, max(C, 2), (2, 1, 5, 3), generator=g)
    if form == "single":
        t = lab.clone()
        t[0, 0, 1] = 255
    elif form == "single_softmax":
        t = lab.to(torch.float64)
    else:
        t = torch.nn.functional.one_hot(lab[:, 0], C).movedim(-1, 1).to(torch.uint8)
        if form == "onehot_gap":
            t[1, :, 2] = 0
    kw = dict(ignore_index=ignore) if ignore is not None else {}
    if form.startswith("single") and name != "dice_ce_loss":
        kw["activation"] = "sigmoid" if form == "single" else "softmax"
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        la = getattr(ft.functional, name)(xa, t, **kw)
        lb = _core.REGISTRY[name].fallback(xb, t, **kw)
    n_warn = sum("activation='softmax' ignored" in str(w.message) for w in rec)
    assert n_warn == (2 if form == "single_softmax" else 0)
    assert type(la.grad_fn).__name__ == "_FnBackward"
    la.backward()
    lb.backward()
    torch.testing.assert_close(la, lb, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-10)


def test_dice_none_runs_the_torch_formula():
    g = _g(22)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randint(0, 3, (2, 4, 4), generator=g)
    per = ft.functional.dice_loss(x, t, reduction="none")
    assert per.shape == (2, 3)
    torch.testing.assert_close(per.mean(), ft.functional.dice_loss(x, t))
    per.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_fastrcnn_loss_matches_torchvisions_formula():
    g = _g(31)
    n, c = 10, 5
    logits = torch.randn(n, c, dtype=torch.float64, generator=g)
    boxes = torch.randn(n, 4 * c, dtype=torch.float64, generator=g)
    labels = [torch.tensor([0, 2, 1, 0, 4]), torch.tensor([3, 0, 0, 1, 2])]
    targets = [torch.randn(5, 4, dtype=torch.float64, generator=g) for _ in range(2)]
    la, ba = logits.clone().requires_grad_(), boxes.clone().requires_grad_()
    cls, box = ft.functional.fastrcnn_loss(la, ba, labels, targets)
    # torchvision's roi_heads.fastrcnn_loss, written out with torch ops
    lb, bb = logits.clone().requires_grad_(), boxes.clone().requires_grad_()
    y, tt = torch.cat(labels), torch.cat(targets)
    pos = torch.where(y > 0)[0]
    cls_ref = F.cross_entropy(lb, y)
    box_ref = F.smooth_l1_loss(bb.reshape(n, c, 4)[pos, y[pos]], tt[pos], beta=1 / 9,
                               reduction="sum") / y.numel()
    torch.testing.assert_close(cls, cls_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(box, box_ref, rtol=1e-10, atol=1e-12)
    (cls + 2 * box).backward()
    (cls_ref + 2 * box_ref).backward()
    torch.testing.assert_close(la.grad, lb.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ba.grad, bb.grad, rtol=1e-8, atol=1e-10)
    total, ce, bl = fastloss.fast_rcnn_loss(logits.numpy(), y.numpy(), boxes.numpy(), tt.numpy(),
                                            beta=1 / 9, return_parts=True)
    assert abs(float(ce) - float(cls)) < 1e-12 and abs(float(bl) - float(box)) < 1e-12
