"""Probes of the fastmath functions, apart from every loss kernel.

* ``fastmath_eval``: one fastmath.h function applied element by element,
  for the ulp tests (tests/test_fastmath.py) on each CPU target;
  ``exp16_eval`` and ``log16_eval``: the 16-lane exp and log of the
  AVX-512 kernels, for the tests that they equal the element-wise ones;
* ``math_probe`` and ``read_probe``: the bench's exp floor and
  read-bandwidth reference (fastloss/bench/machine.py), reference loops of
  flprobe.h compiled with the package for each target, never a loss.

A module of its own so that the loss kernels carry no test or measurement
code.
"""

cimport numpy as cnp
import numpy as np
from cython.parallel cimport prange

from _common cimport (
    floating, fl_expf_neg_scale, fl_expf_poly, log1p_unit, vexp, vexp_lo, vexp_neg, vlog,
    vlog1p,
)

cnp.import_array()


def fastmath_eval(const floating[::1] x, floating[::1] out, int func):
    """Apply a fastmath.h function elementwise (0 exp, 1 log, 2 log1p,
    3 log1p on [0, 1] as the softplus losses use it, 4 the exp of shifted
    arguments, 5 the exp of arguments <= 0, 6 the same in two passes as the
    float32 softplus losses take it: scale and reduced argument, then the
    polynomial); for tests."""
    cdef Py_ssize_t i
    cdef float r
    with nogil:
        if func == 0:
            for i in range(x.shape[0]):
                out[i] = vexp(x[i])
        elif func == 1:
            for i in range(x.shape[0]):
                out[i] = vlog(x[i])
        elif func == 2:
            for i in range(x.shape[0]):
                out[i] = vlog1p(x[i])
        elif func == 3:
            for i in range(x.shape[0]):
                out[i] = log1p_unit(x[i], 1 / (1 + x[i]))
        elif func == 4:
            for i in range(x.shape[0]):
                out[i] = vexp_lo(x[i])
        elif func == 5 or floating is double:
            for i in range(x.shape[0]):
                out[i] = vexp_neg(x[i])
        else:
            for i in range(x.shape[0]):
                out[i] = fl_expf_neg_scale(x[i], &r)
                out[i] = fl_expf_poly(r) * out[i]


cdef extern from "flprobe.h" nogil:
    double fl_probe_run(int fn, Py_ssize_t reps, float* sink)
    double fl_probe_read(const float* x, Py_ssize_t n)
    void fl_probe_exp16(const float* x, float* out, Py_ssize_t n, int hi)
    void fl_probe_log16(const float* x, float* out, Py_ssize_t n)
    const int FL_PROBE_FLOATS


def exp16_eval(const float[::1] x, float[::1] out, bint hi):
    """out = exp(x) by the kernels' vector exp (flprobe.h: AVX-512's 16
    lanes with or without its +inf fix-up above 88.37, AVX2's 8 lanes);
    for tests."""
    with nogil:
        fl_probe_exp16(&x[0], &out[0], x.shape[0], hi)


def log16_eval(const float[::1] x, float[::1] out):
    """out = log(x) by the AVX-512 kernels' 16-lane log (flprobe.h); for
    tests."""
    with nogil:
        fl_probe_log16(&x[0], &out[0], x.shape[0])


def read_probe(const float[::1] a, int n_threads):
    """Read all of a once, one contiguous share per thread (flprobe.h's
    vector sum): the bench's read-bandwidth reference.  Returns the sum."""
    cdef Py_ssize_t n = a.shape[0], t, lo, hi
    cdef double[::1] part = np.zeros(max(n_threads, 1))
    if n == 0:
        return 0.0
    for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static",
                    chunksize=1):
        lo = n * t // n_threads
        hi = n * (t + 1) // n_threads
        part[t] = fl_probe_read(&a[lo], hi - lo)
    return float(np.sum(part))


def math_probe(int func, int n_threads, Py_ssize_t reps):
    """Seconds per element per thread of fastmath's float exp (func 0) or
    log (func 1) over an L1-resident buffer in each of n_threads threads,
    the mean over the threads (flprobe.h): the bench's exp floor, measured
    apart from every kernel."""
    cdef double[::1] secs = np.zeros(n_threads)
    cdef float[::1] sink = np.zeros(n_threads, dtype=np.float32)
    cdef Py_ssize_t t
    for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static", chunksize=1):
        secs[t] = fl_probe_run(func, reps, &sink[t])
    return float(np.mean(secs)) / (<double>FL_PROBE_FLOATS * reps)
