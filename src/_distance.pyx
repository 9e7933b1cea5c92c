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
   unit spacing), the square root is taken once at the end.  The winning
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
E. Nearest sites (feature transform) are carried as flat int64 indices,
   -1 where there is none, only when asked.
F. Bounding boxes of every class of a label map in one pass: per row of
   the last axis, per-thread min/max arrays merged after the loop
   (min/max are order-free, so deterministic); out-of-range labels are
   reported by the smallest flat position.
"""

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, sqrt
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc

from _common cimport label_t, threads_for

cdef enum:
    EDT_B = 16            # lines per unit on a strided axis (128 B of doubles)
    LINES_UNIT = 64       # contiguous lines per unit on the last axis


# ------------------------------------------------------------ 1-D passes

cdef void _first_line(const label_t* l, Py_ssize_t n, double w2, bint zero_bg,
                      double* d, int64_t* f, Py_ssize_t base, bint want_feat) noexcept nogil:
    """Contiguous line: squared distance to the nearest other label on the line."""
    cdef Py_ssize_t j = 0, e, i, dl, dr
    cdef label_t lab
    while j < n:
        lab = l[j]
        e = j + 1
        while e < n and l[e] == lab:
            e += 1
        if zero_bg and lab == 0:
            for i in range(j, e):
                d[i] = 0.0
            if want_feat:
                for i in range(j, e):
                    f[i] = base + i
        else:
            for i in range(j, e):
                dl = i - j + 1 if j > 0 else -1
                dr = e - i if e < n else -1
                if dl > 0 and (dr < 0 or dl <= dr):
                    d[i] = w2 * <double>(dl * dl)
                    if want_feat:
                        f[i] = base + j - 1
                elif dr > 0:
                    d[i] = w2 * <double>(dr * dr)
                    if want_feat:
                        f[i] = base + e
                else:
                    d[i] = INFINITY
                    if want_feat:
                        f[i] = -1
        j = e


cdef inline Py_ssize_t _push(double q, double fq, int64_t idq, Py_ssize_t k, double w2,
                             double* v, double* fv, double* z, int64_t* iv) noexcept nogil:
    """Add the parabola (q, fq) to the lower envelope; return the new top."""
    cdef double s = -INFINITY
    while k >= 0:
        s = ((fq + w2 * q * q) - (fv[k] + w2 * v[k] * v[k])) / (2.0 * w2 * (q - v[k]))
        if s > z[k]:
            break
        k -= 1
    k += 1
    v[k] = q
    fv[k] = fq
    iv[k] = idq
    z[k] = s if k > 0 else -INFINITY
    return k


cdef void _fh_line(const label_t* l, Py_ssize_t n, double w2, bint zero_bg,
                   double* d, int64_t* f, int64_t base, int64_t stride, bint want_feat,
                   double* v, double* fv, double* z, int64_t* iv) noexcept nogil:
    """Strided axis, one gathered line: lower envelope per run of equal label."""
    cdef Py_ssize_t j = 0, e, i, k, kk
    cdef label_t lab
    cdef double x, dx
    while j < n:
        lab = l[j]
        e = j + 1
        while e < n and l[e] == lab:
            e += 1
        if zero_bg and lab == 0:
            j = e
            continue
        k = -1
        if j > 0:
            k = _push(<double>(j - 1), 0.0, base + (j - 1) * stride, k, w2, v, fv, z, iv)
        for i in range(j, e):
            if d[i] < INFINITY:
                k = _push(<double>i, d[i], f[i] if want_feat else 0, k, w2, v, fv, z, iv)
        if e < n:
            k = _push(<double>e, 0.0, base + e * stride, k, w2, v, fv, z, iv)
        if k >= 0:
            kk = 0
            for i in range(j, e):
                x = <double>i
                while kk < k and z[kk + 1] < x:
                    kk += 1
                dx = x - v[kk]
                d[i] = w2 * dx * dx + fv[kk]
                if want_feat:
                    f[i] = iv[kk]
        j = e


cdef void _strided_unit(const label_t* lab, double* out, int64_t* feat, bint want_feat,
                        Py_ssize_t n, Py_ssize_t inner, Py_ssize_t nbi, Py_ssize_t u,
                        double w2, bint zero_bg, label_t* lb, double* db, int64_t* fb,
                        double* v, double* fv, double* z, int64_t* iv) noexcept nogil:
    cdef Py_ssize_t o = u // nbi
    cdef Py_ssize_t i0 = (u % nbi) * EDT_B
    cdef Py_ssize_t nb = inner - i0
    cdef Py_ssize_t b, j, p
    cdef Py_ssize_t start = o * n * inner + i0
    if nb > EDT_B:
        nb = EDT_B
    for j in range(n):
        p = start + j * inner
        for b in range(nb):
            lb[b * n + j] = lab[p + b]
            db[b * n + j] = out[p + b]
        if want_feat:
            for b in range(nb):
                fb[b * n + j] = feat[p + b]
    for b in range(nb):
        _fh_line(lb + b * n, n, w2, zero_bg, db + b * n, fb + b * n, start + b, inner,
                 want_feat, v, fv, z, iv)
    for j in range(n):
        p = start + j * inner
        for b in range(nb):
            out[p + b] = db[b * n + j]
        if want_feat:
            for b in range(nb):
                feat[p + b] = fb[b * n + j]


# ------------------------------------------------------------ drivers

def edt_sq(const label_t[::1] lab, const int64_t[::1] shape, const double[::1] spacing,
           bint zero_bg, double[::1] out, int64_t[::1] feat, bint want_feat, bint take_sqrt,
           int n_threads):
    """Squared (or, with take_sqrt, plain) EDT of the flat C-order array ``lab``.

    ``out`` receives one float64 per voxel; ``feat`` (when want_feat) the
    flat index of the nearest site, -1 where there is none.  Returns 0, or
    FL_NO_MEMORY's code 2 when a scratch buffer cannot be allocated.
    """
    cdef Py_ssize_t ndim = shape.shape[0]
    cdef Py_ssize_t total = lab.shape[0]
    cdef Py_ssize_t axis, outer, inner, n, nbi, units, u, i, nmax = 1
    cdef int nt, tid
    cdef double w2
    cdef const label_t* lp = &lab[0] if total > 0 else NULL
    cdef double* op = &out[0] if total > 0 else NULL
    cdef int64_t* fp = &feat[0] if want_feat and total > 0 else NULL
    cdef label_t* lbuf = NULL
    cdef double* dbuf = NULL
    cdef int64_t* fbuf = NULL
    cdef double* stk = NULL
    cdef int64_t* istk = NULL
    cdef Py_ssize_t sz
    if total == 0 or ndim == 0:
        return 0
    for axis in range(ndim):
        if shape[axis] > nmax:
            nmax = shape[axis]
    # last axis: direct 1-D distances, LINES_UNIT lines per unit
    n = shape[ndim - 1]
    outer = total // n
    w2 = spacing[ndim - 1] * spacing[ndim - 1]
    units = (outer + LINES_UNIT - 1) // LINES_UNIT
    nt = threads_for(n_threads, units)
    for u in prange(units, schedule="static", nogil=True, num_threads=nt):
        for i in range(u * LINES_UNIT, min((u + 1) * LINES_UNIT, outer)):
            _first_line(lp + i * n, n, w2, zero_bg, op + i * n,
                        fp + i * n if want_feat else NULL, i * n, want_feat)
    if ndim > 1:
        sz = EDT_B * nmax
        nt = n_threads
        lbuf = <label_t*>malloc(nt * sz * sizeof(label_t))
        dbuf = <double*>malloc(nt * sz * sizeof(double))
        fbuf = <int64_t*>malloc(nt * sz * sizeof(int64_t)) if want_feat else NULL
        stk = <double*>malloc(nt * 3 * (nmax + 2) * sizeof(double))
        istk = <int64_t*>malloc(nt * (nmax + 2) * sizeof(int64_t))
        try:
            if (lbuf == NULL or dbuf == NULL or stk == NULL or istk == NULL
                    or (want_feat and fbuf == NULL)):
                return 2
            inner = n
            for axis in range(ndim - 2, -1, -1):
                n = shape[axis]
                outer = total // (n * inner)
                nbi = (inner + EDT_B - 1) // EDT_B
                units = outer * nbi
                w2 = spacing[axis] * spacing[axis]
                nt = threads_for(n_threads, units)
                for u in prange(units, schedule="static", nogil=True, num_threads=nt):
                    tid = threadid()
                    _strided_unit(lp, op, fp, want_feat, n, inner, nbi, u, w2, zero_bg,
                                  lbuf + tid * sz, dbuf + tid * sz,
                                  fbuf + tid * sz if want_feat else NULL,
                                  stk + tid * 3 * (nmax + 2),
                                  stk + tid * 3 * (nmax + 2) + (nmax + 2),
                                  stk + tid * 3 * (nmax + 2) + 2 * (nmax + 2),
                                  istk + tid * (nmax + 2))
                inner = inner * n
        finally:
            free(lbuf)
            free(dbuf)
            free(fbuf)
            free(stk)
            free(istk)
    if take_sqrt:
        units = (total + 65535) // 65536
        nt = threads_for(n_threads, units)
        for u in prange(units, schedule="static", nogil=True, num_threads=nt):
            for i in range(u * 65536, min((u + 1) * 65536, total)):
                op[i] = sqrt(op[i])
    return 0


def class_bboxes(const label_t[:, ::1] lab, const int64_t[::1] shape, Py_ssize_t C,
                 int64_t[:, :, ::1] box, int n_threads):
    """Per image n and class c < C, the bounding box of ``lab[n] == c``.

    ``lab`` is (N, S), each image of spatial ``shape`` in C order; ``box``
    is (N, C, 2 * ndim): the first ndim values are the lowest index along
    each axis, the last ndim the highest.  An absent class gets lo = shape,
    hi = -1.  Returns the first flat position (over N*S) holding a label
    outside [0, C), or -1.
    """
    cdef Py_ssize_t N = lab.shape[0], S = lab.shape[1], D = shape.shape[0]
    cdef Py_ssize_t row = shape[D - 1] if D > 0 else 1
    cdef Py_ssize_t nrows = S // row if row > 0 else 0
    cdef Py_ssize_t units = N * nrows, u, n, c, t, k, w = 2 * D
    cdef Py_ssize_t bad = -1
    cdef int nt = threads_for(n_threads, units)
    cdef int64_t* acc = NULL   # per thread: (N, C, 2 * D)
    cdef int64_t* rs = NULL    # per thread: (C, 2) row-local column bounds
    cdef Py_ssize_t* bads = NULL
    cdef int64_t* a
    for n in range(N):
        for c in range(C):
            for k in range(D):
                box[n, c, k] = shape[k]
                box[n, c, D + k] = -1
    if units == 0 or C <= 0 or D == 0:
        return -1
    acc = <int64_t*>malloc(nt * N * C * w * sizeof(int64_t))
    rs = <int64_t*>malloc(nt * C * 2 * sizeof(int64_t))
    bads = <Py_ssize_t*>malloc(nt * sizeof(Py_ssize_t))
    try:
        if acc == NULL or rs == NULL or bads == NULL:
            raise MemoryError("fastloss: cannot allocate bounding-box buffers")
        for t in range(nt):
            bads[t] = -1
            for k in range(N * C):
                for c in range(D):
                    acc[(t * N * C + k) * w + c] = shape[c]
                    acc[(t * N * C + k) * w + D + c] = -1
            for c in range(C):
                rs[(t * C + c) * 2] = row
                rs[(t * C + c) * 2 + 1] = -1
        for u in prange(units, schedule="static", nogil=True, num_threads=nt):
            _bbox_row(&lab[0, 0], &shape[0], D, S, nrows, C, u,
                      acc + threadid() * N * C * w, rs + threadid() * C * 2,
                      &bads[threadid()])
        for t in range(nt):
            if bads[t] >= 0 and (bad < 0 or bads[t] < bad):
                bad = bads[t]
            for n in range(N):
                for c in range(C):
                    a = acc + (t * N * C + n * C + c) * w
                    for k in range(D):
                        if a[k] < box[n, c, k]:
                            box[n, c, k] = a[k]
                        if a[D + k] > box[n, c, D + k]:
                            box[n, c, D + k] = a[D + k]
    finally:
        free(acc)
        free(rs)
        free(bads)
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
    for j in range(row):
        y = p[j]
        if y < 0 or y >= C:
            if bad[0] < 0 or n * S + r * row + j < bad[0]:
                bad[0] = n * S + r * row + j
            continue
        c = <Py_ssize_t>y
        if j < rs[2 * c]:
            rs[2 * c] = j
        rs[2 * c + 1] = j
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
