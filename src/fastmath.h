/*
 * fastmath.h -- branch-free exp and log that gcc vectorizes.
 *
 * libm's expf/logf are scalar calls (about 4 ns each here); inside a loop
 * they stop the vectorizer.  These versions are static inline, use only
 * arithmetic, integer bit moves and selects between already computed values,
 * so gcc turns a loop that calls them into AVX2 (x86-64-v3) or SSE2
 * (baseline) code.  Compile with -fno-trapping-math so the selects become
 * blends; never with -ffast-math (it drops the NaN/inf handling below).
 *
 * Algorithms (standard; the log coefficients are the published Cephes ones,
 * the float exp and unit-log1p polynomials are least-squares fits made for
 * this file, checked by the ulp sweeps in tests/test_fastmath.py):
 *   exp:  n = round(x / ln2) with the 1.5 * 2^p "magic number" add,
 *         r = x - n ln2 in two parts (Cody-Waite), exp(r) by a polynomial
 *         on |r| <= ln2 / 2 (float: 1 + r + r^2 P(r), P of degree 4 fitted
 *         here; double: Taylor to r^13, truncation 4e-18), result scaled by
 *         2^(n/2) * 2^(n - n/2) so
 *         that the top of the range stays exact.  Results that would be
 *         subnormal (x < -87.34 in float, < -708.40 in double) are 0: a
 *         subnormal costs a microcode assist per element (speed over an
 *         absolute error below 1.2e-38 / 2.3e-308).
 *   log:  x = m 2^e with m in [sqrt(1/2), sqrt(2)), subnormals rescaled by
 *         2^24 first; float: Cephes logf polynomial in f = m - 1;
 *         double: 2 atanh(s), s = (m - 1)/(m + 1), series to s^23.
 *   log1p(y): u = 1 + y, log(u) + (y - (u - 1)) / u (the rounding of u is
 *         corrected to first order).
 *   log1p on [0, 1] (float; the softplus tail log(1 + exp(-|x|))):
 *         e + e^2 R(e), R a degree-8 polynomial fitted on [0, 1] (Estrin):
 *         no division, no bit moves, no special values.
 *   exp_lo: the same with 2^n as one factor, for arguments that are at
 *         most 0 unless a shift was infinite (softmax); exp_neg: for
 *         arguments at most 0 (the softplus and sigmoid tails exp(-|x|)).
 * Special values follow C99 (but for the subnormal flush): exp(-inf) = 0,
 * exp(+inf) = inf, log(0) = -inf, log(x < 0) = NaN, log(inf) = inf,
 * NaN in -> NaN out.
 *
 * Measured worst error against glibc (tests/test_fastmath.py: 2^23 random
 * float32 bit patterns, every float32 in [0.5, 2) and around the exp
 * cut-offs, 2^21 random doubles; fl_expf was also swept once over every
 * float32 in [-87.33, 88.7]): fl_expf <= 1 ulp, fl_logf <= 1 ulp,
 * fl_exp <= 2 ulp, fl_log <= 2 ulp, fl_log1p_unitf <= 1 ulp with FMA
 * (x86-64-v3 and up; without FMA, on SSE2, 2 ulp at a few hundred of the
 * 2^30 float32 in [0, 1]).
 */
#ifndef FASTLOSS_FASTMATH_H
#define FASTLOSS_FASTMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

/* Bytes in the widest vectors this build's -march gives gcc: 64 with
 * AVX-512, 32 with AVX, else 16 (SSE2, NEON).  Loops that do better split
 * in two passes where vectors are short read it (see _elementwise.pyx). */
#if defined(__AVX512F__)
#define FL_VECTOR_BYTES 64
#elif defined(__AVX__)
#define FL_VECTOR_BYTES 32
#else
#define FL_VECTOR_BYTES 16
#endif

/* The element functions below are always inlined: a loop over elements is
 * vectorized only with their bodies in it, and in a large kernel gcc's
 * inlining heuristics can leave one out of line, which leaves the loop
 * calling it one element at a time. */
#if defined(__GNUC__) || defined(__clang__)
#define FL_NOINLINE __attribute__((noinline))
#define FL_ALWAYS_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FL_NOINLINE __declspec(noinline)
#define FL_ALWAYS_INLINE static __forceinline
#else
#define FL_NOINLINE
#define FL_ALWAYS_INLINE static inline
#endif

