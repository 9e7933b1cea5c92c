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
   one helper (gh_elem) that returns the value and writes (g, h) through
   pointers to locals; softmax losses have a per-row part (in double: a few
   scalars per row) and per-class loops that only call arithmetic.
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
from libc.math cimport INFINITY, exp, fabs, log, log1p, sqrt, trunc, truncf
from libc.stdlib cimport free, malloc
from libc.stdint cimport int32_t
from libc.string cimport memcpy

from _common cimport (
    BlockOut, ELEM_BLOCK, FL_TR_F32_MAX, FL_TR_F64_MAX, align64, block_init, combine_blocks, deal,
    fl_stream_f32, fl_stream_f64, fl_stream_fence, floating, lanes_sum, log1p_unit, n_blocks,
    planes_to_rows, rows_to_planes, safe_shift, threads_for_work, vabs, vexp, vexp_lo, vexp_neg,
    vlog, vlog1p,
)

cnp.import_array()

cdef extern from *:
    """
    /* dst[i] = src[idx[i]] for i < n: the transposes of a C-ordered (rows, K)
     * block into class planes and back, as table-driven gathers from L1.
     * gcc's generic tuning never emits gather instructions (they are slow on
     * some Intel parts), and the scalar strided copy was half of a softmax
     * objective's time on (n, 10) float32 (AVX-512 EPYC); here they are
     * written with intrinsics where the target has them. */
    #include <stdint.h>
    #if defined(__AVX512F__) || defined(__AVX2__)
    #include <immintrin.h>
    #endif
    static inline void gb_gather_f32(float *dst, const float *src, const int32_t *idx,
                                     Py_ssize_t n)
    {
        Py_ssize_t i = 0;
    #if defined(__AVX512F__)
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(dst + i, _mm512_i32gather_ps(
                _mm512_loadu_si512((const void *)(idx + i)), src, 4));
    #elif defined(__AVX2__)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_i32gather_ps(
                src, _mm256_loadu_si256((const __m256i *)(idx + i)), 4));
    #endif
        for (; i < n; i++)
            dst[i] = src[idx[i]];
    }
    static inline void gb_gather_f64(double *dst, const double *src, const int32_t *idx,
                                     Py_ssize_t n)
    {
        Py_ssize_t i = 0;
    #if defined(__AVX512F__)
        for (; i + 8 <= n; i += 8)
            _mm512_storeu_pd(dst + i, _mm512_i32gather_pd(
                _mm256_loadu_si256((const __m256i *)(idx + i)), src, 8));
    #elif defined(__AVX2__)
        for (; i + 4 <= n; i += 4)
            _mm256_storeu_pd(dst + i, _mm256_i32gather_pd(
                src, _mm_loadu_si128((const __m128i *)(idx + i)), 8));
    #endif
        for (; i < n; i++)
            dst[i] = src[idx[i]];
    }
    """
    void gb_gather_f32(float* dst, const float* src, const int32_t* idx, Py_ssize_t n) nogil
    void gb_gather_f64(double* dst, const double* src, const int32_t* idx, Py_ssize_t n) nogil


cdef inline void gather(floating* dst, const floating* src, const int32_t* idx,
                        Py_ssize_t n) noexcept nogil:
    if floating is float:
        gb_gather_f32(dst, src, idx, n)
    else:
        gb_gather_f64(dst, src, idx, n)

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


ctypedef struct TLogistic:
    char _
ctypedef struct TFocal:
    char _
ctypedef struct THuber:
    char _
ctypedef struct TPseudoHuber:
    char _
ctypedef struct TLogCosh:
    char _
ctypedef struct TFair:
    char _
ctypedef struct TQuantile:
    char _
ctypedef struct TPoisson:
    char _
ctypedef struct TGamma:
    char _
ctypedef struct TTweedie:
    char _
ctypedef struct TSqLog:
    char _
ctypedef struct TSoftmax:
    char _
ctypedef struct TSoftmaxFocal:
    char _

ctypedef fused tag_t:
    TLogistic
    TFocal
    THuber
    TPseudoHuber
    TLogCosh
    TFair
    TQuantile
    TPoisson
    TGamma
    TTweedie
    TSqLog
    TSoftmax
    TSoftmaxFocal


cdef struct GP:
    int hess
    double a, b, c
    double fac          # softmax Hessian factor (H_SCALED)
    double floor        # h = max(h, floor) before the sample weight; -inf: none
    double smooth       # softmax label smoothing
    const double* cw    # per-class weights (softmax) / alpha (softmax focal), or NULL
    const double* col   # per-column parameter (quantile levels), or NULL
    bint soft           # softmax: labels are (n, K) probabilities


