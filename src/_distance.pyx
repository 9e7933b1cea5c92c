"""Exact Euclidean distance transforms and per-class bounding boxes.

Design:
A. Separable squared EDT (Saito & Toriwaki 1994): in D dimensions the
   squared distance is D successive 1-D minimisations, one per axis,
   D_k(x) = min_y [w_k^2 (x_k - y_k)^2 + D_{k-1}(y)] along the lines of
   axis k.  The contiguous last axis goes first, as a direct 1-D distance
   (one scan per run, design C); every other axis is a lower envelope of
   parabolas (Felzenszwalb & Huttenlocher, Theory of Computing 8, 2012),
   O(n) per line, intersections computed in double with the spacing
   w_k^2 inside the intercept formula, so anisotropic spacing is exact.
B. Values are squared distances in float64 (exact integers below 2^53 for
   unit spacing), the square root is taken once, as the last pass writes
   its lines back (no extra pass over the result).  The winning
   parabola's value is kept on the envelope stack, so a line is rewritten
   in place.
C. Multi-label: a voxel's distance is to the nearest voxel whose label
   differs from its own; with zero_bg, label 0 is background (distance 0).
   Along a line the envelope is built per run of equal label, and the
   voxels just outside the run (another label) enter as sites of value 0:
   any site beyond them is farther along the line than they are and can
   never win for a voxel of the run, so the restriction is exact (the
   same argument as the seung-lab edt package's multi-label passes).  A
   binary mask is the label map {0, 1}; the signed and Hausdorff-loss
   fields are the {0, 1} map without zero_bg (each side measured to the
   other).  A run with no site at all stays at +inf.
D. Strided axes are processed EDT_B lines at a time: the lines of one unit
   are copied into a per-thread scratch (line-major), transformed and
   written back, so every memory access touches whole cache lines.  The
   unit is (outer index, block of EDT_B inner indices); units are
   independent and each is computed the same way by whichever thread
   runs it, so the result is bit-identical for any thread count.
D'. With three or more axes, the last two are done slice by slice: a
   thread transforms the rows of a slice (up to SLAB_MAX elements) and
   then its columns while it is still in L2, so the result array goes
   through memory twice less.  On a strided line, the envelope is evaluated
   piece by piece: the first voxel of each parabola's piece comes from the
   same intersection test a voxel-by-voxel walk makes, and the voxels of a
   piece are one loop without a data-dependent branch.
E. Nearest sites (feature transform) are carried as flat int64 indices,
   -1 where there is none, only when asked.
F. Bounding boxes of every class of a label map in one pass: per row of
   the last axis, per-thread min/max arrays merged after the loop
   (min/max are order-free, so deterministic); out-of-range labels are
   reported by the smallest flat position.
G. The Python entry points take the data addresses of arrays the wrapper
   has validated, and dispatch on the label width (EDT: equality and zero
   only, so uint8/16/32/64 cover every dtype) or dtype (bounding boxes:
   the range check needs the sign) to nogil fused functions: no typed
   memoryviews, whose support code would triple the module's size in the
   wheel (one build per CPU target).
H. Surface distances: the edge voxels of a class come out of one pass over
   its box (edge_coords, in C order), and the distances from one edge set
   to the other come from a k-d tree over the sites (nearest_sq) when the
   edges are few against the box, else from the EDT of the box (the
   wrapper chooses; both are exact).
"""

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, pow, sqrt
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from _common cimport (
    fl_exp, fl_expf, fl_stream_fence, floating, label_t, lanes_sum, stream_out, threads_for,
)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FL_PREFETCH_NTA(p) __builtin_prefetch((const void*)(p), 0, 0)
    #else
    #define FL_PREFETCH_NTA(p) ((void)0)
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define FL_CTZ64(x) __builtin_ctzll(x)
    #elif defined(_MSC_VER)
    #include <intrin.h>
    static __inline int FL_CTZ64(unsigned long long x)
    { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    #endif
    #if defined(__AVX512BW__) || defined(__AVX2__)
    #include <immintrin.h>
    #endif
    #include <stdint.h>
    /* bits[w] bit b = (fl[64 w + b] != 0) for w < nw: byte flags (padded
     * with zeros to 64 nw) to one bit per voxel, so that a scan for the set
     * flags skips 64 voxels per word */
    static inline void fl_pack_flags(const uint8_t *fl, Py_ssize_t nw, uint64_t *bits)
    {
        Py_ssize_t w;
        for (w = 0; w < nw; w++) {
    #if defined(__AVX512BW__)
            __m512i v = _mm512_loadu_si512((const void *)(fl + 64 * w));
            bits[w] = (uint64_t)_mm512_test_epi8_mask(v, v);
    #elif defined(__AVX2__)
            __m256i z = _mm256_setzero_si256();
            uint32_t lo = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
                _mm256_loadu_si256((const __m256i *)(fl + 64 * w)), z));
            uint32_t hi = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
                _mm256_loadu_si256((const __m256i *)(fl + 64 * w + 32)), z));
            bits[w] = (uint64_t)lo | ((uint64_t)hi << 32);
    #else
            uint64_t m = 0;
            int b;
            for (b = 0; b < 64; b++)
                m |= (uint64_t)(fl[64 * w + b] != 0) << b;
            bits[w] = m;
    #endif
        }
    }
    """
    # a prefetch with locality 0 (fastmath.h's FL_PREFETCH asks for 3)
    void FL_PREFETCH_NTA(const void* p) noexcept nogil
    int FL_CTZ64(uint64_t x) noexcept nogil
    void fl_pack_flags(const uint8_t* fl, Py_ssize_t nw, uint64_t* bits) noexcept nogil

# Labels in the EDT are only compared for equality and with zero: one
# specialization per width.
ctypedef fused word_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

cdef enum:
    EDT_B = 64            # lines per unit on a strided axis (512 B rows of doubles)
    LINES_UNIT = 64       # contiguous lines per unit on the last axis
    PF_ROWS = 8           # rows prefetched ahead on a strided axis
    SLAB_MAX = 1 << 17    # largest slice (elements) of the slice-by-slice first two passes


# ------------------------------------------------------------ 1-D passes

cdef void _first_line(const word_t* l, Py_ssize_t n, double w2, bint zero_bg,
                      double* d, int64_t* f, Py_ssize_t base, bint want_feat) noexcept nogil:
    """Contiguous line: squared distance to the nearest other label on the line.

    Two sweeps with selects instead of branches: the forward one stores in
    d[i] the last position before i whose label differs from l[i] (i itself
    for background; a position 2n away when none), the backward one the
    first after it, and keeps the nearer (the left one on a tie).
    """
    cdef Py_ssize_t i, lf, rt, dl, dr, NONE = -2 * n - 2
    cdef bint bg
    lf = NONE
    for i in range(n):
        if i > 0 and l[i] != l[i - 1]:
            lf = i - 1
        bg = zero_bg and l[i] == 0
        d[i] = <double>(i if bg else lf)
    rt = 3 * n + 2
    for i in range(n - 1, -1, -1):
        if i < n - 1 and l[i] != l[i + 1]:
            rt = i + 1
        lf = <Py_ssize_t>d[i]
        dl = i - lf
        dr = rt - i
        if dr < dl:
            dl = dr
            lf = rt
        d[i] = w2 * <double>(dl * dl) if dl <= n else INFINITY
        if want_feat:
            f[i] = base + lf if dl <= n else -1


cdef inline Py_ssize_t _push(double q, double fq, int64_t idq, Py_ssize_t k, double w2,
                             double* v, double* fv, double* zn, double* zd,
                             int64_t* iv, double* gv) noexcept nogil:
    """Add the parabola (q, fq) to the lower envelope; return the new top.

    The intersection abscissa with the top, s = num / den (den > 0), is kept
    as the pair (zn, zd) and compared by cross-multiplication: no division
    on the critical path of the stack (pop while s <= z[k]).  The bottom
    parabola is never popped (its z is -inf).  gv[k] = fv[k] + w2 v[k]^2 is
    kept on the stack: a pop then costs three products (the same operations
    in the same order as recomputing it, so the same values).
    """
    cdef double num = 0.0, den = 1.0, gq = fq + w2 * q * q, tw2 = 2.0 * w2
    while k >= 0:
        num = gq - gv[k]
        den = tw2 * (q - v[k])
        if k == 0 or num * zd[k] > zn[k] * den:
            break
        k -= 1
    k += 1
    v[k] = q
    fv[k] = fq
    gv[k] = gq
    iv[k] = idq
    zn[k] = num
    zd[k] = den
    return k


cdef void _fh_line(const word_t* l, Py_ssize_t n, Py_ssize_t st, double w2, bint zero_bg,
                   double* d, int64_t* f, bint want_feat, const int64_t* site,
                   double* v, double* fv, double* zn, double* zd, int64_t* iv,
                   double* gv) noexcept nogil:
    """One line, element i at offset i * st: lower envelope per run of equal
    label.  site[i] is the flat index of position i (nearest-site output)."""
    cdef Py_ssize_t j = 0, e, i, k, kk, lo, hi
    cdef word_t lab
    cdef double dx, di, z
    while j < n:
        lab = l[j * st]
        e = j + 1
        while e < n and l[e * st] == lab:
            e += 1
        if zero_bg and lab == 0:
            j = e
            continue
        k = -1
        if j > 0:
            k = _push(<double>(j - 1), 0.0, site[j - 1] if want_feat else 0, k, w2,
                      v, fv, zn, zd, iv, gv)
        for i in range(j, e):
            di = d[i * st]
            if di < INFINITY:
                k = _push(<double>i, di, f[i * st] if want_feat else 0, k, w2,
                          v, fv, zn, zd, iv, gv)
        if e < n:
            k = _push(<double>e, 0.0, site[e] if want_feat else 0, k, w2, v, fv, zn, zd, iv,
                      gv)
        if k >= 0:
            # parabola kk wins on [lo, hi): hi is the first integer x with
            # z[kk + 1] < x (the same test, zn < x zd, as a per-voxel walk
            # up the envelope); the voxels of a piece are then one tight loop
            lo = j
            for kk in range(k + 1):
                if kk < k:
                    z = zn[kk + 1] / zd[kk + 1]
                    if z < <double>lo:
                        hi = lo
                    elif z > <double>e:
                        hi = e
                    else:
                        hi = <Py_ssize_t>z
                    while hi < e and not (zn[kk + 1] < <double>hi * zd[kk + 1]):
                        hi += 1
                    while hi > lo and zn[kk + 1] < <double>(hi - 1) * zd[kk + 1]:
                        hi -= 1
                else:
                    hi = e
                if hi > e:
                    hi = e
                for i in range(lo, hi):
                    dx = <double>i - v[kk]
                    d[i * st] = w2 * dx * dx + fv[kk]
                if want_feat:
                    for i in range(lo, hi):
                        f[i * st] = iv[kk]
                lo = hi
                if lo >= e:
                    break
        j = e


cdef void _strided_unit(const word_t* lab, double* out, int64_t* feat, bint want_feat,
                        bint root,
                        Py_ssize_t n, Py_ssize_t inner, Py_ssize_t nbi, Py_ssize_t u,
                        double w2, bint zero_bg, word_t* lb, double* db, int64_t* fb,
                        int64_t* site, double* stk, int64_t* iv) noexcept nogil:
    """EDT_B neighbouring lines: copied row by row (EDT_B contiguous values,
    whole cache lines, one page visit per row) into a per-thread scratch
    that keeps the interleaved layout, transformed there with stride EDT_B
    (the scratch stays in L1/L2), and copied back (design D)."""
    cdef Py_ssize_t o = u // nbi
    cdef Py_ssize_t i0 = (u % nbi) * EDT_B
    cdef Py_ssize_t nb = inner - i0
    cdef Py_ssize_t b, j, p
    cdef Py_ssize_t start = o * n * inner + i0
    cdef Py_ssize_t m = n + 2
    if nb > EDT_B:
        nb = EDT_B
    for j in range(n):
        p = start + j * inner
        if j + PF_ROWS < n:
            # rows of a strided axis lie pages apart, where the hardware
            # prefetcher does not follow: ask for them PF_ROWS rows early
            FL_PREFETCH_NTA(out + p + PF_ROWS * inner)
            FL_PREFETCH_NTA(out + p + PF_ROWS * inner + 8)
            FL_PREFETCH_NTA(lab + p + PF_ROWS * inner)
        for b in range(nb):
            lb[j * EDT_B + b] = lab[p + b]
        for b in range(nb):
            db[j * EDT_B + b] = out[p + b]
        if want_feat:
            for b in range(nb):
                fb[j * EDT_B + b] = feat[p + b]
    for b in range(nb):
        if want_feat:
            for j in range(n):
                site[j] = start + j * inner + b
        _fh_line(lb + b, n, EDT_B, w2, zero_bg, db + b, fb + b if want_feat else NULL,
                 want_feat, site, stk, stk + m, stk + 2 * m, stk + 3 * m, iv, stk + 4 * m)
    for j in range(n):
        p = start + j * inner
        if root:  # the last pass writes the distances themselves
            for b in range(nb):
                out[p + b] = sqrt(db[j * EDT_B + b])
        else:
            for b in range(nb):
                out[p + b] = db[j * EDT_B + b]
        if want_feat:
            for b in range(nb):
                feat[p + b] = fb[j * EDT_B + b]


# ------------------------------------------------------------ drivers

cdef bint _uniform(const word_t* l, Py_ssize_t n) noexcept nogil:
    """True when the n labels are all equal (an OR-reduction: vectorized)."""
    cdef Py_ssize_t i
    cdef word_t acc = 0, l0 = l[0]
    for i in range(n):
        acc |= l[i] ^ l0
    return acc == 0


cdef int _edt(const word_t* lp, Py_ssize_t total, const int64_t* shape, Py_ssize_t ndim,
              Py_ssize_t skip, const double* spacing, bint zero_bg, double* op, int64_t* fp,
              bint want_feat, bint take_sqrt, int n_threads) noexcept nogil:
    cdef Py_ssize_t axis, outer, inner, n, nbi, units, u, i, nmax = 1
    cdef Py_ssize_t n2, slices, o, last
    cdef int nt, tid
    cdef double w2, w22
    cdef double* stk = NULL
    cdef int64_t* istk = NULL
    cdef word_t* lbuf = NULL
    cdef double* dbuf = NULL
    cdef int64_t* fbuf = NULL
    cdef Py_ssize_t sz, m
    cdef int rc = 0
    for axis in range(skip, ndim):
        if shape[axis] > nmax:
            nmax = shape[axis]
    m = nmax + 2
    sz = EDT_B * nmax
    nt = n_threads
    # per thread: 5 stack arrays (v, f(v), zn, zd, f(v) + w2 v^2), the envelope's sites,
    # the line's flat indices, the interleaved scratch
    stk = <double*>malloc(nt * 5 * m * sizeof(double))
    istk = <int64_t*>malloc(nt * 2 * m * sizeof(int64_t))
    lbuf = <word_t*>malloc(nt * sz * sizeof(word_t))
    dbuf = <double*>malloc(nt * sz * sizeof(double))
    fbuf = <int64_t*>malloc(nt * sz * sizeof(int64_t)) if want_feat else NULL
    if (stk == NULL or istk == NULL or lbuf == NULL or dbuf == NULL
            or (want_feat and fbuf == NULL)):
        rc = 2
    else:
        n = shape[ndim - 1]
        outer = total // n
        w2 = spacing[ndim - 1] * spacing[ndim - 1]
        last = ndim - 1
        if ndim - skip >= 2:
            n2 = shape[ndim - 2]
            slices = total // (n * n2)
            if n * n2 <= SLAB_MAX and slices >= 2 * n_threads:
                # the two last axes slice by slice (design D'): the slice
                # is still in L2 when its columns are transformed
                w22 = spacing[ndim - 2] * spacing[ndim - 2]
                nbi = (n + EDT_B - 1) // EDT_B
                nt = threads_for(n_threads, slices)
                # slices handed out one by one as threads come free: skipped
                # (empty) slices come in runs, and a thread that another
                # process delays leaves its share to the others (each slice
                # is computed the same way by any thread)
                for o in prange(slices, schedule="dynamic", chunksize=1, num_threads=nt):
                    tid = threadid()
                    if (not want_feat and _uniform(lp + o * n2 * n, n2 * n)
                            and not (zero_bg and lp[o * n2 * n] == 0)):
                        # a slice of one label has no site: +inf throughout
                        for i in range(o * n2 * n, (o + 1) * n2 * n):
                            op[i] = INFINITY
                        continue
                    for i in range(o * n2, (o + 1) * n2):
                        _first_line(lp + i * n, n, w2, zero_bg, op + i * n,
                                    fp + i * n if want_feat else NULL, i * n, want_feat)
                    for u in range(o * nbi, (o + 1) * nbi):
                        _strided_unit(lp, op, fp, want_feat, take_sqrt and ndim - 2 == skip,
                                      n2, n, nbi, u, w22, zero_bg,
                                      lbuf + tid * sz, dbuf + tid * sz,
                                      fbuf + tid * sz if want_feat else NULL,
                                      istk + tid * 2 * m + m, stk + tid * 5 * m,
                                      istk + tid * 2 * m)
                last = ndim - 2
        if last == ndim - 1:
            # last axis: direct 1-D distances, LINES_UNIT lines per unit
            units = (outer + LINES_UNIT - 1) // LINES_UNIT
            nt = threads_for(n_threads, units)
            for u in prange(units, schedule="static", num_threads=nt):
                for i in range(u * LINES_UNIT, min((u + 1) * LINES_UNIT, outer)):
                    _first_line(lp + i * n, n, w2, zero_bg, op + i * n,
                                fp + i * n if want_feat else NULL, i * n, want_feat)
        inner = 1
        for axis in range(last, ndim):
            inner = inner * shape[axis]
        for axis in range(last - 1, skip - 1, -1):
            n = shape[axis]
            outer = total // (n * inner)
            nbi = (inner + EDT_B - 1) // EDT_B
            units = outer * nbi
            w2 = spacing[axis] * spacing[axis]
            nt = threads_for(n_threads, units)
            # blocks of 4 units handed out as threads come free: the volumes
            # of a stack cost very different amounts (one without a site is
            # cheap), and a delayed thread leaves its share to the others
            for u in prange(units, schedule="dynamic", chunksize=4, num_threads=nt):
                tid = threadid()
                _strided_unit(lp, op, fp, want_feat, take_sqrt and axis == skip,
                              n, inner, nbi, u, w2, zero_bg,
                              lbuf + tid * sz, dbuf + tid * sz,
                              fbuf + tid * sz if want_feat else NULL,
                              istk + tid * 2 * m + m, stk + tid * 5 * m,
                              istk + tid * 2 * m)
            inner = inner * n
    free(stk)
    free(istk)
    free(lbuf)
    free(dbuf)
    free(fbuf)
    if rc == 0 and take_sqrt and ndim - skip == 1:
        units = (total + 65535) // 65536
        nt = threads_for(n_threads, units)
        for u in prange(units, schedule="static", num_threads=nt):
            for i in range(u * 65536, min((u + 1) * 65536, total)):
                op[i] = sqrt(op[i])
    return rc


def edt_sq(size_t lab_addr, int width, Py_ssize_t total, size_t shape_addr, Py_ssize_t ndim,
           Py_ssize_t skip, size_t spacing_addr, bint zero_bg, size_t out_addr, size_t feat_addr,
           bint want_feat, bint take_sqrt, int n_threads):
    """Squared (or, with take_sqrt, plain) EDT of a flat C-order label array.

    The arguments are the data addresses of arrays the wrapper allocated or
    validated (C-contiguous, of the stated types and sizes): ``total``
    labels of ``width`` bytes (only equality and zero matter, so a label's
    width is all the kernel needs: one specialization per width, not per
    dtype), ``ndim`` int64 extents and float64 spacings (the first ``skip``
    axes are a batch: not transformed, their spacing unused), ``total`` float64
    outputs and, when want_feat, ``total`` int64 nearest-site indices (-1
    where there is none).  Addresses instead of typed memoryviews keep the
    module small (each of its three CPU builds ships in the wheel).
    Returns 0, or 2 when a scratch buffer cannot be allocated.
    """
    cdef const void* lp = <const void*>lab_addr
    cdef const int64_t* shape = <const int64_t*>shape_addr
    cdef const double* spacing = <const double*>spacing_addr
    cdef double* op = <double*>out_addr
    cdef int64_t* fp = <int64_t*>feat_addr if want_feat else NULL
    cdef int rc = 0
    if total == 0 or ndim == 0 or skip < 0 or skip >= ndim:
        return 0
    with nogil:
        if width == 1:
            rc = _edt(<const uint8_t*>lp, total, shape, ndim, skip, spacing, zero_bg, op, fp,
                      want_feat, take_sqrt, n_threads)
        elif width == 2:
            rc = _edt(<const uint16_t*>lp, total, shape, ndim, skip, spacing, zero_bg, op, fp,
                      want_feat, take_sqrt, n_threads)
        elif width == 4:
            rc = _edt(<const uint32_t*>lp, total, shape, ndim, skip, spacing, zero_bg, op, fp,
                      want_feat, take_sqrt, n_threads)
        else:
            rc = _edt(<const uint64_t*>lp, total, shape, ndim, skip, spacing, zero_bg, op, fp,
                      want_feat, take_sqrt, n_threads)
    return rc


cdef Py_ssize_t _bboxes(const label_t* lab, Py_ssize_t N, Py_ssize_t S, const int64_t* shape,
                        Py_ssize_t D, Py_ssize_t C, int64_t* box, int n_threads) noexcept nogil:
    cdef Py_ssize_t row = shape[D - 1]
    cdef Py_ssize_t nrows = S // row if row > 0 else 0
    cdef Py_ssize_t units = N * nrows, u, c, t, k, w = 2 * D
    cdef Py_ssize_t bad = -1
    cdef int nt = threads_for(n_threads, units)
    cdef int64_t* acc = NULL   # per thread: (N, C, 2 * D)
    cdef int64_t* rs = NULL    # per thread: (C, 2) row-local column bounds
    cdef Py_ssize_t* bads = NULL
    cdef int64_t* a
    for k in range(N * C):
        for c in range(D):
            box[k * w + c] = shape[c]
            box[k * w + D + c] = -1
    if units == 0:
        return -1
    acc = <int64_t*>malloc(nt * N * C * w * sizeof(int64_t))
    rs = <int64_t*>malloc(nt * C * 2 * sizeof(int64_t))
    bads = <Py_ssize_t*>malloc(nt * sizeof(Py_ssize_t))
    if acc == NULL or rs == NULL or bads == NULL:
        free(acc)
        free(rs)
        free(bads)
        return -2
    for t in range(nt):
        bads[t] = -1
        for k in range(N * C):
            for c in range(D):
                acc[(t * N * C + k) * w + c] = shape[c]
                acc[(t * N * C + k) * w + D + c] = -1
        for c in range(C):
            rs[(t * C + c) * 2] = row
            rs[(t * C + c) * 2 + 1] = -1
    for u in prange(units, schedule="static", num_threads=nt):
        _bbox_row(lab, shape, D, S, nrows, C, u, acc + threadid() * N * C * w,
                  rs + threadid() * C * 2, &bads[threadid()])
    for t in range(nt):
        if bads[t] >= 0 and (bad < 0 or bads[t] < bad):
            bad = bads[t]
        for k in range(N * C):
            a = acc + (t * N * C + k) * w
            for c in range(D):
                if a[c] < box[k * w + c]:
                    box[k * w + c] = a[c]
                if a[D + c] > box[k * w + D + c]:
                    box[k * w + D + c] = a[D + c]
    free(acc)
    free(rs)
    free(bads)
    return bad


def class_bboxes(size_t lab_addr, int code, Py_ssize_t N, Py_ssize_t S, size_t shape_addr,
                 Py_ssize_t D, Py_ssize_t C, size_t box_addr, int n_threads):
    """Per image n and class c < C, the bounding box of ``lab[n] == c``.

    Addresses of validated C-contiguous arrays (see edt_sq): the (N, S)
    labels, ``code`` their dtype (0 uint8, 1 int8, 2 int16, 3 int32,
    4 int64), the D int64 spatial extents (C order, S their product) and
    the (N, C, 2 D) int64 output: per (image, class) the lowest index
    along each axis, then the highest; an absent class gets lo = shape,
    hi = -1.  Requires N, S, C, D > 0.  Returns the first flat position
    (over N*S) holding a label outside [0, C), or -1.
    """
    cdef const void* p = <const void*>lab_addr
    cdef const int64_t* shape = <const int64_t*>shape_addr
    cdef int64_t* box = <int64_t*>box_addr
    cdef Py_ssize_t bad = -1
    with nogil:
        if code == 0:
            bad = _bboxes(<const uint8_t*>p, N, S, shape, D, C, box, n_threads)
        elif code == 1:
            bad = _bboxes(<const int8_t*>p, N, S, shape, D, C, box, n_threads)
        elif code == 2:
            bad = _bboxes(<const int16_t*>p, N, S, shape, D, C, box, n_threads)
        elif code == 3:
            bad = _bboxes(<const int32_t*>p, N, S, shape, D, C, box, n_threads)
        else:
            bad = _bboxes(<const int64_t*>p, N, S, shape, D, C, box, n_threads)
    if bad == -2:
        raise MemoryError("fastloss: cannot allocate bounding-box buffers")
    return bad


cdef void _bbox_row(const label_t* lab, const int64_t* shape, Py_ssize_t D, Py_ssize_t S,
                    Py_ssize_t nrows, Py_ssize_t C, Py_ssize_t u, int64_t* acc,
                    int64_t* rs, Py_ssize_t* bad) noexcept nogil:
    """One row of the last axis: column bounds per class, then the row's
    coordinates on the other axes for the classes it holds."""
    cdef Py_ssize_t row = shape[D - 1]
    cdef Py_ssize_t n = u // nrows, r = u % nrows, j, c, k, q
    cdef const label_t* p = lab + n * S + r * row
    cdef int64_t* a
    cdef label_t y
    cdef Py_ssize_t e
    j = 0
    while j < row:
        # runs of one label: one check and one update per run
        y = p[j]
        e = j + 1
        while e < row and p[e] == y:
            e += 1
        if y < 0 or y >= C:
            if bad[0] < 0 or n * S + r * row + j < bad[0]:
                bad[0] = n * S + r * row + j
        else:
            c = <Py_ssize_t>y
            if j < rs[2 * c]:
                rs[2 * c] = j
            rs[2 * c + 1] = e - 1
        j = e
    for c in range(C):
        if rs[2 * c + 1] < 0:
            continue
        a = acc + (n * C + c) * 2 * D
        if rs[2 * c] < a[D - 1]:
            a[D - 1] = rs[2 * c]
        if rs[2 * c + 1] > a[2 * D - 1]:
            a[2 * D - 1] = rs[2 * c + 1]
        q = r
        for k in range(D - 2, -1, -1):
            if q % shape[k] < a[k]:
                a[k] = q % shape[k]
            if q % shape[k] > a[D + k]:
                a[D + k] = q % shape[k]
            q = q // shape[k]
        rs[2 * c] = row
        rs[2 * c + 1] = -1


# ------------------------------------------------------------ nearest sites (k-d tree)
#
# Surface distances need, for every edge voxel of one mask, the distance to
# the nearest edge voxel of the other: a few thousand points on each side
# inside a box of a million voxels.  A k-d tree over the sites (Bentley
# 1975; median splits on the widest axis, LEAF points per leaf) answers each
# query in O(log k) instead of transforming the whole box.  A query's result
# is the minimum of d^2 = sum_a ((q_a - s_a) w_a)^2 over the sites it did
# not prune, and pruning only drops subtrees whose every site is at least
# as far as the best so far (the plane distance bounds d^2 from below in
# floating point too: the sum of non-negative terms is monotone): the exact
# minimum, whatever the thread count.

cdef enum:
    LEAF = 12
    QBLOCK = 512          # queries per parallel unit
    KD_STACK = 128        # tree depth is log2(k / LEAF) + 1 < 64


cdef void _kd_select(double* pts, int64_t* idx, Py_ssize_t lo, Py_ssize_t hi,
                     Py_ssize_t k, int axis, Py_ssize_t D) noexcept nogil:
    """Reorder idx[lo:hi] so that idx[k] holds the point of rank k along axis
    (Hoare's selection, middle pivot)."""
    cdef Py_ssize_t i, j
    cdef double piv
    cdef int64_t t
    while hi - lo > 1:
        piv = pts[idx[(lo + hi - 1) // 2] * D + axis]
        i = lo
        j = hi - 1
        while i <= j:
            while pts[idx[i] * D + axis] < piv:
                i += 1
            while pts[idx[j] * D + axis] > piv:
                j -= 1
            if i <= j:
                t = idx[i]
                idx[i] = idx[j]
                idx[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j + 1
        elif k >= i:
            lo = i
        else:
            return


cdef Py_ssize_t _kd_build(double* pts, int64_t* idx, Py_ssize_t n, Py_ssize_t D,
                          int64_t* nlo, int64_t* nhi, int* nax, double* nsplit,
                          int64_t* nleft) noexcept nogil:
    """Nodes in preorder: node i covers idx[nlo[i]:nhi[i]]; an inner node
    splits on nax[i] at nsplit[i], its children are i + 1 and nleft[i]...
    (the right child's index is stored in nleft).  Returns the node count."""
    cdef int64_t stack_lo[KD_STACK]
    cdef int64_t stack_hi[KD_STACK]
    cdef int64_t stack_parent[KD_STACK]
    cdef Py_ssize_t sp = 0, count = 0, lo, hi, mid, i, a, parent
    cdef double mn, mx, v, best
    cdef int ax
    stack_lo[0] = 0
    stack_hi[0] = n
    stack_parent[0] = -1
    sp = 1
    while sp > 0:
        sp -= 1
        lo = stack_lo[sp]
        hi = stack_hi[sp]
        parent = stack_parent[sp]
        if parent >= 0:
            nleft[parent] = count   # the right child (pushed first, built last)
        nlo[count] = lo
        nhi[count] = hi
        nax[count] = -1
        if hi - lo > LEAF:
            best = -1.0
            ax = 0
            for a in range(D):
                mn = INFINITY
                mx = -INFINITY
                for i in range(lo, hi):
                    v = pts[idx[i] * D + a]
                    if v < mn:
                        mn = v
                    if v > mx:
                        mx = v
                if mx - mn > best:
                    best = mx - mn
                    ax = <int>a
            mid = (lo + hi) // 2
            _kd_select(pts, idx, lo, hi, mid, ax, D)
            nax[count] = ax
            nsplit[count] = pts[idx[mid] * D + ax]
            # right child [mid, hi) first on the stack, left [lo, mid) on top:
            # the left child is node count + 1
            stack_lo[sp] = mid
            stack_hi[sp] = hi
            stack_parent[sp] = count
            stack_lo[sp + 1] = lo
            stack_hi[sp + 1] = mid
            stack_parent[sp + 1] = -1
            sp += 2
        count += 1
    return count


cdef double _kd_query(const double* q, const double* tp, Py_ssize_t D,
                      const int64_t* nlo, const int64_t* nhi, const int* nax,
                      const double* nsplit, const int64_t* nright,
                      Py_ssize_t* hint) noexcept nogil:
    """Depth-first, near child first.  Each stacked cell carries the per-axis
    distances from q to its slabs (Arya & Mount's incremental distance);
    its bound is their sum of squares, recomputed in the same axis order as
    d^2, so bound <= d^2 holds in floating point for every site inside.
    hint[0] (a site, or -1) starts the search with a bound: the nearest
    site of the previous query, a neighbour on the surface, is usually
    within a voxel of this one's, so most cells are pruned from the root
    (the result is still the minimum over all sites: the start is one of
    them).  On return hint[0] is this query's nearest site."""
    cdef int64_t stack_node[KD_STACK]
    cdef double stack_off[KD_STACK * 3]
    cdef Py_ssize_t sp = 1, node, i, a, near, far, ax, bi = hint[0]
    cdef double best = INFINITY, lb, d2, t, diff
    cdef double* off
    cdef const double* s
    if bi >= 0:
        s = tp + bi * D
        best = 0.0
        for a in range(D):
            t = q[a] - s[a]
            best = best + t * t
    stack_node[0] = 0
    for a in range(D):
        stack_off[a] = 0.0
    while sp > 0:
        sp -= 1
        node = stack_node[sp]
        off = stack_off + sp * 3
        lb = 0.0
        for a in range(D):
            lb = lb + off[a] * off[a]
        if lb >= best:
            continue
        if nax[node] < 0:
            for i in range(nlo[node], nhi[node]):
                s = tp + i * D
                d2 = 0.0
                for a in range(D):
                    t = q[a] - s[a]
                    d2 = d2 + t * t
                if d2 < best:
                    best = d2
                    bi = i
            continue
        ax = nax[node]
        diff = q[ax] - nsplit[node]
        if diff < 0:
            near = node + 1
            far = nright[node]
        else:
            near = nright[node]
            far = node + 1
        # near child on top (slot sp + 1) with the cell's offsets; the far
        # child (slot sp) lies beyond the split plane along ax
        for a in range(D):
            stack_off[(sp + 1) * 3 + a] = off[a]
        stack_node[sp + 1] = near
        stack_node[sp] = far
        t = diff if diff >= 0 else -diff
        if t > off[ax]:
            off[ax] = t
        sp += 2
    hint[0] = bi
    return best


def nearest_sq(size_t sites_addr, Py_ssize_t k, size_t queries_addr, Py_ssize_t m,
               Py_ssize_t D, size_t out_addr, int n_threads):
    """out[i] = min over the k sites of the squared distance to query i.

    Addresses of C-contiguous float64 arrays: sites (k, D) and queries
    (m, D) in physical units (coordinates times spacing), out (m,).  The
    sites array is not modified (the tree orders an index array).  k > 0.
    D <= 3.  Returns 0, or 2 when the tree cannot be allocated.
    """
    cdef double* pts = <double*>sites_addr
    cdef const double* qs = <const double*>queries_addr
    cdef double* out = <double*>out_addr
    cdef Py_ssize_t nn = 2 * (k // LEAF + 1) * 2 + 1, i
    cdef int64_t* idx = <int64_t*>malloc(k * sizeof(int64_t))
    cdef int64_t* nlo = <int64_t*>malloc(nn * sizeof(int64_t))
    cdef int64_t* nhi = <int64_t*>malloc(nn * sizeof(int64_t))
    cdef int64_t* nright = <int64_t*>malloc(nn * sizeof(int64_t))
    cdef double* nsplit = <double*>malloc(nn * sizeof(double))
    cdef int* nax = <int*>malloc(nn * sizeof(int))
    cdef double* tp = <double*>malloc(k * D * sizeof(double))
    cdef int nt
    cdef int rc = 0
    cdef Py_ssize_t a, u, units, hint
    if (idx == NULL or nlo == NULL or nhi == NULL or nright == NULL or nsplit == NULL
            or nax == NULL or tp == NULL):
        rc = 2
    else:
        with nogil:
            for i in range(k):
                idx[i] = i
            _kd_build(pts, idx, k, D, nlo, nhi, nax, nsplit, nright)
            # the sites in tree order: a leaf is one contiguous run
            for i in range(k):
                for a in range(D):
                    tp[i * D + a] = pts[idx[i] * D + a]
            # queries in blocks of QBLOCK, each block in order with the
            # previous query's nearest site as its starting bound
            units = (m + QBLOCK - 1) // QBLOCK
            nt = threads_for(n_threads, units)
            for u in prange(units, schedule="static", num_threads=nt):
                hint = -1
                for i in range(u * QBLOCK, min((u + 1) * QBLOCK, m)):
                    out[i] = _kd_query(qs + i * D, tp, D, nlo, nhi, nax, nsplit, nright,
                                       &hint)
    free(idx)
    free(nlo)
    free(nhi)
    free(nright)
    free(nsplit)
    free(nax)
    free(tp)
    return rc


cdef double _local_query(int64_t base, const uint8_t* mp, const int64_t* delta,
                         const double* offd2, Py_ssize_t o0, Py_ssize_t no) noexcept nogil:
    """offd2 of the first offset from o0 on that lands on a site from the map
    position base, or -1 (the map's margin keeps every probe inside it)."""
    cdef Py_ssize_t o
    for o in range(o0, no):
        if mp[base + delta[o]] != 0:
            return offd2[o]
    return -1.0


cdef void _local_unit(const int64_t* qp, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t D,
                      const double* w, double tab2, const int64_t* st, int64_t R,
                      const uint8_t* mp, const int64_t* delta, const double* offd2,
                      Py_ssize_t no, double* out) noexcept nogil:
    """Queries i0..i1-1 in order.  A query at physical distance dq from the
    one before, whose nearest site is at dp (at least sqrt(tab2) when the
    table had none), has no site nearer than dp - dq (the triangle
    inequality), so its scan starts at the first offset that long (queries
    come in C order: neighbours on a surface, dq often one voxel).  The
    bound is lowered by a relative 1e-9, far above the rounding of dp and
    dq, so that an offset exactly that long is never skipped."""
    cdef Py_ssize_t i, a, o0, lo, hi, mid
    cdef double dq, t, dp, b
    for i in range(i0, i1):
        o0 = 0
        if i > i0:
            dq = 0.0
            for a in range(D):
                t = <double>(qp[i * D + a] - qp[(i - 1) * D + a]) * w[a]
                dq += t * t
            dp = sqrt(out[i - 1]) if out[i - 1] >= 0 else sqrt(tab2)
            b = dp - sqrt(dq)
            if b > 0:
                b = b * b * (1.0 - 1e-9)
                lo = 0
                hi = no
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if offd2[mid] < b:
                        lo = mid + 1
                    else:
                        hi = mid
                o0 = lo
        out[i] = _local_query(_flat_pos(qp + i * D, D, st, R), mp, delta, offd2, o0, no)


def local_sq(size_t sites_addr, Py_ssize_t k, size_t queries_addr, Py_ssize_t m,
             Py_ssize_t D, size_t shape_addr, size_t offs_addr, size_t offd2_addr,
             Py_ssize_t no, size_t spacing_addr, double tab2, size_t out_addr, int n_threads):
    """Nearest sites within a small neighbourhood, by lookup.

    The k sites and m queries are int64 (k, D) / (m, D) coordinates in a box
    of the D int64 extents ``shape``; offs (no, D) int64 and offd2 (no,)
    float64 are neighbour offsets and their squared physical lengths, in
    increasing order, holding EVERY offset shorter than some radius (the
    wrapper's table): every offset whose squared length, with the D float64
    ``spacing``, is below tab2.  A map of the sites (with a margin as wide
    as the longest offset, so a probe needs no bounds check) is filled, and
    each query takes the first offset that lands on a site: no site outside
    the table is as near, so out[i] = offd2[first hit] is the exact minimum.
    Queries without a hit get out[i] = -1.  Returns the number of those, or
    -2 when the map cannot be allocated.
    """
    cdef const int64_t* sp = <const int64_t*>sites_addr
    cdef const int64_t* qp = <const int64_t*>queries_addr
    cdef const int64_t* shape = <const int64_t*>shape_addr
    cdef const int64_t* offs = <const int64_t*>offs_addr
    cdef const double* offd2 = <const double*>offd2_addr
    cdef const double* w = <const double*>spacing_addr
    cdef double* out = <double*>out_addr
    cdef int64_t st[3]
    cdef Py_ssize_t i, a, o, total = 1, miss = 0, units, u
    cdef int64_t flat, R = 0
    cdef int nt
    cdef uint8_t* mp
    cdef int64_t* delta = <int64_t*>malloc((no + 1) * sizeof(int64_t))
    if delta == NULL:
        return -2
    for i in range(no * D):
        if offs[i] > R:
            R = offs[i]
        if -offs[i] > R:
            R = -offs[i]
    for a in range(D - 1, -1, -1):
        st[a] = total
        total *= shape[a] + 2 * R
    mp = <uint8_t*>calloc(total, 1)
    if mp == NULL:
        free(delta)
        return -2
    with nogil:
        for o in range(no):
            delta[o] = 0
            for a in range(D):
                delta[o] += offs[o * D + a] * st[a]
        for i in range(k):
            flat = 0
            for a in range(D):
                flat += (sp[i * D + a] + R) * st[a]
            mp[flat] = 1
        units = (m + QBLOCK - 1) // QBLOCK
        nt = threads_for(n_threads, units)
        for u in prange(units, schedule="static", num_threads=nt):
            _local_unit(qp, u * QBLOCK, min((u + 1) * QBLOCK, m), D, w, tab2, st, R, mp, delta,
                        offd2, no, out)
        for i in range(m):
            if out[i] < 0:
                miss += 1
    free(mp)
    free(delta)
    return miss


cdef inline int64_t _flat_pos(const int64_t* q, Py_ssize_t D, const int64_t* st,
                              int64_t R) noexcept nogil:
    cdef int64_t flat = 0
    cdef Py_ssize_t a
    for a in range(D):
        flat += (q[a] + R) * st[a]
    return flat


cdef double _brute_query(const double* q, const double* sT, Py_ssize_t k,
                         Py_ssize_t D) noexcept nogil:
    """min over the k sites (coordinates by axis: sT[a * k + i]) of the
    squared distance to q, the sum taken in axis order as in _kd_query."""
    cdef Py_ssize_t i = 0, a, ln
    cdef double best = INFINITY, d2, t
    cdef double acc[8]
    cdef double q0 = q[0], q1 = q[1] if D > 1 else 0.0, q2 = q[2] if D > 2 else 0.0
    for ln in range(8):
        acc[ln] = INFINITY
    if D == 3:
        # 8 independent minima (vectorized; the minimum is exact in any order)
        while i + 8 <= k:
            for ln in range(8):
                t = q0 - sT[i + ln]
                d2 = t * t
                t = q1 - sT[k + i + ln]
                d2 = d2 + t * t
                t = q2 - sT[2 * k + i + ln]
                d2 = d2 + t * t
                acc[ln] = d2 if d2 < acc[ln] else acc[ln]
            i += 8
        for ln in range(8):
            best = acc[ln] if acc[ln] < best else best
    while i < k:
        d2 = 0.0
        for a in range(D):
            t = q[a] - sT[a * k + i]
            d2 = d2 + t * t
        best = d2 if d2 < best else best
        i += 1
    return best


def brute_sq(size_t sitesT_addr, Py_ssize_t k, size_t queries_addr, Py_ssize_t m,
             Py_ssize_t D, size_t out_addr, int n_threads):
    """out[i] = min over the k sites of the squared distance to query i, by
    a scan of every site: cheaper than building a tree for a few queries.
    sitesT (D, k) and queries (m, D) float64 in physical units."""
    cdef const double* sT = <const double*>sitesT_addr
    cdef const double* qs = <const double*>queries_addr
    cdef double* out = <double*>out_addr
    cdef Py_ssize_t i
    cdef int nt = threads_for(n_threads, (m * k) // 65536 + 1)
    with nogil:
        for i in prange(m, schedule="static", num_threads=nt):
            out[i] = _brute_query(qs + i * D, sT, k, D)


# ------------------------------------------------------------ edge voxels

cdef Py_ssize_t _edges3(const label_t* lab, const int64_t* st, const int64_t* sh, int D,
                        int64_t k, int64_t* out, Py_ssize_t cap) noexcept nogil:
    """Coordinates of the voxels equal to k with a face
    neighbour that is not k or outside the box, in C order.

    The box is 3-D (sh, element strides st); its first 3 - D axes have
    extent 1 and are not spatial (no neighbours there).  Returns the count,
    or -1 when more than cap were found.
    """
    cdef Py_ssize_t i, j, m, cnt = 0
    cdef const label_t* p
    cdef const label_t* row
    cdef bint e
    cdef int a0 = 3 - D
    for i in range(sh[0]):
        for j in range(sh[1]):
            row = lab + i * st[0] + j * st[1]
            for m in range(sh[2]):
                p = row + m * st[2]
                if p[0] != k:
                    continue
                e = m == 0 or m == sh[2] - 1 or p[-st[2]] != k or p[st[2]] != k
                if not e and a0 <= 1:
                    e = j == 0 or j == sh[1] - 1 or p[-st[1]] != k or p[st[1]] != k
                if not e and a0 == 0:
                    e = i == 0 or i == sh[0] - 1 or p[-st[0]] != k or p[st[0]] != k
                if not e:
                    continue
                if cnt >= cap:
                    return -1
                if D == 3:
                    out[cnt * 3] = i
                    out[cnt * 3 + 1] = j
                    out[cnt * 3 + 2] = m
                elif D == 2:
                    out[cnt * 2] = j
                    out[cnt * 2 + 1] = m
                else:
                    out[cnt] = m
                cnt += 1
    return cnt


def edge_coords(size_t lab_addr, int code, size_t strides_addr, size_t shape_addr, int D,
                int64_t k, size_t out_addr, Py_ssize_t cap):
    """Edge voxels of class ``k`` in a (possibly strided) box of a label array.

    Addresses: the box's first element, its 3 element strides and 3
    extents (int64; the first 3 - D extents are 1) and a C-contiguous int64
    (cap, D) output of box coordinates; ``code`` is the label dtype as
    in class_bboxes (bool masks are uint8 with k = 1).  A voxel is an edge
    when it holds k and a face neighbour does not or lies outside the box
    (the box contains the class with a margin or touches the image border,
    so this is MONAI's erosion with the border as background).  Returns
    the number of edge voxels (C order of their positions), or -1 when it
    exceeds cap.
    """
    cdef const void* p = <const void*>lab_addr
    cdef const int64_t* st = <const int64_t*>strides_addr
    cdef const int64_t* sh = <const int64_t*>shape_addr
    cdef int64_t* out = <int64_t*>out_addr
    cdef Py_ssize_t r
    with nogil:
        if code == 0:
            r = _edges3(<const uint8_t*>p, st, sh, D, k, out, cap)
        elif code == 1:
            r = _edges3(<const int8_t*>p, st, sh, D, k, out, cap)
        elif code == 2:
            r = _edges3(<const int16_t*>p, st, sh, D, k, out, cap)
        elif code == 3:
            r = _edges3(<const int32_t*>p, st, sh, D, k, out, cap)
        else:
            r = _edges3(<const int64_t*>p, st, sh, D, k, out, cap)
    return r


# ------------------------------------------------------------ fused loss passes
#
# The distance losses need, per voxel, the activation of every class, the
# target and the distance fields of the used classes, and (with a gradient)
# the chain rule back through the activation.  One pass over blocks of LB
# voxels does all of it in double: the class planes of a block (C x LB
# values, strided by S in the (N, C, S) input) are read once, the per-class
# sums go to per-(image, class, chunk) partials (LCHUNK voxels each, summed
# in voxel order), so the result does not depend on the thread count.

cdef enum:
    LB = 256              # voxels per block (C * LB doubles of scratch per thread, twice)
    LCHUNK = 16384        # voxels per partial sum
    ACT_NONE = 0
    ACT_SIGMOID = 1
    ACT_SOFTMAX = 2
    KIND_HD = 0
    KIND_BOUNDARY = 1


cdef void _activate(const floating* x, Py_ssize_t C, Py_ssize_t S, Py_ssize_t nb, int act,
                    double* p) noexcept nogil:
    """p[c * LB + b] = activation of x[c * S + b] for b < nb."""
    cdef Py_ssize_t c, b
    cdef floating v
    cdef floating mx[LB]   # the running max in the logits' own type: a select per lane
    if act == ACT_SOFTMAX:
        # max-subtracted exponentials, the normalisation by one reciprocal
        for b in range(nb):
            mx[b] = x[b]
        for c in range(1, C):
            for b in range(nb):
                v = x[c * S + b]
                mx[b] = v if v > mx[b] else mx[b]
        if floating is float:
            # float32 logits: the exponentials in float (16 lanes, <= 1 ulp),
            # as torch and MONAI compute them; sums and products in double
            for c in range(C):
                for b in range(nb):
                    p[c * LB + b] = fl_expf(x[c * S + b] - mx[b])
        else:
            for c in range(C):
                for b in range(nb):
                    p[c * LB + b] = fl_exp(x[c * S + b] - mx[b])
        for b in range(nb):
            p[C * LB + b] = p[b]
        for c in range(1, C):
            for b in range(nb):
                p[C * LB + b] += p[c * LB + b]
        for b in range(nb):
            p[C * LB + b] = 1.0 / p[C * LB + b]
        for c in range(C):
            for b in range(nb):
                p[c * LB + b] *= p[C * LB + b]
    elif act == ACT_SIGMOID:
        for c in range(C):
            for b in range(nb):
                if floating is float:
                    p[c * LB + b] = 1.0 / (1.0 + <double>fl_expf(-x[c * S + b]))
                else:
                    p[c * LB + b] = 1.0 / (1.0 + fl_exp(-x[c * S + b]))
    else:
        for c in range(C):
            for b in range(nb):
                p[c * LB + b] = x[c * S + b]


cdef inline void _prefetch_block(const floating* x, const double* fa, const double* fb,
                                 Py_ssize_t C, Py_ssize_t S, Py_ssize_t ncls) noexcept nogil:
    """Ask for the next block's logits and fields while this one is computed:
    2 C + ncls streams S apart are more than the hardware prefetcher follows
    ahead of a thread (the fields' loads were the loss pass's stall)."""
    cdef Py_ssize_t c, k
    for c in range(C):
        for k in range(0, LB * sizeof(floating), 64):
            FL_PREFETCH_NTA(<const char*>(x + c * S) + k)
    for c in range(ncls):
        for k in range(0, LB * sizeof(double), 64):
            FL_PREFETCH_NTA(<const char*>(fa + c * S) + k)
            if fb != NULL:
                FL_PREFETCH_NTA(<const char*>(fb + c * S) + k)


cdef void _loss_unit(const floating* x, floating* gx, Py_ssize_t C, Py_ssize_t S,
                     Py_ssize_t s0, Py_ssize_t s1, int act, Py_ssize_t c0, Py_ssize_t ncls,
                     const uint8_t* gm, const double* gs, const double* fa, const double* fb,
                     double alpha, int kind, const double* scale, bint want_grad,
                     double* part, Py_ssize_t nch, double* p, double* dp,
                     double* t, double* gb) noexcept nogil:
    """Voxels [s0, s1) of one image: the per-class sums into part[j * nch]
    and, with want_grad, d(loss)/dx into gx.  gm: (ncls, S) uint8 target
    masks, or gs: (C, S) soft targets; fa (and fb for Hausdorff): (ncls, S)
    fields, +inf read as 0 (a one-valued mask has none).  p, dp: (C + 1) * LB
    scratch, t and gb: LB.  The per-voxel terms go to t and are summed by
    lanes_sum (fixed order, vectorized); every loop over b is branch-free."""
    cdef Py_ssize_t b, c, j, s, nb
    cdef double e, w, wa, wb, d, sc, half = 0.5 * alpha
    cdef double* pc
    cdef double* dc
    cdef const double* g
    cdef const double* fap
    cdef const double* fbp
    cdef floating gl[LB]
    for j in range(ncls):
        part[j * nch] = 0.0
    s = s0
    while s < s1:
        nb = s1 - s
        if nb > LB:
            nb = LB
        if s + LB < s1:
            _prefetch_block(x + s + LB, fa + s + LB, fb + s + LB if fb != NULL else NULL,
                            C, S, ncls)
        _activate(x + s, C, S, nb, act, p)
        for j in range(ncls):
            c = c0 + j
            pc = p + c * LB
            dc = dp + c * LB
            sc = scale[j]
            fap = fa + j * S + s
            if gm != NULL:
                for b in range(nb):
                    gb[b] = <double>gm[j * S + s + b]
                g = gb
            else:
                g = gs + c * S + s
            if kind == KIND_HD:
                fbp = fb + j * S + s
                if alpha == 2.0:
                    for b in range(nb):
                        wa = fap[b]
                        wb = fbp[b]
                        w = (wa if wa != INFINITY else 0.0) + (wb if wb != INFINITY else 0.0)
                        e = pc[b] - g[b]
                        t[b] = e * e * w
                        dc[b] = 2.0 * e * w * sc
                else:
                    for b in range(nb):
                        wa = fap[b]
                        wb = fbp[b]
                        w = (pow(wa, half) if wa != INFINITY else 0.0) + \
                            (pow(wb, half) if wb != INFINITY else 0.0)
                        e = pc[b] - g[b]
                        t[b] = e * e * w
                        dc[b] = 2.0 * e * w * sc
            else:
                for b in range(nb):
                    d = fap[b]
                    d = d if d != INFINITY else 0.0
                    # inside the target (and off a one-valued mask): 1 - d
                    d = 1.0 - d if (g[b] > 0.5 and d > 0.0) else d
                    t[b] = pc[b] * d
                    dc[b] = d * sc
            part[j * nch] += lanes_sum(t, nb)
        if want_grad:
            for c in range(c0):
                for b in range(nb):
                    dp[c * LB + b] = 0.0
            if act == ACT_SOFTMAX:
                for b in range(nb):
                    t[b] = p[b] * dp[b]
                for c in range(1, C):
                    for b in range(nb):
                        t[b] += p[c * LB + b] * dp[c * LB + b]
            for c in range(C):
                if act == ACT_SOFTMAX:
                    for b in range(nb):
                        gl[b] = <floating>(p[c * LB + b] * (dp[c * LB + b] - t[b]))
                elif act == ACT_SIGMOID:
                    for b in range(nb):
                        gl[b] = <floating>(dp[c * LB + b] * p[c * LB + b] * (1.0 - p[c * LB + b]))
                else:
                    for b in range(nb):
                        gl[b] = <floating>dp[c * LB + b]
                # the gradient is not read again: streamed, no read for ownership
                stream_out(gx + c * S + s, gl, nb)
        s += nb
    if want_grad:
        fl_stream_fence()


cdef int _loss_pass(const floating* x, floating* gx, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                    int act, Py_ssize_t c0, const uint8_t* gm, const double* gs,
                    const double* fa, const double* fb, double alpha, int kind,
                    const double* scale, bint want_grad, double* part,
                    int n_threads) noexcept nogil:
    cdef Py_ssize_t ncls = C - c0, nch = (S + LCHUNK - 1) // LCHUNK
    cdef Py_ssize_t units = N * nch, u, n, ch, s0, s1
    cdef int nt = threads_for(n_threads, units), bad = 0
    cdef int* badp = &bad   # shared: a name assigned in the parallel block is private
    cdef double* buf
    with parallel(num_threads=nt):
        buf = <double*>malloc((2 * C + 4) * LB * sizeof(double))
        if buf == NULL:
            badp[0] = 1
        else:
            for u in prange(units, schedule="dynamic"):   # partial sums per unit: any order
                n = u // nch
                ch = u % nch
                s0 = ch * LCHUNK
                s1 = s0 + LCHUNK
                if s1 > S:
                    s1 = S
                _loss_unit(x + n * C * S, gx + n * C * S if want_grad else NULL, C, S, s0, s1,
                           act, c0, ncls,
                           gm + n * ncls * S if gm != NULL else NULL,
                           gs + n * C * S if gs != NULL else NULL,
                           fa + n * ncls * S, fb + n * ncls * S if fb != NULL else NULL,
                           alpha, kind, scale + n * ncls, want_grad,
                           part + n * ncls * nch + ch, nch, buf, buf + (C + 1) * LB,
                           buf + (2 * C + 2) * LB, buf + (2 * C + 3) * LB)
            free(buf)
    return bad


def loss_pass(size_t x_addr, bint f32, size_t gx_addr, Py_ssize_t N, Py_ssize_t C,
              Py_ssize_t S, int act, Py_ssize_t c0, size_t gm_addr, size_t gs_addr,
              size_t fa_addr, size_t fb_addr, double alpha, int kind, size_t scale_addr,
              bint want_grad, size_t part_addr, int n_threads):
    """One pass of a distance loss over (N, C, S) inputs (see _loss_unit).

    Addresses of validated C-contiguous arrays: x (N, C, S) float32 (f32) or
    float64, gx the same when want_grad; gm (N, C - c0, S) uint8 target
    masks or (gm_addr 0) gs (N, C, S) float64 soft targets; fa, fb
    (N, C - c0, S) float64 fields (fb: Hausdorff only, else 0); scale
    (N, C - c0) float64, the gradient's factor per (image, class); part
    (N, C - c0, ceil(S / LCHUNK)) float64 partial sums.  act: 0 none,
    1 sigmoid, 2 softmax; kind: 0 Hausdorff (sum (p - g)^2 (fa^(alpha/2) +
    fb^(alpha/2)), the fields squared), 1 boundary (sum p phi, phi from
    the field fa and the target mask).  Returns 0, or 2 when the scratch
    cannot be allocated.
    """
    cdef int bad
    with nogil:
        if f32:
            bad = _loss_pass(<const float*>x_addr, <float*>gx_addr, N, C, S, act, c0,
                             <const uint8_t*>gm_addr, <const double*>gs_addr,
                             <const double*>fa_addr, <const double*>fb_addr, alpha, kind,
                             <const double*>scale_addr, want_grad, <double*>part_addr,
                             n_threads)
        else:
            bad = _loss_pass(<const double*>x_addr, <double*>gx_addr, N, C, S, act, c0,
                             <const uint8_t*>gm_addr, <const double*>gs_addr,
                             <const double*>fa_addr, <const double*>fb_addr, alpha, kind,
                             <const double*>scale_addr, want_grad, <double*>part_addr,
                             n_threads)
    return 2 if bad else 0


cdef int _masks_pass(const floating* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int act,
                     Py_ssize_t c0, uint8_t* out, int n_threads) noexcept nogil:
    cdef Py_ssize_t ncls = C - c0, nblk = (S + LB - 1) // LB
    cdef Py_ssize_t units = N * nblk, u, n, s, nb, c, b
    cdef int nt = threads_for(n_threads, (units + 63) // 64), bad = 0
    cdef int* badp = &bad
    cdef double* buf
    with parallel(num_threads=nt):
        buf = <double*>malloc((C + 1) * LB * sizeof(double))
        if buf == NULL:
            badp[0] = 1
        else:
            for u in prange(units, schedule="static"):
                n = u // nblk
                s = (u % nblk) * LB
                nb = S - s
                if nb > LB:
                    nb = LB
                _activate(x + n * C * S + s, C, S, nb, act, buf)
                for c in range(c0, C):
                    for b in range(nb):
                        out[(n * ncls + c - c0) * S + s + b] = buf[c * LB + b] > 0.5
            free(buf)
    return bad


def prob_masks(size_t x_addr, bint f32, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int act,
               Py_ssize_t c0, size_t out_addr, int n_threads):
    """out (N, C - c0, S) uint8 = [p > 0.5] for the classes c >= c0, p the
    activation of x (N, C, S) as loss_pass computes it (addresses of
    C-contiguous arrays; x float32 when f32, else float64).  Returns 0, or 2
    when the scratch cannot be allocated."""
    cdef int bad
    with nogil:
        if f32:
            bad = _masks_pass(<const float*>x_addr, N, C, S, act, c0, <uint8_t*>out_addr,
                              n_threads)
        else:
            bad = _masks_pass(<const double*>x_addr, N, C, S, act, c0, <uint8_t*>out_addr,
                              n_threads)
    return 2 if bad else 0


# ------------------------------------------------------------ edge voxels of every class at once
#
# A voxel is an edge of its own class when a face neighbour holds another
# label or lies outside the image (MONAI's mask ^ erosion(mask), border as
# background); every voxel belongs to one class, so one pass over a label
# map finds the edges of all classes.  A plane's voxels are flagged with
# branch-free comparisons against their six neighbours (vectorized, whole
# planes at a time: per-row loops cost more in overhead than in work), and
# packed to one bit per voxel, scanned 64 at a time (edges are a few percent
# of the voxels).  Two passes: the first flags and counts per (image,
# plane, class), the wrapper turns the counts into output positions, the
# second reads the packed flags back and writes the coordinates, so each
# class's edges come out in C order whatever the thread count.

cdef void _plane_flags(const label_t* cur, Py_ssize_t i, const int64_t* sh, int D,
                       uint8_t* fl) noexcept nogil:
    """fl[x] = 1 where voxel x of plane i (sh[1] rows of sh[2]) has a face
    neighbour of another label or outside the image.  sh: 3 extents, the
    first 3 - D of extent 1 and not spatial.  The comparisons run over the
    whole plane as one array (shifts by 1, a row, a plane), one loop per
    neighbour so that gcc vectorizes each (a uint8 flag may alias a uint8
    label: with more pointers in a loop its alias checks give up); the
    comparisons that wrap around a row's end are then overwritten by the
    border's flags."""
    cdef Py_ssize_t n = sh[2], P = sh[1] * sh[2], x, j
    cdef const label_t* nb
    if D >= 3 and (i == 0 or i == sh[0] - 1):
        for x in range(P):
            fl[x] = 1
        return
    nb = cur - 1
    fl[0] = 1
    for x in range(1, P):
        fl[x] = cur[x] != nb[x]
    nb = cur + 1
    for x in range(P - 1):
        fl[x] |= cur[x] != nb[x]
    if D >= 2:
        nb = cur - n
        for x in range(n, P):
            fl[x] |= cur[x] != nb[x]
        nb = cur + n
        for x in range(P - n):
            fl[x] |= cur[x] != nb[x]
        for x in range(n):
            fl[x] = 1
            fl[P - n + x] = 1
    if D >= 3:
        nb = cur - P
        for x in range(P):
            fl[x] |= cur[x] != nb[x]
        nb = cur + P
        for x in range(P):
            fl[x] |= cur[x] != nb[x]
    for j in range(sh[1]):
        fl[j * n] = 1
        fl[j * n + n - 1] = 1


cdef Py_ssize_t _edge_unit(const label_t* img, Py_ssize_t i, const int64_t* sh, int D,
                           Py_ssize_t C, Py_ssize_t c0, int64_t* cnt, int64_t* pos,
                           int64_t* out, uint8_t* fl, uint64_t* bits) noexcept nogil:
    """Plane i of one image.  Without out: the plane's edge flags are packed
    into bits (one bit per voxel, nw = ceil(P / 64) words) and cnt[c] += the
    plane's edges of class c.  With out: the flags are read back from bits
    and each edge's D coordinates go to out[pos[c]++ * D].  Returns the
    first flat position (in the image) of a label outside [0, C), or -1."""
    cdef Py_ssize_t n = sh[2], P = sh[1] * sh[2], x, k, c
    cdef Py_ssize_t nw = (P + 63) >> 6
    cdef Py_ssize_t bad = -1
    cdef const label_t* cur = img + i * P
    cdef uint64_t w
    cdef int64_t* o
    if out == NULL:
        _plane_flags(cur, i, sh, D, fl)
        for x in range(P, nw * 64):
            fl[x] = 0
        fl_pack_flags(fl, nw, bits)
    # the set bits, lowest first: C order
    for k in range(nw):
        w = bits[k]
        while w != 0:
            x = (k << 6) + FL_CTZ64(w)
            w &= w - 1
            if cur[x] < 0 or cur[x] >= C:
                if bad < 0:
                    bad = i * P + x
            else:
                c = <Py_ssize_t>cur[x]
                if c >= c0:
                    if out == NULL:
                        cnt[c] += 1
                    else:
                        o = out + pos[c] * D
                        pos[c] += 1
                        if D == 3:
                            o[0] = i
                            o[1] = x // n
                            o[2] = x % n
                        elif D == 2:
                            o[0] = x // n
                            o[1] = x % n
                        else:
                            o[0] = x
    return bad


cdef Py_ssize_t _edges_pass(const label_t* lab, Py_ssize_t N, Py_ssize_t S, const int64_t* sh,
                            int D, Py_ssize_t C, Py_ssize_t c0, int64_t* cnt,
                            int64_t* out, uint64_t* bits, int n_threads) noexcept nogil:
    cdef Py_ssize_t nu = sh[0], units = N * nu, u, n, b
    cdef Py_ssize_t nw = (sh[1] * sh[2] + 63) >> 6
    cdef Py_ssize_t bad = -1
    cdef Py_ssize_t* badp = &bad
    cdef int nt = threads_for(n_threads, units)
    cdef uint8_t* fl = NULL
    with parallel(num_threads=nt):
        fl = <uint8_t*>malloc(nw * 64)
        if fl == NULL:
            badp[0] = -2
        else:
            for u in prange(units, schedule="static"):
                n = u // nu
                b = _edge_unit(lab + n * S, u % nu, sh, D, C, c0, cnt + u * C, cnt + u * C,
                               out, fl, bits + u * nw)
                if b >= 0:
                    b = b + n * S
                    with gil:
                        if badp[0] == -1 or (badp[0] >= 0 and b < badp[0]):
                            badp[0] = b
            free(fl)
    return bad


def edges_all(size_t lab_addr, int code, Py_ssize_t N, Py_ssize_t S, size_t shape_addr, int D,
              Py_ssize_t C, Py_ssize_t c0, size_t cnt_addr, size_t out_addr, size_t bits_addr,
              int n_threads):
    """Edge voxels of every class c0 <= c < C of a batch of label maps.

    Addresses of C-contiguous arrays: the (N, S) labels (``code`` as in
    class_bboxes), 3 int64 extents (the first 3 - D are 1), cnt, int64
    (N, shape[0], C): one unit per plane, and bits, uint64 (N, shape[0],
    ceil(shape[1] * shape[2] / 64)): the edge flags, one bit per voxel.  With
    out_addr 0: cnt is zeroed and filled with the edge count of each
    (image, unit, class), and bits with the flags.  Else cnt holds each
    (image, unit, class)'s first output row (the wrapper's prefix sums over
    (image, class, unit)), the flags are read from bits (as the first call
    left them) and the int64 (total, D) output gets the coordinates.
    Returns the first flat position (over N * S) of a label outside [0, C),
    -1 when none, -2 when a row buffer cannot be allocated.
    """
    cdef const void* p = <const void*>lab_addr
    cdef const int64_t* sh = <const int64_t*>shape_addr
    cdef int64_t* cnt = <int64_t*>cnt_addr
    cdef int64_t* out = <int64_t*>out_addr
    cdef uint64_t* bits = <uint64_t*>bits_addr
    cdef Py_ssize_t bad = -1, i, nu = sh[0]
    if out == NULL:
        for i in range(N * nu * C):
            cnt[i] = 0
    with nogil:
        if code == 0:
            bad = _edges_pass(<const uint8_t*>p, N, S, sh, D, C, c0, cnt, out, bits, n_threads)
        elif code == 1:
            bad = _edges_pass(<const int8_t*>p, N, S, sh, D, C, c0, cnt, out, bits, n_threads)
        elif code == 2:
            bad = _edges_pass(<const int16_t*>p, N, S, sh, D, C, c0, cnt, out, bits, n_threads)
        elif code == 3:
            bad = _edges_pass(<const int32_t*>p, N, S, sh, D, C, c0, cnt, out, bits, n_threads)
        else:
            bad = _edges_pass(<const int64_t*>p, N, S, sh, D, C, c0, cnt, out, bits, n_threads)
    return bad
