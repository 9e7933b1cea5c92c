"""Exact Euclidean distance transforms and per-class bounding boxes.

The surface metrics' edges and nearest sites are in _surface.pyx, the
distance losses' fused pass in _dtloss.pyx.

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
D''. One-byte labels on AVX-512 builds, without nearest sites: a strided
   unit's lines go 8 at a time (one vector per position) by a search
   outwards from each voxel, the minimum over y of w2 (x - y)^2 + h(y)
   (h(y) = 0 where y holds another label), stopped once w2 t^2 passes the
   best of all 8 lanes (fl_window8): work in proportion to the distances,
   branch-free across the lanes, where the envelope's stack work per voxel
   is serial.  The values are the envelope's (design C's argument; with a
   spacing whose squares are inexact, two sites at the same distance in
   real numbers may differ by an ulp, and the two methods may take either).
   A group whose distances are long (more than WIN_STEPS steps a position)
   goes to the envelope, and so does the group after it (its neighbours
   have much the same distances).
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
"""

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, sqrt
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from _common cimport FL_PREFETCH_NTA, label_t, threads_for, threads_for_work

cdef extern from *:
    """
    #if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    #include <immintrin.h>
    #define FL_WINDOW8 1
    /* 8 lines of a strided unit's scratch with one-byte labels (element j
     * of line l at j * st + l: one vector per position), each voxel x as
     * the minimum over y of w2 (x - y)^2 + h(y), h(y) the value at y where
     * y holds x's label and 0 where it holds another (that voxel is then a
     * site itself).  Every term is the squared length of a path to a voxel
     * of another label and the lower envelope's winner (design C) is one
     * of them, so the minimum is the envelope's value.  x looks outwards,
     * |x - y| = t, until w2 t^2 reaches the best value in all 8 lanes: the
     * work is the distances' size, not the line's.  Results go to res
     * (j * 8 + l); returns 0, res unfinished, as soon as the steps taken
     * exceed per for each position so far (and 4 per of slack): sparse
     * sites, deep interiors, where the envelope's O(n) per line is cheaper,
     * are found early. */
    /* min(m, w2 t t + h(y)) with a = w2 t, b = t: the term rounded as the
     * envelope's w2 dx dx + f, which gcc contracts to one fused
     * multiply-add (FMA targets, which all AVX-512 ones are) */
    static inline __m512d fl_term8(const uint8_t *lb, const double *db, Py_ssize_t y,
                                   Py_ssize_t n, Py_ssize_t st, __m128i lx, __m512d a,
                                   __m512d b, __m512d m)
    {
        if (y < 0 || y >= n)
            return m;
        __mmask8 eq = _mm_cmpeq_epi8_mask(_mm_loadl_epi64((const __m128i *)(lb + y * st)), lx);
        return _mm512_min_pd(m, _mm512_fmadd_pd(a, b, _mm512_maskz_loadu_pd(eq, db + y * st)));
    }
    static inline int fl_window8(const uint8_t *lb, const double *db, Py_ssize_t n,
                                 Py_ssize_t st, double w2, Py_ssize_t per, double *res)
    {
        Py_ssize_t x, t, budget = 4 * per;
        for (x = 0; x < n; x++) {
            budget += per;
            __m512d best = _mm512_loadu_pd(db + x * st);
            __m128i lx = _mm_loadl_epi64((const __m128i *)(lb + x * st));
            for (t = 1;; t++) {
                double dt = (double)t;
                __m512d a = _mm512_set1_pd(w2 * dt), b = _mm512_set1_pd(dt);
                if (!_mm512_cmp_pd_mask(_mm512_mul_pd(a, b), best, _CMP_LT_OQ))
                    break;
                if (--budget < 0)
                    return 0;
                best = fl_term8(lb, db, x - t, n, st, lx, a, b, best);
                best = fl_term8(lb, db, x + t, n, st, lx, a, b, best);
            }
            _mm512_storeu_pd(res + x * 8, best);
        }
        return 1;
    }
    #else
    #define FL_WINDOW8 0
    static inline int fl_window8(const uint8_t *lb, const double *db, Py_ssize_t n,
                                 Py_ssize_t st, double w2, Py_ssize_t per, double *res)
    { return 0; }
    #endif
    """
    bint FL_WINDOW8
    int fl_window8(const uint8_t* lb, const double* db, Py_ssize_t n, Py_ssize_t st,
                   double w2, Py_ssize_t per, double* res) noexcept nogil

# Labels in the EDT are only compared for equality and with zero: one
# specialization per width.
ctypedef fused word_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

cdef enum:
    EDT_B = 64            # lines per unit on a strided axis (512 B rows of doubles)
    WIN_STEPS = 32         # fl_window8's steps per position before leaving 8 lines to the envelope
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
                        int64_t* site, double* stk, int64_t* iv, double* wres) noexcept nogil:
    """EDT_B neighbouring lines: copied row by row (EDT_B contiguous values,
    whole cache lines, one page visit per row) into a per-thread scratch
    that keeps the interleaved layout, transformed there with stride EDT_B
    (the scratch stays in L1/L2), and copied back (design D)."""
    cdef Py_ssize_t o = u // nbi
    cdef Py_ssize_t i0 = (u % nbi) * EDT_B
    cdef Py_ssize_t nb = inner - i0
    cdef Py_ssize_t b, j, p, g, ln
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
    cdef bint failed = False
    for g in range(0, nb, 8):
        # 8 lines at a time by their nearby sites where the distances are
        # short, else line by line by the lower envelope (the same values);
        # after a group that needed the envelope, its neighbour (lines next
        # to it, much the same distances) goes to the envelope directly
        if (FL_WINDOW8 and word_t is uint8_t and not want_feat and g + 8 <= nb
                and not failed):
            if fl_window8(<const uint8_t*>lb + g, db + g, n, EDT_B, w2, WIN_STEPS, wres):
                for j in range(n):
                    for ln in range(8):
                        db[j * EDT_B + g + ln] = wres[j * 8 + ln]
                continue
            failed = True
        else:
            failed = False
        for b in range(g, min(g + 8, nb)):
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
    cdef double* wbuf = NULL
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
    wbuf = <double*>malloc(nt * 8 * m * sizeof(double))
    if (stk == NULL or istk == NULL or lbuf == NULL or dbuf == NULL or wbuf == NULL
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
                                      istk + tid * 2 * m, wbuf + tid * 8 * m)
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
                              istk + tid * 2 * m, wbuf + tid * 8 * m)
            inner = inner * n
    free(stk)
    free(istk)
    free(lbuf)
    free(dbuf)
    free(fbuf)
    free(wbuf)
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
    # at most one thread per ELEM_BLOCK voxels: the volumes of a batch of
    # small images (one call per image and class for the surface
    # distances) would otherwise each start a parallel region that costs
    # more than the transform ((64, 4, 32, 32) masks: hausdorff_distance
    # took 2.2x its one-thread time on 2 threads)
    n_threads = threads_for_work(n_threads, total, total)
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
    cdef int nt = threads_for_work(n_threads, units, N * S)
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
