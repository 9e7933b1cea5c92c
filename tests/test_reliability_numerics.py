"""Accuracy of long float32 sums, > 2**31 elements, and NaN/inf propagation."""

import math
import os

import numpy as np
import pytest
import scipy.special

import fastloss

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _available_bytes():
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _need(nbytes):
    avail = _available_bytes()
    if avail < nbytes:
        pytest.skip(f"needs {nbytes / 2**30:.1f} GiB free memory, "
                    f"only {avail / 2**30:.1f} GiB available")


# ---------------------------------------------------------------- accuracy

def test_float32_mse_mean_over_1e8_elements_is_accurate():
    n = 100_000_000
    _need(3 * 4 * n)
    rng = np.random.default_rng(1)
    x = np.empty(n, np.float32)
    y = np.empty(n, np.float32)
    step = 10_000_000
    exact = 0.0
    for i in range(0, n, step):
        x[i:i + step] = rng.standard_normal(step, dtype=np.float32) + 3.0
        y[i:i + step] = rng.standard_normal(step, dtype=np.float32)
        d = x[i:i + step].astype(np.float64) - y[i:i + step]
        exact += math.fsum(np.add.reduceat(d * d, np.arange(0, step, 100_000)))
    exact /= n
    got = fastloss.mse_loss(x, y)
    assert got.dtype == np.float32
    rel = abs(float(got) - exact) / exact
    assert rel <= 1e-6, f"float32 mse_loss over 1e8 elements: {got!r} vs {exact!r}, rel {rel:.2e}"


def test_float32_cross_entropy_mean_over_1e8_elements_is_accurate():
    N, C = 10_000_000, 10
    _need(3 * 4 * N * C)
    rng = np.random.default_rng(2)
    x = np.empty((N, C), np.float32)
    t = rng.integers(0, C, N).astype(np.uint8)
    step = 1_000_000
    parts = []
    for i in range(0, N, step):
        blk = rng.standard_normal((step, C), dtype=np.float32) * 2 + 1
        x[i:i + step] = blk
        b = blk.astype(np.float64)
        m = b.max(axis=1)
        lse = m + np.log(np.exp(b - m[:, None]).sum(axis=1))
        parts.append(math.fsum(lse - b[np.arange(step), t[i:i + step]]))
    exact = math.fsum(parts) / N
    got = fastloss.cross_entropy(x, t)
    assert got.dtype == np.float32
    rel = abs(float(got) - exact) / exact
    assert rel <= 1e-6, (f"float32 cross_entropy over 1e8 elements: {got!r} vs {exact!r}, "
                         f"rel {rel:.2e}")


# ---------------------------------------------------------------- size > 2**31

BIG = 2**31 + 64


@pytest.mark.slow
def test_elementwise_loss_over_2_31_elements():
    """gan_generator_loss (softplus(-x), one array) on 2**31 + 64 float32 values.

    The background value 100 contributes ~0; distinct values sit past index
    2**31, so 32-bit index wrap-around would read the background instead.
    """
    _need(4 * BIG + 2 * 2**30)
    x = np.empty(BIG, np.float32)
    step = 2**28
    for i in range(0, BIG, step):
        x[i:i + step] = 100.0
    tail = -np.arange(1, 65, dtype=np.float64) / 8
    x[-64:] = tail
    x[2**31 - 3] = -2.0
    expected = math.fsum(np.log1p(np.exp(-np.r_[tail, -2.0])))
    got = fastloss.gan_generator_loss(x, reduction="sum")
    assert abs(float(got) - expected) <= 1e-5 * expected, (got, expected)
    got_mean = fastloss.gan_generator_loss(x, reduction="mean")
    assert abs(float(got_mean) - expected / BIG) <= 1e-5 * expected / BIG, (got_mean, expected)
    del x


@pytest.mark.slow
def test_cross_entropy_over_2_31_elements():
    """cross_entropy on (8, 2**28 + 8) float32 logits: 2**31 + 64 elements.

    Row r has one logit of 30 at column C-1-r (its target), the rest 0, so
    the loss of row r is log1p((C-1) e^-30); wrong 64-bit offsets read the
    wrong row or column and give ~log(C).
    """
    N, C = 8, 2**28 + 8
    _need(4 * N * C + 2 * 2**30)
    x = np.zeros((N, C), np.float32)
    t = np.array([C - 1 - r for r in range(N)], np.int64)
    x[np.arange(N), t] = 30.0
    per_row = math.log1p((C - 1) * math.exp(-30.0))
    got = fastloss.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(got, per_row, rtol=1e-4)
    got_mean = fastloss.cross_entropy(x, t)
    assert abs(float(got_mean) - per_row) <= 1e-4 * per_row, (got_mean, per_row)
    del x


# ---------------------------------------------------------------- NaN / inf vs torch

def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _poison(x, v):
    x = x.copy()
    x.flat[1] = v
    return x


