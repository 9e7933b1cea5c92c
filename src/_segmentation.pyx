"""Soft Dice-family statistics and their gradient (the hard confusion
matrices are in _confusion.pyx).

Design:
A. One fused pass over logits (N, C, S), S = prod(spatial), computes per
   (image, class) sums from which every Dice-family loss is O(N*C)
   arithmetic (_seg_value.pxd, through seg_finish or seg_call):
   I = sum v p g, P = sum v p, P2 = sum v p^2, G = sum g, G2 = sum g^2
   (MODE_OVERLAP), or E1 = sum g (g - p)^2, E0 = sum v (1 - g)(g - p)^2,
   NEG = sum v (1 - g), G, G2 (MODE_SENSSPEC); p the activation (softmax
   over C, sigmoid, none), g the target (a label map compared with the
   class, or a soft mask), v the ignore mask.  Extra memory: per thread a
   4 C x SEG_BLOCK buffer of the data's type and a (5 C + 3) x SEG_BLOCK
   double workspace, O(N*C) partial sums; never a one-hot copy.
B. The activation is applied per block of SEG_BLOCK positions
   (planes_softmax_sums of _common.pxd: max-subtracted exponentials scaled
   by 1/sum), so each logit is read once and exp'ed once.
C. The label map is read in its own width (_labels_at: the passes take it as
   a pointer and its LBL_* kind), once per block, as an
   int32 class (-1: ignored or bad) and a 0/1 mask; the first bad position
   is reported.  For a label map g is 0/1, so the overlap pass (the hot
   path) needs no g plane: G = G2 = the label counts (exact integers), I =
   the sum of p where the label is the class, P2 only for squared_pred; the
   1/sum of the softmax is applied in that loop (p = e * r in the data's
   type, the rounding of a stored probability).  float data with a softmax
   over 2 to 8 classes runs that block as one loop over the positions
   (flseg.h), a position's values kept in registers, the same arithmetic
   and bits.  Soft targets and MODE_SENSSPEC keep a materialised g.
D. Work units: an image is split into at most MAX_UNITS chunks of whole
   SEG_BLOCKs (at least MIN_UNIT_BLOCKS each; the split depends only on S);
   each unit writes its own slot, added per image in unit order after the
   parallel loop: bit-identical for any thread count.  A thread's scratch
   is one laid-out region (_stats_scratch): planes on SKEW_PERIOD bytes,
   the block arrays the loops read SKEW bytes past.  With those arrays on
   the threads' stacks and the double workspace apart, a 2-thread call's
   worker took 1.5-1.7x its main thread's time on the same work.
E. The gradient is a second pass: seg_value turns the global sums into
   per-(image, class) coefficients of dL/dp (OVERLAP: a g + v (b + 2 b2 p);
   SENSSPEC: -2 (g - p)(a g + b v (1 - g))), chained through the activation
   (softmax: p_c (d_c - sum_k p_k d_k)), with dice_ce's cross-entropy term
   k sw (A p_c - a_c) in the same loop.
F. dice_ce's cross-entropy uses the same softmax: a position's loss is
   sw (A lse - sum_c a_c x_c) with a_c = w_c g_c, A = sum_c a_c; for a label
   map only the labelled class has a_c != 0 (A = w_y, x_y picked by the
   compare that gives I).
G. Vertical accumulation: per statistic and class a unit keeps SEG_BLOCK
   slots; position j of every block adds into slot j (element-wise loops,
   no loop-carried dependency: vectorized), folded once per unit in a fixed
   order (lanes_sum).  The label-map overlap sums first add into slots of
   the data's type, folded into double slots every FOLD blocks (16 terms a
   slot, as NumPy's pairwise sum).  The order depends only on the unit.
H. float16 / bfloat16 logits are read in their own width: each block's C
   planes are widened into the unit's L1 buffer (_block_x) and the float32
   block math runs on them: the float32 call's bits on the widened values,
   no converted copy.
I. Small calls: under two ELEM_BLOCKs of work the units run on the calling
   thread (no OpenMP region), and a unit of an image smaller than a block
   clears and folds only the slots its positions touch.
"""

cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _common cimport (
    ACT_NONE, ACT_SIGMOID, ACT_SOFTMAX, ELEM_BLOCK, FL_KIND_BF16, FL_KIND_F16, align_up,
    fl_cpu_amd, fl_cpu_amd_init, fl_narrow, floating, label_t, lanes_sum, n_blocks, planes_lse,
    threads_for_work,
)
from _fastcall cimport (
    RED_NONE, fc_float, fc_grad, fc_grad_out, fc_labels, fc_reduction, fc_shape_is,
    fc_threads_arg,
)
from _seg_blocks cimport (
    NSTAT, SEG_BLOCK, SKEW, SKEW_PERIOD, _block_x, _fold, _gmask, _isum, _labels_at, _probs,
    _probs_raw, _stats_scratch, _vadd, _vadd_label, _vadd_sens, _vadd_soft, _vadd_sq,
    _vadd_sq_scaled, _wk_offset, label_kind,
)
from _seg_value cimport (
    LOSS_DICE, LOSS_DICE_CE, LOSS_GENERALIZED, LOSS_SENSSPEC, LOSS_TVERSKY, W_SIMPLE,
    W_SQUARE, W_UNIFORM, SegQ, seg_loss, seg_nonneg, seg_params,
)

