# The soft Dice family's value from its per-(image, class) sums: the one
# place where the sums become a loss and the coefficients of its gradient
# (seg_value; seg_loss returns it as the public functions do), read by the
# losses' full path and prepared call (_segmentation.pyx) and, through
# seg_finish, by the metrics' value from merged sums; seg_params reads the
# prepared call's loss parameters.
#
# Design:
# A. The sums st (N, C, 5) of _segmentation.pyx's statistics pass, per
#    image and class: PG, P, P2, G, G2 (SENSSPEC: E1, E0, NEG, G, G2).  The
#    classes used start at c0 (1 without the background); with batch the
#    images are added first, in image order.
# B. A term is one (image, class) ratio, or one image for the generalized
#    Dice (its class weights tie the classes of an image together).  Per
#    term: f and its derivatives in the first two sums used (dI, dP), the
#    expressions of the formulas in the losses' docstrings in double.
# C. The reduction is the sum of the terms in order ('mean' divides it by
#    their count); the gradient's coefficients ca, cb, cb2 (N, C) are the
#    derivatives times d(loss)/d(term), zero for the classes not used.

cimport numpy as cnp
from libc.math cimport INFINITY, NAN, isinf, pow
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _fastcall cimport RED_MEAN, RED_NONE, RED_SUM, fc_real, fc_scalar

cdef enum:
    LOSS_DICE = 0         # dice or jaccard (SegQ.jaccard), squared_pred
    LOSS_TVERSKY = 1      # alpha a, beta b, focal exponent g (0: none)
    LOSS_GENERALIZED = 2  # class weights wtype
    LOSS_SENSSPEC = 3     # sensitivity weight a (r)
    LOSS_DICE_CE = 4      # the dice terms, lambda_dice a, lambda_ce b

cdef enum:
    W_SQUARE = 0
    W_SIMPLE = 1
    W_UNIFORM = 2


cdef struct SegQ:
    int kind
    Py_ssize_t c0         # first class used
    bint batch
    bint squared          # P2 and G2 in the Dice denominators
    bint jaccard
    int wtype
    double snr, sdr       # smoothing of numerators and denominators
    double a, b, g        # the kind's parameters (above)


