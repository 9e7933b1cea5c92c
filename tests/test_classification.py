"""cross_entropy and nll_loss against torch, the reference and finite differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastloss as fl
from fastloss import reference as ref
from fastloss.testing import check_grad

from conftest import tol

# (input shape, class count); narrow rows, wide rows, NCHW, NCDHW, unbatched
SHAPES = [(5, 7), (6, 40), (3, 5, 4, 6), (2, 4, 3, 5, 2), (7,), (1, 1), (600, 3)]
LABEL_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16]


def _data(shape, rng, dtype=np.float64, label_dtype=np.int64):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = np.asarray(rng.integers(0, c, tshape)).astype(label_dtype)
    p = rng.random(shape)
    p /= p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    w = rng.random(c) + 0.5
    return x, t, p.astype(dtype), w


def _torch(fn, x, t, **kw):
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t if t.dtype.kind == "f" else t.astype(np.int64))
    if kw.get("weight") is not None:
        kw["weight"] = torch.tensor(kw["weight"], dtype=xt.dtype)
    out = fn(xt, tt, **kw)
    out.sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


OPTIONS = [
    {}, {"weight": True}, {"label_smoothing": 0.2}, {"weight": True, "label_smoothing": 0.3},
    {"ignore_index": 1}, {"weight": True, "ignore_index": 0},
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_index_vs_torch(shape, opts, reduction, dtype, rng):
    x, t, _, w = _data(shape, rng, dtype)
    kw = dict(opts, reduction=reduction)
    if kw.get("weight"):
        kw["weight"] = w
    loss, grad = fl.cross_entropy(x, t, return_grad=True, **kw)
    tl, tg = _torch(F.cross_entropy, x, t, **kw)
    rtol, atol = tol(dtype)
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(loss, tl, rtol, atol)
    np.testing.assert_allclose(grad, tg, rtol, atol)
    # the loss-only path gives the same value
    np.testing.assert_array_equal(fl.cross_entropy(x, t, **kw), loss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", [{}, {"weight": True, "label_smoothing": 0.3},
                                  {"ignore_index": 1}], ids=str)
@pytest.mark.parametrize("n,c", [(1100, 2), (1100, 5), (1100, 8), (1100, 9), (1100, 10),
                                 (1100, 16), (1100, 17), (30000, 10)], ids=str)
def test_cross_entropy_narrow_rows_vs_torch(n, c, opts, dtype, rng):
    """Rows of up to 16 float (8 double) classes are turned into class planes
    and back (unweighted float rows: flnarrow.h, tiles of 64 rows; otherwise
    per unit of 512 rows, fltranspose.h: tiles of 16 / 8 rows, the rest row
    by row); wider rows are read at stride C.  Both sides of both limits, a
    partial unit and partial tile, and (30000 x 10) a gradient of more than
    1 MiB, written with non-temporal stores."""
    x, t, _, w = _data((n, c), rng, dtype)
    kw = dict(opts)
    if kw.get("weight"):
        kw["weight"] = w
    rtol, atol = tol(dtype)
    for _ in range(2):   # the second call reuses the first one's dropped gradient
        loss, grad = fl.cross_entropy(x, t, return_grad=True, **kw)
        tl, tg = _torch(F.cross_entropy, x, t, **kw)
        np.testing.assert_allclose(loss, tl, rtol, atol)
        np.testing.assert_allclose(grad, tg, rtol, atol)
        del grad


def test_cross_entropy_planes_over_4mib_with_gradient(rng):
    """Class planes of an image over 4 MiB (the tiles then request the
    input's and the gradient's lines 512 positions ahead): the gradient into
    a caller's buffer equals, position by position, the gradients of the
    image cut into pieces under 4 MiB (no requests ahead), and torch's; the
    loss torch's."""
    c, s = 4, 300_000                       # 4.8 MB of float32 logits
    x = (rng.standard_normal((1, c, s)) * 3).astype(np.float32)
    t = rng.integers(0, c, (1, s)).astype(np.uint8)
    g = np.full_like(x, np.nan)
    loss, gr = fl.cross_entropy(x, t, reduction="sum", return_grad=True, grad_out=g)
    assert gr is g
    cut = 100_000
    for k in range(0, s, cut):
        _, gk = fl.cross_entropy(np.ascontiguousarray(x[:, :, k:k + cut]), t[:, k:k + cut],
                                 reduction="sum", return_grad=True)
        np.testing.assert_array_equal(g[:, :, k:k + cut], gk)
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    lt = F.cross_entropy(xt, torch.from_numpy(t.astype(np.int64)), reduction="sum")
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-6)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-5, atol=4e-7)   # a few float32 ulps of 1


