"""Element-wise losses: values and gradients vs the reference, torch and finite differences."""

import numpy as np
import pytest

import fastloss
import fastloss.reference as ref
from fastloss import _dispatch
from fastloss.testing import check_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional

# torch warns that kl_div's 'mean' is not the KL's 'batchmean'; both are tested
pytestmark = pytest.mark.filterwarnings(
    "ignore:reduction. 'mean' divides the total loss:UserWarning")

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
# shapes of torch's own loss tests (common_nn / module_db: scalar, (10,) no-batch,
# (2, 3, 4), (5, 10), (15, 10), (5, 5), (10, 10)) plus an empty array
SHAPES = [(), (7,), (2, 3, 4), (5, 10), (15, 10), (5, 5), (10, 10), (0,)]


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------- input makers

def real_pair(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    return x, (rng.standard_normal(shape) * 2).astype(dtype)


def prob_pair(rng, shape, dtype):
    return rng.uniform(0.02, 0.98, shape).astype(dtype), rng.uniform(0, 1, shape).astype(dtype)


def logit_pair(rng, shape, dtype):
    return (rng.standard_normal(shape) * 3).astype(dtype), rng.uniform(0, 1, shape).astype(dtype)


def pm1_pair(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    return x, np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


def kl_pair(rng, shape, dtype):
    x = np.log(rng.uniform(0.05, 1, shape)).astype(dtype)
    t = rng.uniform(0, 1, shape)
    t = np.where(rng.random(shape) < 0.2, 0.0, t)  # exact zeros: 0 log 0 = 0
    return x, t.astype(dtype)


def kl_log_pair(rng, shape, dtype):
    x = np.log(rng.uniform(0.05, 1, shape)).astype(dtype)
    return x, np.log(rng.uniform(0.05, 1, shape)).astype(dtype)


def js_pair(rng, shape, dtype):
    return rng.uniform(0.05, 1, shape).astype(dtype), rng.uniform(0.05, 1, shape).astype(dtype)


# name -> (fastloss fn, reference fn, maker, kwargs, torch fn (x, t, reduction) or None)
CASES = {
    "mse": (fastloss.mse_loss, ref.mse_loss, real_pair, {},
            lambda x, t, r: F.mse_loss(x, t, reduction=r)),
    "l1": (fastloss.l1_loss, ref.l1_loss, real_pair, {},
           lambda x, t, r: F.l1_loss(x, t, reduction=r)),
    "smooth_l1": (fastloss.smooth_l1_loss, ref.smooth_l1_loss, real_pair, {"beta": 0.7},
                  lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.7)),
    "smooth_l1_b0": (fastloss.smooth_l1_loss, ref.smooth_l1_loss, real_pair, {"beta": 0.0},
                     lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0)),
    "huber": (fastloss.huber_loss, ref.huber_loss, real_pair, {"delta": 1.3},
              lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=1.3)),
    "log_cosh": (fastloss.log_cosh_loss, ref.log_cosh_loss, real_pair, {}, None),
    "pseudo_huber": (fastloss.pseudo_huber_loss, ref.pseudo_huber_loss, real_pair, {"delta": 0.8},
                     None),
    "mbe": (fastloss.mean_bias_error, ref.mean_bias_error, real_pair, {}, None),
    "bce": (fastloss.binary_cross_entropy, ref.binary_cross_entropy, prob_pair, {},
            lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r)),
    "bce_logits": (fastloss.binary_cross_entropy_with_logits, ref.binary_cross_entropy_with_logits,
                   logit_pair, {},
                   lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r)),
    "soft_margin": (fastloss.soft_margin_loss, ref.soft_margin_loss, pm1_pair, {},
                    lambda x, t, r: F.soft_margin_loss(x, t, reduction=r)),
    "kl": (fastloss.kl_div, ref.kl_div, kl_pair, {}, lambda x, t, r: F.kl_div(x, t, reduction=r)),
    "kl_log": (fastloss.kl_div, ref.kl_div, kl_log_pair, {"log_target": True},
               lambda x, t, r: F.kl_div(x, t, reduction=r, log_target=True)),
    "focal": (fastloss.sigmoid_focal_loss, ref.sigmoid_focal_loss, logit_pair, {},
              lambda x, t, r: _torch_focal(x, t, 0.25, 2.0, r)),
    "focal_g05": (fastloss.sigmoid_focal_loss, ref.sigmoid_focal_loss, logit_pair,
                  {"gamma": 0.5, "alpha": -1.0}, lambda x, t, r: _torch_focal(x, t, -1.0, 0.5, r)),
    "hinge": (fastloss.hinge_loss, ref.hinge_loss, pm1_pair, {"margin": 0.5}, None),
    "sq_hinge": (fastloss.hinge_loss, ref.hinge_loss, pm1_pair, {"squared": True}, None),
    "exponential": (fastloss.exponential_loss, ref.exponential_loss, pm1_pair, {}, None),
}


