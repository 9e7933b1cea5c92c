/*
 * flcount.h -- how many bytes of a buffer equal each of a few values (the
 * hard confusion matrix's byte codes, _confusion.pyx).
 *
 * The buffer is read as rows of 64 bytes; each value has 64 byte counters
 * (one vector) that a row's compare adds 1 to where it matches, held in
 * registers for the whole buffer (at most 255 rows, so no counter wraps)
 * and added up once at the end.  A counter kept in memory instead is a
 * load, an add and a store per row, and each row's add waits for the last
 * row's store.  With AVX-512 the 16 values of a 4-class matrix are counted
 * in one pass over the buffer (16 of the 32 vector registers); narrower
 * targets keep the counters in memory, 4 values per pass.
 */
#ifndef FASTLOSS_FLCOUNT_H
#define FASTLOSS_FLCOUNT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fastmath.h"           /* FL_ALWAYS_INLINE */

#define FL_COUNT_LANES 64       /* bytes per row */
#define FL_COUNT_ROWS 255       /* rows at most per call */
#if defined(__AVX512BW__)
#include <immintrin.h>
#define FL_COUNT_GROUP 16       /* values per pass */
#else
#define FL_COUNT_GROUP 4
#endif

/* out[q] = #{i < rows * FL_COUNT_LANES: code[i] == k[q]}, q < G (a
 * constant where inlined: the loops over q have a constant length and the
 * tests q < G fold away, so the counters stay in registers). */
FL_ALWAYS_INLINE void fl_count_body(const uint8_t *code, ptrdiff_t rows, const uint8_t *k,
                                   int64_t *out, const int G)
{
#if defined(__AVX512BW__)
    /* a compare into a mask and a masked add: two instructions per value
     * and row (a compare into a vector of -1 and 0 is one more) */
    __m512i acc[FL_COUNT_GROUP], kv[FL_COUNT_GROUP];
    const __m512i one = _mm512_set1_epi8(1);
    for (int q = 0; q < FL_COUNT_GROUP; q++) {
        acc[q] = _mm512_setzero_si512();
        kv[q] = _mm512_set1_epi8((char)k[q < G ? q : 0]);
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const __m512i v = _mm512_loadu_si512((const void *)(code + r * FL_COUNT_LANES));
        for (int q = 0; q < FL_COUNT_GROUP; q++)
            if (q < G)
                acc[q] = _mm512_mask_add_epi8(acc[q], _mm512_cmpeq_epi8_mask(v, kv[q]), one,
                                              acc[q]);
    }
    for (int q = 0; q < FL_COUNT_GROUP; q++)       /* bytes to 8 sums, then one */
        if (q < G)
            out[q] = _mm512_reduce_add_epi64(_mm512_sad_epu8(acc[q], _mm512_setzero_si512()));
#else
    /* byte counters in memory, four values per pass over the buffer (the
     * compiler vectorizes the loop over a row's 64 bytes; with 16 ymm or
     * xmm registers, 16 values' counters would not stay in registers) */
    uint8_t acc[4][FL_COUNT_LANES];
    for (int g = 0; g < G; g += 4) {
        memset(acc, 0, sizeof acc);
        for (ptrdiff_t r = 0; r < rows; r++) {
            const uint8_t *cr = code + r * FL_COUNT_LANES;
            for (int i = 0; i < FL_COUNT_LANES; i++) {
                uint8_t v = cr[i];
                acc[0][i] = (uint8_t)(acc[0][i] + (v == k[g]));
                acc[1][i] = (uint8_t)(acc[1][i] + (v == k[g + 1]));
                acc[2][i] = (uint8_t)(acc[2][i] + (v == k[g + 2]));
                acc[3][i] = (uint8_t)(acc[3][i] + (v == k[g + 3]));
            }
        }
        for (int q = 0; q < 4; q++) {
            int64_t t = 0;
            for (int i = 0; i < FL_COUNT_LANES; i++)
                t += acc[q][i];
            out[g + q] = t;
        }
    }
#endif
}

/* fl_count_body for n values, n <= FL_COUNT_GROUP: G = n rounded up to a
 * multiple of 4 (out and k then hold G entries; the caller pads k with a
 * value that no byte holds). */
static inline void fl_count_bytes(const uint8_t *code, ptrdiff_t rows, const uint8_t *k,
                                  int64_t *out, int n)
{
#if FL_COUNT_GROUP > 4
    if (n <= 4)
        fl_count_body(code, rows, k, out, 4);
    else if (n <= 8)
        fl_count_body(code, rows, k, out, 8);
    else if (n <= 12)
        fl_count_body(code, rows, k, out, 12);
    else
        fl_count_body(code, rows, k, out, 16);
#else
    (void)n;
    fl_count_body(code, rows, k, out, 4);
#endif
}

#endif /* FASTLOSS_FLCOUNT_H */
