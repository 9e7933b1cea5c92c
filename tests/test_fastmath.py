"""Accuracy of the vectorized exp/log of src/fastmath.h against libm (via NumPy)."""

import numpy as np
import pytest

from fastloss._dispatch import TARGET, kernels

_k = kernels("probe")


def ulp_distance(a, b):
    """|a - b| in units in the last place (NaN == NaN, equal infinities == 0)."""
    a = np.asarray(a)
    b = np.asarray(b)
    ib = np.dtype(np.int32 if a.dtype == np.float32 else np.int64)
    ia, ja = a.view(ib).astype(np.int64), b.view(ib).astype(np.int64)
    lim = np.int64(np.iinfo(ib).min)
    ia = np.where(ia < 0, lim - ia, ia)
    ja = np.where(ja < 0, lim - ja, ja)
    with np.errstate(over="ignore"):
        d = np.abs((ia - ja).astype(np.float64))  # exact in int64 for nearby values
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, d)


def _float32_sample(rng):
    """2^23 random float32 bit patterns (every exponent, both signs, specials)
    plus every float32 in [0.5, 2) and around the exp cut-offs, in chunks."""
    yield rng.integers(0, 2**32, size=1 << 23, dtype=np.uint64).astype(np.uint32).view(np.float32)
    lo = np.float32(0.5).view(np.uint32)
    hi = np.float32(2.0).view(np.uint32)
    yield np.arange(lo, hi, dtype=np.uint32).view(np.float32)
    for edge in (-103.9, -87.4, 88.3):
        c = np.float32(edge).view(np.uint32)
        yield np.arange(c - (1 << 18), c + (1 << 18), dtype=np.uint32).view(np.float32)


def _eval(x, func):
    out = np.empty_like(x)
    _k.fastmath_eval(x, out, func)
    return out


@pytest.mark.parametrize("func,name,ref", [(0, "exp", np.exp), (1, "log", np.log)])
def test_float32_ulp(func, name, ref, rng):
    worst = 0.0
    with np.errstate(all="ignore"):
        for x in _float32_sample(rng):
            got = _eval(x, func)
            want = ref(x.astype(np.float64)).astype(np.float32)
            if func == 0:
                # results below the smallest normal may be flushed: compare absolutely
                tiny = np.abs(want) < 1.01 * np.finfo(np.float32).tiny
                assert np.all(np.abs(got[tiny] - want[tiny]) <= 1.01 * np.finfo(np.float32).tiny)
                d = ulp_distance(got[~tiny], want[~tiny])
            else:
                d = ulp_distance(got, want)
            worst = max(worst, float(d.max())) if d.size else worst
    assert worst <= 1, f"fl_{name}f worst error {worst} ulp"


def test_exp_lo(rng):
    """The exp of shifted arguments (softmax, softplus tails) equals fl_exp
    bit for bit wherever 2^n is a normal number (x <= 88.37 in float,
    709.43 in double) and is +inf above; -inf -> 0, NaN -> NaN."""
    with np.errstate(all="ignore"):
        for x in _float32_sample(rng):
            got, full = _eval(x, 4), _eval(x, 0)
            below = ~(x > 88.37)                      # NaN included
            np.testing.assert_array_equal(got[below], full[below])
            assert np.all(got[x > 88.38] == np.inf)
        x = np.concatenate([rng.uniform(-745.0, 709.43, 1 << 20), [709.44, 710.0, 1e300]])
        got, full = _eval(x, 4), _eval(x, 0)
        np.testing.assert_array_equal(got[:-3], full[:-3])
        assert np.all(got[-3:] == np.inf)
        for dt in (np.float32, np.float64):
            special = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0], dt)
            np.testing.assert_array_equal(_eval(special, 4), [0.0, np.inf, np.nan, 1.0, 1.0])


def test_exp_lo_sixteen_lanes(rng):
    """The kernels' vector exp (fastmath.h's fl_expf_lo16: vscalefps on
    AVX-512 builds; fl_expf_lo8 on AVX2 builds; fl_expf_lo itself
    elsewhere) equals fl_expf_lo bit for bit: everywhere with the +inf
    fix-up above 88.37, and wherever x <= 88.37 or NaN without it (a finite
    p 2^128 there instead of +inf); a length that leaves a tail."""
    with np.errstate(all="ignore"):
        for x in _float32_sample(rng):
            x = np.concatenate([x, x[:21]])
            want = _eval(x, 4)
            out = np.empty_like(x)
            _k.exp16_eval(x, out, True)
            np.testing.assert_array_equal(out, want)
            _k.exp16_eval(x, out, False)
            below = ~(x > 88.37)
            np.testing.assert_array_equal(out[below], want[below])
            assert np.all(out[x > 88.38] > 2e38)


