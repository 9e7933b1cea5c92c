"""Argument checks shared by every public function, and the steps of a call
that the families share (row views, label and weight checks, the 'mean'
factor, the reduced value, gradients of half inputs in their dtype).

Every message names the argument, what was expected and what was given, so
users never meet Cython's "Buffer dtype mismatch".  The kernels trust what
leaves this module: C-contiguous arrays of the dtype they were compiled for.
"""

import math
import numbers

import numpy as np

from fastloss import _buffers
from fastloss._threads import effective_n_threads

REDUCTIONS = ("mean", "sum", "none")
_LABEL_DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.int64)


# the scalar types of the half-precision dtypes seen so far (bfloat16 added on first sight)
_HALF_TYPES = {np.float16}


def is_half(dtype):
    """True for float16 and for the 2-byte ``bfloat16`` of ml_dtypes (found by name:
    fastloss does not import ml_dtypes).

    By scalar type: comparing a user dtype such as bfloat16 with ``==``, or
    reading its ``name`` (computed in Python by NumPy), costs microseconds,
    and every call with half data asks this several times.
    """
    t = getattr(dtype, "type", None)
    if t is None:
        dtype = np.dtype(dtype)
        t = dtype.type
    if t in _HALF_TYPES:
        return True
    if dtype.kind == "V" and dtype.itemsize == 2 and t.__name__ == "bfloat16":
        _HALF_TYPES.add(t)
        return True
    return False


def compute_dtype(dtype):
    """The dtype a kernel computes in for data of ``dtype``: float32 for float16/bfloat16."""
    return np.dtype(np.float32) if is_half(dtype) else np.dtype(dtype)


def float_dtype(*arrays):
    """The computation dtype: float32 if every array is float32/float16/bfloat16, else float64."""
    out = np.float32
    for a in arrays:
        if a is not None and a.dtype != np.float32 and not is_half(a.dtype):
            out = np.float64
    return np.dtype(out)


def as_float(x, name, dtype=None, half=False):
    """``x`` as a C-contiguous float32/float64 array.

    float32 and float64 are kept; float16 and bfloat16 (ml_dtypes) are kept
    with ``half=True`` (for kernels that read them in their own width), else
    read as float32; bool and integer arrays are computed in float64.
    Complex, object and string arrays are a TypeError.  A C-contiguous
    input of the right dtype is never copied; any other input is copied
    once, here.
    """
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind not in "biuf" and not is_half(a.dtype):
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {a.dtype} "
            f"({'complex' if kind == 'c' else 'non-numeric'})"
        )
    if dtype is None:
        if a.dtype == np.float32 or a.dtype == np.float64 or (half and is_half(a.dtype)):
            dtype = a.dtype
        elif is_half(a.dtype):
            dtype = np.float32
        else:
            dtype = np.float64
    return np.asarray(a, dtype=dtype, order="C")


def as_operand(x, name, data_dtype):
    """An operand read beside data of ``data_dtype`` (a target, a weight map).

    For float32/float64 data: ``x`` in that dtype.  For float16/bfloat16
    data: float32, float16 and bfloat16 are read in their own width, any
    other dtype as float32 (the computation dtype).
    """
    if not is_half(data_dtype):
        return as_float(x, name, dtype=data_dtype)
    a = as_float(x, name, half=True)
    return a if a.dtype == np.float32 or is_half(a.dtype) else a.astype(np.float32)


def grad_dtype(data_dtype, requested, grad_out=None):
    """The gradient's dtype: ``requested``, else ``grad_out``'s, else the data's.

    The data's own dtype is always allowed; for float16/bfloat16 data also
    float32 (the computation dtype, no rounding).
    """
    data_dtype = np.dtype(data_dtype)
    if requested is None:
        if (grad_out is not None and is_half(data_dtype)
                and getattr(grad_out, "dtype", None) == np.float32):
            return np.dtype(np.float32)
        return data_dtype
    try:
        d = np.dtype(requested)
    except TypeError:
        raise TypeError(f"grad_dtype must be a dtype, got {requested!r}") from None
    if d == data_dtype or (d == np.float32 and is_half(data_dtype)):
        return d
    allowed = f"{data_dtype}" + (" or float32" if is_half(data_dtype) else "")
    raise ValueError(f"grad_dtype must be None or {allowed} for input of dtype "
                     f"{data_dtype}, got {d}")