/* C99's restrict under a name every compiler of the package accepts */
#if defined(__GNUC__) || defined(__clang__)
#define FL_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define FL_RESTRICT __restrict
#else
#define FL_RESTRICT
#endif

/* A hint to bring the cache line of p closer (never faults, so p may lie
 * past the end of an array). */
#if defined(__GNUC__) || defined(__clang__)
#define FL_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define FL_PREFETCH(p) ((void)(p))
#endif
/* The same hint with locality 0: data read once more soon and then not
 * again (the EDT's strided rows, the distance losses' class planes). */
#if defined(__GNUC__) || defined(__clang__)
#define FL_PREFETCH_NTA(p) __builtin_prefetch((p), 0, 0)
#else
#define FL_PREFETCH_NTA(p) ((void)(p))
#endif

/* 1 on an AMD CPU (gcc's CPU model), else 0, for the requests ahead whose
 * worth was measured to differ by maker (_seg_blocks.pxd's class planes).
 * Read once when a module loads (fl_cpu_amd_init), so that threads only
 * read it. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int fl_cpu_amd_ = 0;
static inline void fl_cpu_amd_init(void)
{
    __builtin_cpu_init();
    fl_cpu_amd_ = __builtin_cpu_is("amd") != 0;
}
#else
static const int fl_cpu_amd_ = 0;
static inline void fl_cpu_amd_init(void) {}
#endif
static inline int fl_cpu_amd(void)
{
    return fl_cpu_amd_;
}

/* a b + c with one rounding where the target has FMA, two without.  gcc
 * contracts a b + c on its own, but may decide differently in a loop's
 * vector body and in its scalar copy (remainders, the fallback taken when
 * an output lies within a vector of an input), for instance where a select
 * sits between the product and the sum: spelt out, a formula rounds alike in
 * every copy, so its result does not depend on an element's position or on
 * where the arrays lie. */
#if defined(__FMA__) && (defined(__GNUC__) || defined(__clang__))
#define fl_fmaf(a, b, c) __builtin_fmaf((a), (b), (c))
#define fl_fma(a, b, c) __builtin_fma((a), (b), (c))
#else
FL_ALWAYS_INLINE float fl_fmaf(float a, float b, float c) { return a * b + c; }
FL_ALWAYS_INLINE double fl_fma(double a, double b, double c) { return a * b + c; }
#endif

