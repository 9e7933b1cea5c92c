"""logsumexp / softmax / log_softmax against SciPy, torch and the reference."""

import numpy as np
import pytest
import scipy.special as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastloss as fl
from fastloss import reference as ref

from conftest import tol

SHAPES_AXES = [
    ((7,), None), ((7,), 0), ((4, 9), 1), ((4, 9), 0), ((4, 9), None), ((4, 9), -1),
    ((3, 40), 1), ((300, 3), 1), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), (1, 2)),
    ((2, 3, 4, 5), (0, 2)), ((2, 3, 4, 5), (1, 3)), ((2, 3, 4, 5), (0, 1, 2, 3)),
    ((1,), 0), ((5, 1), 1), ((2, 700, 3), 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_vs_scipy(shape, axis, keepdims, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    got = fl.logsumexp(x, axis=axis, keepdims=keepdims)
    want = sp.logsumexp(x.astype(np.float64), axis=axis, keepdims=keepdims)
    assert np.asarray(got).dtype == dtype
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, *tol(dtype))
    np.testing.assert_allclose(got, ref.logsumexp(x, axis=axis, keepdims=keepdims), *tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES, ids=str)
def test_softmax_log_softmax_vs_scipy(shape, axis, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    for ours, theirs in [(fl.softmax, sp.softmax), (fl.log_softmax, sp.log_softmax)]:
        got = ours(x, axis=axis)
        want = theirs(x.astype(np.float64), axis=axis)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, want, *tol(dtype))


def test_vs_torch_dims(rng):
    x = rng.standard_normal((3, 5, 4, 6))
    xt = torch.from_numpy(x)
    for d in range(4):
        np.testing.assert_allclose(fl.logsumexp(x, axis=d), torch.logsumexp(xt, d).numpy(), 1e-12)
        np.testing.assert_allclose(fl.softmax(x, axis=d), torch.softmax(xt, d).numpy(), 1e-12)
        np.testing.assert_allclose(fl.log_softmax(x, axis=d), torch.log_softmax(xt, d).numpy(),
                                   1e-12)


def test_infinities_and_nan():
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 0.0], [np.nan, 1.0],
                  [1000.0, 1000.0]])
    got = fl.logsumexp(x, axis=1)
    with np.errstate(all="ignore"):
        want = sp.logsumexp(x, axis=1)
    np.testing.assert_array_equal(got[:3], want[:3])
    assert np.isnan(got[3])
    np.testing.assert_allclose(got[4], 1000.0 + np.log(2.0), rtol=1e-15)
    sm = fl.softmax(np.array([-np.inf, 0.0, 0.0]))
    np.testing.assert_array_equal(sm, [0.0, 0.5, 0.5])
    assert fl.log_softmax(np.array([-np.inf, 0.0]))[0] == -np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", range(1, 11))
def test_every_short_class_axis_with_special_values(C, dtype, rng):
    # (N, C, S) with a contiguous position axis: C <= 8 takes the unrolled
    # loops of planes_softmax_sums, one instantiation per C
    x = (rng.standard_normal((2, C, 3, 37)) * 5).astype(dtype)
    x[0, :, 0, 0] = -np.inf                  # all -inf
    x[0, 0, 0, 1] = np.inf                   # one +inf
    x[1, C - 1, 2, 5] = np.nan
    x[1, :, 1, 3] = 80.0 if dtype == np.float32 else 700.0  # large, equal
    with np.errstate(all="ignore"):
        want_lse = sp.logsumexp(x.astype(np.float64), axis=1)
        want_sm = sp.softmax(x.astype(np.float64), axis=1)
        want_lsm = sp.log_softmax(x.astype(np.float64), axis=1)
        got_lse = fl.logsumexp(x, axis=1)
        got_sm = fl.softmax(x, axis=1)
        got_lsm = fl.log_softmax(x, axis=1)
    np.testing.assert_allclose(got_lse, want_lse, *tol(dtype))
    np.testing.assert_allclose(got_lsm, want_lsm, *tol(dtype))
    # softmax keeps an infinite max (NaN for a +inf or all -inf position, as
    # scipy.special.softmax): compare where scipy is finite, NaN elsewhere
    fin = np.isfinite(want_sm)
    np.testing.assert_allclose(got_sm[fin], want_sm[fin], *tol(dtype))
    assert np.isnan(got_sm[~fin]).all()
    t = rng.integers(0, C, (2, 3, 37))
    xf = np.nan_to_num(x, nan=0.0, posinf=9.0, neginf=-9.0)
    got = fl.cross_entropy(xf, t, reduction="none")
    want = torch.nn.functional.cross_entropy(torch.from_numpy(xf), torch.from_numpy(t),
                                             reduction="none").numpy()
    np.testing.assert_allclose(got, want, *tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,C", [(1100, 2), (1100, 4), (1100, 8), (1100, 9), (1100, 10),
                                 (1100, 16), (1100, 17), (30000, 10)], ids=str)
