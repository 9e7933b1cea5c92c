# The block helpers of _segmentation.pyx's passes (header-only, inline):
# the statistics pass's per-thread scratch, a block's input planes and their
# activation, the label reader, and the vertical accumulators of its design G.

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

from _common cimport (
    ACT_NONE, ACT_SIGMOID, ACT_SOFTMAX, block_labels, fl_cpu_amd, fl_widen, floating, label_t,
    planes_softmax_sums, prefetch_row, sigmoid,
)
from _fastcall cimport LBL_I8, LBL_I16, LBL_I32, LBL_I64, LBL_U8

cdef enum:
    # SEG_BLOCK: positions per block, small enough that the vertical
    # accumulators of the label-map path stay in L1 (G)
    SEG_BLOCK = 128
    NSTAT = 5           # sums per (image, class)
    # a thread's scratch: planes on SKEW_PERIOD bytes, the block arrays the
    # loops read SKEW bytes past one (_segmentation.pyx's design D)
    SKEW = 256
    SKEW_PERIOD = 512
    # positions ahead of a block whose class planes _block_x requests, in
    # images of more than SEG_AHEAD_BYTES (smaller ones are likely in L2,
    # where the requests only take load slots), on CPUs other than AMD's
    SEG_AHEAD = 512
    SEG_AHEAD_BYTES = 4194304


cdef inline Py_ssize_t _wk_offset(Py_ssize_t C, Py_ssize_t fs) noexcept nogil:
    """Where the double workspace starts in a thread's scratch (bytes)."""
    cdef Py_ssize_t b = (5 * C + 3) * SEG_BLOCK * fs + C * SEG_BLOCK * 4 + SKEW
    b += SEG_BLOCK * 4 + 3 * SEG_BLOCK * fs
    return (b + SKEW_PERIOD - 1) // SKEW_PERIOD * SKEW_PERIOD


cdef inline Py_ssize_t _stats_scratch(Py_ssize_t C, Py_ssize_t fs) noexcept nogil:
    """Bytes of a thread's scratch in the statistics pass (_stats_unit's
    layout; fs the data's size), a multiple of SKEW_PERIOD."""
    cdef Py_ssize_t b = _wk_offset(C, fs) + ((NSTAT * C + 3) * SEG_BLOCK + C + 2) * 8
    return (b + SKEW_PERIOD - 1) // SKEW_PERIOD * SKEW_PERIOD


cdef inline const floating* _block_x(const floating* x, const unsigned short* xh, int xkind,
                                     Py_ssize_t base, Py_ssize_t S, Py_ssize_t C,
                                     Py_ssize_t nb, floating* xw,
                                     Py_ssize_t* xs) noexcept nogil:
    """A block's C planes of the input: in place (plane stride S) or, for
    float16 / bfloat16 storage xh, widened into the unit's L1 buffer xw
    (plane stride SEG_BLOCK), so that the block math runs on the same
    float32 values as on a widened copy of the whole input."""
    cdef Py_ssize_t c
    if floating is float:
        if xh != NULL:
            for c in range(C):
                fl_widen(xh + base + c * S, xkind, xw + c * SEG_BLOCK, nb)
            xs[0] = SEG_BLOCK
            return xw
    xs[0] = S
    if S * C * <Py_ssize_t>sizeof(floating) > SEG_AHEAD_BYTES and not fl_cpu_amd():
        # C streams an image apart: requested a few blocks ahead, the
        # block's loads wait less on memory (the Dice statistics on (2, 4,
        # 160^3) float32 at 2 threads on the Intel Xeon: 0.94x the time, the
        # gradient 0.90x).  On the AMD EPYC (Zen 4) the same requests cost
        # time: without them 0.90x (dice_loss), 0.95x (dice_ce_loss), one
        # thread 0.91x.
        for c in range(C):
            prefetch_row(x + base + c * S + SEG_AHEAD, nb)
    return x + base


