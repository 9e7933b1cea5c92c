"""Same values, different memory layouts: C, Fortran, strided views, negative
strides, read-only arrays and read-only np.memmap files."""

import itertools
import os

import numpy as np

LAYOUTS = ("C", "F", "strided", "negative", "readonly", "memmap")
LABEL_DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.int64)
_counter = itertools.count()


def relayout(a, kind, tmpdir):
    """An array equal to ``a`` (same dtype and shape) in the layout ``kind``."""
    if a.ndim == 0 or a.size == 0:
        return a.copy()
    if kind == "C":
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
        big[..., 1::2] = a
        return big[..., 1::2]
    if kind == "negative":
        return a[..., ::-1].copy()[..., ::-1]
    if kind == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if kind == "memmap":
        path = os.path.join(tmpdir, f"a{next(_counter)}.dat")
        m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        m[...] = a
        m.flush()
        del m
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    raise ValueError(kind)


def label_dtypes_for(a):
    """The integer dtypes that hold every value of ``a``."""
    if a.size == 0:
        return list(LABEL_DTYPES)
    lo, hi = int(a.min()), int(a.max())
    return [dt for dt in LABEL_DTYPES if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max]
