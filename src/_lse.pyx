"""Log-sum-exp, softmax and log-softmax over the middle axis of (P, K, Q).

Design:
A. The wrapper moves the reduced axes into one middle axis without copying
   whenever they are adjacent in memory, so (P, K, Q) covers axis=None,
   any single axis and any run of adjacent axes; the kernel never sees
   strides other than C order.
B. Work is split by `make_layout` (see _layout.pxd): whole rows when the
   reduced axis is contiguous and wide, blocks of PLANE_BLOCK positions
   otherwise, with the inner loop along the contiguous axis so it
   vectorizes.  Each output element is written by exactly one unit, so the
   result does not depend on the thread count.
C. Softmax stores exp(x - max) once into the output and rescales it in
   cache: one exponential per element.  Into an output that is not in the
   cache (out=, or a reused array), a row is finished in an L1 buffer and
   streamed out instead (_rows_streamed).
D. Rows of a few values (a reduced contiguous axis of up to 16 float or 8
   double values, and more rows than that) are turned into planes in L1 per
   unit (fltranspose.h), computed down the planes with one row per vector
   lane, and a softmax / log_softmax turned back into rows: no value is
   read or written at a stride.
E. float16 / bfloat16 input is read in its own width: each unit's values
   (up to HALF_UNIT) are widened into L1 as a float32 unit of the same
   positions and the float32 unit runs on them, so the results are the
   float32 kernel's on the widened values, bit for bit; a softmax whose
   planes lie apart in the output is copied there plane by plane.
"""

cimport numpy as cnp
from cython.parallel cimport prange

from _fastcall cimport FRESH_BYTES, fc_float, fc_grad, fc_half, fc_operand_kind, fc_threads_arg

from _common cimport (
    FL_KIND_F32, PLANE_BLOCK, STREAM_ROW, align64, deal, fl_log, fl_log_inplace, fl_stream_fence,
    floating, planes_lse, planes_max, planes_softmax_sums, planes_sumexp, planes_to_rows,
    prefetch_row, row_max, row_sumexp, rows_to_planes, safe_shift, stream_out, threads_for_work,
    tr_rows,
)
from _layout cimport (
    HALF_UNIT, LAYOUT_ROWS, Layout, make_layout, narrow_unit, unit_start, widen_unit,
)

from fastloss._threads import effective_n_threads

cnp.import_array()


cdef void _log_softmax_rows(const floating* x, Py_ssize_t C, Py_ssize_t nb, const double* m,
                            double* s, floating* out) noexcept nogil:
    """Row r of log_softmax: (x - m_r) - log(s_r) (the rows' sums s, shifts m)."""
    cdef Py_ssize_t r, c
    cdef floating sh, ls
    cdef const floating* xr
    cdef floating* orow
    fl_log_inplace(s, nb)
    for r in range(nb):
        xr = x + r * C
        orow = out + r * C
        sh = <floating>m[r]
        ls = <floating>s[r]
        for c in range(C):
            orow[c] = (xr[c] - sh) - ls


cdef void _rows_streamed(const floating* x, Py_ssize_t C, Py_ssize_t nb, floating* out,
                         int mode) noexcept nogil:
    """Softmax (mode 1) or log_softmax (2) of nb rows of C <= STREAM_ROW
    elements, each row finished in an L1 buffer and handed to memory with
    non-temporal stores: the output is written once, never read for
    ownership (a third of the traffic of ordinary stores).  The next row's
    lines are requested while this one is computed."""
    cdef floating buf[STREAM_ROW]
    cdef double mx
    cdef Py_ssize_t r, c
    cdef floating inv, sh, ls
    cdef const floating* xr
    if mode == 1:
        for r in range(nb):
            xr = x + r * C
            if floating is double:
                prefetch_row(xr + C, C)
            mx = row_max(xr, C)
            inv = <floating>(1.0 / row_sumexp(xr, C, mx, buf, xr + C))
            for c in range(C):
                buf[c] = buf[c] * inv
            stream_out(out + r * C, buf, C)
    else:
        # one row at a time, its log on its own (a row has at least WIDE_ROW
        # values), so that the row is still in L1 when it is read again
        for r in range(nb):
            xr = x + r * C
            mx = safe_shift(row_max(xr, C))
            sh = <floating>mx
            ls = <floating>fl_log(row_sumexp(xr, C, mx, NULL, xr + C))
            for c in range(C):
                buf[c] = (xr[c] - sh) - ls
            stream_out(out + r * C, buf, C)
    fl_stream_fence()


