"""Behaviours that used to differ from family to family, pinned for every function.

* A ``grad_out`` of the input's half dtype or of float32 (float32 input:
  float32) is written in place and returned as it is, by every element-wise
  loss and every segmentation loss: never replaced by a new array.
* ``binary_cross_entropy`` converts its input once: a strided input costs
  one contiguous copy, a contiguous float16 input none (it is read in its own
  width), and a float16 input's gradient is the float32 gradient of the
  widened values rounded once into float16.

A third one, a float16 input to the row-wise losses and to
``binary_cross_entropy_with_logits`` giving float16 gradients like every
other loss, is checked for every function and option set by
``tests/test_half.py::test_half_is_float32_kernel_on_widened_values``.
"""

import itertools
import tracemalloc

import numpy as np
import pytest
from _half import HALF

import fastloss

from _registry import REGISTRY

ELEMENTWISE = sorted(n for n in fastloss.elementwise.__all__ if REGISTRY[n].grad_out)
SEGMENTATION = sorted(n for n in fastloss.segmentation.__all__ if REGISTRY[n].grad)

# (input dtype, grad_out dtype): the input's own dtype, and float32 beside a half input
DTYPE_PAIRS = [(np.dtype(np.float32), np.dtype(np.float32)),
               (np.dtype(np.float64), np.dtype(np.float64))]
DTYPE_PAIRS += [(h, g) for h in HALF for g in (h, np.dtype(np.float32))]
PAIR_IDS = [f"{x.name}-grad_out-{g.name}" for x, g in DTYPE_PAIRS]


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _flag_sets(entry, most=4):
    keys = sorted(entry.flags)
    sets = [dict(zip(keys, v)) for v in itertools.product(*(entry.flags[k] for k in keys))]
    return sets[::-(-len(sets) // most)]


def _cast(args, dtype):
    """The float32 arrays among ``args`` in ``dtype`` (class indices and weights stay)."""
    return [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a
            for a in args]


@pytest.mark.parametrize("xd,gd", DTYPE_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("name", ELEMENTWISE + SEGMENTATION)
def test_grad_out_is_used_as_given(name, xd, gd):
    entry = REGISTRY[name]
    f = getattr(fastloss, name)
    rng = np.random.default_rng(11)
    for flags in _flag_sets(entry):
        args, kw = entry.build(rng, np.dtype(np.float32), dict(entry.bad_dims), flags)
        args = _cast(args, xd)
        x = args[0]
        # the gradient the function returns without a buffer, in grad_out's dtype:
        # for a half input and a float32 buffer, the float32 computation's own
        # gradient (the half values widened exactly)
        if gd == xd:
            want = f(*args, **kw, return_grad=True)[1]
        else:
            wide = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == xd else a
                    for a in args]
            want = f(*wide, **kw, return_grad=True)[1]
        out = np.full(x.shape, np.nan, gd)   # every element must be written
        loss, g = f(*args, **kw, return_grad=True, grad_out=out)
        assert g is out, f"{name}: grad_out {gd.name} beside a {xd.name} input was replaced"
        assert g.dtype == gd
        np.testing.assert_array_equal(_bits(g), _bits(want.astype(gd)),
                                      err_msg=f"{name} {flags}")


def _peak_bytes(fn):
    """The most memory that NumPy arrays (and other traced allocations) held during fn()."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("weight", [False, True], ids=["unweighted", "weighted"])
def test_binary_cross_entropy_copies_its_input_once(weight):
    n = 1 << 21
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 2 * n)
    t = (rng.random(n) < 0.5).astype(np.float64)
    w = rng.uniform(0.5, 2.0, n) if weight else None

    def peak(x, t):
        return _peak_bytes(lambda: fastloss.binary_cross_entropy(x, t, weight=w))

    # a strided float64 input costs one contiguous float64 copy (n * 8 bytes)
    # more than the same values given contiguous, not two
    x = p[::2]
    xc = np.ascontiguousarray(x)
    copies = (peak(x, t) - peak(xc, t)) / (n * 8)
    assert 0.5 < copies < 1.5, f"{copies:.2f} copies of a strided input"
    assert fastloss.binary_cross_entropy(x, t, weight=w) == \
        fastloss.binary_cross_entropy(xc, t, weight=w)
    # a contiguous float16 input is read as it is: no widened float32 copy
    xh, th = xc.astype(np.float16), t.astype(np.float16)
    widened = (peak(xh, th) - peak(xh.astype(np.float32), th)) / (n * 4)
    assert widened < 0.25, f"{widened:.2f} float32 copies of a float16 input"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", [False, True], ids=["unweighted", "weighted"])
def test_binary_cross_entropy_half_gradient_is_rounded_once(weight, reduction):
    rng = np.random.default_rng(4)
    n = 40009
    x = rng.uniform(0.001, 0.999, n).astype(np.float16)
    t = rng.random(n).astype(np.float16)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32) if weight else None
    wide = x.astype(np.float32)                          # exact
    loss32, g32 = fastloss.binary_cross_entropy(wide, t.astype(np.float32), weight=w,
                                                reduction=reduction, return_grad=True)
    loss, g = fastloss.binary_cross_entropy(x, t, weight=w, reduction=reduction,
                                            return_grad=True)
    assert g.dtype == np.float16
    np.testing.assert_array_equal(_bits(g), _bits(g32.astype(np.float16)))
    np.testing.assert_array_equal(np.asarray(loss), np.asarray(loss32))
    # grad_dtype=float32: the float32 gradient itself, no rounding at all
    _, gf = fastloss.binary_cross_entropy(x, t, weight=w, reduction=reduction,
                                          return_grad=True, grad_dtype=np.float32)
    np.testing.assert_array_equal(_bits(gf), _bits(g32))