FL_ALWAYS_INLINE uint32_t fl_f2u(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
FL_ALWAYS_INLINE float fl_u2f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
FL_ALWAYS_INLINE uint64_t fl_d2u(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
FL_ALWAYS_INLINE double fl_u2d(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* ------------------------------------------------------------------ exp */

/* The reduction x = n ln2 + r, |r| <= ln2 / 2 (x already clamped): returns
 * r; *t receives x log2(e) + 1.5 2^23, whose low bits hold n. */
FL_ALWAYS_INLINE float fl_expf_reduce(float x, float *t)
{
    const float magic = 12582912.0f;               /* 1.5 * 2^23 */
    float tt = x * 1.44269504088896341f + magic;
    float n = tt - magic;
    float r = x - n * 0.693359375f;
    *t = tt;
    return r - n * -2.12194440e-4f;
}

/* exp(r) for |r| <= ln2 / 2: 1 + r + r^2 P(r), P of degree 4 fitted to
 * (exp(r) - 1 - r) / r^2 (relative error of exp 3e-9), in Estrin's scheme
 * (see fl_logf_poly) */
FL_ALWAYS_INLINE float fl_expf_poly(float r)
{
    float z = r * r;
    float p01 = 4.9999994040e-01f + r * 1.6666521132e-01f;
    float p23 = 4.1668385267e-02f + r * 8.3687184379e-03f;
    float p = p01 + z * (p23 + z * 1.3814716367e-03f);
    return p * z + r + 1.0f;
}

/* exp(r) for the reduction of x; *t as fl_expf_reduce's */
FL_ALWAYS_INLINE float fl_expf_reduced(float x, float *t)
{
    return fl_expf_poly(fl_expf_reduce(x, t));
}

FL_ALWAYS_INLINE float fl_expf(float x0)
{
    /* Results below FLT_MIN are flushed to 0: computing a subnormal costs a
     * microcode assist per element on many CPUs (100x slower), and softmax
     * weights below 1.2e-38 change no sum.  NaN passes both selects. */
    float x = x0 < -87.33654f ? -87.33654f : x0;
    x = x > 89.0f ? 89.0f : x;                     /* above: result inf */
    float t;
    float p = fl_expf_reduced(x, &t);
    int32_t ni = (int32_t)(fl_f2u(t) - fl_f2u(12582912.0f));
    /* 2^n as two normal factors so that n = 128 (x near 88.7) stays finite */
    int32_t h = ni >> 1;
    float s1 = fl_u2f((uint32_t)(h + 127) << 23);
    float s2 = fl_u2f((uint32_t)(ni - h + 127) << 23);
    float res = p * s1 * s2;
    return x0 < -87.33654f ? 0.0f : res;
}

/* 2^n for t = n + 1.5 2^23 (fl_expf_reduced's *t), n in [-126, 128]: the
 * bits (n + 127) << 23, so n = 128 gives +inf.  2 integer operations. */
FL_ALWAYS_INLINE float fl_pow2nf(float t)
{
    return fl_u2f((fl_f2u(t) - (fl_f2u(12582912.0f) - 127u)) << 23);
}

#if defined(__AVX512F__)
#include <immintrin.h>
/* fl_expf_lo of 16 lanes with AVX-512's vscalefps: the same reduction and
 * polynomial, then p 2^n in one instruction, which also keeps the final
 * select in its zero-mask; 14 arithmetic instructions a vector where gcc
 * makes 17 of the scalar form (vector exp sum over an L1 buffer: 0.148
 * against 0.20 ns per element).  Every result is fl_expf_lo's bit for bit
 * where x <= 88.37 (n <= 127) or NaN; above, fl_expf_lo's 2^128 is +inf
 * and p 2^128 may be finite: `hi` makes those +inf too (2 instructions),
 * for callers whose arguments can exceed 0 (a shift that is not the
 * maximum, when the maximum is +inf).  The clamp at 89 is vminps with 89
 * first, which passes NaN as fl_expf_lo's select does. */
FL_ALWAYS_INLINE __m512 fl_expf_lo16(__m512 x0, const int hi)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 x = _mm512_min_ps(_mm512_set1_ps(89.0f), x0);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic),
                             magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 p01 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.6666521132e-01f),
                                 _mm512_set1_ps(4.9999994040e-01f));
    __m512 p23 = _mm512_fmadd_ps(r, _mm512_set1_ps(8.3687184379e-03f),
                                 _mm512_set1_ps(4.1668385267e-02f));
    __m512 p = _mm512_fmadd_ps(z, _mm512_fmadd_ps(z, _mm512_set1_ps(1.3814716367e-03f), p23),
                               p01);
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0f));
    __mmask16 keep = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(-87.33654f), _CMP_NLT_UQ);
    __m512 res = _mm512_maskz_scalef_ps(keep, e, n);
    if (hi)
        res = _mm512_mask_mov_ps(res, _mm512_cmp_ps_mask(n, _mm512_set1_ps(127.5f), _CMP_GT_OQ),
                                 _mm512_set1_ps(INFINITY));
    return res;
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* fl_expf_lo of 8 lanes, bit for bit everywhere (2^n from the exponent
 * bits, as fl_pow2nf: n = 128 is +inf, so no fix-up above 88.37).  gcc
 * vectorizes fl_expf_lo's upper clamp as a compare and a blend and its
 * final select as another pair; written here they are vminps (89 first, so
 * NaN passes) and a compare with an and.  Vector exp sum over an L1 buffer
 * on an AMD EPYC (Zen 3): 0.30 against 0.34 ns per element. */
#define FL_HAVE_EXPF_LO8 1
FL_ALWAYS_INLINE __m256 fl_expf_lo8(__m256 x0)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 x = _mm256_min_ps(_mm256_set1_ps(89.0f), x0);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 p01 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.6666521132e-01f),
                                 _mm256_set1_ps(4.9999994040e-01f));
    __m256 p23 = _mm256_fmadd_ps(r, _mm256_set1_ps(8.3687184379e-03f),
                                 _mm256_set1_ps(4.1668385267e-02f));
    __m256 p = _mm256_fmadd_ps(z, _mm256_fmadd_ps(z, _mm256_set1_ps(1.3814716367e-03f), p23),
                               p01);
    __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0f));
    __m256i b = _mm256_slli_epi32(
        _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000 - 127)), 23);
    __m256 keep = _mm256_cmp_ps(x0, _mm256_set1_ps(-87.33654f), _CMP_NLT_UQ);
    return _mm256_and_ps(keep, _mm256_mul_ps(e, _mm256_castsi256_ps(b)));
}
#endif

