"""Hard confusion matrices of label maps: counts of (target, prediction)
pairs per image or over the batch (fastloss.segmentation's
confusion_matrix, dice_score and iou_score).

Design: labels are turned into uint8 codes (t << 4) | p (255 for ignored
positions; a constant shift keeps the arithmetic in bytes, 64 positions
per AVX-512 vector, for two uint8 maps) 16320 at a time (255 rows of 64);
for C*C <= 25 codes are counted by byte-wise compares into 64 uint8 lanes
per code held in registers (flcount.h: 16 codes per pass with AVX-512, 4
otherwise), else by a scalar histogram.  Counts go to
per-thread private int64 matrices, merged in thread order (integer sums
are exact), so the result does not depend on the thread count.
"""

from cython.parallel cimport prange, threadid
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

from _common cimport label_t, n_blocks, threads_for


cdef extern from "flcount.h" nogil:
    enum:
        FL_COUNT_GROUP
        FL_COUNT_LANES
        FL_COUNT_ROWS
    void fl_count_bytes(const uint8_t* code, Py_ssize_t rows, const uint8_t* k, int64_t* out,
                        int n)

ctypedef fused label2_t:
    uint8_t
    int8_t
    int16_t
    int32_t
    int64_t

cdef enum:
    CM_BLOCK = 65536    # positions per confusion-matrix unit
    CM_SUB = 16320      # codes per sub-chunk: FL_COUNT_ROWS rows of FL_COUNT_LANES
    CM_VEC_MAX = 25     # codes counted by compare (C*C) at most


cdef inline int _cm_shift(Py_ssize_t C) noexcept nogil:
    """Bits of the target in a code: codes are (t << 4) | p, <= 238 < 255 for C <= 15.

    A constant shift lets gcc shift bytes directly (a variable one widens
    every byte to 32 bits).
    """
    return 4


cdef Py_ssize_t _cm_codes(const label_t* pr, const label2_t* tg, Py_ssize_t m,
                          Py_ssize_t C, Py_ssize_t ignore, bint has_ignore,
                          uint8_t* code) noexcept nogil:
    """code[i] = (t << 4) | p (255 where the target is ignored); C <= 15.

    Returns the first position with a pred or target outside [0, C), or -1.
    Two uint8 maps use byte arithmetic throughout (64 positions per
    AVX-512 vector); other widths compare in their own width.
    """
    cdef Py_ssize_t i
    cdef long long tv, pv
    cdef int ti, pi, Ci = <int>C
    cdef int sh = 4
    cdef bint ig, ok
    cdef int anybad = 0
    cdef uint8_t t8, p8, C8 = <uint8_t>C, ig8, bad8 = 0, use_ig = 0
    if label_t is uint8_t and label2_t is uint8_t:
        # ignore_index outside [0, 255] never matches a uint8 target
        if has_ignore and ignore >= 0 and ignore <= 255:
            use_ig = 0xFF
            ig8 = <uint8_t>ignore
        else:
            ig8 = 0
        for i in range(m):
            t8 = tg[i]
            p8 = pr[i]
            # (kept inline: a bint temporary widens the loop to 32-bit lanes)
            code[i] = (<uint8_t>((t8 << 4) | p8)
                       if (t8 < C8 and p8 < C8 and not (use_ig and t8 == ig8)) else 255)
            bad8 |= 1 if ((t8 >= C8 or p8 >= C8) and not (use_ig and t8 == ig8)) else 0
        anybad = bad8
    elif label_t is int64_t or label2_t is int64_t or label_t is int32_t or label2_t is int32_t:
        for i in range(m):
            tv = <long long>tg[i]
            pv = <long long>pr[i]
            ig = has_ignore and tv == ignore
            ok = tv >= 0 and tv < C and pv >= 0 and pv < C
            code[i] = <uint8_t>((tv << sh) | pv) if (ok and not ig) else 255
            anybad |= (not ok) and (not ig)
    else:
        for i in range(m):
            ti = <int>tg[i]
            pi = <int>pr[i]
            ig = has_ignore and ti == ignore
            ok = ti >= 0 and ti < Ci and pi >= 0 and pi < Ci
            code[i] = <uint8_t>((ti << sh) | pi) if (ok and not ig) else 255
            anybad |= (not ok) and (not ig)
    if not anybad:
        return -1
    for i in range(m):
        tv = <long long>tg[i]
        pv = <long long>pr[i]
        if not (has_ignore and tv == ignore) and (tv < 0 or tv >= C or pv < 0 or pv >= C):
            return i
    return -1


