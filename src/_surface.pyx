"""Surface distances: edge voxels and nearest sites.

Design:
A. The edge voxels of a class come out of one pass over its box
   (edge_coords, in C order), or of every class of a batch of label maps
   at once (edges_all); the distances from one edge set to the other come
   from a lookup of the nearest offsets (local_sq), then a scan of every
   site (brute_sq) or a k-d tree over the sites (nearest_sq) for the
   queries the lookup leaves, when the edges are few against the box, else
   from the EDT of the box (_distance.edt_sq; the wrapper chooses; all
   are exact).
B. As in _distance.pyx, the Python entry points take the data addresses of
   arrays the wrapper has validated and dispatch on the label dtype to
   nogil fused functions.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, sqrt
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from _common cimport label_t, threads_for, threads_for_work

cdef extern from *:
    """
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
    /* bits[w] = the edge flags of plane cur (P voxels, rows of n; D as in
     * _plane_flags) for voxels 64 w ... 64 w + 63: one byte comparison per
     * face neighbour straight to a mask, their union, and the border's
     * flags from border[w] (bit x set where voxel x of a plane lies on a
     * row's end or on the first or last row).  A neighbour outside the
     * plane is only ever one of a border voxel, so its lanes are masked
     * off (masked loads do not fault).  whole: every voxel is an edge (the
     * first and last plane of a volume).  Voxels whose label, read as an
     * unsigned byte, is below c0 (a class not asked for; a negative int8
     * label reads as 128 or more and is kept, for the range check) are
     * left out, so that the scans of the set bits skip them. */
    #if defined(__AVX512BW__)
    #define FL_EDGE_BITS8 1
    static inline uint64_t fl_lanes_from(Py_ssize_t k)    /* lanes j >= k */
    { return k <= 0 ? ~(uint64_t)0 : (k >= 64 ? 0 : ~(uint64_t)0 << k); }
    static inline uint64_t fl_lanes_below(Py_ssize_t k)   /* lanes j < k */
    { return k >= 64 ? ~(uint64_t)0 : (k <= 0 ? 0 : ((uint64_t)1 << k) - 1); }
    static inline __mmask64 fl_ne8(const uint8_t *cur, __m512i c, Py_ssize_t x,
                                   Py_ssize_t d, uint64_t lanes)
    {
        return _mm512_mask_cmpneq_epi8_mask(
            lanes, c, _mm512_maskz_loadu_epi8(lanes, (const void *)(cur + x + d)));
    }
    static inline void fl_plane_bits8(const uint8_t *cur, Py_ssize_t P, Py_ssize_t n, int D,
                                      int whole, int c0, const uint64_t *border,
                                      Py_ssize_t nw, uint64_t *bits)
    {
        Py_ssize_t w, x;
        __m512i lo = _mm512_set1_epi8((char)c0);
        for (w = 0; w < nw; w++) {
            x = 64 * w;
            uint64_t valid = fl_lanes_below(P - x), e = valid;
            __m512i c = _mm512_maskz_loadu_epi8(valid, (const void *)(cur + x));
            if (!whole) {
                e = fl_ne8(cur, c, x, -1, valid & fl_lanes_from(1 - x))
                  | fl_ne8(cur, c, x, 1, fl_lanes_below(P - 1 - x)) | border[w];
                if (D >= 2)
                    e |= fl_ne8(cur, c, x, -n, valid & fl_lanes_from(n - x))
                       | fl_ne8(cur, c, x, n, fl_lanes_below(P - n - x));
                if (D >= 3)
                    e |= fl_ne8(cur, c, x, -P, valid) | fl_ne8(cur, c, x, P, valid);
            }
            bits[w] = e & ~(uint64_t)_mm512_mask_cmplt_epu8_mask(valid, c, lo);
        }
    }
    #else
    #define FL_EDGE_BITS8 0
    static inline void fl_plane_bits8(const uint8_t *cur, Py_ssize_t P, Py_ssize_t n, int D,
                                      int whole, int c0, const uint64_t *border,
                                      Py_ssize_t nw, uint64_t *bits) {}
    #endif
    """
    int FL_CTZ64(uint64_t x) noexcept nogil
    void fl_pack_flags(const uint8_t* fl, Py_ssize_t nw, uint64_t* bits) noexcept nogil
    bint FL_EDGE_BITS8
    void fl_plane_bits8(const uint8_t* cur, Py_ssize_t P, Py_ssize_t n, int D, int whole,
                        int c0, const uint64_t* border, Py_ssize_t nw,
                        uint64_t* bits) noexcept nogil


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
            # a query costs some 64 element-wise values (threads_for_work)
            nt = threads_for_work(n_threads, units, 64 * m)
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
        # a lookup costs some 8 element-wise values (threads_for_work)
        nt = threads_for_work(n_threads, units, 8 * m)
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


# ------------------------------------------------------------ edge voxels of every class at once
#
# A voxel is an edge of its own class when a face neighbour holds another
# label or lies outside the image (MONAI's mask ^ erosion(mask), border as
# background); every voxel belongs to one class, so one pass over a label
# map finds the edges of all classes.  A plane's voxels are flagged with
# branch-free comparisons against their six neighbours (vectorized, whole
# planes at a time: per-row loops cost more in overhead than in work), and
# packed to one bit per voxel, scanned 64 at a time (edges are a few percent
# of the voxels); one-byte labels with AVX-512BW go from six comparison
# masks straight to the bits, the voxels of classes below c0 (the
# background) left out of them, so the scans do not visit the image's
# border.  Two passes: the first flags and counts per (image,
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
                           int64_t* out, uint8_t* fl, const uint64_t* border,
                           uint64_t* bits) noexcept nogil:
    """Plane i of one image.  Without out: the plane's edge flags are packed
    into bits (one bit per voxel, nw = ceil(P / 64) words) and cnt[c] += the
    plane's edges of class c.  With out: the flags are read back from bits
    and each edge's D coordinates go to out[pos[c]++ * D].  Returns the
    first flat position (in the image) of a label outside [0, C), or -1.
    One-byte labels with AVX-512BW flag 64 voxels a step straight to bits
    (border: _border_bits), others through the byte flags fl."""
    cdef Py_ssize_t n = sh[2], P = sh[1] * sh[2], x, k, c
    cdef Py_ssize_t nw = (P + 63) >> 6
    cdef Py_ssize_t bad = -1
    cdef const label_t* cur = img + i * P
    cdef uint64_t w
    cdef int64_t* o
    if out == NULL:
        if FL_EDGE_BITS8 and (label_t is uint8_t or label_t is int8_t) and c0 < 128:
            fl_plane_bits8(<const uint8_t*>cur, P, n, D, D >= 3 and (i == 0 or i == sh[0] - 1),
                           <int>c0, border, nw, bits)
        else:
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


cdef void _border_bits(Py_ssize_t P, Py_ssize_t n, int D, uint64_t* border) noexcept nogil:
    """Bit x of border (P bits, padded with zeros to whole words) set where
    voxel x of a plane of rows of n lies on a row's end, or (D >= 2) on the
    first or last row: the voxels whose face neighbour there is outside."""
    cdef Py_ssize_t x, j, nw = (P + 63) >> 6
    for x in range(nw):
        border[x] = 0
    for j in range(P // n):
        x = j * n
        border[x >> 6] |= (<uint64_t>1) << (x & 63)
        x = x + n - 1
        border[x >> 6] |= (<uint64_t>1) << (x & 63)
    if D >= 2:
        for x in range(n):
            border[x >> 6] |= (<uint64_t>1) << (x & 63)
            border[(P - n + x) >> 6] |= (<uint64_t>1) << ((P - n + x) & 63)


cdef Py_ssize_t _edges_pass(const label_t* lab, Py_ssize_t N, Py_ssize_t S, const int64_t* sh,
                            int D, Py_ssize_t C, Py_ssize_t c0, int64_t* cnt,
                            int64_t* out, uint64_t* bits, int n_threads) noexcept nogil:
    cdef Py_ssize_t nu = sh[0], units = N * nu, u, n, b
    cdef Py_ssize_t nw = (sh[1] * sh[2] + 63) >> 6
    cdef Py_ssize_t bad = -1
    cdef Py_ssize_t* badp = &bad
    cdef int nt = threads_for_work(n_threads, units, N * S)
    cdef uint8_t* fl = NULL
    cdef uint64_t* border = NULL
    with parallel(num_threads=nt):
        fl = <uint8_t*>malloc(nw * 64)
        border = <uint64_t*>malloc(nw * sizeof(uint64_t))
        if fl == NULL or border == NULL:
            badp[0] = -2
        else:
            _border_bits(sh[1] * sh[2], sh[2], D, border)
            for u in prange(units, schedule="static"):
                n = u // nu
                b = _edge_unit(lab + n * S, u % nu, sh, D, C, c0, cnt + u * C, cnt + u * C,
                               out, fl, border, bits + u * nw)
                if b >= 0:
                    b = b + n * S
                    with gil:
                        if badp[0] == -1 or (badp[0] >= 0 and b < badp[0]):
                            badp[0] = b
        free(fl)
        free(border)
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
