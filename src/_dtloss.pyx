"""The distance losses' fused pass: activation, loss terms and gradient.

hausdorff_dt_loss and boundary_loss take their distance fields from
_distance.edt_sq; this pass reads the logits once per block and combines
them with the fields (design in the section comment below).
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, pow
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc

from _common cimport (
    ACT_NONE, ACT_SIGMOID, ACT_SOFTMAX, FL_PREFETCH_NTA, fl_exp, fl_expf, fl_stream_fence,
    floating, lanes_sum, stream_out, threads_for,
)


# ------------------------------------------------------------ fused loss passes
#
# The distance losses need, per voxel, the activation of every class, the
# target and the distance fields of the used classes, and (with a gradient)
# the chain rule back through the activation.  One pass over blocks of LB
# voxels does all of it in double: the class planes of a block (C x LB
# values, strided by S in the (N, C, S) input) are read once, the per-class
# sums go to per-(image, class, chunk) partials (LCHUNK voxels each, summed
# in voxel order), so the result does not depend on the thread count.

# the activation codes of the public names (fastloss/distance reads them)
ACTIVATIONS = {None: ACT_NONE, "none": ACT_NONE, "sigmoid": ACT_SIGMOID, "softmax": ACT_SOFTMAX}

cdef enum:
    LB = 256              # voxels per block (C * LB doubles of scratch per thread, twice)
    LCHUNK = 16384        # voxels per partial sum
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
