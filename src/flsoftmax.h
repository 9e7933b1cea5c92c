/*
 * flsoftmax.h -- the softmax pieces over float rows and class planes, on
 * fastmath.h's exp and log and flrows.h's ordered sums: sum_i exp(x_i - sh)
 * over a row (the exps stored or not, long and short rows), exp(x - sh)
 * of a row or a class plane, the per-position maximum and sum of exps over
 * the class planes of an image, the gradient step g = g a - b w and the
 * logs of a block of sums.
 *
 * The same rules as flrows.h: vector loops gcc compiles for every target,
 * sums in an order fixed by the row's length alone.
 */
#ifndef FASTLOSS_FLSOFTMAX_H
#define FASTLOSS_FLSOFTMAX_H

#include "flrows.h"

/* Row functions are called once per row of at least 256 elements: kept
 * out of line (FL_NOINLINE), their loops are compiled once, with the exp
 * inlined and the NULL tests hoisted, whatever the size of the kernel that
 * calls them. */

/* sum_i exp(x_i - sh) over a float row; e_i = exp(x_i - sh) stored too
 * if store (fl_row_expf), not if not (fl_row_sumexpf): one body, compiled
 * into the two functions with store a constant, so the sums have the same
 * bits with or without the stores.
 * 32 float lanes sum 8 terms each per 256 elements (relative error below
 * 10 float eps, 1.2e-6), then are added to 32 double lanes (4 conversions
 * and 4 adds per 256 elements); the double lanes are combined pairwise once
 * per row.  A float fold per 256 elements instead is a chain of 31
 * dependent adds through the stack: 0.1 ns per element, a third of the exp.
 * The order is fixed, so the result is the same for any thread count.  The
 * tail is one more vector step with -inf past the end (exp 0), so the lanes
 * stay in registers.
 *
 * next: the start of the row the caller reads after this one (or NULL).
 * While this row's exponentials are computed from L1, its cache lines are
 * requested, one per 16 elements: the memory traffic of the next row
 * overlaps this row's arithmetic instead of following it (a row's max pass
 * alone is memory-bound).
 *
 * A function of its own, not a Cython loop in the kernels: there, in a
 * large function, gcc's inliner runs out of budget and leaves the exp a
 * call per element, which does not vectorize (7x slower). */
FL_ALWAYS_INLINE double fl_row_sumexpf_body(const float *x, ptrdiff_t n, float sh, float *e,
                                            const float *next, const int store)
{
    float acc[32];
    double dacc[32];
    ptrdiff_t i = 0;
    for (int k = 0; k < 32; k++)
        dacc[k] = 0.0;
    while (i + 32 <= n) {
        ptrdiff_t stop = i + 256 < n ? i + 256 : n;
#if defined(__AVX512F__)
        const __m512 vsh = _mm512_set1_ps(sh);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (; i + 32 <= stop; i += 32) {
            if (next) {
                FL_PREFETCH(next + i);
                FL_PREFETCH(next + i + 16);
            }
            /* the stored exponentials are fl_expf_lo's bit for bit (hi);
             * the sums are the same without it (see fl_expf_lo16) */
            __m512 v0 = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vsh), store);
            __m512 v1 = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vsh), store);
            if (store) {
                _mm512_storeu_ps(e + i, v0);
                _mm512_storeu_ps(e + i + 16, v1);
            }
            a0 = _mm512_add_ps(a0, v0);
            a1 = _mm512_add_ps(a1, v1);
        }
        _mm512_storeu_ps(acc, a0);
        _mm512_storeu_ps(acc + 16, a1);
#elif defined(FL_HAVE_EXPF_LO8)
        const __m256 vsh = _mm256_set1_ps(sh);
        __m256 a[4];
        for (int q = 0; q < 4; q++)
            a[q] = _mm256_setzero_ps();
        for (; i + 32 <= stop; i += 32) {
            if (next) {
                FL_PREFETCH(next + i);
                FL_PREFETCH(next + i + 16);
            }
            for (int q = 0; q < 4; q++) {
                __m256 v = fl_expf_lo8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * q), vsh));
                if (store)
                    _mm256_storeu_ps(e + i + 8 * q, v);
                a[q] = _mm256_add_ps(a[q], v);
            }
        }
        for (int q = 0; q < 4; q++)
            _mm256_storeu_ps(acc + 8 * q, a[q]);