def test_narrow_rows_with_special_values(n, C, dtype, rng):
    """Rows of up to 16 float (8 double) values go through class planes in
    L1 (design D of _lse.pyx) in units of 512 rows, tiles of 16 / 8 rows and
    a row-by-row rest; wider rows are read at stride C.  Both sides of both
    limits, a partial unit and tile, special values in the rows of a tile
    and of the rest, results into a fresh array and into out= (streamed)."""
    x = (rng.standard_normal((n, C)) * 5).astype(dtype)
    for r in (3, n - 2):                        # in a full tile, in the rest
        x[r, :] = -np.inf
        x[r + 1, 0] = np.inf
        x[r - 1, C - 1] = np.nan
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        want = {fl.logsumexp: sp.logsumexp(x64, axis=1),
                fl.softmax: sp.softmax(x64, axis=1), fl.log_softmax: sp.log_softmax(x64, axis=1)}
        for fn, w in want.items():
            outs = [fn(x, axis=1)]
            if fn is not fl.logsumexp:
                o = np.full_like(x, 7.0)
                assert fn(x, axis=1, out=o) is o
                outs.append(o)
            for got in outs:
                assert got.dtype == dtype
                same = np.isfinite(w)
                np.testing.assert_allclose(got[same], w[same], *tol(dtype))
                np.testing.assert_array_equal(np.isnan(got), np.isnan(w))
                np.testing.assert_array_equal(got[np.isinf(w)], w[np.isinf(w)])


@pytest.mark.parametrize("C", [7, 8, 9, 15, 16, 17, 20, 21, 31, 32, 33, 40, 47, 48, 49, 63, 64,
                               65, 100, 127, 128, 129, 200, 255, 256])
def test_short_float_rows_with_special_values(C, rng):
    """float32 rows of 48 to 255 values take fastmath's short lane sum on
    AVX-512 (its last step is the row's last 16 values again, the ones
    already summed added as 0), rows below (planes up to 31 classes, then
    the plain exp loop) and from 256 other loops: both sides of every limit,
    special values in the re-read tail and before it;
    the logsumexp against SciPy in float64, cross-entropy against torch and
    the same bits with and without its gradient."""
    x = (rng.standard_normal((40, C)) * 5).astype(np.float32)
    x[2, :] = -np.inf                         # a row of -inf
    x[3, C - 1] = np.inf                      # +inf in the last values
    x[4, max(C - 17, 0)] = np.inf             # +inf just before them
    x[5, C - 8] = np.nan
    x[6, C - 16:] = -np.inf                   # the re-read values all -inf
    x[7, :] = 80.0                            # large and equal: sum C * 1
    x[8, C - 20:] = 30.0                      # the max in both parts
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        want = {fl.logsumexp: sp.logsumexp(x64, axis=1),
                fl.softmax: sp.softmax(x64, axis=1), fl.log_softmax: sp.log_softmax(x64, axis=1)}
        for fn, w in want.items():
            got = fn(x, axis=1)
            same = np.isfinite(w)
            np.testing.assert_allclose(got[same], w[same], *tol(np.float32))
            np.testing.assert_array_equal(np.isnan(got), np.isnan(w))
            np.testing.assert_array_equal(got[np.isinf(w)], w[np.isinf(w)])
    xf = np.nan_to_num(x, nan=0.0, posinf=40.0, neginf=-40.0)
    t = rng.integers(0, C, 40)
    loss = fl.cross_entropy(xf, t, reduction="none")
    want_ce = torch.nn.functional.cross_entropy(torch.from_numpy(xf), torch.from_numpy(t),
                                                reduction="none").numpy()
    np.testing.assert_allclose(loss, want_ce, *tol(np.float32))
    loss_g, g = fl.cross_entropy(xf, t, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss_g, loss)
    xt = torch.from_numpy(xf).requires_grad_()
    torch.nn.functional.cross_entropy(xt, torch.from_numpy(t), reduction="sum").backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_large_values_float32_no_overflow():
    x = np.array([[1e4, 1e4 - 1, -1e4]], np.float32)
    np.testing.assert_allclose(fl.logsumexp(x, axis=1), sp.logsumexp(x.astype(np.float64), axis=1),
                               1e-6)


def test_empty_and_scalar():
    assert fl.logsumexp(np.zeros((3, 0)), axis=1).shape == (3,)
    assert np.all(fl.logsumexp(np.zeros((3, 0)), axis=1) == -np.inf)
    assert fl.logsumexp(np.zeros((0, 4)), axis=1).shape == (0,)
    assert fl.softmax(np.zeros((0, 4)), axis=1).shape == (0, 4)
    r = fl.logsumexp(np.float32(2.0))
    assert isinstance(r, np.float32) and r == 2.0


def test_integer_and_float16_inputs():
    assert fl.logsumexp(np.array([1, 2, 3])).dtype == np.float64
    r = fl.softmax(np.array([1.0, 2.0], np.float16))
    assert r.dtype == np.float32


def test_non_contiguous_input(rng):
    x = rng.standard_normal((6, 10))
    for v in (x[:, ::2], x[::-1], x.T, np.asfortranarray(x)):
        np.testing.assert_allclose(fl.logsumexp(v, axis=1), sp.logsumexp(v, axis=1), 1e-12)


