# Shared declarations and inline helpers for every kernel module.
#
# Header-only: fused types, the deterministic block reduction,
# and the per-element math that more than one loss family uses (the
# (N, C, S) layouts of the class-axis kernels are in _layout.pxd).
# Nothing here touches a Python object; everything is `noexcept nogil`.
#
# Design:
# A. One fused float type `floating` (float32, float64) for data, outputs and
#    gradients: the result keeps the input's dtype, as in torch.  Arithmetic
#    that feeds a reduction is carried in double.
# B. One fused label type `label_t` (uint8 ... int64): label maps are read in
#    their own width, never converted into an int64 copy.
# C. Reductions are split into a FIXED number of blocks that depends only on
#    the problem size.  Each block sums in double into its own BlockOut, and
#    blocks are combined in index order after the parallel loop, so the
#    result is bit-identical for any thread count.
# D. Inside a block, sums that must vectorize use LANES independent
#    accumulators in a fixed order (gcc will not reorder a floating-point sum
#    without -ffast-math, which we never use): deterministic and SIMD.
# E. exp/log inside loops come from fastmath.h (branch-free, vectorizable,
#    <= 2 ulp); scalar per-row values use libm.

from libc.limits cimport INT_MAX, INT_MIN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.math cimport INFINITY, fabs, fabsf, isfinite, log
from libc.stdlib cimport malloc

ctypedef fused floating:
    float
    double

ctypedef fused label_t:
    uint8_t
    int8_t
    int16_t
    int32_t
    int64_t

cdef extern from "fastmath.h" nogil:
    const int FL_VECTOR_BYTES
    unsigned int fl_ftz_begin()
    void fl_ftz_end(unsigned int csr)
    float fl_expf(float x)
    double fl_exp(double x)
    float fl_expf_lo(float x)
    double fl_exp_lo(double x)
    float fl_expf_neg(float x)
    double fl_exp_neg(double x)
    float fl_expf_neg_scale(float x, float* r)
    float fl_expf_poly(float r)
    float fl_fmaf(float a, float b, float c)
    double fl_fma(double a, double b, double c)
    float fl_logf(float x)
    double fl_log(double x)
    float fl_log1pf(float x)
    double fl_log1p(double x)
    float fl_log1p_unitf(float e)
    void FL_PREFETCH(const void* p)
    void FL_PREFETCH_NTA(const void* p)
    void fl_cpu_amd_init()
    int fl_cpu_amd()

cdef extern from "flrows.h" nogil:
    double fl_diff_sumf(const float* a, const float* b, Py_ssize_t n, float eps, int p)
    void fl_soft_statsf(const float* x, const float* t, const double* w, double keep,
                        double epc, Py_ssize_t n, double* A, double* D)
    double fl_chunk_sumf(const float* v, Py_ssize_t n)
    int FL_LANES_VEC
    double fl_lanes_sum_f32(const float* v, Py_ssize_t n)
    double fl_lanes_sum_f64(const double* v, Py_ssize_t n)
    float fl_row_maxf(const float* x, Py_ssize_t n)
    double fl_row_max(const double* x, Py_ssize_t n)

cdef extern from "flsoftmax.h" nogil:
    double fl_row_sumexpf(const float* x, Py_ssize_t n, float sh, const float* nxt)
    double fl_row_expf(const float* x, Py_ssize_t n, float sh, float* e, const float* nxt)
    void fl_plane_expf(const float* x, const float* sh, Py_ssize_t n, float* d, const float* nxt)
    void fl_planes_sumexpf(const float* x, Py_ssize_t cs, Py_ssize_t C, Py_ssize_t nb, int safe,
                           double* m, double* s)
    void fl_planes_expf(const float* x, Py_ssize_t cs, Py_ssize_t C, Py_ssize_t nb, int safe,
                        double* m, double* s, float* e, Py_ssize_t es)
    double fl_row_sumexpf_short(const float* x, Py_ssize_t n, float sh)
    double fl_row_expf_short(const float* x, Py_ssize_t n, float sh, float* e)
    Py_ssize_t FL_ROW_SUMEXPF_SHORT_MIN
    bint FL_ROW_SHIFT_EXPF8
    void fl_row_shift_expf(const float* x, Py_ssize_t n, float sh, float* d)
    void fl_row_axpbf(float* g, Py_ssize_t n, float a, float b, const double* w)
    void fl_row_axpb(double* g, Py_ssize_t n, double a, double b, const double* w)
    void fl_log_inplace(double* s, Py_ssize_t n)

