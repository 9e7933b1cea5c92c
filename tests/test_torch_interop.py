"""fastloss.torch against torch.nn.functional: values, gradients, fallback, compile, training."""

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastloss  # noqa: E402
import fastloss.torch as ft  # noqa: E402
from fastloss import _tensor_views  # noqa: E402
from fastloss.torch import _core  # noqa: E402
from fastloss.torch import functional as FF  # noqa: E402

from conftest import compile_or_skip, run_python  # noqa: E402

# torch-named losses (compared with torch.nn.functional); fastloss's own ones are
# compared with their torch formulas in test_own_losses_match_their_torch_formula
REGISTERED = sorted(n for n in _core.REGISTRY if hasattr(F, n))


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _cases(name, dtype):
    """(tensor args, options) pairs covering the option matrix of loss ``name``."""
    g = _g(zlib.crc32(name.encode()) % 1000)   # the same data in every process

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    def labels(c, *shape):
        return torch.randint(0, c, shape, generator=g)

    out = []
    if name in ("cross_entropy", "nll_loss"):
        def inp(*s):
            x = r(*s)
            return x if name == "cross_entropy" else F.log_softmax(x, 1 if x.dim() > 1 else 0)
        t = labels(5, 7)
        t_ign = t.clone()
        t_ign[::3] = 2
        w = torch.rand(5, generator=g, dtype=dtype) + 0.5
        out += [
            (dict(input=inp(7, 5), target=t), {}),
            (dict(input=inp(7, 5), target=t, weight=w), {}),
            (dict(input=inp(7, 5), target=t_ign), dict(ignore_index=2)),
            (dict(input=inp(7, 5), target=t_ign, weight=w), dict(ignore_index=2)),
            (dict(input=inp(3, 5, 4, 6), target=labels(5, 3, 4, 6)), {}),
            (dict(input=inp(3, 5, 4, 6), target=labels(5, 3, 4, 6), weight=w), {}),
            (dict(input=inp(5), target=labels(5)), {}),
            (dict(input=inp(2, 5, 3, 2, 2), target=labels(5, 2, 3, 2, 2)), {}),
        ]
        if name == "cross_entropy":
            p = torch.softmax(r(3, 5, 4), 1)
            out += [
                (dict(input=inp(7, 5), target=t), dict(label_smoothing=0.2)),
                (dict(input=inp(3, 5, 4, 6), target=labels(5, 3, 4, 6), weight=w),
                 dict(label_smoothing=0.1)),
                (dict(input=inp(7, 5), target=t_ign, weight=w),
                 dict(label_smoothing=0.3, ignore_index=2)),
                (dict(input=inp(3, 5, 4), target=p), {}),
                (dict(input=inp(3, 5, 4), target=p, weight=w), dict(label_smoothing=0.25)),
            ]
    elif name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"):
        out += [(dict(input=r(4, 5, 6), target=r(4, 5, 6)), {})]
        if name == "smooth_l1_loss":
            out += [(dict(input=r(30), target=r(30)), dict(beta=0.5))]
        if name == "huber_loss":
            out += [(dict(input=r(30), target=r(30)), dict(delta=0.7))]
    elif name == "binary_cross_entropy":
        x = torch.sigmoid(r(4, 6))
        out += [(dict(input=x, target=torch.rand(4, 6, generator=g, dtype=dtype)), {}),
                (dict(input=x, target=torch.rand(4, 6, generator=g, dtype=dtype),
                      weight=torch.rand(4, 6, generator=g, dtype=dtype)), {})]
    elif name == "binary_cross_entropy_with_logits":
        t = torch.rand(4, 6, generator=g, dtype=dtype)
        out += [(dict(input=r(4, 6), target=t), {}),
                (dict(input=r(4, 6), target=t, weight=torch.rand(6, generator=g, dtype=dtype),
                      pos_weight=torch.rand(6, generator=g, dtype=dtype) + 0.5), {})]
    elif name == "kl_div":
        x = F.log_softmax(r(4, 6), 1)
        t = torch.softmax(r(4, 6), 1)
        out += [(dict(input=x, target=t), {}),
                (dict(input=x, target=t.log()), dict(log_target=True))]
    elif name == "soft_margin_loss":
        out += [(dict(input=r(5, 4), target=torch.sign(r(5, 4))), {})]
    elif name == "multilabel_soft_margin_loss":
        t = (r(5, 4) > 0).to(dtype)
        out += [(dict(input=r(5, 4), target=t), {}),
                (dict(input=r(5, 4), target=t, weight=torch.rand(4, generator=g, dtype=dtype)), {})]
    elif name == "multi_margin_loss":
        t = labels(5, 7)
        out += [(dict(input=r(7, 5), target=t), {}),
                (dict(input=r(7, 5), target=t), dict(p=2, margin=0.7)),
                (dict(input=r(7, 5), target=t, weight=torch.rand(5, generator=g, dtype=dtype)), {})]
    elif name == "triplet_margin_loss":
        a, p, n = r(6, 8), r(6, 8), r(6, 8)
        out += [(dict(anchor=a, positive=p, negative=n), {}),
                (dict(anchor=a, positive=p, negative=n), dict(swap=True, margin=2.0)),
                (dict(anchor=a, positive=p, negative=n), dict(p=1))]
    else:
        pytest.skip(f"no test cases written for {name}")
    return out


