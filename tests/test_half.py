"""float16 and bfloat16 inputs, read in their own width.

The contract: a half-precision call computes exactly what the float32
kernel computes on the same values widened to float32 (the widening is
exact), so the loss is bit-identical to the float32 call on the widened
arrays and comes back in float32; the gradient is that float32 gradient
rounded to nearest even into the input's dtype (NumPy's and ml_dtypes'
``astype`` round the same way), or the float32 gradient itself with
``grad_dtype=np.float32``.
"""

import itertools

import numpy as np
import pytest

import fastloss
from fastloss import _validate as V
from fastloss import lse as lse_module
from fastloss.classification import _entropy
from tests._half import HALF, HALF_IDS, ml_dtypes
from tests._registry import REGISTRY
from tests._same import same

# Penalties and GAN losses take no target, the rest (input, target); all of
# fastloss.elementwise reads halves natively, cross_entropy its wide rows.
ELEMENTWISE = sorted(fastloss.elementwise.__all__)
CLASSIFICATION = ["cross_entropy", "nll_loss"]
# the same results as the float32 call on the widened values, whether the kernel
# widens per block (segmentation, triplet and multi-margin rows) or a copy does
WIDENED = (sorted(set(fastloss.classification.__all__) - set(CLASSIFICATION))
           + sorted(fastloss.embedding.__all__) + sorted(fastloss.detection.__all__)
           + sorted(fastloss.lse.__all__)
           + sorted(fastloss.segmentation.__all__))
DIMS = {"E": 2, "a": 131, "b": 257, "c": 1}          # 33667 elements: three work units
ROW_DIMS = {"N": 263, "C": 67}


def _same(a, b):
    """Bit for bit (tests/_same.py), a NumPy scalar and a 0-d array alike."""
    same(a, b, check_type=False)


def _flag_sets(entry, most=8):
    """The option combinations of an entry, at most ``most`` (evenly spaced: the
    half path is one code path whatever the options, the float32 kernels have
    their own tests over all of them)."""
    keys = sorted(entry.flags)
    sets = [dict(zip(keys, v)) for v in itertools.product(*(entry.flags[k] for k in keys))]
    step = -(-len(sets) // most)
    return sets[::step]


def _to_half(args, hd):
    """Positional float32 arrays as ``hd`` (the data and targets), and their widened twins."""
    half, wide = [], []
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype == np.float32:
            h = a.astype(hd)
            half.append(h)
            wide.append(h.astype(np.float32))
        else:
            half.append(a)
            wide.append(a)
    return half, wide


def _grads(g):
    return g if isinstance(g, tuple) else (g,)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE + CLASSIFICATION + WIDENED)
def test_half_is_float32_kernel_on_widened_values(name, hd):
    entry = REGISTRY[name]
    f = getattr(fastloss, name)
    rng = np.random.default_rng(7)
    if name not in ELEMENTWISE:
        dims = dict(entry.big_dims)        # several work units
    else:
        dims = ROW_DIMS if "N" in entry.bad_dims else DIMS
    reductions = entry.reductions or (None,)
    for flags in _flag_sets(entry):
        for red in reductions:
            args, kw = entry.build(rng, np.dtype(np.float32), dict(dims), flags)
            if red is not None:
                kw["reduction"] = red
            half, wide = _to_half(args, hd)
            if not entry.grad:
                out = f(*half, **kw)
                _same(out, f(*wide, **kw))
                continue
            ref, ref_g = f(*wide, **kw, return_grad=True)
            loss, g = f(*half, **kw, return_grad=True)
            _same(loss, ref)
            for part in (loss if isinstance(loss, tuple) else (loss,)):
                assert np.asarray(part).dtype == np.float32
            floats = [a for a in half if isinstance(a, np.ndarray) and a.dtype.kind != "i"]
            for gh, gw, a in zip(_grads(g), _grads(ref_g), floats):
                assert gh.dtype == a.dtype
                _same(gh, gw.astype(a.dtype))
            if entry.grad_out:
                loss32, g32 = f(*half, **kw, return_grad=True, grad_dtype=np.float32)
                _same(loss32, ref)
                _same(g32, ref_g)
                _same(f(*half, **kw), ref)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("n", [1, 511, 513, 70001])
def test_half_float32_grad_out(hd, n, rng):
    """A float32 gradient of half operands written into the caller's array
    (streamed stores under conftest's fixture, a chunk at a time through an
    L1 buffer) is the float32 kernel's, bit for bit, also in an array that
    does not start on a cache line and at 1 and 2 threads."""
    x = rng.standard_normal(n).astype(hd)
    t = rng.standard_normal(n).astype(hd)
    buf = np.full(n + 5, np.nan, np.float32)
    for fn in (fastloss.mse_loss, fastloss.huber_loss, fastloss.l1_loss):
        ref, ref_g = fn(x.astype(np.float32), t.astype(np.float32), return_grad=True)
        for off, nt in ((0, 1), (1, 2), (5, 2)):
            out = buf[off:off + n]
            loss, g = fn(x, t, return_grad=True, grad_out=out, grad_dtype=np.float32,
                         n_threads=nt)
            assert np.shares_memory(g, out)
            _same(loss, ref)
            _same(g, ref_g)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
