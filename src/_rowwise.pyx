"""Row kernels of the softmax focal loss and of the Fast R-CNN box term: a
reduction over a row (or a position's class axis), then over rows.

Design:
A. Every loss here reads a row, reduces it to a few double scalars, and (for
   the gradient) writes the row's gradient while the row is still in cache:
   loss and gradient in ONE pass.  The gradient is pre-multiplied by
   `gscale` (1/denominator for 'mean', known before the pass from the row
   count or the sample weights) and by the row's sample weight, so the
   wrapper never touches it again.
B. Work units are fixed blocks of rows (`rows_per_unit`: about 16384
   elements per unit) or, for the softmax focal loss, the (N, C, S) Layout of
   _layout.pxd (rows for wide class axes, blocks of positions along the
   strided class axis of NCHW data, never a transposed copy).  Units depend
   only on the shape; per-unit BlockOut partials are combined in unit order:
   bit-identical for any thread count.
C. Per-element and per-row math is written once as `cdef inline` helpers
   (focal_factor, smooth_l1) and reused by every dtype through the fused
   `floating` type.  Hot loops are plain loops with LANES double
   accumulators and selects, so gcc vectorizes them.
D. Labels are range-checked where they are read; a bad label contributes
   nothing, its unit records the first bad position, and the wrapper raises.
The multi-class margins and the margin-softmax losses are in _margin.pyx.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport expm1, fabs, log, pow
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _common cimport (
    STREAM_ROW, BlockOut, FL_KIND_F32, PLANE_BLOCK, align64, alloc_blocks, bad_label, block_init,
    combine_blocks, deal, floating, label_t, n_blocks, planes_lse, planes_softmax_sums, row_max,
    row_sumexp, safe_shift, skip_label, threads_for, threads_for_work,
)
from _layout cimport (
    HALF_UNIT, LAYOUT_ROWS, Layout, half_rows_unit, half_unit_fits, make_layout, narrow_unit,
    rows_per_unit, unit_rows, unit_start, widen_unit,
)
from _fastcall cimport (
    LBL_I8, LBL_I16, LBL_I32, LBL_I64, RED_MEAN, fc_class_axis, fc_float, fc_grad,
    fc_grad_out, fc_labels, fc_labels64, fc_operand_kind, fc_outputs, fc_plain, fc_real,
    fc_reduction, fc_result, fc_scalar, fc_shape_is, fc_threads_arg,
)

from fastloss._threads import effective_n_threads

cnp.import_array()


# ============================================================ focal loss

cdef inline double focal_factor(double lp, double gamma, double* K) noexcept nogil:
    """-(1 - p)^gamma log p for log p = lp, and the gradient factor K.

    d loss / d x_c = alpha K (p_c - [c == y]) with
        K = q^gamma (1 - gamma p log(p) / q),   q = 1 - p = -expm1(lp).
    log(p)/q -> -1 as q -> 0, so K stays finite for every gamma >= 0
    (including gamma < 1, where (1 - p)^(gamma - 1) alone diverges); at
    q == 0 the limit is used.
    """
    cdef double q, p, qg, r
    if lp > 0:
        lp = 0.0  # rounding of lse - x_y
    q = -expm1(lp)
    p = 1.0 - q
    if q > 0:
        # gamma = 2, torchvision's and MONAI's default, by multiplication:
        # libm's pow was half the time of a (8, 4, 128, 128) map's call
        qg = q * q if gamma == 2.0 else pow(q, gamma)
        r = lp / q
    else:
        qg = 1.0 if gamma == 0 else 0.0
        r = -1.0
    K[0] = qg * (1.0 - (gamma * p * r if p > 0 else 0.0))
    return -qg * lp


cdef inline double _focal_row(const floating* xr, floating* gr, Py_ssize_t C, Py_ssize_t y,
                              const double* alpha, double swj, double gamma, double gscale,
                              const floating* nxt) noexcept nogil:
    """The loss of one labelled row of C logits xr (its sample weight swj);
    with gr, its gradient there (the row's exponentials first).  nxt: the
    row read next, requested during this one's exponentials."""
    cdef double mx, sm, lp, ay, loss, K, cf
    cdef floating fa
    cdef Py_ssize_t c
    mx = safe_shift(row_max(xr, C))
    sm = row_sumexp(xr, C, mx, gr, nxt)
    lp = xr[y] - (mx + log(sm))
    ay = alpha[y] if alpha != NULL else 1.0
    loss = swj * ay * focal_factor(lp, gamma, &K)
    if gr != NULL:
        cf = swj * gscale * ay * K
        fa = <floating>(cf / sm)
        for c in range(C):
            gr[c] = gr[c] * fa
        gr[y] = gr[y] - <floating>cf
    return loss


cdef void _focal_unit(const floating* x, const label_t* t, Layout* L, Py_ssize_t u,
                      const double* alpha, const double* sw, Py_ssize_t ignore,
                      double gamma, floating* loss_out, floating* g, double gscale,
                      BlockOut* out) noexcept nogil:
    cdef double m[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef double coef[PLANE_BLOCK]
    cdef Py_ssize_t ys[PLANE_BLOCK]
    cdef Py_ssize_t C = L.C, nb, base, pos, r, j, c, y
    cdef double lp, ay, swj, loss, K
    cdef floating* gr
    block_init(out)
    pos = unit_start(L, u, &nb, &base)

    if L.kind == LAYOUT_ROWS:
        for r in range(nb):
            gr = g + base + r * C if g != NULL else NULL
            y = <Py_ssize_t>t[pos + r]
            if skip_label(y, ignore, True, C, pos + r, loss_out, out):
                if gr != NULL:
                    memset(gr, 0, C * sizeof(floating))
                continue
            swj = sw[pos + r] if sw != NULL else 1.0
            loss = _focal_row(x + base + r * C, gr, C, y, alpha, swj, gamma, gscale,
                              x + base + (r + 1) * C)
            if loss_out != NULL:
                loss_out[pos + r] = <floating>loss
            out.loss += loss
            out.weight += swj
        return

    # planes: nb positions, value (c, j) at base + c*cs + j*ps
    planes_softmax_sums(x + base, L.cs, L.ps, C, nb, True, m, s,
                        g + base if g != NULL else NULL, L.cs)
    planes_lse(m, s, nb, m, floating is float)
    for j in range(nb):
        y = <Py_ssize_t>t[pos + j]
        ys[j] = -1
        if skip_label(y, ignore, True, C, pos + j, loss_out, out):
            s[j] = 0.0  # zero gradient for this position
            continue
        ys[j] = y
        lp = x[base + y * L.cs + j * L.ps] - m[j]
        ay = alpha[y] if alpha != NULL else 1.0
        swj = sw[pos + j] if sw != NULL else 1.0
        loss = swj * ay * focal_factor(lp, gamma, &K)
        if loss_out != NULL:
            loss_out[pos + j] = <floating>loss
        out.loss += loss
        out.weight += swj
        coef[j] = swj * gscale * ay * K
        s[j] = coef[j] / s[j]
    if g == NULL:
        return
    for c in range(C):
        gr = g + base + c * L.cs
        if L.ps == 1:
            for j in range(nb):
                gr[j] = gr[j] * <floating>s[j]
        else:
            for j in range(nb):
                gr[j * L.ps] = gr[j * L.ps] * <floating>s[j]
    for j in range(nb):
        if ys[j] >= 0:
            gr = g + base + ys[j] * L.cs + j * L.ps
            gr[0] = gr[0] - <floating>coef[j]


cdef int _focal_run(const floating* x, const label_t* t, Layout* L, const double* ap,
                    const double* swp, Py_ssize_t ignore, double gamma, floating* lp,
                    floating* gp, double gscale, int n_threads, BlockOut* total) noexcept nogil:
    cdef Py_ssize_t u
    cdef int nt = threads_for_work(n_threads, L.units, L.N * L.C * L.S)
    cdef BlockOut* blocks = <BlockOut*>malloc(L.units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    if nt == 1:  # no OpenMP region for one thread's work (_fastcall.pxd B)
        for u in range(L.units):
            _focal_unit(x, t, L, u, ap, swp, ignore, gamma, lp, gp, gscale, &blocks[u])
    else:
        for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                        num_threads=nt):
            _focal_unit(x, t, L, u, ap, swp, ignore, gamma, lp, gp, gscale, &blocks[u])
    combine_blocks(blocks, L.units, total)
    free(blocks)
    return 0


def focal(const floating[:, :, ::1] x, const label_t[:, ::1] target,
          const double[::1] alpha, const double[::1] sample_weight,
          Py_ssize_t ignore_index, double gamma, floating[::1] loss_out,
          floating[::1] grad, double gscale, int n_threads):
    """Softmax focal loss of x (N, C, S) with labels (N, S).

    Returns (sum of losses, sum of sample weights of counted positions,
    first bad label position or -1).
    """
    cdef Layout L
    cdef BlockOut total
    cdef int rc
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        return 0.0, 0.0, -1
    L = make_layout(x.shape[0], x.shape[1], x.shape[2])
    with nogil:
        rc = _focal_run(&x[0, 0, 0], &target[0, 0], &L,
                        &alpha[0] if alpha.shape[0] > 0 else NULL,
                        &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                        ignore_index, gamma, &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                        &grad[0] if grad.shape[0] > 0 else NULL, gscale, n_threads, &total)
    if rc != 0:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


cdef object _focal_call(const floating* x, const label_t* t, cnp.ndarray xa, cnp.ndarray ta,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, double gamma,
                        Py_ssize_t ig, int red, bint return_grad, object n_threads,
                        object go):
    cdef int typenum = cnp.PyArray_TYPE(xa)
    cdef int nt = 1, rc
    cdef Layout L = make_layout(N, C, S)
    cdef Py_ssize_t i, y, count = 0
    cdef double gscale = 1.0
    cdef bint stream
    cdef BlockOut total
    cdef floating* lp = NULL
    cdef floating* gp = NULL
    if return_grad and red == RED_MEAN:
        # 'mean' scales the gradient in the pass by 1 / (positions counted),
        # as the full path's index_weight_sum (a bad label: the full path raises)
        for i in range(N * S):
            y = <Py_ssize_t>t[i]
            if y == ig:
                continue
            if y < 0 or y >= C:
                return None
            count += 1
        gscale = 1.0 / <double>count if count != 0 else 0.0
    if L.units > 1:
        nt = effective_n_threads(n_threads)
    loss_arr, grad_arr = fc_outputs(xa, ta, typenum, red, return_grad, <void**>&lp, <void**>&gp,
                                    go, &stream)  # (the focal pass does not stream)
    with nogil:
        rc = _focal_run(x, t, &L, NULL, NULL, ig, gamma, lp, gp, gscale, nt, &total)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, total.weight, typenum, loss_arr, return_grad, grad_arr)


cdef object _focal_call_labels(const floating* x, int lt, cnp.ndarray xa, cnp.ndarray ta,
                               Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, double gamma,
                               Py_ssize_t ig, int red, bint return_grad, object n_threads,
                               object go):
    """_focal_call with the labels read in their own width (LBL_*)."""
    cdef void* t = cnp.PyArray_DATA(ta)
    if lt == LBL_I64:
        return _focal_call(x, <int64_t*>t, xa, ta, N, C, S, gamma, ig, red, return_grad,
                           n_threads, go)
    if lt == LBL_I32:
        return _focal_call(x, <int32_t*>t, xa, ta, N, C, S, gamma, ig, red, return_grad,
                           n_threads, go)
    if lt == LBL_I16:
        return _focal_call(x, <int16_t*>t, xa, ta, N, C, S, gamma, ig, red, return_grad,
                           n_threads, go)
    if lt == LBL_I8:
        return _focal_call(x, <int8_t*>t, xa, ta, N, C, S, gamma, ig, red, return_grad,
                           n_threads, go)
    return _focal_call(x, <uint8_t*>t, xa, ta, N, C, S, gamma, ig, red, return_grad, n_threads,
                       go)


def focal_call(object input, object target, object gamma, object ignore_index,
               object reduction, bint return_grad, object n_threads, object grad_out=None):
    """softmax_focal_loss for the common case in one call, else None.

    Taken: float32/float64 logits (C,), (N, C) or (N, C, d1, ...) and integer
    labels as plain ndarrays (see _fastcall.pxd), gamma a float >= 0, an int
    ignore_index; the caller passes no alpha or sample weights; the gradient
    into grad_out where fc_grad_out takes it.  None sends the call down the
    full path.
    """
    cdef int ft = fc_float(input), lt = fc_labels(target), red = fc_reduction(reduction)
    cdef cnp.ndarray xa, ta
    cdef Py_ssize_t N, C, S
    cdef double g
    if ft < 0 or lt < 0 or red < 0 or not fc_threads_arg(n_threads):
        return None
    if not fc_real(gamma, &g) or g < 0.0 or type(ignore_index) is not int:
        return None
    if not -(1 << 62) < ignore_index < (1 << 62):
        return None
    xa = <cnp.ndarray>input
    ta = <cnp.ndarray>target
    if not fc_class_axis(xa, ta, &N, &C, &S):
        return None
    go = None
    if return_grad and grad_out is not None:  # (without return_grad the wrapper raised)
        go = fc_grad_out(grad_out, xa, ta, None)
        if go is None:
            return None
    if ft == cnp.NPY_FLOAT:
        return _focal_call_labels(<float*>cnp.PyArray_DATA(xa), lt, xa, ta, N, C, S, g,
                                  <Py_ssize_t>ignore_index, red, return_grad, n_threads, go)
    return _focal_call_labels(<double*>cnp.PyArray_DATA(xa), lt, xa, ta, N, C, S, g,
                              <Py_ssize_t>ignore_index, red, return_grad, n_threads, go)


cdef struct FocalArgs:
    const double* alpha
    const double* sw
    double gamma
    double gscale


cdef double _focal_half_row(const float* xr, float* gr, Py_ssize_t C, Py_ssize_t y,
                            Py_ssize_t i, const void* P, const float* nxt,
                            double* weight) noexcept nogil:
    """_focal_row for half_rows_unit."""
    cdef const FocalArgs* a = <const FocalArgs*>P
    cdef double swj = a.sw[i] if a.sw != NULL else 1.0
    weight[0] = swj
    return _focal_row(xr, gr, C, y, a.alpha, swj, a.gamma, a.gscale, nxt)


cdef void _focal_half_unit(const unsigned short* x, int kx, const label_t* t, Layout* L,
                           Py_ssize_t u, const double* alpha, const double* sw,
                           Py_ssize_t ignore, double gamma, float* loss_out, void* g, int kg,
                           double gscale, BlockOut* out) noexcept nogil:
    """_focal_unit for float16 / bfloat16 logits (half_unit_fits): rows of
    up to STREAM_ROW a row at a time (half_rows_unit), else the unit widened
    by widen_unit, the float32 unit, the gradient narrowed."""
    cdef FocalArgs a
    if L.kind == LAYOUT_ROWS and L.C <= STREAM_ROW:
        a.alpha, a.sw, a.gamma, a.gscale = alpha, sw, gamma, gscale
        half_rows_unit(x, kx, t, L, u, ignore, loss_out, g, kg, _focal_half_row, &a, out)
        return
    cdef float xraw[HALF_UNIT + 16]
    cdef float graw[HALF_UNIT + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* gb = <float*>align64(&graw[0]) if g != NULL else NULL
    cdef Py_ssize_t nb, base, pos
    cdef Layout B
    pos = widen_unit(x, kx, L, u, xb, &B, &nb, &base)
    _focal_unit(xb, t + pos, &B, 0, alpha, sw + pos if sw != NULL else NULL, ignore, gamma,
                loss_out + pos if loss_out != NULL else NULL, gb, gscale, out)
    if out.bad >= 0:
        out.bad += pos
    if g != NULL:
        narrow_unit(gb, g, kg, L, nb, base)


def focal_half_fits(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S):
    """True when focal_half reads x (N, C, S) in its own width."""
    cdef Layout L = make_layout(N, C, S)
    return C >= 1 and half_unit_fits(&L)


def focal_half(cnp.ndarray x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
               const label_t[::1] target, const double[::1] alpha,
               const double[::1] sample_weight, Py_ssize_t ignore_index, double gamma,
               float[::1] loss_out, object grad, double gscale, int n_threads):
    """`focal` of float16 / bfloat16 logits x (N, C, S) read in their own width
    (focal_half_fits); grad (None, float32 or the input's dtype) narrowed to
    nearest even.  Returns what focal returns."""
    cdef Layout L = make_layout(N, C, S)
    cdef Py_ssize_t u
    cdef int kx, kg = FL_KIND_F32, nt
    cdef const unsigned short* xp = <const unsigned short*>cnp.PyArray_DATA(x)
    cdef void* gp = NULL
    cdef const double* ap = &alpha[0] if alpha.shape[0] > 0 else NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef BlockOut* blocks
    cdef BlockOut total
    kx = fc_operand_kind(x, N * C * S, "input")
    if kx == FL_KIND_F32 or C < 1 or target.shape[0] != N * S or not half_unit_fits(&L):
        raise ValueError("fastloss internal error: focal_half operand")
    if grad is not None:
        kg = fc_operand_kind(grad, N * C * S, "grad")
        gp = cnp.PyArray_DATA(grad)
    if N * S == 0:
        return 0.0, 0.0, -1
    blocks = alloc_blocks(L.units)
    nt = threads_for(n_threads, L.units)
    try:
        for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                        num_threads=nt):
            _focal_half_unit(xp, kx, &target[0], &L, u, ap, swp, ignore_index, gamma, lp, gp,
                             kg, gscale, &blocks[u])
        combine_blocks(blocks, L.units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight, total.bad


# ========================================================= Fast R-CNN box

cdef inline double smooth_l1(double d, double beta, double* g) noexcept nogil:
    """torch's smooth L1 of d and its derivative (beta == 0: L1)."""
    cdef double ad = fabs(d)
    if ad < beta:
        g[0] = d / beta
        return 0.5 * d * d / beta
    g[0] = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
    return ad - 0.5 * beta


cdef void _box_unit(const floating* reg, const floating* tgt, const label_t* t,
                    Py_ssize_t N, Py_ssize_t K, Py_ssize_t C, Py_ssize_t R, Py_ssize_t u,
                    bint per_class, double beta, floating* g, double gscale,
                    BlockOut* out) noexcept nogil:
    cdef Py_ssize_t i, i0, i1, y, k, col
    cdef double loss, gk
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        y = <Py_ssize_t>t[i]
        if g != NULL:
            memset(g + i * K, 0, K * sizeof(floating))
        if bad_label(y, C):
            if out.bad < 0:
                out.bad = i
            continue
        if y < 1:
            continue
        out.weight += 1.0
        col = i * K + (4 * y if per_class else 0)
        loss = 0.0
        for k in range(4):
            loss += smooth_l1(<double>reg[col + k] - <double>tgt[i * 4 + k], beta, &gk)
            if g != NULL:
                g[col + k] = <floating>(gk * gscale)
        out.loss += loss


cdef int _box_run(const floating* reg, const floating* tgt, const label_t* t, Py_ssize_t N,
                  Py_ssize_t K, Py_ssize_t C, double beta, floating* gp, double gscale,
                  int n_threads, BlockOut* total) noexcept nogil:
    """The box driver on raw rows, N > 0; one work unit runs on the calling
    thread, no parallel region; -1 if out of memory."""
    cdef Py_ssize_t R = rows_per_unit(K)
    cdef Py_ssize_t units = n_blocks(N, R), u
    cdef bint per_class = K != 4
    cdef BlockOut* blocks
    cdef int nt
    if units == 1:
        _box_unit(reg, tgt, t, N, K, C, R, 0, per_class, beta, gp, gscale, total)
        return 0
    blocks = <BlockOut*>malloc(units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    nt = threads_for(n_threads, units)
    for u in prange(units, schedule="static", chunksize=deal(units, nt), num_threads=nt):
        _box_unit(reg, tgt, t, N, K, C, R, u, per_class, beta, gp, gscale, &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


def box_smooth_l1(const floating[:, ::1] reg, const floating[:, ::1] tgt,
                  const label_t[::1] labels, Py_ssize_t C, double beta,
                  floating[::1] grad, double gscale, int n_threads):
    """sum over rows with label >= 1 of smooth_l1(reg[i, cols(y)] - tgt[i]).

    reg is (N, 4) or class-specific (N, 4 C).  Returns (sum, number of
    foreground rows, first bad label or -1).
    """
    cdef Py_ssize_t N = reg.shape[0]
    cdef BlockOut total
    cdef int rc
    if N == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _box_run(&reg[0, 0], &tgt[0, 0], &labels[0], N, reg.shape[1], C, beta,
                      &grad[0] if grad.shape[0] > 0 else NULL, gscale, n_threads, &total)
    if rc:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


def box_call(object reg, object tgt, object labels, object logits, object beta,
             object box_weight, bint return_grad, object n_threads):
    """The box term of fast_rcnn_loss for the common case, else None.

    Taken: float32/float64 logits (N, C), N > 0, box rows reg (N, 4) or
    (N, 4 C) and tgt (N, 4) of their dtype, integer labels (N,) in [0, C)
    (read as int64), beta and box_weight Python floats or ints >= 0.
    Returns (box_weight / N * the sum, as a
    scalar of the logits' dtype; the gradient or None).
    """
    cdef int ft = fc_float(logits)
    cdef int nt = 1, rc
    cdef bint stream
    cdef Py_ssize_t N, C, K
    cdef double b, w
    cdef cnp.ndarray xa, ra
    cdef int64_t* owned
    cdef const int64_t* t
    cdef BlockOut total
    cdef object grad = None
    cdef void* gp = NULL
    if (ft < 0 or fc_float(reg) != ft or fc_float(tgt) != ft or not fc_threads_arg(n_threads)
            or not fc_plain(labels)):
        return None
    if not (fc_real(beta, &b) and fc_real(box_weight, &w) and b >= 0.0 and w >= 0.0):
        return None
    xa, ra = <cnp.ndarray>logits, <cnp.ndarray>reg
    if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_NDIM(ra) != 2:
        return None
    N, C, K = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1), cnp.PyArray_DIM(ra, 1)
    if (N == 0 or cnp.PyArray_DIM(ra, 0) != N or (K != 4 and K != 4 * C)
            or cnp.PyArray_NDIM(<cnp.ndarray>tgt) != 2 or cnp.PyArray_DIM(<cnp.ndarray>tgt, 0) != N
            or cnp.PyArray_DIM(<cnp.ndarray>tgt, 1) != 4
            or not fc_shape_is(<cnp.ndarray>labels, xa, 1)):
        return None
    t = fc_labels64(<cnp.ndarray>labels, False, N, &owned)
    if t == NULL:
        return None
    if n_blocks(N, rows_per_unit(K)) > 1:
        nt = effective_n_threads(n_threads)
    if return_grad:
        grad = fc_grad(ra, None, 1, &gp, &stream)  # (the box pass does not stream)
    with nogil:
        if ft == cnp.NPY_FLOAT:
            rc = _box_run(<float*>cnp.PyArray_DATA(ra), <float*>cnp.PyArray_DATA(<cnp.ndarray>tgt),
                          t, N, K, C, b, <float*>gp, w / N, nt, &total)
        else:
            rc = _box_run(<double*>cnp.PyArray_DATA(ra),
                          <double*>cnp.PyArray_DATA(<cnp.ndarray>tgt), t, N, K, C, b,
                          <double*>gp, w / N, nt, &total)
    free(owned)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_scalar(w * total.loss / N, ft), grad