def _reductions(name):
    red = ["mean", "sum", "none"]
    if name == "kl_div":
        red.append("batchmean")
    return red


def _grad_names(spec, args):
    return [n for n in args if n in spec.diff or n in spec.derived]


def _eval(fn, args, opts, reduction, grad_names, seed=0):
    args = {k: (v.detach().clone().requires_grad_(k in grad_names)) for k, v in args.items()}
    loss = fn(**args, **opts, reduction=reduction)
    go = torch.randn(loss.shape, generator=_g(seed), dtype=loss.dtype) + 1.5
    grads = torch.autograd.grad(loss, [args[n] for n in grad_names], go)
    return loss.detach(), grads


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_values_and_grads_vs_torch(name, dtype):
    spec = _core.REGISTRY[name]
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for args, opts in _cases(name, dtype):
        gn = _grad_names(spec, args)
        for red in _reductions(name):
            assert ft.is_accelerated(*args.values())
            ours, og = _eval(getattr(FF, name), args, opts, red, gn)
            ref, rg = _eval(getattr(F, name), args, opts, red, gn)
            assert ours.dtype == ref.dtype and ours.shape == ref.shape, (opts, red)
            torch.testing.assert_close(ours, ref, **tol, msg=f"{name} {opts} {red}")
            for n, a, b in zip(gn, og, rg):
                torch.testing.assert_close(a, b, **tol, msg=f"grad {n} {name} {opts} {red}")


@pytest.mark.parametrize("name", REGISTERED)
def test_grad_of_each_argument_alone(name):
    # one tensor requiring grad takes the backward that scales the kernel's
    # gradient in place; it must be that tensor's gradient (a target's
    # derived one too), scaled by a grad_output other than 1
    spec = _core.REGISTRY[name]
    args, opts = _cases(name, torch.float64)[0]
    for n in _grad_names(spec, args):
        for red in ("mean", "sum"):
            ours, og = _eval(getattr(FF, name), args, opts, red, (n,))
            ref, rg = _eval(getattr(F, name), args, opts, red, (n,))
            torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(og[0], rg[0], rtol=1e-10, atol=1e-12,
                                       msg=f"grad {n} {name} {red}")


@pytest.mark.parametrize("name", REGISTERED)
def test_gradcheck(name):
    spec = _core.REGISTRY[name]
    for args, opts in _cases(name, torch.float64)[:3]:
        gn = _grad_names(spec, args)
        for red in ("mean", "none"):
            def f(*diff):  # called by gradcheck within this iteration
                a = dict(args, **dict(zip(gn, diff)))  # noqa: B023
                return getattr(FF, name)(**a, **opts, reduction=red)  # noqa: B023
            inputs = tuple(args[n].detach().clone().requires_grad_() for n in gn)
            assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def _view_cases():
    base = torch.randn(6, 5, 4, dtype=torch.float64)
    out = [base, base.float(), base.half(), base[:, 1:4, ::2], base.transpose(0, 2),
           base[2:], base[0, 0, 0], base[:1].expand(3, 5, 4), torch.randn(1, 2, 1, 3, 1, 2),
           torch.nn.Parameter(base.clone()), base.to(torch.bfloat16)]
    out += [torch.randint(-9, 9, (4, 3)).to(d) for d in
            (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)]
    return out