cdef extern from "flhalf.h" nogil:
    enum:
        FL_KIND_F32
        FL_KIND_F16
        FL_KIND_BF16
        FL_KIND_U8
        FL_F16_NATIVE
    float fl_bf16_to_f32(unsigned short h)
    void fl_widen(const void* src, int kind, float* dst, Py_ssize_t m)
    void fl_widen_u8(const unsigned char* src, float* dst, Py_ssize_t m)
    void fl_narrow(const float* src, void* dst, int kind, Py_ssize_t m)
    bint fl_narrow_bf16_nt(const float* src, unsigned short* dst, Py_ssize_t m)

cdef extern from "fltranspose.h" nogil:
    enum:
        FL_TR_F32_MIN
        FL_TR_F32_MAX
        FL_TR_F64_MAX
    void fl_rows_to_planes_f32(const float* src, Py_ssize_t K, Py_ssize_t nr, float* dst,
                               Py_ssize_t ps, const float* next, float* mx)
    void fl_rows_to_planes_f64(const double* src, Py_ssize_t K, Py_ssize_t nr, double* dst,
                               Py_ssize_t ps, const double* next, double* mx)
    void fl_planes_to_rows_f32(const float* src, Py_ssize_t ps, Py_ssize_t K, Py_ssize_t nr,
                               float* dst)
    void fl_planes_to_rows_f64(const double* src, Py_ssize_t ps, Py_ssize_t K, Py_ssize_t nr,
                               double* dst)

cdef extern from "flstream.h" nogil:
    void fl_stream_f32(float* dst, const float* src, Py_ssize_t n)
    void fl_stream_f64(double* dst, const double* src, Py_ssize_t n)
    void fl_stream_fence()
    void fl_stream_zero(void* dst, size_t nbytes)

# Block sizes (work units). They depend on nothing but these constants and
# the problem's shape, never on the number of threads.
cdef enum:
    LANES = 8            # independent accumulators in a vectorized sum
    PLANE_BLOCK = 512    # positions per work unit on a strided class axis
    SMALL_C = 8          # class axes up to this length get unrolled softmax loops
    ELEM_BLOCK = 16384   # elements per work unit for element-wise losses
    WIDE_ROW = 32        # classes from which a row is reduced on its own
    STREAM_ROW = 4096    # longest row finished in an L1 buffer before it is streamed out
    # longest row (embedding size, class count) of float16 / bfloat16 data read
    # in its own width by the row kernels (triplet_half, multi_margin_half): six
    # float rows of it sit on the stack
    HALF_ROW = 2048

# The activation of the segmentation and distance-loss kernels' logits
# (each module's ACTIVATIONS maps the public names to them).
cdef enum:
    ACT_NONE = 0
    ACT_SIGMOID = 1
    ACT_SOFTMAX = 2

cdef struct BlockOut:
    double loss         # sum of (weighted) per-element losses
    double weight       # sum of weights: the 'mean' denominator
    Py_ssize_t bad      # first position holding an invalid label, or -1


cdef inline bint bad_label(Py_ssize_t y, Py_ssize_t C) noexcept nogil:
    """A class index outside [0, C)."""
    return y < 0 or y >= C


cdef inline bint skip_label(Py_ssize_t y, Py_ssize_t ignore, bint has_ignore, Py_ssize_t C,
                            Py_ssize_t pos, floating* loss_out, BlockOut* out) noexcept nogil:
    """True when position ``pos`` contributes nothing: its label is ``ignore``
    (only with ``has_ignore``) or outside [0, C).  Records the first invalid
    position in ``out.bad`` and zeroes the 'none' output; the caller zeroes
    the position's gradient."""
    cdef bint ignored = has_ignore and y == ignore
    if not ignored and not bad_label(y, C):
        return False
    if not ignored and out.bad < 0:
        out.bad = pos
    if loss_out != NULL:
        loss_out[pos] = 0
    return True