def _torch_focal(x, t, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss's formula, in torch."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def _tol(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_vs_reference(name, dtype, reduction):
    fn, rf, make, kw, _ = CASES[name]
    for shape in SHAPES:
        x, t = make(_rng(1), shape, dtype)
        got = fn(x, t, reduction=reduction, **kw)
        want = rf(x, t, reduction=reduction, **kw)
        assert np.asarray(got).dtype == dtype
        if reduction == "none":
            assert isinstance(got, np.ndarray) and got.shape == x.shape
        else:
            assert isinstance(got, dtype)
        if x.size == 0 and reduction == "mean":
            assert np.isnan(got)
            continue
        np.testing.assert_allclose(got, want, **_tol(dtype), err_msg=f"shape {shape}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(CASES))
def test_check_grad(name, reduction):
    fn, _, make, kw, _ = CASES[name]
    x, t = make(_rng(2), (3, 4), np.float64)
    if name.startswith(("hinge", "smooth")) or name == "sq_hinge" or name == "l1":
        # keep finite differences away from the kinks
        x = x + 0.05 * np.sign(x)
    check_grad(fn, x, t, reduction=reduction, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][4] is not None])
def test_vs_torch(name, dtype):
    fn, _, make, kw, tf = CASES[name]
    for shape in [(), (2, 3, 4), (5, 10)]:
        x, t = make(_rng(3), shape, dtype)
        for reduction in REDUCTIONS:
            X = torch.tensor(x, requires_grad=True)
            T = torch.tensor(t)
            out = tf(X, T, reduction)
            out.sum().backward()
            loss, grad = fn(x, t, reduction=reduction, return_grad=True, **kw)
            tol = ({"rtol": 1e-4, "atol": 1e-6} if dtype == np.float32
                   else {"rtol": 1e-6, "atol": 1e-12})
            np.testing.assert_allclose(loss, out.detach().numpy(), **tol)
            np.testing.assert_allclose(grad, X.grad.numpy(), **tol)
            assert grad.dtype == dtype and grad.shape == x.shape


@pytest.mark.parametrize("name", list(CASES))
def test_threads_bit_identical_and_noncontiguous(name):
    fn, _, make, kw, _ = CASES[name]
    x, t = make(_rng(4), (70001,), np.float32)
    a = fn(x, t, reduction="sum", n_threads=1, return_grad=True, **kw)
    b = fn(x, t, reduction="sum", n_threads=2, return_grad=True, **kw)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    one = fn(x, t, reduction="mean", n_threads=1, **kw)
    assert one == fn(x, t, reduction="mean", n_threads=2, **kw)
    # non-contiguous views give the contiguous result
    x2, t2 = make(_rng(5), (6, 8), np.float64)
    xs, ts = x2[:, ::2], t2[:, ::2]
    assert not xs.flags.c_contiguous
    np.testing.assert_array_equal(fn(xs, ts, reduction="none", **kw),
                                  fn(xs.copy(), ts.copy(), reduction="none", **kw))
    xt, tt = x2.T, t2.T
    np.testing.assert_array_equal(fn(xt, tt, reduction="none", **kw),
                                  fn(xt.copy(), tt.copy(), reduction="none", **kw))


