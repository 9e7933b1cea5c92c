"""Row-wise losses: values and gradients vs the reference, torch, and by hand."""

import functools

import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as R
from fastloss.testing import check_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]
CLASS_LOSSES = {
    # name: (kwargs, is the input a cosine matrix)
    "multi_margin_loss": (dict(p=2, margin=0.7, weight=[0.5, 1.0, 2.0, 1.5, 0.3]), False),
    "multiclass_hinge_loss": (dict(squared=True, margin=0.5), False),
    "softmax_focal_loss": (dict(gamma=1.5, alpha=[0.25, 0.5, 0.75, 1.0, 2.0]), False),
    "cosface_loss": (dict(s=4.0, m=0.35), True),
    "arcface_loss": (dict(s=4.0, m=0.5), True),
    "sphereface_loss": (dict(s=3.0, m=4), True),
}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _class_data(name, n=9, c=5, seed=0, dtype=np.float64):
    rng = _rng(seed)
    x = rng.normal(size=(n, c))
    if CLASS_LOSSES[name][1]:
        x = rng.uniform(-0.99, 0.99, size=(n, c))
    return x.astype(dtype), rng.integers(0, c, n)


def _close(a, b, dtype):
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-9, 1e-12)
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=rtol, atol=atol)


# ------------------------------------------------------- hand-computed

SCORES = np.array([[2.1, 1.4, -0.1], [2.1, 1.3, -2.2], [-0.5, 1.5, 3.1]])
TARGETS = np.array([0, 1, 2])


def test_hinge_course_notes_example():
    per = fl.multiclass_hinge_loss(SCORES, TARGETS, reduction="none")
    np.testing.assert_allclose(per, [0.3, 1.8, 0.0], rtol=1e-12, atol=1e-15)
    assert abs(fl.multiclass_hinge_loss(SCORES, TARGETS) - 0.7) < 1e-12
    np.testing.assert_allclose(fl.multi_margin_loss(SCORES, TARGETS, reduction="none"),
                               [0.1, 0.6, 0.0], rtol=1e-12, atol=1e-15)
    t = F.multi_margin_loss(torch.tensor(SCORES), torch.tensor(TARGETS), reduction="none")
    np.testing.assert_allclose(t.numpy(), [0.1, 0.6, 0.0], rtol=1e-12, atol=1e-15)


def test_hinge_squared_by_hand():
    # row 0: (1.4 - 2.1 + 1)^2 + (-0.1 - 2.1 + 1)^+ = 0.09; row 1: 1.8^2 = 3.24
    per = fl.multiclass_hinge_loss(SCORES, TARGETS, squared=True, reduction="none")
    np.testing.assert_allclose(per, [0.09, 3.24, 0.0], rtol=1e-12, atol=1e-15)


def test_triplet_by_hand():
    a, p, n = np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.array([[1.0, 0.0]])
    assert fl.triplet_margin_loss(a, p, n, eps=0.0) == pytest.approx(5.0, rel=1e-14)
    assert fl.triplet_margin_loss(a, p, n, eps=0.0, squared=True) == pytest.approx(25.0)
    assert fl.triplet_margin_loss(a, p, n, eps=0.0, p=1) == pytest.approx(7.0)
    # swap: d(p, n) = sqrt(4 + 16) > d(a, n) = 1, so d(a, n) is kept
    assert fl.triplet_margin_loss(a, p, n, eps=0.0, swap=True) == pytest.approx(5.0)


def test_contrastive_center_by_hand():
    x1 = np.zeros((2, 2))
    x2 = np.array([[0.3, 0.4], [0.3, 0.4]])
    per = fl.contrastive_loss(x1, x2, np.array([0, 1]), reduction="none")
    np.testing.assert_allclose(per, [0.125, 0.125], rtol=1e-12)
    c = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert fl.center_loss(np.array([[1.0, 2.0]]), np.array([1]), c) == pytest.approx(0.5)


