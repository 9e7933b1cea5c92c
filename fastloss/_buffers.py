"""Reuse of the large gradient arrays that ``return_grad=True`` hands out
(and of the outputs of ``softmax`` and ``log_softmax``, which are handed out
the same way).

A new array costs the operating system's first touch: each fresh page is
zeroed when it is first written, about as long as a memory-bound loss
itself (64 MiB: 3 to 8 ms on a 2-core VM against 4 ms for the loss).  A
loop that computes a gradient, uses it and drops it would pay that at every
step.  So fastloss keeps the gradient arrays it returns (those of at least
``MIN_BYTES``) and, once the caller holds no reference to one any more,
writes the next gradient of the same shape and dtype into it:

* "no reference" is the reference count of the array and of the buffer
  under it: any view, any ``torch.from_numpy`` tensor, any container
  holding it keeps it out of reuse, so memory a caller can still reach is
  never written;
* the arrays start on a 64-byte line (a view of a slightly larger byte
  buffer), so that a kernel's non-temporal stores write whole lines
  (NumPy's large arrays start 16 bytes into one);
* at most ``KEEP`` arrays per (shape, dtype) and per gradient a call
  returns in it (triplet's three gradients: six), and ``max_bytes`` in all,
  are kept (least recently used dropped first);
* ``set_gradient_cache(0)`` (or ``FASTLOSS_GRADIENT_CACHE=0`` in the
  environment) turns reuse off, ``empty_gradient_cache()`` drops what is
  kept; on a free-threaded interpreter it starts off.

A caller's ``grad_out`` is used as given and never kept.
"""

import math
import os
import sys
import sysconfig
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["empty_gradient_cache", "get_gradient_cache", "set_gradient_cache"]

MIN_BYTES = 1 << 20   # smaller arrays are cheap to allocate
KEEP = 2              # per gradient: the one a loop still holds and the one it dropped
_DEFAULT_MAX = 512 << 20

_lock = threading.Lock()
_kept = OrderedDict()  # (shape, dtype) -> [ndarray], least recently used first


def _env_max():
    text = os.environ.get("FASTLOSS_GRADIENT_CACHE", "").strip()
    if not text:
        # a free-threaded interpreter's reference counts are not exact
        # enough to tell that nothing references an array: no reuse there
        return 0 if sysconfig.get_config_var("Py_GIL_DISABLED") else _DEFAULT_MAX
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"FASTLOSS_GRADIENT_CACHE must be a number of bytes, got {text!r}") from None
    if value < 0:
        raise ValueError(f"FASTLOSS_GRADIENT_CACHE must be >= 0, got {value}")
    return value


_max_bytes = _env_max()


ALIGN = 64   # bytes: a cache line


def _aligned_empty(shape, dtype):
    """An uninitialized C-contiguous array whose data starts on an ALIGN-byte
    boundary: a view of a byte buffer ALIGN bytes longer (its ``base``; a
    view of the array has that buffer as its base too)."""
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(n + ALIGN, np.uint8)
    off = -buf.ctypes.data % ALIGN
    return buf[off:off + n].view(dtype).reshape(shape)


def _refs_when_free():
    """The reference counts gradient_array sees for a kept array nobody else
    holds, and for its buffer.

    Measured with the same code shape (a list element, a loop name,
    getrefcount's argument) rather than assumed, since interpreters
    differ in which of those references they count.
    """
    arrs = [_aligned_empty((1,), np.dtype(np.float32))]
    for a in arrs:
        return _refs(a)


def _refs(a):
    return sys.getrefcount(a), sys.getrefcount(a.base)


_FREE = _refs_when_free()


