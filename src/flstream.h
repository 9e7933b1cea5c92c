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

static inline void fl_stream_f32(float *dst, const float *src, ptrdiff_t n)
{
#ifdef FL_STREAM
    ptrdiff_t i = 0;
    while (i < n && ((uintptr_t)(dst + i) & 15u)) {   /* to a 16-byte boundary */
        dst[i] = src[i];
        i++;
    }
    for (; i + 4 <= n; i += 4)
        _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
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
    while (i < n && ((uintptr_t)(dst + i) & 15u)) {
        dst[i] = src[i];
        i++;
    }
    for (; i + 2 <= n; i += 2)
        _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
    for (; i < n; i++)
        dst[i] = src[i];
#else
    memcpy(dst, src, (size_t)n * sizeof(double));
#endif
}

static inline void fl_stream_fence(void)
{
#ifdef FL_STREAM
    _mm_sfence();
#endif
}

#endif /* FASTLOSS_FLSTREAM_H */