cdef inline void _copy_planes(const floating* x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t nb,
                              floating* e) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef floating* ec
    cdef const floating* xc
    for c in range(C):
        ec = e + c * SEG_BLOCK
        xc = x + c * S
        for j in range(nb):
            ec[j] = xc[j]


cdef inline void _scale_planes(floating* e, Py_ssize_t C, Py_ssize_t nb,
                               const floating* r) noexcept nogil:
    cdef Py_ssize_t c, j
    cdef floating* ec
    for c in range(C):
        ec = e + c * SEG_BLOCK
        for j in range(nb):
            ec[j] = ec[j] * r[j]


cdef inline void _probs_raw(const floating* x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t nb,
                            int act, floating* e, double* m, double* s,
                            floating* r) noexcept nogil:
    """The activation up to a per-position factor: p[c, j] = e[c*SEG_BLOCK + j] * r[j].

    softmax: e = exp(x - m) and r = 1/sum_c e (also sets m, s); sigmoid:
    e = sigmoid(x), r = 1; none: e is left alone (the caller reads x) and
    r = 1.  p is the same floating product e*r that _probs stores.
    """
    cdef Py_ssize_t c, j
    cdef floating* ec
    cdef const floating* xc
    if act == ACT_SOFTMAX:
        planes_softmax_sums(x, S, 1, C, nb, True, m, s, e, SEG_BLOCK)
        for j in range(nb):
            r[j] = 1 / <floating>s[j]
        return
    for j in range(nb):
        r[j] = 1
    if act == ACT_SIGMOID:
        for c in range(C):
            ec = e + c * SEG_BLOCK
            xc = x + c * S
            for j in range(nb):
                ec[j] = sigmoid(xc[j])


cdef inline void _probs(const floating* x, Py_ssize_t S, Py_ssize_t C, Py_ssize_t nb, int act,
                        floating* e, double* m, double* s) noexcept nogil:
    """e[c*SEG_BLOCK + j] = activation of x[c*S + j]; softmax also sets m, s."""
    cdef floating r[SEG_BLOCK]
    _probs_raw(x, S, C, nb, act, e, m, s, r)
    if act == ACT_NONE:
        _copy_planes(x, S, C, nb, e)
    elif act == ACT_SOFTMAX:
        _scale_planes(e, C, nb, r)


cdef inline Py_ssize_t _labels(const label_t* t, Py_ssize_t nb, Py_ssize_t Cr,
                               Py_ssize_t ignore, bint has_ignore, int* yy,
                               floating* vm) noexcept nogil:
    """yy = label (or -1 when ignored or bad), vm = 0 there, else 1.

    Returns the first position holding a label outside [0, Cr) other than
    ignore_index, or -1 (a bad label makes the call raise, so its vm does
    not matter).
    """
    cdef Py_ssize_t j
    cdef Py_ssize_t bad = block_labels(t, nb, Cr, ignore, has_ignore, yy)
    for j in range(nb):
        vm[j] = 1 if yy[j] >= 0 else 0
    return bad

cdef inline int label_kind(const label_t* p) noexcept nogil:
    """The LBL_* kind of label_t (p only selects the type)."""
    if label_t is int64_t:
        return LBL_I64
    if label_t is int32_t:
        return LBL_I32
    if label_t is int16_t:
        return LBL_I16
    if label_t is int8_t:
        return LBL_I8
    return LBL_U8


cdef inline Py_ssize_t _labels_at(const void* lab, int lkind, Py_ssize_t off, Py_ssize_t nb,
                                  Py_ssize_t Cr, Py_ssize_t ignore, bint has_ignore, int* yy,
                                  floating* vm) noexcept nogil:
    """_labels of the block at off of a label map of any width (lkind: LBL_*),
    so that the passes are compiled once per data type, not once per label
    width as well (ten statistics units were 0.5 MB of each target)."""
    if lkind == LBL_I64:
        return _labels(<const int64_t*>lab + off, nb, Cr, ignore, has_ignore, yy, vm)
    if lkind == LBL_I32:
        return _labels(<const int32_t*>lab + off, nb, Cr, ignore, has_ignore, yy, vm)
    if lkind == LBL_I16:
        return _labels(<const int16_t*>lab + off, nb, Cr, ignore, has_ignore, yy, vm)
    if lkind == LBL_I8:
        return _labels(<const int8_t*>lab + off, nb, Cr, ignore, has_ignore, yy, vm)
    return _labels(<const uint8_t*>lab + off, nb, Cr, ignore, has_ignore, yy, vm)


