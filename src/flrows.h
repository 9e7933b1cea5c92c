/*
 * flrows.h -- reductions over float rows, built on fastmath.h: the row
 * maximum, ordered float and double sums (lanes in registers), the
 * multi-margin row sum, |a - b + eps|^p sums and the soft-target
 * statistics.  The softmax pieces (sums of exp(x - shift) over rows and
 * class planes) are in flsoftmax.h.
 *
 * Written here rather than in Cython: gcc turns these C loops into vector
 * code for every target, with the lanes kept in registers, where the same
 * loops as Cython emits them stay scalar or spill.  Every sum is taken in
 * an order fixed by the row's length alone, so the bits do not depend on
 * how a caller splits its work.
 */
#ifndef FASTLOSS_FLROWS_H
#define FASTLOSS_FLROWS_H

#include "fastmath.h"
#include "flhalf.h"            /* fl_bf16_to_f32 */

/* max_i x_i (-inf for n = 0; NaN entries are passed over, as by the
 * comparisons of a scalar loop).  Written here rather than in Cython: gcc
 * turns these C loops into vector max instructions for every target, while
 * the same loop as Cython emits it stays scalar (one maxss per element).
 * 32 float / 16 double lanes: two 512-bit vectors in flight.  The lanes are
 * indexed by constants only (the tail goes through a padded buffer), so they
 * stay in registers, and are combined as a tree: a chain of 31 dependent
 * maxima, or lanes spilled to the stack and read back one by one, cost more
 * than the whole vector loop of a 100-element row.  Out of line: inlined
 * into a large kernel function (the half-precision rows' unit), gcc kept
 * the lanes on the stack, a store and a load per vector step. */
/* acc[k] = max(acc[k], acc[k + w]) for k < w: one level of the tree */
#define FL_MAX_HALF(acc, w)                                                 \
    for (int k_ = 0; k_ < (w); k_++)                                        \
        (acc)[k_] = (acc)[k_ + (w)] > (acc)[k_] ? (acc)[k_ + (w)] : (acc)[k_]

/* acc[k] += acc[k + w] for k < w: one level of a pairwise sum */
#define FL_SUM_HALF(acc, w)                                                 \
    for (int k_ = 0; k_ < (w); k_++)                                        \
        (acc)[k_] += (acc)[k_ + (w)]

/* FL_LANES_VEC: sums hold their lanes in the 32-byte vector types below
 * (GCC and clang on AVX targets); elsewhere the array forms serve. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX__)
#define FL_LANES_VEC 1
#else
#define FL_LANES_VEC 0
#endif

/* sum_i v_i of a float array in a fixed order: 32 float lanes over each
 * block of 512 values (16 terms a lane; the tail of the last block adds
 * one vector step, 0 past the end), each block's lanes added to 32 double
 * lanes, which are combined pairwise at the end.  The error is below 16
 * float eps (1e-6) of the sum of |v_i| per block, float64 beyond it; the
 * block structure depends on n alone, so the bits do not depend on how a
 * caller splits its work.  A double lane per value instead costs two
 * conversions and two adds a vector, 3 times the arithmetic of a squared
 * difference (mse's chunk). */
#if FL_LANES_VEC
typedef float fl_v8f __attribute__((vector_size(32)));
typedef double fl_v4d __attribute__((vector_size(32)));

/* lanes 0-3 and 4-7 of a float vector as doubles (exact), one vcvtps2pd
 * each (gcc's lowering of a shuffle and a conversion went through the
 * stack in two-lane pieces) */
