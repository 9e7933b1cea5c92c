"""The distances of _embedding.pyx: p-norms of row differences and their
gradients, for every p and dtype (cimported by _embedding.pyx only).

Distances are p-norms of a difference vector v: pkind 1 (p = 1), 2 (p = 2)
or 0 (any other p > 0, through pow).  The gradient of a distance d(v) is
K * phi(v) with phi(v) = v (p = 2), sign(v) (p = 1), sign(v)|v|^(p-1)
(other p), and a per-row factor K from dist_factor.
"""

from libc.math cimport fabs, pow, sqrt

from _common cimport LANES, fl_diff_sumf, floating, lanes_total


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