@pytest.mark.parametrize("layout", ["rows", "planes"])
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("c", [2, 10, 16])
def test_cross_entropy_narrow_rows_unweighted(c, label_dtype, layout, rng):
    """The one-pass path for unweighted float32 logits of up to 16 classes
    (flnarrow.h), rows (n, c) and class planes (2, c, 25, 24), against a
    float64 computation: every reduction and its gradient, a partial tile
    and a partial unit (1200 positions), ignored positions (NaN logits there
    stay out of the loss, their gradient is 0), the same bits for any thread
    count, and logits offset by up to 1e4 (the maximum is taken off the
    labelled logit before the log is added, so no digits are lost to the
    offset)."""
    n = 1200
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    t = rng.integers(0, c, n).astype(label_dtype)
    t[::7] = c - 1 if label_dtype == np.uint8 else -100
    ign = (c - 1) if label_dtype == np.uint8 else -100
    x[t == ign] = np.nan
    keep = t != ign

    def want(xv):
        x64 = xv.astype(np.float64)
        m = x64.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(x64 - m).sum(axis=1, keepdims=True)))[:, 0]
        ti = np.where(keep, t.astype(np.int64), 0)
        rows = np.where(keep, lse - x64[np.arange(n), ti], 0.0)
        sm = np.exp(x64 - lse[:, None])
        sm[np.arange(n), ti] -= 1
        return rows, np.where(keep[:, None], sm, 0.0)

    if layout == "rows":
        def lay(a, tv):
            return a, tv

        def grid(a):
            return a
    else:   # position j of image i is row i * 600 + j
        def lay(a, tv):
            return grid(a), tv.reshape(2, 25, 24)

        def grid(a):
            return np.ascontiguousarray(a.reshape(2, 600, c).transpose(0, 2, 1)).reshape(
                2, c, 25, 24) if a.ndim == 2 else a.reshape(2, 25, 24)
    for offset in (0.0, 1e2, 1e3, 1e4):
        xv, tv = lay(x + np.float32(offset), t)
        rows, grad = want(x + np.float32(offset))
        ref = {"none": grid(rows), "sum": rows.sum(), "mean": rows.sum() / keep.sum()}
        for red in ("none", "sum", "mean"):
            a = fl.cross_entropy(xv, tv, ignore_index=ign, reduction=red, return_grad=True,
                                 n_threads=1)
            scale = 1.0 / keep.sum() if red == "mean" else 1.0
            # float32 logits: the loss of a row to a few ulp of the row's
            # magnitude after the shift (exact inputs, float exp and log)
            np.testing.assert_allclose(a[0], ref[red], rtol=2e-6, atol=2e-6 * scale)
            # the gradient p - [c == y] to a few float32 ulp of 1 where p is near 1
            np.testing.assert_allclose(a[1], grid(grad) * scale, rtol=1e-5, atol=3e-7 * scale)
            assert not np.isnan(a[1]).any()
            for nt in (2, 3):
                b = fl.cross_entropy(xv, tv, ignore_index=ign, reduction=red,
                                     return_grad=True, n_threads=nt)
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_array_equal(
                fl.cross_entropy(xv, tv, ignore_index=ign, reduction=red, n_threads=2), a[0])
    bad = t.astype(np.int64)
    bad[613] = c
    xb, bad = lay(x, bad)
    for grad in (False, True):   # with the gradient, 'mean' counts the labels first
        with pytest.raises(ValueError, match="613"):
            fl.cross_entropy(xb, bad, ignore_index=-100, return_grad=grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"label_smoothing": 0.25},
                                  {"weight": True, "label_smoothing": 0.1}], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_probabilities_vs_torch(shape, opts, reduction, dtype, rng):
    x, _, p, w = _data(shape, rng, dtype)
    kw = dict(opts, reduction=reduction)
    if kw.get("weight"):
        kw["weight"] = w
    loss, grad = fl.cross_entropy(x, p, return_grad=True, **kw)
    tl, tg = _torch(F.cross_entropy, x, p, **kw)
    np.testing.assert_allclose(loss, tl, *tol(dtype))
    np.testing.assert_allclose(grad, tg, *tol(dtype))


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(9, 5), (4, 50), (2, 3, 5, 7)], ids=str)
def test_label_dtypes(shape, label_dtype, rng):
    x, t, _, _ = _data(shape, rng, np.float32, label_dtype)
    want = fl.cross_entropy(x, t.astype(np.int64), reduction="none")
    np.testing.assert_array_equal(fl.cross_entropy(x, t, reduction="none"), want)
    np.testing.assert_array_equal(fl.nll_loss(x, t, reduction="none"),
                                  fl.nll_loss(x, t.astype(np.int64), reduction="none"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"ignore_index": 2}], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nll_loss_vs_torch(shape, opts, reduction, dtype, rng):
    x, t, _, w = _data(shape, rng, dtype)
    kw = dict(opts, reduction=reduction)
    if kw.get("weight"):
        kw["weight"] = w
    loss, grad = fl.nll_loss(x, t, return_grad=True, **kw)
    tl, tg = _torch(F.nll_loss, x, t, **kw)
    np.testing.assert_allclose(loss, tl, *tol(dtype))
    np.testing.assert_allclose(grad, tg, *tol(dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 7), (6, 40), (2, 3, 4, 5)], ids=str)
