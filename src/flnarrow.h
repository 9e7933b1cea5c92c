/* Softmax cross-entropy over rows of a few float classes (2 <= K <= 16),
 * 64 rows at a time; and over class planes of as few ((N, K, H, W)
 * logits), 64 positions at a time, filled by a copy instead of the
 * transpose (fl_ce_planes_f32).
 *
 * A tile of 16 rows becomes 16 class planes of 16 lanes in L1 (with
 * AVX-512, fltranspose.h's network: one masked load per row, no value read
 * at a stride; with AVX2 and K >= 8, its 8 x 8 network on chunks of 8
 * classes), and every step after that is a loop over the 16 lanes that
 * gcc turns into one vector instruction per class: the row maximum m, the
 * exponentials and their sum s, the labelled logit x_y (a select per
 * class), the loss
 *     l = (m - x_y) + log(s),        s = sum_c exp(x_c - m)
 * (the shift is taken off the labelled logit before the log is added, as
 * log_softmax does, so a large m costs no digits), and with a gradient
 *     g_c = gscale (exp(x_c - m) / s - [c == y]),
 * turned back into rows by the same network.  Everything stays in the
 * tile: the plane path over a 512-row unit (_classification.pyx) spends as
 * much on its per-position passes over double arrays (the logs, the
 * labelled logits, the sums) as on the exponentials when K is 10.
 *
 * Each lane's loss is a float, added to a double lane total per tile, and
 * the 64 totals are summed pairwise at the end: the result depends on the
 * rows alone, not on how the caller splits its work among threads.  When
 * only the sum is asked for (no per-row losses), the AVX-512 path adds the
 * four rows of a lane in float and takes one log of their four sums'
 * product (a quarter of the logs: (2, 4, 160^3) float32 logits 0.83x the
 * time), the AVX2 path the same over eight rows; the bits then differ
 * from the per-row path's by float rounding.
 */
#ifndef FASTLOSS_FLNARROW_H
#define FASTLOSS_FLNARROW_H

#include <math.h>
#include <stddef.h>
#include "flrows.h"           /* FL_SUM_HALF; fastmath.h */
#include "flstream.h"
#include "fltranspose.h"

#define FL_NARROW_MAX 16   /* the widest row, float */
/* rows per tile: the lane loops below then hold 4 independent vectors each,
 * enough to keep the exponentials' multiply-adds busy (with one vector per
 * class the loop waits on each exponential's latency; 128 rows spill and
 * took 1.04-1.15x the time, 32 up to 1.12x) */
#define FL_NARROW_TILE 64

#if defined(FL_TR8_AVX2)
/* rows of 8 classes or more: 8 rows at a time, the classes in chunks of
 * 8 (the last chunk is the row's last 8 values, so every load is a
 * plain one inside the row), fltranspose.h's 8 x 8 network; fewer
 * classes take fl_narrow_planes's loop (masked loads of 4 classes: 1.10x
 * its time). */
FL_ALWAYS_INLINE void fl_narrow_planes8(const float *x, int K, int n, float *P, float *mx)
{
    __m256 r[8];
    for (int b = 0; b < FL_NARROW_TILE; b += 8) {
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (int h = 0; h < K; h += 8) {
            const int h0 = h + 8 > K ? K - 8 : h;
            for (int i = 0; i < 8; i++)
                r[i] = b + i < n ? _mm256_loadu_ps(x + (ptrdiff_t)(b + i) * K + h0)
                                 : _mm256_setzero_ps();
            fl_tr8_ps(r);
            /* all 8 planes, so that r stays in registers (from a variable
             * first plane gcc stored r to the stack and looped): the last
             * chunk's first h - h0 planes are written again with the same
             * bits, and their max changes nothing (r > m ? r : m, in class
             * order: a value already taken into m is never above it, +0
             * and -0 included) */
            for (int i = 0; i < 8; i++) {
                _mm256_store_ps(P + (h0 + i) * FL_NARROW_TILE + b, r[i]);
                m = _mm256_max_ps(r[i], m);
            }
        }
        _mm256_storeu_ps(mx + b, m);
    }
}
#endif

