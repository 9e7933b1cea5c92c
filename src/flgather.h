/* dst[i] = src[idx[i]] for i < n: the transposes of a C-ordered (rows, K)
 * block into class planes and back, as table-driven gathers from L1.
 * gcc's generic tuning never emits gather instructions (they are slow on
 * some Intel parts), and the scalar strided copy was half of a softmax
 * objective's time on (n, 10) float32 (AVX-512 EPYC); here they are
 * written with intrinsics where the target has them. */
#ifndef FASTLOSS_FLGATHER_H
#define FASTLOSS_FLGATHER_H
#include <stddef.h>
#include <stdint.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
static inline void gb_gather_f32(float *dst, const float *src, const int32_t *idx,
                                 ptrdiff_t n)
{
    ptrdiff_t i = 0;
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
                                 ptrdiff_t n)
{
    ptrdiff_t i = 0;
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

#endif /* FASTLOSS_FLGATHER_H */
