"""Softmax cross-entropy and NLL over (N, C, S) logits with class-index
targets (probability targets: _ce_soft.pyx, on the same formula).

Design:
A. One formula serves every cross-entropy variant.  With per-class target
   weights a_c >= 0 and A = sum_c a_c, the loss of one position is
       l = -sum_c a_c log p_c = A lse(x) - sum_c a_c x_c
   and its gradient is  dl/dx_c = A p_c - a_c.  Class-index targets use
   a_c = (1 - eps) w_y [c == y] + (eps / C) w_c (label smoothing eps, class
   weights w); probability targets use a_c = w_c ((1 - eps) t_c + eps / C).
   These are torch's definitions, written once.
   The row max is used as is (no scipy-style replacement of an infinite
   max), so a +inf or all -inf row gives NaN, as torch's log_softmax does.
B. Loss and gradient come out of one pass: the exponentials are written into
   the gradient buffer while they are summed, then rescaled in cache.  The
   gradient is multiplied by `gscale` (1/denominator for 'mean', found
   beforehand from the targets alone by `index_weight_sum`) and by the
   position's sample weight, so the wrapper never touches it again.
C. Work units and data layout come from `make_layout` (_layout.pxd): rows
   for wide class axes, blocks of positions along a strided class axis
   otherwise (NCHW, and narrow rows), never a transposed copy.
D. Labels are range-checked where they are read.  A bad label contributes
   nothing; its unit records the first bad position, the blocks are
   combined in order, and the wrapper raises with that position.
E. Per-unit partial sums (BlockOut) are combined in unit order: results are
   bit-identical for any thread count.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _fastcall cimport (
    LBL_I8, LBL_I16, LBL_I32, LBL_I64, RED_MEAN, RED_NONE, fc_class_axis, fc_empty_like,
    fc_float, fc_grad, fc_grad_out, fc_half, fc_labels, fc_operand_kind, fc_reduction,
    fc_result, fc_threads_arg, fc_unit_float,
)

from fastloss._threads import effective_n_threads

cnp.import_array()

# loss-only NLL below this many positions runs on the calling thread: each
# position is one load and a few flops, less than an OpenMP team costs (2
# threads win from about 4096 rows of 1000 classes here, where the loads miss)
cdef Py_ssize_t NLL_SERIAL_POSITIONS = 4096
# rows ahead whose label's value _nll_unit requests (about a memory latency of
# its loop's iterations)
cdef Py_ssize_t NLL_AHEAD = 32

from _common cimport (
    BlockOut, FL_KIND_F32, FL_PREFETCH, PLANE_BLOCK, STREAM_ROW, WIDE_ROW, align64, bad_label,
    block_init, block_labels, combine_blocks, deal, fl_log, fl_narrow, fl_stream_fence,
    fl_stream_zero, fl_widen, floating, label_t, lanes_sum, planes_lse, planes_softmax_sums,
    planes_sumexp, planes_to_rows, row_max, row_sumexp, rows_to_planes, skip_label, stream_out,
    threads_for_work, tr_rows,
)
cdef extern from "flnarrow.h" nogil:
    enum:
        FL_NARROW_MAX
    double fl_ce_narrow_f32(const float* x, Py_ssize_t K, Py_ssize_t nr, const int* ys,
                            float* lo, float* g, float gscale, const char* pf,
                            Py_ssize_t pf_bytes, int stream)
    double fl_ce_planes_f32(const float* x, Py_ssize_t cs, Py_ssize_t K, Py_ssize_t nr,
                            const int* ys, float* lo, float* g, Py_ssize_t ahead, float gscale)

from _layout cimport (
    HALF_UNIT, LAYOUT_ROWS, Layout, half_rows_unit, make_layout, narrow_unit, unit_start,
    widen_unit,
)
from _ce_math cimport ce_row_finish, planes_wdot, weight_sum_run

cdef enum:
    # positions ahead of a narrow class-plane tile whose lines are requested
    # before the tile is copied, in images of more than CE_AHEAD_BYTES
    # (smaller ones are likely in L2): cross-entropy with its gradient on
    # (2, 4, 160^3) float32 at 2 threads 0.89x the time (256: 1.0x, 2048:
    # 1.10x)
    CE_AHEAD = 512
    CE_AHEAD_BYTES = 4194304


# ---------------------------------------------------------------- targets

def index_weight_sum(const label_t[::1] t, const double[::1] weight,
                     const double[::1] sample_weight, Py_ssize_t ignore_index,
                     Py_ssize_t C, int n_threads):
    """(sum_i sw_i w[t_i] over non-ignored i, first bad position or -1).

    The 'mean' denominator of class-index losses, read from the targets
    alone so that the gradient can be scaled in the same pass as the loss.
    """
    cdef BlockOut total
    cdef int rc
    block_init(&total)
    if t.shape[0] == 0:
        return 0.0, -1
    with nogil:
        rc = weight_sum_run(&t[0], t.shape[0],
                            &weight[0] if weight.shape[0] > 0 else NULL,
                            &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                            ignore_index, C, n_threads, &total)
    if rc != 0:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.weight, total.bad


# ------------------------------------------------ cross-entropy, indices

cdef void _ce_index_unit(const floating* x, const label_t* t, Layout* L, Py_ssize_t u,
                         const double* w, const double* sw, Py_ssize_t ignore,
                         double eps, double wsum, floating* loss_out, floating* g,
                         double gscale, bint stream, BlockOut* out) noexcept nogil:
    cdef double m[PLANE_BLOCK]
    cdef double lz[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef double dot[PLANE_BLOCK]
    cdef double coef[PLANE_BLOCK]
    cdef double xy[PLANE_BLOCK]
    cdef double wyv[PLANE_BLOCK]
    cdef double swv[PLANE_BLOCK]
    cdef double lv[PLANE_BLOCK]
    cdef double wv[PLANE_BLOCK]
    cdef int ys[PLANE_BLOCK]
    cdef bint vm[PLANE_BLOCK]
    cdef Py_ssize_t C = L.C, nb, base, pos, r, j, c, y, nkeep = 0
    cdef double mx, sm, wy, swj, loss, epc = eps / C, ew = eps / C * wsum
    cdef double acc_l = 0.0, acc_w = 0.0   # kept in registers (out is a pointer)
    cdef const floating* xr
    cdef floating* gr
    cdef floating fb
    cdef floating buf[STREAM_ROW]
    cdef floating sf[PLANE_BLOCK]
    cdef floating cf[PLANE_BLOCK]
    cdef floating lf[PLANE_BLOCK]
    # class planes of a block of narrow rows (PLANE_BLOCK rows of up to 16
    # float or 8 double classes: 32 KiB each), 64-byte aligned
    cdef char rawx[PLANE_BLOCK * 64 + 64]
    cdef char rawg[PLANE_BLOCK * 64 + 64]
    cdef floating rmax[PLANE_BLOCK]
    cdef const floating* xp
    cdef floating* xb
    cdef floating* gp
    cdef Py_ssize_t cs, ps
    cdef bint tr
    block_init(out)
    pos = unit_start(L, u, &nb, &base)

    if L.kind == LAYOUT_ROWS and g != NULL and stream and C <= STREAM_ROW:
        # a gradient out of the cache (reused or the caller's): each row in
        # one pass, its gradient finished in an L1 buffer and streamed out
        # (no read for ownership of the gradient's lines); the row's log on
        # its own, the same double log as planes_lse, so the same bits
        for r in range(nb):
            xr = x + base + r * C
            gr = g + base + r * C
            y = <Py_ssize_t>t[pos + r]
            if skip_label(y, ignore, True, C, pos + r, loss_out, out):
                fl_stream_zero(gr, C * sizeof(floating))
                continue
            mx = row_max(xr, C)
            sm = row_sumexp(xr, C, mx, buf, xr + C)
            swj = sw[pos + r] if sw != NULL else 1.0
            wy = w[y] if w != NULL else 1.0
            loss = ce_row_finish(xr, buf, C, y, mx + fl_log(sm), sm, w, wy, swj, eps, wsum, ew,
                                 gscale)
            stream_out(gr, buf, C)
            if loss_out != NULL:
                loss_out[pos + r] = <floating>loss
            acc_l += loss
            acc_w += swj * wy
        fl_stream_fence()
        out.loss += acc_l
        out.weight += acc_w
        return

    if L.kind == LAYOUT_ROWS:
        # the unit's rows (nb <= PLANE_BLOCK: rows have C >= WIDE_ROW) in two
        # steps, so that their logs are taken in one vector loop (planes_lse)
        # instead of a libm call per row
        for r in range(nb):
            xr = x + base + r * C
            gr = g + base + r * C if g != NULL else NULL
            y = <Py_ssize_t>t[pos + r]
            if skip_label(y, ignore, True, C, pos + r, loss_out, out):
                if gr != NULL:
                    memset(gr, 0, C * sizeof(floating))
                ys[r] = -1
                m[r] = 0.0
                s[r] = 1.0
                continue
            ys[r] = <int>y
            m[r] = row_max(xr, C)
            s[r] = row_sumexp(xr, C, m[r], gr, xr + C)
        planes_lse(m, s, nb, lz, False)  # double: the loss lse - x_y may cancel
        for r in range(nb):
            if ys[r] < 0:
                continue
            y = ys[r]
            swj = sw[pos + r] if sw != NULL else 1.0
            wy = w[y] if w != NULL else 1.0
            loss = ce_row_finish(x + base + r * C, g + base + r * C if g != NULL else NULL, C, y,
                                 lz[r], s[r], w, wy, swj, eps, wsum, ew, gscale)
            if loss_out != NULL:
                loss_out[pos + r] = <floating>loss
            acc_l += loss
            acc_w += swj * wy
        out.loss += acc_l
        out.weight += acc_w
        return

    if floating is float:
        if (L.ps == C and L.cs == 1 and 1 < C <= FL_NARROW_MAX and w == NULL and sw == NULL
                and eps == 0):
            # rows of a few classes, unweighted: one pass, 64 rows a tile
            # (flnarrow.h)
            y = block_labels(t + pos, nb, C, ignore, True, ys)
            if y >= 0:
                out.bad = pos + y
            # the gradient rows streamed out a tile at a time where the
            # buffer is out of the cache and 64-byte aligned (flnarrow.h)
            j = max(<Py_ssize_t>0, min(nb, L.npos - pos - nb))   # the next unit's labels
            out.loss = fl_ce_narrow_f32(x + base, C, nb, ys,
                                        loss_out + pos if loss_out != NULL else NULL,
                                        g + base if g != NULL else NULL, <float>gscale,
                                        <const char*>(t + pos + nb), j * sizeof(label_t),
                                        stream)
            for j in range(nb):   # an integer count: a vector loop
                nkeep += ys[j] >= 0
            out.weight = <double>nkeep
            return
        if (L.kind != LAYOUT_ROWS and L.ps == 1 and 1 < C <= FL_NARROW_MAX and w == NULL
                and sw == NULL and eps == 0):
            # the same tiles on class planes ((N, C, H, W) logits of a few
            # classes): a copy of 64 positions a plane instead of the
            # transpose, the gradient planes written back per tile with
            # ordinary stores even into a reused buffer (streamed, the
            # gradient of (2, 4, 160^3) took 1.15x the time from the unit's
            # L1 planes, 1.7x a tile at a time)
            y = block_labels(t + pos, nb, C, ignore, True, ys)
            if y >= 0:
                out.bad = pos + y
            out.loss = fl_ce_planes_f32(x + base, L.cs, C, nb, ys,
                                        loss_out + pos if loss_out != NULL else NULL,
                                        g + base if g != NULL else NULL,
                                        CE_AHEAD if L.cs * C * 4 > CE_AHEAD_BYTES else 0,
                                        <float>gscale)
            for j in range(nb):
                nkeep += ys[j] >= 0
            out.weight = <double>nkeep
            return

    # planes: nb positions, value (c, j) at base + c*cs + j*ps.  Every step
    # is a loop over the block's positions without branches (a short class
    # axis leaves the per-position work as costly as the exponentials).
    xp = x + base
    gp = g + base if g != NULL else NULL
    cs = L.cs
    ps = L.ps
    tr = ps == C and cs == 1 and C > 1 and tr_rows(C, floating is float)
    if tr:
        # rows of a few classes: the block's rows turned into class planes
        # in L1 (fltranspose.h), so that every loop below runs down
        # contiguous planes, one row per lane, instead of gathering a
        # class at stride C; the gradient is turned back into rows at the end
        xb = <floating*>align64(&rawx[0])
        rows_to_planes(x + base, C, nb, xb, PLANE_BLOCK, x + base + nb * C, rmax)
        xp = xb
        cs = PLANE_BLOCK
        ps = 1
        if g != NULL:
            gp = <floating*>align64(&rawg[0])
    if tr and gp != NULL:
        # plane by plane: the small-class loop of planes_softmax_sums, with
        # the exponentials stored, stays scalar on these buffers (cross-entropy
        # with its gradient on (1000000, 4) float32: 10.4 -> 4.5 ms this way);
        # the row maxima came with the transpose
        for j in range(nb):
            m[j] = rmax[j]
        planes_sumexp(xp, cs, ps, C, nb, m, s, gp, cs)
    else:
        planes_softmax_sums(xp, cs, ps, C, nb, False, m, s, gp, cs)
    if eps > 0:
        planes_wdot(xp, cs, ps, C, nb, w, dot)
    planes_lse(m, s, nb, lz, floating is float)
    y = block_labels(t + pos, nb, C, ignore, True, ys)
    if y >= 0 and out.bad < 0:
        out.bad = pos + y
    for j in range(nb):
        vm[j] = ys[j] >= 0
    for j in range(nb):
        # the labelled logit (class 0 at skipped positions: read, then dropped)
        xy[j] = xp[<Py_ssize_t>(ys[j] if ys[j] >= 0 else 0) * cs + j * ps]
    for j in range(nb):
        wyv[j] = 1.0
    if w == NULL and sw == NULL and eps == 0:
        # no weights, no smoothing: the loop below without its products by
        # 1.0 and sums with 0.0 (exact, so the same bits), and its gradient
        # factors only with a gradient
        for j in range(nb):
            lv[j] = lz[j] - xy[j] if vm[j] else 0.0
            wv[j] = 1.0 if vm[j] else 0.0
        if g != NULL:
            for j in range(nb):
                coef[j] = gscale if vm[j] else 0.0
                s[j] = coef[j] / s[j] if vm[j] else 0.0
    else:
        for j in range(nb):
            swv[j] = 1.0
        if w != NULL:
            for j in range(nb):
                wyv[j] = w[ys[j] if ys[j] >= 0 else 0]
        if sw != NULL:
            for j in range(nb):
                swv[j] = sw[pos + j]
        for j in range(nb):
            loss = (1.0 - eps) * wyv[j] * (lz[j] - xy[j])
            if eps > 0:
                loss = loss + epc * (wsum * lz[j] - dot[j])
            # selects, not products: a skipped position's NaN or inf stays out
            lv[j] = swv[j] * loss if vm[j] else 0.0
            wv[j] = swv[j] * wyv[j] if vm[j] else 0.0
            coef[j] = swv[j] * gscale if vm[j] else 0.0
            # s[j] becomes the factor on e_c: coef * A / s
            s[j] = coef[j] * ((1.0 - eps) * wyv[j] + ew) / s[j] if vm[j] else 0.0
    if loss_out != NULL:
        for j in range(nb):
            loss_out[pos + j] = <floating>lv[j]
    out.loss += lanes_sum(lv, nb)
    out.weight += lanes_sum(wv, nb)
    if g == NULL:
        return
    # the factors in the gradient's type once, not once a class
    for j in range(nb):
        sf[j] = <floating>s[j]
        cf[j] = <floating>coef[j]
        if floating is float:
            lf[j] = <floating>(coef[j] * (1.0 - eps) * wyv[j])
    for c in range(C):
        gr = gp + c * cs
        fb = <floating>(epc * (w[c] if w != NULL else 1.0))
        if ps == 1 and eps == 0 and w == NULL and sw == NULL:
            # fb = 0 and coef finite: the product by 0 taken off (same bits)
            for j in range(nb):
                gr[j] = gr[j] * sf[j]
        elif ps == 1:
            for j in range(nb):
                gr[j] = gr[j] * sf[j] - fb * cf[j]
        else:
            for j in range(nb):
                gr[j * ps] = gr[j * ps] * sf[j] - fb * cf[j]
    for j in range(nb):
        if ys[j] >= 0:
            gr = gp + <Py_ssize_t>ys[j] * cs + j * ps
            if floating is float:
                gr[0] = gr[0] - lf[j]
            else:   # the product and the difference in one multiply-add, as gcc contracts
                gr[0] = gr[0] - coef[j] * (1.0 - eps) * wyv[j]
    if tr:
        if stream:
            # rows again in L1 (over the logits' planes, no longer read),
            # then streamed: the gradient's lines are not read for ownership
            planes_to_rows(gp, PLANE_BLOCK, C, nb, xb)
            stream_out(g + base, xb, nb * C)
            fl_stream_fence()
        else:
            planes_to_rows(gp, PLANE_BLOCK, C, nb, g + base)


# ---------------------------------------- cross-entropy, probabilities

cdef void _nll_unit(const floating* x, const label_t* t, Layout* L, Py_ssize_t u,
                    const double* w, const double* sw, Py_ssize_t ignore,
                    floating* loss_out, floating* g, double gscale, bint stream,
                    BlockOut* out) noexcept nogil:
    cdef Py_ssize_t C = L.C, nb, base, pos, j, c, y, ya, off, step
    cdef double wy, swj, loss
    cdef double acc_l = 0.0, acc_w = 0.0   # kept in registers (out is a pointer)
    block_init(out)
    pos = unit_start(L, u, &nb, &base)
    # rows: row j starts at base + j*C; planes: position j at base + j*ps
    step = C if L.kind == LAYOUT_ROWS else L.ps
    if g != NULL:
        if L.kind == LAYOUT_ROWS or L.ps == C:
            if stream:
                # a reused buffer: zeros straight to memory, no read for ownership
                fl_stream_zero(g + base, nb * C * sizeof(floating))
                fl_stream_fence()
            else:
                memset(g + base, 0, nb * C * sizeof(floating))
        else:
            for c in range(C):
                memset(g + base + c * L.cs, 0, nb * sizeof(floating))
    for j in range(nb):
        if L.kind == LAYOUT_ROWS and pos + j + NLL_AHEAD < L.N:
            # one value per row, each in a line (and a page) of its own: the
            # value NLL_AHEAD rows on is requested now, so that many misses
            # are in flight instead of the few the out-of-order window holds
            ya = <Py_ssize_t>t[pos + j + NLL_AHEAD]
            if not bad_label(ya, C):
                FL_PREFETCH(x + (pos + j + NLL_AHEAD) * C + ya)
        y = <Py_ssize_t>t[pos + j]
        if skip_label(y, ignore, True, C, pos + j, loss_out, out):
            continue
        off = base + j * step + y * (1 if L.kind == LAYOUT_ROWS else L.cs)
        wy = w[y] if w != NULL else 1.0
        swj = sw[pos + j] if sw != NULL else 1.0
        loss = -swj * wy * x[off]
        if loss_out != NULL:
            loss_out[pos + j] = <floating>loss
        acc_l += loss
        acc_w += swj * wy
        if g != NULL:
            g[off] = <floating>(-gscale * swj * wy)
    out.loss += acc_l
    out.weight += acc_w


include "_classification_half.pxi"


# -------------------------------------------------------------- drivers

cdef int _ce_index_run(const floating* x, const label_t* t, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t S, const double* wp, const double* swp, Py_ssize_t ignore,
                       double eps, floating* lp, floating* gp, double gscale, int n_threads,
                       bint log_input, bint stream, BlockOut* total) noexcept nogil:
    """The cross-entropy (NLL when log_input) pass over x (N, C, S); -1: no memory."""
    cdef Layout L
    cdef Py_ssize_t u
    cdef double wsum = 0.0
    cdef BlockOut* blocks
    cdef int nt
    block_init(total)
    if N == 0 or S == 0 or C == 0:
        return 0
    for u in range(C):
        wsum += wp[u] if wp != NULL else 1.0
    L = make_layout(N, C, S)
    blocks = <BlockOut*>malloc(L.units * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    nt = threads_for_work(n_threads, L.units, N * C * S)
    if log_input and gp == NULL and N * S < NLL_SERIAL_POSITIONS:
        nt = 1  # a loss-only NLL reads one value per position: no team for a few
    if log_input:
        if nt == 1:
            for u in range(L.units):
                _nll_unit(x, t, &L, u, wp, swp, ignore, lp, gp, gscale, stream, &blocks[u])
        else:
            for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                            num_threads=nt):
                _nll_unit(x, t, &L, u, wp, swp, ignore, lp, gp, gscale, stream, &blocks[u])
    else:
        if nt == 1:
            for u in range(L.units):
                _ce_index_unit(x, t, &L, u, wp, swp, ignore, eps, wsum, lp, gp, gscale,
                               stream, &blocks[u])
        else:
            for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                            num_threads=nt):
                _ce_index_unit(x, t, &L, u, wp, swp, ignore, eps, wsum, lp, gp, gscale,
                               stream, &blocks[u])
    combine_blocks(blocks, L.units, total)
    free(blocks)
    return 0


def ce_index(const floating[:, :, ::1] x, const label_t[:, ::1] target,
             const double[::1] weight, const double[::1] sample_weight,
             Py_ssize_t ignore_index, double label_smoothing,
             floating[::1] loss_out, floating[::1] grad, double gscale,
             int n_threads, bint log_input=False, bint stream=False):
    """Cross-entropy (or NLL when log_input) of x (N, C, S) with labels (N, S).

    Empty `weight`, `sample_weight`, `loss_out`, `grad` mean "absent".
    `stream`: grad is a reused or caller's buffer, written with non-temporal
    stores (NLL's zeros, cross-entropy's rows of up to STREAM_ROW classes).
    Returns (sum of losses, sum of weights, first bad label position or -1).
    """
    cdef BlockOut total
    cdef int rc
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        return 0.0, 0.0, -1
    with nogil:
        rc = _ce_index_run(&x[0, 0, 0], &target[0, 0], x.shape[0], x.shape[1], x.shape[2],
                           &weight[0] if weight.shape[0] > 0 else NULL,
                           &sample_weight[0] if sample_weight.shape[0] > 0 else NULL,
                           ignore_index, label_smoothing,
                           &loss_out[0] if loss_out.shape[0] > 0 else NULL,
                           &grad[0] if grad.shape[0] > 0 else NULL,
                           gscale, n_threads, log_input, stream, &total)
    if rc != 0:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return total.loss, total.weight, total.bad


cdef inline bint _ce_half_fits(Py_ssize_t C, Py_ssize_t S, bint log_input) noexcept:
    """ce_index_half reads float16 / bfloat16 x (N, C, S) in its own width:
    wide rows (S == 1, WIDE_ROW <= C; C <= STREAM_ROW for cross-entropy, any
    C for NLL, which reads one value a row) row by row, class-plane layouts
    (S > 1 or fewer classes) of up to HALF_UNIT // PLANE_BLOCK classes a unit
    at a time."""
    if S == 1 and C >= WIDE_ROW:
        return log_input or C <= STREAM_ROW
    return 1 <= C <= HALF_UNIT // PLANE_BLOCK


def ce_half_fits(Py_ssize_t C, Py_ssize_t S, bint log_input):
    """True when ce_index_half takes float16 / bfloat16 x (N, C, S) (other
    shapes are computed in float32 by the wrapper)."""
    return _ce_half_fits(C, S, log_input)


def ce_index_half(cnp.ndarray x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                  const label_t[::1] target, const double[::1] weight,
                  const double[::1] sample_weight, Py_ssize_t ignore_index,
                  double label_smoothing, float[::1] loss_out, object grad, double gscale,
                  int n_threads, bint log_input=False):
    """Cross-entropy (NLL with log_input) of float16 / bfloat16 values x
    (N, C, S) read in their own width, for the shapes ce_half_fits takes.

    x and grad (None, float32 or 16-bit) are C-contiguous with N*C*S
    elements.  Returns what ce_index returns.
    """
    cdef BlockOut total
    cdef Layout L
    cdef BlockOut* blocks
    cdef Py_ssize_t u
    cdef double wsum = 0.0
    cdef int nt, kx, kg = FL_KIND_F32
    cdef const unsigned short* xp = <const unsigned short*>cnp.PyArray_DATA(x)
    cdef void* gp = NULL
    cdef const double* wp = &weight[0] if weight.shape[0] > 0 else NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    kx = fc_operand_kind(x, N * C * S, "input")
    L = make_layout(N, C, S)
    if kx == FL_KIND_F32 or target.shape[0] != N * S or not _ce_half_fits(C, S, log_input):
        raise ValueError("fastloss internal error: ce_index_half operand")
    if grad is not None:
        kg = fc_operand_kind(grad, N * C * S, "grad")
        gp = cnp.PyArray_DATA(grad)
    if N * S == 0:
        return 0.0, 0.0, -1
    for u in range(C):
        wsum += wp[u] if wp != NULL else 1.0
    blocks = <BlockOut*>malloc(L.units * sizeof(BlockOut))
    if blocks == NULL:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    with nogil:
        nt = threads_for_work(n_threads, L.units, N * C * S)
        if nt == 1:
            for u in range(L.units):
                _half_unit(xp, kx, &target[0], &L, u, wp, swp, ignore_index, label_smoothing,
                           wsum, lp, gp, kg, gscale, log_input, &blocks[u])
        else:
            for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt),
                            num_threads=nt):
                _half_unit(xp, kx, &target[0], &L, u, wp, swp, ignore_index, label_smoothing,
                           wsum, lp, gp, kg, gscale, log_input, &blocks[u])
        combine_blocks(blocks, L.units, &total)
    free(blocks)
    return total.loss, total.weight, total.bad


# ------------------------------------------------------- prepared call

cdef object _ce_call(const floating* x, const label_t* t, cnp.ndarray xa, cnp.ndarray ta,
                     Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t ignore, double eps,
                     int red, bint return_grad, object n_threads, bint log_input, object go):
    cdef int typenum = cnp.PyArray_TYPE(xa)
    cdef Py_ssize_t units = make_layout(N, C, S).units
    cdef int nt = 1
    cdef int rc = 0
    cdef bint stream = False
    cdef double gscale = 1.0
    cdef BlockOut total
    cdef object loss_arr = None
    cdef object grad_arr = None
    cdef floating* lp = NULL
    cdef floating* gp = NULL
    if units > 1:
        nt = effective_n_threads(n_threads)
    if red == RED_NONE:
        loss_arr = fc_empty_like(ta, typenum, <void**>&lp)
    if return_grad:
        grad_arr = fc_grad(xa, go, 1, <void**>&gp, &stream)
        if red == RED_MEAN:
            with nogil:
                rc = weight_sum_run(t, N * S, NULL, NULL, ignore, C, nt, &total)
            if rc != 0 or total.bad >= 0:
                return None
            gscale = 1.0 / total.weight if total.weight != 0 else 0.0
    with nogil:
        rc = _ce_index_run(x, t, N, C, S, NULL, NULL, ignore, eps, lp, gp, gscale, nt,
                           log_input, stream, &total)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, total.weight, typenum, loss_arr, return_grad, grad_arr)


cdef object _ce_call_labels(const floating* x, int lt, cnp.ndarray xa, cnp.ndarray ta,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t ig,
                            double eps, int red, bint return_grad, object n_threads,
                            bint log_input, object go):
    """_ce_call with the labels read in their own width (LBL_*)."""
    cdef void* t = cnp.PyArray_DATA(ta)
    if lt == LBL_I64:
        return _ce_call(x, <int64_t*>t, xa, ta, N, C, S, ig, eps, red, return_grad, n_threads,
                        log_input, go)
    if lt == LBL_I32:
        return _ce_call(x, <int32_t*>t, xa, ta, N, C, S, ig, eps, red, return_grad, n_threads,
                        log_input, go)
    if lt == LBL_I16:
        return _ce_call(x, <int16_t*>t, xa, ta, N, C, S, ig, eps, red, return_grad, n_threads,
                        log_input, go)
    if lt == LBL_I8:
        return _ce_call(x, <int8_t*>t, xa, ta, N, C, S, ig, eps, red, return_grad, n_threads,
                        log_input, go)
    return _ce_call(x, <uint8_t*>t, xa, ta, N, C, S, ig, eps, red, return_grad, n_threads,
                    log_input, go)


# the absent weights and the reduced calls' loss buffer of _ce_call_half
cdef cnp.npy_intp _ZERO = 0
cdef cnp.ndarray _NO_WEIGHT = cnp.PyArray_EMPTY(1, &_ZERO, cnp.NPY_DOUBLE, 0)
cdef cnp.ndarray _NO_LOSS = cnp.PyArray_EMPTY(1, &_ZERO, cnp.NPY_FLOAT, 0)


cdef object _ce_call_half(cnp.ndarray xa, cnp.ndarray ta, Py_ssize_t N, Py_ssize_t C,
                          Py_ssize_t S, Py_ssize_t ig, double eps, int red, bint return_grad,
                          object n_threads, bint log_input, object go):
    """ce_call for float16 / bfloat16 logits where the full path reads them
    in their own width (_entropy._half_native): the same ce_index_half call,
    the loss in float32, the gradient in the input's dtype; None for the
    shapes the full path widens."""
    cdef int nt = 1
    cdef bint stream = False
    cdef double gscale = 1.0
    cdef object loss_arr = None, loss_flat = _NO_LOSS, grad_arr = None, grad_flat = None
    cdef object t_flat, denom, bad, total
    cdef void* p
    if not _ce_half_fits(C, S, log_input):
        return None
    if make_layout(N, C, S).units > 1:
        nt = effective_n_threads(n_threads)
    t_flat = cnp.PyArray_Ravel(ta, cnp.NPY_CORDER)  # views: both are C-contiguous
    if red == RED_NONE:
        loss_arr = fc_empty_like(ta, cnp.NPY_FLOAT, &p)
        loss_flat = cnp.PyArray_Ravel(<cnp.ndarray>loss_arr, cnp.NPY_CORDER)
    if return_grad:
        grad_arr = fc_grad(xa, go, 1, &p, &stream)  # (no streamed half stores)
        grad_flat = cnp.PyArray_Ravel(<cnp.ndarray>grad_arr, cnp.NPY_CORDER)
        if red == RED_MEAN:
            denom, bad = index_weight_sum(t_flat, _NO_WEIGHT, _NO_WEIGHT, ig, C, nt)
            if bad >= 0:
                return None
            gscale = 1.0 / denom if denom != 0 else 0.0
    total, denom, bad = ce_index_half(xa, N, C, S, t_flat, _NO_WEIGHT, _NO_WEIGHT, ig, eps,
                                      loss_flat, grad_flat, gscale, nt, log_input)
    if bad >= 0:
        return None  # the full path raises
    return fc_result(red, total, denom, cnp.NPY_FLOAT, loss_arr, return_grad, grad_arr)


def ce_call(object input, object target, object weight, object ignore_index, object reduction,
            object label_smoothing, object sample_weight, bint return_grad, object grad_out,
            object n_threads, bint log_input):
    """cross_entropy / nll_loss for the common case in one call, else None.

    Taken: float32/float64 logits (float16/bfloat16 ones where they are
    read in their own width) and integer labels as plain ndarrays (see
    _fastcall.pxd), no weights, grad_out where fc_grad_out takes it.  None
    sends the call down the full path, which owns every error message.
    """
    cdef int ft = fc_float(input)
    cdef int lt, red
    cdef cnp.ndarray xa, ta
    cdef Py_ssize_t N, C, S
    cdef double eps = 0.0
    if ft < 0 and fc_half(input) < 0:
        return None
    if weight is not None or sample_weight is not None:
        return None
    lt = fc_labels(target)
    red = fc_reduction(reduction)
    if lt < 0 or red < 0 or type(ignore_index) is not int or not fc_threads_arg(n_threads):
        return None
    if not fc_unit_float(label_smoothing, &eps):
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
    if not -(1 << 62) < ignore_index < (1 << 62):
        return None
    ig = <Py_ssize_t>ignore_index
    if ft < 0:
        return _ce_call_half(xa, ta, N, C, S, ig, eps, red, return_grad, n_threads, log_input,
                             go)
    if ft == cnp.NPY_FLOAT:
        return _ce_call_labels(<float*>cnp.PyArray_DATA(xa), lt, xa, ta, N, C, S, ig, eps, red,
                               return_grad, n_threads, log_input, go)
    return _ce_call_labels(<double*>cnp.PyArray_DATA(xa), lt, xa, ta, N, C, S, ig, eps, red,
                           return_grad, n_threads, log_input, go)
