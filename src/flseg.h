/*
 * flseg.h -- the hot blocks of the soft Dice family (softmax over a few
 * classes, a label map): the statistics (with dice_ce's cross-entropy) and
 * the gradient, each in one loop over the block's positions.
 *
 * _segmentation.pyx's general path takes a block in passes: the
 * exponentials into a buffer (and the max and sum as doubles), 1/sum into a
 * second one, then one pass per class that reads both back and adds the
 * overlap sums.  Here a position's C values stay in registers from the load
 * to the sums: per 16 positions the exponentials, one division, and per
 * class an add, a masked add and a count.  The arithmetic is the general
 * path's, operation for operation (the same max and safe shift, the float
 * sum of the exponentials in class order, r = 1 / sum times the ignore
 * mask, p = e r, p^2 for squared_pred), so the Dice sums have the same
 * bits either way.  Other class counts keep the passes.
 */
#ifndef FASTLOSS_FLSEG_H
#define FASTLOSS_FLSEG_H
#include <stddef.h>
#include "fastmath.h"

#define FL_SEG_MAXC 8
/* positions per block: the stride of the accumulator planes, a constant so
 * that the compiler sees that the planes of different classes are apart by
 * more than a vector (the kernels' SEG_BLOCK) */
#define FL_SEG_PB 128

/* the gradient planes are a run-time stride apart, never closer than a
 * block: no dependence between positions (without the hint gcc wants more
 * run-time overlap tests than it makes for more than three classes) */
#if defined(__clang__)
#define FL_SEG_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FL_SEG_IVDEP _Pragma("GCC ivdep")
#else
#define FL_SEG_IVDEP
#endif

/* A position's C logits x[c * xs] into v, their exponentials after the
 * shift into e; returns their float sum (class order) and sets *shift (the
 * max over the classes, a NaN passed over; 0 unless finite: safe_shift). */
FL_ALWAYS_INLINE float fl_seg_position(const float *FL_RESTRICT x, ptrdiff_t xs,
                                       const int C, float *v, float *e, float *shift)
{
    float mx = -INFINITY, sm = 0.0f;
    for (int c = 0; c < C; c++) {
        v[c] = x[c * xs];
        mx = v[c] > mx ? v[c] : mx;
    }
    mx = mx - mx == 0.0f ? mx : 0.0f;
    for (int c = 0; c < C; c++) {
        e[c] = fl_expf_lo(v[c] - mx);
        sm = sm + e[c];
    }
    *shift = mx;
    return sm;
}

/* The cross-entropy in the statistics loop needs the selects of AVX (SSE2
 * alone leaves that loop scalar): elsewhere the caller keeps its passes. */
#if defined(__AVX__)
#define FL_SEG_CE_IN_LOOP 1
#else
#define FL_SEG_CE_IN_LOOP 0
#endif

/* the switch over the class counts of the one-loop blocks */
#define FL_SEG_EACH_C(CASE) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)

/* For j < nb, with the C logits x[c * xs + j], the label yy[j] (-1:
 * ignored or bad) and the ignore mask vm[j] (0 or 1):
 *   fk[c * PB + j]           += p_c where yy[j] == c + off   (intersection)
 *   fk[(C + c) * PB + j]     += p_c                          (prediction)
 *   cnt[c * PB + j]          += (yy[j] == c + off)           (label count)
 *   fk[(2 C + c) * PB + j]   += p_c^2                        (with sq: P2)
 * p_c = softmax(x)_c vm[j] (vm is 1 at every valid label when nothing is
 * ignored, and a product by 1 is exact).  With ce (the cross-entropy of
 * dice_ce, class weights wf[c]), A = wf[c] of the labelled class (0 if
 * none) and its logit x_y:
 *   cfk[j] += A ((shift - x_y) + log(sum_c exp(x_c - shift)))   (the loss)
 *   cfk[PB + j] += A,   cfk[2 PB + j] += vm[j]
 * in float (a position's loss to float precision: the shift minus the
 * label's logit first, so a confident position loses no digits; the AVX-512
 * form with one weight for all classes moves the logs' part to the block's
 * first 16 lanes, one log of a product: the same sum to float rounding, not
 * the same bits as the passes').  C, sq and
 * ce are constants where the body is inlined: with C a variable (or options
 * tested inside the loop) gcc does not vectorize the loop over the
 * positions. */
