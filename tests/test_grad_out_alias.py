"""``grad_out`` sharing memory with any input of any function that takes it.

A kernel reads its inputs while it writes the gradient, so a ``grad_out``
that overlaps an input either gives the loss and gradient of a separate
buffer or is refused with a ValueError naming the input; it never gives a
silent wrong result.  Every registered function with ``grad_out``, every
array argument (inputs, targets, class indices, weights), a buffer that is
the argument itself (where dtype and shape allow) and one that overlaps
part of its memory; small sizes and sizes of several work units.
"""

import inspect

import numpy as np
import pytest

import fastloss

from _registry import REGISTRY

NAMES = sorted(n for n in REGISTRY
               if "grad_out" in inspect.signature(getattr(fastloss, n)).parameters)


def _flags(e):
    f = {k: v[0] for k, v in e.flags.items()}
    f.update(e.full)
    return f


def _array_args(args, kwargs):
    """(position or keyword, array) of every ndarray argument."""
    out = [(i, a) for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    out += [(k, v) for k, v in kwargs.items() if isinstance(v, np.ndarray)]
    return out


def _with(args, kwargs, where, value):
    args, kwargs = list(args), dict(kwargs)
    if isinstance(where, int):
        args[where] = value
    else:
        kwargs[where] = value
    return args, kwargs


def _aliases(a, g_shape, g_dtype):
    """(description, array holding a's values, grad_out buffer) pairs over shared memory."""
    if a.dtype == g_dtype and a.shape == g_shape:
        b = a.copy()
        yield "the same array", b, b
    # one raw buffer: the argument's bytes, then the gradient's, overlapping by half
    # the smaller of the two (offsets kept multiples of 8 bytes)
    g_bytes = int(np.prod(g_shape)) * np.dtype(g_dtype).itemsize
    shift = (min(a.nbytes, g_bytes) // 2) // 8 * 8
    if shift == 0:
        return
    raw = np.zeros(a.nbytes + g_bytes, np.uint8)
    arr = raw[:a.nbytes].view(a.dtype).reshape(a.shape)
    arr[...] = a
    start = a.nbytes - shift
    grad = raw[start:start + g_bytes].view(g_dtype).reshape(g_shape)
    yield "a partly overlapping buffer", arr, grad


@pytest.mark.parametrize("size", ["small", "big"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_grad_out_sharing_memory_with_an_input(name, dtype, size):
    e = REGISTRY[name]
    fn = getattr(fastloss, name)
    d = e.bad_dims if size == "small" else e.big_dims
    args, kwargs = e.build(np.random.default_rng(11), np.dtype(dtype), d, _flags(e))
    want_loss, want_grad = fn(*args, **kwargs, return_grad=True)
    checked = 0
    for where, a in _array_args(args, kwargs):
        for what, arr, grad in _aliases(a, want_grad.shape, want_grad.dtype):
            before = arr.copy()
            cargs, ckw = _with(args, kwargs, where, arr)
            try:
                loss, g = fn(*cargs, **ckw, return_grad=True, grad_out=grad)
            except ValueError as err:
                assert "shares memory" in str(err), (where, what, str(err))
                # refused before the kernel wrote anything
                np.testing.assert_array_equal(arr, before, err_msg=f"{where}: {what}")
            else:
                assert g is grad
                np.testing.assert_array_equal(np.asarray(loss), np.asarray(want_loss),
                                              err_msg=f"{where}: {what}")
                np.testing.assert_array_equal(g, want_grad, err_msg=f"{where}: {what}")
            checked += 1
    assert checked >= 2  # the input itself, and at least one partial overlap
