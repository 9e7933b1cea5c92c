"""The per-element objectives of _gbdt.pyx: the value, gradient and Hessian
(or the chosen variant) of one margin, and the domain of its label.

Each loss is a tag type (a one-byte struct); a function of the fused tag_t
takes a NULL pointer of the loss's tag, and `if tag_t is X` picks the
loss's code at compile time.  Cimported by _gbdt.pyx only: inline, so each
(loss, dtype) loop of the driver is one straight loop.
"""

from libc.math cimport INFINITY, fabs, log1p, sqrt

from _common cimport floating, log1p_unit, vabs, vexp, vexp_neg, vlog1p

ctypedef struct TLogistic:
    char _
ctypedef struct TFocal:
    char _
ctypedef struct THuber:
    char _
ctypedef struct TPseudoHuber:
    char _
ctypedef struct TLogCosh:
    char _
ctypedef struct TFair:
    char _
ctypedef struct TQuantile:
    char _
ctypedef struct TPoisson:
    char _
ctypedef struct TGamma:
    char _
ctypedef struct TTweedie:
    char _
ctypedef struct TSqLog:
    char _
ctypedef struct TSoftmax:
    char _
ctypedef struct TSoftmaxFocal:
    char _

ctypedef fused tag_t:
    TLogistic
    TFocal
    THuber
    TPseudoHuber
    TLogCosh
    TFair
    TQuantile
    TPoisson
    TGamma
    TTweedie
    TSqLog
    TSoftmax
    TSoftmaxFocal


# ------------------------------------------------------- per-element math

cdef inline floating gh_elem(tag_t* tag, floating f, floating y, floating a, floating b,
                             floating c, int hv, floating* g, floating* h) noexcept nogil:
    """Loss of one element; d/df to g[0], d2/df2 (or the chosen variant) to h[0]."""
    cdef floating one = 1, two = 2, half = 0.5, zero = 0
    cdef floating e, r, sp, sn, lp, spf, snf, wp, wn, qg, pg, gm, r_, ar, t1, t2, mu, e1, e2
    cdef double dr, dt, ds, dad, de, dq
    if tag_t is TLogistic or tag_t is TFocal:
        e = vexp_neg(-vabs(f))
        r = one / (one + e)
        sp = r if f >= 0 else e * r          # sigma(f) = p
        sn = e * r if f >= 0 else r          # sigma(-f) = q
        lp = log1p_unit(e, r)
        spf = (f if f > 0 else zero) + lp    # softplus(f) = -log q
        snf = (-f if f < 0 else zero) + lp   # softplus(-f) = -log p
        wp = b * y                           # weight of the y = 1 part
        wn = a * (one - y)                   # weight of the y = 0 part
        if tag_t is TLogistic:
            g[0] = wn * sp - wp * sn
            h[0] = (wp + wn) * (e * r * r)   # p q = e / (1 + e)^2
            return wp * snf + wn * spf
        else:
            # l = wp q^gm (-log p) + wn p^gm (-log q): focal on z = f and on z = -f
            gm = c
            qg = vexp_neg(-gm * spf)         # q^gamma
            pg = vexp_neg(-gm * snf)         # p^gamma
            qg = one if gm == 0 else qg
            pg = one if gm == 0 else pg
            g[0] = pg * wn * (gm * sn * spf + sp) - qg * wp * (gm * sp * snf + sn)
            t1 = sp * qg * (gm * gm * sp * snf - gm * sn * snf + (two * gm + one) * sn)
            t2 = sn * pg * (gm * gm * sn * spf - gm * sp * spf + (two * gm + one) * sp)
            # fisher: the Bernoulli information p q times the focal weights
            h[0] = wp * t1 + wn * t2 if hv == 0 else (wp * qg + wn * pg) * (sp * sn)
            return wp * qg * snf + wn * pg * spf
    elif tag_t is THuber:
        r_ = f - y
        ar = vabs(r_)
        t1 = r_ if r_ > -a else -a
        g[0] = t1 if t1 < a else a
        t2 = one if ar <= a else zero
        h[0] = one if hv != 0 else t2
        return half * r_ * r_ if ar <= a else a * (ar - half * a)
    elif tag_t is TPseudoHuber:
        dr = <double>f - <double>y
        dad = fabs(dr)
        dt = dad * (1.0 / <double>a)   # the reciprocal hoisted out of the loop
        ds = sqrt(1.0 + dt * dt)
        # |r| / delta so large that its square overflows: the limits
        g[0] = <floating>((a if dr >= 0 else -a) if ds == INFINITY else dr / ds)
        h[0] = <floating>((1.0 / (ds * ds * ds)) if hv == 0 else 1.0 / ds)
        return <floating>(<double>a * dad * (1.0 if ds == INFINITY else dt / (ds + 1.0)))
    elif tag_t is TLogCosh:
        # log cosh r = |r| + log1p(e^{-2|r|}) - log 2; tanh and sech^2 from the same e
        dr = <double>f - <double>y
        dad = fabs(dr)
        de = vexp_neg(-2.0 * dad)
        dq = 1.0 / (1.0 + de)
        ds = (1.0 - de) * dq
        g[0] = <floating>(ds if dr >= 0 else -ds)
        h[0] = <floating>(4.0 * de * dq * dq)
        return <floating>(dad + log1p_unit(de, dq) - 0.6931471805599453)
    elif tag_t is TFair:
        # c^2 (u - log1p(u)), u = |r| / c
        dr = <double>f - <double>y
        dad = fabs(dr)
        ds = dad + <double>a
        g[0] = <floating>(<double>a * dr / ds)
        h[0] = <floating>(<double>a * <double>a / (ds * ds))
        dt = dad * (1.0 / <double>a)   # the reciprocal hoisted out of the loop
        return <floating>(<double>a * <double>a * (dt - vlog1p(dt)))
    elif tag_t is TQuantile:
        # pinball at level a; the sub-gradient at r = 0 is LightGBM's (1 - a)
        r_ = f - y
        g[0] = one - a if r_ >= 0 else -a
        h[0] = one
        return (one - a) * r_ if r_ >= 0 else -a * r_
    elif tag_t is TPoisson:
        mu = vexp(f)
        g[0] = mu - y
        h[0] = mu if hv == 0 else vexp(f + a)
        return mu - y * f
    elif tag_t is TGamma:
        e = vexp(-f)
        g[0] = one - y * e
        h[0] = y * e
        return y * e + f
    elif tag_t is TTweedie:
        e1 = vexp((one - a) * f)
        e2 = vexp((two - a) * f)
        g[0] = e2 - y * e1
        h[0] = (two - a) * e2 - (one - a) * y * e1
        return e2 / (two - a) - y * e1 / (one - a)
    elif tag_t is TSqLog:
        # XGBoost's reg:squaredlogerror: the prediction clamped at -1 + 1e-6
        dr = <double>f
        dr = dr if dr > -1.0 + 1e-6 else -1.0 + 1e-6
        dt = log1p(dr) - log1p(<double>y)
        ds = 1.0 / (1.0 + dr)
        g[0] = <floating>(dt * ds)
        h[0] = <floating>((1.0 - dt) * ds * ds)
        return <floating>(0.5 * dt * dt)
    else:
        g[0] = 0
        h[0] = 0
        return 0