#include <immintrin.h>
#define FL_V8F_LO(a) ((fl_v4d)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)(a))))
#define FL_V8F_HI(a) ((fl_v4d)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)(a), 1)))
/* 32 double lanes d0..d7 (4 each) += 32 float lanes a0..a3 (8 each) */
#define FL_D32_ADD(d, a0, a1, a2, a3)                                       \
    do {                                                                    \
        d##0 += FL_V8F_LO(a0);                                              \
        d##1 += FL_V8F_HI(a0);                                              \
        d##2 += FL_V8F_LO(a1);                                              \
        d##3 += FL_V8F_HI(a1);                                              \
        d##4 += FL_V8F_LO(a2);                                              \
        d##5 += FL_V8F_HI(a2);                                              \
        d##6 += FL_V8F_LO(a3);                                              \
        d##7 += FL_V8F_HI(a3);                                              \
    } while (0)

/* The lanes are vectors so that the 32 float and 32 double lanes stay in
 * registers: gcc keeps arrays of lanes on the stack, clears them with
 * `rep stos` at every block and folds them through memory, which costs
 * more than the adds of a 512-value chunk (half of mse's time on an
 * L1-resident chunk; this form takes 0.70x the time of that one).  The
 * additions and their order are the array form's below, lane by lane.
 * AVX only: the 12 vectors fill 16 registers there; SSE2 splits each in
 * two, and the spills made the form 1.0-1.1x the array form's time. */
FL_ALWAYS_INLINE double fl_chunk_sumf(const float *v, ptrdiff_t n)
{
    const fl_v8f z8 = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const fl_v4d z4 = {0.0, 0.0, 0.0, 0.0};
    fl_v4d d0 = z4, d1 = z4, d2 = z4, d3 = z4, d4 = z4, d5 = z4, d6 = z4, d7 = z4;
    ptrdiff_t i = 0;
    while (i < n) {
        ptrdiff_t stop = i + 512 < n ? i + 512 : n;
        fl_v8f a0 = z8, a1 = z8, a2 = z8, a3 = z8, x0, x1, x2, x3;
        for (; i + 32 <= stop; i += 32) {
            memcpy(&x0, v + i, sizeof x0);
            memcpy(&x1, v + i + 8, sizeof x1);
            memcpy(&x2, v + i + 16, sizeof x2);
            memcpy(&x3, v + i + 24, sizeof x3);
            a0 += x0;
            a1 += x1;
            a2 += x2;
            a3 += x3;
        }
        if (i < stop) {  /* one more step, 0 past the end */
            float t[32];
            ptrdiff_t m = stop - i;
            for (int k = 0; k < 32; k++)
                t[k] = k < m ? v[i + k] : 0.0f;
            memcpy(&x0, t, sizeof x0);
            memcpy(&x1, t + 8, sizeof x1);
            memcpy(&x2, t + 16, sizeof x2);
            memcpy(&x3, t + 24, sizeof x3);
            a0 += x0;
            a1 += x1;
            a2 += x2;
            a3 += x3;
            i = stop;
        }
        FL_D32_ADD(d, a0, a1, a2, a3);
    }
    /* pairwise: lane k += lane k + w for w = 16, 8, 4, 2, 1 */
    d0 += d4;
    d1 += d5;
    d2 += d6;
    d3 += d7;
    d0 += d2;
    d1 += d3;
    d0 += d1;
    return (d0[0] + d0[2]) + (d0[1] + d0[3]);
}
#else
FL_ALWAYS_INLINE double fl_chunk_sumf(const float *v, ptrdiff_t n)
{
    float acc[32];
    double dacc[32];
    ptrdiff_t i = 0;
    for (int k = 0; k < 32; k++)
        dacc[k] = 0.0;
    while (i < n) {
        ptrdiff_t stop = i + 512 < n ? i + 512 : n;
        for (int k = 0; k < 32; k++)
            acc[k] = 0.0f;
        for (; i + 32 <= stop; i += 32)
            for (int k = 0; k < 32; k++)
                acc[k] += v[i + k];
        if (i < stop) {
            ptrdiff_t m = stop - i;
            for (int k = 0; k < 32; k++)
                acc[k] += k < m ? v[i + k] : 0.0f;
            i = stop;
        }
        for (int k = 0; k < 32; k++)
            dacc[k] += (double)acc[k];
    }
    for (int w = 16; w >= 1; w /= 2)
        FL_SUM_HALF(dacc, w);
    return dacc[0];
}
#endif