def test_margin_softmax_by_hand():
    c = np.array([[0.5, 0.0]])
    y = np.array([0])
    lse = np.logaddexp
    # sphereface m=2 at theta = pi/3: k = 0, psi = cos(2 pi / 3) = -0.5
    assert fl.sphereface_loss(c, y, s=1.0, m=2) == pytest.approx(lse(-0.5, 0.0) + 0.5)
    # theta = 2 pi / 3 with m = 2: k = 1, psi = -cos(4 pi / 3) - 2 = -1.5
    c2 = np.array([[-0.5, 0.0]])
    assert fl.sphereface_loss(c2, y, s=1.0, m=2) == pytest.approx(lse(-1.5, 0.0) + 1.5)
    # arcface at theta = pi/3, m = 0.5: cos(pi/3 + 0.5)
    z = np.cos(np.pi / 3 + 0.5)
    assert fl.arcface_loss(c, y, s=2.0, m=0.5) == pytest.approx(lse(2 * z, 0.0) - 2 * z)
    # fallback past theta > pi - m: cos = -0.95 -> c - m sin m
    c3 = np.array([[-0.95, 0.0]])
    z = -0.95 - 0.5 * np.sin(0.5)
    assert fl.arcface_loss(c3, y, s=2.0, m=0.5) == pytest.approx(lse(2 * z, 0.0) - 2 * z)
    # easy margin at a negative cosine: no margin
    assert fl.arcface_loss(c2, y, s=2.0, m=0.5, easy_margin=True) == pytest.approx(
        lse(-1.0, 0.0) + 1.0)
    assert fl.cosface_loss(c, y, s=2.0, m=0.25) == pytest.approx(lse(0.5, 0.0) - 0.5)


# ------------------------------------------------------- vs reference

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(CLASS_LOSSES))
def test_class_losses_vs_reference(name, reduction, dtype):
    kw = CLASS_LOSSES[name][0]
    x, y = _class_data(name, dtype=dtype)
    sw = _rng(3).uniform(0.5, 2.0, size=len(y))
    for extra in ({}, {"sample_weight": sw}):
        loss, g = getattr(fl, name)(x, y, reduction=reduction, return_grad=True, **kw, **extra)
        rl, rg = getattr(R, name)(x, y, reduction=reduction, return_grad=True, **kw, **extra)
        assert g.dtype == dtype and g.shape == x.shape
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == dtype
        else:
            assert isinstance(loss, dtype)
        _close(loss, rl, dtype)
        _close(g, rg, dtype)
        # loss alone equals the loss of the gradient call
        _close(getattr(fl, name)(x, y, reduction=reduction, **kw, **extra), rl, dtype)


@pytest.mark.parametrize("name", list(CLASS_LOSSES))
def test_class_losses_check_grad(name):
    kw = CLASS_LOSSES[name][0]
    x, y = _class_data(name, n=6, c=4, seed=1)
    if "weight" in kw:
        kw = dict(kw, weight=kw["weight"][:4])
    if "alpha" in kw:
        kw = dict(kw, alpha=kw["alpha"][:4])
    for reduction in REDUCTIONS:
        check_grad(getattr(fl, name), x, y, reduction=reduction, **kw)


@pytest.mark.parametrize("name", list(CLASS_LOSSES))
def test_class_losses_unbatched_and_noncontiguous(name):
    kw = CLASS_LOSSES[name][0]
    x, y = _class_data(name, n=8, c=10, seed=2)
    kw = {k: (np.resize(v, 5) if isinstance(v, list) else v) for k, v in kw.items()}
    xs = x[::2, ::2]  # (4, 5) non-contiguous view
    ys = y[::2] % 5
    a, ga = getattr(fl, name)(xs, ys, return_grad=True, **kw)
    b, gb = getattr(R, name)(np.ascontiguousarray(xs), ys, return_grad=True, **kw)
    _close(a, b, np.float64)
    _close(ga, gb, np.float64)
    a, ga = getattr(fl, name)(xs[0], ys[0], return_grad=True, **kw)
    assert np.ndim(a) == 0 and ga.shape == (5,)
    b, gb = getattr(R, name)(xs[:1], ys[:1], return_grad=True, **kw)
    _close(a, b, np.float64)
    _close(ga, gb[0], np.float64)


# --------------------------------------------------------- focal loss

def test_focal_gamma0_is_cross_entropy():
    x, y = _class_data("softmax_focal_loss", n=12, c=7)
    a, ga = fl.softmax_focal_loss(x, y, gamma=0.0, return_grad=True)
    b, gb = fl.cross_entropy(x, y, return_grad=True)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.5, 2.0])
def test_focal_finite_gradient_near_p1(gamma):
    x = np.array([[40.0, 0.0, -1.0], [5.0, 0.0, -1.0], [800.0, 0.0, 0.0]])
    y = np.array([0, 0, 0])
    loss, g = fl.softmax_focal_loss(x, y, gamma=gamma, return_grad=True)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    _close(g, R.softmax_focal_loss(x, y, gamma=gamma, return_grad=True)[1], np.float64)
    check_grad(fl.softmax_focal_loss, x[1:2], y[1:2], gamma=gamma)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (2, 40, 3), (1, 4, 3, 2, 2)])