#else
        for (int k = 0; k < 32; k++)
            acc[k] = 0.0f;
        for (; i + 32 <= stop; i += 32) {
            if (next) {
                FL_PREFETCH(next + i);
                FL_PREFETCH(next + i + 16);
            }
            for (int k = 0; k < 32; k++) {
                float v = fl_expf_lo(x[i + k] - sh);
                if (store)
                    e[i + k] = v;
                acc[k] += v;
            }
        }
#endif
        for (int k = 0; k < 32; k++)
            dacc[k] += (double)acc[k];
    }
    if (i < n) {
        ptrdiff_t m = n - i;
#if defined(FL_HAVE_EXPF_LO8) && !defined(__AVX512F__)
        /* the step below in 8-lane vectors, only those holding values
         * (lane k there is lane k % 8 of vector k / 8 here; a vector past
         * the end would add exp(-inf) = 0 to its lanes): gcc's form of
         * that step is four of its own vector exps for up to 31 values,
         * 0.86 ns a value in rows of 100 classes */
        const __m256 vsh = _mm256_set1_ps(sh);
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (int q = 0; 8 * q < m; q++) {
            const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(m - 8 * q)), iota);
            const __m256 xv = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY),
                                               _mm256_maskload_ps(x + i + 8 * q, in),
                                               _mm256_castsi256_ps(in));
            const __m256 v = fl_expf_lo8(_mm256_sub_ps(xv, vsh));
            if (store)
                _mm256_maskstore_ps(e + i + 8 * q, in, v);
            double *d = dacc + 8 * q;
            _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d),
                                              _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
            _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4),
                                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
        }
#else
        for (int k = 0; k < 32; k++) {
            float v = fl_expf_lo((k < m ? x[i + k] : -INFINITY) - sh);
            if (store && k < m)
                e[i + k] = v;
            dacc[k] += (double)v;
        }
#endif
    }
    FL_SUM_HALF(dacc, 16);
    FL_SUM_HALF(dacc, 8);
    FL_SUM_HALF(dacc, 4);
    FL_SUM_HALF(dacc, 2);
    FL_SUM_HALF(dacc, 1);
    return dacc[0];
}

static FL_NOINLINE double fl_row_sumexpf(const float *x, ptrdiff_t n, float sh,
                                         const float *next)
{
    return fl_row_sumexpf_body(x, n, sh, NULL, next, 0);
}

static FL_NOINLINE double fl_row_expf(const float *x, ptrdiff_t n, float sh, float *e,
                                      const float *next)
{
    return fl_row_sumexpf_body(x, n, sh, e, next, 1);
}

/* d[i] = exp(x[i] - sh) for i < n (fl_expf_lo's bits), on AVX2 builds
 * (FL_ROW_SHIFT_EXPF8: 1 there, else 0 and no function): the rows below
 * FL_ROW_SUMEXPF_SHORT_MIN, 8 values a vector, then the last 8 values again
 * (their exponentials stored again with the same bits, so d must not
 * overlap x; a masked store there took longer on Zen 3).  gcc's
 * vectorization of the scalar form makes each clamp and flush a compare and
 * a blend and ends in a scalar epilogue: cross-entropy over rows of 100-255
 * classes took 1.03-1.10x the time (one thread, Zen 3). */
#if defined(FL_HAVE_EXPF_LO8) && !defined(__AVX512F__)
#define FL_ROW_SHIFT_EXPF8 1
static FL_NOINLINE void fl_row_shift_expf(const float *x, ptrdiff_t n, float sh, float *d)
{
    const __m256 vsh = _mm256_set1_ps(sh);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, fl_expf_lo8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vsh)));
    if (i < n) {   /* the last 8 values again (stored again, the same bits) */
        if (n >= 8) {
            i = n - 8;
            _mm256_storeu_ps(d + i, fl_expf_lo8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vsh)));
        } else {
            for (; i < n; i++)
                d[i] = fl_expf_lo(x[i] - sh);
        }
    }
}
#else
#define FL_ROW_SHIFT_EXPF8 0
#define fl_row_shift_expf(x, n, sh, d) ((void)0)
#endif