/* sum_i v_i in double over 16 lanes (_common.pxd's lanes_sum, whose order
 * this is): lane k takes v_{16 j + k}, the values after the last 16 go to
 * lane 0 in order, lane k + 8 is added to lane k, and the 8 lanes are
 * summed ((0+1)+(2+3))+((4+5)+(6+7)).  The lanes are four vectors in
 * registers (the array form's rep stos clearing cost a row of 100 classes
 * as much as its sum). */
#if FL_LANES_VEC
#define FL_LANES_SUM(name, T, LOAD4)                                                  \
FL_ALWAYS_INLINE double name(const T *v, ptrdiff_t n)                                 \
{                                                                                     \
    fl_v4d a0 = {0.0, 0.0, 0.0, 0.0}, a1 = a0, a2 = a0, a3 = a0;                      \
    ptrdiff_t i = 0;                                                                  \
    for (; i + 16 <= n; i += 16) {                                                    \
        a0 += LOAD4(v + i);                                                           \
        a1 += LOAD4(v + i + 4);                                                       \
        a2 += LOAD4(v + i + 8);                                                       \
        a3 += LOAD4(v + i + 12);                                                      \
    }                                                                                 \
    double t = a0[0];                                                                 \
    for (; i < n; i++)                                                                \
        t += (double)v[i];                                                            \
    a0[0] = t;                                                                        \
    a0 += a2;                                                                         \
    a1 += a3;                                                                         \
    return ((a0[0] + a0[1]) + (a0[2] + a0[3])) + ((a1[0] + a1[1]) + (a1[2] + a1[3])); \
}
#define FL_LOAD4_F64(p) ((fl_v4d)_mm256_loadu_pd(p))
#define FL_LOAD4_F32(p) ((fl_v4d)_mm256_cvtps_pd(_mm_loadu_ps(p)))
FL_LANES_SUM(fl_lanes_sum_f64, double, FL_LOAD4_F64)
FL_LANES_SUM(fl_lanes_sum_f32, float, FL_LOAD4_F32)
#undef FL_LANES_SUM
#else
static inline double fl_lanes_sum_f64(const double *v, ptrdiff_t n)
{
    (void)v; (void)n;
    return 0.0;   /* not called: lanes_sum's own loop serves these targets */
}
static inline double fl_lanes_sum_f32(const float *v, ptrdiff_t n)
{
    (void)v; (void)n;
    return 0.0;
}
#endif

/* The multi-margin row sum (_margin.pyx's mm_row for float rows, whose
 * arithmetic and order this is): sum_j h_j^p, h_j = max(0, c0 + x_j),
 * p = 1 or 2, in 32 float lanes over blocks of 256 values, each block
 * added to 32 double lanes; the values after the last whole 32 go to
 * lane 0 in order; then lanes k + 16 and k + 8 are folded in and the 8
 * lanes summed ((0+1)+(2+3))+((4+5)+(6+7)).  gr (or NULL): gr_j = gf
 * [h_j > 0] (p = 1) or 2 gf h_j (p = 2).  On AVX the lanes are vectors in
 * registers (as arrays gcc cleared them with rep stos at every block and
 * row and folded them through memory: 15 % of a row of 1000).
 * fl_mm_rowbf: the same on a bfloat16 row, each value widened where it is
 * loaded (AVX2), so the row is read once in its own width instead of
 * being widened into a buffer first (FL_HAVE_MM_ROWBF). */
#if FL_LANES_VEC
/* 8 values of x from element i, float32 or (bf) bfloat16 widened */
FL_ALWAYS_INLINE fl_v8f fl_mm_load8(const void *x, ptrdiff_t i, int bf)
{
    fl_v8f v;
#if defined(__AVX2__)
    if (bf) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)x + i));
        return (fl_v8f)_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