def test_half_special_values(hd):
    info_max = float(np.finfo(np.float16).max) if hd == np.float16 else 3.3895313892515355e38
    tiny_sub = 6e-8 if hd == np.float16 else 1e-40           # subnormal in both formats
    vals = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info_max, -info_max, tiny_sub,
                     -tiny_sub, 1.0, -2.5, 1e-3], dtype=np.float32)
    x = np.resize(vals, 4099).astype(hd)
    t = np.roll(np.resize(vals, 4099), 5).astype(hd)
    for fn, tt in ((fastloss.mse_loss, t), (fastloss.smooth_l1_loss, t),
                   (fastloss.l1_loss, t), (fastloss.huber_loss, t),
                   (fastloss.binary_cross_entropy_with_logits,
                    (np.arange(4099) % 2).astype(hd))):
        for red in ("none", "sum"):
            ref, ref_g = fn(x.astype(np.float32), tt.astype(np.float32), reduction=red,
                            return_grad=True)
            loss, g = fn(x, tt, reduction=red, return_grad=True)
            _same(loss, ref)
            with np.errstate(over="ignore"):  # gradients beyond the half range round to inf
                _same(g, ref_g.astype(hd))


def test_bfloat16_rounding_is_nearest_even():
    if ml_dtypes is None:
        pytest.skip("ml_dtypes is not installed: no bfloat16 dtype to test")
    bf = np.dtype(ml_dtypes.bfloat16)
    ulp = 2.0 ** -7                                   # bfloat16's spacing in [1, 2)
    # d/dx of sum (x - t)^2 at x = 0 is -2 t: with t = -h/2 the float32
    # gradient is h exactly, and h sits halfway between two bfloat16 values
    h = np.array([1 + ulp / 2, 1 + 1.5 * ulp, -(1 + ulp / 2), np.finfo(np.float32).max],
                 np.float32)
    _, g = fastloss.mse_loss(np.zeros(4, bf), -h / 2, reduction="sum", return_grad=True)
    assert g.dtype == bf
    # ties to the even neighbour; above the largest bfloat16 plus half a spacing: inf
    np.testing.assert_array_equal(g.astype(np.float32),
                                  np.array([1.0, 1 + 2 * ulp, -1.0, np.inf], np.float32))


def test_bfloat16_rounding_in_vector_steps():
    """The narrowing of whole vectors (16 elements a step on AVX2) rounds as
    ml_dtypes does: ties to even, carries into the exponent, overflow to
    inf, NaN kept NaN, at every position of an array with a scalar tail."""
    if ml_dtypes is None:
        pytest.skip("ml_dtypes is not installed: no bfloat16 dtype to test")
    bf = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(11)
    n = 4099
    # float32 bit patterns of both signs, normal and of exponent >= -124 (so
    # that h / 2 below is exact), with the low 16 bits at and beside a tie
    bits = rng.integers(0x01800000, 0x7f800000, n, dtype=np.uint32)
    low = rng.choice(np.array([0x8000, 0x7fff, 0x8001, 0x0000, 0xffff], np.uint32), n)
    bits = (bits & 0xffff0000) | np.where(rng.random(n) < 0.6, low, bits & 0xffff)
    bits |= rng.integers(0, 2, n, dtype=np.uint32) << 31
    h = bits.view(np.float32).copy()
    h[rng.choice(n, 40, replace=False)] = np.finfo(np.float32).max   # rounds to inf
    nan_at = rng.choice(n, 40, replace=False)
    h[nan_at] = np.float32(np.nan)
    # d/dx of sum (x - t)^2 at x = 0 is -2 t = h exactly
    _, g = fastloss.mse_loss(np.zeros(n, bf), -h / 2, reduction="sum", return_grad=True)
    assert g.dtype == bf
    got = g.astype(np.float32)
    finite = ~np.isnan(h)
    with np.errstate(over="ignore"):
        want = h[finite].astype(bf).astype(np.float32)
    np.testing.assert_array_equal(got[finite], want)
    assert np.isnan(got[nan_at]).all()


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
def test_half_mixed_operands_and_grad_out(hd):
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal(20000).astype(np.float32)
    t64 = rng.standard_normal(20000)
    x = x32.astype(hd)
    # a float64 target beside half data is read as float32 (the computation dtype)
    ref, ref_g = fastloss.huber_loss(x.astype(np.float32), t64.astype(np.float32),
                                     return_grad=True)
    loss, g = fastloss.huber_loss(x, t64, return_grad=True)
    _same(loss, ref)
    _same(g, ref_g.astype(hd))
    # a float32 target is read as it is
    t32 = t64.astype(np.float32)
    _same(fastloss.huber_loss(x, t32), fastloss.huber_loss(x.astype(np.float32), t32))
    # grad_out may be the input's dtype or float32
    for gdt in (hd, np.float32):
        out = np.empty(x.shape, gdt)
        loss, g = fastloss.huber_loss(x, t32, return_grad=True, grad_out=out)
        assert g is out
        _same(g, fastloss.huber_loss(x.astype(np.float32), t32,
                                     return_grad=True)[1].astype(gdt))
    with pytest.raises(ValueError, match="grad_out must have dtype"):
        fastloss.huber_loss(x, t32, return_grad=True, grad_out=np.empty(x.shape))
    with pytest.raises(ValueError, match="grad_dtype must be None or"):
        fastloss.huber_loss(x, t32, return_grad=True, grad_dtype=np.float64)
    with pytest.raises(ValueError, match="grad_dtype must be None or float32"):
        fastloss.huber_loss(x32, t32, return_grad=True, grad_dtype=hd)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
