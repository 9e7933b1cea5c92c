"""Bit-for-bit equality of two results (a value, an array, or a tuple of
them), shared by the prepared-call tests: the same type, dtype, shape and
bits (16-bit floats compared as their storage)."""

import numpy as np


def bits(a):
    """a's values, or the bits of 16-bit ones (float16, bfloat16)."""
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            same(u, v)
        return
    assert type(a) is type(b)
    assert np.asarray(a).dtype == np.asarray(b).dtype
    assert np.shape(a) == np.shape(b)
    np.testing.assert_array_equal(bits(a), bits(b))