def test_log_sixteen_lanes(rng):
    """The kernels' vector log (fastmath.h's fl_logf16 on AVX-512 builds,
    fl_logf8 on AVX2 builds: intrinsics, lanes outside the normal positive
    range by fl_logf) equals fl_logf bit for bit: random bit patterns, every float in [0.5, 2),
    sums of exponentials in [1, 16], specials and subnormals mixed into
    vectors of ordinary values; a length that leaves a tail."""
    special = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, 1.1754942e-38,
                        1.17549435e-38, 3.4028235e38, 1.0, 2.0], np.float32)
    sums = rng.uniform(1.0, 16.0, 1 << 20).astype(np.float32)
    mixed = sums[: 16 * 64].copy()
    mixed[rng.integers(0, mixed.size, 40)] = rng.choice(special, 40)
    with np.errstate(all="ignore"):
        for x in (*_float32_sample(rng), sums, mixed, special):
            x = np.concatenate([x, x[:21]])
            out = np.empty_like(x)
            _k.log16_eval(x, out)
            np.testing.assert_array_equal(out, _eval(x, 1))


def test_exp_neg(rng):
    """The exp of arguments <= 0 (the softplus and sigmoid tails) equals
    fl_exp bit for bit there; -inf -> 0, NaN -> NaN."""
    with np.errstate(all="ignore"):
        for x in _float32_sample(rng):
            x = x[~(x > 0)]
            np.testing.assert_array_equal(_eval(x, 5), _eval(x, 0))
        x = np.concatenate([rng.uniform(-800.0, 0.0, 1 << 20),
                            -np.abs(rng.standard_normal(1 << 16))])
        np.testing.assert_array_equal(_eval(x, 5), _eval(x, 0))
        for dt in (np.float32, np.float64):
            special = np.array([-np.inf, np.nan, 0.0, -0.0, -1e30], dt)
            np.testing.assert_array_equal(_eval(special, 5), [0.0, np.nan, 1.0, 1.0, 0.0])


def test_exp_neg_in_two_halves(rng):
    """fl_expf_neg_scale then fl_expf_poly (the float32 softplus losses' two
    passes) equal fl_expf_neg bit for bit: the flush to 0 below -87.34, -inf
    and -1e30 (whose reduction would be NaN without the clamp), NaN."""
    with np.errstate(all="ignore"):
        for x in _float32_sample(rng):
            x = x[~(x > 0)]
            np.testing.assert_array_equal(_eval(x, 6), _eval(x, 5))
        x = np.concatenate([np.linspace(-89.0, -86.0, 1 << 16), [-np.inf, -1e30, -88.0, np.nan]])
        x = x.astype(np.float32)
        np.testing.assert_array_equal(_eval(x, 6), _eval(x, 5))
        np.testing.assert_array_equal(_eval(x[-4:], 6), [0.0, 0.0, 0.0, np.nan])


def test_float32_log1p_unit(rng):
    """The softplus tail log(1 + e), e = exp(-|x|) in [0, 1]: every float32 in
    [1/4, 1] and 2^22 random bit patterns below 1/4 within 1 ulp (2 ulp on
    the baseline target: without FMA the polynomial's last multiply-add
    rounds twice); 0 and NaN pass through."""
    lo = np.float32(0.25).view(np.uint32)
    hi = np.float32(1.0).view(np.uint32)
    e = np.concatenate([
        np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32),
        rng.integers(0, lo, size=1 << 22, dtype=np.uint32).view(np.float32),
    ])
    got = _eval(e, 3)
    want = np.log1p(e.astype(np.float64)).astype(np.float32)
    assert ulp_distance(got, want).max() <= (2 if TARGET == "baseline" else 1)
    special = np.array([0.0, np.nan], np.float32)
    np.testing.assert_array_equal(_eval(special, 3), special)


@pytest.mark.parametrize("func,ref", [(0, np.exp), (1, np.log), (2, np.log1p)])
def test_float64_random_bits(func, ref, rng):
    bits = rng.integers(0, 2**63, size=1 << 21, dtype=np.int64, endpoint=False)
    x = bits.view(np.float64)
    if func == 0:
        x = np.concatenate([np.fmod(x, 760.0), rng.uniform(-745, 709, 1 << 20)])
    else:
        x = np.concatenate([np.abs(x), rng.uniform(0, 10, 1 << 20)])
    x = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        got, want = _eval(x, func), ref(x)
    # exp flushes would-be-subnormal results (and their neighbours at the
    # cut-off) to 0: compare those absolutely
    tiny = np.abs(want) < 1.01 * np.finfo(np.float64).tiny
    assert np.all(np.abs(got[tiny] - want[tiny]) <= 1.01 * np.finfo(np.float64).tiny)
    assert ulp_distance(got[~tiny], want[~tiny]).max() <= 2


def test_special_values():
    with np.errstate(all="ignore"):
        for dt in (np.float32, np.float64):
            x = np.array([-np.inf, np.inf, np.nan, 0.0, -1.0, 1e-40, 1000.0, -1000.0], dt)
            got = _eval(x, 0)
            assert ulp_distance(got, np.exp(x)).max() <= 2
            np.testing.assert_array_equal(got[:3], np.exp(x[:3]))
            got = _eval(x, 1)
            np.testing.assert_allclose(got, np.log(x), rtol=2 * np.finfo(dt).eps)
            y = np.array([-1.0, 0.0, 1e-30, -0.5, np.inf, np.nan], dt)
            np.testing.assert_allclose(_eval(y, 2), np.log1p(y), rtol=2 * np.finfo(dt).eps)
