/*
 * flhalf.h -- float16 and bfloat16 storage: widen to float32, narrow back.
 *
 * Half-precision arrays are read in their own width (two bytes an element)
 * and widened a chunk at a time into a float32 buffer that stays in L1; the
 * float32 kernel runs on that buffer.  Gradients are computed in float32 and
 * narrowed with round-to-nearest-even on the way out.
 *
 * bfloat16 is the top half of a float32: widening is a 16-bit shift.
 * Narrowing rounds to nearest even by adding 0x7fff plus the lowest kept bit
 * before the shift; NaN keeps its sign and top payload and is made quiet
 * (a NaN whose payload sits in the low bits would otherwise become inf).
 * On AVX2 the narrowing is written with intrinsics, 16 values a step
 * (fl_narrow_bf16_avx2: the same bits for all 2^32 inputs), and can store
 * with non-temporal stores (fl_narrow_bf16_nt).
 * The AVX-512 BF16 instruction vcvtneps2bf16 is not used: it treats
 * subnormal inputs as zero and flushes subnormal results, where this rounding
 * keeps them, so results would depend on the CPU.
 *
 * float16: with F16C (x86-64-v3 and up) vcvtph2ps / vcvtps2ph, which are
 * exact and round to nearest even; elsewhere the same results by integer
 * arithmetic:
 *   widen:  the exponent and mantissa shifted into float32 position and
 *           multiplied by 2^112 (the exponent bias difference), exact for
 *           normal and subnormal halves; inf/NaN get an all-ones exponent.
 *   narrow: |x| >= 2^-14 re-biased and rounded to nearest even by the add
 *           of 0xfff plus the lowest kept bit (a carry into the exponent
 *           gives the next binade or inf, as it should); |x| < 2^-14 by a
 *           float32 add of 0.5, whose ulp 2^-24 is the half subnormal
 *           spacing, so the hardware's rounding is the half's; above the
 *           largest finite half, inf; NaN quiet.
 * All loops are selects between computed values, so gcc vectorizes them.
 */
#ifndef FASTLOSS_FLHALF_H
#define FASTLOSS_FLHALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__F16C__)
#define FL_F16_NATIVE 1
#else
#define FL_F16_NATIVE 0
#endif

/* Storage kinds of an operand: its elements as float32, float16 or bfloat16;
 * U8 (bytes: bool or uint8 masks, read by the element-wise losses as targets). */
enum { FL_KIND_F32 = 0, FL_KIND_F16 = 1, FL_KIND_BF16 = 2, FL_KIND_U8 = 3 };

static inline float fl_bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t fl_f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float fl_bf16_to_f32(uint16_t h) { return fl_bits_f((uint32_t)h << 16); }

static inline uint16_t fl_f32_to_bf16(float f)
{
    uint32_t u = fl_f_bits(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t q = (u >> 16) | 0x40u;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? q : r);
}

static inline float fl_f16_to_f32_soft(uint16_t h)
{
    uint32_t em = (uint32_t)h & 0x7fffu;
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t fin = fl_f_bits(fl_bits_f(em << 13) * 0x1p112f);
    uint32_t naninf = (em << 13) | 0x7f800000u;
    return fl_bits_f(sign | (em >= 0x7c00u ? naninf : fin));
}

static inline uint16_t fl_f32_to_f16_soft(float f)
{
    uint32_t u = fl_f_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint32_t norm = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    uint32_t sub = fl_f_bits(fl_bits_f(a) + 0.5f) - 0x3f000000u;
    uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
    uint32_t h = a < 0x38800000u ? sub : norm;
    h = a >= 0x47800000u ? 0x7c00u : h;
    h = a > 0x7f800000u ? nan : h;
    return (uint16_t)(sign | h);
}

