"""Element-wise losses: one loop shape, one per-element formula per loss.

Design:
A. Every loss here reads input x, optional target t and an optional third
   array (pos_weight for BCE-with-logits), applies a scalar formula and
   sums.  Each formula is ONE `cdef inline` helper that returns the value
   and writes the derivative d(value)/dx through an out-pointer (a struct
   return cannot follow the fused float type; after inlining the pointer
   to a local is the same as a two-field struct).  The loss-only loop calls
   the same helper and never uses the derivative: gcc drops the dead
   arithmetic, so the math is written once and the loss-only path pays
   nothing for it.
B. The loss is chosen by a tag type (an empty struct per loss, gathered in
   the fused type `tag_t`).  `if tag_t is X` branches are resolved at
   compile time, so each (loss, dtype) pair gets its own straight loop with
   no dispatch inside it; the `def` driver selects the specialization once
   from the integer loss id.
C. Work units are ELEM_BLOCK elements (fixed, independent of the thread
   count), processed in CHUNK-sized pieces: the loop writes per-element
   values into a stack chunk (or straight into the 'none' output), then the
   chunk is summed in double with LANES accumulators (`lanes_sum`).  A plain
   store loop vectorizes better than a value fused into a lane-wise sum.
   Per-unit partials (BlockOut) are combined in unit order: results are
   bit-identical for any thread count.
D. Formulas are branch-free: |x|, max, sign and piecewise pieces are
   selects between already computed values (-fno-trapping-math makes them
   vector blends).  exp/log come from fastmath.h.  Formulas computed in the
   data's float type where exp/log vectorization matters; log-cosh and
   pseudo-Huber, whose float32 forms would cancel or overflow, in double.
E. Optional per-element weights (float64, the product of torch's `weight`
   and fastloss's `sample_weight`) multiply the value and the gradient in a
   second pass over the chunk while it is in L1.  The gradient is also
   multiplied by `gscale` (1/denominator for 'mean'), so the wrapper never
   touches it again.
F. Domain checks (probabilities in [0, 1], labels in {-1, +1}) are counted
   inside the value loop as a vectorizable sum of 0/1 flags; only a chunk
   with a bad element is scanned again to find the first position, which
   the unit records for the wrapper to raise.
G. The softplus losses (BCE-with-logits and its variants, soft margin,
   focal) need e^{-|z|} of one z per element.  Where vectors have at most 8
   lanes, passes of their own fill a chunk buffer with it before the value
   loop (`split_tail`): the exp -> log1p chain is too long for one loop to
   keep the vector units busy.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs, isfinite, sqrt
from libc.stdlib cimport free, malloc

from _fastcall cimport (
    RED_MEAN, RED_NONE, fc_empty_like, fc_float, fc_operand_kind, fc_reduction, fc_result,
    fc_shape_is, fc_threads_arg,
)

from fastloss._threads import effective_n_threads

cnp.import_array()

# gradients from this size up come from fastloss._buffers (the full path)
cdef Py_ssize_t FRESH_GRAD_BYTES = 1 << 20

from _common cimport (
    FL_F16_NATIVE, FL_KIND_F32, FL_KIND_U8, FL_VECTOR_BYTES, BlockOut, ELEM_BLOCK, block_init,
    combine_blocks, fl_narrow, fl_stream_fence, fl_widen, fl_widen_u8, floating,
    fl_expf_neg_scale, fl_expf_poly, lanes_sum, log1p_unit, n_blocks, stream_out,
    deal, threads_for_work, vabs, vexp, vexp_neg, vlog, vlog1p,
)

cdef enum:
    CHUNK = 512

# Loss ids: the wrapper passes one of these (fastloss/elementwise.py mirrors them).
cpdef enum LossId:
    MSE = 0
    L1 = 1
    SMOOTH_L1 = 2       # a = beta
    HUBER = 3           # a = delta
    LOG_COSH = 4
    PSEUDO_HUBER = 5    # a = delta
    BIAS = 6            # x - t
    BCE = 7             # probabilities, log clamped at -100
    BCE_LOGITS = 8      # c = cap (0: finite at +-inf; inf: torch's NaN)
    BCE_LOGITS_CONST = 9  # a = constant target, b = pos_weight, c = cap
    SOFT_MARGIN = 10
    HINGE = 11          # a = margin
    SQ_HINGE = 12       # a = margin
    EXPONENTIAL = 13
    KL = 14
    KL_LOG = 15
    JS = 16
    FOCAL = 17          # a = alpha, b = gamma, c = 1 if alpha >= 0
    ENET = 18           # a = l1_ratio (t unused)
    BCE_LOGITS_PW = 19  # aux = pos_weight per element, c = cap


ctypedef struct TMse:
    char _
ctypedef struct TL1:
    char _
ctypedef struct TSmoothL1:
    char _
ctypedef struct THuber:
    char _
ctypedef struct TLogCosh:
    char _
ctypedef struct TPseudoHuber:
    char _
ctypedef struct TBias:
    char _
ctypedef struct TBce:
    char _
ctypedef struct TBceLogits:
    char _
ctypedef struct TBceLogitsPw:
    char _
ctypedef struct TBceLogitsConst:
    char _
ctypedef struct TSoftMargin:
    char _
ctypedef struct THinge:
    char _
ctypedef struct TSqHinge:
    char _
ctypedef struct TExp:
    char _
ctypedef struct TKl:
    char _
ctypedef struct TKlLog:
    char _
ctypedef struct TJs:
    char _
ctypedef struct TFocal:
    char _
ctypedef struct TFocal2:     # TFocal with gamma = 2
    char _
ctypedef struct TEnet:
    char _

ctypedef fused tag_t:
    TMse
    TL1
    TSmoothL1
    THuber
    TLogCosh
    TPseudoHuber
    TBias
    TBce
    TBceLogits
    TBceLogitsPw
    TBceLogitsConst
    TSoftMargin
    THinge
    TSqHinge
    TExp
    TKl
    TKlLog
    TJs
    TFocal
    TFocal2
    TEnet


cdef struct Params:
    double a, b, c


# ------------------------------------------------------- scalar helpers

cdef inline floating sign_(floating x) noexcept nogil:
    """-1, 0 or +1; NaN stays NaN (torch's sign)."""
    cdef floating s = 1 if x > 0 else 0
    s = -1 if x < 0 else s
    return x if x != x else s


cdef inline floating softplus_sig(floating z, floating e, floating* sig) noexcept nogil:
    """softplus(z) = max(z, 0) + log1p(e) and sigma(z), given e = e^{-|z|}."""
    cdef floating one = 1
    cdef floating r = one / (one + e)
    cdef floating mz = z if z > 0 else 0
    sig[0] = r if z >= 0 else e * r
    return mz + log1p_unit(e, r)


cdef inline floating bce_logits(floating x, floating e, floating y, floating pw, floating cap,
                                floating* d) noexcept nogil:
    """l = pw y softplus(-x) + (1 - y) softplus(x); dl/dx = (1-y) s(x) - pw y s(-x).

    e = e^{-|x|}.

    torch's formula (1-y) x + (1 + (pw-1) y) softplus(-x), regrouped.  A
    softplus whose coefficient is 0 is first clamped to `cap`: cap = 0 makes
    that term exactly 0 (finite at x = +-inf, fastloss's BCE-with-logits);
    cap = inf keeps 0 * inf = NaN (torch's multilabel_soft_margin_loss).
    """
    cdef floating one = 1
    cdef floating r = one / (one + e)
    cdef floating lp = log1p_unit(e, r)
    cdef floating sp = r if x >= 0 else e * r        # sigma(x)
    cdef floating sn = e * r if x >= 0 else r        # sigma(-x)
    cdef floating spx = (x if x > 0 else 0) + lp     # softplus(x)
    cdef floating snx = (-x if x < 0 else 0) + lp    # softplus(-x)
    cdef floating a = pw * y
    cdef floating b = one - y
    cdef floating snc = snx if snx < cap else cap
    cdef floating spc = spx if spx < cap else cap
    snx = snx if a != 0 else snc
    spx = spx if b != 0 else spc
    d[0] = b * sp - a * sn
    return a * snx + b * spx


cdef inline floating xlogx(floating t) noexcept nogil:
    """t log t with 0 log 0 = 0 (torch's xlogy(t, t))."""
    cdef floating v = t * vlog(t)
    return 0 if t == 0 else v


# ----------------------------------------------- per-element formulas

cdef inline bint has_tail(tag_t* tag) noexcept nogil:
    """Whether the loss takes a softplus and/or sigmoid of one z per element."""
    return (tag_t is TBceLogits or tag_t is TBceLogitsPw or tag_t is TBceLogitsConst
            or tag_t is TSoftMargin or tag_t is TFocal or tag_t is TFocal2)


cdef inline floating tail_arg(tag_t* tag, floating x, floating t) noexcept nogil:
    """-|z| for the losses with has_tail (z = x, or -t x for soft margin),
    whose e^{-|z|} they take."""
    if tag_t is TSoftMargin:
        return -vabs(t * x)
    else:
        return -vabs(x)


cdef inline bint split_tail(tag_t* tag, const floating* eb) noexcept nogil:
    """Whether _unit computes e^{-|z|} into eb in passes of their own over the chunk.

    The exp's reduction, its polynomial and the log1p after it are one long
    dependency chain per element.  With at most 8 lanes per vector a loop
    doing all of it keeps too few elements in flight to fill the vector
    units.  Two passes (exp to an L1 buffer, then the rest) ran 1.1-1.6x
    faster (one thread: float32 on SSE2 and AVX2, float64 on AVX2 and
    AVX-512).  In float32 the exp itself is split in two passes (reduction
    and scale, then polynomial): BCE-with-logits and soft margin
    1.06-1.11x faster on SSE2, 1.03-1.04x on AVX2 (2 threads; in float64,
    whose exp is mostly polynomial, the gradient pass ran 10 % slower on
    AVX2).  With 16 float32 lanes (AVX-512) the fused loop is limited by
    throughput, not latency, and the extra pass made it about 10 % slower.
    """
    return has_tail(tag) and FL_VECTOR_BYTES < 16 * sizeof(floating)


cdef inline floating tail_at(tag_t* tag, const floating* eb, Py_ssize_t i,
                             floating x, floating t) noexcept nogil:
    """e^{-|z|} for element i of the chunk: from the tail passes' buffer eb
    where split_tail, computed here otherwise (0 without has_tail)."""
    if split_tail(tag, eb):
        return eb[i]
    elif has_tail(tag):
        return vexp_neg(tail_arg(tag, x, t))
    else:
        return 0


cdef inline floating elem(tag_t* tag, floating x, floating t, floating aux, floating ex,
                          floating a, floating b, floating c, floating* d) noexcept nogil:
    """Value of one element; its derivative d(value)/dx goes to d[0].

    ex is e^{-|z|} for the losses with has_tail (tail_arg), else unused.
    """
    cdef floating df, ad, v, s, e, z, h, r, q, ce, s1, s0, qg, t2
    cdef double dd, dad, dr, ds, de
    # typed constants: a bare literal would make the float32 arithmetic double
    cdef floating one = 1, two = 2, half = 0.5
    if tag_t is TMse:
        df = x - t
        d[0] = two * df
        return df * df
    elif tag_t is TL1:
        df = x - t
        d[0] = sign_(df)
        return vabs(df)
    elif tag_t is TSmoothL1:
        # torch: |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta; beta = 0 is L1
        df = x - t
        ad = vabs(df)
        v = half * df * df / a
        d[0] = df / a if ad < a else sign_(df)
        return v if ad < a else ad - half * a
    elif tag_t is THuber:
        df = x - t
        ad = vabs(df)
        v = half * df * df
        d[0] = df if ad < a else a * sign_(df)
        return v if ad < a else a * (ad - half * a)
    elif tag_t is TLogCosh:
        # log cosh d = |d| + log1p(e^{-2|d|}) - log 2, in double; tanh from the same exp
        dd = <double>x - <double>t
        dad = fabs(dd)
        de = vexp_neg(-2 * dad)
        dr = 1 / (1 + de)
        ds = (1 - de) * dr
        d[0] = <floating>(ds if dd >= 0 else -ds)
        return <floating>(dad + log1p_unit(de, dr) - 0.6931471805599453)
    elif tag_t is TPseudoHuber:
        # delta^2 (sqrt(1 + r^2) - 1) = delta |d| |r| / (sqrt(1 + r^2) + 1), r = d / delta
        dd = <double>x - <double>t
        dad = fabs(dd)
        dr = dad / <double>a
        ds = sqrt(1 + dr * dr)
        # |r| so large that r^2 overflows (or infinite): the ratios tend to 1
        d[0] = <floating>((1.0 if dd >= 0 else -1.0) if ds == INFINITY else dd / ds)
        return <floating>(<double>a * dad * (1.0 if ds == INFINITY else dr / (ds + 1)))
    elif tag_t is TBias:
        d[0] = 1
        return x - t
    elif tag_t is TBce:
        # torch: -(t max(log x, -100) + (1 - t) max(log1p(-x), -100));
        # gradient (x - t) / max(x (1 - x), 1e-12)
        v = vlog(x)
        e = vlog1p(-x)
        v = v if v > -100 else -100
        e = e if e > -100 else -100
        s = x * (one - x)
        # torch's EPSILON is the float 1e-12, also for double data
        s = s if s > <floating>(<float>1e-12) else <floating>(<float>1e-12)
        d[0] = (x - t) / s
        return -(t * v + (one - t) * e)
    elif tag_t is TBceLogits:
        # pos_weight 1: (1-t) max(x, 0) + t max(-x, 0) + log1p(exp(-|x|)) and
        # d = sigma(x) - t, without bce_logits's caps: an infinite x whose
        # max term has a 0 coefficient gives 0 * inf = NaN here, and _unit
        # computes that chunk again with bce_logits.  max(-x, 0) is taken as
        # max(x, 0) - x, exact for finite x (one select fewer; NaN at +inf).
        r = one / (one + ex)
        s = r if x >= 0 else ex * r
        d[0] = s - t
        h = x if x > 0 else 0
        return (one - t) * h + t * (h - x) + log1p_unit(ex, r)
    elif tag_t is TBceLogitsPw:
        return bce_logits(x, ex, t, aux, c, d)
    elif tag_t is TBceLogitsConst:
        return bce_logits(x, ex, a, b, c, d)
    elif tag_t is TSoftMargin:
        # log(1 + e^{-t x}) = softplus(-t x); derivative -t sigma(-t x)
        v = softplus_sig(-t * x, ex, &s)
        d[0] = -t * s
        return v
    elif tag_t is THinge:
        z = a - t * x
        d[0] = -t if z > 0 else 0
        return 0 if z <= 0 else z
    elif tag_t is TSqHinge:
        z = a - t * x
        h = 0 if z <= 0 else z
        d[0] = -two * t * h
        return h * h
    elif tag_t is TExp:
        v = vexp(-t * x)
        d[0] = -t * v
        return v
    elif tag_t is TKl:
        # torch: xlogy(t, t) - t x (x holds log-probabilities)
        d[0] = -t
        return xlogx(t) - t * x
    elif tag_t is TKlLog:
        e = vexp(t)
        d[0] = -e
        return e * (t - x)
    elif tag_t is TJs:
        # 1/2 [x log(2x / (x + t)) + t log(2t / (x + t))]; d/dx = 1/2 log(2x / (x + t))
        s = x + t
        v = vlog(two * x / s)
        e = vlog(two * t / s)
        d[0] = half * v
        return half * ((0 if x == 0 else x * v) + (0 if t == 0 else t * e))
    elif tag_t is TFocal or tag_t is TFocal2:
        # torchvision: ce (1 - p_t)^gamma alpha_t, with 1 - p_t written as
        # q = sigma(x) (1 - t) + sigma(-x) t (no cancellation) and
        # dq/dx = sigma(x) sigma(-x) (1 - 2t).
        ce = bce_logits(x, ex, t, one, <floating>0, &df)   # df = sigma(x) - t
        r = one / (one + ex)
        s1 = r if x >= 0 else ex * r
        s0 = ex * r if x >= 0 else r
        q = s1 * (one - t) + s0 * t
        if tag_t is TFocal2:
            # gamma = 2, torchvision's and MONAI's default: q^2 and 2 q dq/dx by
            # multiplication, without the log, the exp and the division by q
            qg = q * q
            t2 = two * ce * q * s1 * s0 * (one - two * t)
        else:
            qg = vexp(b * vlog(q))
            qg = 1 if b == 0 else qg
            t2 = b * (ce / q) * qg * s1 * s0 * (one - two * t)
        # the limit is 0 where q, sigma(x) or sigma(-x) is 0 (0/0 or inf*0 otherwise)
        t2 = t2 if q * s1 * s0 > 0 else 0
        z = a * t + (one - a) * (one - t)
        z = z if c != 0 else 1
        d[0] = z * (df * qg + t2)
        return z * ce * qg
    elif tag_t is TEnet:
        # l1_ratio |x| + (1 - l1_ratio) x^2; a zero coefficient gives an exact 0
        ad = vabs(x)
        v = a * ad
        e = (one - a) * x * x
        d[0] = a * sign_(x) + two * (one - a) * x
        return (0 if a == 0 else v) + (0 if a == 1 else e)


cdef inline floating is_bad(tag_t* tag, floating x, floating t) noexcept nogil:
    """1 where the element is outside the loss's domain, else 0."""
    if tag_t is TBce:
        # input outside [0, 1] (NaN included, as torch) or target outside [0, 1]
        return 1 if (not (x >= 0)) or (not (x <= 1)) or t < 0 or t > 1 else 0
    elif tag_t is THinge or tag_t is TSqHinge or tag_t is TExp:
        return 0 if t == 1 or t == -1 else 1
    else:
        return 0


# --------------------------------------------------------------- loops

cdef void _bce_logits_capped(const floating* x, const floating* t, Py_ssize_t m, floating cap,
                             const double* w, floating* v, floating* gd,
                             floating gs) noexcept nogil:
    """A chunk of BCE-with-logits (pos_weight 1) by bce_logits, whose caps
    turn a 0 * inf term into 0: for the rare chunk whose sum the uncapped
    form left non-finite.  Weighted values to v, gradients to gd (or none)."""
    cdef floating der, one = 1
    cdef Py_ssize_t i
    for i in range(m):
        v[i] = bce_logits(x[i], vexp_neg(-vabs(x[i])), t[i], one, cap, &der)
        if gd != NULL:
            gd[i] = der * gs
        if w != NULL:
            v[i] = <floating>(v[i] * w[i])
            if gd != NULL:
                gd[i] = <floating>(gd[i] * w[i])


cdef inline double _chunk(tag_t* tag, const floating* xc, const floating* tc, const floating* ac,
                          const double* wc, Py_ssize_t m, floating a, floating b, floating c,
                          floating* dst, floating* gd, floating gs, floating* eb, floating* sb,
                          Py_ssize_t c0, Py_ssize_t* bad) noexcept nogil:
    """One chunk: values into dst, derivatives times gs into gd (NULL: none); their sum.

    The first position outside the loss's domain (c0 + its index) goes to
    *bad unless one was found before.
    """
    cdef floating nbad = 0, der, ex
    cdef double s
    cdef Py_ssize_t i
    if split_tail(tag, eb):
        if floating is float:
            for i in range(m):
                sb[i] = fl_expf_neg_scale(tail_arg(tag, xc[i], tc[i]), &eb[i])
            for i in range(m):
                eb[i] = fl_expf_poly(eb[i]) * sb[i]
        else:
            for i in range(m):
                eb[i] = vexp_neg(tail_arg(tag, xc[i], tc[i]))
    if gd == NULL:
        for i in range(m):
            ex = tail_at(tag, eb, i, xc[i], tc[i])
            dst[i] = elem(tag, xc[i], tc[i], ac[i], ex, a, b, c, &der)
            nbad = nbad + is_bad(tag, xc[i], tc[i])
    else:
        for i in range(m):
            ex = tail_at(tag, eb, i, xc[i], tc[i])
            dst[i] = elem(tag, xc[i], tc[i], ac[i], ex, a, b, c, &der)
            gd[i] = der * gs
            nbad = nbad + is_bad(tag, xc[i], tc[i])
    if wc != NULL:
        for i in range(m):
            dst[i] = <floating>(dst[i] * wc[i])
        if gd != NULL:
            for i in range(m):
                gd[i] = <floating>(gd[i] * wc[i])
    s = lanes_sum(dst, m)
    if tag_t is TBceLogits:
        if not isfinite(s):
            _bce_logits_capped(xc, tc, m, c, wc, dst, gd, gs)
            s = lanes_sum(dst, m)
    if nbad != 0 and bad[0] < 0:
        for i in range(m):
            if is_bad(tag, xc[i], tc[i]) != 0:
                bad[0] = c0 + i
                break
    return s


cdef struct Kinds:
    # storage kind (FL_KIND_*) of x, t, aux and the gradient; all F32 for
    # float32 arrays, and only read by the float32 specialization
    int x, t, aux, g


cdef inline const float* _widened(const void* p, int kind, Py_ssize_t c0, Py_ssize_t m,
                                  float* buf) noexcept nogil:
    """Elements c0 .. c0+m of operand p as float32: in place, or widened into buf."""
    if kind == FL_KIND_F32:
        return <const float*>p + c0
    if kind == FL_KIND_U8:
        fl_widen_u8(<const unsigned char*>p + c0, buf, m)
        return buf
    fl_widen(<const unsigned short*>p + c0, kind, buf, m)
    return buf


cdef void _unit_half(tag_t* tag, const void* x, const void* t, const void* aux, Kinds K,
                     Py_ssize_t n, Py_ssize_t u, Params P, const double* w, float* out,
                     void* g, double gscale, BlockOut* res) noexcept nogil:
    """_unit for float16 / bfloat16 operands or gradient: each chunk is widened
    into L1 buffers, run through the float32 chunk, and its gradient narrowed
    (round to nearest even) on the way out."""
    cdef float raw[7 * CHUNK + 16]
    cdef float* buf = <float*>((<size_t>&raw[0] + 63) & ~(<size_t>63))
    cdef float* gb = buf + CHUNK
    cdef float* eb = gb + CHUNK
    cdef float* sb = eb + CHUNK
    cdef float* xb = sb + CHUNK
    cdef float* tb = xb + CHUNK
    cdef float* ab = tb + CHUNK
    cdef Py_ssize_t m, c0
    cdef Py_ssize_t i0 = u * ELEM_BLOCK
    cdef Py_ssize_t i1 = i0 + ELEM_BLOCK if i0 + ELEM_BLOCK < n else n
    cdef const float* xc
    cdef const float* tc
    cdef const float* ac
    cdef float* gd
    cdef double acc = 0.0
    block_init(res)
    c0 = i0
    while c0 < i1:
        m = i1 - c0 if i1 - c0 < CHUNK else CHUNK
        xc = _widened(x, K.x, c0, m, xb)
        tc = _widened(t, K.t, c0, m, tb) if t != x or K.t != K.x else xc
        ac = _widened(aux, K.aux, c0, m, ab) if aux != x or K.aux != K.x else xc
        gd = NULL
        if g != NULL:
            gd = <float*>g + c0 if K.g == FL_KIND_F32 else gb
        acc += _chunk(tag, xc, tc, ac, w + c0 if w != NULL else NULL, m,
                      <float>P.a, <float>P.b, <float>P.c, out + c0 if out != NULL else buf,
                      gd, <float>gscale, eb, sb, c0, &res.bad)
        if g != NULL and K.g != FL_KIND_F32:
            fl_narrow(gb, <unsigned short*>g + c0, K.g, m)
        c0 += m
    res.loss = acc


cdef void _unit(tag_t* tag, const floating* x, const floating* t, const floating* aux,
                Kinds K, Py_ssize_t n, Py_ssize_t u, Params P, const double* w,
                floating* out, floating* g, double gscale, bint stream,
                BlockOut* res) noexcept nogil:
    # chunk buffers on 64-byte boundaries: a vector store across two cache
    # lines costs two, and the stack gives no alignment beyond 16 bytes
    cdef floating raw[4 * CHUNK + 16]
    cdef floating* buf = <floating*>((<size_t>&raw[0] + 63) & ~(<size_t>63))
    cdef floating* gb = buf + CHUNK  # a chunk of the gradient, streamed out when done
    cdef floating* eb = gb + CHUNK   # e^{-|z|} of the chunk, where split_tail
    cdef floating* sb = eb + CHUNK   # its exp's scales between the two passes (float32)
    cdef floating* gc
    cdef Py_ssize_t m, c0
    cdef Py_ssize_t i0 = u * ELEM_BLOCK
    cdef Py_ssize_t i1 = i0 + ELEM_BLOCK if i0 + ELEM_BLOCK < n else n
    cdef double acc = 0.0
    if floating is float:
        if K.x != FL_KIND_F32 or K.t != FL_KIND_F32 or K.aux != FL_KIND_F32 or K.g != FL_KIND_F32:
            _unit_half(tag, x, t, aux, K, n, u, P, w, out, g, gscale, res)
            return
    block_init(res)
    c0 = i0
    while c0 < i1:
        m = i1 - c0 if i1 - c0 < CHUNK else CHUNK
        gc = g + c0 if g != NULL else NULL
        acc += _chunk(tag, x + c0, t + c0, aux + c0, w + c0 if w != NULL else NULL, m,
                      <floating>P.a, <floating>P.b, <floating>P.c,
                      out + c0 if out != NULL else buf,
                      (gb if stream else gc) if g != NULL else NULL, <floating>gscale,
                      eb, sb, c0, &res.bad)
        if g != NULL and stream:
            stream_out(gc, gb, m)
        c0 += m
    if g != NULL and stream:
        fl_stream_fence()
    res.loss = acc


cdef int _run(tag_t* tag, const floating* x, const floating* t, const floating* aux,
              Kinds K, Py_ssize_t n, Params P, const double* w, floating* out, floating* g,
              double gscale, bint stream, int n_threads, BlockOut* total) noexcept nogil:
    cdef Py_ssize_t units = n_blocks(n, ELEM_BLOCK), u
    cdef int nt = threads_for_work(n_threads, units, n)
    cdef BlockOut* blocks = <BlockOut*>malloc((units if units > 0 else 1) * sizeof(BlockOut))
    if blocks == NULL:
        return -1
    if nt == 1:
        for u in range(units):
            _unit(tag, x, t, aux, K, n, u, P, w, out, g, gscale, stream, &blocks[u])
    else:
        for u in prange(units, schedule="static", chunksize=deal(units, nt), nogil=True,
                        num_threads=nt):
            _unit(tag, x, t, aux, K, n, u, P, w, out, g, gscale, stream, &blocks[u])
    combine_blocks(blocks, units, total)
    free(blocks)
    return 0


cdef int _dispatch(int loss, const floating* xp, const floating* tp, const floating* ap,
                   Kinds K, Py_ssize_t n, Params P, const double* wp, floating* lp, floating* gp,
                   double gscale, bint stream, int n_threads, BlockOut* total) noexcept nogil:
    """Run loss id `loss`: 0, -1 (no memory) or -2 (unknown id)."""
    if loss == MSE:
        return _run(<TMse*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == L1:
        return _run(<TL1*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == SMOOTH_L1:
        return _run(<TSmoothL1*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == HUBER:
        return _run(<THuber*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == LOG_COSH:
        return _run(<TLogCosh*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == PSEUDO_HUBER:
        return _run(<TPseudoHuber*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == BIAS:
        return _run(<TBias*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == BCE:
        return _run(<TBce*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == BCE_LOGITS:
        return _run(<TBceLogits*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == BCE_LOGITS_PW:
        return _run(<TBceLogitsPw*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == BCE_LOGITS_CONST:
        return _run(<TBceLogitsConst*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == SOFT_MARGIN:
        return _run(<TSoftMargin*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == HINGE:
        return _run(<THinge*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == SQ_HINGE:
        return _run(<TSqHinge*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == EXPONENTIAL:
        return _run(<TExp*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == KL:
        return _run(<TKl*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == KL_LOG:
        return _run(<TKlLog*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == JS:
        return _run(<TJs*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == FOCAL and P.b == 2:
        return _run(<TFocal2*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == FOCAL:
        return _run(<TFocal*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    if loss == ENET:
        return _run(<TEnet*>NULL,
                    xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, total)
    return -2


# -------------------------------------------------------------- driver

def elementwise(int loss, const floating[::1] x, const floating[::1] t,
                const floating[::1] aux, double a, double b, double c,
                const double[::1] weight, floating[::1] loss_out, floating[::1] grad,
                double gscale, int n_threads, bint stream):
    """Sum of weight_i * loss(x_i, t_i) over all elements.

    `loss` is a LossId; a, b, c its parameters.  Empty `t`, `aux`,
    `weight`, `loss_out`, `grad` mean "absent" (t and aux must then be
    unused by the loss).  `loss_out` receives the weighted per-element
    values, `grad` the weighted derivatives times `gscale`, with
    non-temporal stores if `stream` (a reused buffer; a fresh one is in
    the cache after the OS has zeroed its pages).
    Returns (sum, first position outside the loss's domain or -1).
    """
    cdef Py_ssize_t n = x.shape[0]
    cdef BlockOut total
    cdef Params P
    cdef const floating* xp
    cdef const floating* tp
    cdef const floating* ap
    cdef const double* wp = &weight[0] if weight.shape[0] > 0 else NULL
    cdef floating* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef floating* gp = &grad[0] if grad.shape[0] > 0 else NULL
    cdef int rc = 0
    cdef Kinds K = Kinds(FL_KIND_F32, FL_KIND_F32, FL_KIND_F32, FL_KIND_F32)
    if n == 0:
        return 0.0, -1
    if t.shape[0] not in (0, n) or aux.shape[0] not in (0, n) or weight.shape[0] not in (0, n):
        raise ValueError("fastloss internal error: operand sizes differ")
    if loss_out.shape[0] not in (0, n) or grad.shape[0] not in (0, n):
        raise ValueError("fastloss internal error: output sizes differ")
    xp = &x[0]
    tp = &t[0] if t.shape[0] > 0 else xp
    ap = &aux[0] if aux.shape[0] > 0 else xp
    P.a = a
    P.b = b
    P.c = c
    with nogil:
        rc = _dispatch(loss, xp, tp, ap, K, n, P, wp, lp, gp, gscale, stream, n_threads, &total)
    if rc == -1:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    if rc == -2:
        raise ValueError(f"fastloss internal error: unknown loss id {loss}")
    return total.loss, total.bad


# How this build converts half-precision storage (fastloss.show_config prints it).
HALF_CONVERSIONS = (
    ("float16: F16C vcvtph2ps / vcvtps2ph" if FL_F16_NATIVE else
     "float16: integer arithmetic (no F16C in this build)")
    + "; bfloat16: 16-bit shift / round to nearest even in integer lanes"
)


def elementwise_half(int loss, cnp.ndarray x, object t, object aux, double a, double b, double c,
                     const double[::1] weight, float[::1] loss_out, object grad,
                     double gscale, int n_threads):
    """`elementwise` for float32 computation on operands stored as float32,
    float16 or bfloat16 (C-contiguous ndarrays of x's size; t, aux, grad
    may be None), each read in its own width.  `grad` is float32 or a
    16-bit float array, rounded to nearest even.  Returns (sum, first bad)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef BlockOut total
    cdef Params P
    cdef Kinds K = Kinds(FL_KIND_F32, FL_KIND_F32, FL_KIND_F32, FL_KIND_F32)
    cdef const void* xp = cnp.PyArray_DATA(x)
    cdef const void* tp = xp
    cdef const void* ap = xp
    cdef void* gp = NULL
    cdef const double* wp = &weight[0] if weight.shape[0] > 0 else NULL
    cdef float* lp = &loss_out[0] if loss_out.shape[0] > 0 else NULL
    cdef int rc = 0
    if loss_out.shape[0] not in (0, n) or weight.shape[0] not in (0, n):
        raise ValueError("fastloss internal error: output sizes differ")
    K.x = fc_operand_kind(x, n, "input")
    K.t = K.x
    K.aux = K.x
    if t is not None:
        # a bool / uint8 target (a mask) is read as bytes: a quarter of float32's traffic
        K.t = (FL_KIND_U8 if cnp.PyArray_TYPE(t) in (cnp.NPY_BOOL, cnp.NPY_UINT8)
               and cnp.PyArray_SIZE(t) == n and cnp.PyArray_IS_C_CONTIGUOUS(t)
               else fc_operand_kind(t, n, "target"))
        tp = cnp.PyArray_DATA(t)
    if aux is not None:
        K.aux = fc_operand_kind(aux, n, "aux")
        ap = cnp.PyArray_DATA(aux)
    if grad is not None:
        K.g = fc_operand_kind(grad, n, "grad")
        gp = cnp.PyArray_DATA(grad)
    if n == 0:
        return 0.0, -1
    P.a = a
    P.b = b
    P.c = c
    with nogil:
        rc = _dispatch(loss, <const float*>xp, <const float*>tp, <const float*>ap, K, n, P, wp,
                       lp, <float*>gp, gscale, False, n_threads, &total)
    if rc == -1:
        raise MemoryError("fastloss: cannot allocate reduction buffers")
    if rc == -2:
        raise ValueError(f"fastloss internal error: unknown loss id {loss}")
    return total.loss, total.bad


# ------------------------------------------------------- prepared call

def pointwise_call(int loss, object input, object target, object reduction, bint return_grad,
                   object n_threads, double a=0.0, double b=0.0, double c=0.0):
    """Loss `loss` of (input, target) of one shape for the common case, else None.

    Taken: input and target plain ndarrays (see _fastcall.pxd) of the same
    float dtype and shape, reduction 'mean' / 'sum' / 'none', gradients
    below FRESH_GRAD_BYTES, and no element outside the loss's domain.
    None sends the call down the full path, which owns every error message.
    """
    cdef int ft = fc_float(input)
    cdef int red = fc_reduction(reduction)
    cdef cnp.ndarray xa, ta
    cdef Py_ssize_t n
    cdef int nt = 1, rc
    cdef double gscale = 1.0, denom
    cdef Params P
    cdef BlockOut total
    cdef object loss_arr = None
    cdef object grad_arr = None
    cdef void* lp = NULL
    cdef void* gp = NULL
    cdef Kinds K = Kinds(FL_KIND_F32, FL_KIND_F32, FL_KIND_F32, FL_KIND_F32)
    if ft < 0 or red < 0 or fc_float(target) != ft or not fc_threads_arg(n_threads):
        return None
    xa = <cnp.ndarray>input
    ta = <cnp.ndarray>target
    if not fc_shape_is(ta, xa, -1):
        return None
    n = cnp.PyArray_SIZE(xa)
    if n == 0 or (return_grad and cnp.PyArray_NBYTES(xa) >= FRESH_GRAD_BYTES):
        return None
    if n > ELEM_BLOCK:
        nt = effective_n_threads(n_threads)
    denom = <double>n
    if red == RED_NONE:
        loss_arr = fc_empty_like(xa, ft, &lp)
    if return_grad:
        grad_arr = fc_empty_like(xa, ft, &gp)
        if red == RED_MEAN:
            gscale = 1.0 / denom
    P.a = a
    P.b = b
    P.c = c
    with nogil:
        if ft == cnp.NPY_FLOAT:
            rc = _dispatch(loss, <float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(ta),
                           <float*>cnp.PyArray_DATA(xa), K, n, P, NULL, <float*>lp, <float*>gp,
                           gscale, False, nt, &total)
        else:
            rc = _dispatch(loss, <double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(ta),
                           <double*>cnp.PyArray_DATA(xa), K, n, P, NULL, <double*>lp, <double*>gp,
                           gscale, False, nt, &total)
    if rc != 0 or total.bad >= 0:
        return None  # the full path raises
    return fc_result(red, total.loss, denom, ft, loss_arr, return_grad, grad_arr)