def test_half_threads_bit_identical(hd):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(200003).astype(hd)
    t = rng.random(200003).astype(hd)
    one = fastloss.binary_cross_entropy_with_logits(x, t, return_grad=True, n_threads=1)
    two = fastloss.binary_cross_entropy_with_logits(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
def test_half_large_arrays_and_bad_labels(hd):
    """Arrays past the size from which the element-wise units request lines
    ahead (4 MiB of operand) give the float32 kernel's bits at 1 and 2
    threads; a bad label far into the array is reported at its position, as
    the float32 call reports it.  (bfloat16 data and targets of the
    arithmetic-only losses go through a value loop that reads them
    directly, float16 ones through the widening pass.)"""
    rng = np.random.default_rng(11)
    n = (1 << 21) + 3
    x = rng.standard_normal(n).astype(hd)
    t = rng.standard_normal(n).astype(hd)
    xw, tw = x.astype(np.float32), t.astype(np.float32)
    for fn in (fastloss.mse_loss, fastloss.l1_loss, fastloss.smooth_l1_loss,
               fastloss.huber_loss, fastloss.mean_bias_error):
        ref, ref_g = fn(xw, tw, return_grad=True)
        for nt in (1, 2):
            loss, g = fn(x, t, return_grad=True, n_threads=nt)
            _same(loss, ref)
            _same(g, ref_g.astype(hd))
    lab = np.where(rng.random(70001) < 0.5, -1.0, 1.0).astype(hd)
    lab[50001] = 0.5
    for squared in (False, True):
        with pytest.raises(ValueError) as ref_err:
            fastloss.hinge_loss(xw[:70001], lab.astype(np.float32), squared=squared)
        with pytest.raises(ValueError, match="position 50001") as err:
            fastloss.hinge_loss(x[:70001], lab, squared=squared, return_grad=True)
        assert str(err.value) == str(ref_err.value)


def test_half_bad_dtypes_rejected():
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        fastloss.mse_loss(np.zeros(4, np.complex64), np.zeros(4))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        fastloss.mse_loss(np.zeros(4, np.dtype("V2")), np.zeros(4))
    with pytest.raises(TypeError, match="target must be a real numeric array"):
        fastloss.mse_loss(np.zeros(4, np.float16), np.zeros(4, np.complex64))


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("name,target", [("mse_loss", "real"), ("l1_loss", "real"),
                                         ("huber_loss", "real"), ("log_cosh_loss", "real"),
                                         ("binary_cross_entropy", "unit"),
                                         ("binary_cross_entropy_with_logits", "unit"),
                                         ("soft_margin_loss", "sign")])
def test_half_prepared_call(hd, name, target):
    """Half inputs and targets of one dtype take the prepared call (no Python
    layer): the same bits and dtypes as the full path (forced here by a NumPy
    integer n_threads, which the prepared call declines); a domain error is
    still the full path's message."""
    from fastloss.elementwise import _core as E

    rng = np.random.default_rng(5)
    x = rng.uniform(0.05, 0.95, 3000) if target == "unit" and name == "binary_cross_entropy" \
        else rng.standard_normal(3000) * 3
    t = {"real": rng.standard_normal(3000), "unit": rng.uniform(0, 1, 3000),
         "sign": np.sign(rng.standard_normal(3000))}[target]
    x, t = x.astype(hd), t.astype(hd)
    f = getattr(fastloss, name)
    for red in ("mean", "sum", "none"):
        for rg in (False, True):
            fast = f(x, t, reduction=red, return_grad=rg)
            full = f(x, t, reduction=red, return_grad=rg, n_threads=np.int64(1))
            _same(fast, full)
    lid = {"mse_loss": E._MSE, "l1_loss": E._L1, "huber_loss": E._HUBER,
           "log_cosh_loss": E._LOG_COSH, "binary_cross_entropy": E._BCE,
           "binary_cross_entropy_with_logits": E._BCE_LOGITS,
           "soft_margin_loss": E._SOFT_MARGIN}[name]
    a = 1.0 if name == "huber_loss" else 0.0
    assert E._k.pointwise_call(lid, x, t, "mean", True, None, a) is not None
    if name == "binary_cross_entropy":
        bad = x.copy()
        bad[17] = 1.5
        with pytest.raises(ValueError, match="flat position 17"):
            f(bad, t)


def test_is_half():
    assert V.is_half(np.float16)
    assert not V.is_half(np.float32)
    assert not V.is_half(np.dtype("V2"))
    if ml_dtypes is not None:
        assert V.is_half(ml_dtypes.bfloat16)
        assert not V.is_half(ml_dtypes.float8_e4m3fn)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [32, 1000, 4096])