#endif
    memcpy(&v, (const float *)x + i, sizeof v);
    return v;
}

FL_ALWAYS_INLINE fl_v8f fl_mm_h8(const void *x, ptrdiff_t i, int bf, fl_v8f c0)
{
    const fl_v8f z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    fl_v8f v = c0 + fl_mm_load8(x, i, bf);
    return (fl_v8f)_mm256_max_ps((__m256)v, (__m256)z);   /* v > 0 ? v : 0, NaN to 0 */
}

FL_ALWAYS_INLINE double fl_mm_row_body(const void *x, int bf, ptrdiff_t n, float c0, int p,
                                       float *gr, float gf)
{
    const fl_v8f z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, one = z + 1.0f;
    const fl_v8f cv = z + c0, g1 = z + gf, g2 = z + 2 * gf;
    const fl_v4d z4 = {0.0, 0.0, 0.0, 0.0};
    fl_v4d d0 = z4, d1 = z4, d2 = z4, d3 = z4, d4 = z4, d5 = z4, d6 = z4, d7 = z4;
    ptrdiff_t i = 0;
    while (i + 32 <= n) {
        ptrdiff_t stop = i + 256 < n ? i + 256 : n;
        fl_v8f a0 = z, a1 = z, a2 = z, a3 = z;
        for (; i + 32 <= stop; i += 32) {
            fl_v8f h0 = fl_mm_h8(x, i, bf, cv), h1 = fl_mm_h8(x, i + 8, bf, cv);
            fl_v8f h2 = fl_mm_h8(x, i + 16, bf, cv), h3 = fl_mm_h8(x, i + 24, bf, cv);
            if (p == 1) {
                a0 += h0;
                a1 += h1;
                a2 += h2;
                a3 += h3;
            } else {
                a0 += h0 * h0;
                a1 += h1 * h1;
                a2 += h2 * h2;
                a3 += h3 * h3;
            }
            if (gr != NULL) {
                fl_v8f q0, q1, q2, q3;
                if (p == 1) {
                    q0 = g1 * (fl_v8f)_mm256_and_ps(_mm256_cmp_ps((__m256)h0, (__m256)z, _CMP_GT_OQ), (__m256)one);
                    q1 = g1 * (fl_v8f)_mm256_and_ps(_mm256_cmp_ps((__m256)h1, (__m256)z, _CMP_GT_OQ), (__m256)one);
                    q2 = g1 * (fl_v8f)_mm256_and_ps(_mm256_cmp_ps((__m256)h2, (__m256)z, _CMP_GT_OQ), (__m256)one);
                    q3 = g1 * (fl_v8f)_mm256_and_ps(_mm256_cmp_ps((__m256)h3, (__m256)z, _CMP_GT_OQ), (__m256)one);
                } else {
                    q0 = g2 * h0;
                    q1 = g2 * h1;
                    q2 = g2 * h2;
                    q3 = g2 * h3;
                }
                memcpy(gr + i, &q0, sizeof q0);
                memcpy(gr + i + 8, &q1, sizeof q1);
                memcpy(gr + i + 16, &q2, sizeof q2);
                memcpy(gr + i + 24, &q3, sizeof q3);
            }
        }
        FL_D32_ADD(d, a0, a1, a2, a3);
    }
    double t = d0[0];
    for (; i < n; i++) {
        float xi = bf ? fl_bf16_to_f32(((const uint16_t *)x)[i]) : ((const float *)x)[i];
        float h = c0 + xi;
        h = h > 0 ? h : 0.0f;
        t += p == 1 ? h : h * h;
        if (gr != NULL)
            gr[i] = p == 1 ? (h > 0 ? gf : 0.0f) : 2 * gf * h;
    }
    d0[0] = t;
    d0 += d4;
    d1 += d5;
    d2 += d6;
    d3 += d7;
    d0 += d2;
    d1 += d3;
    return ((d0[0] + d0[1]) + (d0[2] + d0[3])) + ((d1[0] + d1[1]) + (d1[2] + d1[3]));
}

