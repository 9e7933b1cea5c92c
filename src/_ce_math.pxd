# The row and block math of _classification.pyx's class-index
# cross-entropy (header-only, inline): the 'mean' denominator read from the
# targets, a labelled row's loss and gradient, a block's weighted class sum.

from cython.parallel cimport prange
from libc.limits cimport INT_MAX, INT_MIN
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from _common cimport (
    ELEM_BLOCK, BlockOut, bad_label, block_init, combine_blocks, deal, fl_row_axpb,
    fl_row_axpbf, floating, label_t, n_blocks, row_dot, threads_for_work,
)


cdef inline void weight_sum_unit(const label_t* t, Py_ssize_t n, Py_ssize_t u,
                                 const double* w, const double* sw, Py_ssize_t ignore,
                                 Py_ssize_t C, BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, y
    cdef Py_ssize_t i0 = u * ELEM_BLOCK
    cdef Py_ssize_t i1 = i0 + ELEM_BLOCK if i0 + ELEM_BLOCK < n else n
    cdef double acc = 0.0
    cdef Py_ssize_t cnt = 0
    cdef int cnt32 = 0, y32, c32, ig32, anybad = 0
    cdef bint ig, ok, hi
    block_init(out)
    if w == NULL and sw == NULL:
        # no weights: a count, branch-free so that it vectorizes (a double
        # sum of ones waits on each add: the 'mean' gradient of (4194304,
        # 10) rows spent a fifth of its time here); the same value, exact
        if label_t is int64_t:
            for i in range(i0, i1):
                y = <Py_ssize_t>t[i]
                ig = y == ignore
                ok = <size_t>y < <size_t>C
                cnt += ok & (not ig)
                anybad |= (not ok) & (not ig)
        else:
            # labels that fit an int: 32-bit lanes, twice as many a vector
            # as 64-bit ones (block_labels's form; the uint8 labels of a
            # (2, 160^3) map: 0.58 against 1.21 ms at 2 threads)
            c32 = <int>C
            hi = INT_MIN <= ignore <= INT_MAX
            ig32 = <int>ignore if hi else 0
            for i in range(i0, i1):
                y32 = <int>t[i]
                ig = hi & (y32 == ig32)
                ok = <unsigned int>y32 < <unsigned int>c32
                cnt32 += ok & (not ig)
                anybad |= (not ok) & (not ig)
            cnt = cnt32
        out.weight = <double>cnt
        if not anybad:
            return
    for i in range(i0, i1):
        y = <Py_ssize_t>t[i]
        if y == ignore:
            continue
        if bad_label(y, C):
            if out.bad < 0:
                out.bad = i
            continue
        acc += (w[y] if w != NULL else 1.0) * (sw[i] if sw != NULL else 1.0)
    out.weight = acc


cdef inline int weight_sum_run(const label_t* t, Py_ssize_t n, const double* wp,
                               const double* swp, Py_ssize_t ignore, Py_ssize_t C,
                               int n_threads, BlockOut* total) noexcept nogil:
    """The 'mean' denominator sum_i sw_i w[t_i] over non-ignored i into
    total.weight (first bad position in total.bad); -1 if out of memory."""
    cdef Py_ssize_t units = n_blocks(n, ELEM_BLOCK), u
    cdef int nt = threads_for_work(n_threads, units, n)
    cdef BlockOut* blocks = <BlockOut*>malloc((units if units > 0 else 1) * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    if nt == 1:
        for u in range(units):
            weight_sum_unit(t, n, u, wp, swp, ignore, C, &blocks[u])
    else:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            weight_sum_unit(t, n, u, wp, swp, ignore, C, &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


cdef inline double ce_row_finish(const floating* xr, floating* gr, Py_ssize_t C, Py_ssize_t y,
                                 double lse, double sm, const double* w, double wy, double swj,
                                 double eps, double wsum, double ew,
                                 double gscale) noexcept nogil:
    """The loss of one labelled row (lse its log-sum-exp, sm its sum of
    exponentials); with gr (holding e_c = exp(x_c - max)), its gradient
    g_c = coef (A e_c / sm - a_c) written over the exponentials.

    ew = eps / C * wsum comes from the caller, computed once per unit: as
    a product here, the compiler fused either of the two products of
    A = (1 - eps) w_y + ew into a multiply-add, depending on where it
    hoisted the row-invariant one, and the streamed and two-step paths
    differed in the last bit."""
    cdef double loss, coef0, epc = eps / C
    cdef floating fa, fb
    loss = (1.0 - eps) * wy * (lse - xr[y])
    if eps > 0:
        loss += epc * (wsum * lse - row_dot(xr, w, C))
    if gr != NULL:
        coef0 = swj * gscale
        fa = <floating>(coef0 * ((1.0 - eps) * wy + ew) / sm)
        fb = <floating>(coef0 * epc)
        if floating is float:
            fl_row_axpbf(gr, C, fa, fb, w if eps > 0 else NULL)
        else:
            fl_row_axpb(gr, C, fa, fb, w if eps > 0 else NULL)
        gr[y] = gr[y] - <floating>(coef0 * (1.0 - eps) * wy)
    return loss * swj


cdef inline void planes_wdot(const floating* x, Py_ssize_t cs, Py_ssize_t ps, Py_ssize_t C,
                             Py_ssize_t nb, const double* w, double* dot) noexcept nogil:
    """dot[j] = sum_c w_c x[c*cs + j*ps] (w == NULL: plain sum)."""
    cdef Py_ssize_t c, j
    cdef double wc
    cdef const floating* xc
    for j in range(nb):
        dot[j] = 0.0
    for c in range(C):
        xc = x + c * cs
        wc = w[c] if w != NULL else 1.0
        for j in range(nb):
            dot[j] += wc * xc[j * ps]