/* d[i] = exp(x[i] - sh[i]) for i < n (fl_expf_lo): one class plane of a
 * block of positions.  next: the same plane's positions after the block;
 * one of its cache lines is requested per 16 exponentials, so that the
 * requests are spread over the arithmetic (a burst of a plane's requests
 * before its loop waited for memory: 16 % of cross-entropy's samples on one
 * prefetch on a (8, 21, 256, 256) map).  d may be x (in place), not
 * otherwise overlap it. */
static FL_NOINLINE void fl_plane_expf(const float *x, const float *sh, ptrdiff_t n, float *d,
                                      const float *next)
{
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        FL_PREFETCH(next + i);
#if defined(__AVX512F__)
        _mm512_storeu_ps(d + i, fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(x + i),
                                                           _mm512_loadu_ps(sh + i)), 1));
#elif defined(FL_HAVE_EXPF_LO8)
        for (int q = 0; q < 16; q += 8)
            _mm256_storeu_ps(d + i + q, fl_expf_lo8(_mm256_sub_ps(_mm256_loadu_ps(x + i + q),
                                                                  _mm256_loadu_ps(sh + i + q))));
#else
        for (int k = 0; k < 16; k++)
            d[i + k] = fl_expf_lo(x[i + k] - sh[i + k]);
#endif
    }
    for (; i < n; i++)
        d[i] = fl_expf_lo(x[i] - sh[i]);
}

/* m[j] = max_c x[c*cs + j] (NaN skipped; through the safe shift, 0 unless
 * finite, when safe) and s[j] = sum_c exp(x[c*cs + j] - m[j]) in float, in
 * class order, for j < nb: the softmax sums of a block of positions on
 * class planes (C <= 32, so the float sum's error stays below 32 eps); with
 * e (fl_planes_expf), each exponential stored at e[c*es + j] too.
 * The same arithmetic in the same order as a max pass and then one pass per
 * plane (planes_max, planes_sumexp), so the same bits; but 32 positions at
 * a time with all their classes in registers: no running max or partial
 * sum through memory between the planes (0.35 against 0.46 ns per element
 * for a (1, 21, 64, 64) float32 cross-entropy in L2 when each pass was a
 * loop over the block).  Each plane's values FL_PLANES_AHEAD positions on
 * (into the next block, which follows in the plane) are requested while
 * the exponentials run, a line per 16 of them: with 21 planes, the next
 * 512-position block (43 KiB) requested at once no longer fits beside the
 * current one in a 48 KiB L1 (in-process A/B, cross-entropy (8, 21, 256,
 * 256) at 2 threads: 0.93-0.95x the time of that).  One body, compiled
 * with store a constant, as fl_row_sumexpf_body. */
#define FL_PLANES_AHEAD 256
FL_ALWAYS_INLINE void fl_planes_sumexpf_body(const float *FL_RESTRICT x, ptrdiff_t cs,
                                             ptrdiff_t C, ptrdiff_t nb, int safe,
                                             double *FL_RESTRICT m, double *FL_RESTRICT s,
                                             float *FL_RESTRICT e, ptrdiff_t es, const int store)
{
    ptrdiff_t j = 0;
    for (; j + 32 <= nb; j += 32) {
        float mx[32], sm[32];
        for (int k = 0; k < 32; k++)
            mx[k] = -INFINITY;
        for (ptrdiff_t c = 0; c < C; c++) {
            const float *xc = x + c * cs + j;
            for (int k = 0; k < 32; k++)
                mx[k] = xc[k] > mx[k] ? xc[k] : mx[k];
        }
        if (safe)
            for (int k = 0; k < 32; k++)
                mx[k] = mx[k] - mx[k] == 0.0f ? mx[k] : 0.0f;
#if defined(__AVX512F__)
        {
            const __m512 m0 = _mm512_loadu_ps(mx), m1 = _mm512_loadu_ps(mx + 16);
            __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
            for (ptrdiff_t c = 0; c < C; c++) {
                const float *xc = x + c * cs + j;
                FL_PREFETCH(xc + FL_PLANES_AHEAD);
                FL_PREFETCH(xc + FL_PLANES_AHEAD + 16);
                /* above 0 only through the safe shift (a +inf maximum) */
                __m512 v0 = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(xc), m0), store && safe);
                __m512 v1 = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(xc + 16), m1),
                                         store && safe);
                if (store) {
                    _mm512_storeu_ps(e + c * es + j, v0);
                    _mm512_storeu_ps(e + c * es + j + 16, v1);
                }
                s0 = _mm512_add_ps(s0, v0);
                s1 = _mm512_add_ps(s1, v1);
            }
            _mm512_storeu_ps(sm, s0);
            _mm512_storeu_ps(sm + 16, s1);
        }