/* P[c * T + i] = x[i * K + c] for rows i < n (n <= T = FL_NARROW_TILE),
 * c < K (the other lanes of those planes are 0), and mx[i] = the largest
 * of row i (NaN passed over: it loses every compare).  wide: K >= 8, a
 * constant where this is inlined (fl_ce_narrow_f32: with both forms in one
 * body, the loop of 4 classes took 1.18x its time). */
FL_ALWAYS_INLINE void fl_narrow_planes(const float *x, int K, int n, float *P, float *mx,
                                       const int wide)
{
    (void)wide;
#if defined(__AVX512F__)
    const __mmask16 km = (__mmask16)((1u << K) - 1u);
    __m512 r[16];
    int i, b;
    for (b = 0; b < FL_NARROW_TILE; b += 16) {
        __m512 m = _mm512_set1_ps(-INFINITY);
        for (i = 0; i < 16; i++)
            r[i] = b + i < n ? _mm512_maskz_loadu_ps(km, x + (b + i) * K) : _mm512_setzero_ps();
        fl_tr16_ps(r);
        for (i = 0; i < 16; i++) {
            _mm512_store_ps(P + i * FL_NARROW_TILE + b, r[i]);
            /* the planes past K (zeros) left out; max_ps(a, b) is a > b ? a : b */
            m = _mm512_mask_max_ps(m, (__mmask16)(i < K ? 0xffffu : 0u), r[i], m);
        }
        _mm512_storeu_ps(mx + b, m);
    }
#else
#if defined(FL_TR8_AVX2)
    if (wide) {
        fl_narrow_planes8(x, K, n, P, mx);
        return;
    }
#endif
    ptrdiff_t c;
    int i;
    for (i = 0; i < FL_NARROW_TILE; i++)
        mx[i] = -INFINITY;
    for (c = 0; c < K; c++)
        for (i = 0; i < FL_NARROW_TILE; i++) {
            float v = i < n ? x[i * K + c] : 0.0f;
            P[c * FL_NARROW_TILE + i] = v;
            mx[i] = v > mx[i] ? v : mx[i];
        }
#endif
}

#if defined(FL_TR8_AVX2)
/* fl_narrow_planes8's chunks back to rows of 8 classes or more; the last
 * chunk rewrites values with the same bits */
FL_ALWAYS_INLINE void fl_narrow_rows8(const float *P, int K, int n, float *g)
{
    __m256 r[8];
    for (int b = 0; b < n; b += 8)
        for (int h = 0; h < K; h += 8) {
            const int h0 = h + 8 > K ? K - 8 : h;
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_load_ps(P + (h0 + i) * FL_NARROW_TILE + b);
            fl_tr8_ps(r);
            if (b + 8 <= n)   /* a constant count: r stays in registers */
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_ps(g + (ptrdiff_t)(b + i) * K + h0, r[i]);
            else
                for (int i = 0; b + i < n; i++)
                    _mm256_storeu_ps(g + (ptrdiff_t)(b + i) * K + h0, r[i]);
        }
}
#endif

/* g[i * K + c] = P[c * T + i] for rows i < n; wide as fl_narrow_planes's */
FL_ALWAYS_INLINE void fl_narrow_rows(const float *P, int K, int n, float *g, const int wide)
{
    (void)wide;
#if defined(__AVX512F__)
    const __mmask16 km = (__mmask16)((1u << K) - 1u);
    __m512 r[16];
    int i, b;
    for (b = 0; b < n; b += 16) {
        for (i = 0; i < 16; i++)
            r[i] = _mm512_load_ps(P + i * FL_NARROW_TILE + b);
        fl_tr16_ps(r);
        for (i = 0; i < 16 && b + i < n; i++)
            _mm512_mask_storeu_ps(g + (b + i) * K, km, r[i]);
    }
#else
#if defined(FL_TR8_AVX2)
    if (wide) {
        fl_narrow_rows8(P, K, n, g);
        return;
    }
#endif
    ptrdiff_t c;
    int i;
    for (i = 0; i < n; i++)
        for (c = 0; c < K; c++)
            g[i * K + c] = P[c * FL_NARROW_TILE + i];
#endif
}

