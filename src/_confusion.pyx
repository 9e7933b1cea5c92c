"""Hard confusion matrices of label maps: counts of (target, prediction)
pairs per image or over the batch (fastloss.segmentation's
confusion_matrix, dice_score and iou_score).

Design: two uint8 maps of at most 4 classes are counted straight from bit
masks of their rows with AVX-512 (flcount.h's fl_count_pairs4).  Otherwise
labels are turned into uint8 codes (t << 4) | p (255 for ignored
positions; a constant shift keeps the arithmetic in bytes, 64 positions
per AVX-512 vector, for two uint8 maps) 16320 at a time (255 rows of 64);
for C*C <= 25 codes are counted by byte-wise compares into 64 uint8 lanes
per code held in registers (flcount.h: 16 codes per pass with AVX-512, 4
otherwise), else by a scalar histogram.  Counts go to
per-thread private int64 matrices, merged in thread order (integer sums
are exact), so the result does not depend on the thread count.
"""

cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

from _common cimport label_t, n_blocks, threads_for
from _fastcall cimport (
    LBL_I8, LBL_I16, LBL_I32, LBL_I64, fc_labels, fc_shape_is, fc_threads_arg,
)

from fastloss._threads import effective_n_threads

cnp.import_array()


cdef extern from "flcount.h" nogil:
    enum:
        FL_COUNT_GROUP
        FL_COUNT_LANES
        FL_COUNT_ROWS
    void fl_count_bytes(const uint8_t* code, Py_ssize_t rows, const uint8_t* k, int64_t* out,
                        int n)
    enum:
        FL_COUNT_PAIRS4
    int fl_count_pairs4(const uint8_t* tg, const uint8_t* pr, Py_ssize_t n, int C, int ig,
                        int64_t* out)

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
    return _cm_first_bad(pr, tg, m, C, ignore, has_ignore)


cdef Py_ssize_t _cm_first_bad(const label_t* pr, const label2_t* tg, Py_ssize_t m,
                              Py_ssize_t C, Py_ssize_t ignore, bint has_ignore) noexcept nogil:
    """The first of m positions with a pred or target outside [0, C) whose
    target is not ignored, or -1."""
    cdef Py_ssize_t i
    cdef long long tv, pv
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
    cdef int64_t pairs[16]
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
    if label_t is uint8_t and label2_t is uint8_t:
        if FL_COUNT_PAIRS4 and C <= 4:
            # two uint8 maps of a few classes: bit masks, no codes (flcount.h)
            if fl_count_pairs4(tg + i0, pr + i0, i1 - i0, <int>C,
                               <int>ignore if has_ignore and 0 <= ignore <= 255 else -1,
                               pairs):
                b = _cm_first_bad(pr + i0, tg + i0, i1 - i0, C, ignore, has_ignore)
                if b >= 0 and bad[0] < 0:
                    bad[0] = i0 + b
            for t in range(C):
                for q in range(C):
                    out[t * C + q] += pairs[t * 4 + q]
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


cdef Py_ssize_t _cm_run(const label_t* pr, const label2_t* tg, Py_ssize_t N, Py_ssize_t S,
                        Py_ssize_t C, Py_ssize_t ignore, bint has_ignore, bint per_image,
                        int64_t* out, Py_ssize_t size, int n_threads) except -2:
    """confusion on pointers: out (size counts) zeroed and filled; the first
    bad position or -1."""
    cdef Py_ssize_t nu, units, u, tid, t, i, bad = -1
    cdef int64_t* priv
    cdef Py_ssize_t* bads
    cdef int nt
    memset(out, 0, size * sizeof(int64_t))
    if N == 0 or S == 0:
        return -1
    nu = n_blocks(S, CM_BLOCK)
    units = N * nu
    nt = threads_for(n_threads, units)
    priv = <int64_t*>calloc(nt * size, sizeof(int64_t))
    bads = <Py_ssize_t*>malloc(units * sizeof(Py_ssize_t))
    try:
        if priv == NULL or bads == NULL:
            raise MemoryError("fastloss: cannot allocate confusion-matrix buffers")
        if nt == 1:  # no OpenMP region for one unit (_fastcall.pxd B)
            with nogil:
                for u in range(units):
                    bads[u] = -1
                    _cm_unit(pr, tg, S, nu, u, C, ignore, has_ignore, per_image, priv, &bads[u])
        else:
            for u in prange(units, schedule="static", nogil=True, num_threads=nt):
                tid = threadid()
                bads[u] = -1
                _cm_unit(pr, tg, S, nu, u, C, ignore, has_ignore, per_image, priv + tid * size,
                         &bads[u])
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


def confusion(const label_t[:, ::1] pred, const label2_t[:, ::1] target, Py_ssize_t C,
              Py_ssize_t ignore, bint has_ignore, bint per_image, int64_t[::1] out,
              int n_threads):
    """Counts of (target, pred) pairs of (N, S) label maps into out.

    out has C*C entries (rows = target, columns = pred), or N*C*C with
    per_image.  Returns the first position (flat) with a bad label, or -1.
    """
    cdef Py_ssize_t N = pred.shape[0], S = pred.shape[1]
    if out.shape[0] != (N if per_image else 1) * C * C:
        raise ValueError("fastloss internal error: confusion output size")
    if N == 0 or S == 0:
        out[:] = 0
        return -1
    return _cm_run(&pred[0, 0], &target[0, 0], N, S, C, ignore, has_ignore, per_image,
                   &out[0], out.shape[0], n_threads)