cdef void _cm_unit(const label_t* pr, const label2_t* tg, Py_ssize_t S, Py_ssize_t nu,
                   Py_ssize_t u, Py_ssize_t C, Py_ssize_t ignore, bint has_ignore,
                   bint per_image, int64_t* cm, Py_ssize_t* bad) noexcept nogil:
    cdef uint8_t code[CM_SUB]
    cdef uint8_t kk[FL_COUNT_GROUP]
    cdef int64_t cnt[FL_COUNT_GROUP]
    cdef int64_t hist[256]
    cdef Py_ssize_t n = u // nu
    cdef Py_ssize_t i0 = n * S + (u - n * nu) * CM_BLOCK
    cdef Py_ssize_t i1 = n * S + S
    cdef Py_ssize_t m, i, rows, b, t, q, g, K = C * C
    cdef int sh = _cm_shift(C)
    cdef int64_t* out = cm + (n * K if per_image else 0)
    cdef long long tv, pv
    if i0 + CM_BLOCK < i1:
        i1 = i0 + CM_BLOCK
    if C > 15:
        # wide: one scalar histogram update per position
        for i in range(i0, i1):
            tv = <long long>tg[i]
            pv = <long long>pr[i]
            if has_ignore and tv == ignore:
                continue
            if tv < 0 or tv >= C or pv < 0 or pv >= C:
                if bad[0] < 0:
                    bad[0] = i
                continue
            out[tv * C + pv] += 1
        return
    while i0 < i1:
        m = i1 - i0 if i1 - i0 < CM_SUB else CM_SUB
        b = _cm_codes(pr + i0, tg + i0, m, C, ignore, has_ignore, code)
        if b >= 0 and bad[0] < 0:
            bad[0] = i0 + b
        rows = n_blocks(m, FL_COUNT_LANES)
        for i in range(m, rows * FL_COUNT_LANES):
            code[i] = 255
        if K <= CM_VEC_MAX:
            # byte-wise compares, FL_COUNT_GROUP codes per pass (flcount.h)
            g = 0
            while g < K:
                for q in range(FL_COUNT_GROUP):
                    # 254 is never a code (max (14 << 4) | 14 = 238; 255 = ignored)
                    kk[q] = <uint8_t>(((g + q) // C << sh) | ((g + q) % C)) if g + q < K else 254
                fl_count_bytes(code, rows, kk, cnt,
                               <int>(K - g if K - g < FL_COUNT_GROUP else FL_COUNT_GROUP))
                for q in range(FL_COUNT_GROUP):
                    if g + q < K:
                        out[g + q] += cnt[q]
                g += FL_COUNT_GROUP
        else:
            memset(hist, 0, 256 * sizeof(int64_t))
            for i in range(m):
                hist[code[i]] += 1
            for t in range(C):
                for q in range(C):
                    out[t * C + q] += hist[(t << sh) | q]
        i0 += m


def confusion(const label_t[:, ::1] pred, const label2_t[:, ::1] target, Py_ssize_t C,
              Py_ssize_t ignore, bint has_ignore, bint per_image, int64_t[::1] out,
              int n_threads):
    """Counts of (target, pred) pairs of (N, S) label maps into out.

    out has C*C entries (rows = target, columns = pred), or N*C*C with
    per_image.  Returns the first position (flat) with a bad label, or -1.
    """
    cdef Py_ssize_t N = pred.shape[0], S = pred.shape[1]
    cdef Py_ssize_t nu, units, u, tid, t, i, size, bad = -1
    cdef int64_t* priv
    cdef Py_ssize_t* bads
    cdef int nt
    out[:] = 0
    if N == 0 or S == 0:
        return -1
    nu = n_blocks(S, CM_BLOCK)
    units = N * nu
    nt = threads_for(n_threads, units)
    size = out.shape[0]
    priv = <int64_t*>calloc(nt * size, sizeof(int64_t))
    bads = <Py_ssize_t*>malloc(units * sizeof(Py_ssize_t))
    try:
        if priv == NULL or bads == NULL:
            raise MemoryError("fastloss: cannot allocate confusion-matrix buffers")
        for u in prange(units, schedule="static", nogil=True, num_threads=nt):
            tid = threadid()
            bads[u] = -1
            _cm_unit(&pred[0, 0], &target[0, 0], S, nu, u, C, ignore, has_ignore,
                     per_image, priv + tid * size, &bads[u])
        for t in range(nt):
            for i in range(size):
                out[i] += priv[t * size + i]
        for u in range(units):
            if bads[u] >= 0:
                bad = bads[u]
                break
    finally:
        free(priv)
        free(bads)
    return bad