/* P[c * T + i] = x[c * cs + i] for i < n, c < K (the lanes past n are 0),
 * and mx[i] = the largest of position i, as fl_narrow_planes's: a
 * class-plane layout ((N, C, H, W) logits) needs a copy, not a transpose */
FL_ALWAYS_INLINE void fl_narrow_copy(const float *x, ptrdiff_t cs, int K, int n, float *P,
                                     float *mx)
{
    ptrdiff_t c;
    int i;
    for (i = 0; i < FL_NARROW_TILE; i++)
        mx[i] = -INFINITY;
    for (c = 0; c < K; c++) {
        const float *xc = x + c * cs;
        float *pc = P + c * FL_NARROW_TILE;
        if (n == FL_NARROW_TILE) {
            for (i = 0; i < FL_NARROW_TILE; i++) {
                float v = xc[i];
                pc[i] = v;
                mx[i] = v > mx[i] ? v : mx[i];
            }
        } else {
            for (i = 0; i < FL_NARROW_TILE; i++) {
                float v = i < n ? xc[i] : 0.0f;
                pc[i] = v;
                mx[i] = v > mx[i] ? v : mx[i];
            }
        }
    }
}

/* The tile's math on its K class planes P (lanes i < n, row maxima mx,
 * labels ys[i] in [0, K) or -1: no loss, a zero gradient): adds each lane's
 * loss to acc[i] and writes it to lo[i] (lo may be NULL); y[i] (T lanes) =
 * ys[i], -1 past n; with grad, leaves exp(x_c - m) in P and rs[i] =
 * gscale / s for fl_narrow_grad. */
