/* Rows of a few values <-> planes, through registers.
 *
 * A block of nr rows of K contiguous values (K small: the classes of a
 * gradient-boosting row, of a narrow cross-entropy row) is turned into K
 * planes of nr values (dst[k * ps + j] = src[j * K + k]) and back, so that
 * the arithmetic runs down the planes with one row per vector lane.
 *
 * With AVX-512, 16 rows (float) or 8 rows (double) go at a time: each row
 * is one masked load (K lanes; the masked-off lanes are not read, so the
 * last row of an array never reads past it), the 16 x 16 (8 x 8) tile is
 * transposed by the unpack / shuffle network (4 (3) stages, 64 (24)
 * shuffles), and the first K vectors are the planes.  The way back is the
 * same network and one masked store per row.  A gather instead costs about
 * a cycle per value on current x86 parts, several times the network's
 * shuffles per value; a scalar strided copy more still.  The rows left over
 * (fewer than a tile) and other targets take the scalar loops.  Only data
 * movement: the values are copied bit for bit.
 */
#ifndef FASTLOSS_FLTRANSPOSE_H
#define FASTLOSS_FLTRANSPOSE_H

#include <math.h>
#include <stddef.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#define FL_TR_F32_MIN 1    /* narrowest row of the register path, float */
#define FL_TR_F32_MAX 16   /* widest, float */
#define FL_TR_F64_MAX 8    /* and double */
#elif defined(__AVX2__)
#define FL_TR_F32_MIN 8    /* AVX2: chunks of 8 values, float only */
#define FL_TR_F32_MAX 16
#define FL_TR_F64_MAX 0
#else
#define FL_TR_F32_MIN 1
#define FL_TR_F32_MAX 0
#define FL_TR_F64_MAX 0
#endif

/* The network on a register array: inlined, or the array goes through the
 * stack on every tile (gcc otherwise keeps one out-of-line copy for the
 * callers in a module that use it more than once). */
#if defined(__GNUC__)
#define FL_TR_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FL_TR_INLINE static __forceinline
#else
#define FL_TR_INLINE static inline
#endif

/* the lines of [p, p + nbytes): the same rows of the block read next, one
 * tile ahead of their use, spread over this block's tiles so that a few
 * requests are in flight at a time (a burst of them at the start of a block
 * waits for the memory itself) */
#if defined(__GNUC__) || defined(__clang__)
#define FL_TR_PREFETCH(p, nbytes)                                         \
    do {                                                                 \
        const char *q_ = (const char *)(p);                              \
        for (size_t b_ = 0; b_ < (size_t)(nbytes); b_ += 64)             \
            __builtin_prefetch(q_ + b_, 0, 3);                           \
    } while (0)
#else
#define FL_TR_PREFETCH(p, nbytes) ((void)(p), (void)(nbytes))
#endif

#if !defined(__AVX512F__) && defined(__AVX2__)
#include <immintrin.h>
#define FL_TR8_AVX2 1
/* The 8 x 8 float network for AVX2 (3 stages, 24 shuffles): r[i] = row i
 * in, class i out. */