import numpy as np

from fastloss._threads import effective_n_threads

cnp.import_array()
fl_cpu_amd_init()   # the CPU's maker, read before any thread runs (_seg_blocks._block_x)
# Whether the class planes of large images are requested ahead of their
# blocks (not on AMD CPUs, _seg_blocks._block_x); fastloss.show_config prints it.
PLANES_AHEAD = not fl_cpu_amd()

cdef extern from "flseg.h" nogil:
    enum:
        FL_SEG_MAXC
        FL_SEG_CE_IN_LOOP
    int fl_seg_overlap_f32(const float* x, Py_ssize_t xs, Py_ssize_t nb, int C, const int* yy,
                           int off, const float* vm, float* fk, int* cnt, Py_ssize_t PB,
                           int sq, const float* wf, float* cfk)
    int fl_seg_grad_f32(const float* x, Py_ssize_t xs, Py_ssize_t nb, int C, const int* yy,
                        int off, const float* vm, const float* fa, const float* fb,
                        const float* fb2, const float* kw, const float* fw, float* out,
                        Py_ssize_t os)

# storage kinds of half-precision input (xkind of seg_stats / seg_grad)
KIND_F16 = FL_KIND_F16
KIND_BF16 = FL_KIND_BF16
# the losses of seg_finish / seg_call and the generalized Dice's class weights
# (_seg_value.pxd)
DICE = LOSS_DICE
TVERSKY = LOSS_TVERSKY
GENERALIZED = LOSS_GENERALIZED
SENSSPEC = LOSS_SENSSPEC
DICE_CE = LOSS_DICE_CE
WEIGHT_TYPES = {"square": W_SQUARE, "simple": W_SIMPLE, "uniform": W_UNIFORM}

# the activation codes of the public names, and the statistics mode
# (fastloss/segmentation reads both)
ACTIVATIONS = {None: ACT_NONE, "none": ACT_NONE, "sigmoid": ACT_SIGMOID, "softmax": ACT_SOFTMAX}

cpdef enum StatsMode:
    MODE_OVERLAP = 0
    MODE_SENSSPEC = 1

cdef enum:
    MAX_UNITS = 64      # work units per image at most
    MIN_UNIT_BLOCKS = 32  # SEG_BLOCKs per work unit at least (but one unit per image)
    # FOLD: blocks summed in the data's type before each fold into the
    # double slots (16 terms per slot, as in NumPy's pairwise float sums)
    FOLD = 16


# ------------------------------------------------------------ work units

cdef inline Py_ssize_t unit_chunk(Py_ssize_t S) noexcept nogil:
    """Positions per unit: whole SEG_BLOCKs, at most MAX_UNITS per image and at
    least MIN_UNIT_BLOCKS blocks (a unit clears and folds about 30 KB of
    accumulators: on units of two blocks that cost as much as the blocks)."""
    cdef Py_ssize_t nu = S // (SEG_BLOCK * MIN_UNIT_BLOCKS)
    if nu > MAX_UNITS:
        nu = MAX_UNITS
    if nu < 1:
        nu = 1
    return n_blocks(n_blocks(S, nu), SEG_BLOCK) * SEG_BLOCK


# --------------------------------------------------------- statistics pass

cdef inline void _fold_slots(double* wk, double* ceA, floating* fk, Py_ssize_t C,
                             bint squared, bint do_ce, Py_ssize_t pu) noexcept nogil:
    """_stats_unit's float slots into its double ones: the planes its blocks
    write (the squared sums only with squared, the cross-entropy's three only
    with do_ce; the others stay 0: folding them cost about 3 % of a 4-class
    Dice)."""
    cdef Py_ssize_t k, PB = SEG_BLOCK
    for k in range(3 * C + 3):
        if (2 * C <= k < 3 * C and not squared) or (k >= 3 * C and not do_ce):
            continue
        _fold(wk + k * PB if k < 3 * C else ceA + (k - 3 * C) * PB, fk + k * PB, pu)