cdef inline Py_ssize_t block_labels(const label_t* t, Py_ssize_t nb, Py_ssize_t C,
                                    Py_ssize_t ignore, bint has_ignore,
                                    int* ys) noexcept nogil:
    """ys[j] = t[j] where it is a class in [0, C) (and not ``ignore``), else -1.

    A branch-free loop over a block of labels read in their own width;
    returns the first position holding a label outside [0, C) other than
    ``ignore`` (only with ``has_ignore``), or -1.
    """
    cdef Py_ssize_t j
    cdef long long y
    cdef int y32, c32, ig32, keep
    cdef bint ig, ok, hi
    cdef int anybad = 0
    if label_t is int64_t:
        # 64-bit compares, the same branch-free form as below
        if has_ignore:
            for j in range(nb):
                y = t[j]
                ig = y == ignore
                ok = <unsigned long long>y < <unsigned long long>C
                keep = ok & (not ig)
                ys[j] = <int>y | (keep - 1)
                anybad |= (not ok) & (not ig)
        else:
            for j in range(nb):
                y = t[j]
                ok = <unsigned long long>y < <unsigned long long>C
                ys[j] = <int>y | (ok - 1)
                anybad |= not ok
    else:
        # every label fits an int: 32-bit compares (one unsigned compare for
        # both bounds) let gcc vectorize the loop for the narrow types
        c32 = <int>C
        hi = has_ignore and INT_MIN <= ignore <= INT_MAX
        ig32 = <int>ignore if hi else 0
        # widened in a loop of its own (gcc vectorizes neither a widening
        # next to the compares nor a select that rewrites ys in place; an
        # OR with keep - 1, 0 or all ones, it does)
        for j in range(nb):
            ys[j] = <int>t[j]
        if hi:
            for j in range(nb):
                y32 = ys[j]
                ig = y32 == ig32
                ok = <unsigned int>y32 < <unsigned int>c32
                keep = ok & (not ig)
                ys[j] = y32 | (keep - 1)
                anybad |= (not ok) & (not ig)
        else:
            for j in range(nb):
                y32 = ys[j]
                ok = <unsigned int>y32 < <unsigned int>c32
                ys[j] = y32 | (ok - 1)
                anybad |= not ok
    if not anybad:
        return -1
    for j in range(nb):
        y = <long long>t[j]
        if not (has_ignore and y == ignore) and (y < 0 or y >= C):
            return j
    return -1


cdef inline BlockOut* alloc_blocks(Py_ssize_t n) except NULL:
    """One BlockOut per work unit (freed by the caller)."""
    cdef BlockOut* b = <BlockOut*>malloc((n if n > 0 else 1) * sizeof(BlockOut))
    if b == NULL:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    return b


cdef inline void* align64(const void* p) noexcept nogil:
    """p rounded up to the next multiple of 64 bytes: the start of a cache
    line and of an AVX-512 vector in a stack or heap buffer declared 64 bytes
    longer than it is used."""
    return <void*>((<size_t>p + 63) & ~(<size_t>63))


cdef inline void* align_up(const void* p, size_t a) noexcept nogil:
    """p rounded up to a multiple of a (a power of two)."""
    return <void*>((<size_t>p + a - 1) & ~(a - 1))


cdef inline Py_ssize_t n_blocks(Py_ssize_t n, Py_ssize_t block) noexcept nogil:
    return (n + block - 1) // block


cdef inline int threads_for(int n_threads, Py_ssize_t nblocks) noexcept nogil:
    """Never more threads than blocks; one thread for a single block."""
    if nblocks < n_threads:
        return <int>nblocks if nblocks > 1 else 1
    return n_threads


cdef inline Py_ssize_t deal(Py_ssize_t units, int nt) noexcept nogil:
    """prange's static chunk: units dealt one by one when there are few of them
    (a trailing partial unit then does not leave one thread with all the full
    ones), contiguous halves otherwise (memory-bound loops stream better)."""
    if units < 4 * nt:
        return 1
    return (units + nt - 1) // nt


cdef inline int threads_for_work(int n_threads, Py_ssize_t nblocks,
                                 Py_ssize_t work) noexcept nogil:
    """threads_for, and at most one thread per ELEM_BLOCK elements of work.

    n_threads is the most a call uses (as torch's grain size caps its
    threads): a unit and a sliver (16385 elements: a 16384-element unit and
    a 1-element one) or a few rows past a unit run on one thread, where a
    second would wait for its share and be slower than none.  The units
    themselves do not change, so neither do the results (see deal() for
    how they are shared).
    """
    cdef Py_ssize_t cap = work // ELEM_BLOCK
    if cap < n_threads:
        n_threads = <int>cap if cap > 1 else 1
    return threads_for(n_threads, nblocks)