def via_float32(call, x, return_grad, grad_out, requested):
    """A float16/bfloat16 ``x`` through kernels that read float32 only.

    ``call(x32, grad_out32)`` runs the float32 path on ``x`` widened (exact);
    its gradient is rounded to nearest even into the dtype :func:`grad_dtype`
    picks from ``requested`` and ``grad_out`` (into ``grad_out`` when
    given).  The results equal those of a kernel reading ``x`` in its own
    width; the cost is the widened copy.
    """
    gdt = grad_dtype(x.dtype, requested, grad_out) if return_grad else None
    if grad_out is not None and return_grad:
        check_out(grad_out, x.shape, gdt, "grad_out", (("input", x),))
    r = call(x.astype(np.float32), grad_out if gdt == np.float32 else None)
    if not return_grad or gdt == np.float32:
        return r
    loss, g = r
    if grad_out is None:
        return loss, g.astype(gdt)
    grad_out[...] = g
    return loss, grad_out


def as_labels(target, name="target"):
    """Integer class indices, read in their own width when the kernels have it.

    uint8, int8, int16, int32 and int64 are passed through without a copy;
    other integer widths are converted to int64.  Floats and bools are a
    TypeError: class indices must be integers.
    """
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class indices, got dtype {t.dtype}; "
            "pass class probabilities with the input's shape instead"
        )
    if t.dtype.type not in _LABEL_DTYPES:
        t = t.astype(np.int64)
    return np.asarray(t, order="C")


def check_reduction(reduction, allowed=REDUCTIONS):
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"reduction must be one of {list(allowed)}, got {reduction!r}")
    return reduction


def check_scalar(value, name, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False,
                 integer=False):
    """A real scalar in [lo, hi] (NaN is always rejected)."""
    if type(value) is float and not integer and (
            lo < value < hi or (value == lo and not lo_open) or (value == hi and not hi_open)):
        return value  # the common case, decided without the checks below (NaN fails it)
    if type(value) is int and (
            lo < value < hi or (value == lo and not lo_open) or (value == hi and not hi_open)):
        return value if integer else float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if integer and not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not (v == v) or below or above:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}, got {value!r}")
    return int(value) if integer else v


def class_weight(weight, n_classes, name="weight"):
    """None, or a 1-D float64 array of one weight per class."""
    if weight is None:
        return None
    w = as_float(weight, name, dtype=np.float64)
    if w.shape != (n_classes,):
        raise ValueError(
            f"{name} must have shape ({n_classes},) (one value per class), got {w.shape}"
        )
    return w


def broadcast_weight(weight, shape, name="sample_weight"):
    """``weight`` broadcast to ``shape`` as a C-contiguous float64 array."""
    if weight is None:
        return None
    w = as_float(weight, name, dtype=np.float64)
    try:
        b = np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {w.shape} cannot be broadcast to the per-element "
            f"loss shape {tuple(shape)}"
        ) from None
    return np.asarray(b, order="C")


def unused_grad_out():
    """Raise for a ``grad_out`` given without ``return_grad=True`` (nothing
    would be written into it: an error rather than a buffer silently left
    as it was)."""
    raise ValueError("grad_out is given but return_grad is False: the gradient is computed "
                     "and written into grad_out only with return_grad=True")


def grad_array(out, shape, dtype, name="grad_out", inputs=(), per_call=1):
    """``(array, stream)``: the caller's ``grad_out`` (checked) or a gradient array.

    Without ``grad_out`` the array comes from fastloss._buffers (a kept one
    the caller dropped, or a new one).  ``stream``: write it with
    non-temporal stores, for a reused or caller's array larger than the
    CPU's largest cache (_buffers.stream_bytes), whose lines are out of the
    cache; a new array's pages are zeroed by the OS as the kernel first
    writes them, which caches them.
    """
    if out is None:
        g, reused = _buffers.gradient_array(shape, dtype, per_call)
    else:
        g, reused = check_out(out, shape, dtype, name, inputs), True
    return g, reused and g.nbytes >= _buffers.stream_bytes()