cdef void _stats_unit(const floating* x, const unsigned short* xh, int xkind,
                      const void* lab, int lkind, const floating* soft,
                      Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk, Py_ssize_t nu,
                      Py_ssize_t u, int act, int mode, bint squared, Py_ssize_t off,
                      Py_ssize_t ignore, bint has_ignore, bint do_ce, const double* cw,
                      const double* sw, char* scratch,
                      double* st, double* ce, Py_ssize_t* bad) noexcept nogil:
    cdef double m[SEG_BLOCK]
    cdef double s[SEG_BLOCK]
    cdef double A[SEG_BLOCK]
    cdef double D[SEG_BLOCK]
    cdef floating gb[SEG_BLOCK]
    # the thread's scratch (_stats_scratch): e (C planes), the float fold
    # slots (3 C + 3 planes), widened x (C planes), the label counts (C
    # planes), then the block's labels, mask, 1/sum and x_y
    cdef floating* e = <floating*>scratch
    cdef floating* fk = e + C * SEG_BLOCK
    cdef floating* xw = e + (4 * C + 3) * SEG_BLOCK
    cdef int* cnt = <int*>(e + (5 * C + 3) * SEG_BLOCK)
    cdef int* yy = <int*>(<char*>(cnt + C * SEG_BLOCK) + SKEW)
    cdef floating* vm = <floating*>(yy + SEG_BLOCK)
    cdef floating* rv = vm + SEG_BLOCK
    cdef floating* xy = rv + SEG_BLOCK
    cdef double* wk = <double*>(scratch + _wk_offset(C, sizeof(floating)))
    cdef Py_ssize_t n = u // nu
    cdef Py_ssize_t j0 = (u - n * nu) * chunk
    cdef Py_ssize_t j1 = j0 + chunk if j0 + chunk < S else S
    cdef Py_ssize_t nb, j, c, k, b, base, xs, PB = SEG_BLOCK
    cdef const floating* gc
    cdef const floating* xc
    cdef const floating* xb
    cdef floating* pc
    cdef double* ceA = wk + NSTAT * C * PB
    cdef double* ceW = ceA + PB
    cdef double* ceV = ceW + PB
    cdef double* wtab = ceV + PB    # wtab[y + 1] = weight of label y; wtab[0] = 0
    cdef double wc, swj, ls
    cdef floating xv, xo
    cdef int cls, nfold = 0
    cdef bint labels = soft == NULL
    cdef bint fused
    cdef bint ce_fused = False      # this block's cross-entropy went to the float slots
    cdef float wf32[FL_SEG_MAXC]
    # the slots the unit's blocks touch: all PB but in an image of fewer
    # positions, then its count rounded up to lanes_sum's 16 accumulators (the
    # untouched slots would add zeros: the same sums for the work of the image)
    cdef Py_ssize_t pu = (j1 - j0 + 15) // 16 * 16 if j1 - j0 < PB else PB
    for k in range(NSTAT * C + 3):
        memset(wk + k * PB, 0, pu * sizeof(double))
    for k in range(3 * C + 3):
        memset(fk + k * PB, 0, pu * sizeof(floating))
    for c in range(C):
        memset(cnt + c * PB, 0, pu * sizeof(int))
    for c in range(C + 2):
        wtab[c] = 0.0
    for c in range(C):
        wtab[c + 1 + off] = cw[c] if cw != NULL else 1.0
    if floating is float:
        for c in range(C if C < FL_SEG_MAXC else FL_SEG_MAXC):
            wf32[c] = <float>(cw[c] if cw != NULL else 1.0)
    bad[0] = -1
    if not labels:
        for j in range(SEG_BLOCK):
            vm[j] = 1
    while j0 < j1:
        nb = j1 - j0 if j1 - j0 < SEG_BLOCK else SEG_BLOCK
        base = n * C * S + j0
        xb = _block_x(x, xh, xkind, base, S, C, nb, xw, &xs)
        if labels:
            b = _labels_at(lab, lkind, n * S + j0, nb, C + off, ignore, has_ignore, yy, vm)
            if b >= 0 and bad[0] < 0:
                bad[0] = n * S + j0 + b
        if labels and mode == MODE_OVERLAP:
            fused = False
            if floating is float:
                # the hottest case (float data, softmax over 2-8 classes, with
                # or without the squared sums) in one loop: flseg.h, the same sums as the
                # passes below (vm is 1 at every valid label when nothing is
                # ignored; a bad label raises), and dice_ce's cross-entropy
                # without sample weights, its position losses in float into
                # three float slot planes after fk's, folded with them (with
                # sample weights it needs the passes' shift, sum and x_y)
                ce_fused = do_ce and sw == NULL and FL_SEG_CE_IN_LOOP
                fused = (act == ACT_SOFTMAX and (ce_fused or not do_ce)
                         and fl_seg_overlap_f32(xb, xs, nb, <int>C, yy, <int>off, vm, fk, cnt,
                                                PB, squared, wf32,
                                                fk + 3 * C * PB if ce_fused else NULL) == 0)
                ce_fused = ce_fused and fused
            if not fused:
                # hot path: p = e * rv read once per class; g = (label == class)
                if do_ce:
                    for j in range(nb):
                        xy[j] = 0
                _probs_raw(xb, xs, C, nb, act, e, m, s, rv)
                if has_ignore:
                    # v p: ignored positions drop out of every overlap sum
                    for j in range(nb):
                        rv[j] = rv[j] * vm[j]
                for c in range(C):
                    pc = e + c * PB if act != ACT_NONE else <floating*>(xb + c * xs)
                    cls = <int>(c + off)
                    _vadd_label(fk + (1 * C + c) * PB, fk + c * PB, cnt + c * PB,
                                pc, rv, yy, cls, nb)
                    if squared:
                        _vadd_sq_scaled(fk + (2 * C + c) * PB, pc, rv, nb)
                    if do_ce:
                        # x of the labelled class (one class per position)
                        # both values loaded first: a select gcc vectorizes
                        # (a conditional load stays a scalar branch on SSE2)
                        xc = xb + c * xs
                        for j in range(nb):
                            xv = xc[j]
                            xo = xy[j]
                            xy[j] = xv if yy[j] == cls else xo
            nfold += 1
            if nfold == FOLD:
                _fold_slots(wk, ceA, fk, C, squared, do_ce, pu)
                nfold = 0
            if do_ce and not ce_fused:
                # A = w_y, D = w_y x_y (0 where ignored: wtab[0] = 0); with
                # no class weights A is the ignore mask (no gather)
                if cw == NULL and off == 0:
                    for j in range(nb):
                        A[j] = vm[j]
                else:
                    for j in range(nb):
                        A[j] = wtab[yy[j] + 1]
                for j in range(nb):
                    D[j] = A[j] * xy[j]
        else:
            if do_ce:
                for j in range(nb):
                    A[j] = 0.0
                    D[j] = 0.0
            _probs(xb, xs, C, nb, act, e, m, s)
            for c in range(C):
                pc = e + c * PB
                cls = <int>(c + off)
                if labels:
                    _gmask(yy, cls, nb, gb)
                    gc = gb
                else:
                    gc = soft + base + c * S
                if mode == MODE_OVERLAP:
                    _vadd(wk + (1 * C + c) * PB, pc, nb)
                    if squared:
                        _vadd_sq(wk + (2 * C + c) * PB, pc, nb)
                    _vadd_soft(wk + c * PB, wk + (3 * C + c) * PB, wk + (4 * C + c) * PB,
                               pc, gc, nb)
                else:
                    _vadd_sens(wk + c * PB, wk + (1 * C + c) * PB, wk + (2 * C + c) * PB,
                               wk + (3 * C + c) * PB, wk + (4 * C + c) * PB, pc, gc, vm, nb)
                if do_ce:
                    xc = xb + c * xs
                    wc = cw[c] if cw != NULL else 1.0
                    for j in range(nb):
                        A[j] += wc * gc[j]
                        D[j] += wc * gc[j] * xc[j]
        if do_ce and not ce_fused:
            planes_lse(m, s, nb, s, floating is float)     # s = lse, m + log(sum)
            if sw != NULL:
                for j in range(nb):
                    swj = sw[n * S + j0 + j]
                    ls = A[j] * s[j] - D[j]
                    ceA[j] += swj * ls
                    ceW[j] += swj * A[j]
                    ceV[j] += swj * vm[j]
            else:
                for j in range(nb):
                    ceA[j] += A[j] * s[j] - D[j]
                    ceW[j] += A[j]
                    ceV[j] += vm[j]
        j0 += nb
    _fold_slots(wk, ceA, fk, C, squared, do_ce, pu)
    # fold the vertical accumulators, fixed order
    for c in range(C):
        for k in range(NSTAT):
            st[c * NSTAT + k] = lanes_sum(wk + (k * C + c) * PB, pu)
        if labels and mode == MODE_OVERLAP:
            st[c * NSTAT + 3] = <double>_isum(cnt + c * PB, pu)
            st[c * NSTAT + 4] = st[c * NSTAT + 3]
    ce[0] = lanes_sum(ceA, pu)
    ce[1] = lanes_sum(ceW, pu)
    ce[2] = lanes_sum(ceV, pu)