def test_sample_weight_vs_reference(shape, reduction, rng):
    x, t, p, w = _data(shape, rng)
    sw = rng.random((shape[0],) + shape[2:])
    for target in (t, p):
        for kw in ({}, {"weight": w}, {"weight": w, "label_smoothing": 0.2}):
            got = fl.cross_entropy(x, target, reduction=reduction, sample_weight=sw, **kw)
            want = ref.cross_entropy(x, target, reduction=reduction, sample_weight=sw, **kw)
            np.testing.assert_allclose(got, want, 1e-12, 1e-14)
    got = fl.nll_loss(x, t, reduction=reduction, sample_weight=sw, weight=w)
    want = ref.nll_loss(x, t, reduction=reduction, sample_weight=sw, weight=w)
    np.testing.assert_allclose(got, want, 1e-12, 1e-14)
    # a per-sample weight broadcast over the spatial axes
    if len(shape) > 2:
        sw_n = rng.random((shape[0],) + (1,) * (len(shape) - 2))
        np.testing.assert_allclose(
            fl.cross_entropy(x, t, reduction=reduction, sample_weight=sw_n),
            ref.cross_entropy(x, t, reduction=reduction, sample_weight=sw_n), 1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.3, "weight": "w"}, {"ignore_index": 1},
                                {"sample_weight": "sw"}, {"target": "p"}], ids=str)
@pytest.mark.parametrize("shape", [(4, 5), (3, 33), (2, 3, 2, 3)], ids=str)
def test_gradient_finite_differences(shape, kw, reduction, rng):
    x, t, p, w = _data(shape, rng)
    kw = dict(kw, reduction=reduction)
    target = p if kw.pop("target", None) == "p" else t
    if kw.get("weight") == "w":
        kw["weight"] = w
    if kw.get("sample_weight") == "sw":
        kw["sample_weight"] = rng.random(np.shape(t))
    check_grad(fl.cross_entropy, x, target, rtol=5e-6, **kw)
    if target is t:
        nll_kw = {k: v for k, v in kw.items() if k != "label_smoothing"}
        check_grad(fl.nll_loss, x, t, rtol=5e-6, **nll_kw)