cdef inline void _gmask(const int* yy, int cls, Py_ssize_t nb, floating* g) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(nb):
        g[j] = 1 if yy[j] == cls else 0


# Vertical accumulators (design H): the per-unit workspace holds, for each
# statistic k and class c, SEG_BLOCK doubles at wk + (k*C + c)*SEG_BLOCK;
# position j of every block adds into slot j, so each loop below is a plain
# element-wise update with no loop-carried dependency.

cdef inline void _vadd(double* a, const floating* p, Py_ssize_t nb) noexcept nogil:
    """a[j] += p[j]."""
    cdef Py_ssize_t j
    for j in range(nb):
        a[j] += p[j]


cdef inline void _vadd_sq(double* a, const floating* p, Py_ssize_t nb) noexcept nogil:
    """a[j] += p[j]^2 (in double)."""
    cdef Py_ssize_t j
    cdef double pv
    for j in range(nb):
        pv = p[j]
        a[j] += pv * pv


cdef inline void _vadd_label(floating* aP, floating* aI, int* cnt, const floating* e,
                             const floating* rv, const int* yy, int cls,
                             Py_ssize_t nb) noexcept nogil:
    """With p = e rv: aP[j] += p, aI[j] += p where yy[j] == cls, cnt[j] += (yy[j] == cls)."""
    cdef Py_ssize_t j
    cdef floating pv, zero = 0
    cdef bint sel
    for j in range(nb):
        pv = e[j] * rv[j]
        sel = yy[j] == cls
        aP[j] += pv
        aI[j] += pv if sel else zero
        cnt[j] += sel


cdef inline void _vadd_sq_scaled(floating* a, const floating* e, const floating* rv,
                                 Py_ssize_t nb) noexcept nogil:
    """a[j] += (e[j] rv[j])^2."""
    cdef Py_ssize_t j
    cdef floating pv
    for j in range(nb):
        pv = e[j] * rv[j]
        a[j] += pv * pv


cdef inline void _vadd_soft(double* aI, double* aG, double* aG2, const floating* p,
                            const floating* g, Py_ssize_t nb) noexcept nogil:
    """aI += p g, aG += g, aG2 += g^2."""
    cdef Py_ssize_t j
    cdef double pv, gv
    for j in range(nb):
        pv = p[j]
        gv = g[j]
        aI[j] += pv * gv
        aG[j] += gv
        aG2[j] += gv * gv


cdef inline void _vadd_sens(double* a1, double* a0, double* an, double* aG, double* aG2,
                            const floating* p, const floating* g, const floating* v,
                            Py_ssize_t nb) noexcept nogil:
    """a1 += g d^2, a0 += v (1-g) d^2, an += v (1-g), aG += g, aG2 += g^2; d = g - p."""
    cdef Py_ssize_t j
    cdef double d, gv, nv
    for j in range(nb):
        gv = g[j]
        d = gv - p[j]
        nv = v[j] * (1.0 - gv)
        a1[j] += gv * d * d
        a0[j] += nv * d * d
        an[j] += nv
        aG[j] += gv
        aG2[j] += gv * gv


cdef inline void _fold(double* a, floating* f, Py_ssize_t n) noexcept nogil:
    """a[i] += f[i], then f[i] = 0."""
    cdef Py_ssize_t i
    for i in range(n):
        a[i] += f[i]
        f[i] = 0


cdef inline int64_t _isum(const int* a, Py_ssize_t n) noexcept nogil:
    cdef int64_t t = 0
    cdef Py_ssize_t i
    for i in range(n):
        t += a[i]
    return t