cdef struct Geo:
    Py_ssize_t n, K
    Py_ssize_t xrs, xcs     # margins: element (i, k) at i*xrs + k*xcs
    Py_ssize_t yrs, ycs     # soft labels, likewise
    bint out_f32            # outputs are float32 (else float64)
    bint out_rows           # outputs are C-ordered (n, K) with K > 1 (else planes k*n + i)
    bint stream             # non-temporal stores
    Py_ssize_t rows         # rows per unit
    Py_ssize_t nb           # rows per sub-block
    const int32_t* tin      # C-ordered margins: plane position k*nb + j <- offset j*K + k
    const int32_t* tout     # C-ordered outputs: offset j*K + k <- plane position k*nb + j


# ------------------------------------------------------- per-element math

cdef inline bint is_soft(tag_t* tag) noexcept nogil:
    return tag_t is TSoftmax or tag_t is TSoftmaxFocal


cdef inline floating gh_elem(tag_t* tag, floating f, floating y, floating a, floating b,
                             floating c, int hv, floating* g, floating* h) noexcept nogil:
    """Loss of one element; d/df to g[0], d2/df2 (or the chosen variant) to h[0]."""
    cdef floating one = 1, two = 2, half = 0.5, zero = 0
    cdef floating e, r, sp, sn, lp, spf, snf, wp, wn, qg, pg, gm, r_, ar, t1, t2, mu, e1, e2
    cdef double dr, dt, ds, dad, de, dq
    if tag_t is TLogistic or tag_t is TFocal:
        e = vexp_neg(-vabs(f))
        r = one / (one + e)
        sp = r if f >= 0 else e * r          # sigma(f) = p
        sn = e * r if f >= 0 else r          # sigma(-f) = q
        lp = log1p_unit(e, r)
        spf = (f if f > 0 else zero) + lp    # softplus(f) = -log q
        snf = (-f if f < 0 else zero) + lp   # softplus(-f) = -log p
        wp = b * y                           # weight of the y = 1 part
        wn = a * (one - y)                   # weight of the y = 0 part
        if tag_t is TLogistic:
            g[0] = wn * sp - wp * sn
            h[0] = (wp + wn) * (e * r * r)   # p q = e / (1 + e)^2
            return wp * snf + wn * spf
        else:
            # l = wp q^gm (-log p) + wn p^gm (-log q): focal on z = f and on z = -f
            gm = c
            qg = vexp_neg(-gm * spf)         # q^gamma
            pg = vexp_neg(-gm * snf)         # p^gamma
            qg = one if gm == 0 else qg
            pg = one if gm == 0 else pg
            g[0] = pg * wn * (gm * sn * spf + sp) - qg * wp * (gm * sp * snf + sn)
            t1 = sp * qg * (gm * gm * sp * snf - gm * sn * snf + (two * gm + one) * sn)
            t2 = sn * pg * (gm * gm * sn * spf - gm * sp * spf + (two * gm + one) * sp)
            # fisher: the Bernoulli information p q times the focal weights
            h[0] = wp * t1 + wn * t2 if hv == 0 else (wp * qg + wn * pg) * (sp * sn)
            return wp * qg * snf + wn * pg * spf
    elif tag_t is THuber:
        r_ = f - y
        ar = vabs(r_)
        t1 = r_ if r_ > -a else -a
        g[0] = t1 if t1 < a else a
        t2 = one if ar <= a else zero
        h[0] = one if hv != 0 else t2
        return half * r_ * r_ if ar <= a else a * (ar - half * a)
    elif tag_t is TPseudoHuber:
        dr = <double>f - <double>y
        dad = fabs(dr)
        dt = dad * (1.0 / <double>a)   # the reciprocal hoisted out of the loop
        ds = sqrt(1.0 + dt * dt)
        # |r| / delta so large that its square overflows: the limits
        g[0] = <floating>((a if dr >= 0 else -a) if ds == INFINITY else dr / ds)
        h[0] = <floating>((1.0 / (ds * ds * ds)) if hv == 0 else 1.0 / ds)
        return <floating>(<double>a * dad * (1.0 if ds == INFINITY else dt / (ds + 1.0)))
    elif tag_t is TLogCosh:
        # log cosh r = |r| + log1p(e^{-2|r|}) - log 2; tanh and sech^2 from the same e
        dr = <double>f - <double>y
        dad = fabs(dr)
        de = vexp_neg(-2.0 * dad)
        dq = 1.0 / (1.0 + de)
        ds = (1.0 - de) * dq
        g[0] = <floating>(ds if dr >= 0 else -ds)
        h[0] = <floating>(4.0 * de * dq * dq)
        return <floating>(dad + log1p_unit(de, dq) - 0.6931471805599453)
    elif tag_t is TFair:
        # c^2 (u - log1p(u)), u = |r| / c
        dr = <double>f - <double>y
        dad = fabs(dr)
        ds = dad + <double>a
        g[0] = <floating>(<double>a * dr / ds)
        h[0] = <floating>(<double>a * <double>a / (ds * ds))
        dt = dad * (1.0 / <double>a)   # the reciprocal hoisted out of the loop
        return <floating>(<double>a * <double>a * (dt - vlog1p(dt)))
    elif tag_t is TQuantile:
        # pinball at level a; the sub-gradient at r = 0 is LightGBM's (1 - a)
        r_ = f - y
        g[0] = one - a if r_ >= 0 else -a
        h[0] = one
        return (one - a) * r_ if r_ >= 0 else -a * r_
    elif tag_t is TPoisson:
        mu = vexp(f)
        g[0] = mu - y
        h[0] = mu if hv == 0 else vexp(f + a)
        return mu - y * f
    elif tag_t is TGamma:
        e = vexp(-f)
        g[0] = one - y * e
        h[0] = y * e
        return y * e + f
    elif tag_t is TTweedie:
        e1 = vexp((one - a) * f)
        e2 = vexp((two - a) * f)
        g[0] = e2 - y * e1
        h[0] = (two - a) * e2 - (one - a) * y * e1
        return e2 / (two - a) - y * e1 / (one - a)
    elif tag_t is TSqLog:
        # XGBoost's reg:squaredlogerror: the prediction clamped at -1 + 1e-6
        dr = <double>f
        dr = dr if dr > -1.0 + 1e-6 else -1.0 + 1e-6
        dt = log1p(dr) - log1p(<double>y)
        ds = 1.0 / (1.0 + dr)
        g[0] = <floating>(dt * ds)
        h[0] = <floating>((1.0 - dt) * ds * ds)
        return <floating>(0.5 * dt * dt)
    else:
        g[0] = 0
        h[0] = 0
        return 0


