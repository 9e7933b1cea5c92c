"""Gradient-boosting objectives: gradient, Hessian and loss value in one pass.

Design:
A. One work unit is a fixed number of rows (ELEM_BLOCK // K, at least 1),
   cut into sub-blocks of about SUB elements that stay in L1/L2.  The loss
   total of a unit is summed in double into its BlockOut and units are
   combined in index order, so the loss value is bit-identical for any
   thread count; gradients and Hessians are per element and do not depend
   on the partition at all.
B. Every sub-block is worked on class-major ("planes": class k of row j at
   k*NB + j), so the per-class loops run along rows with unit stride and
   vectorize whatever K is.  Fortran-ordered margins (LightGBM's view of a
   class-major buffer) and single-output margins already are planes and are
   read in place; C-ordered (n, K) margins (XGBoost) are transposed into an
   L1 buffer first.  Outputs leave the same way: planes are copied out
   contiguously, C-ordered outputs are transposed back into a row-major
   buffer and copied as one run.  No layout costs a copy of the arrays.
C. The outputs may be float32 while the margins are float64 (LightGBM hands
   float64 margins and keeps float32 gradients): the store converts.  The
   arithmetic runs in the margins' type, so float32 margins get 16-lane
   float32 exp/log (fastmath.h) and float64 ones full precision.
D. Outputs that are large are written with non-temporal stores (flstream.h):
   a GBDT's gradient buffers are reused every round and are not read back by
   this kernel, so the read-for-ownership of an ordinary store would double
   the write traffic.
E. Each loss is a tag type; `if tag_t is X` is resolved at compile time, so
   each (loss, dtype) pair is one straight loop.  Per-element losses share
   one helper (gh_elem, in _gbdt_math.pxd with the tags) that returns the
   value and writes (g, h) through pointers to locals; softmax losses have
   a per-row part (in double: a few scalars per row) and per-class loops
   that only call arithmetic.  The moves between the caller's layout and
   the planes (B-D) are in _gbdt_layout.pxd.
F. Formulas are stable: logistic and focal from e = exp(-|f|) (sigma(f),
   sigma(-f), softplus(+-f) without cancellation, p(1-p) = e/(1+e)^2);
   softmax with the true row max (not XGBoost's FLT_MIN start, see
   next-capabilities A.2); the focal factors (1-p)^gamma as exp(-gamma
   softplus), so gamma < 1 has finite derivatives; softmax focal's 1 - p_y as
   the sum of the other classes' probabilities.
G. Labels are checked where they are read (domain of the loss, integer
   class ids in [0, K)); a unit records its first bad row for the wrapper.
"""

cimport numpy as cnp
import numpy as np
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, exp, log, log1p, trunc, truncf
from libc.stdlib cimport free, malloc
from libc.stdint cimport int32_t

from _common cimport (
    BlockOut, ELEM_BLOCK, align64, block_init, combine_blocks, deal, fl_stream_fence, floating,
    lanes_sum, prefetch_row, n_blocks, planes_to_rows, safe_shift, threads_for_work, tr_rows,
    vexp_lo, vlog,
)
from _gbdt_layout cimport Geo, gather, planes_of, put
from _gbdt_math cimport (
    TFair, TFocal, TGamma, THuber, TLogCosh, TLogistic, TPoisson, TPseudoHuber, TQuantile,
    TSoftmax, TSoftmaxFocal, TSqLog, TTweedie, bad_y, focal_hard, gh_elem, tag_t,
)

cnp.import_array()

cdef enum:
    SUB = 2048          # elements per sub-block (K * NB)
    PLANE_ROWS = 1024   # rows per sub-block, at least, of Fortran-ordered margins
    WIDE_SUM = 32       # classes up to which a float32 row sum is taken in float

# Loss ids (fastloss/gbdt.py mirrors them).
cpdef enum GbdtLoss:
    LOGISTIC = 0        # a = weight of y = 0, b = weight of y = 1
    FOCAL = 1           # a, b as LOGISTIC (alpha_0, alpha_1), c = gamma
    HUBER = 2           # a = delta
    PSEUDO_HUBER = 3    # a = delta
    LOG_COSH = 4
    FAIR = 5            # a = c
    QUANTILE = 6        # column levels in `col`
    POISSON = 7         # a = max_delta_step
    GAMMA = 8
    TWEEDIE = 9         # a = power
    SQLOG = 10
    SOFTMAX = 11        # cw = class weights, smooth = label smoothing
    SOFTMAX_FOCAL = 12  # cw = alpha per class, c = gamma