cdef const unsigned short* _half_planes(object xh, Py_ssize_t* N, Py_ssize_t* C,
                                        Py_ssize_t* S) except? NULL:
    """The (N, C, S) float16 / bfloat16 storage xh (as uint16) of a half call:
    its sizes, and its data (NULL when empty; xh keeps it alive)."""
    cdef const unsigned short[:, :, ::1] v = xh
    N[0], C[0], S[0] = v.shape[0], v.shape[1], v.shape[2]
    return &v[0, 0, 0] if N[0] > 0 and C[0] > 0 and S[0] > 0 else NULL


cdef Py_ssize_t _stats_run(const floating* xp, const unsigned short* xhp, int xkind,
                           const void* lp, int lkind, const floating* tp, Py_ssize_t N,
                           Py_ssize_t C,
                           Py_ssize_t S, int act, int mode, bint squared, Py_ssize_t off,
                           Py_ssize_t ignore, bint has_ignore, bint do_ce, const double* cwp,
                           const double* swp, double* stats, double* ce_out,
                           int n_threads) except -2:
    """seg_stats on pointers (xp NULL: the half storage xhp); stats (N, C, NSTAT)."""
    cdef Py_ssize_t chunk, nu, units, u, n, c, k, tid, eb
    cdef double* slots
    cdef double* ces
    cdef Py_ssize_t* bads
    cdef char* ebuf
    cdef void* ebuf_raw
    cdef Py_ssize_t bad = -1
    cdef int nt
    if N > 0 and C > 0:
        memset(stats, 0, N * C * NSTAT * sizeof(double))
    memset(ce_out, 0, 3 * sizeof(double))
    if N == 0 or C == 0 or S == 0:
        return -1
    chunk = unit_chunk(S)
    nu = n_blocks(S, chunk)
    units = N * nu
    nt = threads_for_work(n_threads, units, N * C * S)
    slots = <double*>malloc(units * C * NSTAT * sizeof(double))
    ces = <double*>malloc(units * 3 * sizeof(double))
    bads = <Py_ssize_t*>malloc(units * sizeof(Py_ssize_t))
    eb = _stats_scratch(C, sizeof(floating))
    ebuf_raw = malloc(nt * eb + SKEW_PERIOD)
    ebuf = <char*>align_up(ebuf_raw, SKEW_PERIOD)
    try:
        if slots == NULL or ces == NULL or bads == NULL or ebuf_raw == NULL:
            raise MemoryError("fastloss: cannot allocate segmentation buffers")
        if nt == 1:  # no OpenMP region for the work of one thread (_fastcall.pxd B)
            with nogil:
                for u in range(units):
                    _stats_unit(xp, xhp, xkind, lp, lkind, tp, C, S, chunk, nu, u, act, mode,
                                squared, off, ignore, has_ignore, do_ce, cwp, swp, ebuf,
                                slots + u * C * NSTAT, ces + u * 3, &bads[u])
        else:
            for u in prange(units, schedule="static", nogil=True, num_threads=nt):
                tid = threadid()
                _stats_unit(xp, xhp, xkind, lp, lkind, tp, C, S, chunk, nu, u, act, mode, squared,
                            off, ignore, has_ignore, do_ce, cwp, swp, ebuf + tid * eb,
                            slots + u * C * NSTAT, ces + u * 3, &bads[u])
        for u in range(units):
            n = u // nu
            for c in range(C):
                for k in range(NSTAT):
                    stats[(n * C + c) * NSTAT + k] += slots[(u * C + c) * NSTAT + k]
            for k in range(3):
                ce_out[k] += ces[u * 3 + k]
            if bad < 0 and bads[u] >= 0:
                bad = bads[u]
    finally:
        free(slots)
        free(ces)
        free(bads)
        free(ebuf_raw)
    return bad


