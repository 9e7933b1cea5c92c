"""NumPy twins of ``fastloss.gbdt``: gradient-boosting objectives in float64.

Each loss is written as (per-element loss, first derivative, second
derivative) in the plainest form; the test-suite checks these against
central finite differences of the loss, then checks the kernels against
these.  Conventions are ``fastloss.gbdt``'s: per-sample gradient and Hessian
times the sample weight, never divided by n; the loss value is the
weighted mean of the per-row losses (per element for multi-output quantile).
"""

import numpy as np

__all__ = ["grad_hess", "init_score"]

VARIANTS = {
    "logistic": ("exact", "xgboost"),
    "binary_focal": ("exact", "fisher"),
    "softmax": ("exact", "xgboost", "lightgbm"),
    "softmax_focal": ("exact", "fisher"),
    "huber": ("exact", "lightgbm"),
    "pseudo_huber": ("exact", "mm"),
    "log_cosh": ("exact",),
    "fair": ("exact",),
    "quantile": ("constant",),
    "poisson": ("exact", "max_delta_step"),
    "gamma": ("exact",),
    "tweedie": ("exact",),
    "squared_log": ("exact", "xgboost"),
}
FLOORS = {("logistic", "xgboost"): 1e-16, ("softmax", "xgboost"): 1e-16,
          ("squared_log", "xgboost"): 1e-6}


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _pair(value, default):
    """alpha / class_weight of a binary loss as (weight of y=0, weight of y=1)."""
    if value is None:
        return default
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return (1.0 - float(v), float(v))
    return (float(v[0]), float(v[1]))


def _elementwise(loss, f, y, hessian, p):
    """(loss, g, h) of a per-element loss at margins f, labels y (broadcast)."""
    if loss in ("logistic", "binary_focal"):
        if loss == "logistic":
            w0, w1 = _pair(p.get("class_weight"), (1.0, 1.0))
            w1 = w1 * p.get("scale_pos_weight", 1.0)
        else:
            w0, w1 = _pair(p.get("alpha"), (1.0, 1.0))
        gm = p.get("gamma", 2.0) if loss == "binary_focal" else 0.0
        # l = w1 y FL(f) + w0 (1 - y) FL(-f), FL(z) = -(1 - s(z))^gm log s(z)
        out = []
        for z, sign, wt in ((f, 1.0, w1 * y), (-f, -1.0, w0 * (1.0 - y))):
            pz, qz = _sigmoid(z), _sigmoid(-z)
            nlp = _softplus(-z)                     # -log p(z)
            qg = qz ** gm
            val = qg * nlp
            d1 = -qg * (gm * pz * nlp + qz)
            d2 = pz * qg * (gm * gm * pz * nlp - gm * qz * nlp + (2 * gm + 1) * qz)
            if hessian == "fisher":
                d2 = qg * pz * qz
            out.append((wt * val, wt * sign * d1, wt * d2))
        return tuple(a + b for a, b in zip(*out))
    r = f - y
    if loss == "huber":
        d = p.get("delta", 1.0)
        small = np.abs(r) <= d
        val = np.where(small, 0.5 * r * r, d * (np.abs(r) - 0.5 * d))
        h = np.where(small | (hessian == "lightgbm"), 1.0, 0.0)
        return val, np.clip(r, -d, d), h
    if loss == "pseudo_huber":
        d = p.get("delta", 1.0)
        s = np.sqrt(1.0 + (r / d) ** 2)
        h = s ** -3 if hessian == "exact" else 1.0 / s
        return d * d * (s - 1.0), r / s, h
    if loss == "log_cosh":
        return np.log(np.cosh(r)), np.tanh(r), 1.0 / np.cosh(r) ** 2
    if loss == "fair":
        c = p.get("c", 1.0)
        a = np.abs(r)
        return c * c * (a / c - np.log1p(a / c)), c * r / (a + c), c * c / (a + c) ** 2
    if loss == "quantile":
        a = np.atleast_1d(np.asarray(p["alpha"], dtype=np.float64))
        val = np.where(r >= 0, (1.0 - a) * r, -a * r)
        return val, np.where(r >= 0, 1.0 - a, -a), np.ones_like(r)
    if loss == "poisson":
        mu = np.exp(f)
        h = mu if hessian == "exact" else np.exp(f + p.get("max_delta_step", 0.7))
        return mu - y * f, mu - y, h
    if loss == "gamma":
        return y * np.exp(-f) + f, 1.0 - y * np.exp(-f), y * np.exp(-f)
    if loss == "tweedie":
        rho = p.get("power", 1.5)
        a, b = np.exp((1 - rho) * f), np.exp((2 - rho) * f)
        return (-y * a / (1 - rho) + b / (2 - rho), -y * a + b,
                -(1 - rho) * y * a + (2 - rho) * b)
    if loss == "squared_log":
        pr = np.maximum(f, -1 + 1e-6)
        d = np.log1p(pr) - np.log1p(y)
        return 0.5 * d * d, d / (1 + pr), (1 - d) / (1 + pr) ** 2
    raise ValueError(f"unknown loss {loss!r}")


