"""Axis handling for reductions: turn (array, axis) into a (P, K, Q) view."""

import numpy as np


def normalize_axis(axis, ndim, name="axis"):
    """A sorted tuple of distinct non-negative axes (None: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{name} must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= ax < ndim:
            raise ValueError(f"{name} {ax} is out of bounds for an array of dimension {ndim}")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} contains a repeated axis: {axis!r}")
    return tuple(sorted(out))


def as_pkq(a, axes):
    """View ``a`` (C-contiguous) as (P, K, Q) with K the reduced axes.

    Adjacent reduced axes need no copy.  Other sets of axes are moved to the
    end and copied once (documented in the public docstrings).  Returns the
    3-D array and a function mapping a full-shape result back to ``a``'s
    axis order.
    """
    shape = a.shape
    if not axes:
        return a.reshape(-1, 1, 1), lambda r: r.reshape(shape)
    lo, hi = axes[0], axes[-1]
    if hi - lo + 1 == len(axes):
        p = int(np.prod(shape[:lo], dtype=np.int64))
        k = int(np.prod(shape[lo:hi + 1], dtype=np.int64))
        q = int(np.prod(shape[hi + 1:], dtype=np.int64))
        return a.reshape(p, k, q), lambda r: r.reshape(shape)
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = np.ascontiguousarray(np.transpose(a, rest + list(axes)))
    k = int(np.prod([shape[i] for i in axes], dtype=np.int64))
    inverse = np.argsort(rest + list(axes))
    mshape = moved.shape
    return moved.reshape(-1, k, 1), lambda r: np.transpose(r.reshape(mshape), inverse)


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)
