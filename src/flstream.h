/*
 * flstream.h -- hand a finished block of a kernel's output to memory with
 * non-temporal stores.
 *
 * A gradient is written once and not read back by the kernel; an ordinary
 * store first reads each destination line into the cache (read for
 * ownership), so a loop that reads two arrays and writes one moves four
 * arrays' worth of data.  Streaming stores skip that read.  The kernels
 * compute a block into a small buffer that stays in L1 and copy it out
 * with fl_stream_*; fl_stream_fence() at the end of a work unit orders the
 * streamed stores before the thread's later writes (OpenMP's barrier then
 * publishes them).  SSE2 is part of every x86-64 target; elsewhere the copy
 * is memcpy.
 */
#ifndef FASTLOSS_FLSTREAM_H
#define FASTLOSS_FLSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define FL_STREAM 1
#endif
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* One copy per element type: a single byte-wise copy (head and tail moved a
 * byte at a time) made the element-wise gradients 3-28 % slower. */
static inline void fl_stream_f32(float *dst, const float *src, ptrdiff_t n)
{
#ifdef FL_STREAM
    ptrdiff_t i = 0;
    while (i < n && ((uintptr_t)(dst + i) & 63u)) {   /* to a line boundary */
        dst[i] = src[i];
        i++;
    }
    for (; i + 16 <= n; i += 16) {                     /* one whole line */
#if defined(__AVX512F__)
        _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
#elif defined(__AVX__)
        _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
        _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
#else
        _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
        _mm_stream_ps(dst + i + 4, _mm_loadu_ps(src + i + 4));
        _mm_stream_ps(dst + i + 8, _mm_loadu_ps(src + i + 8));
        _mm_stream_ps(dst + i + 12, _mm_loadu_ps(src + i + 12));
#endif
    }
    for (; i < n; i++)
        dst[i] = src[i];
#else
    memcpy(dst, src, (size_t)n * sizeof(float));
#endif
}

static inline void fl_stream_f64(double *dst, const double *src, ptrdiff_t n)
{
#ifdef FL_STREAM
    ptrdiff_t i = 0;
    while (i < n && ((uintptr_t)(dst + i) & 63u)) {
        dst[i] = src[i];
        i++;
    }
    for (; i + 8 <= n; i += 8) {
#if defined(__AVX512F__)
        _mm512_stream_pd(dst + i, _mm512_loadu_pd(src + i));
#elif defined(__AVX__)
        _mm256_stream_pd(dst + i, _mm256_loadu_pd(src + i));
        _mm256_stream_pd(dst + i + 4, _mm256_loadu_pd(src + i + 4));
#else
        _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
        _mm_stream_pd(dst + i + 2, _mm_loadu_pd(src + i + 2));
        _mm_stream_pd(dst + i + 4, _mm_loadu_pd(src + i + 4));
        _mm_stream_pd(dst + i + 6, _mm_loadu_pd(src + i + 6));
#endif
    }
    for (; i < n; i++)
        dst[i] = src[i];
#else
    memcpy(dst, src, (size_t)n * sizeof(double));
#endif
}

/* dst[0:nbytes] = 0 with non-temporal stores: a dense gradient that is
 * zero but for a few entries (nll_loss: one per row). */
static inline void fl_stream_zero(void *dst, size_t nbytes)
{
#ifdef FL_STREAM
    /* whole 64-byte lines, four stores back to back: a line the
     * write-combining buffer hands on part-filled costs a read of it */
    unsigned char *p = (unsigned char *)dst, *end = p + nbytes;
    const __m128i z = _mm_setzero_si128();
    while (p < end && ((uintptr_t)p & 63u))
        *p++ = 0;
    for (; end - p >= 64; p += 64) {
        _mm_stream_si128((__m128i *)p, z);
        _mm_stream_si128((__m128i *)(p + 16), z);
        _mm_stream_si128((__m128i *)(p + 32), z);
        _mm_stream_si128((__m128i *)(p + 48), z);
    }
    while (p < end)
        *p++ = 0;
#else
    memset(dst, 0, nbytes);
#endif
}

static inline void fl_stream_fence(void)
{
#ifdef FL_STREAM
    _mm_sfence();
#endif
}

#endif /* FASTLOSS_FLSTREAM_H */