/* exp for the arguments of softmax (x - max <= 0, or anything when the max
 * was not finite), with 2^n as one factor: exact as fl_expf up to
 * x = 88.37, +inf above (exp itself overflows from 88.72).  No lower clamp:
 * below -87.34 the result is the final select's 0, whatever the reduction
 * made of x (a select costs 4 instructions on SSE2).  The scale takes 2
 * integer operations and 1 multiply instead of 7 and 2.  The final select
 * tests the unclamped x0 (folding this into fl_expf_neg(clamp(x)) made
 * logsumexp 4 % slower). */
FL_ALWAYS_INLINE float fl_expf_lo(float x0)
{
    float x = x0 > 89.0f ? 89.0f : x0;
    float t;
    float res = fl_expf_reduced(x, &t) * fl_pow2nf(t);
    return x0 < -87.33654f ? 0.0f : res;
}

/* fl_expf_lo without the upper clamp, for x <= 0 and NaN (the softplus and
 * sigmoid tails exp(-|x|)). */
FL_ALWAYS_INLINE float fl_expf_neg(float x)
{
    float t;
    float res = fl_expf_reduced(x, &t) * fl_pow2nf(t);
    return x < -87.33654f ? 0.0f : res;
}

/* fl_expf_neg in two halves, for a loop that runs them as two passes over a
 * buffer (two short dependency chains instead of one long one; see
 * _elementwise.pyx): s = fl_expf_neg_scale(x, &r), then fl_expf_poly(r) * s
 * equals fl_expf_neg(x).  The scale is 0 where the result flushes to 0; x is
 * clamped first so that r stays finite there (at x = -inf the reduction
 * gives NaN, and NaN * 0 would not be 0). */
FL_ALWAYS_INLINE float fl_expf_neg_scale(float x, float *r)
{
    float t;
    *r = fl_expf_reduce(x < -88.0f ? -88.0f : x, &t);
    return x < -87.33654f ? 0.0f : fl_pow2nf(t);
}

/* As fl_expf_reduced, in double (Taylor to r^13, truncation 4e-18). */
FL_ALWAYS_INLINE double fl_exp_reduced(double x, double *t)
{
    const double magic = 6755399441055744.0;       /* 1.5 * 2^52 */
    double tt = x * 1.4426950408889634074 + magic;
    double n = tt - magic;
    double r = x - n * 6.93147180369123816490e-1;  /* ln2 high part */
    r = r - n * 1.90821492927058770002e-10;        /* ln2 low part */
    double p = 1.0 / 6227020800.0;                 /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    *t = tt;
    return p * (r * r) + r + 1.0;
}

FL_ALWAYS_INLINE double fl_exp(double x0)
{
    /* subnormal results flushed to 0, as in fl_expf */
    double x = x0 < -708.3964 ? -708.3964 : x0;
    x = x > 720.0 ? 720.0 : x;
    double t;
    double p = fl_exp_reduced(x, &t);
    int64_t ni = (int64_t)(fl_d2u(t) - fl_d2u(6755399441055744.0));
    /* floor(n / 2) with a logical shift (AVX2 has no 64-bit arithmetic
     * shift): n + 2048 is positive for every n reached here */
    int64_t h = (int64_t)((uint64_t)(ni + 2048) >> 1) - 1024;
    double s1 = fl_u2d((uint64_t)(h + 1023) << 52);
    double s2 = fl_u2d((uint64_t)(ni - h + 1023) << 52);
    double res = p * s1 * s2;
    return x0 < -708.3964 ? 0.0 : res;
}

/* As fl_pow2nf, in double: n in [-1022, 1024]. */
FL_ALWAYS_INLINE double fl_pow2n(double t)
{
    return fl_u2d((fl_d2u(t) - (fl_d2u(6755399441055744.0) - 1023u)) << 52);
}

/* As fl_expf_lo, in double: exact as fl_exp up to x = 709.43, +inf above
 * (the clamp at 709.9 keeps n <= 1024, the exponent field of +inf). */
FL_ALWAYS_INLINE double fl_exp_lo(double x0)
{
    double x = x0 > 709.9 ? 709.9 : x0;
    double t;
    double res = fl_exp_reduced(x, &t) * fl_pow2n(t);
    return x0 < -708.3964 ? 0.0 : res;
}