cdef inline floating focal_hard(floating f, floating y, floating a, floating b, floating gm,
                                bint fisher, bint square, floating* g,
                                floating* h) noexcept nogil:
    """gh_elem's focal for a label y in {0, 1}: only the label's own term,
    on z = f (y = 1) or z = -f (y = 0), one exp(-|z|), one log1p and one power.
    square (gm == 2, the usual gamma): the power is q * q, no second exp."""
    cdef floating one = 1, two = 2, zero = 0
    cdef bint pos = y != 0
    cdef floating z = f if pos else -f
    cdef floating wt = b if pos else a
    cdef floating sg = one if pos else -one
    cdef floating e = vexp_neg(-vabs(z))
    cdef floating r = one / (one + e)
    cdef floating p = r if z >= 0 else e * r        # sigma(z)
    cdef floating q = e * r if z >= 0 else r        # sigma(-z)
    cdef floating lp = log1p_unit(e, r)
    cdef floating spz = (z if z > 0 else zero) + lp  # -log q
    cdef floating snz = (-z if z < 0 else zero) + lp  # -log p
    cdef floating qg
    if square:
        qg = q * q
    else:
        qg = vexp_neg(-gm * spz)                    # q^gamma
        qg = one if gm == 0 else qg
    qg = wt * qg
    g[0] = -sg * qg * (gm * p * snz + q)
    h[0] = (qg * (p * q) if fisher
            else p * qg * (gm * gm * p * snz - gm * q * snz + (two * gm + one) * q))
    return qg * snz


cdef inline int bad_y(tag_t* tag, floating y) noexcept nogil:
    """Non-zero where the label is outside the loss's domain (NaN included).

    Integer flags: their sum may be reordered, so the counting loop
    vectorizes (a float count is summed in order, one lane at a time).
    Selects added, not `and`: Cython's short-circuit jumps stop the vectorizer.
    """
    cdef int lo, hi
    if tag_t is TLogistic or tag_t is TFocal:
        lo = 0 if y >= 0 else 1
        hi = 0 if y <= 1 else 1
        return lo + hi
    elif tag_t is TPoisson or tag_t is TTweedie:
        return 0 if y >= 0 else 1
    elif tag_t is TGamma:
        return 0 if y > 0 else 1
    elif tag_t is TSqLog:
        return 0 if y > -1 else 1
    else:
        return 0 if y == y else 1