# Hessian variants (per loss; 0 is always the exact Hessian).
cpdef enum GbdtHess:
    H_EXACT = 0
    # H_ALT: huber: 1 everywhere; pseudo-huber: MM; poisson: max_delta_step;
    # focal: fisher; quantile: constant 1
    H_ALT = 1
    H_SCALED = 2        # softmax: factor `fac` (2 for XGBoost, K/(K-1) for LightGBM)


cdef struct GP:
    int hess
    double a, b, c
    double fac          # softmax Hessian factor (H_SCALED)
    double floor        # h = max(h, floor) before the sample weight; -inf: none
    double smooth       # softmax label smoothing
    const double* cw    # per-class weights (softmax) / alpha (softmax focal), or NULL
    const double* col   # per-column parameter (quantile levels), or NULL
    bint soft           # softmax: labels are (n, K) probabilities


# ------------------------------------------------------------------ blocks

cdef void store(const floating* G, Py_ssize_t NB, Py_ssize_t nb, Geo* geo, Py_ssize_t r0,
                void* out, void* rbuf) noexcept nogil:
    """Class-major block G (plane stride NB) to rows r0.. of `out`."""
    cdef Py_ssize_t j, k, K = geo.K
    cdef float* rf = <float*>rbuf
    cdef double* rd = <double*>rbuf
    cdef const floating* gk
    cdef bint same
    if out == NULL:
        return                          # the loss value only (a metric)
    if floating is float:
        same = geo.out_f32
    else:
        same = not geo.out_f32
    if geo.out_rows and K > 1:
        if same and tr_rows(K, floating is float):
            planes_to_rows(G, NB, K, nb, <floating*>rbuf)
        elif same and geo.tout != NULL:
            gather(<floating*>rbuf, G, geo.tout, nb * K)
        elif geo.out_f32:
            for k in range(K):
                gk = G + k * NB
                for j in range(nb):
                    rf[j * K + k] = <float>gk[j]
        else:
            for k in range(K):
                gk = G + k * NB
                for j in range(nb):
                    rd[j * K + k] = <double>gk[j]
        put(out, geo.out_f32, r0 * K, rbuf, nb * K, geo.stream)
        return
    for k in range(K):
        gk = G + k * NB
        if same:
            put(out, geo.out_f32, k * geo.n + r0, gk, nb, geo.stream)
        elif geo.out_f32:
            for j in range(nb):
                rf[j] = <float>gk[j]
            put(out, True, k * geo.n + r0, rf, nb, geo.stream)
        else:
            for j in range(nb):
                rd[j] = <double>gk[j]
            put(out, False, k * geo.n + r0, rd, nb, geo.stream)


cdef inline void finish_hess(floating* G, floating* H, floating* L, Py_ssize_t nb,
                             const double* w, double floor) noexcept nogil:
    """h = max(h, floor) (NaN kept), then g, h and the loss times the row weights."""
    cdef Py_ssize_t j
    cdef floating fl = <floating>floor
    cdef floating hh
    if floor > -INFINITY:
        for j in range(nb):
            hh = H[j]
            H[j] = fl if hh < fl else hh
    if w != NULL:
        for j in range(nb):
            G[j] = <floating>(G[j] * w[j])
            H[j] = <floating>(H[j] * w[j])
            L[j] = <floating>(L[j] * w[j])


# ------------------------------------------------------------------ units

cdef struct Bufs:
    void* mem
    void* X
    void* Y
    void* G
    void* H
    void* L
    void* R
    double* d1
    double* d2
    double* d3
    double* d4
    double* d5
    double* d6
    double* d7
    double* d8
    double* d9
    double* d10
    int* yi


