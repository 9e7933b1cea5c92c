"""Softmax cross-entropy against class probabilities (soft targets) over
(N, C, S) logits, float32 / float64 and float16 / bfloat16 rows.

Design: the formula and the one-pass scheme of _classification.pyx (A, B):
with a_c = w_c ((1 - eps) t_c + eps / C) and A = sum_c a_c a position's
loss is A lse(x) - sum_c a_c x_c and its gradient A p_c - a_c; the target
row is read once for A and the dot product with the logits, once more
for the gradient while the row is in cache.  Work units from make_layout,
per-unit partial sums combined in unit order (bit-identical for any thread
count); half-precision rows are widened a block at a time into L1.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport log
from libc.stdlib cimport free

from _common cimport (
    BlockOut, FL_KIND_F32, PLANE_BLOCK, align64, alloc_blocks, block_init, combine_blocks, deal,
    fl_narrow, fl_soft_statsf, fl_widen, floating, planes_lse, planes_softmax_sums, row_max,
    row_sumexp, threads_for_work,
)
from _layout cimport (
    HALF_UNIT, LAYOUT_ROWS, Layout, half_unit_fits, make_layout, narrow_unit, unit_start,
    widen_unit,
)
from _fastcall cimport fc_operand_kind

cnp.import_array()


cdef void _soft_row_stats(const floating* x, const floating* t, const double* w,
                          double keep, double epc, Py_ssize_t n,
                          double* A, double* D) noexcept nogil:
    """A = sum_c a_c and D = sum_c a_c x_c, a_c = w_c (keep t_c + epc):
    fl_soft_statsf for float32 rows, 8 double lanes for float64 ones."""
    cdef double accA[8]
    cdef double accD[8]
    cdef double a
    cdef Py_ssize_t i = 0, k
    if floating is float:
        fl_soft_statsf(x, t, w, keep, epc, n, A, D)
    else:
        for k in range(8):
            accA[k] = 0.0
            accD[k] = 0.0
        while i + 8 <= n:
            for k in range(8):
                a = (keep * t[i + k] + epc) * (w[i + k] if w != NULL else 1.0)
                accA[k] += a
                accD[k] += a * x[i + k]
            i += 8
        while i < n:
            a = (keep * t[i] + epc) * (w[i] if w != NULL else 1.0)
            accA[0] += a
            accD[0] += a * x[i]
            i += 1
        A[0] = (((accA[0] + accA[1]) + (accA[2] + accA[3]))
                + ((accA[4] + accA[5]) + (accA[6] + accA[7])))
        D[0] = (((accD[0] + accD[1]) + (accD[2] + accD[3]))
                + ((accD[4] + accD[5]) + (accD[6] + accD[7])))


cdef inline double _ce_prob_row(const floating* xr, const floating* tr, floating* gr,
                                Py_ssize_t C, const double* w, double keep, double epc,
                                double swj, double gscale) noexcept nogil:
    """The weighted loss of one row of logits xr with probabilities tr; its
    gradient (times gscale) to gr unless gr is NULL."""
    cdef double mx, sm, A, D, loss
    cdef floating fa, fb
    cdef Py_ssize_t c
    mx = row_max(xr, C)
    sm = row_sumexp(xr, C, mx, gr, xr + C)
    _soft_row_stats(xr, tr, w, keep, epc, C, &A, &D)
    loss = swj * (A * (mx + log(sm)) - D)
    if gr != NULL:
        fa = <floating>(swj * gscale * A / sm)
        fb = <floating>(swj * gscale)
        for c in range(C):
            gr[c] = gr[c] * fa - fb * <floating>(
                (keep * tr[c] + epc) * (w[c] if w != NULL else 1.0))
    return loss


cdef void _ce_prob_unit(const floating* x, const floating* t, Layout* L, Py_ssize_t u,
                        const double* w, const double* sw, double eps,
                        floating* loss_out, floating* g, double gscale,
                        BlockOut* out) noexcept nogil:
    cdef double m[PLANE_BLOCK]
    cdef double s[PLANE_BLOCK]
    cdef double A[PLANE_BLOCK]
    cdef double D[PLANE_BLOCK]
    cdef double coef[PLANE_BLOCK]
    cdef Py_ssize_t C = L.C, nb, base, pos, r, j, c
    cdef double swj, loss, a, keep = 1.0 - eps, epc = eps / C
    cdef const floating* xr
    cdef const floating* tr
    cdef floating* gr
    cdef floating fb
    block_init(out)
    pos = unit_start(L, u, &nb, &base)

    if L.kind == LAYOUT_ROWS:
        for r in range(nb):
            swj = sw[pos + r] if sw != NULL else 1.0
            loss = _ce_prob_row(x + base + r * C, t + base + r * C,
                                g + base + r * C if g != NULL else NULL, C, w, keep, epc, swj,
                                gscale)
            if loss_out != NULL:
                loss_out[pos + r] = <floating>loss
            out.loss += loss
            out.weight += swj
        return

    for j in range(nb):
        A[j] = 0.0
        D[j] = 0.0
    planes_softmax_sums(x + base, L.cs, L.ps, C, nb, False, m, s,
                        g + base if g != NULL else NULL, L.cs)
    for c in range(C):
        xr = x + base + c * L.cs
        tr = t + base + c * L.cs
        for j in range(nb):
            a = (keep * tr[j * L.ps] + epc) * (w[c] if w != NULL else 1.0)
            A[j] += a
            D[j] += a * xr[j * L.ps]
    planes_lse(m, s, nb, m, floating is float)
    for j in range(nb):
        swj = sw[pos + j] if sw != NULL else 1.0
        loss = swj * (A[j] * m[j] - D[j])
        if loss_out != NULL:
            loss_out[pos + j] = <floating>loss
        out.loss += loss
        out.weight += swj
        coef[j] = swj * gscale
        s[j] = coef[j] * A[j] / s[j]
    if g == NULL:
        return
    for c in range(C):
        gr = g + base + c * L.cs
        tr = t + base + c * L.cs
        fb = <floating>(w[c] if w != NULL else 1.0)
        for j in range(nb):
            gr[j * L.ps] = (gr[j * L.ps] * <floating>s[j]
                            - <floating>coef[j] * fb * <floating>(keep * tr[j * L.ps] + epc))


# ------------------------------------------------------------------ NLL

cdef void _ce_prob_half_unit(const unsigned short* x, int kx, const void* t, int kt,
                             Layout* L, Py_ssize_t u, const double* w, const double* sw,
                             double eps, float* loss_out, void* g, int kg, double gscale,
                             BlockOut* out) noexcept nogil:
    """_ce_prob_unit for float16 / bfloat16 logits (half_unit_fits) and class
    probabilities of their kind or float32: both widened by widen_unit, the
    float32 unit, the gradient narrowed by narrow_unit."""
    cdef float xraw[HALF_UNIT + 16]
    cdef float traw[HALF_UNIT + 16]
    cdef float graw[HALF_UNIT + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* tb = <float*>align64(&traw[0])
    cdef float* gb = <float*>align64(&graw[0]) if g != NULL else NULL
    cdef Py_ssize_t nb, base, pos, r, C = L.C
    cdef size_t tsize = 4 if kt == FL_KIND_F32 else 2
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef double swj, loss, epc = eps / C
    cdef Layout B
    if L.kind == LAYOUT_ROWS:
        # row by row, so that the widened row stays in L1 (a whole unit of
        # up to HALF_UNIT values per buffer would not)
        block_init(out)
        pos = unit_start(L, u, &nb, &base)
        for r in range(nb):
            fl_widen(x + base + r * C, kx, xb, C)
            fl_widen(<const char*>t + (base + r * C) * tsize, kt, tb, C)
            swj = sw[pos + r] if sw != NULL else 1.0
            loss = _ce_prob_row(xb, tb, gb, C, w, 1.0 - eps, epc, swj, gscale)
            if g != NULL:
                fl_narrow(gb, <char*>g + (base + r * C) * gsize, kg, C)
            if loss_out != NULL:
                loss_out[pos + r] = <float>loss
            out.loss += loss
            out.weight += swj
        return
    widen_unit(t, kt, L, u, tb, &B, &nb, &base)
    pos = widen_unit(x, kx, L, u, xb, &B, &nb, &base)
    _ce_prob_unit(xb, tb, &B, 0, w, sw + pos if sw != NULL else NULL, eps,
                  loss_out + pos if loss_out != NULL else NULL, gb, gscale, out)
    if g != NULL:
        narrow_unit(gb, g, kg, L, nb, base)


def ce_prob(const floating[:, :, ::1] x, const floating[:, :, ::1] target,
            const double[::1] weight, const double[::1] sample_weight,
            double label_smoothing, floating[::1] loss_out, floating[::1] grad,
            double gscale, int n_threads):
    """Cross-entropy of x (N, C, S) with class probabilities of the same shape.

    Returns (sum of losses, sum of sample weights).
    """
    cdef Layout L
    cdef Py_ssize_t u
    cdef const double* wp = &weight[0] if weight.shape[0] > 0 else NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef floating* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef floating* gp = &grad[0] if grad.shape[0] > 0 else NULL
    cdef BlockOut* blocks
    cdef BlockOut total
    cdef int nt
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        return 0.0, 0.0
    L = make_layout(x.shape[0], x.shape[1], x.shape[2])
    blocks = alloc_blocks(L.units)
    nt = threads_for_work(n_threads, L.units, L.N * L.C * L.S)
    try:
        for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt), nogil=True,
                        num_threads=nt):
            _ce_prob_unit(&x[0, 0, 0], &target[0, 0, 0], &L, u, wp, swp,
                          label_smoothing, lp, gp, gscale, &blocks[u])
        combine_blocks(blocks, L.units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight


def ce_prob_half(cnp.ndarray x, cnp.ndarray target, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                 const double[::1] weight, const double[::1] sample_weight,
                 double label_smoothing, float[::1] loss_out, object grad, double gscale,
                 int n_threads):
    """`ce_prob` of float16 / bfloat16 logits x (N, C, S) read in their own
    width, with class probabilities of x's kind or float32 (C-contiguous,
    N*C*S elements each); the layouts of at most HALF_UNIT values a unit
    (ce_prob_half_fits).  grad: None, float32 or x's kind.  Returns what
    ce_prob returns."""
    cdef BlockOut total
    cdef Layout L
    cdef BlockOut* blocks
    cdef Py_ssize_t u
    cdef int nt, kx, kt, kg = FL_KIND_F32
    cdef const unsigned short* xp = <const unsigned short*>cnp.PyArray_DATA(x)
    cdef const void* tp = cnp.PyArray_DATA(target)
    cdef void* gp = NULL
    cdef const double* wp = &weight[0] if weight.shape[0] > 0 else NULL
    cdef const double* swp = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    kx = fc_operand_kind(x, N * C * S, "input")
    kt = fc_operand_kind(target, N * C * S, "target")
    if N * C * S == 0:
        return 0.0, 0.0
    L = make_layout(N, C, S)
    if kx == FL_KIND_F32 or (kt != kx and kt != FL_KIND_F32) or not half_unit_fits(&L):
        raise ValueError("fastloss internal error: ce_prob_half operands")
    if grad is not None:
        kg = fc_operand_kind(grad, N * C * S, "grad")
        gp = cnp.PyArray_DATA(grad)
    blocks = alloc_blocks(L.units)
    try:
        with nogil:
            nt = threads_for_work(n_threads, L.units, N * C * S)
            for u in prange(L.units, schedule="static", chunksize=deal(L.units, nt),
                            num_threads=nt):
                _ce_prob_half_unit(xp, kx, tp, kt, &L, u, wp, swp, label_smoothing, lp, gp, kg,
                                   gscale, &blocks[u])
            combine_blocks(blocks, L.units, &total)
    finally:
        free(blocks)
    return total.loss, total.weight


def ce_prob_half_fits(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S):
    """Whether ce_prob_half takes logits of shape (N, C, S)."""
    cdef Layout L
    if N * C * S == 0:
        return True
    L = make_layout(N, C, S)
    return half_unit_fits(&L)