/* src[0:m] of storage kind `kind` (F16 or BF16) widened into dst[0:m]; F32 copied. */
static inline void fl_widen(const void* src, int kind, float* dst, ptrdiff_t m)
{
    const uint16_t* s = (const uint16_t*)src;
    ptrdiff_t i = 0;
    if (kind == FL_KIND_F32) {  /* float32 beside half operands: copied */
        memcpy(dst, src, (size_t)m * sizeof(float));
        return;
    }
    if (kind == FL_KIND_BF16) {
        for (i = 0; i < m; i++)
            dst[i] = fl_bf16_to_f32(s[i]);
        return;
    }
#if FL_F16_NATIVE
    for (; i + 8 <= m; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(s + i))));
#endif
    for (; i < m; i++)
        dst[i] = fl_f16_to_f32_soft(s[i]);
}

/* Bytes src[0:m] (0/1 masks, uint8 labels) as float32 dst[0:m]: exact. */
static inline void fl_widen_u8(const uint8_t* src, float* dst, ptrdiff_t m)
{
    for (ptrdiff_t i = 0; i < m; i++)
        dst[i] = (float)src[i];
}

#if defined(__AVX2__)
/* fl_f32_to_bf16 over src[0:m], 16 elements a step; returns how many it
 * narrowed (m rounded down to 16).  gcc 12 vectorizes the scalar loop with
 * an unsigned compare (a min and an equality) and a second pack per step;
 * the NaN test is a signed compare here ((u & 0x7fffffff) and 0x7f800000
 * are both non-negative int32), and one pack and one lane permute give 16
 * halves: 0.14-0.18 ns an element against 0.27-0.30 (one thread, 1536
 * floats in L1, AMD EPYC Zen 3). */
static inline ptrdiff_t fl_narrow_bf16_avx2(const float* src, uint16_t* d, ptrdiff_t m, int nt)
{
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
    const __m256i mag = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    ptrdiff_t i = 0;
    for (; i + 16 <= m; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * k));
            __m256i h = _mm256_srli_epi32(u, 16);
            __m256i rn = _mm256_srli_epi32(
                _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(h, one)), 16);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, mag), inf);
            r[k] = _mm256_blendv_epi8(rn, _mm256_or_si256(h, quiet), nan);
        }
        /* the pack interleaves 128-bit lanes: 0-3 8-11 4-7 12-15, put back in order */
        __m256i v = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
        if (nt)
            _mm256_stream_si256((__m256i*)(d + i), v);
        else
            _mm256_storeu_si256((__m256i*)(d + i), v);
    }
    return i;
}
#endif

/* fl_narrow to bfloat16 with non-temporal stores, for a dst on a 32-byte
 * boundary: straight from the registers, where the streamed copy of
 * flstream.h would first store the halves to an L1 buffer.  Returns 0 (and
 * writes nothing) on targets without AVX2. */
static inline int fl_narrow_bf16_nt(const float* src, uint16_t* d, ptrdiff_t m)
{
#if defined(__AVX2__)
    ptrdiff_t i = fl_narrow_bf16_avx2(src, d, m, 1);
    for (; i < m; i++)
        d[i] = fl_f32_to_bf16(src[i]);
    return 1;
#else
    (void)src; (void)d; (void)m;
    return 0;
#endif
}

/* src[0:m] into dst[0:m] of kind `kind`: rounded to nearest even for F16 and
 * BF16, copied for F32. */
static inline void fl_narrow(const float* src, void* dst, int kind, ptrdiff_t m)
{
    uint16_t* d = (uint16_t*)dst;
    ptrdiff_t i = 0;
    if (kind == FL_KIND_F32) {
        memcpy(dst, src, (size_t)m * sizeof(float));
        return;
    }
    if (kind == FL_KIND_BF16) {
#if defined(__AVX2__)
        i = fl_narrow_bf16_avx2(src, d, m, 0);
#endif
        for (; i < m; i++)
            d[i] = fl_f32_to_bf16(src[i]);
        return;
    }
#if FL_F16_NATIVE
    for (; i + 8 <= m; i += 8)
        _mm_storeu_si128((__m128i*)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < m; i++)
        d[i] = fl_f32_to_f16_soft(src[i]);
}

#endif