def check_out(out, shape, dtype, name, inputs=()):
    """A caller-provided output buffer, checked.

    ``inputs``: (name, array) pairs that the kernel reads while it writes
    ``out``.  A buffer sharing memory with one of them is refused: the
    kernels read an input after they have written part of the gradient
    (cross-entropy rescales the row it has just filled with exponentials),
    so an aliased buffer would give a wrong loss and gradient.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    for in_name, a in inputs:
        if isinstance(a, np.ndarray) and _overlap(out, a):
            raise ValueError(
                f"{name} shares memory with {in_name}; the kernel reads {in_name} while it "
                f"writes {name}, so pass a separate buffer"
            )
    return out


def _overlap(a, b):
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=1 << 16))
    except np.exceptions.TooHardError:
        return True  # undecided: refuse rather than risk a wrong result


def threads(n_threads):
    """Resolve ``n_threads`` (see fastloss._threads)."""
    return effective_n_threads(n_threads)


def same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the same shape as {name_a} {a.shape}, got {b.shape}")


def scalar(value, dtype):
    """A NumPy scalar of the computation dtype."""
    return np.dtype(dtype).type(value)


def reduce_total(total, denom, reduction, dtype):
    """Scalar result of a 'sum' or 'mean' reduction (mean over nothing is NaN)."""
    if reduction == "sum":
        return scalar(total, dtype)
    total, denom = float(total), float(denom)
    if denom != 0:
        return scalar(total / denom, dtype)
    # IEEE division by zero, without the cost of np.errstate
    if total != total or total == 0:
        return scalar(math.nan, dtype)
    return scalar(math.copysign(math.inf, total) * math.copysign(1.0, denom), dtype)


def label_error(target_flat, bad, n_classes, ignore_index, name="target"):
    """The ValueError for the first invalid label the kernel found."""
    value = target_flat[bad]
    allowed = f"[0, {n_classes})"
    if ignore_index is not None:
        allowed += f" or ignore_index={ignore_index}"
    return ValueError(
        f"{name} holds class index {value} at flat position {bad}; "
        f"expected values in {allowed}"
    )


def raise_label_error(target_flat, bad, n_classes, ignore_index=None, name="target"):
    """Raise label_error for a kernel's first bad position (bad < 0: all valid)."""
    if bad >= 0:
        raise label_error(target_flat, bad, n_classes, ignore_index, name)


# ------------------------------------------------ the steps of a call, shared

# The "no array" argument of a kernel's optional float64 input (weights).
EMPTY = np.empty(0, dtype=np.float64)


def empty(dtype):
    """The "no array" argument of a kernel's optional input or output of ``dtype``."""
    return np.empty(0, dtype=dtype)


def mean_scale(reduction, denom, scale=1.0):
    """Factor of a kernel's per-term gradient: ``scale / denom`` for 'mean' (and
    'batchmean'), ``scale`` otherwise; 0 over an empty denominator."""
    if reduction in ("mean", "batchmean"):
        return scale / denom if denom != 0 else 0.0
    return scale


def loss_value(total, denom, reduction, loss_out, shape, dtype):
    """The loss a function returns: ``loss_out`` as ``shape`` for 'none', else
    the reduced total as a NumPy scalar of the computation dtype."""
    if reduction == "none":
        return loss_out.reshape(shape)
    return reduce_total(total, denom, reduction, compute_dtype(dtype))


def grads_in_dtypes(grads, arrays):
    """Gradients of float16/bfloat16 arrays (computed in float32) rounded to nearest
    even into their dtype."""
    return tuple(g.astype(a.dtype, copy=False) if is_half(a.dtype) else g
                 for g, a in zip(grads, arrays))


# ------------------------------------------------ rows: (N, C) or (N, D), or one row

def rows(x, name):
    """x as (N, C) rows and whether it was one unbatched (C,) row."""
    if x.ndim == 1:
        return x.reshape(1, x.shape[0]), True
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C) or (C,), got {x.shape}")
    return x, False


def row_labels(target, n, unbatched, name="target"):
    """One class index per row, flat: shape (n,), or () for one unbatched row."""
    t = as_labels(target, name)
    want = () if unbatched else (n,)
    if t.shape != want:
        raise ValueError(f"{name} must have shape {want}, got {t.shape}")
    return t.reshape(-1)


def row_weights(sample_weight, n, unbatched):
    """(the per-row weights or None, the kernel's flat argument)."""
    sw = broadcast_weight(sample_weight, () if unbatched else (n,))
    return sw, (EMPTY if sw is None else sw.reshape(-1))


def row_scale(reduction, n, sw):
    """Gradient factor of 'mean' over rows: 1 / (n or the sum of the row weights)."""
    if reduction != "mean":
        return 1.0
    return mean_scale(reduction, float(np.sum(sw)) if sw is not None else float(n))