@pytest.mark.parametrize("shape,axis",
                         [((4099, 37), 1), ((3, 7, 5000), 1), ((20000, 5), 1), ((2, 3000), 0)])
def test_threads_bit_identical(shape, axis, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    for f in (fl.logsumexp, fl.softmax, fl.log_softmax):
        a = f(x, axis=axis, n_threads=1)
        for nt in (2, 3, 7):
            np.testing.assert_array_equal(a, f(x, axis=axis, n_threads=nt))


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                  elements=st.floats(-50, 50)), st.floats(-100, 100))
def test_log_softmax_shift_invariance(x, c):
    axis = x.ndim - 1
    np.testing.assert_allclose(fl.log_softmax(x + c, axis=axis), fl.log_softmax(x, axis=axis),
                               rtol=1e-9, atol=1e-9)
    s = fl.softmax(x, axis=axis)
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-12)


def test_axis_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        fl.logsumexp(x, axis=2)
    with pytest.raises(ValueError, match="repeated axis"):
        fl.logsumexp(x, axis=(0, 0))
    with pytest.raises(TypeError, match="axis must be an int"):
        fl.softmax(x, axis=1.5)
    with pytest.raises(TypeError, match="a must be a real numeric array"):
        fl.logsumexp(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        fl.softmax(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="n_threads must be a non-zero"):
        fl.logsumexp(x, n_threads=0)


@pytest.mark.parametrize("offset", [1e2, 1e3, 1e4])
@pytest.mark.parametrize("shape, axis", [((64, 4), 1), ((64, 300), 1), ((2, 5, 40), 1),
                                         ((3, 7, 16, 16), 1), ((4, 1000), None)])
def test_log_softmax_float32_keeps_digits_at_large_offsets(offset, shape, axis):
    """(x - max) - log(sum): a float32 x - lse would round lse to the offset first
    (a row of four 1e4 would give -1.38671875 instead of -log 4 = -1.3862944)."""
    rng = np.random.default_rng(3)
    x = (offset + rng.standard_normal(shape)).astype(np.float32)
    got = fl.log_softmax(x, axis=axis)
    want = sp.log_softmax(x.astype(np.float64), axis=axis)
    assert got.dtype == np.float32
    # a few float32 ulp of max(|value|, 1): torch's float32 gets 2.3e-7 at an
    # offset of 1e3, x - lse got 3e-5
    scale = np.maximum(np.abs(want), 1.0)
    assert np.max(np.abs(got - want) / scale) < 8 * np.finfo(np.float32).eps
    four = np.full((1, 4), np.float32(offset))
    np.testing.assert_allclose(fl.log_softmax(four, axis=1), -np.log(4.0), rtol=2e-7)


# Outputs of 1 MiB and more: the rows are finished in an L1 buffer and
# streamed out when the output array is warm (out=, or an array from the
# gradient cache that the caller dropped); every variant gives the values of
# the reference, the same bits as the small-output path row by row.
BIG_SHAPES = [(600, 1000), (70, 4096), (40, 5000), (3, 300, 400)]


@pytest.mark.parametrize("shape", BIG_SHAPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_outputs_out_and_reuse(shape, fn, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    f = getattr(fl, fn)
    want = getattr(sp, fn)(x.astype(np.float64), axis=-1)
    fresh = f(x, axis=-1)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(fresh, want, rtol=rtol, atol=atol)
    # the same rows through the small-output path: identical bits
    np.testing.assert_array_equal(f(x[:2], axis=-1), fresh[:2])
    out = np.full(shape, np.nan, dtype=dtype)
    assert f(x, axis=-1, out=out) is out
    np.testing.assert_array_equal(out, fresh)
    del fresh
    for _ in range(3):  # dropped results come back from the cache: still right
        np.testing.assert_array_equal(f(x, axis=-1), out)
    held = f(x, axis=-1)
    other = f(x[::-1].copy(), axis=-1)  # held is referenced: not reused
    np.testing.assert_array_equal(held, out)
    np.testing.assert_array_equal(other, out[::-1])
    # out= with a transposed reduction (non-adjacent axes copy x once)
    if x.ndim == 3:
        out2 = np.empty_like(x)
        assert f(x, axis=(0, 2), out=out2) is out2
        np.testing.assert_allclose(out2, getattr(sp, fn)(x.astype(np.float64), axis=(0, 2)),
                                   rtol=rtol, atol=atol)


def test_out_checked():
    x = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="out must have shape"):
        fl.softmax(x, axis=-1, out=np.empty((4, 4), np.float32))
    with pytest.raises(ValueError, match="out must have dtype float32"):
        fl.log_softmax(x, axis=-1, out=np.empty((4, 5), np.float64))
    with pytest.raises(ValueError, match="out shares memory with x"):
        fl.softmax(x, axis=-1, out=x)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        fl.softmax(x, axis=-1, out=[0.0] * 20)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        fl.softmax(x, axis=-1, out=np.empty((5, 4), np.float32).T)
    small = np.empty((4, 5), np.float32)
    assert fl.softmax(x, axis=-1, out=small) is small
    np.testing.assert_array_equal(small, np.full((4, 5), 0.2, np.float32))