@pytest.mark.parametrize("i", range(len(_view_cases())))
def test_fast_pass_views_are_numpys(i):
    # call()'s one C pass (fastloss._tensor_views) hands the kernels the
    # array numpy(force=True) gives: same values, dtype, shape and memory
    t = _view_cases()[i]
    args = {"input": t, "target": None if t.is_floating_point() else torch.randn(3)}
    r = _tensor_views.prepare(args, frozenset(("input", "target")), frozenset(("input",)), True)
    assert r is not None, t.dtype
    names, tensors, versions, inputs, gnames, opts, kw = r
    ref = _core._np(t) if t.dtype == torch.bfloat16 else t.numpy(force=True)
    a = kw["input"]
    assert a.dtype == ref.dtype and a.shape == ref.shape and a.strides == ref.strides
    assert np.array_equal(a.view(np.uint8) if a.dtype.kind == "V" else a,
                          ref.view(np.uint8) if ref.dtype.kind == "V" else ref)
    if t.numel():
        assert a.ctypes.data == t.data_ptr() and a.base is t
    if t.requires_grad:
        assert gnames == ["input"] and versions == [u._version for u in tensors]
    else:
        assert gnames == [] and versions is None


def test_fast_pass_declines_what_the_python_pass_decides():
    x = torch.randn(4, 3)
    y = torch.randint(0, 3, (4,))
    tn, gr = frozenset(("input", "target", "weight")), frozenset(("input",))

    def prep(**args):
        return _tensor_views.prepare(args, tn, gr, True)
    assert prep(input=x, target=y) is not None
    assert prep(input=torch._neg_view(x), target=y) is None  # the negative bit
    assert prep(input=x, target=torch._neg_view(y)) is None
    assert prep(input=x.to(torch.complex64), target=y) is None
    assert prep(input=x.to("meta"), target=y) is None
    assert prep(input=torch.empty(0, 3), target=y[:0]) is None  # no storage
    assert prep(input=x, target=y.to(torch.uint16)) is None
    assert prep(input=x, target=x.double()) is None  # mixed float dtypes
    assert prep(input=y, target=y) is None  # no float tensor
    assert prep(input=x, target=y, weight=torch.rand(3, requires_grad=True)) is None

    class Sub(torch.Tensor):
        pass
    assert prep(input=x.as_subclass(Sub), target=y) is None
    # with grad mode off, a tensor requiring grad is just read
    assert _tensor_views.prepare(dict(input=x, target=y, weight=torch.rand(3, requires_grad=True)),
                          tn, gr, False) is not None


@pytest.mark.parametrize("name", REGISTERED)
def test_fast_and_python_passes_agree(name, monkeypatch):
    # the same call through call()'s C pass and through its Python pass
    # (what runs when the C pass declines): bit-identical losses and gradients
    spec = _core.REGISTRY[name]
    for dtype in (torch.float64, torch.float32):
        for args, opts in _cases(name, dtype)[:4]:
            gn = _grad_names(spec, args)
            for red in ("mean", "none"):
                fast = _eval(getattr(FF, name), args, opts, red, gn)
                with monkeypatch.context() as m:
                    m.setattr(_core, "_fast_call", lambda *a: None)
                    slow = _eval(getattr(FF, name), args, opts, red, gn)
                assert torch.equal(fast[0], slow[0]), (name, opts, red)
                for a, b in zip(fast[1], slow[1]):
                    assert torch.equal(a, b), (name, opts, red)
    x = torch.randn(4, 3)
    bad = torch.tensor([0, 1, 3, 0])
    with pytest.raises(ValueError, match="target") as fast_err:
        FF.cross_entropy(x, bad)
    monkeypatch.setattr(_core, "_fast_call", lambda *a: None)
    with pytest.raises(ValueError, match="target") as slow_err:
        FF.cross_entropy(x, bad)
    assert str(fast_err.value) == str(slow_err.value)


@pytest.mark.parametrize("name", REGISTERED)
def test_a_call_leaves_no_reference_cycle(name):
    # what a call allocates is freed by reference counting: garbage only the
    # cyclic GC frees (an autograd node holding its own output) would cost
    # every training step a share of a collection and keep tensors alive
    import gc

    spec = _core.REGISTRY[name]
    args, opts = _cases(name, torch.float32)[0]
    gn = _grad_names(spec, args)

    def step():
        a = {k: (v.detach().requires_grad_(k in gn)) for k, v in args.items()}
        getattr(FF, name)(**a, **opts).backward()
        with torch.no_grad():
            getattr(FF, name)(**a, **opts)
    step()
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            step()
        # with collections off, what the steps left is in the youngest
        # generation: collecting it alone is enough, and fast
        assert gc.collect(0) == 0
    finally:
        gc.enable()