FL_TR_INLINE void fl_tr8_ps(__m256 r[8])
{
    __m256 t[8];
    int i;
    for (i = 0; i < 8; i += 2) {          /* pairs of rows, element by element */
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (i = 0; i < 8; i += 4) {          /* pairs of pairs */
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (i = 0; i < 4; i++) {             /* the 128-bit halves of 4 and 4 rows */
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (i = 0; i < 8; i++)
        r[i] = t[i];
}
#endif

#if defined(__AVX512F__)
FL_TR_INLINE void fl_tr16_ps(__m512 r[16])
{
    __m512 t[16];
    int i;
    for (i = 0; i < 16; i += 2) {          /* pairs of rows, element by element */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (i = 0; i < 16; i += 4) {          /* pairs of pairs */
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]),
                                                   _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]),
                                                       _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]),
                                                       _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]),
                                                       _mm512_castps_pd(t[i + 3])));
    }
    for (i = 0; i < 16; i += 8) {          /* 128-bit lanes of 4 and 4 rows */
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 1] = _mm512_shuffle_f32x4(r[i + 1], r[i + 5], 0x88);
        t[i + 2] = _mm512_shuffle_f32x4(r[i + 2], r[i + 6], 0x88);
        t[i + 3] = _mm512_shuffle_f32x4(r[i + 3], r[i + 7], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 5] = _mm512_shuffle_f32x4(r[i + 1], r[i + 5], 0xdd);
        t[i + 6] = _mm512_shuffle_f32x4(r[i + 2], r[i + 6], 0xdd);
        t[i + 7] = _mm512_shuffle_f32x4(r[i + 3], r[i + 7], 0xdd);
    }
    for (i = 0; i < 8; i++) {              /* the two halves of 8 rows */
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

FL_TR_INLINE void fl_tr8_pd(__m512d r[8])
{
    __m512d t[8];
    int i;
    for (i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (i = 0; i < 8; i += 4) {
        r[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);
        r[i + 1] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);
        r[i + 2] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xdd);
        r[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xdd);
    }
    for (i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0xdd);
    }
    for (i = 0; i < 8; i++)
        r[i] = t[i];
}
#endif

/* dst[k * ps + j] = src[j * K + k], j < nr, k < K; next (or NULL): the
 * rows the caller reads after these, requested tile by tile; mx (or NULL):
 * mx[j] = the largest of row j, NaN passed over (-inf for a row of NaN),
 * taken from the planes while they are in registers */
static inline void fl_rows_to_planes_f32(const float *src, ptrdiff_t K, ptrdiff_t nr,
                                         float *dst, ptrdiff_t ps, const float *next,
                                         float *mx)
{
    ptrdiff_t j = 0, k;
#if defined(__AVX512F__)
    if (K <= 16) {
        const __mmask16 m = (__mmask16)((1u << K) - 1u);
        __m512 r[16];
        int i;
        for (; j + 16 <= nr; j += 16) {
            if (next)
                FL_TR_PREFETCH(next + j * K, 16 * K * sizeof(float));
            for (i = 0; i < 16; i++)
                r[i] = _mm512_maskz_loadu_ps(m, src + (j + i) * K);
            fl_tr16_ps(r);
            for (k = 0; k < K; k++)
                _mm512_storeu_ps(dst + k * ps + j, r[k]);
            if (mx) {
                /* max_ps(a, b) is a > b ? a : b: a NaN plane value loses */
                __m512 m = _mm512_set1_ps(-INFINITY);
                for (k = 0; k < K; k++)
                    m = _mm512_max_ps(r[k], m);
                _mm512_storeu_ps(mx + j, m);
            }
        }
    }
#elif defined(FL_TR8_AVX2)
    if (K >= FL_TR_F32_MIN && K <= FL_TR_F32_MAX) {
        /* 8 rows at a time, the values in chunks of 8, the last chunk the
         * row's last 8 (plain loads inside the row) */
        __m256 r[8];
        for (; j + 8 <= nr; j += 8) {
            __m256 m = _mm256_set1_ps(-INFINITY);
            if (next)
                FL_TR_PREFETCH(next + j * K, 8 * K * sizeof(float));
            for (ptrdiff_t h = 0; h < K; h += 8) {
                const ptrdiff_t h0 = h + 8 > K ? K - 8 : h;
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(src + (j + i) * K + h0);
                fl_tr8_ps(r);
                /* all 8 planes (r in registers; see fl_narrow_planes8):
                 * the last chunk's first h - h0 are rewritten with the
                 * same bits and leave the max as it was */
                for (int i = 0; i < 8; i++) {
                    _mm256_storeu_ps(dst + (h0 + i) * ps + j, r[i]);
                    m = _mm256_max_ps(r[i], m);   /* class order, as below */
                }
            }
            if (mx)
                _mm256_storeu_ps(mx + j, m);
        }
    }
#endif
    for (; j < nr; j++) {
        float m = -INFINITY, v;
        for (k = 0; k < K; k++) {
            v = src[j * K + k];
            dst[k * ps + j] = v;
            m = v > m ? v : m;
        }
        if (mx)
            mx[j] = m;
    }
}