/* As fl_expf_neg, in double: x <= 0 and NaN. */
FL_ALWAYS_INLINE double fl_exp_neg(double x)
{
    double t;
    double res = fl_exp_reduced(x, &t) * fl_pow2n(t);
    return x < -708.3964 ? 0.0 : res;
}

/* ------------------------------------------------------------------ log */

/* Cephes logf: log(1 + f) - f + f^2 / 2 = f^3 P(f) for f in
 * [sqrt(1/2) - 1, sqrt(2) - 1); P (degree 8) in Estrin's scheme: a
 * dependency chain of 4 multiply-adds instead of Horner's 9, which matters
 * where a multiply-add is two instructions (SSE2) */
FL_ALWAYS_INLINE float fl_logf_poly(float f)
{
    float f2 = f * f;
    float f4 = f2 * f2;
    float p01 = 3.3333331174e-1f + f * -2.4999993993e-1f;
    float p23 = 2.0000714765e-1f + f * -1.6668057665e-1f;
    float p45 = 1.4249322787e-1f + f * -1.2420140846e-1f;
    float p67 = 1.1676998740e-1f + f * -1.1514610310e-1f;
    float p03 = p01 + f2 * p23;
    float p48 = p45 + f2 * p67 + f4 * 7.0376836292e-2f;
    return (p03 + f4 * p48) * f * f2;
}

FL_ALWAYS_INLINE float fl_logf(float x0)
{
    /* rescale subnormals */
    int32_t sub = x0 < 1.17549435e-38f;
    float x = sub ? x0 * 16777216.0f : x0;
    uint32_t u = fl_f2u(x);
    /* e such that m = x / 2^e lies in [sqrt(1/2), sqrt(2)) */
    int32_t e = (int32_t)((u - 0x3f3504f3u) & 0xff800000u) >> 23;
    float m = fl_u2f(u - ((uint32_t)e << 23));
    float ef = (float)(e - (sub ? 24 : 0));
    float f = m - 1.0f;
    float z = f * f;
    float y = fl_logf_poly(f);
    y = y + ef * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = f + y + ef * 0.693359375f;
    /* special values: 0 -> -inf, < 0 or NaN -> NaN, inf -> inf */
    r = x0 == 0.0f ? -INFINITY : r;
    r = x0 < 0.0f ? NAN : r;
    r = x0 == INFINITY ? INFINITY : r;
    r = x0 != x0 ? x0 : r;
    return r;
}

#if defined(__AVX512F__)
/* fl_logf of 16 lanes: for normal, positive, finite x its operations as
 * intrinsics (the multiply-adds where gcc contracts the scalar form), so
 * the same bits, in 27 instructions where gcc makes about 55 of the
 * vectorized scalar form with its subnormal rescale and four special-value
 * selects; lanes outside that range (rare where it is used: sums of
 * exponentials, >= 1 unless NaN or +inf) take fl_logf lane by lane. */
FL_ALWAYS_INLINE __m512 fl_logf16(__m512 x0)
{
    const __mmask16 odd =
        _mm512_cmp_ps_mask(x0, _mm512_set1_ps(1.17549435e-38f), _CMP_NGE_UQ) |
        _mm512_cmp_ps_mask(x0, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
    const __m512i u = _mm512_castps_si512(x0);
    const __m512i e = _mm512_srai_epi32(
        _mm512_and_si512(_mm512_sub_epi32(u, _mm512_set1_epi32(0x3f3504f3)),
                         _mm512_set1_epi32((int)0xff800000u)),
        23);
    const __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(u, _mm512_slli_epi32(e, 23)));
    const __m512 ef = _mm512_cvtepi32_ps(e);
    const __m512 f = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
    const __m512 z = _mm512_mul_ps(f, f);
    /* fl_logf_poly */
    const __m512 f4 = _mm512_mul_ps(z, z);
    const __m512 p01 = _mm512_fmadd_ps(f, _mm512_set1_ps(-2.4999993993e-1f),
                                       _mm512_set1_ps(3.3333331174e-1f));
    const __m512 p23 = _mm512_fmadd_ps(f, _mm512_set1_ps(-1.6668057665e-1f),
                                       _mm512_set1_ps(2.0000714765e-1f));
    const __m512 p45 = _mm512_fmadd_ps(f, _mm512_set1_ps(-1.2420140846e-1f),
                                       _mm512_set1_ps(1.4249322787e-1f));
    const __m512 p67 = _mm512_fmadd_ps(f, _mm512_set1_ps(-1.1514610310e-1f),
                                       _mm512_set1_ps(1.1676998740e-1f));
    const __m512 p03 = _mm512_fmadd_ps(z, p23, p01);
    const __m512 p48 = _mm512_fmadd_ps(f4, _mm512_set1_ps(7.0376836292e-2f),
                                       _mm512_fmadd_ps(z, p67, p45));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_fmadd_ps(f4, p48, p03), f), z);
    y = _mm512_fmadd_ps(ef, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
    __m512 r = _mm512_fmadd_ps(ef, _mm512_set1_ps(0.693359375f), _mm512_add_ps(f, y));
    if (odd) {
        float xv[16], rv[16];
        _mm512_storeu_ps(xv, x0);
        _mm512_storeu_ps(rv, r);
        for (int i = 0; i < 16; i++)
            if (odd >> i & 1)
                rv[i] = fl_logf(xv[i]);
        r = _mm512_loadu_ps(rv);
    }
    return r;
}
#elif defined(__AVX2__) && defined(__FMA__)
/* fl_logf16 on 8 lanes (AVX2 + FMA builds): the same operations, the same
 * bits as fl_logf; lanes outside the normal positive finite range take
 * fl_logf lane by lane. */