static inline double fl_mm_rowf(const float *x, ptrdiff_t n, float c0, int p, float *gr,
                                float gf)
{
    return fl_mm_row_body(x, 0, n, c0, p, gr, gf);
}
#else
static inline double fl_mm_rowf(const float *x, ptrdiff_t n, float c0, int p, float *gr,
                                float gf)
{
    (void)x; (void)n; (void)c0; (void)p; (void)gr; (void)gf;
    return 0.0;   /* not called: mm_row's own loop serves these targets */
}
#endif

#if FL_LANES_VEC && defined(__AVX2__)
#define FL_HAVE_MM_ROWBF 1
static inline double fl_mm_rowbf(const uint16_t *x, ptrdiff_t n, float c0, int p, float *gr,
                                 float gf)
{
    return fl_mm_row_body(x, 1, n, c0, p, gr, gf);
}
#else
#define FL_HAVE_MM_ROWBF 0
static inline double fl_mm_rowbf(const uint16_t *x, ptrdiff_t n, float c0, int p, float *gr,
                                 float gf)
{
    (void)x; (void)n; (void)c0; (void)p; (void)gr; (void)gf;
    return 0.0;   /* not called: the row is widened for mm_row */
}
#endif

static FL_NOINLINE float fl_row_maxf(const float *x, ptrdiff_t n)
{
    /* 64 lanes: four vectors of AVX-512 in flight, so the loop is not held
     * to one max's latency per two vectors (an L1-resident row: 0.047 ns a
     * value with 32 lanes) */
    float acc[64];
    ptrdiff_t i = 0;
    for (int k = 0; k < 64; k++)
        acc[k] = -INFINITY;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 64; k++) {
            float v = x[i + k];
            acc[k] = v > acc[k] ? v : acc[k];
        }
    if (i < n) {  /* the tail as one more step, -inf past the end */
        ptrdiff_t m = n - i;
        for (int k = 0; k < 64; k++) {
            float v = k < m ? x[i + k] : -INFINITY;
            acc[k] = v > acc[k] ? v : acc[k];
        }
    }
    FL_MAX_HALF(acc, 32);
    FL_MAX_HALF(acc, 16);
    FL_MAX_HALF(acc, 8);
    FL_MAX_HALF(acc, 4);
    FL_MAX_HALF(acc, 2);
    FL_MAX_HALF(acc, 1);
    return acc[0];
}

static FL_NOINLINE double fl_row_max(const double *x, ptrdiff_t n)
{
    double acc[16];
    ptrdiff_t i = 0;
    for (int k = 0; k < 16; k++)
        acc[k] = -INFINITY;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            double v = x[i + k];
            acc[k] = v > acc[k] ? v : acc[k];
        }
    if (i < n) {  /* the tail as one more vector step, -inf past the end */
        ptrdiff_t m = n - i;
        for (int k = 0; k < 16; k++) {
            double v = k < m ? x[i + k] : -INFINITY;
            acc[k] = v > acc[k] ? v : acc[k];
        }
    }
    FL_MAX_HALF(acc, 8);
    FL_MAX_HALF(acc, 4);
    FL_MAX_HALF(acc, 2);
    FL_MAX_HALF(acc, 1);
    return acc[0];
}

/* sum_i |a_i - b_i + eps|^p, p = 1 or 2, over float rows: 64 float
 * accumulators (four vector chains of 16; one chain is bound by the add
 * latency), folded in a fixed tree (chains 0+2 and 1+3, then 0+1, then
 * lanes k and k+8) and added in double every 2048 values; then the whole
 * 16-value vectors left in one chain (a row of 100 values would otherwise
 * leave 36 to a scalar chain, which cost 4x the rest of the row), and the
 * last values (under 16) in double.  GCC and clang get the chains as vector-extension variables: as
 * an array, gcc sometimes leaves them in memory (a store-forwarding chain
 * per add); the array version is the same arithmetic for other compilers. */