def seg_stats(const floating[:, :, ::1] x, const label_t[:, ::1] lab,
              const floating[:, :, ::1] soft, int act, int mode, bint squared,
              Py_ssize_t off, Py_ssize_t ignore, bint has_ignore, bint do_ce,
              const double[::1] cw, const double[::1] sw, double[:, :, ::1] stats,
              double[::1] ce_out, int n_threads, object xh=None, int xkind=0):
    """Per-(image, class) sums of x (N, C, S) against a label map (N, S) or a
    soft target (N, C, S) (an empty array marks the one that is absent).

    Half-precision input: xh, its (N, C, S) float16 / bfloat16 storage as
    uint16 (xkind FL_KIND_F16 / FL_KIND_BF16), with x an empty float32
    array; each block is widened in L1, as a float32 call on the widened
    values computes it.

    Fills stats (N, C, NSTAT) and ce_out (3,): cross-entropy sum, sum sw A,
    sum sw v.  P2 (stats[..., 2]) of MODE_OVERLAP is computed only when
    `squared` (0 otherwise).  Returns the first bad label position (flat
    into (N, S)) or -1.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    cdef const unsigned short* xhp = NULL
    cdef const floating* xp = NULL
    if xh is not None:
        if floating is double:
            raise ValueError("fastloss internal error: half storage with float64 kernels")
        xhp = _half_planes(xh, &N, &C, &S)
    elif N > 0 and C > 0 and S > 0:
        xp = &x[0, 0, 0]
    if stats.shape[0] != N or stats.shape[1] != C or stats.shape[2] != NSTAT:
        raise ValueError("fastloss internal error: stats shape")
    return _stats_run(xp, xhp, xkind, &lab[0, 0] if lab.shape[0] > 0 else NULL,
                      label_kind(&lab[0, 0] if lab.shape[0] > 0 else NULL),
                      &soft[0, 0, 0] if soft.shape[0] > 0 else NULL, N, C, S, act, mode,
                      squared, off, ignore, has_ignore, do_ce,
                      &cw[0] if cw.shape[0] > 0 else NULL, &sw[0] if sw.shape[0] > 0 else NULL,
                      &stats[0, 0, 0] if N > 0 and C > 0 else NULL, &ce_out[0],
                      n_threads)


# ----------------------------------------------------------- gradient pass

cdef void _grad_unit(const floating* x, const unsigned short* xh, int xkind, floating* xw,
                     unsigned short* gh, int gkind, floating* gw,
                     const void* lab, int lkind, const floating* soft,
                     Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk, Py_ssize_t nu,
                     Py_ssize_t u, int act, int mode, Py_ssize_t off, Py_ssize_t ignore,
                     bint has_ignore, const double* ca, const double* cb, const double* cb2,
                     double kce, const double* cw, const double* sw,
                     floating* e, floating* g) noexcept nogil:
    cdef double m[SEG_BLOCK]
    cdef double s[SEG_BLOCK]
    cdef floating dot[SEG_BLOCK]
    cdef floating A[SEG_BLOCK]
    cdef floating kw[SEG_BLOCK]
    cdef floating gb[SEG_BLOCK]
    cdef floating vm[SEG_BLOCK]
    cdef int yy[SEG_BLOCK]
    cdef Py_ssize_t n = u // nu
    cdef Py_ssize_t j0 = (u - n * nu) * chunk
    cdef Py_ssize_t j1 = j0 + chunk if j0 + chunk < S else S
    cdef Py_ssize_t nb, j, c, base, xs, gs
    cdef const floating* xb
    cdef floating* gbase
    cdef const floating* gc
    cdef const floating* pc
    cdef floating* oc
    cdef floating fa, fb, fb2, fw, d
    cdef float fa32[FL_SEG_MAXC]
    cdef float fb32[FL_SEG_MAXC]
    cdef float fb2_32[FL_SEG_MAXC]
    cdef float fw32[FL_SEG_MAXC]
    cdef bint do_ce = kce != 0.0
    cdef bint fused = (soft == NULL and mode == MODE_OVERLAP and act == ACT_SOFTMAX
                       and C <= FL_SEG_MAXC)
    cdef bint done
    if soft != NULL:
        for j in range(SEG_BLOCK):
            vm[j] = 1
    if floating is float and fused:
        # the image's coefficients as the loops below round them
        for c in range(C):
            fa32[c] = <float>ca[n * C + c]
            fb32[c] = <float>cb[n * C + c]
            fb2_32[c] = <float>(2.0 * cb2[n * C + c])
            fw32[c] = <float>(cw[c] if cw != NULL else 1.0)
    while j0 < j1:
        nb = j1 - j0 if j1 - j0 < SEG_BLOCK else SEG_BLOCK
        base = n * C * S + j0
        xb = _block_x(x, xh, xkind, base, S, C, nb, xw, &xs)
        # the block's gradient planes: in place, or in gw for a half output
        gbase = gw if gh != NULL else g + base
        gs = SEG_BLOCK if gh != NULL else S
        if soft == NULL:
            _labels_at(lab, lkind, n * S + j0, nb, C + off, ignore, has_ignore, yy, vm)
        if do_ce:
            for j in range(nb):
                kw[j] = <floating>(kce * (sw[n * S + j0 + j] if sw != NULL else 1.0))
        done = False
        if floating is float:
            # float data, softmax over 2-8 classes, a label map: one loop
            # (flseg.h, the same expressions as the passes below)
            done = fused and fl_seg_grad_f32(
                xb, xs, nb, <int>C, yy, <int>off, vm, fa32, fb32, fb2_32,
                kw if do_ce else NULL, fw32, gbase, gs) == 0
        if not done:
            _probs(xb, xs, C, nb, act, e, m, s)
            for j in range(nb):
                dot[j] = 0
                A[j] = 0
            # dL/dp into the gradient planes; softmax also needs sum_c p_c dL/dp_c
            for c in range(C):
                if soft == NULL:
                    _gmask(yy, <int>(c + off), nb, gb)
                    gc = gb
                else:
                    gc = soft + base + c * S
                pc = e + c * SEG_BLOCK
                oc = gbase + c * gs
                fa = <floating>ca[n * C + c]
                fb = <floating>cb[n * C + c]
                if mode == MODE_OVERLAP:
                    fb2 = <floating>(2.0 * cb2[n * C + c])
                    for j in range(nb):
                        oc[j] = fa * gc[j] + vm[j] * (fb + fb2 * pc[j])
                else:
                    for j in range(nb):
                        d = gc[j] - pc[j]
                        oc[j] = -2 * d * (fa * gc[j] + fb * vm[j] * (1 - gc[j]))
                if act == ACT_SOFTMAX:
                    for j in range(nb):
                        dot[j] += pc[j] * oc[j]
                elif act == ACT_SIGMOID:
                    for j in range(nb):
                        oc[j] = oc[j] * pc[j] * (1 - pc[j])
                if do_ce:
                    fw = <floating>(cw[c] if cw != NULL else 1.0)
                    for j in range(nb):
                        A[j] += fw * gc[j]
            if act == ACT_SOFTMAX:
                for c in range(C):
                    pc = e + c * SEG_BLOCK
                    oc = gbase + c * gs
                    if do_ce:
                        if soft == NULL:
                            _gmask(yy, <int>(c + off), nb, gb)
                            gc = gb
                        else:
                            gc = soft + base + c * S
                        fw = <floating>(cw[c] if cw != NULL else 1.0)
                        for j in range(nb):
                            oc[j] = pc[j] * (oc[j] - dot[j]) + kw[j] * (A[j] * pc[j] - fw * gc[j])
                    else:
                        for j in range(nb):
                            oc[j] = pc[j] * (oc[j] - dot[j])
        if floating is float:
            if gh != NULL:
                for c in range(C):
                    fl_narrow(gbase + c * SEG_BLOCK, gh + base + c * S, gkind, nb)
        j0 += nb


cdef int _grad_run(const floating* xp, const unsigned short* xhp, int xkind,
                   unsigned short* ghp, int gkind, const void* lp, int lkind, const floating* tp,
                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int act, int mode, Py_ssize_t off,
                   Py_ssize_t ignore, bint has_ignore, const double* ca, const double* cb,
                   const double* cb2, double kce, const double* cwp, const double* swp,
                   floating* gp, int n_threads) except -1:
    """seg_grad on pointers (xp NULL: the half storage xhp; gp NULL: the half
    gradient ghp)."""
    cdef Py_ssize_t chunk, nu, units, u, tid
    cdef floating* ebuf
    cdef int nt
    if N == 0 or C == 0 or S == 0:
        return 0
    chunk = unit_chunk(S)
    nu = n_blocks(S, chunk)
    units = N * nu
    nt = threads_for_work(n_threads, units, N * C * S)
    # per thread: the activations, widened x, the gradient block (C planes each)
    ebuf = <floating*>malloc(nt * 3 * C * SEG_BLOCK * sizeof(floating))
    if ebuf == NULL:
        raise MemoryError("fastloss: cannot allocate segmentation buffers")
    try:
        if nt == 1:
            with nogil:
                for u in range(units):
                    _grad_unit(xp, xhp, xkind, ebuf + C * SEG_BLOCK, ghp, gkind,
                               ebuf + 2 * C * SEG_BLOCK, lp, lkind, tp, C, S, chunk, nu, u, act,
                               mode, off, ignore, has_ignore, ca, cb, cb2, kce, cwp, swp, ebuf,
                               gp)
        else:
            for u in prange(units, schedule="static", nogil=True, num_threads=nt):
                tid = threadid()
                _grad_unit(xp, xhp, xkind, ebuf + (tid * 3 + 1) * C * SEG_BLOCK,
                           ghp, gkind, ebuf + (tid * 3 + 2) * C * SEG_BLOCK,
                           lp, lkind, tp, C, S, chunk, nu, u, act, mode, off, ignore,
                           has_ignore, ca, cb, cb2, kce, cwp, swp,
                           ebuf + tid * 3 * C * SEG_BLOCK, gp)
    finally:
        free(ebuf)
    return 0


def seg_grad(const floating[:, :, ::1] x, const label_t[:, ::1] lab,
             const floating[:, :, ::1] soft, int act, int mode, Py_ssize_t off,
             Py_ssize_t ignore, bint has_ignore, const double[:, ::1] ca,
             const double[:, ::1] cb, const double[:, ::1] cb2, double kce,
             const double[::1] cw, const double[::1] sw, floating[:, :, ::1] grad,
             int n_threads, object xh=None, int xkind=0, object gh=None, int gkind=0):
    """d(loss)/dx into grad (N, C, S) from the per-(image, class) coefficients
    of dL/dp (ca, cb, cb2: (N, C)) and the cross-entropy scale kce (0: none).
    xh, xkind: half-precision input as in seg_stats.  gh, gkind: a float16 /
    bfloat16 gradient (N, C, S) as uint16, each block rounded to nearest
    even from its float32 values (grad then an empty float32 array).
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    cdef unsigned short[:, :, ::1] ghv
    cdef const unsigned short* xhp = NULL
    cdef unsigned short* ghp = NULL
    cdef const floating* xp = NULL
    cdef floating* gp = NULL
    if xh is not None:
        if floating is double:
            raise ValueError("fastloss internal error: half storage with float64 kernels")
        xhp = _half_planes(xh, &N, &C, &S)
    if N == 0 or C == 0 or S == 0:
        return
    if xh is None:
        xp = &x[0, 0, 0]
    if gh is not None:
        if floating is double:
            raise ValueError("fastloss internal error: a half gradient with float64 kernels")
        else:
            ghv = gh
            if ghv.shape[0] != N or ghv.shape[1] != C or ghv.shape[2] != S:
                raise ValueError("fastloss internal error: gradient shape")
            ghp = &ghv[0, 0, 0]
    else:
        gp = &grad[0, 0, 0]
    _grad_run(xp, xhp, xkind, ghp, gkind, &lab[0, 0] if lab.shape[0] > 0 else NULL,
              label_kind(&lab[0, 0] if lab.shape[0] > 0 else NULL),
              &soft[0, 0, 0] if soft.shape[0] > 0 else NULL, N, C, S, act, mode, off, ignore,
              has_ignore, &ca[0, 0], &cb[0, 0], &cb2[0, 0], kce,
              &cw[0] if cw.shape[0] > 0 else NULL, &sw[0] if sw.shape[0] > 0 else NULL, gp,
              n_threads)