#define FL_HAVE_LOGF8 1
FL_ALWAYS_INLINE __m256 fl_logf8(__m256 x0)
{
    const int odd = _mm256_movemask_ps(_mm256_or_ps(
        _mm256_cmp_ps(x0, _mm256_set1_ps(1.17549435e-38f), _CMP_NGE_UQ),
        _mm256_cmp_ps(x0, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ)));
    const __m256i u = _mm256_castps_si256(x0);
    const __m256i e = _mm256_srai_epi32(
        _mm256_and_si256(_mm256_sub_epi32(u, _mm256_set1_epi32(0x3f3504f3)),
                         _mm256_set1_epi32((int)0xff800000u)),
        23);
    const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(u, _mm256_slli_epi32(e, 23)));
    const __m256 ef = _mm256_cvtepi32_ps(e);
    const __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
    const __m256 z = _mm256_mul_ps(f, f);
    /* fl_logf_poly */
    const __m256 f4 = _mm256_mul_ps(z, z);
    const __m256 p01 = _mm256_fmadd_ps(f, _mm256_set1_ps(-2.4999993993e-1f),
                                       _mm256_set1_ps(3.3333331174e-1f));
    const __m256 p23 = _mm256_fmadd_ps(f, _mm256_set1_ps(-1.6668057665e-1f),
                                       _mm256_set1_ps(2.0000714765e-1f));
    const __m256 p45 = _mm256_fmadd_ps(f, _mm256_set1_ps(-1.2420140846e-1f),
                                       _mm256_set1_ps(1.4249322787e-1f));
    const __m256 p67 = _mm256_fmadd_ps(f, _mm256_set1_ps(-1.1514610310e-1f),
                                       _mm256_set1_ps(1.1676998740e-1f));
    const __m256 p03 = _mm256_fmadd_ps(z, p23, p01);
    const __m256 p48 = _mm256_fmadd_ps(f4, _mm256_set1_ps(7.0376836292e-2f),
                                       _mm256_fmadd_ps(z, p67, p45));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_fmadd_ps(f4, p48, p03), f), z);
    y = _mm256_fmadd_ps(ef, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    __m256 r = _mm256_fmadd_ps(ef, _mm256_set1_ps(0.693359375f), _mm256_add_ps(f, y));
    if (odd) {
        float xv[8], rv[8];
        _mm256_storeu_ps(xv, x0);
        _mm256_storeu_ps(rv, r);
        for (int i = 0; i < 8; i++)
            if (odd >> i & 1)
                rv[i] = fl_logf(xv[i]);
        r = _mm256_loadu_ps(rv);
    }
    return r;
}
#endif

