"""Bit-for-bit equality of two results (a value, an array, or a tuple of
them), shared by the prepared-call and half-precision tests: the same
dtype, shape and bits (16- and 32-bit floats compared as their storage,
NaN payloads included)."""

import numpy as np


def bits(a):
    """a's values, or the bits of 16- and 32-bit ones (uint16 / uint32 views)."""
    a = np.ascontiguousarray(a)
    if a.dtype.itemsize == 2:
        return a.view(np.uint16)
    return a.view(np.uint32) if a.dtype.itemsize == 4 else a


def same(a, b, check_type=True):
    """a and b equal bit for bit; ``check_type``: also of one Python type (a
    NumPy scalar is not a 0-d array)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            same(u, v, check_type)
        return
    if check_type:
        assert type(a) is type(b), (type(a), type(b))
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))
