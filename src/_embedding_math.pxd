"""The row math of _embedding.pyx: p-norms of row differences and their
gradients for every p and dtype, and each loss's value and gradient of one
row (cimported by _embedding.pyx only).

Distances are p-norms of a difference vector v: pkind 1 (p = 1), 2 (p = 2)
or 0 (any other p > 0, through pow).  The gradient of a distance d(v) is
K * phi(v) with phi(v) = v (p = 2), sign(v) (p = 1), sign(v)|v|^(p-1)
(other p), and a per-row factor K from dist_factor.
"""

from libc.math cimport fabs, pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _common cimport LANES, BlockOut, fl_diff_sumf, fl_widen, floating, label_t, lanes_total


cdef inline double pw(double av, int pkind, double pn) noexcept nogil:
    """|v|^p for |v| = av."""
    if pkind == 2:
        return av * av
    if pkind == 1:
        return av
    return pow(av, pn)


cdef inline double dist_finish(double S, int pkind, double pn, bint squared) noexcept nogil:
    """The distance from S = sum |v|^p: S^(1/p), or its square."""
    cdef double d
    if pkind == 2:
        return S if squared else sqrt(S)
    d = S if pkind == 1 else pow(S, 1.0 / pn)
    return d * d if squared else d


cdef inline double dist_factor(double S, int pkind, double pn, bint squared) noexcept nogil:
    """K such that d(distance)/dv = K * phi(v); 0 where the norm is 0."""
    cdef double nrm
    if pkind == 2:
        if squared:
            return 2.0
        return 1.0 / sqrt(S) if S > 0 else 0.0
    nrm = S if pkind == 1 else pow(S, 1.0 / pn)
    if not (nrm > 0):
        return 0.0
    if pkind == 1:
        return 2.0 * nrm if squared else 1.0
    return 2.0 * pow(nrm, 2.0 - pn) if squared else pow(nrm, 1.0 - pn)


cdef inline floating phi(floating v, int pkind, double pn) noexcept nogil:
    cdef floating one = 1, zero = 0
    if pkind == 2:
        return v
    if pkind == 1:
        return one if v > 0 else (-one if v < 0 else zero)
    return <floating>((1.0 if v > 0 else (-1.0 if v < 0 else 0.0)) * pow(fabs(v), pn - 1.0))


cdef inline double pdiff_sum(const floating* a, const floating* b, Py_ssize_t D,
                             floating eps, int pkind, double pn) noexcept nogil:
    """sum_j |a_j - b_j + eps|^p.

    float32 rows with p = 1, 2: fl_diff_sumf (float partials in four vector
    chains, folded into a double every 2048 values; one double chain per 8
    lanes was bound by the add latency at 0.17 ns per value per thread).
    Otherwise LANES double accumulators.  One plain loop per norm kind (a
    fused three-distance loop did not vectorize): a row is read once per
    distance, from L1 after the first.
    """
    cdef double acc[LANES]
    cdef Py_ssize_t i = 0, k
    cdef floating v
    if floating is float:
        if pkind != 0:
            return fl_diff_sumf(a, b, D, eps, pkind)
    for k in range(LANES):
        acc[k] = 0.0
    if pkind == 2:
        while i + LANES <= D:
            for k in range(LANES):
                v = a[i + k] - b[i + k] + eps
                acc[k] += <double>v * v
            i += LANES
    elif pkind == 1:
        while i + LANES <= D:
            for k in range(LANES):
                v = a[i + k] - b[i + k] + eps
                acc[k] += fabs(v)
            i += LANES
    while i < D:
        v = a[i] - b[i] + eps
        acc[0] += pw(fabs(v), pkind, pn)
        i += 1
    return lanes_total(acc)


cdef inline void grad_row(floating* g, const floating* a1, const floating* b1, floating k1,
                          const floating* a2, const floating* b2, floating k2,
                          Py_ssize_t D, floating eps, int pkind, double pn) noexcept nogil:
    """g_j = k1 phi(a1_j - b1_j + eps) + k2 phi(a2_j - b2_j + eps)."""
    cdef Py_ssize_t j
    if pkind == 2:
        for j in range(D):
            g[j] = k1 * (a1[j] - b1[j] + eps) + k2 * (a2[j] - b2[j] + eps)
    else:
        for j in range(D):
            g[j] = (k1 * phi(a1[j] - b1[j] + eps, pkind, pn)
                    + k2 * phi(a2[j] - b2[j] + eps, pkind, pn))