def set_gradient_cache(max_bytes: int) -> int:
    """Keep at most ``max_bytes`` of returned gradient arrays for reuse (0: none).

    Parameters
    ----------
    max_bytes : int >= 0
        The limit; lowering it drops kept arrays right away.

    Returns
    -------
    int
        The previous limit.

    Examples
    --------
    >>> import fastloss
    >>> old = fastloss.set_gradient_cache(0)   # no reuse
    >>> fastloss.get_gradient_cache()
    (0, 0)
    >>> _ = fastloss.set_gradient_cache(old)
    """
    global _max_bytes
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(f"max_bytes must be an int, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    with _lock:
        old, _max_bytes = _max_bytes, int(max_bytes)
        _trim()
    return old


def get_gradient_cache() -> tuple[int, int]:
    """The limit of the gradient cache and the bytes it holds now.

    Returns
    -------
    max_bytes : int
        The limit set by :func:`set_gradient_cache` (or
        ``FASTLOSS_GRADIENT_CACHE``).
    kept_bytes : int
        The bytes of the gradient arrays kept for reuse now.

    Examples
    --------
    >>> import fastloss
    >>> max_bytes, kept = fastloss.get_gradient_cache()
    >>> kept <= max_bytes
    True
    """
    with _lock:
        return _max_bytes, _kept_bytes()


def empty_gradient_cache() -> None:
    """Drop every kept gradient array (arrays still in use stay the caller's).

    Returns
    -------
    None

    Examples
    --------
    >>> import fastloss
    >>> fastloss.empty_gradient_cache()
    >>> fastloss.get_gradient_cache()[1]
    0
    """
    with _lock:
        _kept.clear()


def _kept_bytes():
    return sum(a.nbytes for arrs in _kept.values() for a in arrs)


def _trim():
    total = _kept_bytes()
    while total > _max_bytes and _kept:
        key, arrs = next(iter(_kept.items()))
        total -= arrs.pop(0).nbytes
        if not arrs:
            del _kept[key]


_stream_bytes = None


def stream_bytes():
    """Size from which a reused or caller's output is written with
    non-temporal stores: the largest CPU cache (cpu0's, from sysfs), at most
    STREAM_MAX_BYTES (and that where the OS does not say).  A smaller array
    is likely still cached, where streamed stores would only push it out
    (docs/design.md, streamed gradients)."""
    global _stream_bytes
    if _stream_bytes is None:
        size = 0
        base = "/sys/devices/system/cpu/cpu0/cache"
        try:
            entries = [e for e in os.listdir(base) if e.startswith("index")]
        except OSError:
            entries = []
        for e in entries:   # the folder holds other files too (uevent)
            try:
                with open(f"{base}/{e}/size") as f:
                    text = f.read().strip()
                mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
                size = max(size, int(text.rstrip("KMGkmg")) * mult)
            except (OSError, ValueError):
                continue
        _stream_bytes = min(size, STREAM_MAX_BYTES) if size > 0 else STREAM_MAX_BYTES
    return _stream_bytes


# The cap: a virtual machine may report its host's whole last-level cache
# (the Xeon VM of docs/guide/benchmarks.md: 480 MiB, shared with other
# guests), where 64 MB outputs still stream faster (2026-12-06, 2 threads,
# ordinary against streamed stores: mse_loss with its gradient on 2^24
# float32 8.6 against 6.6 ms, cross_entropy (16384, 1000) with its gradient
# 4.8 against 3.6, softmax 4.6 against 3.5).
STREAM_MAX_BYTES = 32 << 20


def gradient_array(shape, dtype, per_call=1):
    """``(array, reused)``: a C-contiguous array for a gradient of ``shape``, ``dtype``.

    ``reused`` is True when it is a kept array that the caller had dropped
    (its pages are mapped and likely out of the cache), False when new.
    ``per_call``: how many arrays of this shape and dtype the calling loss
    takes in one call, so that ``KEEP`` of each stay kept.
    """
    dtype = np.dtype(dtype)
    shape = tuple(map(int, shape))
    # math.prod and the dtype itself as the key: np.prod and dtype.name
    # took 4.5 and 2.8 us a call (AMD EPYC VM, 2026-12-07), more than the
    # rest of this function (1.6 us)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or nbytes > _max_bytes:
        return np.empty(shape, dtype=dtype), False
    key = (shape, dtype)  # (bfloat16 and a 2-byte void dtype compare unequal)
    with _lock:
        arrs = _kept.get(key)
        if arrs is not None:
            _kept.move_to_end(key)
            for a in arrs:
                if _refs(a) == _FREE:  # no reference but the cache's own
                    return a, True
        a = _aligned_empty(shape, dtype)
        arrs = _kept.setdefault(key, [])
        _kept.move_to_end(key)
        arrs.append(a)
        if len(arrs) > KEEP * per_call:
            arrs.pop(0)
        _trim()
        return a, False