#if defined(__GNUC__) || defined(__clang__)
typedef float fl_f32x16 __attribute__((vector_size(64)));
typedef uint32_t fl_u32x16 __attribute__((vector_size(64)));

/* |a - b + e|^p for one vector of values at a and b, VT a float vector
 * type and UT the unsigned one of its size (a macro: a function returning a
 * 64-byte vector draws gcc's ABI note on builds without AVX-512) */
#define FL_DIFF_TERM(out, a, b, e, p, VT, UT)                                \
    do {                                                                    \
        VT va_, vb_;                                                        \
        memcpy(&va_, (a), sizeof va_);                                      \
        memcpy(&vb_, (b), sizeof vb_);                                      \
        va_ = va_ - vb_ + (e);                                              \
        (out) = (p) == 2 ? va_ * va_ : (VT)((UT)va_ & 0x7fffffffu);         \
    } while (0)
#define FL_DIFF_TERM16(out, a, b, e, p) FL_DIFF_TERM(out, a, b, e, p, fl_f32x16, fl_u32x16)
#endif

#if FL_LANES_VEC && !defined(__AVX512F__)
/* AVX2: each 16-lane chain as two 8-lane halves.  gcc splits a 64-byte
 * vector into two 32-byte ones itself, but then kept the chains on the
 * stack (a load and a store per add: triplet_margin_loss on (1024, 512)
 * rows spent 73 % of its time here); the halves are the same lanes and
 * the same arithmetic. */
#define FL_DIFF_HALVES 1
typedef uint32_t fl_u32x8 __attribute__((vector_size(32)));
#define FL_DIFF_TERM8(out, a, b, e, p) FL_DIFF_TERM(out, a, b, e, p, fl_v8f, fl_u32x8)
#endif

static inline double fl_fold16f(float *acc)
{
    FL_SUM_HALF(acc, 8);
    return (((double)acc[0] + acc[1]) + ((double)acc[2] + acc[3]))
           + (((double)acc[4] + acc[5]) + ((double)acc[6] + acc[7]));
}