def _softmax(loss, f, y, hessian, p):
    """(per-row loss, g, h) of softmax cross-entropy / softmax focal."""
    n, K = f.shape
    lse = np.log(np.sum(np.exp(f - f.max(axis=1, keepdims=True)), axis=1)) + f.max(axis=1)
    logp = f - lse[:, None]
    pr = np.exp(logp)
    if loss == "softmax":
        if y.ndim == 2:
            t = y
        else:
            t = np.eye(K)[y.astype(np.int64)]
            eps = p.get("label_smoothing", 0.0)
            t = (1 - eps) * t + eps / K
        cw = p.get("class_weight")
        c = t * (np.ones(K) if cw is None else np.asarray(cw, dtype=np.float64))
        s = c.sum(axis=1, keepdims=True)
        fac = {"exact": 1.0, "xgboost": 2.0, "lightgbm": K / (K - 1.0)}[hessian]
        return -(c * logp).sum(axis=1), s * pr - c, fac * s * pr * (1 - pr)
    # focal: l = -al_y (1 - p_y)^gm log p_y; derivatives by the chain rule through p_y
    gm = p.get("gamma", 2.0)
    al = p.get("alpha")
    yi = y.astype(np.int64)
    a = np.ones(n) if al is None else np.asarray(al, dtype=np.float64)[yi]
    py = pr[np.arange(n), yi]
    ly = logp[np.arange(n), yi]
    q = 1.0 - py
    onehot = np.eye(K)[yi]
    dlp = a * (gm * q ** (gm - 1) * ly - q ** gm / py) if gm != 0 else -a / py
    # dp_y / df_k = p_y (d_k - p_k)
    dpdf = py[:, None] * (onehot - pr)
    g = dlp[:, None] * dpdf
    if hessian == "fisher":
        h = (a * q ** gm)[:, None] * pr * (1 - pr)
    else:
        # d2 l / dp^2 and d2 p_y / df_k^2 = p_y (d_k - p_k)^2 - p_y p_k (1 - p_k)
        d2 = a * (-gm * (gm - 1) * q ** (gm - 2) * ly + 2 * gm * q ** (gm - 1) / py
                  + q ** gm / py ** 2) if gm != 0 else a / py ** 2
        d2pdf = py[:, None] * (onehot - pr) ** 2 - py[:, None] * pr * (1 - pr)
        h = d2[:, None] * dpdf ** 2 + dlp[:, None] * d2pdf
    return -a * q ** gm * ly, g, h


def grad_hess(loss, y, margins, sample_weight=None, *, hessian=None, hess_floor=None,
              out=None, n_threads=None, **params):
    """Float64 twin of :func:`fastloss.gbdt.grad_hess`: ``(grad, hess, value)``."""
    f = np.asarray(margins, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if hessian is None:
        hessian = VARIANTS[loss][0]
    if loss in ("softmax", "softmax_focal"):
        val, g, h = _softmax(loss, f, y, hessian, params)
        cols = 1
    else:
        yy = y[:, None] if f.ndim == 2 else y
        val, g, h = _elementwise(loss, f, yy, hessian, params)
        val = np.broadcast_to(val, f.shape)
        cols = f.shape[1] if f.ndim == 2 else 1
        if f.ndim == 2:
            val = val.sum(axis=1)
    g = np.broadcast_to(g, f.shape).astype(np.float64)
    h = np.broadcast_to(h, f.shape).astype(np.float64)
    floor = FLOORS.get((loss, hessian)) if hess_floor is None else hess_floor
    if floor is not None:
        h = np.where(h < floor, floor, h)
    w = np.ones(f.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    wc = w[:, None] if f.ndim == 2 else w
    value = np.sum(w * val) / (np.sum(w) * cols)
    return g * wc, h * wc, value


def init_score(loss, y, sample_weight=None, **params):
    """Float64 twin of :func:`fastloss.gbdt.init_score`, by direct minimisation."""
    from scipy.optimize import minimize, minimize_scalar

    y = np.asarray(y, dtype=np.float64)
    w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if loss in ("softmax", "softmax_focal"):
        K = params.pop("num_class", None) or (y.shape[1] if y.ndim == 2 else int(y.max()) + 1)

        def obj(c):
            return grad_hess(loss, y, np.broadcast_to(c, (y.shape[0], K)), w, **params)[2]
        return minimize(obj, np.zeros(K), method="BFGS", options={"gtol": 1e-10}).x
    if loss == "quantile":
        levels = np.atleast_1d(np.asarray(params["alpha"], dtype=np.float64))
        return np.array([minimize_scalar(
            lambda c, a=a: grad_hess(loss, y, np.full((y.shape[0], 1), c), w, alpha=[a])[2],
            bounds=(y.min(), y.max()), method="bounded", options={"xatol": 1e-10}).x
            for a in levels])
    return minimize_scalar(lambda c: grad_hess(loss, y, np.full(y.shape, c), w, **params)[2],
                           bracket=(-1.0, 1.0), tol=1e-12).x
