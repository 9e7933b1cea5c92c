"""Kernels of the metric-learning losses: triplet margin, contrastive and
center loss, a reduction over a row of an embedding, then over rows.

Design:
A. Every loss here reads its rows, reduces them to a few double scalars
   (p-norms of differences), and (for the gradient) writes the rows'
   gradients while they are still in cache: loss and gradients in ONE
   pass, pre-multiplied by `gscale` (1/denominator for 'mean') and the
   row's sample weight.
B. Work units are fixed blocks of rows (`rows_per_unit` of _layout.pxd:
   about 16384 elements per unit); per-unit BlockOut partials are combined
   in unit order: bit-identical for any thread count.
C. The p-norm pieces (pw, dist_finish, dist_factor, phi, pdiff_sum,
   grad_row) and each loss's row (triplet_row, contrastive_row,
   center_row) are written once, in _embedding_math.pxd, as `cdef inline`
   helpers for every p and dtype; this file holds the units, the drivers
   and the entries, _embedding_half.pxi the units of float16 / bfloat16
   rows.
D. Labels are range-checked where they are read; a bad label contributes
   nothing, its unit records the first bad position, and the wrapper raises.
E. center_loss's gradient for the centers is a scatter-add.  To keep it
   deterministic it is computed after the row pass, one class per work
   unit, by summing the already written feature gradients of that class's
   rows in row order (a counting sort of the labels gives the rows).
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _fastcall cimport (
    RED_MEAN, RED_NONE, fc_empty_like, fc_float, fc_grad, fc_labels64, fc_operand_kind,
    fc_plain, fc_real, fc_reduction, fc_result, fc_shape_is, fc_threads_arg,
)

from fastloss._threads import effective_n_threads

cnp.import_array()

from _common cimport (
    FL_KIND_BF16, FL_KIND_F32, HALF_ROW, STREAM_ROW, BlockOut, align64, alloc_blocks,
    block_init, combine_blocks, deal, fl_narrow, fl_narrow_bf16_nt, fl_stream_f32,
    fl_stream_fence, fl_widen, floating, label_t, n_blocks, prefetch_bytes, skip_label,
    stream_out, threads_for,
)
from _embedding_math cimport (
    center_grad_class, center_grad_class_half, center_row, class_order, contrastive_bad,
    contrastive_row, triplet_row,
)
from _layout cimport rows_per_unit, unit_rows


HALF_ROW_MAX = HALF_ROW

include "_embedding_half.pxi"


# ==================================================== triplet

cdef void _triplet_unit(const floating* a, const floating* pp, const floating* n,
                        Py_ssize_t N, Py_ssize_t D, Py_ssize_t R, Py_ssize_t u,
                        double margin, int pkind, double pn, floating eps, bint swap,
                        bint squared, const double* sw, floating* loss_out,
                        floating* ga, floating* gp, floating* gn, double gscale,
                        bint stream, BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, off
    cdef double loss, swj
    # stream: gradients out of the cache (reused), each row finished in an
    # L1 buffer and streamed out: their lines are not read for ownership
    # (three outputs of the size of the three inputs: in place, half again
    # the memory traffic)
    cdef floating bufa[STREAM_ROW]
    cdef floating bufp[STREAM_ROW]
    cdef floating bufn[STREAM_ROW]
    cdef bint sb = stream and ga != NULL and D <= STREAM_ROW
    cdef floating* ra = NULL
    cdef floating* rp = NULL
    cdef floating* rn = NULL
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        swj = sw[i] if sw != NULL else 1.0
        if ga != NULL:   # the rows' gradients: in the buffers, or in place
            ra = &bufa[0] if sb else ga + off
            rp = &bufp[0] if sb else gp + off
            rn = &bufn[0] if sb else gn + off
        loss = triplet_row(a + off, pp + off, n + off, D, margin, pkind, pn, eps, swap, squared,
                           swj, ra, rp, rn, gscale)
        if sb:
            stream_out(ga + off, bufa, D)
            stream_out(gp + off, bufp, D)
            stream_out(gn + off, bufn, D)
        if loss_out != NULL:
            loss_out[i] = <floating>loss
        out.loss += loss
        out.weight += swj
    if sb:
        fl_stream_fence()


cdef object _triplet_run(const floating* a, const floating* pp, const floating* n,
                         Py_ssize_t N, Py_ssize_t D, double margin, double p, double eps,
                         bint swap, bint squared, const double* swp, floating* lp,
                         floating* gap, floating* gpp, floating* gnp, double gscale,
                         int n_threads, bint stream, BlockOut* total):
    """The triplet driver on raw rows (N, D); the sums in *total."""
    cdef Py_ssize_t R = rows_per_unit(D)
    cdef Py_ssize_t units = n_blocks(N, R), u
    cdef int pkind = 2 if p == 2.0 else (1 if p == 1.0 else 0)
    cdef BlockOut* blocks
    cdef int nt
    if D == 0:
        # empty embeddings: distances are 0 (torch: norm of an empty vector)
        a = pp = n = NULL
        gap = gpp = gnp = NULL
    if units == 1:
        # one work unit: on the calling thread, no parallel region
        _triplet_unit(a, pp, n, N, D, R, 0, margin, pkind, p, <floating>eps, swap, squared,
                      swp, lp, gap, gpp, gnp, gscale, stream, total)
        return None
    blocks = alloc_blocks(units)
    nt = threads_for(n_threads, units)
    try:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _triplet_unit(a, pp, n, N, D, R, u, margin, pkind, p, <floating>eps, swap, squared,
                          swp, lp, gap, gpp, gnp, gscale, stream, &blocks[u])
        combine_blocks(blocks, units, total)
    finally:
        free(blocks)


def triplet(const floating[:, ::1] anchor, const floating[:, ::1] positive,
            const floating[:, ::1] negative, double margin, double p, double eps,
            bint swap, bint squared, const double[::1] sample_weight,
            floating[::1] loss_out, floating[::1] ga, floating[::1] gp,
            floating[::1] gn, double gscale, int n_threads, bint stream=False):
    """Triplet margin loss of rows of (N, D) embeddings.

    `stream`: the gradients are reused buffers out of the cache, written
    with non-temporal stores.  Returns (sum of losses, sum of sample
    weights).
    """
    cdef Py_ssize_t N = anchor.shape[0], D = anchor.shape[1]
    cdef BlockOut total
    if N == 0:
        return 0.0, 0.0
    _triplet_run(&anchor[0, 0] if D > 0 else NULL, &positive[0, 0] if D > 0 else NULL,
                 &negative[0, 0] if D > 0 else NULL, N, D, margin, p, eps, swap, squared,
                 &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                 &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                 &ga[0] if ga.shape[0] > 0 else NULL, &gp[0] if gp.shape[0] > 0 else NULL,
                 &gn[0] if gn.shape[0] > 0 else NULL, gscale, n_threads, stream, &total)
    return total.loss, total.weight


def triplet_call(object anchor, object positive, object negative, object margin, object p,
                 object eps, object swap, object squared, object reduction,
                 object sample_weight, bint return_grad, object n_threads):
    """triplet_margin_loss for the common case in one call, else None.

    Taken: float32/float64 (N, D) rows as plain ndarrays of one dtype (see
    _fastcall.pxd), N, D > 0, options of their plain Python types, no
    sample weights.  None sends the call down the full path, which owns
    every error message.
    """
    cdef int ft = fc_float(anchor)
    cdef int red = fc_reduction(reduction)
    cdef cnp.ndarray xa
    cdef double m, pn, e, gscale
    cdef Py_ssize_t N, D
    cdef BlockOut total
    cdef object loss_arr = None, grads = None
    cdef object g0, g1, g2
    cdef void* lp = NULL
    cdef void* gp0 = NULL
    cdef void* gp1 = NULL
    cdef void* gp2 = NULL
    cdef bint s0, s1, s2, stream = False
    cdef int nt = 1
    if (ft < 0 or fc_float(positive) != ft or fc_float(negative) != ft or red < 0
            or sample_weight is not None or not fc_threads_arg(n_threads)
            or type(swap) is not bool or type(squared) is not bool):
        return None
    if not (fc_real(margin, &m) and fc_real(p, &pn) and fc_real(eps, &e)):
        return None
    if not 0.0 < pn < INFINITY:
        return None
    xa = <cnp.ndarray>anchor
    if (cnp.PyArray_NDIM(xa) != 2 or not fc_shape_is(<cnp.ndarray>positive, xa, -1)
            or not fc_shape_is(<cnp.ndarray>negative, xa, -1)):
        return None
    N, D = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1)
    if N == 0 or D == 0:
        return None
    if n_blocks(N, rows_per_unit(D)) > 1:
        nt = effective_n_threads(n_threads)
    if red == RED_NONE:
        loss_arr = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(xa), ft, 0)
        lp = cnp.PyArray_DATA(<cnp.ndarray>loss_arr)
    if return_grad:
        g0 = fc_grad(xa, None, 3, &gp0, &s0)
        g1 = fc_grad(xa, None, 3, &gp1, &s1)
        g2 = fc_grad(xa, None, 3, &gp2, &s2)
        grads = (g0, g1, g2)
        stream = s0 and s1 and s2
    gscale = 1.0 / N if red == RED_MEAN else 1.0
    if ft == cnp.NPY_FLOAT:
        _triplet_run(<float*>cnp.PyArray_DATA(xa),
                     <float*>cnp.PyArray_DATA(<cnp.ndarray>positive),
                     <float*>cnp.PyArray_DATA(<cnp.ndarray>negative), N, D, m, pn, e,
                     <bint>swap, <bint>squared, NULL, <float*>lp, <float*>gp0, <float*>gp1,
                     <float*>gp2, gscale, nt, stream, &total)
    else:
        _triplet_run(<double*>cnp.PyArray_DATA(xa),
                     <double*>cnp.PyArray_DATA(<cnp.ndarray>positive),
                     <double*>cnp.PyArray_DATA(<cnp.ndarray>negative), N, D, m, pn, e,
                     <bint>swap, <bint>squared, NULL, <double*>lp, <double*>gp0, <double*>gp1,
                     <double*>gp2, gscale, nt, stream, &total)
    return fc_result(red, total.loss, total.weight, ft, loss_arr, return_grad, grads)


def triplet_half(cnp.ndarray anchor, cnp.ndarray positive, cnp.ndarray negative,
                 double margin, double p, double eps, bint swap, bint squared,
                 const double[::1] sample_weight, float[::1] loss_out, object ga,
                 object gp, object gn, double gscale, int n_threads, bint stream=False):
    """`triplet` on float16 / bfloat16 rows (N, D), D <= HALF_ROW, all three
    of one dtype, read in their own width; gradients (None, or three arrays
    of one dtype: float32 or the input's) narrowed to nearest even.
    `stream`: the gradients are reused buffers out of the cache."""
    cdef Py_ssize_t N = anchor.shape[0], D = anchor.shape[1], u
    cdef Py_ssize_t R = rows_per_unit(D)
    cdef Py_ssize_t units = n_blocks(N, R)
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef int pkind = 2 if p == 2.0 else (1 if p == 1.0 else 0)
    cdef int kind = fc_operand_kind(anchor, N * D, "anchor")
    cdef int kg = FL_KIND_F32
    cdef const unsigned short* ap = <const unsigned short*>cnp.PyArray_DATA(anchor)
    cdef const unsigned short* pq = <const unsigned short*>cnp.PyArray_DATA(positive)
    cdef const unsigned short* nq = <const unsigned short*>cnp.PyArray_DATA(negative)
    cdef void* gap = NULL
    cdef void* gpp = NULL
    cdef void* gnp = NULL
    cdef BlockOut* blocks
    cdef BlockOut total
    cdef int nt
    if (fc_operand_kind(positive, N * D, "positive") != kind
            or fc_operand_kind(negative, N * D, "negative") != kind
            or kind == FL_KIND_F32 or D < 1 or D > HALF_ROW):
        raise ValueError("fastloss internal error: triplet_half operands")
    if ga is not None:
        kg = fc_operand_kind(ga, N * D, "grad")
        if (fc_operand_kind(gp, N * D, "grad") != kg
                or fc_operand_kind(gn, N * D, "grad") != kg):
            raise ValueError("fastloss internal error: triplet_half gradients")
        gap = cnp.PyArray_DATA(ga)
        gpp = cnp.PyArray_DATA(gp)
        gnp = cnp.PyArray_DATA(gn)
    if N == 0:
        return 0.0, 0.0
    blocks = alloc_blocks(units)
    nt = threads_for(n_threads, units)
    try:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _triplet_half_unit(ap, pq, nq, kind, N, D, R, u, margin, pkind, p, <float>eps,
                               swap, squared, swp, lp, gap, gpp, gnp, kg, gscale, stream,
                               &blocks[u])
        combine_blocks(blocks, units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight


# ============================================================ contrastive

cdef void _contrastive_unit(const floating* x1, const floating* x2, const label_t* t,
                            Py_ssize_t N, Py_ssize_t D, Py_ssize_t R, Py_ssize_t u,
                            double margin, const double* sw, floating* loss_out,
                            floating* g1, floating* g2, double gscale,
                            BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, off, y
    cdef double loss, swj
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        y = <Py_ssize_t>t[i]
        if contrastive_bad(y, i, loss_out, sizeof(floating), g1, g2, D * sizeof(floating),
                           out):
            continue
        swj = sw[i] if sw != NULL else 1.0
        loss = contrastive_row(x1 + off, x2 + off, D, y, margin, swj,
                               g1 + off if g1 != NULL else NULL,
                               g2 + off if g1 != NULL else NULL, gscale)
        if loss_out != NULL:
            loss_out[i] = <floating>loss
        out.loss += loss
        out.weight += swj


cdef int _contrastive_run(const floating* x1, const floating* x2, const label_t* t,
                          Py_ssize_t N, Py_ssize_t D, double margin, const double* swp,
                          floating* lp, floating* g1p, floating* g2p, double gscale,
                          int n_threads, BlockOut* total) noexcept nogil:
    """The contrastive driver on raw rows (N, D), N > 0; the sums in *total
    (one work unit: on the calling thread, no parallel region); -1 if out
    of memory."""
    cdef Py_ssize_t R = rows_per_unit(D)
    cdef Py_ssize_t units = n_blocks(N, R), u
    cdef BlockOut* blocks
    cdef int nt
    if D == 0:
        x1 = x2 = g1p = g2p = NULL
    if units == 1:
        _contrastive_unit(x1, x2, t, N, D, R, 0, margin, swp, lp, g1p, g2p, gscale, total)
        return 0
    blocks = <BlockOut*>malloc(units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    nt = threads_for(n_threads, units)
    for u in prange(units, schedule="static", chunksize=deal(units, nt), num_threads=nt):
        _contrastive_unit(x1, x2, t, N, D, R, u, margin, swp, lp, g1p, g2p, gscale, &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


def contrastive(const floating[:, ::1] x1, const floating[:, ::1] x2,
                const label_t[::1] label, double margin,
                const double[::1] sample_weight, floating[::1] loss_out,
                floating[::1] g1, floating[::1] g2, double gscale, int n_threads):
    """Contrastive loss of row pairs; label 0 = similar, 1 = dissimilar.

    Returns (sum of losses, sum of sample weights, first bad label or -1).
    """
    cdef Py_ssize_t N = x1.shape[0], D = x1.shape[1]
    cdef BlockOut total
    cdef int rc
    if N == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _contrastive_run(&x1[0, 0] if D > 0 else NULL, &x2[0, 0] if D > 0 else NULL,
                              &label[0], N, D, margin,
                              &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                              &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                              &g1[0] if g1.shape[0] > 0 else NULL,
                              &g2[0] if g2.shape[0] > 0 else NULL, gscale, n_threads, &total)
    if rc:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


cdef bint _pair_rows(object x1, object x2, object label, object reduction, object sample_weight,
                     object n_threads, int* ft, int* red, Py_ssize_t* N,
                     Py_ssize_t* D) noexcept:
    """The common case of a prepared embedding call: float32/float64 (N, D)
    rows x1 (and x2 of its shape and dtype unless None), N, D > 0, labels a
    plain (N,) array, reduction a known name, no sample weights."""
    cdef cnp.ndarray xa
    ft[0] = fc_float(x1)
    red[0] = fc_reduction(reduction)
    if (ft[0] < 0 or red[0] < 0 or sample_weight is not None or not fc_threads_arg(n_threads)
            or (x2 is not None and fc_float(x2) != ft[0]) or not fc_plain(label)):
        return False
    xa = <cnp.ndarray>x1
    if cnp.PyArray_NDIM(xa) != 2 or (x2 is not None and not fc_shape_is(<cnp.ndarray>x2, xa, -1)):
        return False
    N[0], D[0] = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1)
    return N[0] > 0 and D[0] > 0 and fc_shape_is(<cnp.ndarray>label, xa, 1)


def contrastive_call(object x1, object x2, object label, object margin, object reduction,
                     object sample_weight, bint return_grad, object n_threads):
    """contrastive_loss for the common case in one call, else None.

    Taken: float32/float64 (N, D) rows of one dtype, N, D > 0, integer or
    bool labels (N,) (read as int64), a Python float or int margin, no
    sample weights.  None (also for a label other than 0 / 1) sends the
    call down the full path, which owns every error message.
    """
    cdef int ft, red, nt = 1, rc
    cdef Py_ssize_t N, D
    cdef double m, gscale
    cdef int64_t* owned
    cdef const int64_t* t
    cdef BlockOut total
    cdef object loss_arr = None, grads = None, g1, g2
    cdef bint stream
    cdef void* lp = NULL
    cdef void* gp1 = NULL
    cdef void* gp2 = NULL
    if not (_pair_rows(x1, x2, label, reduction, sample_weight, n_threads, &ft, &red, &N, &D)
            and fc_real(margin, &m)):
        return None
    t = fc_labels64(<cnp.ndarray>label, True, N, &owned)
    if t == NULL:
        return None
    if n_blocks(N, rows_per_unit(D)) > 1:
        nt = effective_n_threads(n_threads)
    if red == RED_NONE:
        loss_arr = fc_empty_like(<cnp.ndarray>label, ft, &lp)
    if return_grad:  # (the float pass does not stream)
        g1 = fc_grad(<cnp.ndarray>x1, None, 2, &gp1, &stream)
        g2 = fc_grad(<cnp.ndarray>x1, None, 2, &gp2, &stream)
        grads = (g1, g2)
    gscale = 1.0 / N if red == RED_MEAN else 1.0
    with nogil:
        if ft == cnp.NPY_FLOAT:
            rc = _contrastive_run(<float*>cnp.PyArray_DATA(<cnp.ndarray>x1),
                                  <float*>cnp.PyArray_DATA(<cnp.ndarray>x2), t, N, D, m, NULL,
                                  <float*>lp, <float*>gp1, <float*>gp2, gscale, nt, &total)
        else:
            rc = _contrastive_run(<double*>cnp.PyArray_DATA(<cnp.ndarray>x1),
                                  <double*>cnp.PyArray_DATA(<cnp.ndarray>x2), t, N, D, m, NULL,
                                  <double*>lp, <double*>gp1, <double*>gp2, gscale, nt, &total)
    free(owned)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, total.weight, ft, loss_arr, return_grad, grads)


def contrastive_half(cnp.ndarray x1, cnp.ndarray x2, const label_t[::1] label, double margin,
                     const double[::1] sample_weight, float[::1] loss_out, object g1,
                     object g2, double gscale, int n_threads, bint stream=False):
    """`contrastive` on float16 / bfloat16 rows (N, D), 1 <= D <= HALF_ROW, both of
    one dtype, read in their own width; gradients (None, or two arrays of one
    dtype: float32 or the input's) narrowed to nearest even.  `stream`: the
    gradients are reused buffers out of the cache."""
    cdef Py_ssize_t N = label.shape[0], D, R, units, u
    cdef int kind, kg = FL_KIND_F32, nt
    cdef void* g1p = NULL
    cdef void* g2p = NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef BlockOut* blocks
    cdef BlockOut total
    if x1.ndim != 2 or x1.shape[0] != N or not 1 <= x1.shape[1] <= HALF_ROW:
        raise ValueError("fastloss internal error: contrastive_half operands")
    D = x1.shape[1]
    kind = fc_operand_kind(x1, N * D, "x1")
    if kind == FL_KIND_F32 or fc_operand_kind(x2, N * D, "x2") != kind:
        raise ValueError("fastloss internal error: contrastive_half operands")
    if g1 is not None:
        kg = fc_operand_kind(g1, N * D, "grad")
        if fc_operand_kind(g2, N * D, "grad") != kg:
            raise ValueError("fastloss internal error: contrastive_half gradients")
        g1p = cnp.PyArray_DATA(g1)
        g2p = cnp.PyArray_DATA(g2)
    if N == 0:
        return 0.0, 0.0, -1
    R = rows_per_unit(D)
    units = n_blocks(N, R)
    blocks = alloc_blocks(units)
    nt = threads_for(n_threads, units)
    try:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _contrastive_half_unit(<const unsigned short*>cnp.PyArray_DATA(x1),
                                   <const unsigned short*>cnp.PyArray_DATA(x2), kind,
                                   &label[0], N, D, R, u, margin, swp, lp, g1p, g2p, kg,
                                   gscale, stream, &blocks[u])
        combine_blocks(blocks, units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight, total.bad


# ================================================================ center

cdef void _center_unit(const floating* x, const label_t* t, const floating* cen,
                       Py_ssize_t N, Py_ssize_t D, Py_ssize_t C, Py_ssize_t R,
                       Py_ssize_t u, const double* sw, floating* loss_out,
                       floating* gx, double gscale, BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, off, y
    cdef double loss, swj
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        y = <Py_ssize_t>t[i]
        if skip_label(y, 0, False, C, i, loss_out, out):
            if gx != NULL:
                memset(gx + off, 0, D * sizeof(floating))
            continue
        swj = sw[i] if sw != NULL else 1.0
        loss = center_row(x + off, cen + y * D, D, swj, gscale,
                          gx + off if gx != NULL else NULL)
        if loss_out != NULL:
            loss_out[i] = <floating>loss
        out.loss += loss
        out.weight += swj


cdef int _center_run(const floating* x, const label_t* t, const floating* cen, Py_ssize_t N,
                     Py_ssize_t D, Py_ssize_t C, const double* swp, floating* lp,
                     floating* gxp, floating* gcp, double gscale, int n_threads,
                     BlockOut* total) noexcept nogil:
    """The center-loss driver on raw rows x (N, D), N > 0, centers (C, D): the
    row pass, then (with gxp and gcp, no bad label) the centers' gradient
    one class per work unit; one work unit runs on the calling thread, no
    parallel region; -1 if out of memory."""
    cdef Py_ssize_t R = rows_per_unit(D)
    cdef Py_ssize_t units = n_blocks(N, R), u, c
    cdef Py_ssize_t* start
    cdef Py_ssize_t* order
    cdef BlockOut* blocks
    cdef int nt
    if D == 0:
        x = cen = gxp = gcp = NULL
    if units == 1:
        _center_unit(x, t, cen, N, D, C, R, 0, swp, lp, gxp, gscale, total)
    else:
        blocks = <BlockOut*>malloc(units * sizeof(BlockOut))
        if blocks == NULL:
            return -1
        nt = threads_for(n_threads, units)
        for u in prange(units, schedule="static", chunksize=deal(units, nt), num_threads=nt):
            _center_unit(x, t, cen, N, D, C, R, u, swp, lp, gxp, gscale, &blocks[u])
        combine_blocks(blocks, units, total)
        free(blocks)
    if total.bad >= 0 or gcp == NULL or gxp == NULL:
        return 0
    if class_order(t, N, C, &start, &order):
        return -1
    if units == 1:
        for c in range(C):
            center_grad_class(gxp, start, order, D, c, gcp)
    else:
        nt = threads_for(n_threads, C)
        for c in prange(C, schedule="static", chunksize=deal(C, nt), num_threads=nt):
            center_grad_class(gxp, start, order, D, c, gcp)
    free(start)
    free(order)
    return 0


def center(const floating[:, ::1] x, const label_t[::1] labels,
           const floating[:, ::1] centers, const double[::1] sample_weight,
           floating[::1] loss_out, floating[::1] gx, floating[::1] gc,
           double gscale, int n_threads):
    """1/2 ||x_i - c_{y_i}||^2 per row of x (N, D), centers (C, D).

    gx (and then gc) may be given: gx is written in the row pass, gc after
    it, one class per work unit.  Returns (sum of losses, sum of sample
    weights, first bad label or -1).
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], C = centers.shape[0]
    cdef floating* gcp = &gc[0] if gc.shape[0] > 0 else NULL
    cdef BlockOut total
    cdef int rc
    if gcp != NULL:
        memset(gcp, 0, gc.shape[0] * sizeof(floating))
    if N == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _center_run(&x[0, 0] if D > 0 else NULL, &labels[0],
                         &centers[0, 0] if D > 0 and C > 0 else NULL, N, D, C,
                         &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                         &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                         &gx[0] if gx.shape[0] > 0 else NULL, gcp, gscale, n_threads, &total)
    if rc:
        raise MemoryError("fastloss: cannot allocate the center-loss buffers")
    return total.loss, total.weight, total.bad


def center_call(object features, object labels, object centers, object reduction,
                object sample_weight, bint return_grad, object n_threads):
    """center_loss for the common case in one call, else None.

    Taken: float32/float64 features (N, D), N, D > 0, centers (C, D) of
    their dtype, integer labels (N,) (read as int64), no sample weights.
    None (also for a label outside [0, C)) sends the call down the full
    path, which owns every error message.
    """
    cdef int ft, red, nt = 1, rc
    cdef Py_ssize_t N, D, C
    cdef double gscale
    cdef int64_t* owned
    cdef const int64_t* t
    cdef BlockOut total
    cdef object loss_arr = None, grads = None, gx, gc
    cdef bint stream
    cdef cnp.ndarray ca
    cdef void* lp = NULL
    cdef void* gxp = NULL
    cdef void* gcp = NULL
    if not _pair_rows(features, None, labels, reduction, sample_weight, n_threads, &ft, &red,
                      &N, &D) or fc_float(centers) != ft:
        return None
    ca = <cnp.ndarray>centers
    C = cnp.PyArray_DIM(ca, 0)
    if cnp.PyArray_NDIM(ca) != 2 or cnp.PyArray_DIM(ca, 1) != D:
        return None
    t = fc_labels64(<cnp.ndarray>labels, False, N, &owned)
    if t == NULL:
        return None
    if n_blocks(N, rows_per_unit(D)) > 1:
        nt = effective_n_threads(n_threads)
    if red == RED_NONE:
        loss_arr = fc_empty_like(<cnp.ndarray>labels, ft, &lp)
    if return_grad:  # (the center pass does not stream)
        gx = fc_grad(<cnp.ndarray>features, None, 1, &gxp, &stream)
        gc = fc_grad(ca, None, 1, &gcp, &stream)
        memset(gcp, 0, cnp.PyArray_NBYTES(ca))  # the pass adds each row's share into it
        grads = (gx, gc)
    gscale = 1.0 / N if red == RED_MEAN else 1.0
    with nogil:
        if ft == cnp.NPY_FLOAT:
            rc = _center_run(<float*>cnp.PyArray_DATA(<cnp.ndarray>features), t,
                             <float*>cnp.PyArray_DATA(ca), N, D, C, NULL, <float*>lp,
                             <float*>gxp, <float*>gcp, gscale, nt, &total)
        else:
            rc = _center_run(<double*>cnp.PyArray_DATA(<cnp.ndarray>features), t,
                             <double*>cnp.PyArray_DATA(ca), N, D, C, NULL, <double*>lp,
                             <double*>gxp, <double*>gcp, gscale, nt, &total)
    free(owned)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, total.weight, ft, loss_arr, return_grad, grads)