FL_ALWAYS_INLINE void fl_seg_overlap_body(const float *FL_RESTRICT x, ptrdiff_t xs,
                                          ptrdiff_t nb, const int C,
                                          const int *FL_RESTRICT yy, int off,
                                          const float *FL_RESTRICT vm,
                                          float *FL_RESTRICT fk, int *FL_RESTRICT cnt,
                                          const int sq, const int ce,
                                          const float *FL_RESTRICT wf,
                                          float *FL_RESTRICT cfk)
{
    const ptrdiff_t PB = FL_SEG_PB;
    float w[FL_SEG_MAXC];                       /* read once: a load under a select stays scalar */
    for (int c = 0; c < C; c++)
        w[c] = ce ? wf[c] : 0.0f;
    for (ptrdiff_t j = 0; j < nb; j++) {
        float v[FL_SEG_MAXC], e[FL_SEG_MAXC], mx, xo = 0.0f, A = 0.0f;
        float sm = fl_seg_position(x + j, xs, C, v, e, &mx);
        float r = 1.0f / sm * vm[j];
        int y = yy[j];
        for (int c = 0; c < C; c++) {
            float p = e[c] * r;
            int sel = y == c + off;
            fk[(C + c) * PB + j] += p;
            fk[c * PB + j] += sel ? p : 0.0f;
            if (sq)
                fk[(2 * C + c) * PB + j] += p * p;
            cnt[c * PB + j] += sel;
            if (ce) {
                xo = sel ? v[c] : xo;
                A = sel ? w[c] : A;
            }
        }
        if (ce) {
            cfk[j] += A * ((mx - xo) + fl_logf(sm));
            cfk[PB + j] += A;
            cfk[2 * PB + j] += vm[j];
        }
    }
}

#if defined(__AVX512F__)
/* fl_seg_overlap_body with 16 positions a vector in registers and
 * fastmath's 16-lane exp (vscalefps: 14 instructions where gcc makes 17 of
 * fl_expf_lo); the same operations in the same order, so the same bits.
 * Arguments above 0 (a non-finite maximum, whose safe shift is 0) take the
 * exp's +inf fix-up, tested once per vector.  With ce, the position losses
 * with fastmath's 16-lane log (fl_logf's bits, half its instructions).
 *
 * G (1 or 2) groups of 16 positions from j, each step written for the
 * groups side by side: a group is one long chain (max, exp, sum, division,
 * sums) and the loop runs at the same speed in L1 as from memory, so it is
 * bound by the core; two chains interleaved let the out-of-order window
 * overlap them (4-class statistics of (2, 4, 160^3): 0.91-0.94x of one group
 * at a time, in cache 0.94-0.96x). */