cdef inline floating focal_hard(floating f, floating y, floating a, floating b, floating gm,
                                bint fisher, bint square, floating* g,
                                floating* h) noexcept nogil:
    """gh_elem's focal for a label y in {0, 1}: only the label's own term,
    on z = f (y = 1) or z = -f (y = 0), one exp(-|z|), one log1p and one power.
    square (gm == 2, the usual gamma): the power is q * q, no second exp."""
    cdef floating one = 1, two = 2, zero = 0
    cdef bint pos = y != 0
    cdef floating z = f if pos else -f
    cdef floating wt = b if pos else a
    cdef floating sg = one if pos else -one
    cdef floating e = vexp_neg(-vabs(z))
    cdef floating r = one / (one + e)
    cdef floating p = r if z >= 0 else e * r        # sigma(z)
    cdef floating q = e * r if z >= 0 else r        # sigma(-z)
    cdef floating lp = log1p_unit(e, r)
    cdef floating spz = (z if z > 0 else zero) + lp  # -log q
    cdef floating snz = (-z if z < 0 else zero) + lp  # -log p
    cdef floating qg
    if square:
        qg = q * q
    else:
        qg = vexp_neg(-gm * spz)                    # q^gamma
        qg = one if gm == 0 else qg
    qg = wt * qg
    g[0] = -sg * qg * (gm * p * snz + q)
    h[0] = (qg * (p * q) if fisher
            else p * qg * (gm * gm * p * snz - gm * q * snz + (two * gm + one) * q))
    return qg * snz


cdef inline int bad_y(tag_t* tag, floating y) noexcept nogil:
    """Non-zero where the label is outside the loss's domain (NaN included).

    Integer flags: their sum may be reordered, so the counting loop
    vectorizes (a float count is summed in order, one lane at a time).
    Selects added, not `and`: Cython's short-circuit jumps stop the vectorizer.
    """
    cdef int lo, hi
    if tag_t is TLogistic or tag_t is TFocal:
        lo = 0 if y >= 0 else 1
        hi = 0 if y <= 1 else 1
        return lo + hi
    elif tag_t is TPoisson or tag_t is TTweedie:
        return 0 if y >= 0 else 1
    elif tag_t is TGamma:
        return 0 if y > 0 else 1
    elif tag_t is TSqLog:
        return 0 if y > -1 else 1
    else:
        return 0 if y == y else 1


# ----------------------------------------------------------- data movement