cdef inline double sq_diff(const floating* a, const floating* b, Py_ssize_t D) noexcept nogil:
    """sum_j (a_j - b_j)^2."""
    return pdiff_sum(a, b, D, 0, 2, 2.0)


# ------------------------------------------------ one row of each loss

cdef inline double triplet_row(const floating* ar, const floating* pr, const floating* nr,
                               Py_ssize_t D, double margin, int pkind, double pn,
                               floating eps, bint swap, bint squared, double swj,
                               floating* ga, floating* gp, floating* gn,
                               double gscale) noexcept nogil:
    """The weighted loss of one triplet of rows; with ga, its gradients (ga, gp, gn)."""
    cdef double sap, san, spn, dap, dneg, h, loss, cf
    cdef floating kap, kng
    cdef bint use_pn
    sap = pdiff_sum(ar, pr, D, eps, pkind, pn)
    san = pdiff_sum(ar, nr, D, eps, pkind, pn)
    spn = pdiff_sum(pr, nr, D, eps, pkind, pn) if swap else 0.0
    dap = dist_finish(sap, pkind, pn, squared)
    dneg = dist_finish(san, pkind, pn, squared)
    use_pn = False
    if swap:
        h = dist_finish(spn, pkind, pn, squared)
        if h < dneg:
            use_pn = True
            dneg = h
    h = dap - dneg + margin
    loss = 0.0 if h <= 0 else h   # NaN propagates
    loss *= swj
    if ga == NULL:
        return loss
    if not (h > 0):
        memset(ga, 0, D * sizeof(floating))
        memset(gp, 0, D * sizeof(floating))
        memset(gn, 0, D * sizeof(floating))
        return loss
    cf = swj * gscale
    kap = <floating>(cf * dist_factor(sap, pkind, pn, squared))
    # one loop per output: a loop with three stores and three loads
    # needs more runtime alias checks than gcc versions for, and stays
    # scalar; the rows are in L1, so re-reading them is cheap
    if not use_pn:
        kng = <floating>(cf * dist_factor(san, pkind, pn, squared))
        grad_row(ga, ar, pr, kap, ar, nr, -kng, D, eps, pkind, pn)
        grad_row(gp, ar, pr, -kap, ar, nr, 0, D, eps, pkind, pn)
        grad_row(gn, ar, pr, 0, ar, nr, kng, D, eps, pkind, pn)
    else:
        kng = <floating>(cf * dist_factor(spn, pkind, pn, squared))
        grad_row(ga, ar, pr, kap, pr, nr, 0, D, eps, pkind, pn)
        grad_row(gp, ar, pr, -kap, pr, nr, -kng, D, eps, pkind, pn)
        grad_row(gn, ar, pr, 0, pr, nr, kng, D, eps, pkind, pn)
    return loss


cdef inline double contrastive_row(const floating* x1, const floating* x2, Py_ssize_t D,
                                   Py_ssize_t y, double margin, double swj, floating* g1,
                                   floating* g2, double gscale) noexcept nogil:
    """The weighted loss of one pair (y: 0 similar, 1 dissimilar); its gradients
    (times gscale) to g1, g2 unless g1 is NULL."""
    cdef Py_ssize_t j
    cdef double S, d, h, loss, f
    cdef floating ff, v
    S = sq_diff(x1, x2, D)
    if y == 0:
        loss = 0.5 * S
        f = 1.0
    else:
        d = sqrt(S)
        h = margin - d
        h = h if not (h <= 0) else 0.0   # NaN propagates, as torch's clamp
        loss = 0.5 * h * h
        # d/dv of 1/2 (m - |v|)^2 = -(m - |v|) v / |v|; 0 at v = 0
        f = -h / d if not (d <= 0) else 0.0
    if g1 != NULL:
        ff = <floating>(f * swj * gscale)
        for j in range(D):
            v = ff * (x1[j] - x2[j])
            g1[j] = v
            g2[j] = -v
    return loss * swj