def test_hand_computed():
    # softmax([4.1, 2.1, -0.5]) = [0.873, 0.118, 0.009]; -log(0.873) = 0.13574
    x = np.array([[4.1, 2.1, -0.5]])
    want = -np.log(np.exp(4.1) / np.exp(x).sum())
    got = fl.cross_entropy(x, np.array([0]))
    assert got == pytest.approx(want, rel=1e-13)
    assert round(float(got), 5) == 0.13574
    assert fl.cross_entropy(x.astype(np.float32), np.array([0])) == pytest.approx(0.13574, abs=5e-6)


def test_all_ignored_gives_nan_and_zero_grad():
    x = np.zeros((3, 4))
    t = np.full(3, -100)
    loss, g = fl.cross_entropy(x, t, return_grad=True)
    assert np.isnan(loss)
    assert np.all(g == 0)
    assert fl.cross_entropy(x, t, reduction="sum") == 0.0
    tl = F.cross_entropy(torch.zeros(3, 4), torch.full((3,), -100))
    assert torch.isnan(tl)


def test_empty_batch():
    x = np.zeros((0, 4), np.float32)
    t = np.zeros(0, np.int64)
    assert np.isnan(fl.cross_entropy(x, t))
    assert fl.cross_entropy(x, t, reduction="sum") == 0
    assert fl.cross_entropy(x, t, reduction="none").shape == (0,)
    loss, g = fl.cross_entropy(x, t, return_grad=True)
    assert g.shape == (0, 4)


@pytest.mark.parametrize("shape", [(5000, 7), (300, 64), (3, 6, 40, 41)], ids=str)
def test_threads_bit_identical(shape, rng):
    x, t, p, w = _data(shape, rng, np.float32)
    sw = rng.random(np.shape(t))
    for target in (t, p):
        for red in ("mean", "sum", "none"):
            kw = dict(weight=w, reduction=red, sample_weight=sw, label_smoothing=0.1)
            a = fl.cross_entropy(x, target, return_grad=True, n_threads=1, **kw)
            for nt in (2, 3, 7):
                b = fl.cross_entropy(x, target, return_grad=True, n_threads=nt, **kw)
                np.testing.assert_array_equal(a[0], b[0])
                np.testing.assert_array_equal(a[1], b[1])


def test_non_contiguous_inputs(rng):
    x, t, p, _ = _data((6, 5, 4, 3), rng)
    views = [x[:, :, ::-1], np.asfortranarray(x), x.transpose(0, 1, 3, 2), x[::2, 1:]]
    for v in views:
        tv = rng.integers(0, v.shape[1], (v.shape[0],) + v.shape[2:])
        want, wg = _torch(F.cross_entropy, np.ascontiguousarray(v), tv)
        got, g = fl.cross_entropy(v, tv, return_grad=True)
        np.testing.assert_allclose(got, want, 1e-12)
        np.testing.assert_allclose(g, wg, 1e-12)
    # strided target
    t2 = np.repeat(t, 2, axis=0)[::2]
    np.testing.assert_allclose(fl.cross_entropy(x, t2), fl.cross_entropy(x, t), 0)


def test_grad_out_is_filled_in_place(rng):
    x, t, _, _ = _data((8, 5), rng, np.float32)
    buf = np.empty_like(x)
    loss, g = fl.cross_entropy(x, t, return_grad=True, grad_out=buf)
    assert np.shares_memory(g, buf)
    np.testing.assert_allclose(g, _torch(F.cross_entropy, x, t)[1], 1e-5)
    with pytest.raises(ValueError, match="grad_out must have dtype float32"):
        fl.cross_entropy(x, t, return_grad=True, grad_out=np.empty(x.shape))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(8, 5\)"):
        fl.cross_entropy(x, t, return_grad=True, grad_out=np.empty((5, 8), np.float32))
    with pytest.raises(ValueError, match="grad_out must be C-contiguous"):
        fl.cross_entropy(x, t, return_grad=True, grad_out=np.empty((5, 8), np.float32).T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 33), (40, 1000), (2100, 57), (700, 5), (5, 4, 6)], ids=str)