@pytest.mark.parametrize("name", ["mse", "bce_logits", "soft_margin", "huber"])
def test_operands_past_the_prefetch_size(name):
    """Operands of more than 4 MiB, where each chunk's loop requests the
    lines of a later chunk first (_elementwise's EW_AHEAD): the values and
    gradient against the reference, the same bits for 1 and 2 threads."""
    fn, rf, make, kw, _ = CASES[name]
    x, t = make(_rng(8), (1_200_001,), np.float32)
    a = fn(x, t, reduction="sum", n_threads=1, return_grad=True, **kw)
    b = fn(x, t, reduction="sum", n_threads=2, return_grad=True, **kw)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], rf(x, t, reduction="sum", **kw), rtol=2e-6)
    # the 'sum' gradient of an element depends on that element alone: the
    # tail's gradient as a short call's (checked against torch above)
    np.testing.assert_array_equal(
        a[1][-1001:], fn(x[-1001:], t[-1001:], reduction="sum", return_grad=True, **kw)[1])
    g = np.empty_like(x)
    fn(x, t, reduction="sum", return_grad=True, grad_out=g, **kw)
    np.testing.assert_array_equal(g, a[1])
    np.testing.assert_allclose(fn(x, t, reduction="none", **kw),
                               rf(x, t, reduction="none", **kw), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mbe", "mse"])
def test_float32_sum_error_bound(name):
    """float32 values are summed in float lanes of at most 16 terms per
    512-value block, folded into float64 (flrows.h's fl_chunk_sumf): the
    error stays below 1e-6 of the sum of |terms| (a float32 running sum of
    a million terms would be off by up to 0.06 of it), the same bits for
    any thread count."""
    fn, _, make, kw, _ = CASES[name]
    x, t = make(_rng(9), (1_000_003,), np.float32)
    x = x + np.float32(3)   # mbe's terms one-signed in the main, a large total
    terms = fn(x, t, reduction="none", **kw).astype(np.float64)
    got = fn(x, t, reduction="sum", **kw)
    assert abs(got - terms.sum()) <= 1e-6 * np.abs(terms).sum()
    assert got == fn(x, t, reduction="sum", n_threads=1, **kw)


@pytest.mark.parametrize("name", ["mse", "bce_logits", "kl", "focal", "hinge"])
def test_sample_weight(name):
    fn, rf, make, kw, _ = CASES[name]
    x, t = make(_rng(6), (4, 5), np.float64)
    sw = _rng(7).uniform(0.1, 2, (4, 1))
    for reduction in REDUCTIONS:
        got = fn(x, t, reduction=reduction, sample_weight=sw, **kw)
        want = rf(x, t, reduction=reduction, sample_weight=sw, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    check_grad(fn, x, t, reduction="mean", sample_weight=sw, **kw)
    per = fn(x, t, reduction="none", **kw)
    np.testing.assert_allclose(fn(x, t, reduction="mean", sample_weight=sw, **kw),
                               np.sum(per * sw) / np.sum(np.broadcast_to(sw, per.shape)))


def test_hand_values():
    # smooth L1 with beta=1: 0.5*0.5^2 = 0.125 and 3 - 0.5 = 2.5
    assert fastloss.smooth_l1_loss([0.5, 3.0], [0.0, 0.0], reduction="sum") == 2.625
    # huber delta=2: 0.125 and 2*(3 - 1) = 4
    assert fastloss.huber_loss([0.5, 3.0], [0.0, 0.0], delta=2.0, reduction="sum") == 4.125
    # hinge: max(0, 1 - 0.5) = 0.5, max(0, 1 + 2) = 3
    assert fastloss.hinge_loss([0.5, -2.0], [1.0, 1.0], reduction="sum") == 3.5
    assert fastloss.hinge_loss([0.5, -2.0], [1.0, 1.0], squared=True, reduction="sum") == 9.25
    assert fastloss.mean_bias_error([3.0, 1.0], [1.0, 2.0]) == 0.5
    np.testing.assert_allclose(fastloss.log_cosh_loss([2.0], [0.0]), np.log(np.cosh(2.0)),
                               rtol=1e-15)
    np.testing.assert_allclose(fastloss.pseudo_huber_loss([3.0], [0.0], delta=2.0),
                               4 * (np.sqrt(1 + 2.25) - 1), rtol=1e-15)
    np.testing.assert_allclose(fastloss.exponential_loss([1.0, 2.0], [1.0, -1.0], reduction="sum"),
                               np.exp(-1) + np.exp(2), rtol=1e-15)
    np.testing.assert_allclose(fastloss.binary_cross_entropy([0.25], [1.0]), np.log(4), rtol=1e-15)
    # JS of disjoint distributions is log 2
    np.testing.assert_allclose(fastloss.js_div([[1.0, 0.0]], [[0.0, 1.0]]), np.log(2), rtol=1e-15)


def test_extremes_logits_and_probabilities():
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, 1e4, -1e4, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5])
    for dt in DTYPES:
        loss, g = fastloss.binary_cross_entropy_with_logits(x.astype(dt), t.astype(dt),
                                                            reduction="none", return_grad=True)
        np.testing.assert_array_equal(loss[[0, 1, 4, 5]], 0)
        assert np.all(np.isinf(loss[[2, 3]]))
        np.testing.assert_allclose(g, [0, 0, 1, -1, 0, 0, 0], atol=0)
        # the finite entries agree with torch
        X = torch.tensor(x[4:].astype(dt), requires_grad=True)
        F.binary_cross_entropy_with_logits(X, torch.tensor(t[4:].astype(dt)),
                                           reduction="sum").backward()
        np.testing.assert_allclose(g[4:], X.grad.numpy(), atol=1e-7)
    # soft margin: no overflow in float32 where log(1 + exp(-yx)) would give inf
    x32 = np.array([-200.0, 200.0, 1e4], dtype=np.float32)
    y32 = np.array([1.0, 1.0, -1.0], dtype=np.float32)
    sm = fastloss.soft_margin_loss(x32, y32, reduction="none")
    np.testing.assert_allclose(sm, [200.0, 0.0, 1e4], rtol=1e-6)  # e^-200 underflows in float32
    assert np.all(np.isfinite(fastloss.soft_margin_loss(x32, -y32, reduction="none")))
    # BCE on 0/1 probabilities: log clamped at -100, gradient finite
    p = np.array([0.0, 1.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    loss, g = fastloss.binary_cross_entropy(p, y, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, [0, 0, 100, 100])
    P = torch.tensor(p, requires_grad=True)
    tl = F.binary_cross_entropy(P, torch.tensor(y), reduction="none")
    tl.sum().backward()
    np.testing.assert_array_equal(loss, tl.detach().numpy())
    np.testing.assert_allclose(g, P.grad.numpy(), rtol=1e-12)
    # regression at +-1e4 in float32
    big = np.array([1e4, -1e4], dtype=np.float32)
    zero = np.zeros(2, np.float32)
    np.testing.assert_allclose(fastloss.log_cosh_loss(big, zero, reduction="none"),
                               1e4 - np.log(2), rtol=1e-7)
    np.testing.assert_allclose(fastloss.pseudo_huber_loss(big, zero, reduction="none"),
                               np.sqrt(1 + 1e8) - 1, rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0, 2.0])
def test_focal_gradient_finite(gamma):
    x = np.array([-1e4, -50.0, -20.0, 0.0, 20.0, 50.0, 1e4, np.inf, -np.inf])
    for y in (0.0, 1.0):
        for dt in DTYPES:
            _loss, g = fastloss.sigmoid_focal_loss(x.astype(dt), np.full(x.shape, y, dt),
                                                  gamma=gamma, return_grad=True)
            assert np.all(np.isfinite(g)), (gamma, y, dt, g)
    xs = np.linspace(-6, 6, 13)
    ts = (np.arange(13) % 2).astype(float)
    check_grad(fastloss.sigmoid_focal_loss, xs, ts, gamma=gamma, reduction="sum")
    X = torch.tensor(xs, requires_grad=True)
    _torch_focal(X, torch.tensor(ts), 0.25, gamma, "sum").backward()
    np.testing.assert_allclose(fastloss.sigmoid_focal_loss(xs, ts, gamma=gamma, reduction="sum",
                                                           return_grad=True)[1], X.grad.numpy(),
                               rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_weights_vs_torch(dtype):
    rng = _rng(8)
    x, t = logit_pair(rng, (4, 3, 5), dtype)
    w = rng.uniform(0.5, 2, (5,)).astype(dtype)
    pw = rng.uniform(0.5, 3, (5,)).astype(dtype)
    tol = {"rtol": 1e-4, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-9}
    for reduction in REDUCTIONS:
        X = torch.tensor(x, requires_grad=True)
        out = F.binary_cross_entropy_with_logits(X, torch.tensor(t), weight=torch.tensor(w),
                                                 pos_weight=torch.tensor(pw), reduction=reduction)
        out.sum().backward()
        loss, g = fastloss.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                            reduction=reduction, return_grad=True)
        np.testing.assert_allclose(loss, out.detach().numpy(), **tol)
        np.testing.assert_allclose(g, X.grad.numpy(), **tol)
        np.testing.assert_allclose(loss, ref.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction=reduction), **tol)
        p, tp = prob_pair(rng, (4, 3, 5), dtype)
        P = torch.tensor(p, requires_grad=True)
        out = F.binary_cross_entropy(P, torch.tensor(tp), weight=torch.tensor(w),
                                     reduction=reduction)
        out.sum().backward()
        loss, g = fastloss.binary_cross_entropy(p, tp, weight=w, reduction=reduction,
                                                return_grad=True)
        np.testing.assert_allclose(loss, out.detach().numpy(), **tol)
        np.testing.assert_allclose(g, P.grad.numpy(), **tol)
    check_grad(fastloss.binary_cross_entropy_with_logits, x.astype(np.float64),
               t.astype(np.float64), weight=w, pos_weight=pw)


