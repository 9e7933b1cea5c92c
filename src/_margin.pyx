"""Row kernels of the multi-class margin losses (multi-margin, multiclass
hinge) and of the margin-softmax losses (CosFace, ArcFace, SphereFace): a
reduction over a row of class scores, then over rows.

Design:
A. One pass per row gives the loss and the gradient, which is written while
   the row is in cache, pre-multiplied by `gscale` and the row's sample
   weight (as in _rowwise.pyx, A).
B. Work units are fixed blocks of rows (`rows_per_unit`, about 16384
   elements); per-unit BlockOut partials are combined in unit order:
   bit-identical for any thread count.
C. Per-row math is written once as `cdef inline` helpers (mm_row; the
   margin softmax's margin_psi and scaled_sumexp in _margin_math.pxd) and
   reused by every dtype through the fused `floating` type.  Hot loops
   are plain loops with lane accumulators and selects, so gcc vectorizes
   them.  float16 / bfloat16 rows are widened a block at a time and go
   through the same row functions (`_half_rows`).
D. The margin-softmax losses are a softmax cross-entropy over s*cos whose
   target logit is replaced by s*psi(cos_y): the exponentials of the row are
   written (into the gradient buffer or a 256-element stack chunk), the
   target's exponential is overwritten before the sum, so nothing is
   subtracted and nothing cancels.  psi is evaluated once per row in double
   (libm acos/sqrt only there).
E. Labels are range-checked where they are read; a bad label contributes
   nothing, its unit records the first bad position, and the wrapper raises.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport log
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _fastcall cimport (
    LBL_I8, LBL_I16, LBL_I32, LBL_I64, RED_MEAN, RED_NONE, fc_empty_like, fc_float, fc_grad,
    fc_grad_out, fc_half, fc_labels, fc_operand_kind, fc_outputs, fc_reduction, fc_result,
    fc_shape_is, fc_threads_arg,
)

from fastloss._threads import effective_n_threads

cnp.import_array()


from _common cimport (
    FL_KIND_BF16, FL_KIND_F32, HALF_ROW, BlockOut, align64, alloc_blocks, block_init,
    combine_blocks, STREAM_ROW, deal, fl_bf16_to_f32, fl_ftz_begin, fl_ftz_end, fl_narrow,
    fl_stream_fence, fl_stream_zero, fl_widen, floating, label_t, lanes_sum, lanes_total,
    n_blocks, prefetch_bytes, row_max, safe_shift, skip_label, stream_out, threads_for_work,
    vexp_lo,
)
from _layout cimport rows_per_unit, unit_rows
from _margin_math cimport (
    KIND_ARCFACE, KIND_COSFACE, KIND_SPHEREFACE, Margin, make_margin, margin_psi, scaled_sumexp,
)


cdef extern from "flrows.h" nogil:
    int FL_LANES_VEC
    int FL_HAVE_MM_ROWBF
    double fl_mm_rowf(const float* x, Py_ssize_t n, float c0, int p, float* gr, float gf)
    double fl_mm_rowbf(const unsigned short* x, Py_ssize_t n, float c0, int p, float* gr,
                       float gf)


HALF_ROW_MAX = HALF_ROW

# The margin of margin_softmax (fastloss/classification/_margin.py reads
# this enum), by the values of _margin_math.pxd.
cpdef enum MarginKind:
    MARGIN_COSFACE = KIND_COSFACE
    MARGIN_ARCFACE = KIND_ARCFACE
    MARGIN_SPHEREFACE = KIND_SPHEREFACE


# ========================================= float16 / bfloat16 class-score rows
# The row losses of (N, C) scores with one label a row (multi-margin, margin
# softmax) read half rows through one unit: each row is widened into L1
# and run through the loss's float32 row code (the same bits as the float32
# kernel on the widened values), its gradient narrowed (round to nearest
# even) or copied out.  A row function gets its loss's parameters by P.  A
# loss whose row loop widens bfloat16 where it loads it also gives a
# row_bf function, which takes bfloat16 rows as they are stored.

ctypedef double (*half_row_fn)(const float* xr, Py_ssize_t C, Py_ssize_t y, const void* P,
                               double swj, float* gr, double gscale) noexcept nogil
ctypedef double (*bf16_row_fn)(const unsigned short* xr, Py_ssize_t C, Py_ssize_t y,
                               const void* P, double swj, float* gr,
                               double gscale) noexcept nogil

cdef enum:
    # rows ahead whose lines a half-row unit requests before widening its
    # current row, in inputs of more than HALF_AHEAD_BYTES (as the
    # float16 / bfloat16 triplets of _embedding.pyx)
    HALF_AHEAD = 2
    HALF_AHEAD_BYTES = 4194304


cdef void _half_rows_unit(const unsigned short* x, int kind, const label_t* t, Py_ssize_t N,
                          Py_ssize_t C, Py_ssize_t R, Py_ssize_t u, half_row_fn row,
                          bf16_row_fn row_bf, const void* P, const double* sw,
                          float* loss_out, void* g, int kg, double gscale,
                          BlockOut* out) noexcept nogil:
    # one array each (see _embedding.pyx, _contrastive_half_unit)
    cdef float xraw[HALF_ROW + 16]
    cdef float graw[HALF_ROW + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* gb = <float*>align64(&graw[0])
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef Py_ssize_t i, i0, i1, y
    cdef char* gr
    cdef double swj, loss
    cdef bint ahead = N * C * 2 > HALF_AHEAD_BYTES
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        if ahead:
            prefetch_bytes(x + (i + HALF_AHEAD) * C, C * 2)
        gr = <char*>g + i * C * gsize if g != NULL else NULL
        y = <Py_ssize_t>t[i]
        if skip_label(y, 0, False, C, i, loss_out, out):
            if gr != NULL:
                memset(gr, 0, C * gsize)
            continue
        swj = sw[i] if sw != NULL else 1.0
        if row_bf != NULL and kind == FL_KIND_BF16:
            loss = row_bf(x + i * C, C, y, P, swj, gb if g != NULL else NULL, gscale)
        else:
            fl_widen(x + i * C, kind, xb, C)
            loss = row(xb, C, y, P, swj, gb if g != NULL else NULL, gscale)
        if gr != NULL:
            fl_narrow(gb, gr, kg, C)
        if loss_out != NULL:
            loss_out[i] = <float>loss
        out.loss += loss
        out.weight += swj


cdef object _half_rows(cnp.ndarray x, const label_t[::1] target, half_row_fn row,
                       bf16_row_fn row_bf, const void* P,
                       const double[::1] sample_weight, float[::1] loss_out, object grad,
                       double gscale, int n_threads, str name):
    """Rows (N, C), 1 <= C <= HALF_ROW, of float16 / bfloat16 x through `row`
    (bfloat16 ones through `row_bf` where it is not NULL).
    Returns (sum of losses, sum of sample weights, first bad label or -1)."""
    cdef Py_ssize_t N = target.shape[0], C, R, units, u
    cdef int kind, kg = FL_KIND_F32, nt
    cdef const unsigned short* xp
    cdef void* gp = NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef BlockOut* blocks
    cdef BlockOut total
    if x.ndim != 2 or x.shape[0] != N or not 1 <= x.shape[1] <= HALF_ROW:
        raise ValueError(f"fastloss internal error: half rows of {name}")
    C = x.shape[1]
    kind = fc_operand_kind(x, N * C, name)
    if kind == FL_KIND_F32:
        raise ValueError(f"fastloss internal error: half rows of {name}")
    xp = <const unsigned short*>cnp.PyArray_DATA(x)
    if grad is not None:
        kg = fc_operand_kind(grad, N * C, "grad")
        gp = cnp.PyArray_DATA(grad)
    if N == 0:
        return 0.0, 0.0, -1
    R = rows_per_unit(C)
    units = n_blocks(N, R)
    blocks = alloc_blocks(units)
    try:
        with nogil:
            nt = threads_for_work(n_threads, units, N * C)
            if nt == 1:
                for u in range(units):
                    _half_rows_unit(xp, kind, &target[0], N, C, R, u, row, row_bf, P, swp, lp,
                                    gp, kg, gscale, &blocks[u])
            else:
                for u in prange(units, schedule="static", chunksize=deal(units, nt),
                                num_threads=nt):
                    _half_rows_unit(xp, kind, &target[0], N, C, R, u, row, row_bf, P, swp, lp,
                                    gp, kg, gscale, &blocks[u])
            combine_blocks(blocks, units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight, total.bad


# ============================================== multi-class margin losses

# mm_row's lanes: 32 float partial sums (four AVX-512 vectors) so that the
# adds of consecutive steps do not wait on each other's latency (one vector
# of 8 double lanes ran at one add latency per 8 elements, 0.17 ns each),
# each summing 8 terms before it is added to its double lane
cdef enum:
    MM_LANES = 32
    MM_FOLD = 256


cdef inline double mm_row(const floating* xr, Py_ssize_t C, floating c0, int p,
                          floating* gr, floating gf) noexcept nogil:
    """sum_j h_j^p with h_j = max(0, c0 + x_j) over ALL j (target included).

    When gr is not NULL also writes gr[j] = gf * d(h_j^p)/dh_j, i.e. gf
    (p = 1) or 2 gf h_j (p = 2) where h_j > 0, else 0.  Float rows on AVX
    targets: flrows.h's fl_mm_rowf, this loop with its lanes in registers.
    """
    if floating is float:
        if FL_LANES_VEC:
            return fl_mm_rowf(xr, C, c0, p, gr, gf)
    cdef double acc[MM_LANES]
    cdef floating part[MM_LANES]
    cdef floating hv[MM_LANES]
    cdef Py_ssize_t i = 0, k, stop
    cdef floating h
    cdef floating zero = 0
    for k in range(MM_LANES):
        acc[k] = 0.0
    while i + MM_LANES <= C:
        stop = i + MM_FOLD if i + MM_FOLD < C else C
        for k in range(MM_LANES):
            part[k] = 0
        if gr == NULL:
            if p == 1:
                while i + MM_LANES <= stop:
                    for k in range(MM_LANES):
                        h = c0 + xr[i + k]
                        part[k] += h if h > 0 else zero
                    i += MM_LANES
            else:
                while i + MM_LANES <= stop:
                    for k in range(MM_LANES):
                        h = c0 + xr[i + k]
                        h = h if h > 0 else zero
                        part[k] += h * h
                    i += MM_LANES
        else:
            # all the loads before the stores: gr might alias xr as far as
            # gcc knows, and interleaved loads and stores keep the block scalar
            if p == 1:
                while i + MM_LANES <= stop:
                    for k in range(MM_LANES):
                        h = c0 + xr[i + k]
                        hv[k] = h if h > 0 else zero
                    for k in range(MM_LANES):
                        part[k] += hv[k]
                        gr[i + k] = gf * <floating>(hv[k] > 0)
                    i += MM_LANES
            else:
                while i + MM_LANES <= stop:
                    for k in range(MM_LANES):
                        h = c0 + xr[i + k]
                        hv[k] = h if h > 0 else zero
                    for k in range(MM_LANES):
                        part[k] += hv[k] * hv[k]
                        gr[i + k] = 2 * gf * hv[k]
                    i += MM_LANES
        for k in range(MM_LANES):
            acc[k] += part[k]
    while i < C:
        h = c0 + xr[i]
        h = h if h > 0 else zero
        acc[0] += h if p == 1 else h * h
        if gr != NULL:
            gr[i] = (gf if h > 0 else zero) if p == 1 else 2 * gf * h
        i += 1
    for k in range(16):
        acc[k] += acc[k + 16]
    for k in range(8):
        acc[k] += acc[k + 8]
    return lanes_total(acc)  # its 8 (LANES) lanes


cdef inline double _mm_row(const floating* xr, Py_ssize_t C, Py_ssize_t y, double wy,
                           double swj, int p, double margin, double scale, floating* gr,
                           double gscale) noexcept nogil:
    """The weighted loss of one labelled row; with gr, its gradient."""
    cdef floating c0 = <floating>margin - xr[y]
    return _mm_row_end(mm_row(xr, C, c0, p, gr, <floating>(wy * scale * swj * gscale)), c0,
                       xr[y], C, y, wy, swj, p, scale, gr)


cdef inline double _mm_row_end(double acc, floating c0, floating xy, Py_ssize_t C,
                               Py_ssize_t y, double wy, double swj, int p, double scale,
                               floating* gr) noexcept nogil:
    """_mm_row after mm_row's sum acc over the row (x_y = xy, c0 = margin -
    xy): the target's own term taken out, its gradient set."""
    cdef floating hy
    cdef double gsum
    # remove the target's own term, computed exactly as in the loop
    hy = c0 + xy
    hy = hy if hy > 0 else 0
    acc -= hy if p == 1 else <double>hy * hy
    if gr != NULL:
        gr[y] = 0
        gsum = lanes_sum(gr, C)
        gr[y] = <floating>(-gsum)
    return swj * wy * scale * acc