FL_ALWAYS_INLINE void fl_seg_overlap_groups(const float *FL_RESTRICT x, ptrdiff_t xs,
                                            ptrdiff_t j, const int G, const int C,
                                            const int *FL_RESTRICT yy, int off,
                                            const float *FL_RESTRICT vm,
                                            float *FL_RESTRICT fk, int *FL_RESTRICT cnt,
                                            const int sq, const int ce,
                                            const float *FL_RESTRICT wf,
                                            float *FL_RESTRICT cfk, __m512 *pr)
{
    const ptrdiff_t PB = FL_SEG_PB;
    __m512 v[2][FL_SEG_MAXC], e[2][FL_SEG_MAXC], mx[2], sm[2], xo[2], A[2], r[2];
    __m512i y[2];
    __mmask16 fin[2], all = 0xffff;
    for (int g = 0; g < G; g++) {
        mx[g] = _mm512_set1_ps(-INFINITY);
        sm[g] = _mm512_setzero_ps();
        xo[g] = _mm512_setzero_ps();
        A[g] = _mm512_setzero_ps();
    }
    for (int c = 0; c < C; c++)
        for (int g = 0; g < G; g++) {
            v[g][c] = _mm512_loadu_ps(x + c * xs + j + 16 * g);
            mx[g] = _mm512_max_ps(v[g][c], mx[g]);   /* v > mx ? v : mx: NaN passed over */
        }
    for (int g = 0; g < G; g++) {
        fin[g] = _mm512_cmp_ps_mask(_mm512_sub_ps(mx[g], mx[g]), _mm512_setzero_ps(),
                                    _CMP_EQ_OQ);
        mx[g] = _mm512_maskz_mov_ps(fin[g], mx[g]);
        all &= fin[g];
    }
    if (all == 0xffff)
        for (int c = 0; c < C; c++)
            for (int g = 0; g < G; g++) {
                e[g][c] = fl_expf_lo16(_mm512_sub_ps(v[g][c], mx[g]), 0);
                sm[g] = _mm512_add_ps(sm[g], e[g][c]);
            }
    else
        for (int c = 0; c < C; c++)
            for (int g = 0; g < G; g++) {
                e[g][c] = fl_expf_lo16(_mm512_sub_ps(v[g][c], mx[g]), 1);
                sm[g] = _mm512_add_ps(sm[g], e[g][c]);
            }
    for (int g = 0; g < G; g++) {
        r[g] = _mm512_mul_ps(_mm512_div_ps(_mm512_set1_ps(1.0f), sm[g]),
                             _mm512_loadu_ps(vm + j + 16 * g));
        y[g] = _mm512_loadu_si512((const void *)(yy + j + 16 * g));
    }
    for (int c = 0; c < C; c++)
        for (int g = 0; g < G; g++) {
            ptrdiff_t i = j + 16 * g;
            __m512 p = _mm512_mul_ps(e[g][c], r[g]);
            __mmask16 sel = _mm512_cmpeq_epi32_mask(y[g], _mm512_set1_epi32(c + off));
            float *fp = fk + (C + c) * PB + i, *fi = fk + c * PB + i;
            _mm512_storeu_ps(fp, _mm512_add_ps(_mm512_loadu_ps(fp), p));
            __m512 ai = _mm512_loadu_ps(fi);
            _mm512_storeu_ps(fi, _mm512_mask_add_ps(ai, sel, ai, p));
            if (sq) {
                float *f2 = fk + (2 * C + c) * PB + i;
                _mm512_storeu_ps(f2, _mm512_fmadd_ps(p, p, _mm512_loadu_ps(f2)));
            }
            __m512i ci = _mm512_loadu_si512((const void *)(cnt + c * PB + i));
            _mm512_storeu_si512((void *)(cnt + c * PB + i),
                                _mm512_mask_add_epi32(ci, sel, ci, _mm512_set1_epi32(1)));
            if (ce) {
                xo[g] = _mm512_mask_mov_ps(xo[g], sel, v[g][c]);
                A[g] = _mm512_mask_mov_ps(A[g], sel, _mm512_set1_ps(wf[c]));
            }
        }
    if (ce && pr && all == 0xffff) {
        /* one weight for every class: the log of the sums left to the
         * block's end, as a product (fl_seg_overlap_avx512) */
        for (int g = 0; g < G; g++) {
            float *l = cfk + j + 16 * g;
            const __mmask16 k = _mm512_cmp_ps_mask(A[g], _mm512_setzero_ps(), _CMP_NEQ_UQ);
            *pr = _mm512_mul_ps(*pr, _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), k, sm[g]));
            _mm512_storeu_ps(l, _mm512_fmadd_ps(A[g], _mm512_sub_ps(mx[g], xo[g]),
                                                _mm512_loadu_ps(l)));
            _mm512_storeu_ps(l + PB, _mm512_add_ps(_mm512_loadu_ps(l + PB), A[g]));
            _mm512_storeu_ps(l + 2 * PB, _mm512_add_ps(_mm512_loadu_ps(l + 2 * PB),
                                                       _mm512_loadu_ps(vm + j + 16 * g)));
        }
    } else if (ce)   /* fl_seg_overlap_body's expressions, the multiply-add where gcc contracts */
        for (int g = 0; g < G; g++) {
            float *l = cfk + j + 16 * g;
            __m512 t = _mm512_add_ps(_mm512_sub_ps(mx[g], xo[g]), fl_logf16(sm[g]));
            _mm512_storeu_ps(l, _mm512_fmadd_ps(A[g], t, _mm512_loadu_ps(l)));
            _mm512_storeu_ps(l + PB, _mm512_add_ps(_mm512_loadu_ps(l + PB), A[g]));
            _mm512_storeu_ps(l + 2 * PB, _mm512_add_ps(_mm512_loadu_ps(l + 2 * PB),
                                                       _mm512_loadu_ps(vm + j + 16 * g)));
        }
}