#elif defined(FL_HAVE_EXPF_LO8)
        {
            __m256 a[4];
            for (int q = 0; q < 4; q++)
                a[q] = _mm256_setzero_ps();
            for (ptrdiff_t c = 0; c < C; c++) {
                const float *xc = x + c * cs + j;
                FL_PREFETCH(xc + FL_PLANES_AHEAD);
                FL_PREFETCH(xc + FL_PLANES_AHEAD + 16);
                for (int q = 0; q < 4; q++) {
                    __m256 v = fl_expf_lo8(_mm256_sub_ps(_mm256_loadu_ps(xc + 8 * q),
                                                         _mm256_loadu_ps(mx + 8 * q)));
                    if (store)
                        _mm256_storeu_ps(e + c * es + j + 8 * q, v);
                    a[q] = _mm256_add_ps(a[q], v);
                }
            }
            for (int q = 0; q < 4; q++)
                _mm256_storeu_ps(sm + 8 * q, a[q]);
        }
#else
        for (int k = 0; k < 32; k++)
            sm[k] = 0.0f;
        for (ptrdiff_t c = 0; c < C; c++) {
            const float *xc = x + c * cs + j;
            FL_PREFETCH(xc + FL_PLANES_AHEAD);
            FL_PREFETCH(xc + FL_PLANES_AHEAD + 16);
            for (int k = 0; k < 32; k++) {
                float v = fl_expf_lo(xc[k] - mx[k]);
                if (store)
                    e[c * es + j + k] = v;
                sm[k] += v;
            }
        }
#endif
        for (int k = 0; k < 32; k++) {
            m[j + k] = mx[k];
            s[j + k] = sm[k];
        }
    }
    for (; j < nb; j++) {
        float mx = -INFINITY, sm = 0.0f;
        for (ptrdiff_t c = 0; c < C; c++)
            mx = x[c * cs + j] > mx ? x[c * cs + j] : mx;
        if (safe)
            mx = mx - mx == 0.0f ? mx : 0.0f;
        for (ptrdiff_t c = 0; c < C; c++) {
            float v = fl_expf_lo(x[c * cs + j] - mx);
            if (store)
                e[c * es + j] = v;
            sm += v;
        }
        m[j] = mx;
        s[j] = sm;
    }
}

static FL_NOINLINE void fl_planes_sumexpf(const float *x, ptrdiff_t cs, ptrdiff_t C,
                                          ptrdiff_t nb, int safe, double *m, double *s)
{
    fl_planes_sumexpf_body(x, cs, C, nb, safe, m, s, NULL, 0, 0);
}

/* e must not overlap x */
static FL_NOINLINE void fl_planes_expf(const float *x, ptrdiff_t cs, ptrdiff_t C,
                                       ptrdiff_t nb, int safe, double *m, double *s,
                                       float *e, ptrdiff_t es)
{
    fl_planes_sumexpf_body(x, cs, C, nb, safe, m, s, e, es, 1);
}

/* The same sum over a float row of FL_ROW_SUMEXPF_SHORT_MIN to 255
 * values (the class row of a mini-batch): 16 float lanes, added to 16
 * double lanes every 128 elements (8 terms per float lane, as above) and
 * combined pairwise once; the tail is the row's last 16 values again, those
 * already summed added as 0 (unmasked loads, their exponentials stored
 * again with the same bits; so e must not overlap x, whose tail values are
 * read after their exponentials were stored).  One body for
 * fl_row_sumexpf_short and fl_row_expf_short, so the sums have the same
 * bits with or without the stores.
 * Only on AVX-512: gcc's vectorization of the plain exp loop (the kernels'
 * row_sumexp below this size) ends a row in a scalar epilogue of up to 7
 * exponentials with branches and a second one in the sum, 0.70 against
 * 0.43 ns per element at 100 values; with AVX2's 16 vector registers the
 * polynomial's constants and the lanes do not fit and this body is slower
 * (0.72 against 0.56 ns at 100 values; Xeon, one thread, a stand-alone
 * loop over L1-resident rows). */
#if defined(__AVX512F__)
#define FL_ROW_SUMEXPF_SHORT_MIN 48
#else
#define FL_ROW_SUMEXPF_SHORT_MIN 256
#endif