def test_focal_nchw_ignore_index(shape, dtype):
    rng = _rng(4)
    x = rng.normal(size=shape).astype(dtype)
    y = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    y.reshape(-1)[::3] = -100
    alpha = rng.uniform(0.2, 1.0, shape[1])
    for reduction in REDUCTIONS:
        a, ga = fl.softmax_focal_loss(x, y, gamma=0.7, alpha=alpha, reduction=reduction,
                                      return_grad=True)
        b, gb = R.softmax_focal_loss(x, y, gamma=0.7, alpha=alpha, reduction=reduction,
                                     return_grad=True)
        _close(a, b, dtype)
        _close(ga, gb, dtype)
    check_grad(fl.softmax_focal_loss, x.astype(np.float64)[:1, :, :2], y[:1, :2], gamma=0.7)


def test_focal_vs_torch():
    x, y = _class_data("softmax_focal_loss", n=10, c=6)
    alpha = _rng(5).uniform(0.1, 1.0, 6)
    xt = torch.tensor(x, requires_grad=True)
    logp = F.log_softmax(xt, dim=1).gather(1, torch.tensor(y)[:, None])[:, 0]
    lt = (-torch.tensor(alpha)[y] * (1 - logp.exp()) ** 2.0 * logp).mean()
    lt.backward()
    a, g = fl.softmax_focal_loss(x, y, alpha=alpha, return_grad=True)
    assert a == pytest.approx(lt.item(), rel=1e-10)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-9, atol=1e-14)


# ------------------------------------------------------ multi-margin vs torch

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multi_margin_vs_torch(reduction, weighted, p, dtype):
    rng = _rng(6)
    x = rng.normal(size=(11, 7)).astype(dtype)
    y = rng.integers(0, 7, 11)
    w = rng.uniform(0.1, 2.0, 7).astype(dtype) if weighted else None
    xt = torch.tensor(x, requires_grad=True)
    lt = F.multi_margin_loss(xt, torch.tensor(y), p=p, margin=0.8,
                             weight=None if w is None else torch.tensor(w), reduction=reduction)
    lt.sum().backward()
    a, g = fl.multi_margin_loss(x, y, p=p, margin=0.8, weight=w, reduction=reduction,
                                return_grad=True)
    _close(a, lt.detach().numpy(), dtype)
    _close(g, xt.grad.numpy(), dtype)