def test_nchw_noncontiguous_uint8_labels():
    x = torch.randn(2, 6, 5, 8, dtype=torch.float64)[:, :, :, ::2]  # strided view
    assert not x.is_contiguous()
    t = torch.randint(0, 6, (2, 5, 4))
    xr = x.clone().requires_grad_()
    xo = x.clone().requires_grad_()
    xo_nc = torch.randn(2, 6, 5, 8, dtype=torch.float64)
    xo_nc[:, :, :, ::2] = x
    view = xo_nc.requires_grad_()[:, :, :, ::2]
    ours = FF.cross_entropy(view, t.to(torch.uint8), label_smoothing=0.1)
    ref = F.cross_entropy(xr, t, label_smoothing=0.1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(xo_nc.grad[:, :, :, ::2], xr.grad, rtol=1e-12, atol=1e-15)
    assert float(xo_nc.grad[:, :, :, 1::2].abs().sum()) == 0.0
    del xo


def test_no_grad_and_requires_grad_false(monkeypatch):
    x = torch.randn(8, 5)
    t = torch.randint(0, 5, (8,))
    asked = []
    real = fastloss.cross_entropy

    def spy(*a, **k):
        asked.append(k.get("return_grad", False))
        return real(*a, **k)

    monkeypatch.setattr(fastloss, "cross_entropy", spy)
    ref = F.cross_entropy(x, t)
    out = FF.cross_entropy(x, t)  # requires_grad=False
    assert not out.requires_grad and out.grad_fn is None
    torch.testing.assert_close(out, ref)
    xg = x.clone().requires_grad_()
    with torch.no_grad():
        out = FF.cross_entropy(xg, t, reduction="none")
    assert not out.requires_grad
    torch.testing.assert_close(out, F.cross_entropy(x, t, reduction="none"))
    assert asked == [False, False]
    FF.cross_entropy(xg, t).backward()
    assert asked == [False, False, True]


def test_fallback_other_dtype_and_types():
    x = torch.randn(8, 5)
    t = torch.randint(0, 5, (8,))
    xb = x.to(torch.bfloat16).requires_grad_()
    assert not ft.is_accelerated(xb, t)
    assert not ft.is_accelerated(x.half())
    assert not ft.is_accelerated(x, x.double())  # mixed float dtypes
    assert not ft.is_accelerated(t)  # no float tensor
    assert ft.is_accelerated(x, t, None)
    assert ft.is_accelerated(torch.nn.Parameter(x))
    # bfloat16 losses run the kernels in float32 (tests/test_half_torch.py): a
    # float32 loss, the gradient in bfloat16
    ours = FF.cross_entropy(xb, t, label_smoothing=0.1)
    xr = xb.detach().float().requires_grad_()
    ref = F.cross_entropy(xr, t, label_smoothing=0.1)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    assert xb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(xb.grad.float(), xr.grad.to(torch.bfloat16).float(),
                               rtol=2.0 ** -7, atol=1e-7)
    # mixed float dtypes: torch's code, torch's promotion
    xm = x.clone().requires_grad_()
    ours = FF.mse_loss(xm, x.double() + 1)
    assert ours.dtype == torch.float64
    assert torch.equal(ours, F.mse_loss(x, x.double() + 1))
    # A tensor requiring grad that the kernel has no gradient for (probability targets) -> torch.
    p = torch.softmax(torch.randn(8, 5), 1).requires_grad_()
    FF.cross_entropy(x, p).backward()
    pr = p.detach().clone().requires_grad_()
    F.cross_entropy(x, pr).backward()
    torch.testing.assert_close(p.grad, pr.grad)
    # ... and torch's own errors where torch has no gradient (the class weight).
    with pytest.raises(RuntimeError, match="not differentiable"):
        FF.cross_entropy(x, t, weight=torch.rand(5, requires_grad=True))


def test_softmax_family():
    x = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    for dim in (0, 1, -1):
        torch.testing.assert_close(FF.softmax(x, dim), F.softmax(x, dim))
        torch.testing.assert_close(FF.log_softmax(x, dim), F.log_softmax(x, dim))
        torch.testing.assert_close(FF.logsumexp(x, dim), torch.logsumexp(x, dim))
        assert torch.autograd.gradcheck(lambda x, dim=dim: FF.softmax(x, dim), (x,))
        assert torch.autograd.gradcheck(lambda x, dim=dim: FF.log_softmax(x, dim), (x,))
        assert torch.autograd.gradcheck(lambda x, dim=dim: FF.logsumexp(x, dim, True), (x,))
    assert torch.autograd.gradcheck(lambda x: FF.logsumexp(x, (0, 2)), (x,))
    with torch.no_grad():
        torch.testing.assert_close(FF.softmax(x.float(), 1), F.softmax(x.float(), 1))
    torch.testing.assert_close(FF.softmax(x.bfloat16(), 1), F.softmax(x.bfloat16(), 1))


def test_retain_graph_second_backward():
    x = torch.randn(6, 4, requires_grad=True)
    t = torch.randint(0, 4, (6,))
    loss = FF.cross_entropy(x, t) * 3.0
    loss.backward(retain_graph=True)
    g1 = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * g1)
    xr = x.detach().clone().requires_grad_()
    (F.cross_entropy(xr, t) * 3.0).backward()
    torch.testing.assert_close(g1, xr.grad)


