# The scalar helpers of _elementwise.pyx's per-element formulas
# (header-only, inline; the template's design A and D).

from _common cimport floating, log1p_unit, vlog


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
