"""fastloss.gbdt: kernels against the float64 reference and finite differences,
layouts, buffers, threads, bad input, init_score, and the library adapters."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from fastloss import gbdt
from fastloss.reference import gbdt as R

K = 4

# (loss, params, hessian): every loss with each of its options
CASES = [
    ("logistic", {}, None),
    ("logistic", {"class_weight": [0.3, 2.0], "scale_pos_weight": 1.5}, None),
    ("logistic", {}, "xgboost"),
    ("binary_focal", {}, None),
    ("binary_focal", {"gamma": 0.5, "alpha": 0.25}, None),
    ("binary_focal", {"gamma": 0.0, "alpha": [0.7, 0.2]}, None),
    ("binary_focal", {"gamma": 3.0}, "fisher"),
    ("binary_focal", {"gamma": 2.0, "alpha": 0.25}, "fisher"),   # q^2 by a product
    ("binary_focal", {"gamma": 1.5, "alpha": 0.3, "soft": True}, None),
    ("binary_focal", {"gamma": 2.0, "soft": True}, "fisher"),
    ("logistic", {"class_weight": [0.5, 2.0], "soft": True}, None),
    ("softmax", {}, None),
    ("softmax", {}, "xgboost"),
    ("softmax", {"class_weight": [1.0, 2.0, 0.5, 3.0]}, "lightgbm"),
    ("softmax", {"label_smoothing": 0.1}, None),
    ("softmax", {"label_smoothing": 0.2, "class_weight": [1.0, 2.0, 0.5, 3.0]}, None),
    ("softmax", {"soft": True}, None),
    ("softmax_focal", {}, None),
    ("softmax_focal", {"gamma": 0.5, "alpha": [0.25, 0.75, 0.5, 1.0]}, None),
    ("softmax_focal", {"gamma": 0.0}, None),
    ("softmax_focal", {"gamma": 2.0, "alpha": [0.25, 0.75, 0.5, 1.0]}, "fisher"),
    ("huber", {"delta": 0.7}, None),
    ("huber", {"delta": 0.7}, "lightgbm"),
    ("pseudo_huber", {"delta": 1.5}, None),
    ("pseudo_huber", {"delta": 1.5}, "mm"),
    ("log_cosh", {}, None),
    ("fair", {"c": 0.8}, None),
    ("quantile", {"alpha": 0.3}, None),
    ("quantile", {"alpha": [0.1, 0.5, 0.9]}, None),
    ("poisson", {}, None),
    ("poisson", {"max_delta_step": 0.7}, "max_delta_step"),
    ("gamma", {}, None),
    ("tweedie", {"power": 1.3}, None),
    ("tweedie", {"power": 1.8}, None),
    ("squared_log", {}, None),
    ("squared_log", {}, "xgboost"),
]
# variants that are not the second derivative of the loss
NOT_DERIVATIVE = {"xgboost", "lightgbm", "fisher", "mm", "max_delta_step"}


def _id(c):
    loss, p, hv = c
    extra = ",".join(f"{k}={v}" for k, v in p.items())
    return f"{loss}[{hv or 'default'}{',' + extra if extra else ''}]"


def make(loss, params, n, rng, dtype=np.float64, order="C"):
    """(y, margins, kwargs) for a valid call."""
    p = dict(params)
    soft = p.pop("soft", False)
    if loss in ("softmax", "softmax_focal"):
        f = rng.normal(size=(n, K)) * 2.0
        y = rng.dirichlet(np.ones(K), n) if soft else rng.integers(0, K, n).astype(float)
        if soft:
            y = y.astype(dtype)
    elif loss == "quantile":
        q = np.size(p["alpha"])
        f = rng.normal(size=(n, q)) if q > 1 else rng.normal(size=n)
        y = rng.normal(size=n)
    elif loss in ("logistic", "binary_focal"):
        f = rng.normal(size=n) * 3.0
        # soft: probabilities (both terms of the loss), else 0/1 labels
        y = rng.random(n) if soft else (rng.random(n) < 0.4).astype(float)
    elif loss in ("poisson", "gamma", "tweedie"):
        f = rng.normal(size=n) * 0.5
        y = rng.poisson(2.0, n).astype(float) + (0.5 if loss == "gamma" else 0.0)
    elif loss == "squared_log":
        f = rng.uniform(-0.5, 4.0, n)
        y = rng.uniform(0.0, 5.0, n)
    else:
        f = rng.normal(size=n) * 2.0
        y = rng.normal(size=n)
    f = np.asarray(f, dtype=dtype, order=order)
    return y, f, p


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_reference(case, weighted, dtype, rng):
    loss, params, hv = case
    y, f, p = make(loss, params, 3000, rng, dtype)
    w = rng.uniform(0.0, 2.0, f.shape[0]) if weighted else None
    g, h, v = gbdt.grad_hess(loss, y, f, w, hessian=hv, **p)
    rg, rh, rv = R.grad_hess(loss, y, f.astype(np.float64), w, hessian=hv, **p)
    assert g.dtype == dtype and h.dtype == dtype and g.shape == f.shape
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g, rg, **tol)
    np.testing.assert_allclose(h, rh, **tol)
    np.testing.assert_allclose(v, rv, rtol=tol["rtol"] * 10)


def _losses_total(loss, y, f, w, hv, p):
    _, _, v = gbdt.grad_hess(loss, y, f, w, hessian=hv, **p)
    cols = f.shape[1] if (loss == "quantile" and f.ndim == 2) else 1
    return v * np.sum(w) * cols


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_finite_differences(case, rng):
    """g = d(sum of losses)/df element by element, and h = dg/df where h is the
    exact second derivative (5-point central differences, float64)."""
    loss, params, hv = case
    y, f, p = make(loss, params, 12, rng)
    w = rng.uniform(0.5, 2.0, f.shape[0])
    g, h, _ = gbdt.grad_hess(loss, y, f, w, hessian=hv, hess_floor=-np.inf, **p)
    eps = 1e-5
    flat = f.reshape(-1)
    num_g = np.empty_like(flat)
    num_h = np.empty_like(flat)
    for i in range(flat.size):
        x0 = flat[i]
        vals, grads = [], []
        for k in (2, 1, -1, -2):
            flat[i] = x0 + k * eps
            vals.append(_losses_total(loss, y, f, w, hv, p))
            grads.append(gbdt.grad_hess(loss, y, f, w, hessian=hv, hess_floor=-np.inf,
                                        **p)[0].reshape(-1)[i])
        flat[i] = x0
        num_g[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * eps)
        num_h[i] = (-grads[0] + 8 * grads[1] - 8 * grads[2] + grads[3]) / (12 * eps)
    if loss in ("huber", "quantile"):
        # kinks: keep the elements away from them
        d = params.get("delta", 0.0)
        r = (f - (y[:, None] if f.ndim == 2 else y)).reshape(-1)
        keep = np.abs(np.abs(r) - d) > 1e-3
    else:
        keep = np.ones(flat.size, bool)
    np.testing.assert_allclose(g.reshape(-1)[keep], num_g[keep], rtol=1e-6, atol=1e-7)
    if hv not in NOT_DERIVATIVE and loss != "quantile":
        np.testing.assert_allclose(h.reshape(-1)[keep], num_h[keep], rtol=1e-6, atol=1e-7)


def test_hessian_variants_relations(rng):
    y, f, _ = make("softmax", {}, 500, rng)
    _, h, _ = gbdt.grad_hess("softmax", y, f)
    _, hx, _ = gbdt.grad_hess("softmax", y, f, hessian="xgboost")
    _, hl, _ = gbdt.grad_hess("softmax", y, f, hessian="lightgbm")
    np.testing.assert_allclose(hx, np.maximum(2 * h, 1e-16), rtol=1e-15)
    np.testing.assert_allclose(hl, K / (K - 1) * h, rtol=1e-15)
    y, f, _ = make("poisson", {}, 500, rng)
    _, h, _ = gbdt.grad_hess("poisson", y, f)
    _, hm, _ = gbdt.grad_hess("poisson", y, f, hessian="max_delta_step", max_delta_step=0.7)
    np.testing.assert_allclose(hm, h * np.exp(0.7), rtol=1e-14)


def test_focal_limits_and_floor(rng):
    # gamma = 0: focal is the (alpha-weighted) logistic / softmax loss
    y, f, _ = make("logistic", {}, 400, rng)
    a = gbdt.grad_hess("binary_focal", y, f, gamma=0.0)
    b = gbdt.grad_hess("logistic", y, f)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-13, atol=1e-15)
    y, f, _ = make("softmax", {}, 400, rng)
    a = gbdt.grad_hess("softmax_focal", y, f, gamma=0.0)
    b = gbdt.grad_hess("softmax", y, f)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)
    # gamma < 1: finite everywhere, also where p is 0 or 1 in floating point
    f = np.array([-60.0, -20.0, 0.0, 20.0, 60.0])
    for gm in (0.1, 0.5, 0.9):
        for yy in (0.0, 1.0):
            g, h, v = gbdt.grad_hess("binary_focal", np.full(5, yy), f, gamma=gm)
            assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)) and np.isfinite(v)
    F = np.array([[40.0, 0.0, -40.0], [0.0, 0.0, 0.0], [-40.0, 40.0, 0.0]])
    for gm in (0.1, 0.5):
        g, h, v = gbdt.grad_hess("softmax_focal", np.array([0.0, 1.0, 0.0]), F, gamma=gm)
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)) and np.isfinite(v)
    # the exact focal Hessian is negative somewhere; the floor clips it
    y, f, _ = make("binary_focal", {}, 2000, rng)
    _, h, _ = gbdt.grad_hess("binary_focal", y, f, gamma=2.0)
    assert h.min() < 0
    _, hf, _ = gbdt.grad_hess("binary_focal", y, f, gamma=2.0, hess_floor=1e-6)
    np.testing.assert_array_equal(hf, np.maximum(h, 1e-6))


@pytest.mark.parametrize("loss,params", [("softmax", {}), ("softmax_focal", {"gamma": 1.0}),
                                         ("quantile", {"alpha": [0.2, 0.8]}),
                                         ("softmax", {"soft": True, "label_smoothing": 0.0})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts_and_out_buffers(loss, params, dtype, rng):
    """C- and F-ordered margins (and labels) give the same (g, h) in any output
    order and dtype; out= buffers are filled in place."""
    y, f, p = make(loss, params, 20000, rng, dtype)
    g0, h0, v0 = gbdt.grad_hess(loss, y, f, **p)
    fF = np.asfortranarray(f)
    yF = np.asfortranarray(y) if np.ndim(y) == 2 else y
    for m, yy in ((f, y), (fF, yF)):
        for order in ("C", "F"):
            for odt in (np.float32, np.float64):
                out = (np.full(f.shape, np.nan, odt, order=order),
                       np.full(f.shape, np.nan, odt, order=order))
                g, h, v = gbdt.grad_hess(loss, yy, m, out=out, **p)
                assert g is out[0] and h is out[1]
                # the loss total is summed per sub-block, whose length follows the layout
                np.testing.assert_allclose(v, v0, rtol=1e-12)
                np.testing.assert_array_equal(g, g0.astype(odt))
                np.testing.assert_array_equal(h, h0.astype(odt))
    # the default outputs follow the margins' order
    g, _, _ = gbdt.grad_hess(loss, yF, fF, **p)
    assert g.flags.f_contiguous


@pytest.mark.parametrize("K", [2, 3, 7, 8, 9, 10, 16, 17, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_counts_and_partial_tiles(K, dtype, rng):
    """Rows of K classes go to class planes and back through the register
    transposes (up to 16 float / 8 double classes, 16 / 8 rows a tile) or
    the gather tables (wider rows): every K on both sides of those limits,
    a row count that leaves a partial tile, both orders of the margins and
    of the outputs, against the float64 reference.  Unit sample weights
    take the general per-class loops, unweighted C-ordered rows the one that
    computes g and h in the rows: the same values to the bit."""
    n = 16 * 37 + 5
    f = (rng.normal(size=(n, K)) * 2.0).astype(dtype)
    y = rng.integers(0, K, n).astype(float)
    rg, rh, rv = R.grad_hess("softmax", y, f.astype(np.float64))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    for m in (f, np.asfortranarray(f)):
        for order in ("C", "F"):
            out = (np.full(f.shape, np.nan, dtype, order=order),
                   np.full(f.shape, np.nan, dtype, order=order))
            g, h, v = gbdt.grad_hess("softmax", y, m, out=out)
            np.testing.assert_allclose(g, rg, **tol)
            np.testing.assert_allclose(h, rh, **tol)
            np.testing.assert_allclose(v, rv, rtol=tol["rtol"] * 10)
            for hess in ("exact", "xgboost"):
                g0, h0, _ = gbdt.grad_hess("softmax", y, m, hessian=hess, hess_floor=1e-3,
                                           out=out)
                g1, h1, _ = gbdt.grad_hess("softmax", y, m, np.ones(n), hessian=hess,
                                           hess_floor=1e-3)
                np.testing.assert_array_equal(g0, g1)
                np.testing.assert_array_equal(h0, h1)


def test_strided_margins_are_accepted(rng):
    f = rng.normal(size=(300, 8))[:, ::2]
    y = rng.integers(0, 4, 300)
    g, h, v = gbdt.grad_hess("softmax", y, f)
    rg, rh, rv = R.grad_hess("softmax", y, f)
    np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v, rv, rtol=1e-12)


def test_streamed_reused_buffers(rng):
    """Large reused buffers go through non-temporal stores: same values."""
    y, f, _ = make("softmax", {}, 200_000, rng, np.float32)
    g0, h0, v0 = gbdt.grad_hess("softmax", y, f)
    out = (np.empty_like(g0), np.empty_like(h0))
    for _ in range(2):
        g, h, v = gbdt.grad_hess("softmax", y, f, out=out)
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(h, h0)
        assert v == v0


@pytest.mark.parametrize("case", [c for c in CASES if c[1].get("soft") is None], ids=_id)
def test_threads_bit_identical(case, rng):
    loss, params, hv = case
    y, f, p = make(loss, params, 70001, rng, np.float32)
    w = rng.uniform(0.0, 2.0, f.shape[0])
    a = gbdt.grad_hess(loss, y, f, w, hessian=hv, n_threads=1, **p)
    for nt in (2, 3):
        b = gbdt.grad_hess(loss, y, f, w, hessian=hv, n_threads=nt, **p)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == b[2]


def test_small_and_empty_inputs():
    g, h, v = gbdt.grad_hess("softmax", [1], np.zeros((1, 3)))
    np.testing.assert_allclose(g, [[1 / 3, -2 / 3, 1 / 3]])
    np.testing.assert_allclose(v, np.log(3))
    g, h, v = gbdt.grad_hess("logistic", np.zeros(0), np.zeros(0))
    assert g.shape == (0,) and np.isnan(v)


def test_hand_computed_values():
    # logistic at f = log 3 (p = 3/4), y = 1: g = -1/4, h = 3/16, loss = log(4/3)
    g, h, v = gbdt.grad_hess("logistic", [1.0], [np.log(3.0)])
    np.testing.assert_allclose([g[0], h[0], v], [-0.25, 3 / 16, np.log(4 / 3)], rtol=1e-14)
    # focal gamma = 2 at p = 1/2, y = 1: l = (1/2)^2 log 2
    _, _, v = gbdt.grad_hess("binary_focal", [1.0], [0.0], gamma=2.0)
    np.testing.assert_allclose(v, 0.25 * np.log(2), rtol=1e-14)
    # poisson: g = e - 2, h = e at f = 1, y = 2
    g, h, _ = gbdt.grad_hess("poisson", [2.0], [1.0])
    np.testing.assert_allclose([g[0], h[0]], [np.e - 2, np.e], rtol=1e-14)
    # quantile alpha = 0.9: over-prediction by 2 costs 0.2, under by 2 costs 1.8
    _, _, v = gbdt.grad_hess("quantile", [0.0, 4.0], [2.0, 2.0], alpha=0.9)
    np.testing.assert_allclose(v, (0.2 + 1.8) / 2, rtol=1e-14)


# --------------------------------------------------------------- bad input

def test_bad_input_messages(rng):
    f = np.zeros((10, 3))
    with pytest.raises(ValueError,
                       match=r"y has n = 9 labels but margins has 10 rows.*30 = n \* K"):
        gbdt.grad_hess("softmax", np.zeros(9), f)
    with pytest.raises(ValueError, match=r"y\[4\] = 3\.0 is not a class index in \[0, 3\)"):
        gbdt.grad_hess("softmax", [0, 1, 2, 0, 3, 0, 0, 0, 0, 0], f)
    with pytest.raises(ValueError, match=r"y\[0\] = -1\.0 is not a class index"):
        gbdt.grad_hess("softmax_focal", [-1] + [0] * 9, f)
    with pytest.raises(ValueError, match=r"y\[1\] = 0\.5 is not a class index"):
        gbdt.grad_hess("softmax", [0, 0.5] + [0] * 8, f)
    with pytest.raises(ValueError, match=r"y\[2\] = -1\.0 is outside the domain of loss "
                                         r"'poisson' \(y >= 0\)"):
        gbdt.grad_hess("poisson", [1.0, 0.0, -1.0], np.zeros(3))
    with pytest.raises(ValueError, match=r"y\[0\] = 2\.0 is outside the domain of loss 'logistic'"):
        gbdt.grad_hess("logistic", [2.0], np.zeros(1))
    with pytest.raises(ValueError, match=r"gamma must be in \[0\.0, inf\], got nan"):
        gbdt.grad_hess("binary_focal", [1.0], [0.0], gamma=float("nan"))
    with pytest.raises(ValueError, match=r"delta must be in \(0\.0, inf\], got nan"):
        gbdt.Objective("huber", delta=float("nan"))
    with pytest.raises(ValueError, match=r"gamma must be in \[0\.0, inf\], got -1"):
        gbdt.Objective("softmax_focal", gamma=-1)
    with pytest.raises(ValueError, match=r"power must be in \(1\.0, 2\.0\), got 2\.5"):
        gbdt.Objective("tweedie", power=2.5)
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0.*sample_weight\[1\] = -1\.0"):
        gbdt.grad_hess("logistic", [1.0, 0.0], np.zeros(2), [1.0, -1.0])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(2,\)"):
        gbdt.grad_hess("logistic", [1.0, 0.0], np.zeros(2), [1.0])
    with pytest.raises(ValueError, match=r"alpha\[1\] must be in \(0\.0, 1\.0\), got 1\.0"):
        gbdt.grad_hess("quantile", [0.0], np.zeros((1, 2)), alpha=[0.5, 1.0])
    with pytest.raises(ValueError, match=r"alpha\[0\] must be in \(0\.0, 1\.0\), got nan"):
        gbdt.Objective("quantile", alpha=float("nan"))
    with pytest.raises(ValueError, match="one column per quantile level: 2 levels"):
        gbdt.grad_hess("quantile", [0.0], np.zeros((1, 3)), alpha=[0.1, 0.9])
    with pytest.raises(ValueError, match=r"class_weight must have one value per class, K = 3"):
        gbdt.grad_hess("softmax", np.zeros(10), f, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"margins must be 2-D \(n, K\) with K >= 2"):
        gbdt.grad_hess("softmax", np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match=r"loss must be one of .* got 'focal'"):
        gbdt.grad_hess("focal", [1.0], [0.0])
    with pytest.raises(ValueError, match=r"hessian must be one of \['exact', 'fisher'\]"):
        gbdt.grad_hess("binary_focal", [1.0], [0.0], hessian="xgboost")
    with pytest.raises(TypeError, match=r"unknown \['gama'\]"):
        gbdt.grad_hess("binary_focal", [1.0], [0.0], gama=2.0)
    with pytest.raises(TypeError, match="margins must be a real numeric array"):
        gbdt.grad_hess("logistic", [1.0], np.array(["a"]))
    with pytest.raises(ValueError, match=r"out\[0\] \(grad\) must have the margins' shape"):
        gbdt.grad_hess("logistic", [1.0], [0.0], out=(np.zeros(2), np.zeros(1)))
    with pytest.raises(TypeError, match=r"out\[1\] \(hess\) must be float32 or float64"):
        gbdt.grad_hess("logistic", [1.0], [0.0], out=(np.zeros(1), np.zeros(1, int)))
    with pytest.raises(ValueError, match="must both be C-contiguous or both F-contiguous"):
        gbdt.grad_hess("softmax", np.zeros(10), f,
                       out=(np.zeros((10, 3)), np.zeros((10, 3), order="F")))
    with pytest.raises(ValueError, match="n_threads must be a non-zero integer"):
        gbdt.grad_hess("logistic", [1.0], [0.0], n_threads=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["softmax", "softmax_focal"])
def test_bad_class_ids_inside_vector_blocks(loss, dtype, rng):
    # rows deep inside a sub-block, where the label check runs in vector lanes
    n, K = 1000, 10
    f = rng.standard_normal((n, K)).astype(dtype)
    for bad in (np.nan, -1.0, 0.5, 10.0, 9.5, np.inf, -np.inf):
        for row in (0, 17, 600, n - 1):
            y = rng.integers(0, K, n).astype(dtype)
            y[row] = bad
            y[n - 1 if row != n - 1 else 0] = bad      # a later (or earlier) bad row
            first = min(row, n - 1 if row != n - 1 else 0)
            with pytest.raises(ValueError, match=rf"y\[{first}\] = .* is not a class index"):
                gbdt.grad_hess(loss, y, f)
    y = rng.integers(0, K, n).astype(dtype)
    y[::7] = -0.0                                          # class 0
    g, _, _ = gbdt.grad_hess(loss, y, f)
    g0, _, _ = gbdt.grad_hess(loss, np.abs(y), f)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hv,gamma", [(None, 2.0), ("fisher", 2.0), ("fisher", 1.5), (None, 0.5)])
def test_binary_focal_mixed_labels(hv, gamma, dtype, rng):
    # 0/1 labels take the one-term loop, which checks the labels as it goes;
    # a sub-block holding one probability (or one bad label) at any position
    # is done again by the two-term loop (or reported at its first bad row)
    n = 20000
    f = (rng.standard_normal(n) * 3.0).astype(dtype)
    for rows in ([0], [4097], [n - 1], [5, 9000, 19999]):
        y = (rng.random(n) < 0.3).astype(dtype)
        y[rows] = rng.random(len(rows))
        g, h, v = gbdt.grad_hess("binary_focal", y, f, gamma=gamma, hessian=hv, n_threads=2)
        rg, rh, rv = R.grad_hess("binary_focal", y, f.astype(np.float64), gamma=gamma,
                                 hessian=hv)
        tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(g, rg, **tol)
        np.testing.assert_allclose(h, rh, **tol)
        np.testing.assert_allclose(v, rv, rtol=tol["rtol"] * 10)
        for bad in (np.nan, -0.5, 1.5):
            yb = y.copy()
            yb[rows[-1]] = bad
            yb[n - 1] = bad if rows[-1] != n - 1 else yb[n - 1]
            with pytest.raises(ValueError, match=rf"y\[{rows[-1]}\] = .* is outside the domain"):
                gbdt.grad_hess("binary_focal", yb, f, gamma=gamma, hessian=hv, n_threads=2)


# -------------------------------------------------------------- init_score

@pytest.mark.parametrize("case", [
    ("logistic", {}), ("logistic", {"class_weight": [0.5, 2.0]}),
    ("binary_focal", {"gamma": 2.0, "alpha": 0.25}),
    ("softmax", {}), ("softmax", {"label_smoothing": 0.1, "class_weight": [1.0, 2.0, 1.0, 0.5]}),
    ("softmax_focal", {"gamma": 2.0}),
    ("huber", {"delta": 0.5}), ("pseudo_huber", {}), ("log_cosh", {}), ("fair", {}),
    ("quantile", {"alpha": [0.1, 0.5, 0.9]}), ("poisson", {}), ("gamma", {}),
    ("tweedie", {"power": 1.5}), ("squared_log", {}),
], ids=lambda c: f"{c[0]}{c[1] or ''}")
def test_init_score_minimises_the_loss(case, rng):
    loss, p = case
    y, f, p = make(loss, p, 400, rng)
    w = rng.uniform(0.5, 2.0, len(y))
    c = gbdt.init_score(loss, y, w, **p)
    ref = R.init_score(loss, y, w, **dict(p, **({"num_class": K} if "softmax" in loss else {})))
    if loss in ("softmax", "softmax_focal"):
        c = c - c.mean()
        ref = ref - ref.mean()
    tol = 1e-2 if loss == "quantile" else 1e-5
    np.testing.assert_allclose(c, ref, atol=tol, rtol=tol)
    if loss != "quantile":
        # the gradient sum vanishes there
        m = np.broadcast_to(c, f.shape).copy()
        g, _, _ = gbdt.grad_hess(loss, y, m, w, **p)
        assert np.all(np.abs(g.sum(axis=0)) < 1e-6 * len(y))


def test_import_does_not_load_boosting_libraries():
    code = ("import sys, fastloss, fastloss.gbdt; "
            "print([m for m in ('xgboost', 'lightgbm', 'catboost') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------- the boosting libraries
# Small problems (2000 x 5, 10 rounds, depth 3): each library trains with the
# fastloss objective, with a NumPy objective written here, and with its own
# built-in loss where that loss has the same Hessian, all from margin 0.

N_LIB = 2000


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(7)
    X = r.normal(size=(N_LIB, 5)).astype(np.float32)
    yb = (X[:, 0] + 0.5 * X[:, 1] + r.normal(size=N_LIB) > 0).astype(np.float32)
    yc = np.digitize(X[:, 0] + 0.5 * r.normal(size=N_LIB), [-0.5, 0.5]).astype(np.float32)
    yr = (2 * X[:, 0] + r.normal(size=N_LIB)).astype(np.float32)
    yp = r.poisson(np.exp(0.5 * X[:, 0])).astype(np.float32)
    w = r.uniform(0.5, 2.0, N_LIB).astype(np.float32)
    return {"X": X, "binary": yb, "class": yc, "real": yr, "count": yp, "w": w}


def numpy_focal(f, y, gamma=2.0, alpha=0.25):
    """Binary focal loss, Fisher Hessian, written for the test: (g, h) in float64."""
    f = np.asarray(f, np.float64)
    y = np.asarray(y, np.float64)
    p = 1.0 / (1.0 + np.exp(-f))
    q = 1.0 - p
    a1, a0 = alpha, 1.0 - alpha
    # d/df of -a1 y q^g log p - a0 (1-y) p^g log q
    g = (a1 * y * (-(q ** gamma) * (gamma * p * -np.log(p) + q))
         + a0 * (1 - y) * (p ** gamma) * (gamma * q * -np.log(q) + p))
    h = (a1 * y * q ** gamma + a0 * (1 - y) * p ** gamma) * p * q
    return g, h


def numpy_softmax(F, y):
    F = np.asarray(F, np.float64)
    P = np.exp(F - F.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Y = np.eye(F.shape[1])[np.asarray(y, np.int64)]
    return P - Y, P * (1 - P)


# (fastloss loss and options, XGBoost built-in params, LightGBM built-in params, label kind)
BUILTINS = [
    (("logistic", {}), {"objective": "binary:logistic"}, {"objective": "binary"}, "binary"),
    (("softmax", {"num_class": 3}), {"objective": "multi:softprob", "num_class": 3},
     {"objective": "multiclass", "num_class": 3}, "class"),
    (("huber", {"delta": 0.9}), None, {"objective": "huber", "alpha": 0.9}, "real"),
    (("pseudo_huber", {"delta": 1.0}), {"objective": "reg:pseudohubererror", "huber_slope": 1.0},
     None, "real"),
    (("poisson", {}), {"objective": "count:poisson", "max_delta_step": 0.7},
     {"objective": "poisson", "poisson_max_delta_step": 0.7}, "count"),
    (("tweedie", {"power": 1.4}), {"objective": "reg:tweedie", "tweedie_variance_power": 1.4},
     {"objective": "tweedie", "tweedie_variance_power": 1.4}, "count"),
]
XGB_HESSIAN = {"softmax": "xgboost", "poisson": "max_delta_step"}
LGB_HESSIAN = {"softmax": "lightgbm", "huber": "lightgbm", "poisson": "max_delta_step"}


def _objective(loss, params, hessians):
    p = {k: v for k, v in params.items() if k != "num_class"}
    return gbdt.Objective(loss, hessian=hessians.get(loss), **p)


def _xgb_train(xgb, d, y, params, obj=None, K=None, weight=None):
    n = d["X"].shape[0]
    zero = np.zeros((n, K)) if K else np.zeros(n)
    dm = xgb.DMatrix(d["X"], label=y, weight=weight, base_margin=zero)
    p = dict(tree_method="hist", max_depth=3, eta=0.3, nthread=2, seed=0, **params)
    if obj is not None:
        p["disable_default_eval_metric"] = 1
    booster = xgb.train(p, dm, 10, obj=obj)
    return booster.predict(xgb.DMatrix(d["X"], base_margin=zero), output_margin=True)


@pytest.mark.parametrize("case", [c for c in BUILTINS if c[1] is not None],
                         ids=lambda c: c[0][0])
def test_xgboost_matches_builtin(case, data):
    xgb = pytest.importorskip("xgboost", reason="xgboost is not installed")
    (loss, params), xparams, _, kind = case
    K = params.get("num_class")
    y = data[kind]
    ref = _xgb_train(xgb, data, y, xparams, K=K)
    obj = _objective(loss, params, XGB_HESSIAN)
    extra = {"num_class": K} if K else {}
    if loss == "poisson":
        extra["max_delta_step"] = 0.7   # XGBoost also caps the leaf step with it
    got = _xgb_train(xgb, data, y, extra, obj=obj.xgboost, K=K)
    if loss == "pseudo_huber":
        # XGBoost evaluates this loss in float32, fastloss in float64 (rounded
        # once): on this data one near-tie split of a late round goes the other
        # way, moving 7 % of the rows by < 5e-4 (the MM Hessian moves them by 6)
        close = np.abs(got - ref) <= 1e-5
        assert close.mean() > 0.9 and np.abs(got - ref).max() < 1e-3
        return
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_xgboost_matches_numpy_objective(data):
    xgb = pytest.importorskip("xgboost", reason="xgboost is not installed")
    y, w = data["binary"], data["w"]

    def np_obj(predt, dtrain):
        return numpy_focal(predt, dtrain.get_label())

    obj = gbdt.Objective("binary_focal", gamma=2.0, alpha=0.25, hessian="fisher")
    ref = _xgb_train(xgb, data, y, {}, obj=np_obj)
    got = _xgb_train(xgb, data, y, {}, obj=obj.xgboost)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    # softmax with weights: fastloss multiplies them in, as the NumPy objective does

    def np_softmax(predt, dtrain):
        g, h = numpy_softmax(predt, dtrain.get_label())
        wt = dtrain.get_weight()[:, None]
        return g * wt, np.maximum(2 * h, 1e-16) * wt

    ref = _xgb_train(xgb, data, data["class"], {"num_class": 3}, obj=np_softmax, K=3, weight=w)
    sm = gbdt.Objective("softmax", hessian="xgboost")
    got = _xgb_train(xgb, data, data["class"], {"num_class": 3}, obj=sm.xgboost, K=3, weight=w)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_xgboost_metric_and_sklearn_api(data):
    xgb = pytest.importorskip("xgboost", reason="xgboost is not installed")
    X, y, w = data["X"], data["count"], data["w"]
    obj = gbdt.Objective("poisson", hessian="max_delta_step")
    zero = np.zeros(len(y))
    dm = xgb.DMatrix(X, label=y, weight=w, base_margin=zero)
    log = {}
    booster = xgb.train({"tree_method": "hist", "max_depth": 3, "nthread": 2,
                         "max_delta_step": 0.7, "disable_default_eval_metric": 1}, dm, 5,
                        obj=obj.xgboost, custom_metric=obj.xgboost_metric,
                        evals=[(dm, "train")], evals_result=log)
    margins = booster.predict(dm, output_margin=True)
    _, _, v = R.grad_hess("poisson", y, margins, w)
    np.testing.assert_allclose(log["train"]["poisson"][-1], v, rtol=1e-5)
    # the scikit-learn estimator, weights passed by name
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed (XGBoost's estimators need it)")
    kw = dict(n_estimators=10, max_depth=3, learning_rate=0.3, tree_method="hist", n_jobs=2,
              base_score=0.0, max_delta_step=0.7)
    ref = xgb.XGBRegressor(objective="count:poisson", **kw)
    ref.fit(X, y, sample_weight=w, base_margin=zero)
    got = xgb.XGBRegressor(objective=obj.xgboost_sklearn, **kw)
    got.fit(X, y, sample_weight=w, base_margin=zero)
    np.testing.assert_allclose(got.predict(X, output_margin=True, base_margin=zero),
                               ref.predict(X, output_margin=True, base_margin=zero),
                               atol=1e-5, rtol=0)


def _lgb_train(lgb, d, y, params, weight=None):
    ds = lgb.Dataset(d["X"], label=y, weight=weight, params={"verbose": -1})
    p = dict(num_leaves=8, learning_rate=0.3, verbose=-1, deterministic=True, num_threads=2,
             boost_from_average=False, seed=0, **params)
    return lgb.train(p, ds, 10).predict(d["X"], raw_score=True)


@pytest.mark.parametrize("case", [c for c in BUILTINS if c[2] is not None],
                         ids=lambda c: c[0][0])
def test_lightgbm_matches_builtin(case, data):
    lgb = pytest.importorskip("lightgbm", reason="lightgbm is not installed")
    (loss, params), _, lparams, kind = case
    y, w = data[kind], data["w"]
    ref = _lgb_train(lgb, data, y, lparams, weight=w)
    obj = _objective(loss, params, LGB_HESSIAN)
    extra = {"num_class": params["num_class"]} if "num_class" in params else {}
    got = _lgb_train(lgb, data, y, dict(extra, objective=obj.lightgbm), weight=w)
    # float64 margins in, the same float32 gradients out: the same trees
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


def test_lightgbm_numpy_objective_metric_and_sklearn_api(data):
    lgb = pytest.importorskip("lightgbm", reason="lightgbm is not installed")
    y = data["binary"]

    def np_obj(preds, train_data):
        return numpy_focal(preds, train_data.get_label())

    obj = gbdt.Objective("binary_focal", gamma=2.0, alpha=0.25, hessian="fisher")
    ref = _lgb_train(lgb, data, y, {"objective": np_obj})
    got = _lgb_train(lgb, data, y, {"objective": obj.lightgbm})
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    # feval reports the weighted mean loss of the raw scores
    ds = lgb.Dataset(data["X"], label=y, params={"verbose": -1})
    log = {}
    bst = lgb.train({"objective": obj.lightgbm, "num_leaves": 8, "verbose": -1,
                     "num_threads": 2}, ds, 3, valid_sets=[ds], valid_names=["train"],
                    feval=obj.lightgbm_metric, callbacks=[lgb.record_evaluation(log)])
    _, _, v = R.grad_hess("binary_focal", y, bst.predict(data["X"], raw_score=True),
                          gamma=2.0, alpha=0.25)
    np.testing.assert_allclose(log["train"]["binary_focal"][-1], v, rtol=1e-6)
    # scikit-learn estimators: regression and multiclass (Fortran-ordered margins)
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed (LightGBM's estimators need it)")
    kw = dict(n_estimators=10, num_leaves=8, learning_rate=0.3, verbose=-1, n_jobs=2,
              deterministic=True, boost_from_average=False)
    ref = lgb.LGBMRegressor(objective="huber", alpha=0.9, **kw).fit(data["X"], data["real"])
    hub = gbdt.Objective("huber", delta=0.9, hessian="lightgbm")
    got = lgb.LGBMRegressor(objective=hub.lightgbm_sklearn, **kw).fit(data["X"], data["real"])
    np.testing.assert_allclose(got.predict(data["X"], raw_score=True),
                               ref.predict(data["X"], raw_score=True), atol=1e-6, rtol=0)
    ref = lgb.LGBMClassifier(objective="multiclass", **kw).fit(data["X"], data["class"])
    sm = gbdt.Objective("softmax", hessian="lightgbm")
    got = lgb.LGBMClassifier(objective=sm.lightgbm_sklearn, **kw).fit(data["X"], data["class"])
    np.testing.assert_allclose(got.predict(data["X"], raw_score=True),
                               ref.predict(data["X"], raw_score=True), atol=1e-6, rtol=0)


class _NumpyLogloss:
    def calc_ders_range(self, approxes, targets, weights):
        f = np.asarray(approxes, np.float64)
        p = 1.0 / (1.0 + np.exp(-f))
        g = p - np.asarray(targets)
        h = p * (1 - p)
        if weights is not None:
            g, h = g * weights, h * weights
        return np.c_[-g, -h]


def test_catboost_objective_and_metric(data):
    cb = pytest.importorskip("catboost", reason="catboost is not installed")
    X, y = data["X"], data["binary"]
    obj = gbdt.Objective("logistic")
    kw = dict(iterations=10, depth=3, learning_rate=0.3, random_seed=0, thread_count=2,
              verbose=False, boost_from_average=False, bootstrap_type="No", random_strength=0,
              allow_writing_files=False)  # no catboost_info/ in the working directory

    def fit(model):
        model.fit(X, y)
        return model.predict(X, prediction_type="RawFormulaVal")

    got = fit(cb.CatBoostRegressor(loss_function=obj.catboost, eval_metric=obj.catboost_metric,
                                   **kw))
    ref = fit(cb.CatBoostRegressor(loss_function=_NumpyLogloss(),
                                   eval_metric=obj.catboost_metric, **kw))
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    builtin = fit(cb.CatBoostClassifier(loss_function="Logloss", leaf_estimation_method="Newton",
                                        leaf_estimation_iterations=1, **kw))
    np.testing.assert_allclose(got, builtin, atol=1e-5, rtol=0)
    # the metric: weighted mean loss of the raw approxes
    m = obj.catboost_metric
    err, wsum = m.evaluate([got], y, None)
    _, _, v = R.grad_hess("logistic", y, got)
    np.testing.assert_allclose(m.get_final_error(err, wsum), v, rtol=1e-10)
    assert m.is_max_optimal() is False
    # the per-object multiclass API: negated gradient and diagonal Hessian
    sm = gbdt.Objective("softmax")
    der1, der2 = sm.catboost.calc_ders_multi([0.5, -1.0, 2.0], 1.0, 2.0)
    g, h = numpy_softmax(np.array([[0.5, -1.0, 2.0]]), [1])
    np.testing.assert_allclose(der1, -2 * g[0], rtol=1e-12)
    np.testing.assert_allclose(np.diag(der2), -2 * h[0], rtol=1e-12)


def test_objective_reuses_its_buffers(data):
    obj = gbdt.Objective("softmax")
    F = np.zeros((100, 3), np.float32)
    y = np.zeros(100, np.float32)
    g1, _ = obj.xgboost_sklearn(y, F)
    g2, _ = obj.xgboost_sklearn(y, F + 1)
    assert g1 is g2 and g1.dtype == np.float32 and g1.flags.c_contiguous
    G1, _ = obj.lightgbm_sklearn(y, np.asfortranarray(F, dtype=np.float64))
    assert G1.dtype == np.float32 and G1.flags.f_contiguous
    G2, _ = obj.lightgbm_sklearn(y, np.asfortranarray(F, dtype=np.float64))
    assert G1 is G2