cdef void _mm_unit(const floating* x, const label_t* t, Py_ssize_t N, Py_ssize_t C,
                   Py_ssize_t R, Py_ssize_t u, const double* w, const double* sw,
                   int p, double margin, double scale, floating* loss_out,
                   floating* g, double gscale, bint stream, BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, y
    cdef floating* gr
    cdef double swj, loss
    cdef floating buf[STREAM_ROW]
    # stream: a gradient out of the cache (reused or the caller's), each row
    # finished in an L1 buffer and streamed out: its lines are not read for
    # ownership (the row is written, read back for the label's sum, written
    # again: in place that is a third more memory traffic)
    cdef bint sb = stream and g != NULL and C <= STREAM_ROW
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        gr = g + i * C if g != NULL else NULL
        y = <Py_ssize_t>t[i]
        if skip_label(y, 0, False, C, i, loss_out, out):
            if sb:
                fl_stream_zero(gr, C * sizeof(floating))
            elif gr != NULL:
                memset(gr, 0, C * sizeof(floating))
            continue
        swj = sw[i] if sw != NULL else 1.0
        loss = _mm_row(x + i * C, C, y, w[y] if w != NULL else 1.0, swj, p, margin, scale,
                       &buf[0] if sb else gr, gscale)
        if sb:
            stream_out(gr, buf, C)
        if loss_out != NULL:
            loss_out[i] = <floating>loss
        out.loss += loss
        out.weight += swj
    if sb:
        fl_stream_fence()


cdef int _mm_run(const floating* x, const label_t* t, Py_ssize_t N, Py_ssize_t C,
                 const double* wp, const double* swp, int p, double margin, double scale,
                 floating* lp, floating* gp, double gscale, int n_threads, bint stream,
                 BlockOut* total) noexcept nogil:
    cdef Py_ssize_t R = rows_per_unit(C)
    cdef Py_ssize_t units = n_blocks(N, R), u
    cdef int nt = threads_for_work(n_threads, units, N * C)
    cdef BlockOut* blocks = <BlockOut*>malloc(units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    if nt == 1:
        for u in range(units):
            _mm_unit(x, t, N, C, R, u, wp, swp, p, margin, scale, lp, gp, gscale, stream,
                     &blocks[u])
    else:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _mm_unit(x, t, N, C, R, u, wp, swp, p, margin, scale, lp, gp, gscale, stream,
                     &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


def multi_margin(const floating[:, ::1] x, const label_t[::1] target,
                 const double[::1] weight, const double[::1] sample_weight,
                 int p, double margin, double scale, floating[::1] loss_out,
                 floating[::1] grad, double gscale, int n_threads, bint stream=False):
    """scale * w_y * sum_{j != y} max(0, margin - x_y + x_j)^p per row of x (N, C).

    `stream`: grad is a reused or caller's buffer out of the cache, written
    with non-temporal stores.  Returns (sum of losses, sum of sample
    weights, first bad label or -1).
    """
    cdef BlockOut total
    cdef int rc
    if x.shape[0] == 0 or x.shape[1] == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _mm_run(&x[0, 0], &target[0], x.shape[0], x.shape[1],
                     &weight[0] if weight.shape[0] > 0 else NULL,
                     &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                     p, margin, scale,
                     &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                     &grad[0] if grad.shape[0] > 0 else NULL, gscale, n_threads, stream,
                     &total)
    if rc != 0:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


cdef struct MMRow:
    const double* w
    int p
    double margin, scale


cdef double _mm_row_half(const float* xr, Py_ssize_t C, Py_ssize_t y, const void* P, double swj,
                         float* gr, double gscale) noexcept nogil:
    cdef const MMRow* q = <const MMRow*>P
    return _mm_row(xr, C, y, q.w[y] if q.w != NULL else 1.0, swj, q.p, q.margin, q.scale, gr,
                   gscale)


cdef double _mm_row_bf16(const unsigned short* xr, Py_ssize_t C, Py_ssize_t y, const void* P,
                         double swj, float* gr, double gscale) noexcept nogil:
    """_mm_row_half on a bfloat16 row as stored: fl_mm_rowbf widens each
    value where it loads it (the same sums and gradient as the widened
    row's), so the row is read once in its own width instead of being
    widened into a buffer first ((16384, 1000) at 2 threads, AMD EPYC Zen 3:
    0.80-0.82x the time, with the gradient 0.93-0.96x)."""
    cdef const MMRow* q = <const MMRow*>P
    cdef double wy = q.w[y] if q.w != NULL else 1.0
    cdef float xy = fl_bf16_to_f32(xr[y])
    cdef float c0 = <float>q.margin - xy
    return _mm_row_end(fl_mm_rowbf(xr, C, c0, q.p, gr, <float>(wy * q.scale * swj * gscale)),
                       c0, xy, C, y, wy, swj, q.p, q.scale, gr)


# multi-margin's bfloat16 rows: as stored where fl_mm_rowbf is compiled (AVX2)
cdef bf16_row_fn _MM_ROW_BF16 = _mm_row_bf16 if FL_HAVE_MM_ROWBF else <bf16_row_fn>NULL


def multi_margin_half(cnp.ndarray x, const label_t[::1] target, const double[::1] weight,
                      const double[::1] sample_weight, int p, double margin, double scale,
                      float[::1] loss_out, object grad, double gscale, int n_threads):
    """`multi_margin` on float16 / bfloat16 rows (N, C), 1 <= C <= HALF_ROW, read in
    their own width; grad (None, float32 or the input's dtype) narrowed to
    nearest even."""
    cdef MMRow q
    q.w = &weight[0] if weight.shape[0] > 0 else NULL
    q.p = p
    q.margin = margin
    q.scale = scale
    return _half_rows(x, target, _mm_row_half, _MM_ROW_BF16, &q, sample_weight, loss_out, grad,
                      gscale, n_threads, "input")


cdef enum:
    ROWS_HALF = 0   # _rows_call_shape: float16 / bfloat16 rows that _half_rows reads


cdef int _rows_call_shape(object input, object target, object n_threads, Py_ssize_t* N,
                          Py_ssize_t* C) noexcept:
    """The rows' dtype (NPY_FLOAT / NPY_DOUBLE, or ROWS_HALF) where a row entry
    takes the call: plain float32/float64 scores (N, C) or (C,), or float16 /
    bfloat16 ones (N, C) with C <= HALF_ROW, integer labels (N,) or (), no
    empty axis; else -1."""
    cdef int ft = fc_float(input)
    cdef cnp.ndarray xa, ta
    if ft < 0 and fc_half(input) >= 0:
        ft = ROWS_HALF
        if cnp.PyArray_NDIM(<cnp.ndarray>input) != 2 \
                or cnp.PyArray_DIM(<cnp.ndarray>input, 1) > HALF_ROW:
            return -1
    if ft < 0 or fc_labels(target) < 0 or not fc_threads_arg(n_threads):
        return -1
    xa = <cnp.ndarray>input
    ta = <cnp.ndarray>target
    if cnp.PyArray_NDIM(xa) == 1:
        N[0], C[0] = 1, cnp.PyArray_DIM(xa, 0)
        if cnp.PyArray_NDIM(ta) != 0:
            return -1
    elif cnp.PyArray_NDIM(xa) == 2:
        N[0], C[0] = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1)
        if not fc_shape_is(ta, xa, 1):
            return -1
    else:
        return -1
    if N[0] == 0 or C[0] == 0:
        return -1
    return ft


# the absent sample weights and the reduced calls' loss buffer of _rows_half_call
cdef cnp.npy_intp _ZERO = 0
cdef cnp.ndarray _NO_WEIGHT = cnp.PyArray_EMPTY(1, &_ZERO, cnp.NPY_DOUBLE, 0)
cdef cnp.ndarray _NO_LOSS = cnp.PyArray_EMPTY(1, &_ZERO, cnp.NPY_FLOAT, 0)


cdef object _rows_half_call(cnp.ndarray xa, cnp.ndarray ta, Py_ssize_t N, Py_ssize_t C,
                            half_row_fn row, bf16_row_fn row_bf, const void* P, int red,
                            bint return_grad, object n_threads, str name, object go):
    """A row entry's call on float16 / bfloat16 rows (_rows_call_shape's
    ROWS_HALF), as the full path makes it: _half_rows, the loss in float32,
    the gradient in the input's dtype (None where a label is bad)."""
    cdef int nt = 1, lt = fc_labels(ta)
    cdef bint stream
    cdef void* p
    cdef object loss_arr = None, grad_arr = None, r
    cdef double gscale = 1.0 / N if red == RED_MEAN else 1.0
    cdef const int64_t[::1] t64
    cdef const int32_t[::1] t32
    cdef const int16_t[::1] t16
    cdef const int8_t[::1] t8
    cdef const uint8_t[::1] tu8
    cdef const double[::1] sw = _NO_WEIGHT
    cdef float[::1] lo
    if n_blocks(N, rows_per_unit(C)) > 1:
        nt = effective_n_threads(n_threads)
    if red == RED_NONE:
        loss_arr = fc_empty_like(ta, cnp.NPY_FLOAT, &p)
    if return_grad:
        grad_arr = fc_grad(xa, go, 1, &p, &stream)  # (no streamed half stores)
    lo = _NO_LOSS if loss_arr is None else loss_arr
    if lt == LBL_I64:
        t64 = ta
        r = _half_rows(xa, t64, row, row_bf, P, sw, lo, grad_arr, gscale, nt, name)
    elif lt == LBL_I32:
        t32 = ta
        r = _half_rows(xa, t32, row, row_bf, P, sw, lo, grad_arr, gscale, nt, name)
    elif lt == LBL_I16:
        t16 = ta
        r = _half_rows(xa, t16, row, row_bf, P, sw, lo, grad_arr, gscale, nt, name)
    elif lt == LBL_I8:
        t8 = ta
        r = _half_rows(xa, t8, row, row_bf, P, sw, lo, grad_arr, gscale, nt, name)
    else:
        tu8 = ta
        r = _half_rows(xa, tu8, row, row_bf, P, sw, lo, grad_arr, gscale, nt, name)
    if r[2] >= 0:
        return None  # the full path raises
    return fc_result(red, r[0], r[1], cnp.NPY_FLOAT, loss_arr, return_grad, grad_arr)


def margin_call(object input, object target, int p, double margin, bint divide_by_c,
                object reduction, bint return_grad, object n_threads, object grad_out=None):
    """multi_margin_loss / multiclass_hinge_loss for the common case, else None.

    Taken: float32/float64 scores (N, C) or (C,) and integer labels as plain
    ndarrays (see _fastcall.pxd), no weights or sample weights (the caller
    checks those and p, margin), the gradient into grad_out where
    fc_grad_out takes it.  None sends the call down the full path.
    """
    cdef Py_ssize_t N, C
    cdef int ft = _rows_call_shape(input, target, n_threads, &N, &C)
    cdef int red = fc_reduction(reduction)
    cdef double scale
    cdef cnp.ndarray xa, ta
    cdef MMRow q
    if ft < 0 or red < 0:
        return None
    scale = 1.0 / C if divide_by_c else 1.0
    xa = <cnp.ndarray>input
    ta = <cnp.ndarray>target
    q.w, q.p, q.margin, q.scale = NULL, p, margin, scale
    go = _rows_grad_out(grad_out, xa, ta, return_grad)
    if go is False:
        return None
    return _rows_entry(ft, xa, ta, N, C, ROWS_MM, &q, red, return_grad, n_threads, go)


# ================================================ margin softmax (face)

cdef inline double _msm_row(const floating* xr, Py_ssize_t C, Py_ssize_t y, const Margin* M,
                            double swj, floating* gr, double gscale,
                            const floating* nxt) noexcept nogil:
    """The weighted loss of one row; its gradient (times gscale) to gr unless
    NULL; nxt: the row read next, or NULL.  The gradient's products are
    flushed to zero (fl_ftz_begin): with s = 64 the exponentials span 55
    decades, and a product e_j fa below the smallest normal would cost an
    assist each (arcface with its gradient on (16384, 1000): 18.7 -> 6 ms at
    2 threads)."""
    cdef Py_ssize_t j
    cdef double psi, dpsi, zy, shift, mx, mr, sm, cf, others, s = M.s
    cdef floating ey, fa
    cdef unsigned int csr
    psi = margin_psi(M, xr[y], &dpsi)
    zy = s * psi
    # the shift is the max of the actual logits: the others and s psi
    # (x_y itself is not a logit; including it could make every term
    # underflow, e.g. C = 1 with psi far below cos)
    mx = row_max(xr, y)
    mr = row_max(xr + y + 1, C - y - 1)
    mx = s * (mx if mx > mr else mr)
    shift = safe_shift(mx if mx > zy else zy)
    ey = vexp_lo(<floating>(zy - shift))
    others = scaled_sumexp(xr, C, <floating>s, <floating>shift, y, gr, nxt)
    sm = others + ey
    if gr != NULL:
        # d/dcos_j = s p_j (j != y);  d/dcos_y = s (p_y - 1) psi'
        cf = swj * gscale * s
        fa = <floating>(cf / sm)
        csr = fl_ftz_begin()
        for j in range(C):
            gr[j] = gr[j] * fa
        gr[y] = <floating>(-cf * (others / sm) * dpsi)
        fl_ftz_end(csr)
    return swj * (shift + log(sm) - zy)


cdef void _msm_unit(const floating* x, const label_t* t, Py_ssize_t N, Py_ssize_t C,
                    Py_ssize_t R, Py_ssize_t u, const Margin* M, const double* sw,
                    floating* loss_out, floating* g, double gscale, bint stream,
                    BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, y
    cdef floating* gr
    cdef double swj, loss
    cdef floating buf[STREAM_ROW]
    cdef bint sb = stream and g != NULL and C <= STREAM_ROW   # as _mm_unit's
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        gr = g + i * C if g != NULL else NULL
        y = <Py_ssize_t>t[i]
        if skip_label(y, 0, False, C, i, loss_out, out):
            if sb:
                fl_stream_zero(gr, C * sizeof(floating))
            elif gr != NULL:
                memset(gr, 0, C * sizeof(floating))
            continue
        swj = sw[i] if sw != NULL else 1.0
        loss = _msm_row(x + i * C, C, y, M, swj, &buf[0] if sb else gr, gscale,
                        x + (i + 1) * C)
        if sb:
            stream_out(gr, buf, C)
        if loss_out != NULL:
            loss_out[i] = <floating>loss
        out.loss += loss
        out.weight += swj
    if sb:
        fl_stream_fence()


cdef int _msm_run(const floating* x, const label_t* t, Py_ssize_t N, Py_ssize_t C,
                  const Margin* M, const double* swp, floating* lp, floating* gp,
                  double gscale, int n_threads, bint stream, BlockOut* total) noexcept nogil:
    cdef Py_ssize_t R = rows_per_unit(C)
    cdef Py_ssize_t units = n_blocks(N, R), u
    cdef int nt = threads_for_work(n_threads, units, N * C)
    cdef BlockOut* blocks = <BlockOut*>malloc(units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    if nt == 1:
        for u in range(units):
            _msm_unit(x, t, N, C, R, u, M, swp, lp, gp, gscale, stream, &blocks[u])
    else:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _msm_unit(x, t, N, C, R, u, M, swp, lp, gp, gscale, stream, &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


def margin_softmax(const floating[:, ::1] cosine, const label_t[::1] target, int kind,
                   double s, double m, bint easy_margin,
                   const double[::1] sample_weight, floating[::1] loss_out,
                   floating[::1] grad, double gscale, int n_threads, bint stream=False):
    """CE over s*cos with the target logit s*psi(cos_y), cosine (N, C).

    kind: 0 cosface, 1 arcface, 2 sphereface (m an integer 1..4); `stream`
    as multi_margin's.  Returns (sum of losses, sum of sample weights,
    first bad label or -1).
    """
    cdef Margin M = make_margin(kind, s, m, easy_margin)
    cdef BlockOut total
    cdef int rc
    if cosine.shape[0] == 0 or cosine.shape[1] == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _msm_run(&cosine[0, 0], &target[0], cosine.shape[0], cosine.shape[1], &M,
                      &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                      &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                      &grad[0] if grad.shape[0] > 0 else NULL, gscale, n_threads, stream,
                      &total)
    if rc != 0:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


cdef enum:
    ROWS_MM = 0     # _rows_call: multi_margin rows (an MMRow)
    ROWS_MSM = 1    # _rows_call: margin-softmax rows (a Margin)


cdef object _rows_call(const floating* x, const label_t* t, cnp.ndarray xa, cnp.ndarray ta,
                       Py_ssize_t N, Py_ssize_t C, int which, const void* P, int red,
                       bint return_grad, object n_threads, object go):
    """margin_call's and margin_softmax_call's float32/float64 pass: the rows of
    `which` with its parameters P, no weights, the gradient into go when not
    None (None where a label is bad)."""
    cdef int typenum = cnp.PyArray_TYPE(xa)
    cdef int nt = 1, rc
    cdef bint stream
    cdef BlockOut total
    cdef floating* lp = NULL
    cdef floating* gp = NULL
    cdef const MMRow* q = <const MMRow*>P
    cdef double gscale = 1.0 / N if red == RED_MEAN else 1.0
    if n_blocks(N, rows_per_unit(C)) > 1:
        nt = effective_n_threads(n_threads)
    loss_arr, grad_arr = fc_outputs(xa, ta, typenum, red, return_grad, <void**>&lp, <void**>&gp,
                                    go, &stream)
    with nogil:
        if which == ROWS_MM:
            rc = _mm_run(x, t, N, C, NULL, NULL, q.p, q.margin, q.scale, lp, gp, gscale, nt,
                         stream, &total)
        else:
            rc = _msm_run(x, t, N, C, <const Margin*>P, NULL, lp, gp, gscale, nt, stream,
                          &total)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, total.weight, typenum, loss_arr, return_grad, grad_arr)


cdef object _rows_call_labels(const floating* x, cnp.ndarray xa, cnp.ndarray ta, Py_ssize_t N,
                              Py_ssize_t C, int which, const void* P, int red,
                              bint return_grad, object n_threads, object go):
    """_rows_call with the labels read in their own width (LBL_*)."""
    cdef int lt = fc_labels(ta)
    cdef void* t = cnp.PyArray_DATA(ta)
    if lt == LBL_I64:
        return _rows_call(x, <int64_t*>t, xa, ta, N, C, which, P, red, return_grad, n_threads,
                          go)
    if lt == LBL_I32:
        return _rows_call(x, <int32_t*>t, xa, ta, N, C, which, P, red, return_grad, n_threads,
                          go)
    if lt == LBL_I16:
        return _rows_call(x, <int16_t*>t, xa, ta, N, C, which, P, red, return_grad, n_threads,
                          go)
    if lt == LBL_I8:
        return _rows_call(x, <int8_t*>t, xa, ta, N, C, which, P, red, return_grad, n_threads,
                          go)
    return _rows_call(x, <uint8_t*>t, xa, ta, N, C, which, P, red, return_grad, n_threads, go)


cdef object _rows_grad_out(object grad_out, cnp.ndarray xa, cnp.ndarray ta, bint return_grad):
    """The row entries' grad_out: None (a new gradient; a grad_out without
    return_grad is refused by the wrapper before), the caller's array where
    fc_grad_out takes it, or False (the full path checks it)."""
    if not return_grad or grad_out is None:
        return None
    go = fc_grad_out(grad_out, xa, ta, None)
    return False if go is None else go


cdef object _rows_entry(int ft, cnp.ndarray xa, cnp.ndarray ta, Py_ssize_t N, Py_ssize_t C,
                        int which, const void* P, int red, bint return_grad,
                        object n_threads, object go):
    """The row entries' call once _rows_call_shape has taken it (ft): float16 /
    bfloat16 rows through _rows_half_call, float32 / float64 through _rows_call."""
    if ft == ROWS_HALF:
        if which == ROWS_MM:
            return _rows_half_call(xa, ta, N, C, _mm_row_half, _MM_ROW_BF16, P, red,
                                   return_grad, n_threads, "input", go)
        return _rows_half_call(xa, ta, N, C, _msm_row_half, NULL, P, red, return_grad,
                               n_threads, "cosine", go)
    if ft == cnp.NPY_FLOAT:
        return _rows_call_labels(<float*>cnp.PyArray_DATA(xa), xa, ta, N, C, which, P, red,
                                 return_grad, n_threads, go)
    return _rows_call_labels(<double*>cnp.PyArray_DATA(xa), xa, ta, N, C, which, P, red,
                             return_grad, n_threads, go)


def margin_softmax_call(int kind, object cosine, object target, double s, double m,
                        bint easy_margin, object reduction, bint return_grad,
                        object n_threads, object grad_out=None):
    """cosface_loss / arcface_loss / sphereface_loss for the common case, else None.

    Taken: as margin_call (float32/float64 cosines (N, C) or (C,), integer
    labels, no sample weights; the caller checks s and m), the gradient
    into grad_out where fc_grad_out takes it.  None sends the call down the
    full path.
    """
    cdef Py_ssize_t N, C
    cdef Margin M
    cdef cnp.ndarray xa, ta
    cdef int ft = _rows_call_shape(cosine, target, n_threads, &N, &C)
    cdef int red = fc_reduction(reduction)
    if ft < 0 or red < 0:
        return None
    M = make_margin(kind, s, m, easy_margin)
    xa = <cnp.ndarray>cosine
    ta = <cnp.ndarray>target
    go = _rows_grad_out(grad_out, xa, ta, return_grad)
    if go is False:
        return None
    return _rows_entry(ft, xa, ta, N, C, ROWS_MSM, &M, red, return_grad, n_threads, go)


cdef double _msm_row_half(const float* xr, Py_ssize_t C, Py_ssize_t y, const void* P,
                          double swj, float* gr, double gscale) noexcept nogil:
    return _msm_row(xr, C, y, <const Margin*>P, swj, gr, gscale, NULL)


def margin_softmax_half(cnp.ndarray cosine, const label_t[::1] target, int kind, double s,
                        double m, bint easy_margin, const double[::1] sample_weight,
                        float[::1] loss_out, object grad, double gscale, int n_threads):
    """`margin_softmax` on float16 / bfloat16 rows (N, C), 1 <= C <= HALF_ROW, read in
    their own width; grad (None, float32 or the input's dtype) narrowed to
    nearest even."""
    cdef Margin M = make_margin(kind, s, m, easy_margin)
    return _half_rows(cosine, target, _msm_row_half, NULL, &M, sample_weight, loss_out, grad,
                      gscale, n_threads, "cosine")