# ------------------------------------------------------- value and prepared call

def seg_finish(int kind, const double[:, :, ::1] st, const double[::1] ce, bint labels,
               const double[::1] w, Py_ssize_t c0, bint batch, bint squared, bint jaccard,
               int wtype, double snr, double sdr, double a, double b, double g,
               object reduction, int typenum, bint coef):
    """A Dice-family loss from its sums st (N, C, 5) and, for DICE_CE, the
    cross-entropy sums ce (3,) (_seg_value.pxd); w the weights of the
    classes used (empty: none).  With coef: (loss, ca, cb, cb2, kce), the
    coefficients seg_grad reads."""
    cdef SegQ q
    cdef Py_ssize_t N = st.shape[0], C = st.shape[1]
    cdef int red = fc_reduction(reduction)
    cdef double kce = 0.0
    cdef double[:, :, ::1] cv
    if red < 0 or not 0 <= c0 <= C or (w.shape[0] > 0 and w.shape[0] != C - c0) \
            or (kind == LOSS_DICE_CE and ce.shape[0] < 3):
        raise ValueError("fastloss internal error: seg_finish arguments")
    q.kind, q.c0, q.batch, q.squared, q.jaccard, q.wtype = kind, c0, batch, squared, jaccard, wtype
    q.snr, q.sdr, q.a, q.b, q.g = snr, sdr, a, b, g
    if not coef:
        return seg_loss(&q, &st[0, 0, 0] if N > 0 and C > 0 else NULL, N, C,
                        &w[0] if w.shape[0] > 0 else NULL, &ce[0] if ce.shape[0] > 0 else NULL,
                        labels, red, typenum, NULL, NULL, NULL, &kce)
    co = np.zeros((3, N, C))
    cv = co
    loss = seg_loss(&q, &st[0, 0, 0] if N > 0 and C > 0 else NULL, N, C,
                    &w[0] if w.shape[0] > 0 else NULL, &ce[0] if ce.shape[0] > 0 else NULL,
                    labels, red, typenum, &cv[0, 0, 0] if N > 0 and C > 0 else NULL,
                    &cv[1, 0, 0] if N > 0 and C > 0 else NULL,
                    &cv[2, 0, 0] if N > 0 and C > 0 else NULL, &kce)
    return loss, co[0], co[1], co[2], kce


