# The margin-softmax losses' row math (CosFace, ArcFace, SphereFace):
# the margin of a call, psi(cos theta) of the target logit with its
# derivative, and the row's sum of exponentials without the target
# (header-only, inline; _margin.pyx's design D).

from libc.math cimport INFINITY, M_PI, acos, cos, floor, sin, sqrt

from _common cimport floating, row_sumexp, vfma


cdef enum:
    # the margin kinds (_margin.pyx's MarginKind takes these values)
    KIND_COSFACE = 0
    KIND_ARCFACE = 1
    KIND_SPHEREFACE = 2
    # scaled_sumexp's stack chunk: s x - shift for up to this many classes
    # at a time (4 KiB of float), summed by row_sumexp
    SCALED_CHUNK = 1024

# Below this sin(theta) the ArcFace derivative d psi / d cos uses this value
# (sin(theta) -> 0 at cos = +-1, where the true derivative is infinite).
cdef extern from *:
    """
    #define FL_ARC_SIN_FLOOR 1e-4
    """
    const double ARC_SIN_FLOOR "FL_ARC_SIN_FLOOR"


cdef struct Margin:
    # the margin of one call: kind, scale s, margin m (im = m as an integer,
    # sphereface) and ArcFace's constants cos m, sin m, cos(pi - m), m sin(pi - m)
    int kind, im
    double s, m, cosm, sinm, th, mm
    bint easy


cdef inline Margin make_margin(int kind, double s, double m, bint easy) noexcept:
    cdef Margin M
    M.kind = kind
    M.s = s
    M.m = m
    M.im = <int>m
    M.easy = easy
    M.cosm = M.sinm = M.th = M.mm = 0.0
    if kind == KIND_ARCFACE:
        M.cosm = cos(m)
        M.sinm = sin(m)
        M.th = cos(M_PI - m)
        M.mm = sin(M_PI - m) * m
    return M


cdef inline double margin_psi(const Margin* M, double c, double* d) noexcept nogil:
    """psi(cos theta) of the target logit and d psi / d cos.

    cosface:    psi = c - m.
    arcface:    psi = cos(theta + m) = c cos m - sin(theta) sin m while
                c > th = cos(pi - m) (else the fallback c - m sin m), or with
                easy_margin while c > 0 (else c).  sin(theta) = sqrt(1 - c^2)
                with c clipped to [-1, 1]; the derivative
                cos m + c sin m / sin(theta) uses max(sin(theta), 1e-4), so it
                is finite at c = +-1.
    sphereface: psi = (-1)^k cos(m theta) - 2k, k = floor(m theta / pi) in
                [0, m-1]; cos(m theta) = T_m(c) (Chebyshev), so psi and its
                derivative (-1)^k T_m'(c) are polynomials in c: no NaN at +-1.
    """
    cdef double cc, sn, sgn, k, T, dT, c2
    cdef int im = M.im
    if M.kind == KIND_COSFACE:
        d[0] = 1.0
        return c - M.m
    cc = 1.0 if c > 1.0 else c          # NaN passes through both clips
    cc = -1.0 if cc < -1.0 else cc
    if M.kind == KIND_ARCFACE:
        if (M.easy and not (c > 0)) or (not M.easy and not (c > M.th)):
            d[0] = 1.0
            return c if M.easy else c - M.mm
        sn = sqrt(1.0 - cc * cc)
        d[0] = M.cosm + cc * M.sinm / (sn if sn > ARC_SIN_FLOOR else ARC_SIN_FLOOR)
        return cc * M.cosm - sn * M.sinm
    # sphereface
    k = floor(im * acos(cc) / M_PI)
    k = k if k < im - 1 else im - 1
    k = k if k > 0 else 0
    sgn = -1.0 if (<int>k) % 2 == 1 else 1.0
    c2 = cc * cc
    if im == 1:
        T = cc
        dT = 1.0
    elif im == 2:
        T = 2 * c2 - 1
        dT = 4 * cc
    elif im == 3:
        T = (4 * c2 - 3) * cc
        dT = 12 * c2 - 3
    else:
        T = 8 * c2 * c2 - 8 * c2 + 1
        dT = (32 * c2 - 16) * cc
    d[0] = sgn * dT
    # c outside [-1, 1] is not a cosine; keep the polynomial's own value there
    return sgn * T - 2 * k


cdef inline double scaled_sumexp(const floating* xr, Py_ssize_t C, floating s,
                                 floating shift, Py_ssize_t y, floating* e,
                                 const floating* nxt) noexcept nogil:
    """sum_{j != y} exp(s x_j - shift): the row's sum without the target.

    Writes the exponentials (0 at the target) to e unless e is NULL; nxt:
    the row read next (its lines requested meanwhile) or NULL.
    Keeping the target out of this sum gives 1 - p_y = others / (others +
    e_y) without cancellation when p_y ~ 1.  The arguments s x_j - shift
    (one rounding where the target has fused multiply-adds) go through a
    stack chunk, the target's set to -inf (exp 0), into row_sumexp with a
    zero shift: the exponentials run in fastmath's row loops (an exp loop
    here, in Cython, was 0.34 ns an element against cross-entropy's 0.25).
    s x spans up to 2 s (128 for ArcFace's s = 64), so many exponentials of
    a row would be subnormal, each a microcode assist; fastmath's exp
    returns 0 for them (an error below 1.2e-38 against a sum >= 1).
    """
    cdef floating chunk[SCALED_CHUNK]
    cdef Py_ssize_t i, i0 = 0, m
    cdef double total = 0.0
    while i0 < C:
        m = C - i0 if C - i0 < SCALED_CHUNK else SCALED_CHUNK
        for i in range(m):
            chunk[i] = vfma(s, xr[i0 + i], -shift)
        if i0 <= y < i0 + m:
            chunk[y - i0] = -INFINITY
        total += row_sumexp(chunk, m, 0.0, e + i0 if e != NULL else NULL,
                            nxt + i0 if nxt != NULL else NULL)
        i0 += m
    return total