static inline double fl_diff_sumf(const float *a, const float *b, ptrdiff_t n, float eps, int p)
{
    double total = 0.0;
    ptrdiff_t i = 0;
    float acc[16];
    while (i + 64 <= n) {
        ptrdiff_t len = (n - i) / 64 * 64, end = i + (len < 2048 ? len : 2048);
#if defined(FL_DIFF_HALVES)
        const fl_v8f z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        fl_v8f e = z + eps, c0l = z, c0h = z, c1l = z, c1h = z, c2l = z, c2h = z, c3l = z, c3h = z;
        for (; i < end; i += 64) {
            fl_v8f t0l, t0h, t1l, t1h, t2l, t2h, t3l, t3h;
            FL_DIFF_TERM8(t0l, a + i, b + i, e, p);
            FL_DIFF_TERM8(t0h, a + i + 8, b + i + 8, e, p);
            FL_DIFF_TERM8(t1l, a + i + 16, b + i + 16, e, p);
            FL_DIFF_TERM8(t1h, a + i + 24, b + i + 24, e, p);
            FL_DIFF_TERM8(t2l, a + i + 32, b + i + 32, e, p);
            FL_DIFF_TERM8(t2h, a + i + 40, b + i + 40, e, p);
            FL_DIFF_TERM8(t3l, a + i + 48, b + i + 48, e, p);
            FL_DIFF_TERM8(t3h, a + i + 56, b + i + 56, e, p);
            c0l += t0l;
            c0h += t0h;
            c1l += t1l;
            c1h += t1h;
            c2l += t2l;
            c2h += t2h;
            c3l += t3l;
            c3h += t3h;
        }
        c0l = (c0l + c2l) + (c1l + c3l);
        c0h = (c0h + c2h) + (c1h + c3h);
        memcpy(acc, &c0l, sizeof c0l);
        memcpy(acc + 8, &c0h, sizeof c0h);
#elif defined(__GNUC__) || defined(__clang__)
        fl_f32x16 e = {0}, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        e += eps;
        for (; i < end; i += 64) {
            fl_f32x16 t0, t1, t2, t3;
            FL_DIFF_TERM16(t0, a + i, b + i, e, p);
            FL_DIFF_TERM16(t1, a + i + 16, b + i + 16, e, p);
            FL_DIFF_TERM16(t2, a + i + 32, b + i + 32, e, p);
            FL_DIFF_TERM16(t3, a + i + 48, b + i + 48, e, p);
            c0 += t0;
            c1 += t1;
            c2 += t2;
            c3 += t3;
        }
        c0 = (c0 + c2) + (c1 + c3);
        memcpy(acc, &c0, sizeof acc);
#else
        float chains[64];
        for (int k = 0; k < 64; k++)
            chains[k] = 0.0f;
        for (; i < end; i += 64)
            for (int k = 0; k < 64; k++) {
                float v = a[i + k] - b[i + k] + eps;
                chains[k] += p == 2 ? v * v : fabsf(v);
            }
        for (int k = 0; k < 16; k++)
            acc[k] = (chains[k] + chains[k + 32]) + (chains[k + 16] + chains[k + 48]);
#endif
        total += fl_fold16f(acc);
    }
    if (i + 16 <= n) {
#if defined(FL_DIFF_HALVES)
        const fl_v8f z = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        fl_v8f e = z + eps, c0l = z, c0h = z;
        for (; i + 16 <= n; i += 16) {
            fl_v8f t0l, t0h;
            FL_DIFF_TERM8(t0l, a + i, b + i, e, p);
            FL_DIFF_TERM8(t0h, a + i + 8, b + i + 8, e, p);
            c0l += t0l;
            c0h += t0h;
        }
        memcpy(acc, &c0l, sizeof c0l);
        memcpy(acc + 8, &c0h, sizeof c0h);
#elif defined(__GNUC__) || defined(__clang__)
        fl_f32x16 e = {0}, c0 = {0};
        e += eps;
        for (; i + 16 <= n; i += 16) {
            fl_f32x16 t0;
            FL_DIFF_TERM16(t0, a + i, b + i, e, p);
            c0 += t0;
        }
        memcpy(acc, &c0, sizeof acc);
#else
        for (int k = 0; k < 16; k++)
            acc[k] = 0.0f;
        for (; i + 16 <= n; i += 16)
            for (int k = 0; k < 16; k++) {
                float v = a[i + k] - b[i + k] + eps;
                acc[k] += p == 2 ? v * v : fabsf(v);
            }
#endif
        total += fl_fold16f(acc);
    }
    for (; i < n; i++) {
        float v = a[i] - b[i] + eps;
        total += p == 2 ? (double)v * v : fabs((double)v);
    }
    return total;
}

/* The soft-target cross-entropy's row sums over float rows:
 * A = sum_c a_c and D = sum_c a_c x_c with a_c = w_c (keep t_c + epc) (w may
 * be NULL), in double, 16 lanes (two vector chains each; in a loop with a
 * per-element test of w gcc left them scalar), folded in a fixed tree. */