/* the block: groups of 32 positions, then of 16, then the scalar form */
FL_ALWAYS_INLINE void fl_seg_overlap_avx512(const float *FL_RESTRICT x, ptrdiff_t xs,
                                            ptrdiff_t nb, const int C,
                                            const int *FL_RESTRICT yy, int off,
                                            const float *FL_RESTRICT vm,
                                            float *FL_RESTRICT fk, int *FL_RESTRICT cnt,
                                            const int sq, const int ce,
                                            const float *FL_RESTRICT wf,
                                            float *FL_RESTRICT cfk)
{
    ptrdiff_t j = 0;
    /* with one class weight w (none given: 1), the loss's
     * w sum_j log(s_j) over the block is w log(prod_j s_j): a lane's sums
     * (each in [1, C] after a finite shift, so at most 8^8 over the 8
     * groups of a block) are multiplied, and one log per block replaces
     * one per 16 positions (4-class dice_ce statistics of (2, 4, 160^3):
     * 0.88x the time).  A group with a non-finite shift keeps its own. */
    int uni = ce;
    for (int c = 1; uni && c < C; c++)
        uni = wf[c] == wf[0];
    __m512 pr = _mm512_set1_ps(1.0f);
    /* with ce, two groups' values and sums spill (no gain measured) */
    for (; !ce && j + 32 <= nb; j += 32)
        fl_seg_overlap_groups(x, xs, j, 2, C, yy, off, vm, fk, cnt, sq, ce, wf, cfk, NULL);
    for (; j + 16 <= nb; j += 16)
        fl_seg_overlap_groups(x, xs, j, 1, C, yy, off, vm, fk, cnt, sq, ce, wf, cfk,
                              uni ? &pr : NULL);
    if (uni && j > 0)
        _mm512_storeu_ps(cfk, _mm512_fmadd_ps(_mm512_set1_ps(wf[0]), fl_logf16(pr),
                                              _mm512_loadu_ps(cfk)));
    if (j < nb)   /* the block's last positions, the loop over positions */
        fl_seg_overlap_body(x + j, xs, nb - j, C, yy + j, off, vm + j, fk + j, cnt + j, sq, ce,
                            wf, cfk ? cfk + j : NULL);
}
#define FL_SEG_OVERLAP fl_seg_overlap_avx512
#elif defined(FL_HAVE_EXPF_LO8)
/* fl_seg_overlap_body for AVX2 builds, 8 positions a vector, in two loops
 * over the block: the first takes each group's maximum, exponentials (into
 * E, in L1), sum and 1 / sum (into R), the second the class sums from E and
 * R.  Written as one loop, each group is one chain (max, exp, sum,
 * division, sums) longer than the out-of-order window can overlap with
 * the next group's (2 threads, AMD EPYC Zen 3: Dice statistics at 0.98 ns
 * per value in L2, most samples on the division's result); gcc's own
 * vectorization of the body kept v[] and e[] on the stack and branched
 * around a masked load.  fastmath's 8-lane exp (fl_expf_lo's bits, so no
 * fix-up), the selects as blends and ands; the operations and their order
 * are fl_seg_overlap_body's, so the same bits, except that with ce and one
 * class weight the logs are left to the block's end as a product, as in
 * fl_seg_overlap_avx512. */