def test_multi_margin_unbatched_vs_torch():
    x = _rng(7).normal(size=6)
    lt = F.multi_margin_loss(torch.tensor(x), torch.tensor(2))
    assert fl.multi_margin_loss(x, np.int64(2)) == pytest.approx(lt.item(), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("loss", ["multi_margin", "cosface", "arcface"])
def test_streamed_margin_gradients(loss, dtype):
    """A gradient written into the caller's buffer takes the streamed rows
    (each row finished in an L1 buffer, non-temporal stores; rows over 4096
    classes keep the plain stores), a fresh array the plain stores: the same
    bits, against torch for the multi-margin loss (the margin softmax losses'
    values are tested against torch's cross-entropy above).  Above 1 MiB, so
    that the prepared call leaves it to the full path; a bad-label-free
    batch with a sample weight of 0 (its gradient row streamed as zeros)."""
    rng = _rng(40)
    for C in (37, 1000, 5000):
        N = max(2, (1 << 20) // (C * np.dtype(dtype).itemsize) + 3)
        x = rng.uniform(-0.9, 0.9, (N, C)).astype(dtype)
        y = rng.integers(0, C, N)
        sw = rng.uniform(0.5, 2.0, N)
        sw[1] = 0.0
        f = {"multi_margin": functools.partial(fl.multi_margin_loss, p=2, margin=0.8),
             "cosface": fl.cosface_loss, "arcface": fl.arcface_loss}[loss]
        fl.set_gradient_cache(0)
        try:
            l0, g0 = f(x, y, sample_weight=sw, return_grad=True)
        finally:
            fl.set_gradient_cache(512 << 20)
        g1 = np.full_like(x, np.nan)
        l1, g1r = f(x, y, sample_weight=sw, return_grad=True, grad_out=g1)
        assert g1r is g1
        np.testing.assert_array_equal(g1, g0)
        assert l1 == l0
        assert not g1[1].any()
        if loss == "multi_margin" and C <= 1000:
            xt = torch.tensor(x, requires_grad=True)
            lt = (F.multi_margin_loss(xt, torch.tensor(y), p=2, margin=0.8, reduction="none")
                  * torch.tensor(sw, dtype=xt.dtype)).sum() / sw.sum()
            lt.backward()
            _close(l1, lt.detach().numpy(), dtype)
            _close(g1, xt.grad.numpy(), dtype)


# ------------------------------------------------------- triplet vs torch

TRIPLET_OPTS = [dict(), dict(p=1), dict(p=3.0), dict(swap=True), dict(p=1, swap=True),
                dict(margin=2.5, eps=1e-3), dict(margin=0.1, swap=True, eps=0.0)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", TRIPLET_OPTS, ids=str)
def test_triplet_vs_torch(opts, reduction, dtype):
    rng = _rng(8)
    a, p, n = (rng.normal(size=(13, 6)).astype(dtype) for _ in range(3))
    ts = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
    lt = F.triplet_margin_loss(*ts, reduction=reduction, **opts)
    lt.sum().backward()
    loss, grads = fl.triplet_margin_loss(a, p, n, reduction=reduction, return_grad=True, **opts)
    _close(loss, lt.detach().numpy(), dtype)
    for g, t in zip(grads, ts):
        assert g.dtype == dtype
        _close(g, t.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_triplet_streamed_gradients(dtype):
    """The second call's gradients come from the cache (the first call's,
    dropped) and take the streamed rows (non-temporal stores); the first
    call's are fresh arrays with plain stores: the same bits, and torch's
    values.  Rows over 4096 keep the plain stores."""
    rng = _rng(41)
    for D in (6, 512, 5000):
        N = max(2, (1 << 20) // (D * np.dtype(dtype).itemsize) + 3)
        a, p, n = (rng.normal(size=(N, D)).astype(dtype) for _ in range(3))
        sw = rng.uniform(0.5, 2.0, N)
        first = fl.triplet_margin_loss(a, p, n, margin=2.0, sample_weight=sw, return_grad=True)
        l0, g0 = first[0], [g.copy() for g in first[1]]
        del first
        l1, g1 = fl.triplet_margin_loss(a, p, n, margin=2.0, sample_weight=sw, return_grad=True)
        assert l1 == l0
        for u, v in zip(g1, g0):
            np.testing.assert_array_equal(u, v)
        if D == 512:
            ts = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
            lt = (F.triplet_margin_loss(*ts, margin=2.0, reduction="none")
                  * torch.tensor(sw, dtype=ts[0].dtype)).sum() / sw.sum()
            lt.backward()
            _close(l1, lt.detach().numpy(), dtype)
            for u, t in zip(g1, ts):
                _close(u, t.grad.numpy(), dtype)


@pytest.mark.parametrize("opts", TRIPLET_OPTS + [dict(squared=True), dict(squared=True, p=1,
                                                                           swap=True)], ids=str)
def test_triplet_vs_reference_and_check_grad(opts):
    rng = _rng(9)
    a, p, n = (rng.normal(size=(7, 5)) for _ in range(3))
    sw = rng.uniform(0.5, 2, 7)
    for reduction in REDUCTIONS:
        loss, grads = fl.triplet_margin_loss(a, p, n, reduction=reduction, sample_weight=sw,
                                             return_grad=True, **opts)
        rl, rgs = R.triplet_margin_loss(a, p, n, reduction=reduction, sample_weight=sw,
                                        return_grad=True, **opts)
        _close(loss, rl, np.float64)
        for g, rg in zip(grads, rgs):
            _close(g, rg, np.float64)
        # check_grad has its own `eps` (the finite-difference step)
        kw = dict(opts)
        fn = functools.partial(fl.triplet_margin_loss, eps=kw.pop("eps", 1e-6))
        check_grad(fn, a, p, n, wrt=(0, 1, 2), reduction=reduction, **kw)


@pytest.mark.parametrize("p", [1, 2])
def test_float32_row_distances_every_tail(p):
    # float32 rows of p = 1, 2 are summed 64 values at a time, then 16 at a
    # time, then one by one: lengths on both sides of each step and of the
    # 2048-value fold, against the float64 reference on the same values
    rng = _rng(12)
    for D in (1, 15, 16, 17, 47, 63, 64, 65, 100, 127, 128, 2047, 2048, 2049, 2100):
        a, q, n = (rng.normal(size=(5, D)).astype(np.float32) for _ in range(3))
        y = np.array([0, 1, 0, 1, 1])
        got = fl.triplet_margin_loss(a, q, n, p=p, margin=D ** 0.5, reduction="none")
        want = R.triplet_margin_loss(*(v.astype(np.float64) for v in (a, q, n)), p=p,
                                     margin=D ** 0.5, reduction="none")
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5 * D ** 0.5, err_msg=f"D={D}")
        if p == 2:
            got = fl.contrastive_loss(a, q, y, margin=D ** 0.5, reduction="none")
            want = R.contrastive_loss(a.astype(np.float64), q.astype(np.float64), y,
                                      margin=D ** 0.5, reduction="none")
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5 * D, err_msg=f"D={D}")


def test_triplet_unbatched_noncontiguous():
    rng = _rng(10)
    a, p, n = (rng.normal(size=(6, 8)) for _ in range(3))
    loss = fl.triplet_margin_loss(a[::2, ::2], p[::2, ::2], n[::2, ::2], reduction="none")
    ts = [torch.tensor(np.ascontiguousarray(v[::2, ::2])) for v in (a, p, n)]
    _close(loss, F.triplet_margin_loss(*ts, reduction="none").numpy(), np.float64)
    l1, grads = fl.triplet_margin_loss(a[0], p[0], n[0], return_grad=True)
    lt = F.triplet_margin_loss(torch.tensor(a[0]), torch.tensor(p[0]), torch.tensor(n[0]))
    assert np.ndim(l1) == 0 and l1 == pytest.approx(lt.item(), rel=1e-12)
    assert all(g.shape == (8,) for g in grads)


# ------------------------------------------------- contrastive and center

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_contrastive_vs_reference_and_torch(dtype):
    rng = _rng(11)
    x1, x2 = (rng.normal(size=(10, 4)).astype(dtype) for _ in range(2))
    y = rng.integers(0, 2, 10)
    for reduction in REDUCTIONS:
        loss, (g1, g2) = fl.contrastive_loss(x1, x2, y, margin=3.0, reduction=reduction,
                                             return_grad=True)
        rl, (r1, r2) = R.contrastive_loss(x1, x2, y, margin=3.0, reduction=reduction,
                                          return_grad=True)
        _close(loss, rl, dtype)
        _close(g1, r1, dtype)
        _close(g2, r2, dtype)
    t1, t2 = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x1, x2))
    d = F.pairwise_distance(t1, t2, eps=0.0)
    yt = torch.tensor(y, dtype=torch.float64)
    lt = (((1 - yt) * d ** 2 + yt * torch.clamp(3.0 - d, min=0) ** 2) / 2).mean()
    lt.backward()
    loss, (g1, g2) = fl.contrastive_loss(x1, x2, y.astype(np.float32), margin=3.0,
                                         return_grad=True)
    _close(loss, lt.item(), dtype)
    _close(g1, t1.grad.numpy(), dtype)
    _close(g2, t2.grad.numpy(), dtype)
    check_grad(fl.contrastive_loss, x1[:5], x2[:5], y[:5], margin=3.0, wrt=(0, 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_center_vs_reference_and_check_grad(dtype):
    rng = _rng(12)
    x = rng.normal(size=(15, 6)).astype(dtype)
    c = rng.normal(size=(4, 6)).astype(dtype)
    y = rng.integers(0, 3, 15).astype(np.int16)  # class 3 has no sample
    sw = rng.uniform(0.5, 2, 15)
    for reduction in REDUCTIONS:
        loss, (gx, gc) = fl.center_loss(x, y, c, reduction=reduction, sample_weight=sw,
                                        return_grad=True)
        rl, (rx, rc) = R.center_loss(x, y, c, reduction=reduction, sample_weight=sw,
                                     return_grad=True)
        _close(loss, rl, dtype)
        _close(gx, rx, dtype)
        _close(gc, rc, dtype)
        assert not np.any(gc[3])
    check_grad(fl.center_loss, x[:6], y[:6], c, wrt=(0, 2))


# ------------------------------------------------ margin softmax extras

def test_cosface_vs_torch_cross_entropy():
    rng = _rng(13)
    c = rng.uniform(-1, 1, size=(9, 6))
    y = rng.integers(0, 6, 9)
    ct = torch.tensor(c, requires_grad=True)
    logits = 30.0 * (ct - 0.35 * F.one_hot(torch.tensor(y), 6).double())
    lt = F.cross_entropy(logits, torch.tensor(y))
    lt.backward()
    loss, g = fl.cosface_loss(c, y, return_grad=True)
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(g, ct.grad.numpy(), rtol=1e-9, atol=1e-13)


def test_arcface_vs_torch_insightface_logits():
    rng = _rng(14)
    c = rng.uniform(-1, 1, size=(12, 5))
    c[0, 0], c[1, 1] = -0.95, 0.99
    y = np.arange(12) % 5
    s, m = 64.0, 0.5
    for easy in (False, True):
        ct = torch.tensor(c, requires_grad=True)
        sine = torch.sqrt(1.0 - ct ** 2)
        phi = ct * np.cos(m) - sine * np.sin(m)
        if easy:
            phi = torch.where(ct > 0, phi, ct)
        else:
            phi = torch.where(ct > np.cos(np.pi - m), phi, ct - np.sin(np.pi - m) * m)
        oh = F.one_hot(torch.tensor(y), 5).bool()
        lt = F.cross_entropy(s * torch.where(oh, phi, ct), torch.tensor(y))
        lt.backward()
        loss, g = fl.arcface_loss(c, y, s=s, m=m, easy_margin=easy, return_grad=True)
        assert loss == pytest.approx(lt.item(), rel=1e-10)
        np.testing.assert_allclose(g, ct.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["cosface_loss", "arcface_loss", "sphereface_loss"])
def test_margin_softmax_at_cos_pm1(name, dtype):
    c = np.array([[1.0, -1.0, 0.3], [-1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]],
                 dtype=dtype)
    y = np.array([0, 0, 1, 2])
    kws = [{}, {"m": 1}, {"m": 2}, {"m": 3}] if name == "sphereface_loss" else [{}]
    if name == "arcface_loss":
        kws.append({"easy_margin": True})
    for kw in kws:
        loss, g = getattr(fl, name)(c, y, reduction="none", return_grad=True, **kw)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(g))
        rl, rg = getattr(R, name)(c, y, reduction="none", return_grad=True, **kw)
        _close(loss, rl, dtype)
        _close(g, rg, dtype)


def test_sphereface_m1_is_plain_softmax():
    c, y = _class_data("sphereface_loss")
    a, ga = fl.sphereface_loss(c, y, s=5.0, m=1, return_grad=True)
    b, gb = fl.cross_entropy(5.0 * c, y, return_grad=True)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(ga, 5.0 * gb, rtol=1e-10, atol=1e-14)


def test_margin_softmax_wide_rows_large_scale():
    # wide rows (row layout, stack chunks) with s * cos spanning the float32
    # subnormal range
    rng = _rng(15)
    c = rng.uniform(-1, 1, size=(20, 700))
    y = rng.integers(0, 700, 20)
    for dtype in (np.float64, np.float32):
        cc = c.astype(dtype)
        loss, g = fl.arcface_loss(cc, y, return_grad=True)
        rl, rg = R.arcface_loss(cc, y, return_grad=True)
        _close(loss, rl, dtype)
        _close(g, rg, dtype)
        _close(fl.arcface_loss(cc, y, reduction="none"), R.arcface_loss(cc, y, reduction="none"),
               dtype)


@pytest.mark.parametrize("name", ["arcface_loss", "cosface_loss", "sphereface_loss"])
def test_margin_softmax_gradient_flushes_below_the_smallest_normal(name):
    # s = 64 spreads the exponentials over 55 decades: the gradient's entries
    # below float32's smallest normal come back as 0 (no subnormal), every
    # other entry as the float64 reference gives it
    rng = _rng(17)
    c = np.tanh(rng.standard_normal((64, 300))).astype(np.float32)
    y = rng.integers(0, 300, 64)
    _, g = getattr(fl, name)(c, y, s=64.0, return_grad=True)
    _, rg = getattr(R, name)(c.astype(np.float64), y, s=64.0, return_grad=True)
    tiny = np.finfo(np.float32).tiny
    a = np.abs(g)
    assert not ((a > 0) & (a < tiny)).any()
    big = np.abs(rg) >= 2 * tiny
    np.testing.assert_allclose(g[big], rg[big], rtol=1e-5)
    assert (np.abs(g[np.abs(rg) < tiny / 2]) == 0).all()
    if name == "arcface_loss":
        assert (np.abs(rg) < tiny / 2).any()  # the case is exercised


# ------------------------------------------------------------ Fast R-CNN

@pytest.mark.parametrize("class_specific", [False, True])
def test_fast_rcnn_vs_torchvision_formula(class_specific):
    rng = _rng(16)
    n, c = 12, 4
    x = rng.normal(size=(n, c))
    y = rng.integers(0, c, n)
    b = rng.normal(size=(n, 4 * c if class_specific else 4)) * 0.2
    t = rng.normal(size=(n, 4)) * 0.2
    xt, bt = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = torch.tensor(y)
    ce = F.cross_entropy(xt, yt)
    pos = torch.where(yt > 0)[0]
    rows = bt.reshape(n, -1, 4)[pos, yt[pos] if class_specific else 0]
    box = F.smooth_l1_loss(rows, torch.tensor(t)[pos], beta=1 / 9, reduction="sum") / n
    (ce + box).backward()
    (tot, ce_f, box_f), (gx, gb) = fl.fast_rcnn_loss(x, y, b, t, beta=1 / 9, return_parts=True,
                                                     return_grad=True)
    assert ce_f == pytest.approx(ce.item(), rel=1e-12)
    assert box_f == pytest.approx(box.item(), rel=1e-12)
    assert tot == pytest.approx((ce + box).item(), rel=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert fl.fast_rcnn_loss(x, y, b, t, box_weight=2.0, beta=0.5) == pytest.approx(
        R.fast_rcnn_loss(x, y, b, t, box_weight=2.0, beta=0.5), rel=1e-12)
    assert fl.fast_rcnn_loss(x, y, b, t, beta=0.0) == pytest.approx(
        R.fast_rcnn_loss(x, y, b, t, beta=0.0), rel=1e-12)


def test_fast_rcnn_check_grad():
    rng = _rng(17)
    x, y = rng.normal(size=(5, 3)), np.array([0, 1, 2, 2, 1])
    b, t = rng.normal(size=(5, 12)), rng.normal(size=(5, 4))
    check_grad(fl.fast_rcnn_loss, x, y, b, t, wrt=(0, 2), beta=0.3, box_weight=1.5)


# --------------------------------------------------- threads, bad input

def _thread_cases():
    rng = _rng(18)
    x = rng.normal(size=(400, 100))
    c = rng.uniform(-1, 1, size=(400, 100))
    y = rng.integers(0, 100, 400)
    emb = [rng.normal(size=(700, 64)) for _ in range(3)]
    lab = rng.integers(0, 2, 700)
    cen = rng.normal(size=(5, 64))
    img = rng.normal(size=(2, 3, 40, 40))
    ymap = rng.integers(0, 3, (2, 40, 40))
    return [
        (fl.multi_margin_loss, (x, y), {"p": 2}),
        (fl.multiclass_hinge_loss, (x, y), {}),
        (fl.softmax_focal_loss, (x, y), {}),
        (fl.softmax_focal_loss, (img, ymap), {"gamma": 0.5}),
        (fl.softmax_focal_loss, (x[:, :5], y % 5), {}),
        (fl.cosface_loss, (c, y), {}),
        (fl.arcface_loss, (c, y), {}),
        (fl.sphereface_loss, (c, y), {}),
        (fl.triplet_margin_loss, tuple(emb), {"swap": True}),
        (fl.contrastive_loss, (emb[0], emb[1], lab), {}),
        (fl.center_loss, (emb[0], lab * 2, cen), {}),
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_threads_bit_identical(dtype):
    for fn, args, kw in _thread_cases():
        args = tuple(a.astype(dtype) if a.dtype.kind == "f" else a for a in args)
        for reduction in ("mean", "none"):
            r1 = fn(*args, reduction=reduction, return_grad=True, n_threads=1, **kw)
            r2 = fn(*args, reduction=reduction, return_grad=True, n_threads=2, **kw)
            assert np.array_equal(r1[0], r2[0]), fn.__name__
            g1 = r1[1] if isinstance(r1[1], tuple) else (r1[1],)
            g2 = r2[1] if isinstance(r2[1], tuple) else (r2[1],)
            for a, b in zip(g1, g2):
                assert np.array_equal(a, b), fn.__name__


@pytest.mark.parametrize("name", list(CLASS_LOSSES))
@pytest.mark.parametrize("bad", [5, -1, 200])
def test_bad_labels(name, bad):
    kw = CLASS_LOSSES[name][0]
    x, y = _class_data(name, n=300, c=5)
    y = y.astype(np.int16)
    y[123] = bad
    for rg in (False, True):
        with pytest.raises(ValueError,
                           match=rf"target holds class index {bad} at flat position 123"):
            getattr(fl, name)(x, y, return_grad=rg, **kw)


def test_bad_labels_embeddings():
    rng = _rng(19)
    x, z = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    y = np.zeros(10, dtype=np.uint8)
    y[7] = 2
    with pytest.raises(ValueError, match="label holds 2 at flat position 7"):
        fl.contrastive_loss(x, z, y)
    with pytest.raises(ValueError, match=r"label holds 0.5 at flat position 3"):
        fl.contrastive_loss(x, z, np.array([0, 1, 0, 0.5, 0, 0, 0, 0, 0, 1.0]))
    with pytest.raises(ValueError, match="labels holds class index 2 at flat position 7"):
        fl.center_loss(x, y, rng.normal(size=(2, 3)), return_grad=True)
    yb = np.array([0, 1, 2, 9, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="labels holds class index 9 at flat position 3"):
        fl.fast_rcnn_loss(x, yb, np.zeros((10, 4)), np.zeros((10, 4)))


def test_argument_errors():
    x, y = _class_data("multi_margin_loss")
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        fl.multi_margin_loss(x, y, p=3)
    with pytest.raises(ValueError, match="weight must have shape"):
        fl.multi_margin_loss(x, y, weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        fl.multi_margin_loss(x, y.astype(float))
    with pytest.raises(ValueError, match=r"target must have shape \(9,\)"):
        fl.multiclass_hinge_loss(x, y[:4])
    with pytest.raises(ValueError, match="reduction must be one of"):
        fl.multiclass_hinge_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="cosine must have shape"):
        fl.cosface_loss(np.zeros((2, 3, 4)), y[:2])
    with pytest.raises(ValueError, match=r"s must be in \(0.0, inf\)"):
        fl.arcface_loss(x, y, s=0.0)
    with pytest.raises(ValueError, match=r"m must be in \[0.0, 3.14"):
        fl.arcface_loss(x, y, m=4.0)
    with pytest.raises(ValueError, match=r"m must be in \[1, 4\]"):
        fl.sphereface_loss(x, y, m=5)
    with pytest.raises(TypeError, match="m must be an integer"):
        fl.sphereface_loss(x, y, m=1.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        fl.softmax_focal_loss(x, y, gamma=-1.0)
    with pytest.raises(ValueError, match="alpha must have shape"):
        fl.softmax_focal_loss(x, y, alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match="margin must be in"):
        fl.multi_margin_loss(x, y, margin=float("nan"))
    with pytest.raises(ValueError, match="n_threads must be a non-zero"):
        fl.multi_margin_loss(x, y, n_threads=0)
    a = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"negative must have the same shape as anchor"):
        fl.triplet_margin_loss(a, a, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"p must be in \(0.0, inf\)"):
        fl.triplet_margin_loss(a, a, a, p=0)
    with pytest.raises(ValueError, match=r"label must have shape \(4,\)"):
        fl.contrastive_loss(a, a, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"centers must have shape \(C, 3\)"):
        fl.center_loss(a, np.zeros(4, dtype=int), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"box_regression must have shape \(4, 4\) or \(4, 12\)"):
        fl.fast_rcnn_loss(a, np.zeros(4, dtype=int), np.zeros((4, 5)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"box_targets must have shape \(4, 4\)"):
        fl.fast_rcnn_loss(a, np.zeros(4, dtype=int), np.zeros((4, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="beta must be in"):
        fl.fast_rcnn_loss(a, np.zeros(4, dtype=int), np.zeros((4, 4)), np.zeros((4, 4)), beta=-1)


def test_empty_mean_is_nan():
    x = np.zeros((0, 5))
    y = np.zeros(0, dtype=np.int64)
    assert np.isnan(fl.multi_margin_loss(x, y))
    assert fl.arcface_loss(x, y, reduction="sum") == 0.0
    assert fl.arcface_loss(x, y, reduction="none").shape == (0,)
    e = np.zeros((0, 3))
    assert np.isnan(fl.triplet_margin_loss(e, e, e))
    ign = np.full((2, 3), -100)
    assert np.isnan(fl.softmax_focal_loss(np.zeros((2, 4, 3)), ign))