FL_ALWAYS_INLINE void fl_ce_narrow_math(float *P, const float *mx, int K, int n, const int *ys,
                                        float *lo, const int grad, float gscale, double *acc,
                                        int *y, float *rs)
{
    enum { T = FL_NARROW_TILE };
    float sm[T], xy[T], l[T];
    ptrdiff_t c;   /* not int: with -fwrapv an int index is not affine to gcc */
    int i;
    for (i = 0; i < T; i++)
        y[i] = i < n ? ys[i] : -1;
#if defined(__AVX512F__)
    {
        /* the loop below with fastmath's vscalefps exp (the arguments are
         * <= 0 or NaN: the maximum is the row's), its 64 lanes in registers;
         * the exponentials are kept in P only for a gradient */
        __m512 M[T / 16], XY[T / 16], SM[T / 16];
        __m512i Y[T / 16];
        int b;
        for (b = 0; b < T / 16; b++) {
            M[b] = _mm512_loadu_ps(mx + 16 * b);
            Y[b] = _mm512_loadu_si512((const void *)(y + 16 * b));
            XY[b] = _mm512_setzero_ps();
            SM[b] = _mm512_setzero_ps();
        }
#define FL_CE_NARROW_EXPS(keep_e)                                                             \
        for (c = 0; c < K; c++) {                                                             \
            const __m512i cv = _mm512_set1_epi32((int)c);                                     \
            for (b = 0; b < T / 16; b++) {                                                    \
                __m512 v = _mm512_load_ps(P + c * T + 16 * b);                                \
                __m512 e = fl_expf_lo16(_mm512_sub_ps(v, M[b]), 0);                           \
                XY[b] = _mm512_mask_mov_ps(XY[b], _mm512_cmpeq_epi32_mask(Y[b], cv), v);      \
                if (keep_e)                                                                   \
                    _mm512_store_ps(P + c * T + 16 * b, e);                                   \
                SM[b] = _mm512_add_ps(SM[b], e);                                              \
            }                                                                                 \
        }
        if (grad) {
            FL_CE_NARROW_EXPS(1)
        } else {
            FL_CE_NARROW_EXPS(0)
        }
#undef FL_CE_NARROW_EXPS
        if (!lo) {
            /* the sum of the tile's losses only: one log of the product of
             * four sums a lane (each sum is in [1, K] for a finite maximum,
             * so the product is exact to 3 roundings and far from overflow)
             * instead of four logs */
            const __m512 one = _mm512_set1_ps(1.0f);
            __m512 pr = one, sh = _mm512_setzero_ps();
            for (b = 0; b < T / 16; b++) {
                const __mmask16 kept = _mm512_cmpge_epi32_mask(Y[b], _mm512_setzero_si512());
                pr = _mm512_mul_ps(pr, _mm512_mask_mov_ps(one, kept, SM[b]));
                sh = _mm512_add_ps(sh, _mm512_maskz_sub_ps(kept, M[b], XY[b]));
            }
            sh = _mm512_add_ps(sh, fl_logf16(pr));
            _mm512_storeu_ps(l, sh);
            for (i = 0; i < 16; i++)
                acc[i] += (double)l[i];
            if (grad)
                for (b = 0; b < T / 16; b++)
                    _mm512_storeu_ps(sm + 16 * b, SM[b]);
            goto gradient;
        }
        for (b = 0; b < T / 16; b++) {
            _mm512_storeu_ps(xy + 16 * b, XY[b]);
            _mm512_storeu_ps(sm + 16 * b, SM[b]);
            _mm512_storeu_ps(l + 16 * b, fl_logf16(SM[b]));
        }
    }
#elif defined(FL_HAVE_EXPF_LO8)
    /* the loop below with fastmath's 8-lane exp; class 0 sets sm and xy
     * (0 + e is e, bit for bit), so they need no clearing first */
    for (c = 0; c < K; c++) {
        const __m256i c8 = _mm256_set1_epi32((int)c);
        for (i = 0; i < T; i += 8) {
            __m256 v = _mm256_loadu_ps(P + c * T + i);
            __m256 e = fl_expf_lo8(_mm256_sub_ps(v, _mm256_loadu_ps(mx + i)));
            __m256 sel = _mm256_castsi256_ps(
                _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(y + i)), c8));
            __m256 xy0 = c ? _mm256_loadu_ps(xy + i) : _mm256_setzero_ps();
            _mm256_storeu_ps(xy + i, _mm256_blendv_ps(xy0, v, sel));
            _mm256_storeu_ps(P + c * T + i, e);
            _mm256_storeu_ps(sm + i, c ? _mm256_add_ps(_mm256_loadu_ps(sm + i), e) : e);
        }
    }
    if (!lo) {
        /* the sum only: as on AVX-512, one log of the product of a lane's
         * sums, here 8 (each in [1, K <= 16] for a finite maximum: below
         * 2^32, 7 roundings) */
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 pr = one, sh = _mm256_setzero_ps();
        float s8[8];
        for (i = 0; i < T; i += 8) {
            const __m256 kept = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_loadu_si256((const __m256i *)(y + i)), _mm256_set1_epi32(-1)));
            pr = _mm256_mul_ps(pr, _mm256_blendv_ps(one, _mm256_loadu_ps(sm + i), kept));
            sh = _mm256_add_ps(sh, _mm256_and_ps(kept, _mm256_sub_ps(_mm256_loadu_ps(mx + i),
                                                                     _mm256_loadu_ps(xy + i))));
        }
        _mm256_storeu_ps(s8, _mm256_add_ps(sh, fl_logf8(pr)));
        for (i = 0; i < 8; i++)
            acc[i] += (double)s8[i];
        goto gradient;
    }
    for (i = 0; i < T; i += 8)
        _mm256_storeu_ps(l + i, fl_logf8(_mm256_loadu_ps(sm + i)));
#else
    for (i = 0; i < T; i++) {
        sm[i] = 0.0f;
        xy[i] = 0.0f;
    }
    for (c = 0; c < K; c++)
        for (i = 0; i < T; i++) {
            float v = P[c * T + i];
            float e = fl_expf_lo(v - mx[i]);
            xy[i] = y[i] == (int)c ? v : xy[i];
            P[c * T + i] = e;
            sm[i] += e;
        }
    for (i = 0; i < T; i++)
        l[i] = fl_logf(sm[i]);