FL_ALWAYS_INLINE void fl_seg_overlap_avx2(const float *FL_RESTRICT x, ptrdiff_t xs,
                                          ptrdiff_t nb, const int C,
                                          const int *FL_RESTRICT yy, int off,
                                          const float *FL_RESTRICT vm,
                                          float *FL_RESTRICT fk, int *FL_RESTRICT cnt,
                                          const int sq, const int ce,
                                          const float *FL_RESTRICT wf,
                                          float *FL_RESTRICT cfk)
{
    const ptrdiff_t PB = FL_SEG_PB;
    const ptrdiff_t nv = nb & ~(ptrdiff_t)7;
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    float E[FL_SEG_MAXC * FL_SEG_PB] __attribute__((aligned(32)));
    float R[FL_SEG_PB] __attribute__((aligned(32)));
    float MX[FL_SEG_PB] __attribute__((aligned(32)));   /* with ce: shift */
    float SM[FL_SEG_PB] __attribute__((aligned(32)));   /* and sum */
    int fin_all[FL_SEG_PB / 8];
    ptrdiff_t j;
    for (j = 0; j < nv; j += 8) {
        __m256 v[FL_SEG_MAXC], mx = _mm256_set1_ps(-INFINITY), sm = zero;
        for (int c = 0; c < C; c++) {
            v[c] = _mm256_loadu_ps(x + c * xs + j);
            mx = _mm256_max_ps(v[c], mx);   /* v > mx ? v : mx: NaN passed over */
        }
        const __m256 fin = _mm256_cmp_ps(_mm256_sub_ps(mx, mx), zero, _CMP_EQ_OQ);
        mx = _mm256_and_ps(fin, mx);
        for (int c = 0; c < C; c++) {
            __m256 e = fl_expf_lo8(_mm256_sub_ps(v[c], mx));
            _mm256_store_ps(E + c * PB + j, e);
            sm = _mm256_add_ps(sm, e);
        }
        _mm256_store_ps(R + j, _mm256_mul_ps(_mm256_div_ps(one, sm), _mm256_loadu_ps(vm + j)));
        if (ce) {
            _mm256_store_ps(MX + j, mx);
            _mm256_store_ps(SM + j, sm);
            fin_all[j / 8] = _mm256_movemask_ps(fin) == 0xff;
        }
    }
    int uni = ce;   /* one class weight: one log per lane per block */
    for (int c = 1; uni && c < C; c++)
        uni = wf[c] == wf[0];
    __m256 pr = one;
    /* the logs the class-sum loop needs (several class weights, or a
     * non-finite shift) in place of their sums, in a loop of their own:
     * that loop holds no log then (inline there, 1.015-1.05x the time of
     * Dice+CE statistics with one weight) */
    for (j = 0; ce && j < nv; j += 8)
        if (!uni || !fin_all[j / 8])
            _mm256_store_ps(SM + j, fl_logf8(_mm256_load_ps(SM + j)));
    for (j = 0; j < nv; j += 8) {
        const __m256 r = _mm256_load_ps(R + j);
        const __m256i y = _mm256_loadu_si256((const __m256i *)(yy + j));
        __m256 xo = zero, A = zero;
        for (int c = 0; c < C; c++) {
            __m256 p = _mm256_mul_ps(_mm256_load_ps(E + c * PB + j), r);
            __m256i seli = _mm256_cmpeq_epi32(y, _mm256_set1_epi32(c + off));
            __m256 sel = _mm256_castsi256_ps(seli);
            float *fp = fk + (C + c) * PB + j, *fi = fk + c * PB + j;
            _mm256_storeu_ps(fp, _mm256_add_ps(_mm256_loadu_ps(fp), p));
            _mm256_storeu_ps(fi, _mm256_add_ps(_mm256_loadu_ps(fi), _mm256_and_ps(sel, p)));
            if (sq) {
                float *f2 = fk + (2 * C + c) * PB + j;
                _mm256_storeu_ps(f2, _mm256_fmadd_ps(p, p, _mm256_loadu_ps(f2)));
            }
            __m256i *ci = (__m256i *)(cnt + c * PB + j);
            _mm256_storeu_si256(ci, _mm256_sub_epi32(_mm256_loadu_si256(ci), seli));
            if (ce) {
                xo = _mm256_blendv_ps(xo, _mm256_loadu_ps(x + c * xs + j), sel);
                A = _mm256_blendv_ps(A, _mm256_set1_ps(wf[c]), sel);
            }
        }
        if (!ce)
            continue;
        float *l = cfk + j;
        const __m256 mx = _mm256_load_ps(MX + j), sm = _mm256_load_ps(SM + j);
        if (uni && fin_all[j / 8]) {
            const __m256 k = _mm256_cmp_ps(A, zero, _CMP_NEQ_UQ);
            pr = _mm256_mul_ps(pr, _mm256_blendv_ps(one, sm, k));
            _mm256_storeu_ps(l, _mm256_fmadd_ps(A, _mm256_sub_ps(mx, xo), _mm256_loadu_ps(l)));
        } else {   /* sm holds the log of the sum */
            __m256 t = _mm256_add_ps(_mm256_sub_ps(mx, xo), sm);
            _mm256_storeu_ps(l, _mm256_fmadd_ps(A, t, _mm256_loadu_ps(l)));
        }
        _mm256_storeu_ps(l + PB, _mm256_add_ps(_mm256_loadu_ps(l + PB), A));
        _mm256_storeu_ps(l + 2 * PB, _mm256_add_ps(_mm256_loadu_ps(l + 2 * PB),
                                                   _mm256_loadu_ps(vm + j)));
    }
    if (uni && nv > 0)
        _mm256_storeu_ps(cfk, _mm256_fmadd_ps(_mm256_set1_ps(wf[0]), fl_logf8(pr),
                                              _mm256_loadu_ps(cfk)));
    if (nv < nb)
        fl_seg_overlap_body(x + nv, xs, nb - nv, C, yy + nv, off, vm + nv, fk + nv, cnt + nv,
                            sq, ce, wf, cfk ? cfk + nv : NULL);
}
#define FL_SEG_OVERLAP fl_seg_overlap_avx2
#else
#define FL_SEG_OVERLAP fl_seg_overlap_body
#endif