/* dst[j * K + k] = src[k * ps + j], j < nr, k < K */
static inline void fl_planes_to_rows_f32(const float *src, ptrdiff_t ps, ptrdiff_t K,
                                         ptrdiff_t nr, float *dst)
{
    ptrdiff_t j = 0, k;
#if defined(__AVX512F__)
    if (K <= 16) {
        const __mmask16 m = (__mmask16)((1u << K) - 1u);
        __m512 r[16];
        int i;
        for (; j + 16 <= nr; j += 16) {
            for (i = 0; i < 16; i++)
                r[i] = i < K ? _mm512_loadu_ps(src + i * ps + j) : _mm512_setzero_ps();
            fl_tr16_ps(r);
            for (i = 0; i < 16; i++)
                _mm512_mask_storeu_ps(dst + (j + i) * K, m, r[i]);
        }
    }
#elif defined(FL_TR8_AVX2)
    if (K >= FL_TR_F32_MIN && K <= FL_TR_F32_MAX) {
        /* the chunks of fl_rows_to_planes_f32; the last rewrites values
         * with the same bits */
        __m256 r[8];
        for (; j + 8 <= nr; j += 8)
            for (ptrdiff_t h = 0; h < K; h += 8) {
                const ptrdiff_t h0 = h + 8 > K ? K - 8 : h;
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(src + (h0 + i) * ps + j);
                fl_tr8_ps(r);
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_ps(dst + (j + i) * K + h0, r[i]);
            }
    }
#endif
    for (; j < nr; j++)
        for (k = 0; k < K; k++)
            dst[j * K + k] = src[k * ps + j];
}

static inline void fl_rows_to_planes_f64(const double *src, ptrdiff_t K, ptrdiff_t nr,
                                         double *dst, ptrdiff_t ps, const double *next,
                                         double *mx)
{
    ptrdiff_t j = 0, k;
#if defined(__AVX512F__)
    if (K <= 8) {
        const __mmask8 m = (__mmask8)((1u << K) - 1u);
        __m512d r[8];
        int i;
        for (; j + 8 <= nr; j += 8) {
            if (next)
                FL_TR_PREFETCH(next + j * K, 8 * K * sizeof(double));
            for (i = 0; i < 8; i++)
                r[i] = _mm512_maskz_loadu_pd(m, src + (j + i) * K);
            fl_tr8_pd(r);
            for (k = 0; k < K; k++)
                _mm512_storeu_pd(dst + k * ps + j, r[k]);
            if (mx) {
                __m512d m = _mm512_set1_pd(-INFINITY);
                for (k = 0; k < K; k++)
                    m = _mm512_max_pd(r[k], m);
                _mm512_storeu_pd(mx + j, m);
            }
        }
    }
#endif
    for (; j < nr; j++) {
        double m = -INFINITY, v;
        for (k = 0; k < K; k++) {
            v = src[j * K + k];
            dst[k * ps + j] = v;
            m = v > m ? v : m;
        }
        if (mx)
            mx[j] = m;
    }
}

static inline void fl_planes_to_rows_f64(const double *src, ptrdiff_t ps, ptrdiff_t K,
                                         ptrdiff_t nr, double *dst)
{
    ptrdiff_t j = 0, k;
#if defined(__AVX512F__)
    if (K <= 8) {
        const __mmask8 m = (__mmask8)((1u << K) - 1u);
        __m512d r[8];
        int i;
        for (; j + 8 <= nr; j += 8) {
            for (i = 0; i < 8; i++)
                r[i] = i < K ? _mm512_loadu_pd(src + i * ps + j) : _mm512_setzero_pd();
            fl_tr8_pd(r);
            for (i = 0; i < 8; i++)
                _mm512_mask_storeu_pd(dst + (j + i) * K, m, r[i]);
        }
    }
#endif
    for (; j < nr; j++)
        for (k = 0; k < K; k++)
            dst[j * K + k] = src[k * ps + j];
}

#endif /* FASTLOSS_FLTRANSPOSE_H */