#endif
    for (i = 0; i < T; i++) {
        float li = (mx[i] - xy[i]) + l[i];
        l[i] = y[i] >= 0 ? li : 0.0f;   /* a select: a skipped row's NaN stays out */
    }
    for (i = 0; i < T; i++)
        acc[i] += (double)l[i];
    if (lo)
        for (i = 0; i < n; i++)
            lo[i] = l[i];
#if defined(__AVX512F__) || defined(FL_HAVE_EXPF_LO8)
gradient:
#endif
    if (grad)
        for (i = 0; i < T; i++)
            rs[i] = gscale / sm[i];
}

/* a lane's gradient of class c from fl_ce_narrow_math's exponential e, y
 * and rs:  g_c = e gscale / s - gscale [c == y], 0 where y < 0 */
FL_ALWAYS_INLINE float fl_narrow_grad(float e, float rs, int y, int c, float gscale)
{
    float gv = e * rs;
    gv = y == c ? gv - gscale : gv;
    return y >= 0 ? gv : 0.0f;
}

/* The K gradient planes to g (plane stride cs, lanes i < n; g may be P
 * itself, cs = FL_NARROW_TILE): written once, from P, not through it. */
FL_ALWAYS_INLINE void fl_narrow_grad_planes(const float *P, const float *rs, const int *y,
                                            int K, int n, float gscale, float *g,
                                            ptrdiff_t cs)
{
    ptrdiff_t c;
    int i;
    for (c = 0; c < K; c++) {
        const float *pc = P + c * FL_NARROW_TILE;
        float *gc = g + c * cs;
        if (n == FL_NARROW_TILE)
            for (i = 0; i < FL_NARROW_TILE; i++)
                gc[i] = fl_narrow_grad(pc[i], rs[i], y[i], (int)c, gscale);
        else
            for (i = 0; i < n; i++)
                gc[i] = fl_narrow_grad(pc[i], rs[i], y[i], (int)c, gscale);
    }
}

/* The gradient rows g[i * K + c] (i < n) of a tile of rows: with AVX-512
 * each 16 rows' planes are formed in registers and go through the
 * transpose to their rows, P read once; elsewhere through P. */
FL_ALWAYS_INLINE void fl_narrow_grad_rows(float *P, const float *rs, const int *y, int K,
                                          int n, float gscale, float *g, const int wide)
{
#if defined(__AVX512F__)
    const __mmask16 km = (__mmask16)((1u << K) - 1u);
    const __m512 gs = _mm512_set1_ps(gscale);
    __m512 r[16];
    int i, b;
    for (b = 0; b < n; b += 16) {
        const __m512 R = _mm512_loadu_ps(rs + b);
        const __m512i Y = _mm512_loadu_si512((const void *)(y + b));
        const __mmask16 kept = _mm512_cmpge_epi32_mask(Y, _mm512_setzero_si512());
        for (i = 0; i < 16; i++) {
            __m512 gv = _mm512_mul_ps(_mm512_load_ps(P + i * FL_NARROW_TILE + b), R);
            gv = _mm512_mask_sub_ps(gv, _mm512_cmpeq_epi32_mask(Y, _mm512_set1_epi32(i)), gv, gs);
            r[i] = i < K ? _mm512_maskz_mov_ps(kept, gv) : _mm512_setzero_ps();
        }
        fl_tr16_ps(r);
        for (i = 0; i < 16 && b + i < n; i++)
            _mm512_mask_storeu_ps(g + (b + i) * K, km, r[i]);
    }
#else
    fl_narrow_grad_planes(P, rs, y, K, n, gscale, P, FL_NARROW_TILE);
    fl_narrow_rows(P, K, n, g, wide);
#endif
}