cdef inline void block_init(BlockOut* out) noexcept nogil:
    out.loss = 0.0
    out.weight = 0.0
    out.bad = -1


cdef inline void combine_blocks(BlockOut* blocks, Py_ssize_t nb, BlockOut* total) noexcept nogil:
    """Sum block partials in index order (the deterministic reduction)."""
    cdef Py_ssize_t b
    block_init(total)
    for b in range(nb):
        total.loss += blocks[b].loss
        total.weight += blocks[b].weight
        if total.bad < 0 and blocks[b].bad >= 0:
            total.bad = blocks[b].bad


cdef inline double lanes_total(double* acc) noexcept nogil:
    """Fixed pairwise order for the LANES accumulators."""
    return (((acc[0] + acc[1]) + (acc[2] + acc[3]))
            + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


# ---------------------------------------------------------------- math
cdef inline void stream_out(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n] with non-temporal stores (flstream.h): for a
    finished block of an output the kernel does not read back."""
    if floating is float:
        fl_stream_f32(dst, src, n)
    else:
        fl_stream_f64(dst, src, n)


cdef inline bint tr_rows(Py_ssize_t K, bint f32) noexcept nogil:
    """Whether rows of K values (float32 when f32, else float64) go through
    fltranspose.h's register network: float rows of FL_TR_F32_MIN to
    FL_TR_F32_MAX values (1 to 16 on AVX-512, 8 to 16 on AVX2), double rows
    of up to FL_TR_F64_MAX (8 on AVX-512); none on other targets."""
    if f32:
        return FL_TR_F32_MIN <= K <= FL_TR_F32_MAX
    return K <= FL_TR_F64_MAX


cdef inline void rows_to_planes(const floating* src, Py_ssize_t K, Py_ssize_t nr,
                                floating* dst, Py_ssize_t ps, const floating* next,
                                floating* mx) noexcept nogil:
    """dst[k * ps + j] = src[j * K + k] for j < nr, k < K (in registers where
    tr_rows(K), else a scalar copy); the lines of
    next[:nr * K] (or NULL), the rows read after these, are requested on the
    way; mx (or NULL): mx[j] = the largest value of row j (NaN passed over,
    -inf for a row of NaN), taken while the planes are in registers."""
    if floating is float:
        fl_rows_to_planes_f32(src, K, nr, dst, ps, next, mx)
    else:
        fl_rows_to_planes_f64(src, K, nr, dst, ps, next, mx)


cdef inline void planes_to_rows(const floating* src, Py_ssize_t ps, Py_ssize_t K,
                                Py_ssize_t nr, floating* dst) noexcept nogil:
    """dst[j * K + k] = src[k * ps + j] for j < nr, k < K."""
    if floating is float:
        fl_planes_to_rows_f32(src, ps, K, nr, dst)
    else:
        fl_planes_to_rows_f64(src, ps, K, nr, dst)


cdef inline void prefetch_bytes(const void* p, Py_ssize_t nbytes) noexcept nogil:
    """Ask for the cache lines of nbytes at p (one hint per 64 bytes; a hint
    never faults, so the span may pass the end of the array)."""
    cdef const char* c = <const char*>p
    cdef Py_ssize_t b
    for b in range(0, nbytes, 64):
        FL_PREFETCH(c + b)


cdef inline void prefetch_row(const floating* p, Py_ssize_t n) noexcept nogil:
    """prefetch_bytes of p[:n]: issued before a row's arithmetic, the row
    after it arrives while the arithmetic runs."""
    prefetch_bytes(p, n * <Py_ssize_t>sizeof(floating))


cdef inline floating vabs(floating x) noexcept nogil:
    """|x| as a sign-bit mask (x if x >= 0 else -x is a compare and a
    select, four instructions on SSE2)."""
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating vexp(floating x) noexcept nogil:
    if floating is float:
        return fl_expf(x)
    else:
        return fl_exp(x)


cdef inline floating vexp_lo(floating x) noexcept nogil:
    """exp of a max-shifted argument (x - max; anything when the max was
    not finite): as vexp up to 88.37 in float (709.43 in double), +inf
    above; one scale factor fewer."""
    if floating is float:
        return fl_expf_lo(x)
    else:
        return fl_exp_lo(x)


cdef inline floating vexp_neg(floating x) noexcept nogil:
    """exp(x) for x <= 0 or NaN (exp(-|x|)): vexp_lo without its upper clamp."""
    if floating is float:
        return fl_expf_neg(x)
    else:
        return fl_exp_neg(x)


cdef inline floating vfma(floating a, floating b, floating c) noexcept nogil:
    """a b + c, one rounding on targets with FMA (fastmath's fl_fmaf)."""
    if floating is float:
        return fl_fmaf(a, b, c)
    else:
        return fl_fma(a, b, c)


cdef inline floating vlog(floating x) noexcept nogil:
    if floating is float:
        return fl_logf(x)
    else:
        return fl_log(x)


cdef inline floating vlog1p(floating x) noexcept nogil:
    if floating is float:
        return fl_log1pf(x)
    else:
        return fl_log1p(x)


cdef inline floating log1p_unit(floating e, floating r) noexcept nogil:
    """log(1 + e) for e in [0, 1] (an exp(-|z|)), given r = 1 / (1 + e).

    float: fastmath's division-free log1p on [0, 1]; double: log(u) with
    u = 1 + e (never 0 or inf, so no special-value select) and the rounding
    correction (e - (u - 1)) / u through r, which the sigmoid needs anyway.
    """
    cdef floating one = 1
    cdef floating u = one + e
    # fastmath's functions by name: gcc inlines them always, but may leave a
    # wrapper such as vlog as a call (one per element, no vectors) once a
    # large kernel module has used up its inlining budget
    if floating is float:
        return fl_log1p_unitf(e)
    else:
        return fl_log(u) + (e - (u - one)) * r


cdef inline floating sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)) via exp(-|x|): no overflow for any x, exact at +-inf."""
    cdef floating one = 1
    cdef floating ax = vabs(x)
    cdef floating e
    if floating is float:                # by name: see log1p_unit
        e = fl_expf_neg(-ax)
    else:
        e = fl_exp_neg(-ax)
    cdef floating r = one / (one + e)   # typed 1: no double arithmetic for float
    return r if x >= 0 else e * r


cdef inline double safe_shift(double m) noexcept nogil:
    """The max used to shift exponentials: 0 when the max is +-inf or NaN.

    As scipy.special.logsumexp: an all -inf row gives log(0) = -inf and a
    +inf entry gives +inf, instead of inf - inf = NaN.
    """
    return m if isfinite(m) else 0.0


# ------------------------------------------- max-subtracted log-sum-exp
# Two layouts cover every softmax-like reduction in the package:
#   row:    the C values of one row are contiguous (the class axis is last);
#   planes: the class axis is strided: value (c, j) sits at c*cs + j*ps, and
#           a block of nb positions j is reduced at once, the inner loop
#           running along j (contiguous for NCHW, where ps == 1).

cdef inline double row_max(const floating* x, Py_ssize_t n) noexcept nogil:
    """max_i x_i (NaN entries passed over; -inf for n = 0), see fastmath.h."""
    if floating is float:
        return fl_row_maxf(x, n)
    else:
        return fl_row_max(x, n)


cdef inline double lanes_sum(const floating* v, Py_ssize_t n) noexcept nogil:
    """sum_i v_i in double with 2 LANES accumulators (fixed order): two
    vectors of partial sums, so that consecutive adds do not wait on each
    other's latency; lane k + LANES is folded into lane k at the end.
    On AVX targets flrows.h's fl_lanes_sum_*, the same with the lanes in
    registers."""
    if FL_LANES_VEC:
        if floating is float:
            return fl_lanes_sum_f32(v, n)
        return fl_lanes_sum_f64(v, n)
    cdef double acc[2 * LANES]
    cdef Py_ssize_t i = 0, k
    for k in range(2 * LANES):
        acc[k] = 0.0
    while i + 2 * LANES <= n:
        for k in range(2 * LANES):
            acc[k] += v[i + k]
        i += 2 * LANES
    while i < n:
        acc[0] += v[i]
        i += 1
    for k in range(LANES):
        acc[k] += acc[k + LANES]
    return lanes_total(acc)


cdef inline double row_sumexp(const floating* x, Py_ssize_t n, double shift,
                              floating* e, const floating* nxt=NULL) noexcept nogil:
    """sum_i exp(x_i - shift); writes exp(x_i - shift) to e unless e is NULL
    (e must not overlap x: every caller's e is a buffer or an output of its own).

    The sum has the same bits with or without e (a loss with or without its
    gradient, a softmax streamed out or not).  nxt: the row read after this
    one, whose cache lines are requested while this row is computed, or
    NULL.

    Float rows of FL_ROW_SUMEXPF_SHORT_MIN values (48 on AVX-512, 256
    elsewhere) or more: fastmath.h's lane sums (fl_row_sumexpf from 256,
    fl_row_sumexpf_short below).  Shorter float rows and double rows: the
    exponentials go through a buffer (e, or a 256-element chunk on the
    stack) and are summed per 256 after the exp loop: gcc vectorizes the
    plain exp loop far better than an exp fused into a lane-wise sum in
    Cython (measured 0.42 vs 0.60 ns/element on AVX-512, 0.58 vs 0.75 on
    AVX2).
    """
    cdef floating chunk[256]
    cdef floating* d
    cdef floating sh = <floating>shift
    cdef Py_ssize_t i, i0, m
    cdef double total = 0.0
    if floating is float and n >= FL_ROW_SUMEXPF_SHORT_MIN:
        # below 256 the short body: its tail step is 16 values, not
        # fl_row_sumexpf's padded 32
        if n >= 256:
            if e != NULL:
                return fl_row_expf(x, n, sh, e, nxt)
            return fl_row_sumexpf(x, n, sh, nxt)
        if e != NULL:
            return fl_row_expf_short(x, n, sh, e)
        return fl_row_sumexpf_short(x, n, sh)
    i0 = 0
    while i0 < n:
        m = n - i0 if n - i0 < 256 else 256
        d = e + i0 if e != NULL else chunk
        if nxt != NULL:
            # the same span of the next row, a chunk at a time: requested all
            # at once, a long row's hints would wait for free fill buffers
            prefetch_row(nxt + i0, m)
        if floating is float and FL_ROW_SHIFT_EXPF8:
            fl_row_shift_expf(x + i0, m, sh, d)
        else:
            for i in range(m):
                d[i] = vexp_lo(x[i0 + i] - sh)
        total += lanes_sum(d, m)
        i0 += 256
    return total


cdef inline double row_dot(const floating* x, const double* w, Py_ssize_t n) noexcept nogil:
    """sum_i w_i x_i (w == NULL: plain sum), LANES accumulators."""
    cdef double acc[LANES]
    cdef Py_ssize_t i = 0, k
    for k in range(LANES):
        acc[k] = 0.0
    if w == NULL:
        while i + LANES <= n:
            for k in range(LANES):
                acc[k] += x[i + k]
            i += LANES
        while i < n:
            acc[0] += x[i]
            i += 1
    else:
        while i + LANES <= n:
            for k in range(LANES):
                acc[k] += w[i + k] * x[i + k]
            i += LANES
        while i < n:
            acc[0] += w[i] * x[i]
            i += 1
    return lanes_total(acc)


cdef inline void planes_max(const floating* x, Py_ssize_t cs, Py_ssize_t ps,
                            Py_ssize_t C, Py_ssize_t nb, double* m) noexcept nogil:
    """m[j] = max_c x[c*cs + j*ps] for j < nb.

    The running max is kept in the data's type (exact) and widened once; the
    contiguous case (ps == 1) has its own loop so that gcc vectorizes it
    without a stride check.
    """
    cdef floating mm[PLANE_BLOCK]
    cdef Py_ssize_t c, j
    cdef const floating* xc
    cdef floating v
    for j in range(nb):
        mm[j] = -INFINITY
    for c in range(C):
        xc = x + c * cs
        if ps == 1:
            for j in range(nb):
                v = xc[j]
                mm[j] = v if v > mm[j] else mm[j]
        else:
            for j in range(nb):
                v = xc[j * ps]
                mm[j] = v if v > mm[j] else mm[j]
    for j in range(nb):
        m[j] = mm[j]


cdef inline void planes_lse(const double* m, const double* s, Py_ssize_t nb,
                            double* lz, bint single) noexcept nogil:
    """lz[j] = m[j] + log(s[j]) (lz may be m): the log-sum-exp of each position.

    fastmath's log in a plain loop, so it vectorizes; a libm call per
    position costs more than the exponentials when the class axis is short.
    `single` (float32 data, whose exponentials are float32): the log in
    float, an error below 1.2e-7 absolute (s >= 1), the data's precision,
    at a quarter of the double log's cost (no division, 16 lanes).
    """
    cdef Py_ssize_t j
    if single:
        for j in range(nb):
            lz[j] = m[j] + fl_logf(<float>s[j])
    else:
        for j in range(nb):
            lz[j] = m[j] + fl_log(s[j])


cdef inline floating* _plane_exps(const floating* xc, Py_ssize_t ps, const floating* sh,
                                  Py_ssize_t nb, floating* ec, floating* buf) noexcept nogil:
    """exp(xc[j*ps] - sh[j]) for j < nb, into ec (ps == 1 and ec given: the
    caller's plane) or buf; returns where they are, contiguous.  With ps ==
    1 the plane's next nb positions (the thread's next block) are requested
    too."""
    cdef Py_ssize_t j
    cdef floating* d = ec if ps == 1 and ec != NULL else buf
    if ps == 1:
        if floating is float:
            # the plane's next positions requested a line per vector
            fl_plane_expf(xc, sh, nb, d, xc + nb)
            return d
        prefetch_row(xc + nb, nb)
        for j in range(nb):
            d[j] = vexp_lo(xc[j] - sh[j])
    else:
        for j in range(nb):
            d[j] = vexp_lo(xc[j * ps] - sh[j])
        if ec != NULL:
            for j in range(nb):
                ec[j * ps] = d[j]
    return d


cdef inline void planes_sumexp(const floating* x, Py_ssize_t cs, Py_ssize_t ps,
                               Py_ssize_t C, Py_ssize_t nb, const double* shift,
                               double* s, floating* e, Py_ssize_t es) noexcept nogil:
    """s[j] = sum_c exp(x[c*cs + j*ps] - shift[j]).

    When e is not NULL, also stores each exponential at e[c*es + j*ps].
    The exponentials of one class plane go through a buffer (e, or a stack
    chunk) and are added afterwards, which gcc vectorizes best (see
    row_sumexp).  In float, up to WIDE_ROW classes are summed in float (at
    most 32 terms in (0, 1], one of them 1: relative error below 32 float
    eps, 3.8e-6) and widened once per position: a double accumulator per
    class plane costs two conversions, two adds and two stores per vector.

    The positions after the block (the next work unit of the same thread)
    are requested while the exponentials run, plane by plane, so that the
    next block's max pass finds them in cache instead of waiting on memory
    (the max pass over 21 planes was the larger half of cross-entropy on a
    (8, 21, 256, 256) map).
    """
    cdef floating sh[PLANE_BLOCK]
    cdef floating buf[PLANE_BLOCK]
    cdef floating fs[PLANE_BLOCK]
    cdef Py_ssize_t c, j
    cdef const floating* xc
    cdef floating* d
    cdef bint single = floating is float and C <= WIDE_ROW
    for j in range(nb):
        s[j] = 0.0
        fs[j] = 0
        sh[j] = <floating>shift[j]
    if ps != 1 and cs == 1:
        prefetch_row(x + nb * ps, nb * ps)   # rows of C values: the next rows
    for c in range(C):
        xc = x + c * cs
        d = _plane_exps(xc, ps, sh, nb, e + c * es if e != NULL else NULL, buf)
        if single:
            for j in range(nb):
                fs[j] += d[j]
        else:
            for j in range(nb):
                s[j] += d[j]
    if single:
        for j in range(nb):
            s[j] = fs[j]


cdef inline void planes_softmax_sums(const floating* x, Py_ssize_t cs, Py_ssize_t ps,
                                     Py_ssize_t C, Py_ssize_t nb, bint safe, double* m,
                                     double* s, floating* e, Py_ssize_t es) noexcept nogil:
    """m[j] = max_c x[c*cs + j*ps] (through safe_shift when `safe`) and
    s[j] = sum_c exp(x[c*cs + j*ps] - m[j]); e, when not NULL, receives the
    exponentials at e[c*es + j*ps].

    A short contiguous class axis (ps == 1, 2 <= C <= SMALL_C: a few label
    classes of a segmentation map) takes one loop over the positions with
    the classes unrolled: each branch below passes C as a constant, so gcc
    keeps a position's C values in registers instead of sweeping C planes
    through the m and s arrays (logsumexp over 4 classes: 18 -> 12 ms on a
    (2, 4, 160, 160, 160) float32 volume).  With stored exponentials, only
    into a block buffer (es <= PLANE_BLOCK: the segmentation kernels' block
    of SEG_BLOCK positions): stores at the stride of a whole image need more
    overlap checks than gcc makes, and that loop stays scalar (cross-entropy
    with its gradient on (2, 4, 160, 160, 160) float32: 71 -> 32 ms through
    the plane-by-plane path).  Float planes (ps == 1) of up to WIDE_ROW
    classes: fastmath's fl_planes_sumexpf / fl_planes_expf, the same bits as
    the two passes.  Otherwise: planes_max, then planes_sumexp.
    """
    cdef Py_ssize_t j
    cdef bint small = ps == 1 and (e == NULL or es <= PLANE_BLOCK)
    if small and C == 2:
        _small_softmax_sums(x, cs, nb, 2, safe, m, s, e, es)
    elif small and C == 3:
        _small_softmax_sums(x, cs, nb, 3, safe, m, s, e, es)
    elif small and C == 4:
        _small_softmax_sums(x, cs, nb, 4, safe, m, s, e, es)
    elif small and C == 5:
        _small_softmax_sums(x, cs, nb, 5, safe, m, s, e, es)
    elif small and C == 6:
        _small_softmax_sums(x, cs, nb, 6, safe, m, s, e, es)
    elif small and C == 7:
        _small_softmax_sums(x, cs, nb, 7, safe, m, s, e, es)
    elif small and C == SMALL_C:
        _small_softmax_sums(x, cs, nb, SMALL_C, safe, m, s, e, es)
    elif floating is float and ps == 1 and C <= WIDE_ROW:
        if e == NULL:
            fl_planes_sumexpf(x, cs, C, nb, safe, m, s)
        else:
            fl_planes_expf(x, cs, C, nb, safe, m, s, e, es)
    else:
        planes_max(x, cs, ps, C, nb, m)
        if safe:
            for j in range(nb):
                m[j] = safe_shift(m[j])
        planes_sumexp(x, cs, ps, C, nb, m, s, e, es)


cdef inline void _small_softmax_sums(const floating* x, Py_ssize_t cs, Py_ssize_t nb,
                                     Py_ssize_t C, bint safe, double* m, double* s,
                                     floating* e, Py_ssize_t es) noexcept nogil:
    """planes_softmax_sums for ps == 1 and a constant C (inlined per C).

    Two loops on purpose: with the store to e guarded inside one loop, gcc
    leaves it scalar (logsumexp over 4 classes 12 -> 60 ms).  The sum of at
    most SMALL_C terms in (0, 1], one of them 1, is taken in the data's
    type (relative error below SMALL_C ulp): in float that saves two
    conversions and two double adds per class and vector.
    """
    cdef Py_ssize_t j, c
    cdef floating mx, v, ev, sm
    cdef floating ninf = -INFINITY
    if e == NULL:
        for j in range(nb):
            mx = ninf                               # as planes_max: NaN is skipped
            for c in range(C):
                v = x[c * cs + j]
                mx = v if v > mx else mx
            if safe:
                mx = mx if mx - mx == 0 else 0      # safe_shift: 0 unless finite
            sm = 0
            for c in range(C):
                # fastmath by name (see log1p_unit): this loop's vexp_lo
                # was left a call in the logsumexp module
                if floating is float:
                    sm = sm + fl_expf_lo(x[c * cs + j] - mx)
                else:
                    sm = sm + fl_exp_lo(x[c * cs + j] - mx)
            m[j] = mx
            s[j] = sm
    else:
        for j in range(nb):
            mx = ninf                               # as planes_max: NaN is skipped
            for c in range(C):
                v = x[c * cs + j]
                mx = v if v > mx else mx
            if safe:
                mx = mx if mx - mx == 0 else 0
            sm = 0
            for c in range(C):
                if floating is float:
                    ev = fl_expf_lo(x[c * cs + j] - mx)
                else:
                    ev = fl_exp_lo(x[c * cs + j] - mx)
                e[c * es + j] = ev
                sm = sm + ev
            m[j] = mx
            s[j] = sm