cdef object _seg_call(const floating* x, const void* lab, int lkind, cnp.ndarray xa,
                      const SegQ* q, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int act, int red,
                      bint return_grad, object n_threads, object go):
    """seg_call's passes: the sums, the value and, with return_grad, the gradient
    (into go, the caller's checked grad_out, or a new array; None where a
    label is out of range: the full path raises)."""
    cdef int typenum = cnp.PyArray_TYPE(xa), nt = 1
    cdef int mode = MODE_SENSSPEC if q.kind == LOSS_SENSSPEC else MODE_OVERLAP
    cdef bint do_ce = q.kind == LOSS_DICE_CE
    cdef double ce[3]
    cdef double kce = 0.0
    cdef bint stream = False
    cdef double* st = <double*>malloc((NSTAT + 3) * N * C * sizeof(double))
    cdef double* co
    cdef void* gp
    if st == NULL:
        raise MemoryError("fastloss: cannot allocate segmentation sums")
    co = st + NSTAT * N * C
    if N * C * S >= 2 * ELEM_BLOCK:  # else one thread whatever n_threads says
        nt = effective_n_threads(n_threads)
    try:
        if _stats_run(x, <const unsigned short*>NULL, 0, lab, lkind, <const floating*>NULL, N, C, S,
                      act, mode, q.squared, 0, 0, False, do_ce, NULL, NULL, st, ce, nt) >= 0:
            return None
        loss = seg_loss(q, st, N, C, NULL, ce, True, red, typenum,
                        co if return_grad else NULL, co + N * C, co + 2 * N * C, &kce)
        if not return_grad:
            return loss
        grad = fc_grad(xa, go, 1, &gp, &stream)  # (the gradient passes do not stream)
        _grad_run(x, <const unsigned short*>NULL, 0, <unsigned short*>NULL, 0, lab, lkind,
                  <const floating*>NULL, N, C, S, act, mode, 0, 0, False, co, co + N * C,
                  co + 2 * N * C, kce, NULL, NULL, <floating*>gp, nt)
        return loss, grad
    finally:
        free(st)