/* fl_seg_overlap_body for 2 <= C <= FL_SEG_MAXC and accumulator planes
 * FL_SEG_PB apart (sq: the squared sums too; ce: cfk not NULL); returns 0,
 * or -1 for another C or PB (the caller's general path).  No argument may
 * overlap another (restrict: without it gcc wants more run-time overlap
 * tests than it makes, and the loop stays scalar). */
static FL_NOINLINE int fl_seg_overlap_f32(const float *FL_RESTRICT x, ptrdiff_t xs,
                                          ptrdiff_t nb, int C, const int *FL_RESTRICT yy,
                                          int off, const float *FL_RESTRICT vm,
                                          float *FL_RESTRICT fk, int *FL_RESTRICT cnt,
                                          ptrdiff_t PB, int sq, const float *FL_RESTRICT wf,
                                          float *FL_RESTRICT cfk)
{
    if (PB != FL_SEG_PB || nb > FL_SEG_PB)
        return -1;
    switch (C) {
#define FL_SEG_BODY(K, SQ, CE) \
    FL_SEG_OVERLAP(x, xs, nb, K, yy, off, vm, fk, cnt, SQ, CE, wf, cfk)
#define FL_SEG_CASE(K)                                                 \
    case K:                                                            \
        if (sq && cfk != NULL)                                         \
            FL_SEG_BODY(K, 1, 1);                                      \
        else if (sq)                                                   \
            FL_SEG_BODY(K, 1, 0);                                      \
        else if (cfk != NULL)                                          \
            FL_SEG_BODY(K, 0, 1);                                      \
        else                                                           \
            FL_SEG_BODY(K, 0, 0);                                      \
        return 0;
        FL_SEG_EACH_C(FL_SEG_CASE)
#undef FL_SEG_CASE
#undef FL_SEG_BODY
    default:
        return -1;
    }
}