@pytest.mark.parametrize("shape", [(4, 6), (6,)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel_soft_margin_vs_torch(shape, dtype):
    rng = _rng(9)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    t = (rng.random(shape) < 0.4).astype(dtype)
    w = rng.uniform(0.5, 2, shape[-1]).astype(dtype)
    tol = {"rtol": 1e-4, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-9}
    for weight in (None, w):
        for reduction in REDUCTIONS:
            X = torch.tensor(x, requires_grad=True)
            out = F.multilabel_soft_margin_loss(
                X, torch.tensor(t), weight=None if weight is None else torch.tensor(weight),
                reduction=reduction)
            out.sum().backward()
            loss, g = fastloss.multilabel_soft_margin_loss(x, t, weight=weight, reduction=reduction,
                                                          return_grad=True)
            np.testing.assert_allclose(loss, out.detach().numpy(), **tol)
            np.testing.assert_allclose(g, X.grad.numpy(), **tol)
            np.testing.assert_allclose(loss, ref.multilabel_soft_margin_loss(
                x, t, weight=weight, reduction=reduction), **tol)
    check_grad(fastloss.multilabel_soft_margin_loss, x.astype(np.float64), t, weight=w)


def test_multilabel_nonfinite_like_torch():
    # torch's log-sigmoid form gives 0 * inf = NaN at infinite logits; so does ours,
    # while binary_cross_entropy_with_logits returns the finite limit there
    x = np.array([[np.inf, 0.5], [-np.inf, 1.0], [np.inf, 2.0]])
    t = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    got = fastloss.multilabel_soft_margin_loss(x, t, reduction="none")
    want = F.multilabel_soft_margin_loss(torch.tensor(x), torch.tensor(t), reduction="none")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want.numpy()))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want.numpy()))
    assert np.isnan(got[0]) and np.isinf(got[2])
    fin = fastloss.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert np.isfinite(fin[0, 0]) and np.isfinite(fin[1, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_logits_infinite_logits_among_many(dtype):
    # the uncapped per-element form gives 0 * inf = NaN at an infinite logit
    # with a 0 coefficient; such a chunk is computed again with the caps.
    # Values and gradients everywhere must match the finite limits, and the
    # finite elements the reference and torch.
    rng = _rng(11)
    n = 2 * 16384 + 700
    x = rng.standard_normal(n).astype(dtype) * 4
    t = rng.random(n).astype(dtype)
    pos = np.array([5, 600, 16385, n - 1])
    x[pos] = [np.inf, -np.inf, np.inf, -np.inf]
    t[pos] = [1.0, 0.0, 0.25, 0.5]
    want_loss = np.array([0.0, 0.0, np.inf, np.inf])
    want_grad = np.array([0.0, 0.0, 0.75, -0.5])  # sigma(x) - t
    sw = rng.random(n)
    for weights in (None, sw):
        loss, g = fastloss.binary_cross_entropy_with_logits(
            x, t, reduction="none", sample_weight=weights, return_grad=True, n_threads=2)
        wv = np.ones(n) if weights is None else weights
        np.testing.assert_array_equal(loss[pos], (want_loss * wv[pos]).astype(dtype))
        np.testing.assert_allclose(g[pos], want_grad * wv[pos], rtol=1e-6)
        fin = np.isfinite(x)
        X = torch.tensor(x[fin].astype(np.float64), requires_grad=True)
        out = F.binary_cross_entropy_with_logits(X, torch.tensor(t[fin].astype(np.float64)),
                                                 reduction="none")
        (out * torch.tensor(wv[fin])).sum().backward()
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(loss[fin], out.detach().numpy() * wv[fin], rtol=tol, atol=tol)
        np.testing.assert_allclose(g[fin], X.grad.numpy(), rtol=tol, atol=tol)
        total = fastloss.binary_cross_entropy_with_logits(x[fin], t[fin], reduction="sum",
                                                          sample_weight=weights if weights is None
                                                          else weights[fin])
        np.testing.assert_allclose(total, np.sum(loss[fin], dtype=np.float64), rtol=1e-5)
    # with no infinite loss left, the mean is the finite limit
    keep = np.ones(n, bool)
    keep[pos[2:]] = False
    m = fastloss.binary_cross_entropy_with_logits(x[keep], t[keep])
    assert np.isfinite(m)
    np.testing.assert_allclose(m, ref.binary_cross_entropy_with_logits(
        np.where(np.isinf(x[keep]), np.sign(x[keep]) * 200, x[keep]).astype(np.float64),
        t[keep].astype(np.float64)), rtol=1e-5)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_batchmean_vs_torch(log_target):
    x, t = (kl_log_pair if log_target else kl_pair)(_rng(10), (4, 5), np.float64)
    X = torch.tensor(x, requires_grad=True)
    out = F.kl_div(X, torch.tensor(t), reduction="batchmean", log_target=log_target)
    out.backward()
    loss, g = fastloss.kl_div(x, t, reduction="batchmean", log_target=log_target, return_grad=True)
    np.testing.assert_allclose(loss, out.item(), rtol=1e-12)
    np.testing.assert_allclose(g, X.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss, ref.kl_div(x, t, reduction="batchmean", log_target=log_target))


def test_broadcast_target_like_torch():
    x = _rng(11).standard_normal((3, 4))
    t = _rng(12).standard_normal((4,))
    for fn, tf in [(fastloss.mse_loss, F.mse_loss), (fastloss.l1_loss, F.l1_loss),
                   (fastloss.smooth_l1_loss, F.smooth_l1_loss),
                   (fastloss.huber_loss, F.huber_loss)]:
        X = torch.tensor(x, requires_grad=True)
        with pytest.warns(UserWarning):
            out = tf(X, torch.tensor(t))
        out.backward()
        loss, g = fn(x, t, return_grad=True)
        np.testing.assert_allclose(loss, out.item(), rtol=1e-12)
        np.testing.assert_allclose(g, X.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_js_div(axis):
    from scipy.spatial.distance import jensenshannon
    rng = _rng(13)
    p = rng.uniform(0, 1, (3, 4, 5))
    q = rng.uniform(0, 1, (3, 4, 5))
    p /= p.sum(axis=axis, keepdims=True)
    q /= q.sum(axis=axis, keepdims=True)
    got = fastloss.js_div(p, q, axis=axis, reduction="none")
    np.testing.assert_allclose(got, jensenshannon(p, q, axis=axis) ** 2, rtol=1e-10)
    np.testing.assert_allclose(got, ref.js_div(p, q, axis=axis, reduction="none"), rtol=1e-12)
    np.testing.assert_allclose(fastloss.js_div(p, q, axis=axis), got.mean(), rtol=1e-12)
    check_grad(fastloss.js_div, p, q, axis=axis, reduction="sum")
    sw = rng.uniform(0.5, 2, got.shape)
    np.testing.assert_allclose(fastloss.js_div(p, q, axis=axis, sample_weight=sw),
                               ref.js_div(p, q, axis=axis, sample_weight=sw), rtol=1e-12)
    check_grad(fastloss.js_div, p, q, axis=axis, sample_weight=sw)
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    np.testing.assert_allclose(fastloss.js_div(p32, q32, axis=axis), got.mean(), rtol=1e-5)


def test_penalties():
    rng = _rng(14)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal(7).astype(np.float32)
    for fn, rf, kw in [(fastloss.l1_penalty, ref.l1_penalty, {}),
                       (fastloss.l2_penalty, ref.l2_penalty, {}),
                       (fastloss.elastic_net_penalty, ref.elastic_net_penalty, {"l1_ratio": 0.3})]:
        v, (ga, gb) = fn(a, b, return_grad=True, **kw)
        np.testing.assert_allclose(v, rf(a, b, **kw), rtol=1e-7)
        assert ga.shape == a.shape and gb.shape == b.shape and gb.dtype == np.float32
        A = torch.tensor(a, requires_grad=True)
        B = torch.tensor(b.astype(np.float64), requires_grad=True)
        r = kw.get("l1_ratio", 1.0 if fn is fastloss.l1_penalty else 0.0)
        tv = r * (A.abs().sum() + B.abs().sum()) + (1 - r) * ((A ** 2).sum() + (B ** 2).sum())
        tv.backward()
        np.testing.assert_allclose(ga, A.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gb, B.grad.numpy(), rtol=1e-6)
        check_grad(lambda x, y, fn=fn, kw=kw, **k: fn(x, y, **k, **kw), a, b.astype(np.float64),
                   wrt=(0, 1))
    assert fastloss.l1_penalty(np.array([np.inf])) == np.inf
    assert fastloss.l2_penalty(np.array([np.inf])) == np.inf
    assert fastloss.l1_penalty() == 0.0


def test_gan_losses_vs_torch():
    rng = _rng(15)
    r, f = rng.standard_normal(6) * 3, rng.standard_normal(8) * 3
    R, Fk = torch.tensor(r, requires_grad=True), torch.tensor(f, requires_grad=True)
    d = F.binary_cross_entropy_with_logits(R, torch.ones(6, dtype=torch.float64)) + \
        F.binary_cross_entropy_with_logits(Fk, torch.zeros(8, dtype=torch.float64))
    d.backward()
    loss, (gr, gf) = fastloss.gan_discriminator_loss(r, f, return_grad=True)
    np.testing.assert_allclose(loss, d.item(), rtol=1e-12)
    np.testing.assert_allclose(gr, R.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gf, Fk.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss, ref.gan_discriminator_loss(r, f), rtol=1e-12)
    for ns in (True, False):
        Fk = torch.tensor(f, requires_grad=True)
        g = (F.binary_cross_entropy_with_logits(Fk, torch.ones(8, dtype=torch.float64)) if ns
             else torch.log(1 - torch.sigmoid(Fk)).mean())
        g.backward()
        loss, gg = fastloss.gan_generator_loss(f, non_saturating=ns, return_grad=True)
        np.testing.assert_allclose(loss, g.item(), rtol=1e-10)
        np.testing.assert_allclose(gg, Fk.grad.numpy(), rtol=1e-10)
        for red in REDUCTIONS:
            np.testing.assert_allclose(fastloss.gan_generator_loss(f, ns, reduction=red),
                                       ref.gan_generator_loss(f, ns, reduction=red), rtol=1e-12)
    check_grad(fastloss.gan_generator_loss, f, non_saturating=False, reduction="sum")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "binary_cross_entropy_with_logits",
                                  "soft_margin_loss", "sigmoid_focal_loss"])
def test_fresh_gradient_equals_grad_out(name, dtype):
    # a fresh gradient is written with ordinary stores, a grad_out with
    # non-temporal ones from an L1 buffer: same values, bit for bit, also
    # into a buffer that starts off a 16-byte boundary and with weights
    rng = _rng(3)
    n = 3 * 16384 + 517  # several work units and a partial chunk
    x = (rng.standard_normal(n) * 3).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    if name == "soft_margin_loss":
        t = 2 * t - 1
    fn = getattr(fastloss, name)
    for sw in (None, rng.random(n)):
        loss, g = fn(x, t, reduction="mean", sample_weight=sw, return_grad=True, n_threads=2)
        base = np.full(n + 1, np.nan, dtype=dtype)
        out = base[1:]  # one element off the allocation's alignment
        loss2, g2 = fn(x, t, reduction="mean", sample_weight=sw, return_grad=True, grad_out=out,
                       n_threads=2)
        assert np.shares_memory(g2, base) and np.isnan(base[0])
        assert loss2 == loss
        np.testing.assert_array_equal(g2, g)
        assert np.isfinite(g).all() and np.count_nonzero(g) > n // 2
        rl = getattr(ref, name)(x.astype(np.float64), t.astype(np.float64), reduction="mean",
                                sample_weight=sw)
        np.testing.assert_allclose(loss, rl, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_dtypes_and_outputs():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert fastloss.mse_loss(x, x * 0).dtype == np.float64
    h = np.linspace(-1, 1, 6).astype(np.float16)
    loss, g = fastloss.mse_loss(h, np.zeros(6), return_grad=True)
    assert loss.dtype == np.float32 and g.dtype == np.float16
    buf = np.empty(6)
    _, g = fastloss.l1_loss(np.ones(6), np.zeros(6), return_grad=True, grad_out=buf)
    assert np.shares_memory(g, buf)
    ro = np.ones(5)
    ro.flags.writeable = False
    assert fastloss.mse_loss(ro, ro) == 0.0
    assert fastloss.mse_loss(np.empty(0), np.empty(0), reduction="sum") == 0.0
    loss, g = fastloss.mse_loss(np.empty((0, 3)), np.empty((0, 3)), return_grad=True)
    assert np.isnan(loss) and g.shape == (0, 3)


def test_errors():
    x = np.zeros(4)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fastloss.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="cannot be broadcast to the input's shape"):
        fastloss.mse_loss(x, np.zeros(3))
    with pytest.raises(ValueError,
                       match=r"target must have the same shape as input \(4,\), got \(3,\)"):
        fastloss.binary_cross_entropy_with_logits(x, np.zeros(3))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        fastloss.l1_loss(np.array(["a"]), x)
    with pytest.raises(TypeError, match="target must be a real numeric array"):
        fastloss.l1_loss(x, np.array([1j] * 4))
    with pytest.raises(ValueError, match=r"beta must be in \[0.0, inf\], got -1"):
        fastloss.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(ValueError, match=r"delta must be in \(0.0, inf\], got 0"):
        fastloss.huber_loss(x, x, delta=0)
    with pytest.raises(ValueError, match="delta must be in"):
        fastloss.pseudo_huber_loss(x, x, delta=float("nan"))
    with pytest.raises(ValueError,
                       match=r"input holds 1.5 at flat position 2; binary_cross_entropy"):
        fastloss.binary_cross_entropy(np.array([0.1, 0.2, 1.5, -1]), np.zeros(4))
    with pytest.raises(ValueError, match=r"input holds nan at flat position 0"):
        fastloss.binary_cross_entropy(np.array([np.nan, 0.2]), np.zeros(2))
    with pytest.raises(ValueError,
                       match=r"target holds -0.5 at flat position 1; expected values in \[0, 1\]"):
        fastloss.binary_cross_entropy(np.full(2, 0.5), np.array([0.0, -0.5]))
    big = np.full(40000, 0.5, np.float32)
    big[33333] = 2.0
    with pytest.raises(ValueError, match="at flat position 33333"):
        fastloss.binary_cross_entropy(big, np.zeros_like(big), n_threads=2)
    with pytest.raises(ValueError, match=r"target holds 0.0 at flat position 1; "
                                         r"expected labels in \{-1, \+1\}"):
        fastloss.hinge_loss(np.zeros(3), np.array([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match=r"target holds 2.0 at flat position 0"):
        fastloss.exponential_loss(np.zeros(2), np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match=r"target holds 0.5"):
        fastloss.hinge_loss(np.zeros(2), np.array([1.0, 0.5]), squared=True)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        fastloss.mse_loss(x, x, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="weight of shape"):
        fastloss.binary_cross_entropy_with_logits(x, x, weight=np.ones(3))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        fastloss.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fastloss.kl_div(x, x, reduction="batch")
    with pytest.raises(TypeError, match="log_target must be a bool"):
        fastloss.kl_div(x, x, log_target=1)
    with pytest.raises(TypeError, match="inputs must be a real numeric array"):
        fastloss.sigmoid_focal_loss(np.array([1j]), np.zeros(1))
    with pytest.raises(ValueError, match="targets must have the same shape"):
        fastloss.sigmoid_focal_loss(np.zeros(2), np.zeros(1))
    with pytest.raises(ValueError, match=r"gamma must be in \[0.0, inf\]"):
        fastloss.sigmoid_focal_loss(x, x, gamma=-1)
    with pytest.raises(ValueError, match=r"alpha must be in"):
        fastloss.sigmoid_focal_loss(x, x, alpha=1.5)
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0.0, 1.0\]"):
        fastloss.elastic_net_penalty(x, l1_ratio=2)
    with pytest.raises(TypeError, match="squared must be a bool"):
        fastloss.hinge_loss(x, x, squared="yes")
    with pytest.raises(TypeError, match="non_saturating must be a bool"):
        fastloss.gan_generator_loss(x, non_saturating=None)
    with pytest.raises(ValueError, match="input must have a class axis"):
        fastloss.multilabel_soft_margin_loss(np.float64(1.0), np.float64(1.0))
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        fastloss.js_div(np.ones((2, 2)), np.ones((2, 2)), axis=3)
    with pytest.raises(ValueError, match=r"q must have the same shape as input"):
        fastloss.js_div(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        fastloss.mse_loss(x, x, return_grad=True, grad_out=np.empty(3))
    with pytest.raises(ValueError, match="n_threads"):
        fastloss.mse_loss(x, x, n_threads=0)


# bool and uint8 targets (masks) are read as bytes by the float32 kernels: the
# results must be those of the same target converted to float32, bit for bit
_MASK_LOSSES = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "log_cosh_loss",
                "pseudo_huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                "sigmoid_focal_loss", "soft_margin_loss", "kl_div",
                "multilabel_soft_margin_loss"]


@pytest.mark.parametrize("name", _MASK_LOSSES)
@pytest.mark.parametrize("tdt", [np.bool_, np.uint8])
@pytest.mark.parametrize("xdt", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_mask_targets_same_as_float_targets(name, tdt, xdt, reduction):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 1031)).astype(xdt)       # 5155 elements: two work units
    if name == "binary_cross_entropy":
        x = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(xdt)
    t = rng.random((5, 1031)) < 0.3
    t[0, :3] = (True, False, True)
    t = t.astype(tdt)
    f = getattr(fastloss, name)
    ours = f(x, t, reduction=reduction, return_grad=True, n_threads=2)
    want = f(x, t.astype(np.float32 if xdt != np.float64 else np.float64),
             reduction=reduction, return_grad=True, n_threads=2)
    for a, b in zip(ours, want):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # a strided mask is converted, with the same results
    t2 = np.zeros((5, 2062), tdt)
    t2[:, ::2] = t
    np.testing.assert_array_equal(f(x, t2[:, ::2], reduction=reduction), ours[0])


def test_uint8_target_values_and_domain():
    x = np.linspace(-3, 3, 600, dtype=np.float32)
    t = np.arange(600).astype(np.uint8)                 # 0..255: exact in float32
    np.testing.assert_array_equal(fastloss.mse_loss(x, t, reduction="none"),
                                  (x - t.astype(np.float32)) ** 2)
    p = np.full(4, 0.5, np.float32)
    with pytest.raises(ValueError, match=r"target holds 2\.0 at flat position 2"):
        fastloss.binary_cross_entropy(p, np.array([0, 1, 2, 1], np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 1500])
def test_domain_checks_per_dtype(dtype, n):
    # the kernels' per-element domain flags: the first bad position, NaN
    # targets outside {-1, +1} but not outside BCE's [0, 1] (NaN propagates)
    t = np.ones(n, dtype)
    t[n - 2] = np.nan
    with pytest.raises(ValueError, match=rf"target holds nan at flat position {n - 2}"):
        fastloss.hinge_loss(np.zeros(n, dtype), t)
    with pytest.raises(ValueError, match=rf"target holds nan at flat position {n - 2}"):
        fastloss.exponential_loss(np.zeros(n, dtype), t)
    assert np.isnan(fastloss.binary_cross_entropy(np.full(n, 0.5, dtype), t))
    x = np.full(n, 0.5, dtype)
    x[n - 1] = 1.25
    x[n - 3] = -0.0     # in the domain
    with pytest.raises(ValueError, match=rf"input holds 1.25 at flat position {n - 1}"):
        fastloss.binary_cross_entropy(x, np.zeros(n, dtype))
    t = np.where(np.arange(n) % 2 == 0, 1, -1).astype(dtype)
    assert fastloss.hinge_loss(np.zeros(n, dtype), t) == 1.0


# Parameters (a, b, c) of the kernel's losses that need them, see LOSSES in
# src/_elementwise.pyx.tp; the others take (0, 0, 0).
_KERNEL_PARAMS = {"SMOOTH_L1": (1.0, 0, 0), "HUBER": (1.0, 0, 0), "PSEUDO_HUBER": (1.0, 0, 0),
                  "BCE_LOGITS": (0, 0, np.inf), "BCE_LOGITS_CONST": (1.0, 1.5, np.inf),
                  "HINGE": (1.0, 0, 0), "SQ_HINGE": (1.0, 0, 0), "FOCAL": (0.25, 2.0, 1),
                  "ENET": (0.5, 0, 0), "BCE_LOGITS_PW": (0, 0, np.inf)}


def _kernel_inputs(rng, loss, n, dtype):
    """(x, t, aux, (a, b, c)) of n elements inside loss's domain, for the
    kernel's `elementwise` entry."""
    x = rng.standard_normal(n).astype(dtype)
    t = rng.random(n).astype(dtype)
    if loss.name in ("BCE", "JS"):
        x = rng.random(n).astype(dtype)
    if loss.name in ("SOFT_MARGIN", "HINGE", "SQ_HINGE", "EXPONENTIAL"):
        t = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dtype)
    aux = (rng.random(n) + 0.5).astype(dtype) if loss.name == "BCE_LOGITS_PW" \
        else np.empty(0, dtype)
    return x, t, aux, _KERNEL_PARAMS.get(loss.name, (0, 0, 0))