def seg_call(int kind, object input, object target, object activation,
             object include_background, object batch, object squared, object jaccard,
             object smooth_nr, object smooth_dr, object a, object b, object g,
             object reduction, bint return_grad, object n_threads, object grad_out=None):
    """A soft Dice-family loss for the common case in one call, else None.

    Taken: float32 / float64 logits (N, C, *spatial) with C >= 2 and a label
    map (N, *spatial) or (N, 1, *spatial) of a width the kernels read, as
    plain ndarrays (_fastcall.pxd); options of their plain Python types in
    their domains; the gradient into grad_out where fc_grad_out takes it.
    The wrapper passes no class weights or
    ignore_index (those take the full path, which owns every error
    message).  The kind's parameters: TVERSKY a, b, g = alpha, beta, gamma
    (None: no exponent); GENERALIZED a = w_type; SENSSPEC a = r; DICE_CE
    a, b = lambda_dice, lambda_ce.
    """
    cdef int ft = fc_float(input), lt = fc_labels(target), red = fc_reduction(reduction)
    cdef int act, i, nd
    cdef SegQ q
    cdef cnp.ndarray xa, ta
    cdef Py_ssize_t N, C, S = 1
    if ft < 0 or lt < 0 or red < 0 or not fc_threads_arg(n_threads):
        return None
    if kind == LOSS_DICE_CE and red == RED_NONE:
        return None
    if activation is None:
        act = ACT_NONE
    elif type(activation) is not str:
        return None
    elif activation == "softmax":
        act = ACT_SOFTMAX
    elif activation == "sigmoid":
        act = ACT_SIGMOID
    else:
        return None
    if (type(include_background) is not bool or type(batch) is not bool
            or type(squared) is not bool or type(jaccard) is not bool):
        return None
    if not (seg_nonneg(smooth_nr, &q.snr) and seg_nonneg(smooth_dr, &q.sdr)
            and seg_params(kind, a, b, g, &q)):
        return None
    xa = <cnp.ndarray>input
    ta = <cnp.ndarray>target
    nd = cnp.PyArray_NDIM(xa)
    if nd < 3 or cnp.PyArray_SIZE(xa) == 0 or cnp.PyArray_DIM(xa, 1) < 2:
        return None
    N, C = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1)
    for i in range(2, nd):
        S *= cnp.PyArray_DIM(xa, i)
    if not fc_shape_is(ta, xa, 1):
        # MONAI's (N, 1, *spatial) label form
        if cnp.PyArray_NDIM(ta) != nd or cnp.PyArray_DIM(ta, 1) != 1:
            return None
        for i in range(nd):
            if i != 1 and cnp.PyArray_DIM(ta, i) != cnp.PyArray_DIM(xa, i):
                return None
    go = None
    if return_grad and grad_out is not None:  # (without return_grad the wrapper raised)
        go = fc_grad_out(grad_out, xa, ta, None)
        if go is None:
            return None
    q.kind = kind
    q.c0 = 0 if include_background else 1
    q.batch, q.jaccard = batch, jaccard
    q.squared = squared and (kind == LOSS_DICE or kind == LOSS_DICE_CE)
    if ft == cnp.NPY_FLOAT:
        return _seg_call(<float*>cnp.PyArray_DATA(xa), cnp.PyArray_DATA(ta), lt, xa, &q, N, C, S,
                         act, red, return_grad, n_threads, go)
    return _seg_call(<double*>cnp.PyArray_DATA(xa), cnp.PyArray_DATA(ta), lt, xa, &q, N, C, S,
                     act, red, return_grad, n_threads, go)