def center_half(cnp.ndarray x, const label_t[::1] labels, const float[:, ::1] centers,
                const double[::1] sample_weight, float[::1] loss_out, object gx,
                float[::1] gc, double gscale, int n_threads):
    """`center` on float16 / bfloat16 features (N, D), 1 <= D <= HALF_ROW,
    read in their own width, with float32 centers; gx (None, or float32 or
    the features' dtype) narrowed to nearest even, gc float32 (given with gx)."""
    cdef Py_ssize_t N = labels.shape[0], C = centers.shape[0], D, R, units, u, c
    cdef int kind, kg = FL_KIND_F32, nt
    cdef void* gxp = NULL
    cdef float* gcp = NULL
    cdef const unsigned short* xp
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef Py_ssize_t* start
    cdef Py_ssize_t* order
    cdef BlockOut* blocks
    cdef BlockOut total
    if (x.ndim != 2 or x.shape[0] != N or not 1 <= x.shape[1] <= HALF_ROW
            or centers.shape[1] != x.shape[1]):
        raise ValueError("fastloss internal error: center_half operands")
    D = x.shape[1]
    kind = fc_operand_kind(x, N * D, "features")
    if kind == FL_KIND_F32:
        raise ValueError("fastloss internal error: center_half operands")
    xp = <const unsigned short*>cnp.PyArray_DATA(x)
    if gx is not None:
        kg = fc_operand_kind(gx, N * D, "grad")
        if gc.shape[0] != C * D:
            raise ValueError("fastloss internal error: center_half gradients")
        gxp = cnp.PyArray_DATA(gx)
        if C * D > 0:
            gcp = &gc[0]
            memset(gcp, 0, C * D * sizeof(float))
    if N == 0:
        return 0.0, 0.0, -1
    R = rows_per_unit(D)
    units = n_blocks(N, R)
    blocks = alloc_blocks(units)
    nt = threads_for(n_threads, units)
    try:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _center_half_unit(xp, kind, &labels[0], &centers[0, 0] if C > 0 else NULL,
                              N, D, C, R, u, swp, lp, gxp, kg, gscale, &blocks[u])
        combine_blocks(blocks, units, &total)
    finally:
        free(blocks)
    if total.bad >= 0 or gcp == NULL:
        return total.loss, total.weight, total.bad
    if class_order(&labels[0], N, C, &start, &order):
        raise MemoryError("fastloss: cannot allocate the center-loss buffers")
    try:
        nt = threads_for(n_threads, C)
        for c in prange(C, schedule="static", chunksize=deal(C, nt), nogil=True,
                        num_threads=nt):
            center_grad_class_half(xp, kind, &centers[0, 0], swp, gscale, start, order,
                                   D, c, gcp)
    finally:
        free(start)
        free(order)
    return total.loss, total.weight, total.bad