def test_nll_grad_into_a_used_buffer(shape, dtype, rng):
    """grad_out (and a kept gradient) is zeroed with streamed stores: every
    element is written, whatever the buffer held and however the rows align."""
    x, t, _, _ = _data(shape, rng, dtype)
    t.reshape(-1)[::7] = 3  # ignored positions get a zero gradient too
    tt = torch.tensor(t.astype(np.int64))
    xt = torch.tensor(x, requires_grad=True)
    F.nll_loss(xt, tt, ignore_index=3).backward()
    for offset in (0, 1):  # two alignments of the buffer
        store = np.full(x.size + offset, np.nan, dtype)
        buf = store[offset:].reshape(x.shape)
        _, g = fl.nll_loss(x, t, ignore_index=3, return_grad=True, grad_out=buf)
        assert np.shares_memory(g, buf)
        np.testing.assert_allclose(g, xt.grad.numpy(), *tol(dtype))
    for _ in range(3):  # the second call on gets a kept buffer the first one dirtied
        g = fl.nll_loss(x, t, ignore_index=3, return_grad=True)[1]
        np.testing.assert_allclose(g, xt.grad.numpy(), *tol(dtype))
        g[...] = np.nan
        del g


def test_float16_and_integer_inputs(rng):
    x, t, _, _ = _data((4, 3), rng)
    l16, g16 = fl.cross_entropy(x.astype(np.float16), t, return_grad=True)
    assert isinstance(l16, np.float32) and g16.dtype == np.float16
    assert fl.cross_entropy(np.array([[1, 2, 3]]), np.array([2])).dtype == np.float64


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)),
                  elements=st.floats(-30, 30)), st.data())
def test_properties(x, data):
    n, c = x.shape
    t = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    loss, g = fl.cross_entropy(x, t, reduction="none", return_grad=True)
    assert np.all(loss >= -1e-12)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(loss, ref.cross_entropy(x, t, reduction="none"), 1e-10, 1e-12)


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("shape", [(5, 7), (5, 40), (2, 7, 3, 3)], ids=str)
@pytest.mark.parametrize("bad", [7, -1, 100])
@pytest.mark.parametrize("fn", [fl.cross_entropy, fl.nll_loss])
@pytest.mark.parametrize("return_grad", [False, True])
def test_out_of_range_label(shape, bad, fn, return_grad, rng):
    x, t, _, _ = _data(shape, rng)
    t = t % 7
    t.reshape(-1)[3] = bad
    with pytest.raises(ValueError, match=rf"target holds class index {bad} at flat position 3; "
                                         r"expected values in \[0, 7\)"):
        fn(x[:, :7], t, return_grad=return_grad)


def test_uint8_label_out_of_range():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="class index 255 at flat position 2"):
        fl.cross_entropy(x, np.array([0, 1, 255, 2], np.uint8))
    # 255 is accepted when it is the ignore_index
    got = fl.cross_entropy(x, np.array([0, 1, 255, 2], np.uint8), ignore_index=255)
    assert got == pytest.approx(np.log(3))