FL_ALWAYS_INLINE double fl_log(double x0)
{
    int64_t sub = x0 < 2.2250738585072014e-308;
    double x = sub ? x0 * 18014398509481984.0 : x0;   /* 2^54 */
    uint64_t u = fl_d2u(x);
    /* exponent field, sign-extended from 12 bits without a 64-bit
     * arithmetic shift, and converted to double with the magic-number add
     * (AVX2 has neither instruction for 64-bit integers) */
    uint64_t eu = ((u - 0x3fe6a09e667f3bcdull) >> 52) & 0xfffull;
    int64_t e = (int64_t)(eu ^ 0x800ull) - 0x800;
    double m = fl_u2d(u - ((uint64_t)e << 52));
    int64_t et = e - (sub ? 54 : 0);
    double ef = fl_u2d(0x4338000000000000ull + (uint64_t)et) - 6755399441055744.0;
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    /* p = sum_k s2^k / (2k + 3), k = 0..10, in Estrin's scheme */
    double s4 = s2 * s2;
    double s8 = s4 * s4;
    double q01 = 1.0 / 3.0 + s2 * (1.0 / 5.0);
    double q23 = 1.0 / 7.0 + s2 * (1.0 / 9.0);
    double q45 = 1.0 / 11.0 + s2 * (1.0 / 13.0);
    double q67 = 1.0 / 15.0 + s2 * (1.0 / 17.0);
    double q8a = 1.0 / 19.0 + s2 * (1.0 / 21.0) + s4 * (1.0 / 23.0);
    double p = (q01 + s4 * q23) + s8 * ((q45 + s4 * q67) + s8 * q8a);
    /* log(m) = 2s + 2s s2 p; add e ln2 in two parts */
    double r = ef * 1.90821492927058770002e-10 + 2.0 * s * s2 * p;
    r = r + 2.0 * s;
    r = r + ef * 6.93147180369123816490e-1;
    r = x0 == 0.0 ? -INFINITY : r;
    r = x0 < 0.0 ? NAN : r;
    r = x0 == INFINITY ? INFINITY : r;
    r = x0 != x0 ? x0 : r;
    return r;
}

/* log(1 + y) for y >= -1, accurate for small |y|. */
FL_ALWAYS_INLINE float fl_log1pf(float y)
{
    float u = 1.0f + y;
    float c = (y - (u - 1.0f)) / u;
    c = (u == 0.0f) | (u == INFINITY) ? 0.0f : c;
    return fl_logf(u) + c;
}

/* log(1 + e) for e in [0, 1] (NaN passes through): e + e^2 R(e), R of
 * degree 8 fitted to (log1p(e) - e) / e^2 on [0, 1] (relative error of the
 * result 5.3e-9 before rounding; a degree-9 fit, 8e-10, had the same
 * worst case over the sweep in tests/test_fastmath.py and took 2 more
 * instructions without FMA), in Estrin's scheme (a chain of 5 multiply-adds
 * instead of Horner's 9: the loop was waiting on it without FMA).  No
 * division, no bit moves, no selects: 11 instructions with FMA. */
FL_ALWAYS_INLINE float fl_log1p_unitf(float e)
{
    float z = e * e;
    float q0 = -4.999993145e-01f + e * 3.333046436e-01f;
    float q1 = -2.495801896e-01f + e * 1.969210207e-01f;
    float q2 = -1.534488052e-01f + e * 1.066112816e-01f;
    float q3 = -5.745723099e-02f + e * 2.008624189e-02f;
    float z2 = z * z;
    float a = q0 + z * q1;
    float b = q2 + z * q3;
    float p = a + z2 * (b + z2 * -3.290468594e-03f);
    return e + z * p;
}

FL_ALWAYS_INLINE double fl_log1p(double y)
{
    double u = 1.0 + y;
    double c = (y - (u - 1.0)) / u;
    c = (u == 0.0) | (u == INFINITY) ? 0.0 : c;
    return fl_log(u) + c;
}

/* Flush to zero (x86's MXCSR.FTZ) on the calling thread, for a loop whose
 * products may fall below the smallest normal number: such a product costs
 * a microcode assist (about 100 times a multiply) on many x86 CPUs, and
 * comes back as 0 here, the rule fl_expf already follows.  fl_ftz_begin
 * returns the state for fl_ftz_end; elsewhere both do nothing. */
#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
FL_ALWAYS_INLINE unsigned int fl_ftz_begin(void)
{
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | _MM_FLUSH_ZERO_ON);
    return csr;
}
FL_ALWAYS_INLINE void fl_ftz_end(unsigned int csr) { _mm_setcsr(csr); }
#else
FL_ALWAYS_INLINE unsigned int fl_ftz_begin(void) { return 0; }
FL_ALWAYS_INLINE void fl_ftz_end(unsigned int csr) { (void)csr; }
#endif

#endif /* FASTLOSS_FASTMATH_H */