/* The gradient pass of the same case: with p_c = softmax(x)_c (no ignore
 * mask), g_c = (yy[j] == c + off) and the image's coefficients of dL/dp,
 *   d_c = fa[c] g_c + vm[j] (fb[c] + fb2[c] p_c),   dot = sum_c p_c d_c,
 *   out[c * os + j] = p_c (d_c - dot)  [+ kw[j] (A p_c - fw[c] g_c) with ce,
 * A = sum_c fw[c] g_c, the cross-entropy term of dice_ce], os apart (os
 * >= nb: the gradient's planes, or a block buffer).  The expressions are
 * the passes' (_grad_unit), in the same order, so the gradient has the
 * same bits. */
FL_ALWAYS_INLINE void fl_seg_grad_body(const float *FL_RESTRICT x, ptrdiff_t xs,
                                       ptrdiff_t nb, const int C,
                                       const int *FL_RESTRICT yy, int off,
                                       const float *FL_RESTRICT vm,
                                       const float *FL_RESTRICT fa,
                                       const float *FL_RESTRICT fb,
                                       const float *FL_RESTRICT fb2, const int ce,
                                       const float *FL_RESTRICT kw,
                                       const float *FL_RESTRICT fw,
                                       float *FL_RESTRICT out, ptrdiff_t os)
{
    FL_SEG_IVDEP
    for (ptrdiff_t j = 0; j < nb; j++) {
        float v[FL_SEG_MAXC], p[FL_SEG_MAXC], d[FL_SEG_MAXC], mx, dot = 0.0f, A = 0.0f;
        float r = 1.0f / fl_seg_position(x + j, xs, C, v, p, &mx);
        int y = yy[j];
        for (int c = 0; c < C; c++) {
            float gc = y == c + off ? 1.0f : 0.0f;
            p[c] = p[c] * r;
            d[c] = fa[c] * gc + vm[j] * (fb[c] + fb2[c] * p[c]);
            dot += p[c] * d[c];
            if (ce)
                A += fw[c] * gc;
        }
        for (int c = 0; c < C; c++) {
            if (ce) {
                float gc = y == c + off ? 1.0f : 0.0f;
                out[c * os + j] = p[c] * (d[c] - dot) + kw[j] * (A * p[c] - fw[c] * gc);
            } else {
                out[c * os + j] = p[c] * (d[c] - dot);
            }
        }
    }
}

/* fl_seg_grad_body for 2 <= C <= FL_SEG_MAXC (ce: kw not NULL); returns
 * 0, or -1 for another C (the caller's passes).  No argument may overlap
 * another. */
static FL_NOINLINE int fl_seg_grad_f32(const float *FL_RESTRICT x, ptrdiff_t xs,
                                       ptrdiff_t nb, int C, const int *FL_RESTRICT yy,
                                       int off, const float *FL_RESTRICT vm,
                                       const float *FL_RESTRICT fa,
                                       const float *FL_RESTRICT fb,
                                       const float *FL_RESTRICT fb2,
                                       const float *FL_RESTRICT kw,
                                       const float *FL_RESTRICT fw,
                                       float *FL_RESTRICT out, ptrdiff_t os)
{
    if (nb > os)
        return -1;
    switch (C) {
#define FL_SEG_CASE(K)                                                                    \
    case K:                                                                               \
        if (kw != NULL)                                                                   \
            fl_seg_grad_body(x, xs, nb, K, yy, off, vm, fa, fb, fb2, 1, kw, fw, out, os); \
        else                                                                              \
            fl_seg_grad_body(x, xs, nb, K, yy, off, vm, fa, fb, fb2, 0, kw, fw, out, os); \
        return 0;
        FL_SEG_EACH_C(FL_SEG_CASE)
#undef FL_SEG_CASE
    default:
        return -1;
    }
}

#endif /* FASTLOSS_FLSEG_H */