def _kernel_run(k, loss, x0, t0, aux, params, gap, which):
    """The kernel's (loss array, gradient, sum) with x0 at the start of a
    buffer and the loss array ('loss') or the gradient ('grad') `gap`
    elements after it; the other output a separate array."""
    n, dtype = x0.size, x0.dtype
    buf = np.zeros(4 * n + 96, dtype)
    x = buf[:n]
    x[...] = x0
    near = buf[n + gap:2 * n + gap]
    out = near if which == "loss" else np.empty(n, dtype)
    g = near if which == "grad" else np.empty(n, dtype)
    total, _ = k.elementwise(int(loss), x, t0, aux, *params, np.empty(0, np.float64), out, g,
                             1.0, 1, False)
    return [out.tobytes(), g.tobytes(), np.float64(total).tobytes()]


@pytest.mark.parametrize("target", _dispatch.runnable())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_bits_do_not_depend_on_where_the_outputs_lie(target, dtype):
    # gcc runs a loop's scalar copy instead of its vector body when an
    # output starts within a vector of an input (its alias check), as two
    # small arrays from the allocator can: both copies must round alike.
    # Every loss of the kernel, its loss and gradient arrays placed right
    # after the input in one buffer, against the same call with both far.
    from fastloss.elementwise import _core

    rng = np.random.default_rng(3)
    with _dispatch.use_target(target):
        k = _core._k
        for loss in k.LossId:
            for n in (5, 8, 12, 15):
                x0, t0, aux, params = _kernel_inputs(rng, loss, n, dtype)
                for which in ("loss", "grad"):
                    far = _kernel_run(k, loss, x0, t0, aux, params, 80, which)
                    for gap in range(16):
                        assert _kernel_run(k, loss, x0, t0, aux, params, gap, which) == far, \
                            (loss.name, n, which, f"{gap} elements after the input")