cdef int bufs_alloc(Bufs* B, Py_ssize_t K, Py_ssize_t NB) noexcept nogil:
    """Scratch for one unit: planes of K * NB doubles (enough for floats too)
    X, Y, G, H, L, R, ten per-row doubles and the row labels, 64-byte aligned."""
    cdef size_t plane = ((K * NB * sizeof(double) + 63) // 64) * 64
    cdef size_t row = ((NB * sizeof(double) + 63) // 64) * 64
    cdef size_t total = 6 * plane + 11 * row + 64
    cdef char* p = <char*>malloc(total)
    if p == NULL:
        return -1
    B.mem = p
    p = <char*>align64(p)
    B.X = p
    B.Y = p + plane
    B.G = p + 2 * plane
    B.H = p + 3 * plane
    B.L = p + 4 * plane
    B.R = p + 5 * plane
    p += 6 * plane
    B.d1 = <double*>p
    B.d2 = <double*>(p + row)
    B.d3 = <double*>(p + 2 * row)
    B.d4 = <double*>(p + 3 * row)
    B.d5 = <double*>(p + 4 * row)
    B.d6 = <double*>(p + 5 * row)
    B.d7 = <double*>(p + 6 * row)
    B.d8 = <double*>(p + 7 * row)
    B.d9 = <double*>(p + 8 * row)
    B.d10 = <double*>(p + 9 * row)
    B.yi = <int*>(p + 10 * row)
    return 0


cdef inline int focal_loop(const floating* xk, const floating* yb, floating a, floating b,
                           floating c, bint fisher, bint square, Py_ssize_t nb, floating* L,
                           floating* G, floating* H, int* nbad) noexcept nogil:
    """focal_hard over a sub-block's column; returns the number of labels
    other than 0 and 1 (NaN included) and sets nbad to the number outside
    the loss's domain, both counted in the same loop."""
    cdef Py_ssize_t j
    cdef floating gg, hh, yv
    cdef int soft = 0, bad = 0
    for j in range(nb):
        yv = yb[j]
        soft += (0 if yv == 0 else 1) * (0 if yv == 1 else 1)
        bad += bad_y(<TFocal*>NULL, yv)
        L[j] = focal_hard(xk[j], yv, a, b, c, fisher, square, &gg, &hh)
        G[j] = gg
        H[j] = hh
    nbad[0] = bad
    return soft


cdef void elem_block(tag_t* tag, const floating* x, const floating* y, const double* w,
                     Geo* geo, GP* P, Py_ssize_t r0, Py_ssize_t nb, Bufs* B,
                     void* gout, void* hout, BlockOut* res) noexcept nogil:
    """One sub-block of a per-element loss (K columns share the row's label)."""
    cdef Py_ssize_t NB = geo.nb, K = geo.K, j, k, ps
    cdef floating* X = <floating*>B.X
    cdef floating* G = <floating*>B.G
    cdef floating* H = <floating*>B.H
    cdef floating* L = <floating*>B.L
    cdef const floating* xp = planes_of(x, geo.xrs, geo.xcs, r0, nb, K, X, NB, geo.tin,
                                        &ps, NULL, True)
    cdef const floating* xk
    cdef const floating* yb = y + r0
    cdef const double* wb = w + r0 if w != NULL else NULL
    cdef floating a = <floating>P.a, b = <floating>P.b, c = <floating>P.c
    cdef floating gg, hh
    cdef int nbad = 0
    cdef int hv = P.hess
    cdef double s = 0.0
    cdef int soft = 0
    cdef bint fisher = hv != 0
    for k in range(K):
        xk = xp + k * ps
        if P.col != NULL:
            a = <floating>P.col[k]
        if tag_t is TFocal and soft == 0:
            # 0/1 labels (the usual case): one term per element instead of
            # two, the labels' checks in the same pass (one stream of labels
            # beside the margins); a block found to hold other labels is done
            # again by the general loop below.  One loop per (Hessian,
            # gamma == 2): the flags are constants inside
            if fisher and c == 2:
                soft = focal_loop(xk, yb, a, b, c, True, True, nb, L + k * NB, G + k * NB,
                                  H + k * NB, &nbad)
            elif fisher:
                soft = focal_loop(xk, yb, a, b, c, True, False, nb, L + k * NB, G + k * NB,
                                  H + k * NB, &nbad)
            elif c == 2:
                soft = focal_loop(xk, yb, a, b, c, False, True, nb, L + k * NB, G + k * NB,
                                  H + k * NB, &nbad)
            else:
                soft = focal_loop(xk, yb, a, b, c, False, False, nb, L + k * NB, G + k * NB,
                                  H + k * NB, &nbad)
        if tag_t is not TFocal or soft != 0:
            for j in range(nb):
                L[k * NB + j] = gh_elem(tag, xk[j], yb[j], a, b, c, hv, &gg, &hh)
                G[k * NB + j] = gg
                H[k * NB + j] = hh
        finish_hess(G + k * NB, H + k * NB, L + k * NB, nb, wb, P.floor)
        s += lanes_sum(L + k * NB, nb)
    if tag_t is not TFocal:
        # after the loss loop, which reads the labels from memory together
        # with the margins (a first pass over the labels alone streams less;
        # focal_loop counts them in its own loop)
        for j in range(nb):
            nbad = nbad + bad_y(tag, yb[j])
    if nbad != 0 and res.bad < 0:
        for j in range(nb):
            if bad_y(tag, yb[j]) != 0:
                res.bad = r0 + j
                break
    res.loss += s
    store(G, NB, nb, geo, r0, gout, B.R)
    store(H, NB, nb, geo, r0, hout, B.R)


cdef void softmax_block(tag_t* tag, const floating* x, const floating* y, const double* w,
                        Geo* geo, GP* P, Py_ssize_t r0, Py_ssize_t nb, Bufs* B,
                        void* gout, void* hout, BlockOut* res) noexcept nogil:
    """One sub-block of softmax cross-entropy / softmax focal (rows of K classes)."""
    cdef Py_ssize_t NB = geo.nb, K = geo.K, j, k, ps, ys
    cdef floating* X = <floating*>B.X
    cdef floating* Yb = <floating*>B.Y
    cdef floating* E = <floating*>B.G      # exponentials, then overwritten by g
    cdef floating* H = <floating*>B.H
    cdef floating* L = <floating*>B.L
    cdef double* m = B.d1
    cdef double* S = B.d2
    cdef double* ra = B.d3                 # per-row factor of g (a, or A for focal)
    cdef double* rb = B.d4                 # per-row factor of h (s, or B for focal)
    cdef double* rc = B.d5                 # focal: 1 / (sum of the other classes' e)
    cdef floating* iv = <floating*>B.d6    # 1 / sum of exponentials
    cdef floating* lz = <floating*>B.d7    # log-sum-exp
    cdef floating* fa = <floating*>B.d8    # per-row factor of g
    cdef floating* fb = <floating*>B.d9    # per-row factor of h
    cdef floating* xy = <floating*>B.d10   # the label's margin
    cdef floating* R = <floating*>B.R      # rows out
    cdef floating* gr
    cdef floating* hr
    cdef int* yi = B.yi
    cdef const floating* xp
    cdef const floating* tp = NULL
    cdef const floating* nxt = x + (r0 + nb) * geo.xrs     # the next rows (C order)
    cdef const floating* xk
    cdef floating* ek
    cdef floating* hk
    cdef floating mx, v, pk, ev, d, kf, fbc, one = 1, zero = 0
    cdef floating fs[SUB]
    cdef double fac = P.fac if P.hess == H_SCALED else 1.0
    cdef double sw, cwy, s, lse, ey, so, p, q, lg, rho, qg, gm = P.c, A, Bf, al
    cdef double eps = P.smooth, tk
    cdef double total = 0.0
    cdef int yy, okl, nbadl, kc
    cdef bint general
    cdef bint same = geo.out_f32 if floating is float else not geo.out_f32
    cdef bint rowwise = (same and geo.out_rows and 1 < K and gout != NULL and hout != NULL
                         and P.cw == NULL and w == NULL
                         and tr_rows(K, floating is float))
    cdef Py_ssize_t firstbad = -1
    # C-ordered rows: the next sub-block's rows are requested a class at a
    # time in the exponentials' loop below, so that a few requests are in
    # flight while the arithmetic runs (all of them in the transpose left it
    # waiting for memory)
    xp = planes_of(x, geo.xrs, geo.xcs, r0, nb, K, X, NB, geo.tin, &ps, fs, False)
    # labels: class ids held as floats (XGBoost/LightGBM) or soft rows
    if P.soft:
        tp = planes_of(y, geo.yrs, geo.ycs, r0, nb, K, Yb, NB, NULL, &ys, NULL, True)
        for j in range(nb):
            yi[j] = -1                         # no class id (the exp loop reads them)
    else:
        # a class id in [0, K) held exactly, else -1 (NaN included); the
        # conditions as bitwise ands and one select, which gcc vectorizes
        # (a float-to-int conversion under a branch it does not)
        nbadl = 0
        kf = <floating>K
        for j in range(nb):
            v = y[r0 + j]
            if floating is float:
                okl = (v >= 0) & (v < kf) & (truncf(v) == v)
            else:
                okl = (v >= 0) & (v < kf) & (trunc(v) == v)
            d = v if okl != 0 else -one
            yi[j] = <int>d
            nbadl += 1 - okl
        if nbadl != 0:
            for j in range(nb):
                if yi[j] < 0:
                    firstbad = r0 + j
                    break
    if firstbad >= 0 and res.bad < 0:
        res.bad = firstbad
    # the row maxima (fs, from planes_of) shift the exponentials
    for j in range(nb):
        m[j] = safe_shift(fs[j])
        iv[j] = <floating>m[j]             # the shift in the data's type, for the exp loop
        S[j] = 0.0
        fs[j] = 0
        xy[j] = 0
    # one loop per class: the exponentials, their sum and the label's margin
    # (picked up by a select: a gather from the planes is a scalar loop)
    for k in range(K):
        xk = xp + k * ps
        ek = E + k * NB
        kc = <int>k
        if geo.xcs == 1:
            prefetch_row(nxt + k * nb, nb)      # a K-th of them per class
        if floating is float and K <= WIDE_SUM:
            for j in range(nb):
                v = xk[j]
                ev = vexp_lo(v - iv[j])
                ek[j] = ev
                fs[j] += ev
                xy[j] = v if yi[j] == kc else xy[j]
        else:
            for j in range(nb):
                v = xk[j]
                ev = vexp_lo(v - iv[j])
                ek[j] = ev
                S[j] += ev
                xy[j] = v if yi[j] == kc else xy[j]
    if floating is float and K <= WIDE_SUM:
        for j in range(nb):
            S[j] = fs[j]
    general = P.soft or eps != 0.0
    if tag_t is TSoftmax:
        if not general:
            # a = w_i cw_y scales g (and the loss), b = fac cw_y scales h
            # before the floor; the sample weight joins h after it
            for j in range(nb):
                iv[j] = <floating>(1.0 / S[j])
                lz[j] = <floating>(m[j]) + vlog(<floating>S[j])
            if P.cw == NULL:
                for j in range(nb):
                    fb[j] = <floating>fac
                if w != NULL:
                    for j in range(nb):
                        fa[j] = <floating>w[r0 + j]
                else:
                    for j in range(nb):
                        fa[j] = one
            else:
                for j in range(nb):
                    yy = yi[j]
                    cwy = P.cw[yy if yy >= 0 else 0] if yy >= 0 else 0.0
                    fb[j] = <floating>(cwy * fac)
                    fa[j] = <floating>(cwy * (w[r0 + j] if w != NULL else 1.0))
            for j in range(nb):
                L[j] = fa[j] * (lz[j] - xy[j]) if yi[j] >= 0 else zero
            total += lanes_sum(L, nb)
            mx = <floating>P.floor              # -inf: no floor
            if rowwise:
                # unit factors and rows out: the probabilities go to rows
                # through registers once, and g = p - [k == y] and
                # h = fac p (1 - p) are taken there (one transpose, not one
                # for g and one for h); the same operations as below
                # (streamed outputs are written from L1 buffers, others in place)
                for k in range(K):
                    ek = E + k * NB
                    for j in range(nb):
                        ek[j] = ek[j] * iv[j]
                gr = R if geo.stream else <floating*>gout + r0 * K
                hr = H if geo.stream else <floating*>hout + r0 * K
                planes_to_rows(E, NB, K, nb, gr)
                fbc = <floating>fac
                for j in range(nb * K):
                    pk = gr[j]
                    v = fbc * (pk * (one - pk))
                    hr[j] = mx if v < mx else v
                for j in range(nb):
                    yy = yi[j]
                    if yy >= 0:
                        gr[j * K + yy] = gr[j * K + yy] - one
                res.loss += total
                if geo.stream:
                    put(gout, geo.out_f32, r0 * K, R, nb * K, True)
                    put(hout, geo.out_f32, r0 * K, H, nb * K, True)
                return
            for k in range(K):
                ek = E + k * NB
                hk = H + k * NB
                kc = <int>k
                for j in range(nb):
                    pk = ek[j] * iv[j]
                    d = one if yi[j] == kc else zero
                    v = fb[j] * (pk * (one - pk))
                    hk[j] = mx if v < mx else v
                    ek[j] = fa[j] * (pk - d)
        else:
            # c_k = w_k t_k, s = sum_k c_k: l = sum_k c_k (lse - x_k),
            # g_k = s p_k - c_k, h_k = fac s p_k (1 - p_k)
            for j in range(nb):
                rc[j] = m[j] + vlog(S[j])
                S[j] = 1.0 / S[j]
                rb[j] = 0.0
                ra[j] = 0.0
            for k in range(K):
                xk = xp + k * ps
                for j in range(nb):
                    lse = rc[j]
                    if P.soft:
                        tk = tp[k * ys + j]
                    else:
                        tk = (1.0 - eps) * (1.0 if yi[j] == k else 0.0) + eps / K
                    if P.cw != NULL:
                        tk = tk * P.cw[k]
                    L[k * NB + j] = <floating>tk   # c_k, kept for the gradient
                    rb[j] += tk
                    ra[j] += tk * (lse - <double>xk[j])
            for j in range(nb):
                sw = w[r0 + j] if w != NULL else 1.0
                total += sw * ra[j]
            for k in range(K):
                ek = E + k * NB
                hk = H + k * NB
                for j in range(nb):
                    pk = ek[j] * <floating>S[j]
                    hk[j] = <floating>(fac * rb[j] * (pk * (one - pk)))
                    ek[j] = <floating>(rb[j] * pk - <double>L[k * NB + j])
            for j in range(nb):
                ra[j] = w[r0 + j] if w != NULL else 1.0
    else:
        # focal: l = -al q^gm log p (p = p_y, q = 1 - p = sum of the others);
        # g_k = A (d_k - p_k), h_k = B r_k^2 - A p_k (1 - p_k), r_k = (d_k - p_k) / q,
        # A = al q^gm (gm p log(p) / q - 1), B = al gm p q^gm (q (log p + 2) - (gm - 1) p log p)
        for j in range(nb):
            rc[j] = 0.0
        for k in range(K):
            ek = E + k * NB
            for j in range(nb):
                if yi[j] != k:
                    rc[j] += ek[j]
        for j in range(nb):
            yy = yi[j]
            if yy < 0:
                ra[j] = 0.0
                rb[j] = 0.0
                rc[j] = 0.0
                S[j] = 1.0 / S[j]
                continue
            al = P.cw[yy] if P.cw != NULL else 1.0
            ey = E[yy * NB + j]
            so = rc[j]
            s = S[j]
            p = ey / s
            q = so / s
            if ey >= so:
                lg = -log1p(so / ey)
            else:
                lg = (<double>xp[yy * ps + j] - m[j]) - log(s)
            rho = p * lg / q if q > 0 else -1.0
            qg = exp(gm * log(q)) if gm != 0 else 1.0
            qg = 0.0 if (q == 0 and gm != 0) else qg
            A = al * qg * (gm * rho - 1.0)
            Bf = al * gm * p * qg * (q * (lg + 2.0) - (gm - 1.0) * p * lg) if gm != 0 else 0.0
            sw = w[r0 + j] if w != NULL else 1.0
            total += sw * (-al * qg * lg)
            ra[j] = A
            rb[j] = Bf if P.hess == 0 else al * qg
            rc[j] = 1.0 / so if so > 0 else 0.0
            S[j] = 1.0 / s
        for k in range(K):
            ek = E + k * NB
            hk = H + k * NB
            for j in range(nb):
                ev = ek[j]
                pk = ev * <floating>S[j]
                d = one if yi[j] == k else zero
                if P.hess == 0:
                    s = 1.0 if yi[j] == k else -<double>ev * rc[j]
                    hk[j] = <floating>(rb[j] * s * s - ra[j] * (pk * (one - pk)))
                else:
                    hk[j] = <floating>(rb[j] * (pk * (one - pk)))
                ek[j] = <floating>(ra[j] * (d - pk))
        for j in range(nb):
            ra[j] = w[r0 + j] if w != NULL else 1.0
    # floor, then the sample weight (ra holds it for the focal and general paths;
    # the plain path folded it into g already)
    for k in range(K):
        hk = H + k * NB
        ek = E + k * NB
        if P.floor > -INFINITY and not (tag_t is TSoftmax and not general):
            mx = <floating>P.floor
            for j in range(nb):
                v = hk[j]
                hk[j] = mx if v < mx else v
        if tag_t is TSoftmax and not general:
            if w != NULL:
                for j in range(nb):
                    hk[j] = <floating>(hk[j] * w[r0 + j])
        elif w != NULL:
            for j in range(nb):
                hk[j] = <floating>(hk[j] * ra[j])
                ek[j] = <floating>(ek[j] * ra[j])
    res.loss += total
    store(E, NB, nb, geo, r0, gout, B.R)
    store(H, NB, nb, geo, r0, hout, B.R)


cdef void run_unit(tag_t* tag, const floating* x, const floating* y, const double* w,
                   Geo* geo, GP* P, Py_ssize_t u, void* gout, void* hout, Bufs* B,
                   BlockOut* res) noexcept nogil:
    cdef Py_ssize_t r0 = u * geo.rows
    cdef Py_ssize_t r1 = r0 + geo.rows if r0 + geo.rows < geo.n else geo.n
    cdef Py_ssize_t nb, j
    cdef double ws = 0.0
    block_init(res)
    while r0 < r1:
        nb = r1 - r0 if r1 - r0 < geo.nb else geo.nb
        if tag_t is TSoftmax or tag_t is TSoftmaxFocal:
            softmax_block(tag, x, y, w, geo, P, r0, nb, B, gout, hout, res)
        else:
            elem_block(tag, x, y, w, geo, P, r0, nb, B, gout, hout, res)
        if w != NULL:
            for j in range(nb):
                ws += w[r0 + j]
        else:
            ws += nb
        r0 += nb
    if geo.stream:
        fl_stream_fence()
    res.weight = ws


cdef int run(tag_t* tag, const floating* x, const floating* y, const double* w, Geo* geo,
             GP* P, void* gout, void* hout, int n_threads, BlockOut* total) noexcept nogil:
    # scratch per thread, allocated once per call (a fresh allocation per
    # unit is mmap'ed and page-faulted anew: 10x slower)
    cdef Py_ssize_t units = n_blocks(geo.n, geo.rows), u
    cdef int nt = threads_for_work(n_threads, units, geo.n * geo.K), t
    cdef BlockOut* blocks = <BlockOut*>malloc((units if units > 0 else 1) * sizeof(BlockOut))
    cdef Bufs bufs[64]
    cdef int rc = 0
    if nt > 64:
        nt = 64
    if blocks == NULL:
        return -1
    for t in range(nt):
        bufs[t].mem = NULL
    for t in range(nt):
        if bufs_alloc(&bufs[t], geo.K, geo.nb) != 0:
            rc = -1
    if rc == 0:
        if nt == 1:
            for u in range(units):
                run_unit(tag, x, y, w, geo, P, u, gout, hout, &bufs[0], &blocks[u])
        else:
            for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                            num_threads=nt):
                run_unit(tag, x, y, w, geo, P, u, gout, hout, &bufs[threadid()], &blocks[u])
        combine_blocks(blocks, units, total)
    for t in range(nt):
        free(bufs[t].mem)
    free(blocks)
    return rc


cdef int dispatch(int loss, const floating* x, const floating* y, const double* w, Geo* geo,
                  GP* P, void* gout, void* hout, int nt, BlockOut* total) noexcept nogil:
    if loss == LOGISTIC:
        return run(<TLogistic*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == FOCAL:
        return run(<TFocal*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == HUBER:
        return run(<THuber*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == PSEUDO_HUBER:
        return run(<TPseudoHuber*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == LOG_COSH:
        return run(<TLogCosh*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == FAIR:
        return run(<TFair*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == QUANTILE:
        return run(<TQuantile*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == POISSON:
        return run(<TPoisson*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == GAMMA:
        return run(<TGamma*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == TWEEDIE:
        return run(<TTweedie*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == SQLOG:
        return run(<TSqLog*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == SOFTMAX:
        return run(<TSoftmax*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    if loss == SOFTMAX_FOCAL:
        return run(<TSoftmaxFocal*>NULL, x, y, w, geo, P, gout, hout, nt, total)
    return -2


# ------------------------------------------------------------------ driver

def grad_hess(int loss, cnp.ndarray x, cnp.ndarray y, object w, object g,
              object h, int hess, double a, double b, double c, double fac,
              double floor, double smooth, object cw, object col, bint soft,
              bint stream, int n_threads):
    """Fill g and h; return (weighted loss sum, sum of weights, first bad row or -1).

    g and h None: the loss value only (nothing stored).

    The wrapper guarantees: x (n,) or (n, K) float32/float64, C- or
    F-contiguous; y of x's dtype, (n,) contiguous or (soft) x's shape,
    C- or F-contiguous; w None or float64 (n,); g and h of one float dtype,
    x's shape, both C- or both F-contiguous; cw (K,) float64 or None; col
    (K,) float64 or None.
    """
    cdef Geo geo
    cdef GP P
    cdef BlockOut total
    cdef int rc
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t K = x.shape[1] if x.ndim == 2 else 1
    cdef Py_ssize_t isz = x.itemsize
    cdef cnp.ndarray wa, cwa, cola
    cdef const double* wp = NULL
    cdef void* xp = cnp.PyArray_DATA(x)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* gp = NULL
    cdef void* hp = NULL
    cdef object tin = None, tout = None
    cdef int32_t[::1] tin_v, tout_v
    cdef Py_ssize_t j, k
    cdef bint tr
    geo.n = n
    geo.K = K
    if x.ndim == 2:
        geo.xrs = x.strides[0] // isz
        geo.xcs = x.strides[1] // isz
    else:
        geo.xrs = 1
        geo.xcs = n
    if soft:
        geo.yrs = y.strides[0] // isz
        geo.ycs = y.strides[1] // isz
    else:
        geo.yrs = 1
        geo.ycs = 0
    if g is not None:
        gp = cnp.PyArray_DATA(<cnp.ndarray>g)
        hp = cnp.PyArray_DATA(<cnp.ndarray>h)
        geo.out_f32 = (<cnp.ndarray>g).dtype.num == cnp.NPY_FLOAT
        geo.out_rows = ((<cnp.ndarray>g).ndim == 2 and K > 1
                        and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>g))
    else:
        geo.out_f32 = isz == 4
        geo.out_rows = False
    geo.stream = stream
    geo.nb = SUB // K if K < SUB else 1
    if geo.nb > 16:
        # whole 16-row tiles of the register transposes and whole vectors in
        # the per-class loops: a sub-block of 204 rows (K = 10) left 12 rows
        # to the scalar transposes and the scalar exp epilogues
        geo.nb -= geo.nb % 16
    if K > 1 and geo.xrs == 1 and geo.nb < PLANE_ROWS and K * PLANE_ROWS <= 8 * SUB:
        # class planes read in place: longer runs per plane (a run of a few
        # hundred bytes in each of K planes, and 2K output planes, keeps the
        # memory system switching between far-apart streams)
        geo.nb = PLANE_ROWS
    if geo.nb > n:
        geo.nb = n if n > 0 else 1      # a small call allocates and tabulates little
    # units hold whole sub-blocks, so that only the last one is partial
    geo.rows = geo.nb * (ELEM_BLOCK // (geo.nb * K) if geo.nb * K < ELEM_BLOCK else 1)
    geo.tin = NULL
    geo.tout = NULL
    # gather tables only for rows wider than the register transposes take
    tr = tr_rows(K, isz == 4)
    if not tr and geo.xcs == 1 and geo.xrs == K:
        tin = np.empty(K * geo.nb, dtype=np.int32)
        tin_v = tin
        for k in range(K):
            for j in range(geo.nb):
                tin_v[k * geo.nb + j] = <int32_t>(j * K + k)
        geo.tin = &tin_v[0]
    if geo.out_rows and not tr:
        tout = np.empty(K * geo.nb, dtype=np.int32)
        tout_v = tout
        for j in range(geo.nb):
            for k in range(K):
                tout_v[j * K + k] = <int32_t>(k * geo.nb + j)
        geo.tout = &tout_v[0]
    P.hess = hess
    P.a = a
    P.b = b
    P.c = c
    P.fac = fac
    P.floor = floor
    P.smooth = smooth
    P.soft = soft
    P.cw = NULL
    P.col = NULL
    if w is not None:
        wa = <cnp.ndarray>w
        wp = <const double*>cnp.PyArray_DATA(wa)
    if cw is not None:
        cwa = <cnp.ndarray>cw
        P.cw = <const double*>cnp.PyArray_DATA(cwa)
    if col is not None:
        cola = <cnp.ndarray>col
        P.col = <const double*>cnp.PyArray_DATA(cola)
    if n == 0:
        return 0.0, 0.0, -1
    with nogil:
        if isz == 4:
            rc = dispatch(loss, <const float*>xp, <const float*>yp, wp, &geo, &P, gp, hp,
                          n_threads, &total)
        else:
            rc = dispatch(loss, <const double*>xp, <const double*>yp, wp, &geo, &P, gp, hp,
                          n_threads, &total)
    if rc == -1:
        raise MemoryError("fastloss: cannot allocate gbdt work buffers")
    if rc == -2:
        raise ValueError(f"fastloss internal error: unknown gbdt loss id {loss}")
    return total.loss, total.weight, total.bad