rng0 = np.random.default_rng(3)
X = rng0.uniform(-2, 2, (4, 5))
Y = rng0.uniform(-2, 2, (4, 5))
U = rng0.uniform(0.05, 0.95, (4, 5))
S = np.where(rng0.random((4, 5)) < 0.5, -1.0, 1.0)
T = rng0.integers(0, 5, 4)
P = rng0.uniform(0.1, 1, (4, 5))
P /= P.sum(1, keepdims=True)

# name -> (fastloss call on a poisoned first input, torch call on it)
PAIRS = {
    "mse_loss": (lambda x, r: fastloss.mse_loss(x, Y, reduction=r),
                 lambda x, r: F.mse_loss(_t(x), _t(Y), reduction=r)),
    "l1_loss": (lambda x, r: fastloss.l1_loss(x, Y, reduction=r),
                lambda x, r: F.l1_loss(_t(x), _t(Y), reduction=r)),
    "smooth_l1_loss": (lambda x, r: fastloss.smooth_l1_loss(x, Y, reduction=r),
                       lambda x, r: F.smooth_l1_loss(_t(x), _t(Y), reduction=r)),
    "huber_loss": (lambda x, r: fastloss.huber_loss(x, Y, reduction=r),
                   lambda x, r: F.huber_loss(_t(x), _t(Y), reduction=r)),
    "soft_margin_loss": (lambda x, r: fastloss.soft_margin_loss(x, S, reduction=r),
                         lambda x, r: F.soft_margin_loss(_t(x), _t(S), reduction=r)),
    "binary_cross_entropy_with_logits": (
        lambda x, r: fastloss.binary_cross_entropy_with_logits(x, U, reduction=r),
        lambda x, r: F.binary_cross_entropy_with_logits(_t(x), _t(U), reduction=r)),
    "multilabel_soft_margin_loss": (
        lambda x, r: fastloss.multilabel_soft_margin_loss(x, (U > 0.5) * 1.0, reduction=r),
        lambda x, r: F.multilabel_soft_margin_loss(_t(x), _t((U > 0.5) * 1.0), reduction=r)),
    "kl_div": (lambda x, r: fastloss.kl_div(x, P, reduction=r),
               lambda x, r: F.kl_div(_t(x), _t(P), reduction=r)),
    "cross_entropy": (lambda x, r: fastloss.cross_entropy(x, T, reduction=r),
                      lambda x, r: F.cross_entropy(_t(x), _t(T), reduction=r)),
    "nll_loss": (lambda x, r: fastloss.nll_loss(x, T, reduction=r),
                 lambda x, r: F.nll_loss(_t(x), _t(T), reduction=r)),
    "multi_margin_loss": (lambda x, r: fastloss.multi_margin_loss(x, T, reduction=r),
                          lambda x, r: F.multi_margin_loss(_t(x), _t(T), reduction=r)),
    "triplet_margin_loss": (
        lambda x, r: fastloss.triplet_margin_loss(x, Y, U, reduction=r),
        lambda x, r: F.triplet_margin_loss(_t(x), _t(Y), _t(U), reduction=r)),
    # the log-sum-exp family has scipy.special's semantics (SPEC)
    "log_softmax": (lambda x, r: fastloss.log_softmax(x, axis=1),
                    lambda x, r: torch.from_numpy(
                        np.asarray(scipy.special.log_softmax(x, axis=1)))),
    "softmax": (lambda x, r: fastloss.softmax(x, axis=1),
                lambda x, r: torch.from_numpy(np.asarray(scipy.special.softmax(x, axis=1)))),
    "logsumexp": (lambda x, r: fastloss.logsumexp(x, axis=1),
                  lambda x, r: torch.from_numpy(np.asarray(scipy.special.logsumexp(x, axis=1)))),
}
# SPEC: binary_cross_entropy_with_logits returns the finite limit at +-inf logits
FINITE_AT_INF = {"binary_cross_entropy_with_logits"}


def _same_nonfinite(a, b, what):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b), err_msg=f"{what}: +inf")
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b), err_msg=f"{what}: -inf")
    fin = np.isfinite(a) & np.isfinite(b)
    np.testing.assert_allclose(a[fin], b[fin], rtol=1e-9, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_nonfinite_propagates_as_torch(name, reduction, value):
    ours, theirs = PAIRS[name]
    x = _poison(X if name != "kl_div" else np.log(P), value)
    with np.errstate(all="ignore"):
        got = ours(x, reduction)
    want = theirs(x, reduction).numpy()
    if name in FINITE_AT_INF and np.isinf(value):
        g = np.asarray(got, np.float64)
        assert not np.isnan(g).any(), f"{name}: NaN at {value} logits: {got}"
        w = np.asarray(want, np.float64)
        fin = np.isfinite(w)
        np.testing.assert_allclose(g[fin], w[fin], rtol=1e-9, err_msg=name)
        return
    _same_nonfinite(got, want, f"{name} reduction={reduction} with {value}")