/* One tile: rows i < n of x (row stride K), labels ys[i]; the loss as
 * fl_ce_narrow_math's, the gradient rows to g (NULL: none); stream: g is
 * 64-byte aligned and n a whole tile, its rows go through an L1 buffer and
 * out with non-temporal stores (whole lines: no read for ownership). */
FL_ALWAYS_INLINE void fl_ce_narrow_tile(const float *x, int K, int n, const int *ys,
                                        float *lo, float *g, float gscale, double *acc,
                                        const int stream, const int wide)
{
    float P[16 * FL_NARROW_TILE] __attribute__((aligned(64)));
    float mx[FL_NARROW_TILE], rs[FL_NARROW_TILE];
    int y[FL_NARROW_TILE];
    fl_narrow_planes(x, K, n, P, mx, wide);
    fl_ce_narrow_math(P, mx, K, n, ys, lo, g != NULL, gscale, acc, y, rs);
    if (g && stream) {
        float gb[16 * FL_NARROW_TILE] __attribute__((aligned(64)));
        fl_narrow_grad_rows(P, rs, y, K, n, gscale, gb, wide);
        fl_stream_f32(g, gb, (ptrdiff_t)n * K);
    } else if (g) {
        fl_narrow_grad_rows(P, rs, y, K, n, gscale, g, wide);
    }
}

/* One tile of a class-plane layout: positions i < n of K planes at x
 * (plane stride cs), the gradient planes to g (the same strides; NULL:
 * none); ahead > 0: the lines of the positions that many on are requested
 * first. */
FL_ALWAYS_INLINE void fl_ce_planes_tile(const float *x, ptrdiff_t cs, int K, int n,
                                        const int *ys, float *lo, float *g, ptrdiff_t ahead,
                                        float gscale, double *acc)
{
    float P[16 * FL_NARROW_TILE] __attribute__((aligned(64)));
    float mx[FL_NARROW_TILE], rs[FL_NARROW_TILE];
    int y[FL_NARROW_TILE];
    ptrdiff_t c;
    if (ahead)   /* the same positions `ahead` on, plane by plane */
        for (c = 0; c < K; c++)
            for (int b = 0; b < FL_NARROW_TILE; b += 16) {
                FL_PREFETCH(x + c * cs + ahead + b);
                /* and the gradient's: a line read before it is written
                 * arrives owned, so the ordinary stores below do not wait
                 * on their own read for ownership ((2, 4, 160^3) with its
                 * gradient into a reused array: 0.83-0.86x the time;
                 * streamed stores instead took 1.6-1.7x) */
                if (g)
                    FL_PREFETCH(g + c * cs + ahead + b);
            }
    fl_narrow_copy(x, cs, K, n, P, mx);
    fl_ce_narrow_math(P, mx, K, n, ys, lo, g != NULL, gscale, acc, y, rs);
    if (g)
        fl_narrow_grad_planes(P, rs, y, K, n, gscale, g, cs);
}

/* The cross-entropy of rows j < nr of K float classes at x (row stride K),
 * labels ys[j] as fl_ce_narrow_tile's: returns the sum of the row losses;
 * lo[j] (or NULL): row j's loss; g (or NULL): the gradient rows.
 * [pf, pf + pf_bytes): memory the caller reads next (the next unit's
 * labels), requested a few lines a tile: read in a burst after this call,
 * a page of them each time, they wait on the memory (the prefetcher has
 * no run-up within a page).  stream: g is out of the cache (a reused or
 * the caller's array); where it is 64-byte aligned, the gradient rows go
 * out with non-temporal stores ((4194304, 10) float32 at 2 threads: 0.87x
 * the time of ordinary stores; from a misaligned g, whose tiles start
 * mid-line, 1.01x: no gain, so ordinary stores there). */