cdef inline const floating* planes_of(const floating* x, Py_ssize_t rs, Py_ssize_t cs,
                                      Py_ssize_t r0, Py_ssize_t nb, Py_ssize_t K,
                                      floating* buf, Py_ssize_t NB, const int32_t* tin,
                                      Py_ssize_t* ps, floating* mx) noexcept nogil:
    """Rows r0..r0+nb of x as planes: in place (ps = cs) when rows are
    adjacent (rs == 1 or K == 1), else transposed into buf (ps = NB), by
    the gather table `tin` for a full C-ordered block.  mx (or NULL): the
    row maxima, NaN passed over (-inf for a row of NaN)."""
    cdef Py_ssize_t j, k
    cdef const floating* xr
    cdef const floating* planes
    cdef floating v
    if rs == 1 or K == 1:
        ps[0] = cs
        planes = x + r0 * rs
    else:
        ps[0] = NB
        planes = buf
        if cs == 1 and rs == K and (K <= FL_TR_F32_MAX if floating is float
                                    else K <= FL_TR_F64_MAX):
            # C-ordered rows: through registers, the maxima taken there and
            # the next sub-block's rows requested
            rows_to_planes(x + r0 * rs, K, nb, buf, NB, x + (r0 + nb) * rs, mx)
            return buf
        if tin != NULL and nb == NB:
            gather(buf, x + r0 * rs, tin, K * NB)
        else:
            for k in range(K):
                xr = x + r0 * rs + k * cs
                for j in range(nb):
                    buf[k * NB + j] = xr[j * rs]
    if mx != NULL:
        # a select in the data's type: an `if` store is a branch per element
        for j in range(nb):
            mx[j] = -INFINITY
        for k in range(K):
            xr = planes + k * ps[0]
            for j in range(nb):
                v = xr[j]
                mx[j] = v if v > mx[j] else mx[j]
    return planes


cdef inline void put(void* out, bint f32, Py_ssize_t off, const void* src, Py_ssize_t m,
                     bint stream) noexcept nogil:
    if f32:
        if stream:
            fl_stream_f32(<float*>out + off, <const float*>src, m)
        else:
            memcpy(<float*>out + off, src, m * sizeof(float))
    else:
        if stream:
            fl_stream_f64(<double*>out + off, <const double*>src, m)
        else:
            memcpy(<double*>out + off, src, m * sizeof(double))


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
        if same and (K <= FL_TR_F32_MAX if floating is float else K <= FL_TR_F64_MAX):
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
                                        &ps, NULL)
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
    if tag_t is TFocal:
        # 0/1 labels (the usual case): one term per element instead of two
        for j in range(nb):
            soft += (0 if yb[j] == 0 else 1) * (0 if yb[j] == 1 else 1)
    for k in range(K):
        xk = xp + k * ps
        if P.col != NULL:
            a = <floating>P.col[k]
        if tag_t is TFocal and soft == 0:
            # one loop per (Hessian, gamma == 2): the flags are constants inside
            if fisher and c == 2:
                for j in range(nb):
                    L[k * NB + j] = focal_hard(xk[j], yb[j], a, b, c, True, True, &gg, &hh)
                    G[k * NB + j] = gg
                    H[k * NB + j] = hh
            elif fisher:
                for j in range(nb):
                    L[k * NB + j] = focal_hard(xk[j], yb[j], a, b, c, True, False, &gg, &hh)
                    G[k * NB + j] = gg
                    H[k * NB + j] = hh
            elif c == 2:
                for j in range(nb):
                    L[k * NB + j] = focal_hard(xk[j], yb[j], a, b, c, False, True, &gg, &hh)
                    G[k * NB + j] = gg
                    H[k * NB + j] = hh
            else:
                for j in range(nb):
                    L[k * NB + j] = focal_hard(xk[j], yb[j], a, b, c, False, False, &gg, &hh)
                    G[k * NB + j] = gg
                    H[k * NB + j] = hh
        else:
            for j in range(nb):
                L[k * NB + j] = gh_elem(tag, xk[j], yb[j], a, b, c, hv, &gg, &hh)
                G[k * NB + j] = gg
                H[k * NB + j] = hh
        finish_hess(G + k * NB, H + k * NB, L + k * NB, nb, wb, P.floor)
        s += lanes_sum(L + k * NB, nb)
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
                         and (K <= FL_TR_F32_MAX if floating is float else K <= FL_TR_F64_MAX))
    cdef Py_ssize_t firstbad = -1
    xp = planes_of(x, geo.xrs, geo.xcs, r0, nb, K, X, NB, geo.tin, &ps, fs)
    # labels: class ids held as floats (XGBoost/LightGBM) or soft rows
    if P.soft:
        tp = planes_of(y, geo.yrs, geo.ycs, r0, nb, K, Yb, NB, NULL, &ys, NULL)
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
    cdef Py_ssize_t j, k, trmax
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
    trmax = FL_TR_F32_MAX if isz == 4 else FL_TR_F64_MAX
    if K > trmax and geo.xcs == 1 and geo.xrs == K:
        tin = np.empty(K * geo.nb, dtype=np.int32)
        tin_v = tin
        for k in range(K):
            for j in range(geo.nb):
                tin_v[k * geo.nb + j] = <int32_t>(j * K + k)
        geo.tin = &tin_v[0]
    if geo.out_rows and K > trmax:
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