cdef void _lse_unit(const floating* x, Layout* L, Py_ssize_t u, floating* out,
                    int mode, bint stream) noexcept nogil:
    """mode 0: out[pos] = lse; 1: softmax into out (x's shape); 2: log_softmax.

    stream: write a softmax or log_softmax of rows with non-temporal stores
    (an output that is not in the cache: a reused or caller's array)."""
    cdef double m[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef Py_ssize_t nb, base, pos, r, c
    cdef double mx
    cdef floating inv
    cdef const floating* xr
    cdef floating* orow
    # class planes of PLANE_BLOCK narrow rows (up to 16 float or 8 double
    # values: 32 KiB), in and out, 64-byte aligned
    cdef char rawx[PLANE_BLOCK * 64 + 64]
    cdef char rawo[PLANE_BLOCK * 64 + 64]
    cdef floating* xb
    cdef floating* ob
    cdef floating rmax[PLANE_BLOCK]
    pos = unit_start(L, u, &nb, &base)
    if L.kind == LAYOUT_ROWS:
        if stream and mode != 0 and L.C <= STREAM_ROW:
            _rows_streamed(x + base, L.C, nb, out + base, mode)
            return
        if mode == 1:
            for r in range(nb):
                xr = x + base + r * L.C
                # softmax keeps an infinite max (a +inf or all -inf row is NaN,
                # as in scipy.special.softmax and torch)
                mx = row_max(xr, L.C)
                orow = out + base + r * L.C
                inv = <floating>(1.0 / row_sumexp(xr, L.C, mx, orow, xr + L.C))
                for c in range(L.C):
                    orow[c] = orow[c] * inv
            return
        # lse and log_softmax shift by 0 where the max is infinite; the logs of
        # the unit's rows (nb <= PLANE_BLOCK: rows have C >= WIDE_ROW) are
        # taken together in one vector loop instead of a libm call per row
        for r in range(nb):
            xr = x + base + r * L.C
            m[r] = safe_shift(row_max(xr, L.C))
            s[r] = row_sumexp(xr, L.C, m[r], NULL, xr + L.C)
        if mode == 0:
            # double: a logsumexp near 0 would lose the digits that the float
            # log of a rounded sum drops
            planes_lse(m, s, nb, m, False)
            for r in range(nb):
                out[pos + r] = <floating>m[r]
        else:
            _log_softmax_rows(x + base, L.C, nb, m, s, out + base)
        return
    if not (L.ps == L.C and L.cs == 1 and L.C > 1 and tr_rows(L.C, floating is float)):
        _lse_planes(x + base, L.cs, L.ps, L.C, nb, mode, False, NULL, out + base, out + pos)
        return
    # rows of a few values: the unit's rows as planes in L1 (design D)
    xb = <floating*>align64(&rawx[0])
    ob = <floating*>align64(&rawo[0])
    rows_to_planes(x + base, L.C, nb, xb, PLANE_BLOCK, x + base + nb * L.C, rmax)
    _lse_planes(xb, PLANE_BLOCK, 1, L.C, nb, mode, True, rmax, ob, out + pos)
    if mode == 0:
        return
    if stream:
        planes_to_rows(ob, PLANE_BLOCK, L.C, nb, xb)   # over the logits' planes
        stream_out(out + base, xb, nb * L.C)
        fl_stream_fence()
    else:
        planes_to_rows(ob, PLANE_BLOCK, L.C, nb, out + base)


cdef void _lse_planes(const floating* x, Py_ssize_t cs, Py_ssize_t ps, Py_ssize_t C,
                      Py_ssize_t nb, int mode, bint sweep, const floating* rmax,
                      floating* out, floating* lse) noexcept nogil:
    """nb positions of C values at x[c*cs + j*ps]: their logsumexp into lse[j]
    (mode 0), or softmax / log_softmax into out at the same offsets.  sweep:
    a softmax's sums plane by plane (planes in an L1 buffer: the small-class
    loop of planes_softmax_sums, with the exponentials stored, stays scalar
    there; 2.4 -> 7.3 ms for softmax over (1000000, 4) float32), with the
    row maxima rmax (from the transpose) when not NULL."""
    cdef double m[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef Py_ssize_t j, c
    cdef const floating* xr
    cdef floating* orow
    if mode == 0:
        planes_softmax_sums(x, cs, ps, C, nb, True, m, s, NULL, 0)
        planes_lse(m, s, nb, m, floating is float)
        for j in range(nb):
            lse[j] = <floating>m[j]
    elif mode == 1:
        if sweep:
            if rmax != NULL:
                for j in range(nb):
                    m[j] = rmax[j]
            else:
                planes_max(x, cs, ps, C, nb, m)
            planes_sumexp(x, cs, ps, C, nb, m, s, out, cs)
        else:
            planes_softmax_sums(x, cs, ps, C, nb, False, m, s, out, cs)
        for j in range(nb):
            s[j] = 1.0 / s[j]
        for c in range(C):
            orow = out + c * cs
            for j in range(nb):
                orow[j * ps] = orow[j * ps] * <floating>s[j]
    else:
        # (x - max) - log(sum), as torch and SciPy: x - lse in float32 would
        # round lse to the magnitude of the logits first
        planes_softmax_sums(x, cs, ps, C, nb, True, m, s, NULL, 0)
        fl_log_inplace(s, nb)
        for c in range(C):
            orow = out + c * cs
            xr = x + c * cs
            for j in range(nb):
                orow[j * ps] = (xr[j * ps] - <floating>m[j]) - <floating>s[j]


cdef void _lse_half_unit(const unsigned short* x, int kx, Layout* L, Py_ssize_t u,
                         float* out, int mode) noexcept nogil:
    """_lse_unit for float16 / bfloat16 input (design E)."""
    cdef float xraw[HALF_UNIT + 16]
    cdef float oraw[HALF_UNIT + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* ob = <float*>align64(&oraw[0])
    cdef Py_ssize_t nb, base, pos
    cdef Layout B
    pos = widen_unit(x, kx, L, u, xb, &B, &nb, &base)
    if mode == 0:   # one value a position
        _lse_unit(xb, &B, 0, out + pos, 0, False)
    elif L.kind == LAYOUT_ROWS or L.ps != 1:   # rows: the output's layout is the block's
        _lse_unit(xb, &B, 0, out + base, mode, False)
    else:
        _lse_unit(xb, &B, 0, ob, mode, False)
        narrow_unit(ob, out, FL_KIND_F32, L, nb, base)


# the longest reduced axis lse_half reads in its own width: rows of one
# position (a contiguous axis of at least WIDE_ROW values), and the rest
HALF_ROWS_MAX = HALF_UNIT
HALF_PLANES_MAX = HALF_UNIT // PLANE_BLOCK


def half_fits(Py_ssize_t P, Py_ssize_t K, Py_ssize_t Q):
    """True when lse_half takes an input of shape (P, K, Q)."""
    if K < 1:
        return False
    if make_layout(P, K, Q).kind == LAYOUT_ROWS:
        return K <= HALF_ROWS_MAX
    return K <= HALF_PLANES_MAX


def lse_half(cnp.ndarray x, Py_ssize_t P, Py_ssize_t K, Py_ssize_t Q, float[::1] out,
             int mode, int n_threads):
    """lse_kernel for float16 / bfloat16 x (P, K, Q), C-contiguous, read in its
    own width (half_fits(P, K, Q)); out is float32."""
    cdef Layout L
    cdef Py_ssize_t u
    cdef int nt
    cdef int kx = fc_operand_kind(x, P * K * Q, "input")
    cdef const unsigned short* xp = <const unsigned short*>cnp.PyArray_DATA(x)
    if kx == FL_KIND_F32 or not half_fits(P, K, Q):
        raise ValueError("fastloss internal error: lse_half operand")
    if P == 0 or Q == 0:
        return
    L = make_layout(P, K, Q)
    with nogil:
        nt = threads_for_work(n_threads, L.units, P * K * Q)
        if nt == 1:
            for u in range(L.units):
                _lse_half_unit(xp, kx, &L, u, &out[0], mode)
        else:
            for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt),
                            num_threads=nt):
                _lse_half_unit(xp, kx, &L, u, &out[0], mode)


cdef void _lse_run(const floating* x, Py_ssize_t P, Py_ssize_t K, Py_ssize_t Q,
                   floating* out, int mode, bint stream, int n_threads) noexcept nogil:
    cdef Layout L
    cdef Py_ssize_t u
    cdef int nt
    if P == 0 or K == 0 or Q == 0:
        return
    L = make_layout(P, K, Q)
    nt = threads_for_work(n_threads, L.units, P * K * Q)
    if nt == 1:
        for u in range(L.units):
            _lse_unit(x, &L, u, out, mode, stream)
    else:
        for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                        num_threads=nt):
            _lse_unit(x, &L, u, out, mode, stream)