FL_ALWAYS_INLINE double fl_ce_narrow_body(const float *x, ptrdiff_t K, ptrdiff_t nr,
                                          const int *ys, float *lo, float *g, float gscale,
                                          const char *pf, ptrdiff_t pf_bytes, int stream,
                                          const int wide)
{
    double acc[FL_NARROW_TILE];
    ptrdiff_t j = 0, per = 0, q = 0;
    int i;
    /* a tile's rows are whole lines where g is (64 rows of K floats) */
    stream = stream && g && !((uintptr_t)g & 63u);
    for (i = 0; i < FL_NARROW_TILE; i++)
        acc[i] = 0.0;
    if (pf && nr >= FL_NARROW_TILE)   /* bytes a tile, whole lines */
        per = (pf_bytes / (nr / FL_NARROW_TILE) + 63) & ~(ptrdiff_t)63;
    for (; j + FL_NARROW_TILE <= nr; j += FL_NARROW_TILE) {
        for (ptrdiff_t e = q + per; q < e && q < pf_bytes; q += 64)
            FL_PREFETCH(pf + q);
        fl_ce_narrow_tile(x + j * K, (int)K, FL_NARROW_TILE, ys + j, lo ? lo + j : NULL,
                          g ? g + j * K : NULL, gscale, acc, stream, wide);
    }
    if (j < nr)
        fl_ce_narrow_tile(x + j * K, (int)K, (int)(nr - j), ys + j, lo ? lo + j : NULL,
                          g ? g + j * K : NULL, gscale, acc, 0, wide);
    for (i = FL_NARROW_TILE / 2; i >= 1; i /= 2)
        FL_SUM_HALF(acc, i);
    if (stream)
        fl_stream_fence();
    return acc[0];
}

static FL_NOINLINE double fl_ce_narrow_rows(const float *x, ptrdiff_t K, ptrdiff_t nr,
                                           const int *ys, float *lo, float *g, float gscale,
                                           const char *pf, ptrdiff_t pf_bytes, int stream)
{
    return fl_ce_narrow_body(x, K, nr, ys, lo, g, gscale, pf, pf_bytes, stream, 0);
}

#if defined(FL_TR8_AVX2)
static FL_NOINLINE double fl_ce_narrow_wide(const float *x, ptrdiff_t K, ptrdiff_t nr,
                                            const int *ys, float *lo, float *g, float gscale,
                                            const char *pf, ptrdiff_t pf_bytes, int stream)
{
    return fl_ce_narrow_body(x, K, nr, ys, lo, g, gscale, pf, pf_bytes, stream, 1);
}
#endif

static inline double fl_ce_narrow_f32(const float *x, ptrdiff_t K, ptrdiff_t nr, const int *ys,
                                      float *lo, float *g, float gscale, const char *pf,
                                      ptrdiff_t pf_bytes, int stream)
{
#if defined(FL_TR8_AVX2)
    if (K >= 8)
        return fl_ce_narrow_wide(x, K, nr, ys, lo, g, gscale, pf, pf_bytes, stream);
#endif
    return fl_ce_narrow_rows(x, K, nr, ys, lo, g, gscale, pf, pf_bytes, stream);
}

/* fl_ce_narrow_f32 for positions j < nr of K class planes at x (plane
 * stride cs): the gradient planes to g with the same strides (NULL: none);
 * ahead as fl_ce_planes_tile's. */
static inline double fl_ce_planes_f32(const float *x, ptrdiff_t cs, ptrdiff_t K, ptrdiff_t nr,
                                      const int *ys, float *lo, float *g, ptrdiff_t ahead,
                                      float gscale)
{
    double acc[FL_NARROW_TILE];
    ptrdiff_t j = 0;
    int i;
    for (i = 0; i < FL_NARROW_TILE; i++)
        acc[i] = 0.0;
    for (; j < nr; j += FL_NARROW_TILE)
        fl_ce_planes_tile(x + j, cs, (int)K, nr - j < FL_NARROW_TILE ? (int)(nr - j) : FL_NARROW_TILE,
                          ys + j, lo ? lo + j : NULL, g ? g + j : NULL, ahead, gscale, acc);
    for (i = FL_NARROW_TILE / 2; i >= 1; i /= 2)
        FL_SUM_HALF(acc, i);
    return acc[0];
}

#endif /* FASTLOSS_FLNARROW_H */