def test_half_cross_entropy_wide_rows(hd, C):
    """Rows of 32 to 4096 classes are read in their own width (ce_index_half)."""
    rng = np.random.default_rng(C)
    N = 700
    x = (rng.standard_normal((N, C)) * 4).astype(hd)
    x[3, 5] = np.inf if C > 32 else x[3, 5]        # a row whose loss is NaN, as torch
    t = rng.integers(0, C, N).astype(np.int32)
    t[::17] = -100
    w = rng.uniform(0.5, 2.0, C)
    sw = rng.uniform(0.1, 2.0, N)
    for kw in ({}, {"reduction": "none"}, {"reduction": "sum", "weight": w},
               {"label_smoothing": 0.2, "weight": w, "sample_weight": sw}):
        ref, ref_g = fastloss.cross_entropy(x.astype(np.float32), t, return_grad=True, **kw)
        loss, g = fastloss.cross_entropy(x, t, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        _same(fastloss.cross_entropy(x, t, **kw), ref)
        loss32, g32 = fastloss.cross_entropy(x, t, return_grad=True, grad_dtype=np.float32, **kw)
        _same(g32, ref_g)
        for gdt in (hd, np.float32):
            out = np.full(x.shape, 7, gdt)
            _, go = fastloss.cross_entropy(x, t, return_grad=True, grad_out=out, **kw)
            assert go is out
            _same(go, ref_g.astype(gdt))
    one = fastloss.cross_entropy(x, t, return_grad=True, n_threads=1)
    two = fastloss.cross_entropy(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    bad = t.copy()
    bad[11] = C
    with pytest.raises(ValueError, match=f"target holds class index {C} at flat position 11"):
        fastloss.cross_entropy(x, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [32, 1000, 5000])
def test_half_nll_wide_rows(hd, C):
    """NLL on rows of any width from 32 classes reads one value a row in its own
    width (ce_index_half): the float32 results on the widened values, with
    ignored rows, class and sample weights, 'none', grad_out of either dtype,
    any thread count and the same label errors."""
    rng = np.random.default_rng(C + 7)
    N = 900
    x = (-np.abs(rng.standard_normal((N, C))) * 4).astype(hd)
    x[4, :] = -np.inf                                # -inf log-probabilities
    t = rng.integers(0, C, N).astype(np.int32)
    t[::19] = -100
    w = rng.uniform(0.5, 2.0, C)
    sw = rng.uniform(0.1, 2.0, N)
    assert _entropy._half_native(x, False, True)
    for kw in ({}, {"reduction": "none"}, {"reduction": "sum", "weight": w},
               {"weight": w, "sample_weight": sw}):
        ref, ref_g = fastloss.nll_loss(x.astype(np.float32), t, return_grad=True, **kw)
        loss, g = fastloss.nll_loss(x, t, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        _same(fastloss.nll_loss(x, t, **kw), ref)
        for gdt in (hd, np.float32):
            out = np.full(x.shape, 7, gdt)
            _, go = fastloss.nll_loss(x, t, return_grad=True, grad_out=out, **kw)
            assert go is out
            _same(go, ref_g.astype(gdt))
    one = fastloss.nll_loss(x, t, return_grad=True, n_threads=1)
    two = fastloss.nll_loss(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    bad = t.copy()
    bad[6] = C
    with pytest.raises(ValueError, match=f"target holds class index {C} at flat position 6"):
        fastloss.nll_loss(x, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("xs", [(700, 10), (300, 1000), (40, 16384), (3, 16385), (2, 4, 37, 29),
                                (2, 33, 40), (7,)], ids=str)
def test_half_softmax_focal(hd, xs):
    """softmax_focal_loss reads float16 / bfloat16 logits in their own width where
    a work unit fits the L1 block (rows of up to 16384 classes, maps of up to
    32), through a widened copy otherwise: the float32 results on the widened
    values for every option, gradient dtype, grad_out and thread count."""
    from fastloss import _dispatch

    rng = np.random.default_rng(sum(xs) + 3)
    C = xs[1] if len(xs) > 1 else xs[0]
    ts = (xs[0],) + xs[2:] if len(xs) > 1 else ()
    x = (rng.standard_normal(xs) * 3).astype(hd)
    t = np.asarray(rng.integers(0, C, ts)).astype(np.int16)
    if t.ndim:
        t.reshape(-1)[::11] = -100
    a = rng.uniform(0.2, 1.0, C)
    sw = rng.uniform(0.1, 2.0, ts)
    n, s = (1, 1) if len(xs) == 1 else (xs[0], int(np.prod(xs[2:], dtype=np.int64)))
    native = _dispatch.kernels("rowwise").focal_half_fits(n, C, s)
    assert native == (C <= (16384 if s == 1 and C >= 32 else 32))
    for kw in ({}, {"reduction": "none", "gamma": 0.5}, {"alpha": a, "reduction": "sum"},
               {"alpha": 0.25, "sample_weight": sw, "gamma": 3.0}):
        ref, ref_g = fastloss.softmax_focal_loss(x.astype(np.float32), t, return_grad=True,
                                                 **kw)
        loss, g = fastloss.softmax_focal_loss(x, t, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        _same(fastloss.softmax_focal_loss(x, t, **kw), ref)
        _, g32 = fastloss.softmax_focal_loss(x, t, return_grad=True, grad_dtype=np.float32,
                                             **kw)
        _same(g32, ref_g)
        out = np.full(x.shape, 7, hd)
        assert fastloss.softmax_focal_loss(x, t, return_grad=True, grad_out=out, **kw)[1] is out
        _same(out, ref_g.astype(hd))
    one = fastloss.softmax_focal_loss(x, t, return_grad=True, n_threads=1)
    two = fastloss.softmax_focal_loss(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    if t.ndim:
        bad = t.copy()
        bad.reshape(-1)[2] = C
        with pytest.raises(ValueError, match=f"target holds class index {C} at flat position 2"):
            fastloss.softmax_focal_loss(x, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("xs", [(700, 10), (300, 1000), (2, 4, 37, 29), (5, 16384), (3, 20000)])
def test_half_cross_entropy_probabilities(hd, xs):
    """Class probabilities beside float16 / bfloat16 logits: read in their
    dtype or as float32, the float32 kernel's results on the widened values
    (rows too long for a unit through a widened copy), any thread count."""
    rng = np.random.default_rng(len(xs) * xs[1])
    x = (3 * rng.standard_normal(xs)).astype(hd)
    t = np.moveaxis(rng.dirichlet(np.ones(xs[1]), size=(xs[0],) + xs[2:]), -1, 1)
    w = rng.uniform(0.5, 2.0, xs[1])
    sw = rng.uniform(0.1, 2.0, (xs[0],) + xs[2:])
    for tt in (t.astype(np.float32), t.astype(hd), t):
        t32 = tt.astype(np.float32)
        for kw in ({}, {"label_smoothing": 0.1, "reduction": "none"},
                   {"weight": w, "sample_weight": sw, "reduction": "sum"}):
            ref, ref_g = fastloss.cross_entropy(x.astype(np.float32), t32, return_grad=True, **kw)
            loss, g = fastloss.cross_entropy(x, tt, return_grad=True, **kw)
            _same(loss, ref)
            _same(g, ref_g.astype(hd))
            _same(fastloss.cross_entropy(x, tt, **kw), ref)
            _same(fastloss.cross_entropy(x, tt, return_grad=True, grad_dtype=np.float32, **kw)[1],
                  ref_g)
    one = fastloss.cross_entropy(x, t.astype(hd), return_grad=True, n_threads=1)
    two = fastloss.cross_entropy(x, t.astype(hd), return_grad=True, n_threads=2)
    _same(one, two)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
def test_half_cross_entropy_other_shapes(hd):
    """Narrow rows, very wide rows, NCHW and soft targets (read in their own width
    or through a widened copy): the same results."""
    rng = np.random.default_rng(11)
    cases = [((300, 10), (300,)), ((3, 5000), (3,)), ((2, 4, 9, 7), (2, 9, 7)), ((50,), ())]
    for xs, ts in cases:
        x = rng.standard_normal(xs).astype(hd)
        t = rng.integers(0, xs[0] if len(xs) == 1 else xs[1], ts)
        ref, ref_g = fastloss.cross_entropy(x.astype(np.float32), t, return_grad=True)
        loss, g = fastloss.cross_entropy(x, t, return_grad=True)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        out = np.empty(xs, hd)
        assert fastloss.cross_entropy(x, t, return_grad=True, grad_out=out)[1] is out
        _same(out, ref_g.astype(hd))
    x = rng.standard_normal((64, 40)).astype(hd)
    p = rng.dirichlet(np.ones(40), 64).astype(hd)
    ref, ref_g = fastloss.cross_entropy(x.astype(np.float32), p.astype(np.float32),
                                        return_grad=True)
    loss, g = fastloss.cross_entropy(x, p, return_grad=True)
    _same(loss, ref)
    _same(g, ref_g.astype(hd))


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("xs", [(1100, 10), (700, 2), (300, 31), (2, 4, 37, 29), (3, 32, 600),
                                (2, 33, 40), (7,), (1, 21, 1, 513)], ids=str)
def test_half_class_planes(hd, fn, xs):
    """Class-plane layouts (maps, narrow rows) of up to 32 classes are read in
    their own width (ce_index_half: each unit widened in L1), more classes
    through a widened copy: the float32 kernel's results on the widened
    values, bit for bit, for every option, gradient dtype, grad_out and
    thread count, and the same label errors."""
    rng = np.random.default_rng(sum(xs))
    f = getattr(fastloss, fn)
    C = xs[1] if len(xs) > 1 else xs[0]
    ts = (xs[0],) + xs[2:] if len(xs) > 1 else ()
    x = (rng.standard_normal(xs) * 4).astype(hd)
    if fn == "nll_loss":
        x = -np.abs(x)
    t = np.asarray(rng.integers(0, C, ts)).astype(np.int16)
    if t.ndim:
        t.reshape(-1)[::13] = -100
    w = rng.uniform(0.5, 2.0, C)
    sw = rng.uniform(0.1, 2.0, ts)
    assert _entropy._half_native(x, False, fn == "nll_loss") == (C <= 32)
    opts = [({}, t), ({"reduction": "none"}, t), ({"reduction": "sum", "weight": w}, t),
            ({"weight": w, "sample_weight": sw}, t),
            ({"weight": w, "ignore_index": 1}, np.where(t == -100, 1, t))]
    if fn == "cross_entropy":
        opts.append(({"label_smoothing": 0.2, "weight": w}, t))
    for kw, tt in opts:
        ref, ref_g = f(x.astype(np.float32), tt, return_grad=True, **kw)
        loss, g = f(x, tt, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        _same(f(x, tt, **kw), ref)
        _, g32 = f(x, tt, return_grad=True, grad_dtype=np.float32, **kw)
        _same(g32, ref_g)
        for gdt in (hd, np.float32):
            out = np.full(x.shape, 7, gdt)
            _, go = f(x, tt, return_grad=True, grad_out=out, **kw)
            assert go is out
            _same(go, ref_g.astype(gdt))
    one = f(x, t, return_grad=True, n_threads=1)
    two = f(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    if t.ndim:
        bad = t.copy()
        bad.reshape(-1)[5] = C
        with pytest.raises(ValueError, match=f"target holds class index {C} at flat position 5"):
            f(x, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("xs,axis", [((1100, 10), 1), ((700, 32), -1), ((5, 16384), 1),
                                     ((2, 16385), 1), ((3, 32, 600), 1), ((3, 33, 40), 1),
                                     ((7,), None), ((2, 3, 513), (0, 2)), ((1, 40, 1), 1)],
                         ids=str)
def test_half_lse_family(hd, xs, axis):
    """logsumexp, softmax and log_softmax read float16 / bfloat16 in their own
    width (each unit widened in L1: rows of up to 16384 values, up to 32
    along a strided axis), longer axes through a float32 copy: the float32
    kernel's results on the widened values, bit for bit, in float32, with
    out= (float32 only) and any thread count."""
    rng = np.random.default_rng(sum(xs))
    x = (rng.standard_normal(xs) * 4).astype(hd)
    flat = x.reshape(-1)
    flat[3] = np.inf
    flat[-2] = np.nan
    flat[len(flat) // 2] = -np.inf
    wide = x.astype(np.float32)
    if not isinstance(axis, tuple):   # which of the two paths this shape takes
        a = 0 if axis is None else axis % len(xs)
        P, K, Q = ((1, x.size, 1) if axis is None else
                   (int(np.prod(xs[:a])), xs[a], int(np.prod(xs[a + 1:]))))
        rows = Q == 1 and K >= 32
        assert lse_module._k.half_fits(P, K, Q) == (K <= (16384 if rows else 32))
    with np.errstate(all="ignore"):
        for fn in (fastloss.logsumexp, fastloss.softmax, fastloss.log_softmax):
            got = fn(x, axis=axis)
            assert np.asarray(got).dtype == np.float32
            _same(got, fn(wide, axis=axis))
            _same(fn(x, axis=axis, n_threads=1), fn(x, axis=axis, n_threads=2))
            if fn is not fastloss.logsumexp:
                out = np.full(xs, 7, np.float32)
                assert fn(x, axis=axis, out=out) is out
                _same(out, got)
                with pytest.raises(ValueError, match="out must have dtype float32"):
                    fn(x, axis=axis, out=np.empty(xs, hd))


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("D", [1, 512, 2048, 2049])
def test_half_triplet_rows(hd, D):
    """Triplets of up to 2048 features are read in their own width, longer ones
    through a widened copy: the same results either way (D = 2048: inputs
    past 4 MiB, whose rows are requested ahead)."""
    rng = np.random.default_rng(D)
    N = 1100 if D == 2048 else 300
    a, p, n = (rng.standard_normal((N, D)).astype(hd) for _ in range(3))
    sw = rng.uniform(0.1, 2.0, N)
    for kw in ({}, {"p": 1, "swap": True}, {"p": 3.0, "reduction": "none"},
               {"squared": True, "margin": 0.2, "sample_weight": sw, "reduction": "sum"}):
        ref, ref_g = fastloss.triplet_margin_loss(*(x.astype(np.float32) for x in (a, p, n)),
                                                  return_grad=True, **kw)
        loss, g = fastloss.triplet_margin_loss(a, p, n, return_grad=True, **kw)
        _same(loss, ref)
        for gh, gw in zip(g, ref_g):
            _same(gh, gw.astype(hd))
    one = fastloss.triplet_margin_loss(a, p, n, return_grad=True, n_threads=1)
    two = fastloss.triplet_margin_loss(a, p, n, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    for u, v in zip(one[1], two[1]):
        _same(u, v)
    # one array of another dtype: all computed in float32 from a widened copy
    mixed = fastloss.triplet_margin_loss(a, p, n.astype(np.float32), return_grad=True)
    ref, ref_g = fastloss.triplet_margin_loss(a.astype(np.float32), p.astype(np.float32),
                                              n.astype(np.float32), return_grad=True)
    _same(mixed[0], ref)
    _same(mixed[1][0], ref_g[0].astype(hd))
    _same(mixed[1][2], ref_g[2])


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("D", [1, 64, 2048, 2049])
def test_half_contrastive_rows(hd, D):
    """Pairs of rows of up to 2048 values are read in their own width, longer ones
    through a widened copy: the float32 results on the widened values, for any
    thread count, with the gradients rounded into the input's dtype."""
    rng = np.random.default_rng(D)
    N = 300
    a = rng.standard_normal((N, D)).astype(hd)
    b = (a.astype(np.float32) + 0.3 * rng.standard_normal((N, D))).astype(hd)
    b[0] = a[0]                     # d = 0 on a dissimilar pair: gradient 0
    t = rng.integers(0, 2, N)
    t[0] = 1
    sw = rng.uniform(0.1, 2.0, N)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    for kw in ({}, {"margin": 0.5 * np.sqrt(D), "reduction": "none", "sample_weight": sw},
               {"reduction": "sum"}):
        ref, ref_g = fastloss.contrastive_loss(a32, b32, t, return_grad=True, **kw)
        loss, g = fastloss.contrastive_loss(a, b, t, return_grad=True, **kw)
        _same(loss, ref)
        for gh, gw in zip(g, ref_g):
            _same(gh, gw.astype(hd))
        _same(fastloss.contrastive_loss(a, b, t, **kw), ref)
    one = fastloss.contrastive_loss(a, b, t, return_grad=True, n_threads=1)
    two = fastloss.contrastive_loss(a, b, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    for u, v in zip(one[1], two[1]):
        _same(u, v)
    bad = t.copy()
    bad[9] = 2
    with pytest.raises(ValueError, match="flat position 9"):
        fastloss.contrastive_loss(a, b, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("D", [1, 300, 2048, 2049])
def test_half_center_rows(hd, D):
    """Features of up to 2048 values are read in their own width (longer ones
    through a widened copy), the centers in float32: the float32 results on
    the widened features, the centers' gradient summed before any rounding."""
    rng = np.random.default_rng(D)
    N, C = 700, 7
    x = rng.standard_normal((N, D)).astype(hd)
    y = rng.integers(0, C, N).astype(np.int16)
    y[y == 3] = 4                   # a class with no rows: its gradient is 0
    c = rng.standard_normal((C, D)).astype(np.float32)
    sw = rng.uniform(0.1, 2.0, N)
    x32 = x.astype(np.float32)
    for kw in ({}, {"reduction": "none", "sample_weight": sw}, {"reduction": "sum"}):
        ref, (rgx, rgc) = fastloss.center_loss(x32, y, c, return_grad=True, **kw)
        loss, (gx, gc) = fastloss.center_loss(x, y, c, return_grad=True, **kw)
        _same(loss, ref)
        _same(gx, rgx.astype(hd))
        _same(gc, rgc)
        _same(fastloss.center_loss(x, y, c, **kw), ref)
    assert not np.any(gc[3])
    # half centers: widened (a (C, D) table), their gradient rounded back
    loss, (gx, gc) = fastloss.center_loss(x, y, c.astype(hd), return_grad=True)
    ref, (rgx, rgc) = fastloss.center_loss(x32, y, c.astype(hd).astype(np.float32),
                                           return_grad=True)
    _same(loss, ref)
    _same(gx, rgx.astype(hd))
    _same(gc, rgc.astype(hd))
    one = fastloss.center_loss(x, y, c, return_grad=True, n_threads=1)
    two = fastloss.center_loss(x, y, c, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    for u, v in zip(one[1], two[1]):
        _same(u, v)
    bad = y.copy()
    bad[11] = C
    with pytest.raises(ValueError, match="labels"):
        fastloss.center_loss(x, bad, c, return_grad=True)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [2, 91, 5000])
def test_half_fast_rcnn(hd, C):
    """Half class logits reach cross_entropy as they are (read in their own
    width for 91 classes), the boxes in float32: the float32 results on the
    widened values, each gradient in its input's dtype."""
    rng = np.random.default_rng(C)
    N = 300
    x = (2 * rng.standard_normal((N, C))).astype(hd)
    y = rng.integers(0, C, N)
    b = rng.standard_normal((N, 4 * C)).astype(np.float32)
    t = rng.standard_normal((N, 4)).astype(np.float32)
    for bb in (b, b.astype(hd)):
        ref, (rgx, rgb) = fastloss.fast_rcnn_loss(x.astype(np.float32), y,
                                                  bb.astype(np.float32), t, return_grad=True,
                                                  return_parts=True)
        loss, (gx, gb) = fastloss.fast_rcnn_loss(x, y, bb, t, return_grad=True,
                                                 return_parts=True)
        _same(loss, ref)
        _same(gx, rgx.astype(hd))
        _same(gb, rgb.astype(bb.dtype))


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [1, 10, 1000, 2049])
def test_half_multi_margin_rows(hd, C):
    """Rows of up to 2048 classes are read in their own width, longer ones through
    a widened copy: the same results either way (C = 1000: an input past 4
    MiB, whose rows are requested ahead)."""
    rng = np.random.default_rng(C)
    N = 2200 if C == 1000 else 400
    x = rng.standard_normal((N, C)).astype(hd)
    t = rng.integers(0, C, N).astype(np.uint8 if C <= 255 else np.int64)
    w = rng.uniform(0.5, 2.0, C)
    sw = rng.uniform(0.1, 2.0, N)
    x32 = x.astype(np.float32)
    for fn, kw in ((fastloss.multi_margin_loss, {}),
                   (fastloss.multi_margin_loss, {"p": 2, "margin": 0.5, "weight": w}),
                   (fastloss.multi_margin_loss, {"reduction": "none", "sample_weight": sw}),
                   (fastloss.multiclass_hinge_loss, {"squared": True, "reduction": "sum"})):
        ref, ref_g = fn(x32, t, return_grad=True, **kw)
        loss, g = fn(x, t, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        # the loss alone against float32's loss alone (with p = 2 and class
        # weights, float32's own loss with and without the gradient may
        # differ in the last bit: a different order of the row's sums)
        _same(fn(x, t, **kw), fn(x32, t, **kw))
        _same(fn(x, t, return_grad=True, grad_dtype=np.float32, **kw)[1], ref_g)
        out = np.empty(x.shape, hd)
        assert fn(x, t, return_grad=True, grad_out=out, **kw)[1] is out
        _same(out, ref_g.astype(hd))
    one = fastloss.multi_margin_loss(x, t, return_grad=True, n_threads=1)
    two = fastloss.multi_margin_loss(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    bad = t.astype(np.int64)
    bad[7] = C
    with pytest.raises(ValueError, match="flat position 7"):
        fastloss.multi_margin_loss(x, bad)


@pytest.mark.parametrize("hd", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [1, 10, 1000, 2049])
def test_half_margin_softmax_rows(hd, C):
    """CosFace, ArcFace and SphereFace read cosine rows of up to 2048 classes in
    their own width, longer ones through a widened copy: the float32 results
    on the widened values either way, for any thread count (C = 1000: an
    input past 4 MiB, whose rows are requested ahead)."""
    rng = np.random.default_rng(C + 1)
    N = 2200 if C == 1000 else 300
    x = rng.uniform(-1.0, 1.0, (N, C)).astype(hd)
    x[0, 0] = 1.0   # the clips at +-1 (ArcFace's floored derivative)
    x[1, -1] = -1.0
    t = rng.integers(0, C, N).astype(np.uint8 if C <= 255 else np.int64)
    t[0], t[1] = 0, C - 1
    sw = rng.uniform(0.1, 2.0, N)
    x32 = x.astype(np.float32)
    for fn, kw in ((fastloss.cosface_loss, {}),
                   (fastloss.arcface_loss, {"reduction": "none", "sample_weight": sw}),
                   (fastloss.arcface_loss, {"easy_margin": True, "s": 16.0}),
                   (fastloss.sphereface_loss, {"m": 4, "reduction": "sum"})):
        ref, ref_g = fn(x32, t, return_grad=True, **kw)
        loss, g = fn(x, t, return_grad=True, **kw)
        _same(loss, ref)
        _same(g, ref_g.astype(hd))
        _same(fn(x, t, **kw), ref)
        _same(fn(x, t, return_grad=True, grad_dtype=np.float32, **kw)[1], ref_g)
        out = np.empty(x.shape, hd)
        assert fn(x, t, return_grad=True, grad_out=out, **kw)[1] is out
        _same(out, ref_g.astype(hd))
    one = fastloss.arcface_loss(x, t, return_grad=True, n_threads=1)
    two = fastloss.arcface_loss(x, t, return_grad=True, n_threads=2)
    _same(one[0], two[0])
    _same(one[1], two[1])
    bad = t.astype(np.int64)
    bad[5] = C
    with pytest.raises(ValueError, match="flat position 5"):
        fastloss.cosface_loss(x, bad)