static inline void fl_soft_statsf(const float *x, const float *t, const double *w, double keep,
                                  double epc, ptrdiff_t n, double *A, double *D)
{
    double a_acc[16], d_acc[16];
    ptrdiff_t i = 0;
#if defined(FL_DIFF_HALVES)
    /* AVX2: the 16 double lanes of each sum as four 4-lane vectors (as
     * fl_diff_sumf's halves: 8-lane double vectors stayed on the stack) */
    const fl_v4d z = {0.0, 0.0, 0.0, 0.0};
    const fl_v4d kk = z + keep, ee = z + epc;
    fl_v4d a[4] = {z, z, z, z}, d[4] = {z, z, z, z};
    for (; i + 16 <= n; i += 16) {
        for (int h = 0; h < 2; h++) {
            fl_v8f th, xh;
            memcpy(&th, t + i + 8 * h, sizeof th);
            memcpy(&xh, x + i + 8 * h, sizeof xh);
            fl_v4d c0 = FL_V8F_LO(th) * kk + ee;
            fl_v4d c1 = FL_V8F_HI(th) * kk + ee;
            if (w != NULL) {
                fl_v4d w0, w1;
                memcpy(&w0, w + i + 8 * h, sizeof w0);
                memcpy(&w1, w + i + 8 * h + 4, sizeof w1);
                c0 *= w0;
                c1 *= w1;
            }
            a[2 * h] += c0;
            a[2 * h + 1] += c1;
            d[2 * h] += c0 * FL_V8F_LO(xh);
            d[2 * h + 1] += c1 * FL_V8F_HI(xh);
        }
    }
    memcpy(a_acc, a, sizeof a);
    memcpy(d_acc, d, sizeof d);
#elif defined(__GNUC__) || defined(__clang__)
    typedef double f64x8 __attribute__((vector_size(64)));
    typedef float f32x8 __attribute__((vector_size(32)));
    f64x8 a0 = {0}, a1 = {0}, d0 = {0}, d1 = {0}, kk = {0}, ee = {0};
    kk += keep;
    ee += epc;
    for (; i + 16 <= n; i += 16) {
        f32x8 t0, t1, x0, x1;
        memcpy(&t0, t + i, sizeof t0);
        memcpy(&t1, t + i + 8, sizeof t1);
        memcpy(&x0, x + i, sizeof x0);
        memcpy(&x1, x + i + 8, sizeof x1);
        f64x8 c0 = __builtin_convertvector(t0, f64x8) * kk + ee;
        f64x8 c1 = __builtin_convertvector(t1, f64x8) * kk + ee;
        if (w != NULL) {
            f64x8 w0, w1;
            memcpy(&w0, w + i, sizeof w0);
            memcpy(&w1, w + i + 8, sizeof w1);
            c0 *= w0;
            c1 *= w1;
        }
        a0 += c0;
        a1 += c1;
        d0 += c0 * __builtin_convertvector(x0, f64x8);
        d1 += c1 * __builtin_convertvector(x1, f64x8);
    }
    memcpy(a_acc, &a0, sizeof a0);
    memcpy(a_acc + 8, &a1, sizeof a1);
    memcpy(d_acc, &d0, sizeof d0);
    memcpy(d_acc + 8, &d1, sizeof d1);
#else
    for (int k = 0; k < 16; k++)
        a_acc[k] = d_acc[k] = 0.0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            double c = ((double)t[i + k] * keep + epc) * (w != NULL ? w[i + k] : 1.0);
            a_acc[k] += c;
            d_acc[k] += c * (double)x[i + k];
        }
#endif
    for (; i < n; i++) {
        double c = ((double)t[i] * keep + epc) * (w != NULL ? w[i] : 1.0);
        a_acc[0] += c;
        d_acc[0] += c * (double)x[i];
    }
    FL_SUM_HALF(a_acc, 8);
    FL_SUM_HALF(a_acc, 4);
    FL_SUM_HALF(a_acc, 2);
    FL_SUM_HALF(d_acc, 8);
    FL_SUM_HALF(d_acc, 4);
    FL_SUM_HALF(d_acc, 2);
    *A = a_acc[0] + a_acc[1];
    *D = d_acc[0] + d_acc[1];
}

#endif /* FASTLOSS_FLROWS_H */
