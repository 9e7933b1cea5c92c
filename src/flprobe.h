/*
 * flprobe.h -- the vector exp and log throughput of this build's target,
 * and its read bandwidth.
 *
 * The bench's exp floor (fastloss/bench/machine.py) must not come from the
 * kernels it judges.  This is a plain reference loop, compiled with the
 * package for each CPU target: fastmath's full-range float exp (or log), of
 * the accuracy the kernels promise, summed over a 16 KiB buffer that stays
 * in L1d, in 32 float lanes so that gcc keeps the lanes in vector
 * registers.  No memory traffic, no max pass, no reduction across rows: the
 * time is the exp's throughput and nothing else.  The shared C probe
 * (shared/limits) measures the same quantity with its own polynomial; the
 * two are expected to agree within 15 %.
 */
#ifndef FASTLOSS_FLPROBE_H
#define FASTLOSS_FLPROBE_H

#include <stddef.h>
#include <time.h>

#include "fastmath.h"

#define FL_PROBE_FLOATS 4096 /* 16 KiB: L1d is 32 KiB or more on every target */

/* timespec_get is C11 (glibc, macOS, MSVC's UCRT): no POSIX needed */
static inline double fl_probe_now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(FL_HAVE_EXPF_LO8)
/* the 8-lane exp the AVX2 kernels call, in the same 32 lanes; a function of
 * its own so that the log loop's constants do not crowd its registers */
static FL_NOINLINE void fl_probe_sum_exp8(const float *x, ptrdiff_t reps, float *acc)
{
    __m256 a[4];
    for (int q = 0; q < 4; q++)
        a[q] = _mm256_setzero_ps();
    for (ptrdiff_t r = 0; r < reps; r++)
        for (ptrdiff_t i = 0; i < FL_PROBE_FLOATS; i += 32)
            for (int q = 0; q < 4; q++)
                a[q] = _mm256_add_ps(a[q], fl_expf_lo8(_mm256_loadu_ps(x + i + 8 * q)));
    for (int q = 0; q < 4; q++)
        _mm256_storeu_ps(acc + 8 * q, a[q]);
}
#endif

static float fl_probe_sum(int fn, const float *x, ptrdiff_t reps)
{
    float acc[32];
    for (int k = 0; k < 32; k++)
        acc[k] = 0.0f;
    if (fn == 0) {
#if defined(FL_HAVE_EXPF_LO8)
        fl_probe_sum_exp8(x, reps, acc);
#else
        for (ptrdiff_t r = 0; r < reps; r++)
            for (ptrdiff_t i = 0; i < FL_PROBE_FLOATS; i += 32)
                for (int k = 0; k < 32; k++)
                    acc[k] += fl_expf_lo(x[i + k]);
#endif
    } else {
        for (ptrdiff_t r = 0; r < reps; r++)
            for (ptrdiff_t i = 0; i < FL_PROBE_FLOATS; i += 32)
                for (int k = 0; k < 32; k++)
                    acc[k] += fl_logf(x[i + k]);
    }
    for (int w = 16; w > 0; w /= 2)
        for (int k = 0; k < w; k++)
            acc[k] += acc[k + w];
    return acc[0];
}

/* Seconds for `reps` passes of fn (0: exp on [-10, 0], the softmax range;
 * 1: log on (0, 16]) over this thread's own buffer, after one warm-up pass.
 * *sink receives the sum so the loop cannot be dropped. */
static double fl_probe_run(int fn, ptrdiff_t reps, float *sink)
{
    /* aligned as NumPy's large arrays are: a vector load that splits two
     * cache lines would be timed with the exp */
#if defined(__GNUC__) || defined(__clang__)
    float buf[FL_PROBE_FLOATS] __attribute__((aligned(64)));
#else
    float buf[FL_PROBE_FLOATS];
#endif
    for (ptrdiff_t i = 0; i < FL_PROBE_FLOATS; i++) {
        float u = (float)((i * 2654435761u) % FL_PROBE_FLOATS) / FL_PROBE_FLOATS;
        buf[i] = fn == 0 ? -10.0f * u : 16.0f * u + 1e-3f;
    }
    float s = fl_probe_sum(fn, buf, 2);
    double t0 = fl_probe_now();
    s += fl_probe_sum(fn, buf, reps);
    double t = fl_probe_now() - t0;
    *sink = s;
    return t;
}

/* The sum of x[0:n], read once in 64 float lanes (four 512-bit vectors or
 * eight 256-bit ones in flight): a read-bandwidth reference that does not
 * depend on how NumPy's or torch's sum loops are built. */
static double fl_probe_read(const float *x, ptrdiff_t n)
{
    float acc[64];
    ptrdiff_t i = 0;
    double total = 0.0;
    for (int k = 0; k < 64; k++)
        acc[k] = 0.0f;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 64; k++)
            acc[k] += x[i + k];
    for (; i < n; i++)
        total += x[i];
    for (int k = 0; k < 64; k++)
        total += acc[k];
    return total;
}

/* out[i] = exp(x[i]) by the kernels' vector exp (fastmath.h's
 * fl_expf_lo16, with the +inf fix-up above 88.37 when hi, on AVX-512
 * builds; fl_expf_lo8 on AVX2 builds), a vector at a time, the tail by
 * fl_expf_lo; elsewhere all by fl_expf_lo: for the test that they agree
 * bit for bit. */
static void fl_probe_exp16(const float *x, float *out, ptrdiff_t n, int hi)
{
    ptrdiff_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, hi ? fl_expf_lo16(_mm512_loadu_ps(x + i), 1)
                                     : fl_expf_lo16(_mm512_loadu_ps(x + i), 0));
#elif defined(FL_HAVE_EXPF_LO8)
    (void)hi;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, fl_expf_lo8(_mm256_loadu_ps(x + i)));
#else
    (void)hi;
#endif
    for (; i < n; i++)
        out[i] = fl_expf_lo(x[i]);
}

/* out = fl_logf16 of x by 16 lanes on AVX-512 builds, fl_logf8 by 8 on
 * AVX2 builds (fl_logf on the tail and elsewhere) */
static void fl_probe_log16(const float *x, float *out, ptrdiff_t n)
{
    ptrdiff_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, fl_logf16(_mm512_loadu_ps(x + i)));
#elif defined(FL_HAVE_LOGF8)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, fl_logf8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++)
        out[i] = fl_logf(x[i]);
}

#endif /* FASTLOSS_FLPROBE_H */