def test_argument_errors():
    x = np.zeros((4, 3))
    t = np.zeros(4, np.int64)
    with pytest.raises(TypeError,
                       match="target must hold integer class indices, got dtype float64"):
        fl.cross_entropy(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"target of class indices must have shape \(4,\)"):
        fl.cross_entropy(x, np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fl.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0.0, 1.0\], got 1.5"):
        fl.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        fl.cross_entropy(x, t, label_smoothing=float("nan"))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        fl.cross_entropy(x, t, weight=np.ones(4))
    with pytest.raises(ValueError, match="sample_weight of shape"):
        fl.cross_entropy(x, t, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="n_threads must be a non-zero integer"):
        fl.cross_entropy(x, t, n_threads=0)
    with pytest.raises(TypeError, match="n_threads must be an int"):
        fl.cross_entropy(x, t, n_threads=1.5)
    with pytest.raises(ValueError, match="input must have a class axis"):
        fl.cross_entropy(np.float64(1.0), np.int64(0))
    with pytest.raises(ValueError, match="input must have at least one class"):
        fl.cross_entropy(np.zeros((4, 0)), t)
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        fl.cross_entropy(x.astype(complex), t)
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        fl.cross_entropy(x, t, ignore_index=1.5)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        fl.nll_loss(x, np.zeros(4, bool))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [40, 1000, 4096, 5000])
@pytest.mark.parametrize("opts", [
    {},
    {"label_smoothing": 0.1, "weight": "w"},
    {"ignore_index": 3, "sample_weight": "sw", "reduction": "none"},
])
def test_streamed_gradient_rows_same_bits(C, dtype, opts):
    # A gradient written into a reused or caller's buffer takes the streamed
    # row path (one pass per row, non-temporal stores); a fresh gradient
    # array the two-step path.  Loss and gradient have the same bits.
    rng = np.random.default_rng(C)
    N = 70
    x = (rng.standard_normal((N, C)) * 4).astype(dtype)
    t = rng.integers(0, C, N)
    t[::7] = 3
    kw = dict(opts)
    if kw.get("weight") == "w":
        kw["weight"] = rng.random(C) + 0.5
    if kw.get("sample_weight") == "sw":
        kw["sample_weight"] = rng.random(N)
    fl.set_gradient_cache(0)
    try:
        loss0, g0 = fl.cross_entropy(x, t, return_grad=True, **kw)
    finally:
        fl.set_gradient_cache(512 << 20)
    g1 = np.full_like(x, np.nan)
    loss1, g1r = fl.cross_entropy(x, t, return_grad=True, grad_out=g1, **kw)
    assert g1r is g1
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(loss1, loss0)
    if "ignore_index" in kw:
        assert not g1[t == 3].any()
    # and the values: the loss against the reference, the gradient against
    # torch's autograd in float64 (torch has no sample_weight)
    f32 = dtype == np.float32
    want = ref.cross_entropy(x.astype(np.float64), t, **kw)
    np.testing.assert_allclose(loss1, want, rtol=2e-5 if f32 else 1e-10,
                               atol=1e-6 if f32 else 1e-12)
    if "sample_weight" not in kw:
        xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
        tkw = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v)
               for k, v in kw.items()}
        F.cross_entropy(xt, torch.from_numpy(t), **tkw).backward()
        np.testing.assert_allclose(g1, xt.grad.numpy(), rtol=2e-4 if f32 else 1e-9,
                                   atol=1e-8 if f32 else 1e-15)


@pytest.mark.parametrize("C", [2, 10, 16])
@pytest.mark.parametrize("shift", [0, 16])
def test_narrow_rows_gradient_streamed_into_an_aligned_buffer_same_bits(C, shift):
    # Rows of a few float32 classes into a caller's buffer: 64-byte aligned,
    # the 64-row tiles go out with non-temporal stores, misaligned with
    # ordinary ones, a fresh array (not streamed) too; the same bits, and
    # torch's values.
    rng = np.random.default_rng(C + shift)
    N = 1000   # 15 whole tiles and a part tile
    x = (rng.standard_normal((N, C)) * 3).astype(np.float32)
    t = rng.integers(0, C, N)
    t[::13] = -100
    fl.set_gradient_cache(0)
    try:
        loss0, g0 = fl.cross_entropy(x, t, return_grad=True)
    finally:
        fl.set_gradient_cache(512 << 20)
    raw = np.full(x.size + 32, np.nan, np.float32)
    o = (-raw.ctypes.data % 64 + shift) // 4
    g1 = raw[o:o + x.size].reshape(N, C)
    assert g1.ctypes.data % 64 == shift
    loss1, g1r = fl.cross_entropy(x, t, return_grad=True, grad_out=g1)
    assert g1r is g1
    assert loss1 == loss0 and g1.tobytes() == g0.tobytes()
    assert np.isnan(raw[:o]).all() and np.isnan(raw[o + x.size:]).all()   # nothing outside it
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    F.cross_entropy(xt, torch.from_numpy(t)).backward()
    np.testing.assert_allclose(g1, xt.grad.numpy(), rtol=2e-4, atol=1e-8)
