"""Log-sum-exp, softmax and log-softmax over the middle axis of (P, K, Q).

Design:
A. The wrapper moves the reduced axes into one middle axis without copying
   whenever they are adjacent in memory, so (P, K, Q) covers axis=None,
   any single axis and any run of adjacent axes; the kernel never sees
   strides other than C order.
B. Work is split by `make_layout` (see _common.pxd): whole rows when the
   reduced axis is contiguous and wide, blocks of PLANE_BLOCK positions
   otherwise, with the inner loop along the contiguous axis so it
   vectorizes.  Each output element is written by exactly one unit, so the
   result does not depend on the thread count.
C. Softmax stores exp(x - max) once into the output and rescales it in
   cache: one exponential per element.
"""

from cython.parallel cimport prange
from libc.math cimport log

from _common cimport (
    floating, Layout, LAYOUT_ROWS, PLANE_BLOCK, make_layout, unit_start,
    threads_for, row_max, row_sumexp, planes_lse, planes_softmax_sums, safe_shift,
    fl_expf_neg_scale, fl_expf_poly, log1p_unit, vexp, vexp_lo, vexp_neg, vlog, vlog1p,
)

cdef void _lse_unit(const floating* x, Layout* L, Py_ssize_t u, floating* out,
                    int mode) noexcept nogil:
    """mode 0: out[pos] = lse; 1: softmax into out (x's shape); 2: log_softmax."""
    cdef double m[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef Py_ssize_t nb, base, pos, r, j, c
    cdef double mx, sm, lse
    cdef floating inv, sh
    cdef const floating* xr
    cdef floating* orow
    pos = unit_start(L, u, &nb, &base)
    if L.kind == LAYOUT_ROWS:
        for r in range(nb):
            xr = x + base + r * L.C
            # softmax keeps an infinite max (a +inf or all -inf row is NaN, as
            # in scipy.special.softmax and torch); lse and log_softmax shift by 0
            mx = row_max(xr, L.C)
            mx = mx if mode == 1 else safe_shift(mx)
            if mode == 0:
                out[pos + r] = <floating>(mx + log(row_sumexp(xr, L.C, mx, NULL)))
            elif mode == 1:
                orow = out + base + r * L.C
                inv = <floating>(1.0 / row_sumexp(xr, L.C, mx, orow))
                for c in range(L.C):
                    orow[c] = orow[c] * inv
            else:
                orow = out + base + r * L.C
                sh = <floating>(mx + log(row_sumexp(xr, L.C, mx, NULL)))
                for c in range(L.C):
                    orow[c] = xr[c] - sh
        return
    if mode == 0:
        planes_softmax_sums(x + base, L.cs, L.ps, L.C, nb, True, m, s, NULL, 0)
        planes_lse(m, s, nb, m, floating is float)
        for j in range(nb):
            out[pos + j] = <floating>m[j]
    elif mode == 1:
        planes_softmax_sums(x + base, L.cs, L.ps, L.C, nb, False, m, s, out + base, L.cs)
        for j in range(nb):
            s[j] = 1.0 / s[j]
        for c in range(L.C):
            orow = out + base + c * L.cs
            for j in range(nb):
                orow[j * L.ps] = orow[j * L.ps] * <floating>s[j]
    else:
        planes_softmax_sums(x + base, L.cs, L.ps, L.C, nb, True, m, s, NULL, 0)
        planes_lse(m, s, nb, m, floating is float)
        for c in range(L.C):
            orow = out + base + c * L.cs
            xr = x + base + c * L.cs
            for j in range(nb):
                orow[j * L.ps] = xr[j * L.ps] - <floating>m[j]


def lse_kernel(const floating[:, :, ::1] x, floating[::1] out, int mode, int n_threads):
    """Reduce x (P, K, Q) over K.

    mode 0 writes logsumexp into out (P*Q,); modes 1 and 2 write softmax /
    log_softmax into out (P*K*Q,).
    """
    cdef Layout L
    cdef Py_ssize_t u
    cdef int nt
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        return
    L = make_layout(x.shape[0], x.shape[1], x.shape[2])
    nt = threads_for(n_threads, L.units)
    for u in prange(L.units, schedule="static", nogil=True, num_threads=nt):
        _lse_unit(&x[0, 0, 0], &L, u, &out[0], mode)


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