def lse_kernel(const floating[:, :, ::1] x, floating[::1] out, int mode, bint stream,
               int n_threads):
    """Reduce x (P, K, Q) over K.

    mode 0 writes logsumexp into out (P*Q,); modes 1 and 2 write softmax /
    log_softmax into out (P*K*Q,), with non-temporal stores if stream.
    """
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        return
    with nogil:
        _lse_run(&x[0, 0, 0], x.shape[0], x.shape[1], x.shape[2], &out[0], mode, stream,
                 n_threads)


def lse_call(object a, object axis, object keepdims, object n_threads, int mode):
    """logsumexp (mode 0), softmax (1) or log_softmax (2) for the common case, else None.

    Taken: a plain float32/float64 ndarray (see _fastcall.pxd; float16 and
    bfloat16 ones where lse_half reads them, with a float32 result) with
    at least one element, axis None or one Python int in range, keepdims a
    bool; softmax and log_softmax of half data with an output below
    FRESH_BYTES (a larger float32 one comes from fastloss._buffers on the
    full path).  None sends the call down the full path, which owns every
    error message and the other axis forms.
    """
    cdef int ft = fc_float(a)
    cdef bint half = False
    cdef cnp.ndarray xa
    cdef int nd, ax, i, k = 0, nt = 1
    cdef Py_ssize_t P = 1, K = 1, Q = 1
    cdef cnp.npy_intp dims[32]
    cdef bint keep, stream = False
    cdef void* p
    cdef object out
    if ft < 0:
        if fc_half(a) < 0:
            return None
        half = True
        ft = cnp.NPY_FLOAT  # the result's dtype
    if not fc_threads_arg(n_threads) or type(keepdims) is not bool:
        return None
    xa = <cnp.ndarray>a
    nd = cnp.PyArray_NDIM(xa)
    if cnp.PyArray_SIZE(xa) == 0 or nd > 32:
        return None
    if half and mode != 0 and cnp.PyArray_SIZE(xa) * 4 >= FRESH_BYTES:
        return None  # a float32 output of fastloss._buffers: the full path
    keep = keepdims
    if axis is None:
        K = cnp.PyArray_SIZE(xa)
        ax = -1
    elif type(axis) is int and -nd <= axis < nd:
        ax = axis % nd
        for i in range(nd):
            if i < ax:
                P *= cnp.PyArray_DIM(xa, i)
            elif i == ax:
                K = cnp.PyArray_DIM(xa, i)
            else:
                Q *= cnp.PyArray_DIM(xa, i)
    else:
        return None
    if half and not half_fits(P, K, Q):
        return None  # the full path's float32 copy
    if make_layout(P, K, Q).units > 1:
        nt = effective_n_threads(n_threads)
    if mode != 0 and half:
        out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), ft, 0)
    elif mode != 0:
        # as the full path: from FRESH_BYTES up from fastloss._buffers (an
        # output the caller dropped is written again), streamed where fc_grad says
        out = fc_grad(xa, None, 1, &p, &stream)
    else:
        for i in range(nd):
            if ax < 0 or i == ax:
                if keep:
                    dims[k] = 1
                    k += 1
            else:
                dims[k] = cnp.PyArray_DIM(xa, i)
                k += 1
        out = cnp.PyArray_EMPTY(k, dims, ft, 0)
    if half:
        lse_half(xa, P, K, Q, cnp.PyArray_Ravel(<cnp.ndarray>out, cnp.NPY_CORDER), mode, nt)
    else:
        with nogil:
            if ft == cnp.NPY_FLOAT:
                _lse_run(<float*>cnp.PyArray_DATA(xa), P, K, Q,
                         <float*>cnp.PyArray_DATA(<cnp.ndarray>out), mode, stream, nt)
            else:
                _lse_run(<double*>cnp.PyArray_DATA(xa), P, K, Q,
                         <double*>cnp.PyArray_DATA(<cnp.ndarray>out), mode, stream, nt)
    if k == 0 and mode == 0:
        return out[()]
    return out