cpdef enum CmResult:
    CM_MATRIX = 0       # the counts (confusion_matrix)
    CM_DICE = 1         # 2 TP / (|T| + |P|) per class (dice_score)
    CM_IOU = 2          # TP / (|T| + |P| - TP) per class (iou_score)


cdef object _cm_call(const label_t* pr, const label_t* tg, cnp.ndarray pa, Py_ssize_t N,
                     Py_ssize_t S, Py_ssize_t C, bint per_image, int result, bint ignore_empty,
                     double empty_score, object n_threads):
    """confusion_call's pass and result (None where a label is bad)."""
    cdef Py_ssize_t M = N if per_image else 1, K = C * C, m, c, j
    cdef int nt = 1
    cdef cnp.npy_intp dims[3]
    cdef cnp.ndarray cm, out
    cdef const int64_t* q
    cdef double* o
    cdef double tp, st, sp, den, num
    dims[0], dims[1], dims[2] = M, C, C
    cm = cnp.PyArray_EMPTY(3, dims, cnp.NPY_INT64, 0)
    if N * S > CM_BLOCK:
        nt = effective_n_threads(n_threads)
    if _cm_run(pr, tg, N, S, C, 0, False, per_image, <int64_t*>cnp.PyArray_DATA(cm), M * K,
               nt) >= 0:
        return None
    if result == CM_MATRIX:
        return cm.reshape(C, C) if not per_image else cm
    out = cnp.PyArray_EMPTY(2 if per_image else 1, &dims[0] if per_image else &dims[1],
                            cnp.NPY_DOUBLE, 0)
    o = <double*>cnp.PyArray_DATA(out)
    for m in range(M):
        q = <const int64_t*>cnp.PyArray_DATA(cm) + m * K
        for c in range(C):
            tp = <double>q[c * C + c]
            st = 0.0
            sp = 0.0
            for j in range(C):
                st += <double>q[c * C + j]    # the target's class c: row c
                sp += <double>q[j * C + c]    # the prediction's: column c
            den = st + sp - tp if result == CM_IOU else st + sp
            num = tp if result == CM_IOU else 2.0 * tp
            if ignore_empty and st == 0.0:
                o[m * C + c] = NAN
            elif not ignore_empty and den == 0.0:
                o[m * C + c] = empty_score
            else:
                o[m * C + c] = num / den
    return out


def confusion_call(object pred, object target, object num_classes, object per_image,
                   int result, object ignore_empty, object empty_score, object n_threads):
    """confusion_matrix / dice_score / iou_score for the common case, else None.

    Taken: two label maps of one shape and one integer width the kernels
    read, as plain ndarrays (_fastcall.pxd), num_classes a Python int, the
    flags Python bools and empty_score a Python float or int; the caller
    passes no ignore_index or multilabel masks.  None sends the call down the
    full path, which owns every error message.
    """
    cdef int lt = fc_labels(pred)
    cdef cnp.ndarray pa, ta
    cdef Py_ssize_t N, S, C
    cdef double es
    cdef bint pi, ie
    if lt < 0 or fc_labels(target) != lt or not fc_threads_arg(n_threads):
        return None
    if type(num_classes) is not int or not 1 <= num_classes <= 4096:
        return None
    if type(per_image) is not bool or type(ignore_empty) is not bool:
        return None
    if type(empty_score) is not float and type(empty_score) is not int:
        return None
    pa = <cnp.ndarray>pred
    ta = <cnp.ndarray>target
    if cnp.PyArray_TYPE(pa) != cnp.PyArray_TYPE(ta) or not fc_shape_is(ta, pa, -1):
        return None
    if per_image and cnp.PyArray_NDIM(pa) == 0:
        return None
    es = <double>empty_score
    pi, ie = per_image, ignore_empty
    C = <Py_ssize_t>num_classes
    N = cnp.PyArray_DIM(pa, 0) if pi else 1
    S = cnp.PyArray_SIZE(pa) // N if N > 0 else 0
    if lt == LBL_I64:
        return _cm_call(<int64_t*>cnp.PyArray_DATA(pa), <int64_t*>cnp.PyArray_DATA(ta), pa, N, S,
                        C, pi, result, ie, es, n_threads)
    if lt == LBL_I32:
        return _cm_call(<int32_t*>cnp.PyArray_DATA(pa), <int32_t*>cnp.PyArray_DATA(ta), pa, N, S,
                        C, pi, result, ie, es, n_threads)
    if lt == LBL_I16:
        return _cm_call(<int16_t*>cnp.PyArray_DATA(pa), <int16_t*>cnp.PyArray_DATA(ta), pa, N, S,
                        C, pi, result, ie, es, n_threads)
    if lt == LBL_I8:
        return _cm_call(<int8_t*>cnp.PyArray_DATA(pa), <int8_t*>cnp.PyArray_DATA(ta), pa, N, S,
                        C, pi, result, ie, es, n_threads)
    return _cm_call(<uint8_t*>cnp.PyArray_DATA(pa), <uint8_t*>cnp.PyArray_DATA(ta), pa, N, S,
                    C, pi, result, ie, es, n_threads)