def test_retain_graph_input_modified_in_place_raises():
    x = torch.randn(6, 4, requires_grad=True)
    t = torch.randint(0, 4, (6,))
    loss = FF.cross_entropy(x, t)
    loss.backward(retain_graph=True)
    with torch.no_grad():
        x.add_(1.0)
    # the second backward recomputes the gradient from the inputs: a changed
    # input would give a wrong one, so it raises (as save_for_backward does)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_gradient_buffers_recycled_only_when_free():
    # 600 x 512 float32 = 1.2 MB: above the recycling threshold
    g = _g(11)
    xs = [torch.randn(600, 512, generator=g, requires_grad=True) for _ in range(3)]
    t = torch.randint(0, 512, (600,), generator=g)

    def ours(x, **kw):
        return torch.autograd.grad(FF.cross_entropy(x, t, **kw), x)[0]

    def torchs(x, **kw):
        return torch.autograd.grad(F.cross_entropy(x, t, **kw), x)[0]

    ft.empty_cache()
    g0 = ours(xs[0])
    want0 = torchs(xs[0])
    # g0 is still referenced: the next gradient must go elsewhere
    g1 = ours(xs[1])
    assert not np.shares_memory(g0.numpy(), g1.numpy())
    torch.testing.assert_close(g0, want0)
    torch.testing.assert_close(g1, torchs(xs[1]))
    # once both are released, one of their arrays receives the next gradient
    addrs = {g0.data_ptr(), g1.data_ptr()}
    del g0, g1
    g2 = ours(xs[2], label_smoothing=0.1)
    assert g2.data_ptr() in addrs
    torch.testing.assert_close(g2, torchs(xs[2], label_smoothing=0.1))
    # 'none' scales the recycled buffer in place by an arbitrary grad_output
    del g2
    go = torch.rand(600, generator=g)
    x = xs[0]
    got = torch.autograd.grad(FF.cross_entropy(x, t, reduction="none"), x, go)[0]
    assert got.data_ptr() in addrs
    want = torch.autograd.grad(F.cross_entropy(x, t, reduction="none"), x, go)[0]
    torch.testing.assert_close(got, want)
    del got
    # a gradient kept as .grad (autograd takes the first one as it is)
    # accumulates, and the second call writes elsewhere (were it written
    # into .grad, the sum would be twice the second gradient)
    x.grad = None
    FF.cross_entropy(x, t).backward()
    first = x.grad.data_ptr()
    FF.cross_entropy(x, t, label_smoothing=0.3).backward()
    torch.testing.assert_close(x.grad, want0 + torchs(x, label_smoothing=0.3))
    assert x.grad.data_ptr() == first
    ft.empty_cache()
    assert fastloss.get_gradient_cache()[1] == 0


def test_modules_match_torch_classes():
    w = torch.rand(5) + 0.5
    m = ft.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")
    assert isinstance(m, torch.nn.CrossEntropyLoss)
    assert torch.equal(m.weight, w) and "weight" in m.state_dict()
    ref = torch.nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")
    x = torch.randn(9, 5)
    t = torch.randint(0, 5, (9,))
    torch.testing.assert_close(m(x, t), ref(x, t))
    torch.testing.assert_close(ft.NLLLoss(size_average=False)(F.log_softmax(x, 1), t),
                               torch.nn.NLLLoss(size_average=False)(F.log_softmax(x, 1), t))
    for cls in ft._CLASSES:
        if hasattr(ft, cls):
            assert issubclass(getattr(ft, cls), getattr(torch.nn, cls))


def test_bad_labels_raise_value_error():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="target"):
        FF.cross_entropy(x, torch.tensor([0, 1, 3, 0]))