cdef inline Py_ssize_t seg_nterms(const SegQ* q, Py_ssize_t N, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t rows = 1 if q.batch else N
    return rows if q.kind == LOSS_GENERALIZED else rows * (C - q.c0)


cdef inline void _class_term(const SegQ* q, const double* s, double* f, double* dI,
                             double* dP) noexcept nogil:
    """One (image, class) term from its five sums s."""
    cdef double num, den, Pd, Gd, chain
    if q.kind == LOSS_SENSSPEC:
        dI[0] = q.a / (s[3] + q.sdr)
        dP[0] = (1.0 - q.a) / (s[2] + q.sdr)
        f[0] = (s[0] + q.snr) * dI[0] + (s[1] + q.snr) * dP[0]
    elif q.kind == LOSS_TVERSKY:
        num = s[0] + q.snr
        den = s[0] + q.a * (s[1] - s[0]) + q.b * (s[3] - s[0]) + q.sdr
        f[0] = 1.0 - num / den
        dI[0] = -(den - num * (1.0 - q.a - q.b)) / (den * den)
        dP[0] = num * q.a / (den * den)
        if q.g > 0.0:
            chain = q.g * pow(f[0], q.g - 1.0)
            f[0] = pow(f[0], q.g)
            dI[0] = chain * dI[0]
            dP[0] = chain * dP[0]
    else:  # Dice / Jaccard
        Pd = s[2] if q.squared else s[1]
        Gd = s[4] if q.squared else s[3]
        num = 2.0 * s[0] + q.snr
        if q.jaccard:
            den = 2.0 * (Pd + Gd - s[0]) + q.sdr
            f[0] = 1.0 - num / den
            dI[0] = -(2.0 * den + 2.0 * num) / (den * den)
            dP[0] = 2.0 * num / (den * den)
        else:
            den = Pd + Gd + q.sdr
            f[0] = 1.0 - num / den
            dI[0] = -2.0 / den
            dP[0] = num / (den * den)


cdef inline void _generalized_row(const SegQ* q, const double* s, Py_ssize_t K, double* f,
                                  double* dI, double* dP) noexcept nogil:
    """One image's term over its K classes (sums s, K x 5); dI / dP per class.
    w_c = 1/G_c^2, 1/G_c or 1; an infinite weight (a class absent from the
    target) becomes the largest finite weight of the image (NaN if any is)."""
    cdef Py_ssize_t k
    cdef double w, G, mx = -INFINITY, numer = 0.0, denom = 0.0
    cdef bint nan = False
    for k in range(K):
        G = s[5 * k + 3]
        w = 1.0 / (G * G) if q.wtype == W_SQUARE else (1.0 / G if q.wtype == W_SIMPLE else 1.0)
        dI[k] = 1.0 if isinf(w) else 0.0   # marks the infinite weights
        dP[k] = 0.0 if isinf(w) else w
        if dP[k] != dP[k]:
            nan = True
        elif dP[k] > mx:
            mx = dP[k]
    if nan:
        mx = NAN
    for k in range(K):
        dP[k] = dP[k] + dI[k] * mx
    for k in range(K):
        numer = numer + dP[k] * s[5 * k]
    for k in range(K):
        denom = denom + dP[k] * (s[5 * k + 1] + s[5 * k + 3])
    numer = 2.0 * numer + q.snr
    denom = denom + q.sdr
    f[0] = 1.0 - numer / denom
    for k in range(K):
        w = dP[k]
        dI[k] = -2.0 * w / denom
        dP[k] = w * (numer / (denom * denom))


cdef inline int seg_value(const SegQ* q, const double* st, Py_ssize_t N, Py_ssize_t C,
                          const double* w, const double* ce, bint labels, int red, double* f,
                          double* value, double* ca, double* cb, double* cb2,
                          double* kce) except -1:
    """The loss of the sums st (N, C, 5): the reduced value in *value, the
    seg_nterms terms in f; with ca not NULL the gradient's coefficients
    (N, C each) and the cross-entropy's scale *kce.  w: the weight of each
    class used (NULL: none); ce: the cross-entropy sums of dice_ce (loss,
    sum of sw A, sum of sw v) and labels whether the target is a label map."""
    cdef Py_ssize_t rows = 1 if q.batch else N, K = C - q.c0, M, r, k, n, i, t, at
    cdef double total = 0.0, dL, ce_val, den, kc, vP
    cdef double* sel = <double*>malloc((rows * K * 5 + 2 * rows * K + 1) * sizeof(double))
    cdef double* dI
    cdef double* dP
    if sel == NULL:
        raise MemoryError("fastloss: cannot allocate segmentation terms")
    dI = sel + rows * K * 5
    dP = dI + rows * K
    try:
        # the sums of the classes used, added over the images with batch
        memset(sel, 0, rows * K * 5 * sizeof(double))
        for n in range(N):
            r = 0 if q.batch else n
            for k in range(K):
                for i in range(5):
                    sel[(r * K + k) * 5 + i] += st[(n * C + q.c0 + k) * 5 + i]
        if q.kind == LOSS_GENERALIZED:
            M = rows
            for r in range(rows):
                _generalized_row(q, sel + r * K * 5, K, f + r, dI + r * K, dP + r * K)
        else:
            M = rows * K
            for t in range(M):
                _class_term(q, sel + 5 * t, f + t, dI + t, dP + t)
                if w != NULL:
                    f[t] = f[t] * w[t % K]
                    dI[t] = dI[t] * w[t % K]
                    dP[t] = dP[t] * w[t % K]
        for t in range(M):
            total = total + f[t]
        dL = 1.0 / (M if M > 1 else 1) if red == RED_MEAN else 1.0
        value[0] = total / M if red == RED_MEAN else total
        if q.kind == LOSS_DICE_CE:
            den = ce[1] if labels else ce[2]
            if red == RED_SUM:
                ce_val, kc = ce[0], 1.0
            else:
                ce_val = ce[0] / den
                kc = 1.0 / den if den != 0.0 else 0.0
            value[0] = q.a * value[0] + q.b * ce_val
            kce[0] = q.b * kc
            dL = q.a * dL
        if ca == NULL:
            return 0
        memset(ca, 0, N * C * sizeof(double))
        memset(cb, 0, N * C * sizeof(double))
        memset(cb2, 0, N * C * sizeof(double))
        for n in range(N):
            for k in range(K):
                t = (0 if q.batch else n) * K + k
                at = n * C + q.c0 + k
                ca[at] = dL * dI[t]
                vP = dL * dP[t]
                if q.squared and (q.kind == LOSS_DICE or q.kind == LOSS_DICE_CE):
                    cb2[at] = vP
                else:
                    cb[at] = vP
        return 0
    finally:
        free(sel)


cdef inline object seg_loss(const SegQ* q, const double* st, Py_ssize_t N, Py_ssize_t C,
                            const double* w, const double* ce, bint labels, int red,
                            int typenum, double* ca, double* cb, double* cb2, double* kce):
    """The loss as the public functions return it (a scalar of typenum; for
    'none' the terms, (N, C') / (C',) with batch, generalized (N,) / (1,))."""
    cdef Py_ssize_t M = seg_nterms(q, N, C), t
    cdef cnp.npy_intp dims[2]
    cdef double value
    cdef double* f = <double*>malloc((M + 1) * sizeof(double))
    cdef cnp.ndarray out
    if f == NULL:
        raise MemoryError("fastloss: cannot allocate segmentation terms")
    try:
        seg_value(q, st, N, C, w, ce, labels, red, f, &value, ca, cb, cb2, kce)
        if red != RED_NONE:
            return fc_scalar(value, typenum)
        dims[0] = 1 if q.batch else N
        dims[1] = C - q.c0
        if q.kind == LOSS_GENERALIZED:
            out = cnp.PyArray_EMPTY(1, dims, typenum, 0)
        elif q.batch:
            out = cnp.PyArray_EMPTY(1, &dims[1], typenum, 0)
        else:
            out = cnp.PyArray_EMPTY(2, dims, typenum, 0)
        for t in range(M):
            if typenum == cnp.NPY_FLOAT:
                (<float*>cnp.PyArray_DATA(out))[t] = <float>f[t]
            else:
                (<double*>cnp.PyArray_DATA(out))[t] = f[t]
        return out
    finally:
        free(f)


cdef inline bint seg_nonneg(object v, double* out) noexcept:
    return fc_real(v, out) and out[0] >= 0.0


cdef inline bint seg_params(int kind, object a, object b, object g, SegQ* q) noexcept:
    """The kind's parameters into q, or False where the full path decides."""
    q.a = q.b = q.g = 0.0
    q.wtype = W_SQUARE
    if kind == LOSS_TVERSKY:
        return (seg_nonneg(a, &q.a) and seg_nonneg(b, &q.b)
                and (g is None or (fc_real(g, &q.g) and q.g > 0.0)))
    if kind == LOSS_GENERALIZED:
        if type(a) is not str:
            return False
        q.wtype = (W_SQUARE if a == "square" else W_SIMPLE if a == "simple"
                   else W_UNIFORM if a == "uniform" else -1)
        return q.wtype >= 0
    if kind == LOSS_SENSSPEC:
        return fc_real(a, &q.a) and 0.0 <= q.a <= 1.0
    if kind == LOSS_DICE_CE:
        return seg_nonneg(a, &q.a) and seg_nonneg(b, &q.b)
    return kind == LOSS_DICE
