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

/* Pairs of two uint8 label maps of at most 4 classes, counted without
 * codes: each 64-position row becomes 64-bit masks (the positions counted,
 * then bits 0 and 1 of the target and of the prediction), and
 * out[t * 4 + p] is counted from popcounts of ands of those masks in
 * general-purpose registers (fl_pairs_row), against 16 compares into masks
 * and 16 masked adds of 512 bits per row after a pass that writes the
 * codes.
 * A position is counted when target < C, prediction < C and the target is
 * not ig (ig < 0: none); the result is 1 when some position that is not
 * ignored holds a label >= C (the caller finds the first), else 0. */
#if defined(__AVX512BW__)
#define FL_COUNT_PAIRS4 1
/* one row: keep = the positions read and not ignored, vc = C in every
 * byte; K = max(C, 2), a constant: the classes counted.  Counted are the
 * products of the target's monomials (every position, bit 0, bit 1, both)
 * with the prediction's: popcount(ok & t0 & p1) and the like, from which
 * fl_pairs_flush recovers the pairs by inclusion and exclusion (class 1 is
 * bit 0 without bit 1: x0 - x01).  Products need one and each where the
 * pairs themselves need the masks of each class first.  Monomial i of the
 * target goes to acc[i] in four 16-bit fields, one per monomial of the
 * prediction (64 per row at most: FL_PAIRS_ROWS rows fit), so the counters
 * stay in registers: 16 counters of 64 bits would not, and an add to
 * memory per count and row costs more than the shift that packs a field. */
#define FL_PAIRS_ROWS 1023
FL_ALWAYS_INLINE uint64_t fl_pairs_row(__m512i t, __m512i p, __mmask64 keep, __m512i vc,
                                       uint64_t acc[4], const int K)
{
    const __mmask64 valid = _mm512_mask_cmplt_epu8_mask(keep, t, vc) &
                            _mm512_mask_cmplt_epu8_mask(keep, p, vc);
    const uint64_t ok = _cvtmask64_u64(valid);
    const uint64_t t0 = ok & _cvtmask64_u64(_mm512_test_epi8_mask(t, _mm512_set1_epi8(1)));
    const uint64_t p0 = _cvtmask64_u64(_mm512_test_epi8_mask(p, _mm512_set1_epi8(1)));
    /* monomials counted: 2 (1, bit 0) for two classes, 3 for three (no
     * label has both bits), 4 for four */
    const int m = K < 4 ? K : 4;
    uint64_t t1 = 0, p1 = 0;
    if (K > 2) {
        t1 = ok & _cvtmask64_u64(_mm512_test_epi8_mask(t, _mm512_set1_epi8(2)));
        p1 = _cvtmask64_u64(_mm512_test_epi8_mask(p, _mm512_set1_epi8(2)));
    }
    const uint64_t M[4] = {ok, t0, t1, t0 & t1};
    const uint64_t N[4] = {~0ull, p0, p1, p0 & p1};
    for (int i = 0; i < m; i++) {
        uint64_t f = 0;
        for (int j = 0; j < m; j++)
            f += (uint64_t)__builtin_popcountll(M[i] & N[j]) << (16 * j);
        acc[i] += f;
    }
    return _cvtmask64_u64(keep & ~valid);
}

/* out[a * 4 + b] += the pairs in acc's monomial counts, acc cleared */
FL_ALWAYS_INLINE void fl_pairs_flush(uint64_t acc[4], int64_t out[16])
{
    int64_t r[4][4], c[4][4];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++)
            r[i][j] = (int64_t)((acc[i] >> (16 * j)) & 0xffffu);
        acc[i] = 0;
    }
    for (int j = 0; j < 4; j++) {      /* the target's classes */
        c[3][j] = r[3][j];
        c[1][j] = r[1][j] - r[3][j];
        c[2][j] = r[2][j] - r[3][j];
        c[0][j] = r[0][j] - r[1][j] - r[2][j] + r[3][j];
    }
    for (int a = 0; a < 4; a++) {      /* the prediction's */
        out[a * 4 + 3] += c[a][3];
        out[a * 4 + 1] += c[a][1] - c[a][3];
        out[a * 4 + 2] += c[a][2] - c[a][3];
        out[a * 4 + 0] += c[a][0] - c[a][1] - c[a][2] + c[a][3];
    }
}

FL_ALWAYS_INLINE int fl_count_pairs_body(const uint8_t *tg, const uint8_t *pr, ptrdiff_t n,
                                        int C, int ig, int64_t out[16], const int K)
{
    const __m512i vi = _mm512_set1_epi8((char)ig), vc = _mm512_set1_epi8((char)C);
    uint64_t acc[4] = {0, 0, 0, 0};
    uint64_t bad = 0;
    ptrdiff_t i = 0;
    for (int q = 0; q < 16; q++)
        out[q] = 0;
    while (n - i >= FL_COUNT_LANES) {
        ptrdiff_t stop = n - (n - i) % FL_COUNT_LANES;
        if (stop - i > FL_PAIRS_ROWS * FL_COUNT_LANES)
            stop = i + FL_PAIRS_ROWS * FL_COUNT_LANES;
        if (ig < 0) {
            for (; i < stop; i += FL_COUNT_LANES)
                bad |= fl_pairs_row(_mm512_loadu_si512((const void *)(tg + i)),
                                    _mm512_loadu_si512((const void *)(pr + i)), ~(__mmask64)0,
                                    vc, acc, K);
        } else {
            for (; i < stop; i += FL_COUNT_LANES) {
                const __m512i t = _mm512_loadu_si512((const void *)(tg + i));
                bad |= fl_pairs_row(t, _mm512_loadu_si512((const void *)(pr + i)),
                                    ~_mm512_cmpeq_epi8_mask(t, vi), vc, acc, K);
            }
        }
        fl_pairs_flush(acc, out);
    }
    if (i < n) {   /* the last row, its bytes past n neither read nor counted */
        const __mmask64 in = _bzhi_u64(~0ull, (unsigned)(n - i));
        const __m512i t = _mm512_maskz_loadu_epi8(in, tg + i);
        const __mmask64 keep = ig < 0 ? in : in & ~_mm512_cmpeq_epi8_mask(t, vi);
        bad |= fl_pairs_row(t, _mm512_maskz_loadu_epi8(in, pr + i), keep, vc, acc, K);
        fl_pairs_flush(acc, out);
    }
    return bad != 0;
}

/* fl_count_pairs_body for C in [1, 4] (for C = 1 the pairs of two
 * classes are counted, those with a 1 never valid) */
static inline int fl_count_pairs4(const uint8_t *tg, const uint8_t *pr, ptrdiff_t n, int C,
                                  int ig, int64_t out[16])
{
    if (C <= 2)
        return fl_count_pairs_body(tg, pr, n, C, ig, out, 2);
    if (C == 3)
        return fl_count_pairs_body(tg, pr, n, C, ig, out, 3);
    return fl_count_pairs_body(tg, pr, n, C, ig, out, 4);
}
#else
#define FL_COUNT_PAIRS4 0
static inline int fl_count_pairs4(const uint8_t *tg, const uint8_t *pr, ptrdiff_t n, int C,
                                  int ig, int64_t out[16])
{
    (void)tg; (void)pr; (void)n; (void)C; (void)ig; (void)out;
    return 0;   /* not called: FL_COUNT_PAIRS4 is 0 */
}
#endif

#endif /* FASTLOSS_FLCOUNT_H */