def test_fastloss_does_not_import_torch():
    code = "import sys, fastloss; assert 'torch' not in sys.modules; print('ok')"
    res = run_python(code)
    assert res.stdout.strip() == "ok", res.stderr


def test_torch_compile_custom_op():
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    t = torch.randint(0, 5, (6, 3))

    def step(x, t):
        return FF.cross_entropy(x * 2.0, t, reduction="none", label_smoothing=0.1).square().sum()

    cstep = compile_or_skip(step)
    xc = x.clone().requires_grad_()
    out = cstep(xc, t)
    out.backward()
    xr = x.clone().requires_grad_()
    ref = F.cross_entropy(xr * 2.0, t, reduction="none", label_smoothing=0.1).square().sum()
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(xc.grad, xr.grad)
    with torch.no_grad():
        torch.testing.assert_close(cstep(x, t), ref.detach())
    # The op is registered with torch.library and passes its consistency checks.
    torch.library.opcheck(
        torch.ops.fastloss.cross_entropy,
        ([x.clone().requires_grad_(), t],
         repr((("input", "target"), (("ignore_index", -100), ("label_smoothing", 0.0),
                                     ("reduction", "mean")))), True),
        test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def _train(loss_fn, model, data, target, steps=20, lr=0.1):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        opt.step()
        traj.append(float(loss))
    return traj


def _models(make):
    torch.manual_seed(1)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    return a, b


def test_training_loop_linear_classifier():
    g = _g(3)
    data = torch.randn(64, 10, generator=g)
    target = torch.randint(0, 4, (64,), generator=g)
    a, b = _models(lambda: torch.nn.Linear(10, 4))
    ours = _train(ft.CrossEntropyLoss(label_smoothing=0.05), a, data, target)
    ref = _train(torch.nn.CrossEntropyLoss(label_smoothing=0.05), b, data, target)
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5)


def test_training_loop_tiny_cnn_nchw():
    g = _g(4)
    data = torch.randn(4, 3, 12, 12, generator=g)
    target = torch.randint(0, 3, (4, 12, 12), generator=g)
    w = torch.tensor([0.5, 1.0, 2.0])

    def make():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(8, 3, 1))

    a, b = _models(make)
    ours = _train(ft.CrossEntropyLoss(weight=w), a, data, target, lr=0.05)
    ref = _train(torch.nn.CrossEntropyLoss(weight=w), b, data, target, lr=0.05)
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


@pytest.mark.parametrize("kw", [
    dict(softmax=True, to_onehot_y=True),
    dict(softmax=True, to_onehot_y=True, include_background=False, batch=True),
    dict(softmax=True, to_onehot_y=True, reduction="sum", squared_pred=True),
    dict(sigmoid=True, to_onehot_y=True, jaccard=True),
    dict(softmax=True, to_onehot_y=True, reduction="none"),  # MONAI's forward runs
], ids=str)
@pytest.mark.parametrize("cls", ["DiceLoss", "DiceCELoss"])
def test_monai_classes(cls, kw):
    ML = pytest.importorskip("monai.losses")
    g = _g(5)
    x = torch.randn(2, 3, 5, 4, 3, dtype=torch.float64, generator=g)
    t = torch.randint(0, 3, (2, 1, 5, 4, 3), generator=g)
    if cls == "DiceCELoss" and kw.get("reduction") == "none":
        # MONAI's DiceCELoss has no per-element reduction; neither has ours
        for mod in (ML, ft):
            with pytest.raises(ValueError, match="none"):
                getattr(mod, cls)(**kw)(x, t)
        return
    ours, ref = getattr(ft, cls)(**kw), getattr(ML, cls)(**kw)
    assert isinstance(ours, getattr(ML, cls))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    la, lb = ours(xa, t), ref(xb, t)
    go = torch.rand(la.shape, generator=g, dtype=la.dtype) + 0.5
    la.backward(go)
    lb.backward(go)
    torch.testing.assert_close(la, lb, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-7, atol=1e-9)
    # dice_ce_loss fuses the softmax only; MONAI's sigmoid Dice + softmax CE falls back
    fused = not (cls == "DiceCELoss" and kw.get("sigmoid"))
    if kw.get("reduction", "mean") != "none" and fused:
        assert type(la.grad_fn).__name__ == "_FnBackward"  # the fastloss path ran
        x3 = x[:1, :, :3, :2, :2].clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda x: ours(x, t[:1, :, :3, :2, :2]), (x3,))