FL_ALWAYS_INLINE double fl_row_sumexpf_short_body(const float *x, ptrdiff_t n, float sh,
                                                  float *e, const int store)
{
    float acc[16];
    double dacc[16];
    ptrdiff_t i = 0;
    for (int k = 0; k < 16; k++)
        dacc[k] = 0.0;
    while (i < n) {
        ptrdiff_t stop = i + 128 < n ? i + 128 : n;
#if defined(__AVX512F__)
        const __m512 vsh = _mm512_set1_ps(sh);
        __m512 a = _mm512_setzero_ps();
        for (; i + 16 <= stop; i += 16) {
            __m512 v = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vsh), store);
            if (store)
                _mm512_storeu_ps(e + i, v);
            a = _mm512_add_ps(a, v);
        }
        if (i < stop) {   /* as below: lanes before i keep their sums */
            const ptrdiff_t j = n - 16;
            __m512 v = fl_expf_lo16(_mm512_sub_ps(_mm512_loadu_ps(x + j), vsh), store);
            if (store)
                _mm512_storeu_ps(e + j, v);
            a = _mm512_mask_add_ps(a, (__mmask16)(0xffffu << (i - j)), a, v);
            i = stop;
        }
        _mm512_storeu_ps(acc, a);
#else
        for (int k = 0; k < 16; k++)
            acc[k] = 0.0f;
        for (; i + 16 <= stop; i += 16)
            for (int k = 0; k < 16; k++) {
                float v = fl_expf_lo(x[i + k] - sh);
                if (store)
                    e[i + k] = v;
                acc[k] += v;
            }
        if (i < stop) {
            /* only at the row's end (128 is a multiple of 16), n >= 16: the
             * row's last 16 values, those before i (already summed) added
             * as 0; their exponentials are stored again with the same bits */
            const ptrdiff_t j = n - 16;
            for (int k = 0; k < 16; k++) {
                float v = fl_expf_lo(x[j + k] - sh);
                if (store)
                    e[j + k] = v;
                acc[k] += j + k >= i ? v : 0.0f;
            }
            i = stop;
        }
#endif
        for (int k = 0; k < 16; k++)
            dacc[k] += (double)acc[k];
    }
    FL_SUM_HALF(dacc, 8);
    FL_SUM_HALF(dacc, 4);
    FL_SUM_HALF(dacc, 2);
    FL_SUM_HALF(dacc, 1);
    return dacc[0];
}

static FL_NOINLINE double fl_row_sumexpf_short(const float *x, ptrdiff_t n, float sh)
{
    return fl_row_sumexpf_short_body(x, n, sh, NULL, 0);
}

static FL_NOINLINE double fl_row_expf_short(const float *x, ptrdiff_t n, float sh, float *e)
{
    return fl_row_sumexpf_short_body(x, n, sh, e, 1);
}

/* g_i = g_i a - b w_i (w NULL: g_i a - b) over a row.  Out of line so that
 * every caller runs the same instructions: a b - c d may be contracted into
 * either of two fused multiply-adds, and gcc picks per inlining site, which
 * would make the same row's gradient differ in its last bit between two
 * kernels' paths. */
static FL_NOINLINE void fl_row_axpbf(float *g, ptrdiff_t n, float a, float b, const double *w)
{
    if (w)
        for (ptrdiff_t i = 0; i < n; i++)
            g[i] = g[i] * a - b * (float)w[i];
    else
        for (ptrdiff_t i = 0; i < n; i++)
            g[i] = g[i] * a - b;
}

static FL_NOINLINE void fl_row_axpb(double *g, ptrdiff_t n, double a, double b, const double *w)
{
    if (w)
        for (ptrdiff_t i = 0; i < n; i++)
            g[i] = g[i] * a - b * w[i];
    else
        for (ptrdiff_t i = 0; i < n; i++)
            g[i] = g[i] * a - b;
}

/* s_i = log(s_i) over n doubles, the vector loop out of line: inlined into
 * a large kernel function, gcc's inliner has no budget left for fl_log and
 * the loop becomes a call per element (30 % of a log_softmax over
 * (65536, 10) float32). */
static FL_NOINLINE void fl_log_inplace(double *s, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        s[i] = fl_log(s[i]);
}

#endif /* FASTLOSS_FLSOFTMAX_H */