cdef inline bint contrastive_bad(Py_ssize_t y, Py_ssize_t i, void* loss_out, size_t lsize,
                                 void* g1, void* g2, size_t gbytes,
                                 BlockOut* out) noexcept nogil:
    """A label other than 0 and 1: recorded (first position), its loss and
    gradient rows zeroed; True if so."""
    if y == 0 or y == 1:
        return False
    if out.bad < 0:
        out.bad = i
    if loss_out != NULL:
        memset(<char*>loss_out + i * lsize, 0, lsize)
    if g1 != NULL:
        memset(<char*>g1 + i * gbytes, 0, gbytes)
        memset(<char*>g2 + i * gbytes, 0, gbytes)
    return True


cdef inline double center_row(const floating* xr, const floating* cr, Py_ssize_t D,
                              double swj, double gscale, floating* gr) noexcept nogil:
    """The weighted loss 1/2 swj ||x - c||^2 of one row; its gradient (times
    gscale) to gr unless gr is NULL."""
    cdef Py_ssize_t j
    cdef floating ff
    if gr != NULL:
        ff = <floating>(swj * gscale)
        for j in range(D):
            gr[j] = ff * (xr[j] - cr[j])
    return 0.5 * swj * sq_diff(xr, cr, D)


# -------------------------------- center loss: the centers' gradient per class

cdef inline void center_grad_class(const floating* gx, const Py_ssize_t* start,
                                   const Py_ssize_t* order, Py_ssize_t D, Py_ssize_t c,
                                   floating* gc) noexcept nogil:
    """gc[c] = -sum of the feature gradients of class c's rows, in row order."""
    cdef double acc[256]
    cdef Py_ssize_t j0, m, k, r
    cdef const floating* gr
    j0 = 0
    while j0 < D:
        m = D - j0 if D - j0 < 256 else 256
        for k in range(m):
            acc[k] = 0.0
        for r in range(start[c], start[c + 1]):
            gr = gx + order[r] * D + j0
            for k in range(m):
                acc[k] += gr[k]
        for k in range(m):
            gc[c * D + j0 + k] = <floating>(-acc[k])
        j0 += 256


cdef inline void center_grad_class_half(const unsigned short* x, int kind, const float* cen,
                                        const double* sw, double gscale, const Py_ssize_t* start,
                                        const Py_ssize_t* order, Py_ssize_t D, Py_ssize_t c,
                                        float* gc) noexcept nogil:
    """center_grad_class with each row's float32 gradient recomputed from
    the half features (the values the row pass rounded to the gradient's
    dtype): the same sums as the float32 kernel on the widened features."""
    cdef double acc[256]
    cdef float xb[256]
    cdef Py_ssize_t j0, m, k, r, i
    cdef float ff
    cdef const float* cr
    j0 = 0
    while j0 < D:
        m = D - j0 if D - j0 < 256 else 256
        cr = cen + c * D + j0
        for k in range(m):
            acc[k] = 0.0
        for r in range(start[c], start[c + 1]):
            i = order[r]
            ff = <float>((sw[i] if sw != NULL else 1.0) * gscale)
            fl_widen(x + i * D + j0, kind, xb, m)
            for k in range(m):
                acc[k] += ff * (xb[k] - cr[k])
        for k in range(m):
            gc[c * D + j0 + k] = <float>(-acc[k])
        j0 += 256


cdef inline int class_order(const label_t* labels, Py_ssize_t N, Py_ssize_t C,
                            Py_ssize_t** start, Py_ssize_t** order) noexcept nogil:
    """Counting sort of the (valid) labels: the rows of class c are
    order[start[c]:start[c+1]], in increasing row order (both malloc'ed);
    -1 if out of memory."""
    cdef Py_ssize_t c, i
    cdef Py_ssize_t* st = <Py_ssize_t*>malloc((C + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* od = <Py_ssize_t*>malloc((N if N > 0 else 1) * sizeof(Py_ssize_t))
    if st == NULL or od == NULL:
        free(st)
        free(od)
        return -1
    for c in range(C + 1):
        st[c] = 0
    for i in range(N):
        st[<Py_ssize_t>labels[i] + 1] += 1
    for c in range(C):
        st[c + 1] += st[c]
    for i in range(N):
        c = <Py_ssize_t>labels[i]
        od[st[c]] = i
        st[c] += 1
    for c in range(C - 1, 0, -1):
        st[c] = st[c - 1]
    st[0] = 0
    start[0] = st
    order[0] = od
    return 0