@pytest.mark.parametrize("target", _dispatch.runnable())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_bits_do_not_depend_on_an_elements_position(target, dtype):
    # an element's loss and derivative are the same bits in a loop's vector
    # body (64 elements: the 512-bit body on x86_64_v4) as in its scalar
    # copy (an array of one element)
    from fastloss.elementwise import _core

    rng = np.random.default_rng(5)
    n = 64
    with _dispatch.use_target(target):
        k = _core._k
        for loss in k.LossId:
            x0, t0, aux, params = _kernel_inputs(rng, loss, n, dtype)
            no_w = np.empty(0, np.float64)
            out, g = np.empty(n, dtype), np.empty(n, dtype)
            k.elementwise(int(loss), x0, t0, aux, *params, no_w, out, g, 1.0, 1, False)
            for i in range(n):
                o1, g1 = np.empty(1, dtype), np.empty(1, dtype)
                a1 = aux[i:i + 1].copy() if aux.size else aux
                k.elementwise(int(loss), x0[i:i + 1].copy(), t0[i:i + 1].copy(), a1, *params,
                              no_w, o1, g1, 1.0, 1, False)
                assert (o1.tobytes(), g1.tobytes()) == (out[i:i + 1].tobytes(),
                                                        g[i:i + 1].tobytes()), (loss.name, i)
