"""The objectives' plan (a loss, its Hessian variant and parameters, checked
once) and the functions on it: :func:`grad_hess`, :func:`init_score`."""

import math
import numbers

import numpy as np

from fastloss._dispatch import kernels
from fastloss._docs import doc
from fastloss._threads import effective_n_threads

_k = kernels("gbdt")

# loss name -> (the kernel's GbdtLoss id, Hessian variants, parameters and defaults)
_L = _k.GbdtLoss
_H_EXACT, _H_ALT, _H_SCALED = (int(_k.GbdtHess.H_EXACT), int(_k.GbdtHess.H_ALT),
                               int(_k.GbdtHess.H_SCALED))
_SPECS = {
    "logistic": (int(_L.LOGISTIC), ("exact", "xgboost"),
                 {"class_weight": None, "scale_pos_weight": 1.0}),
    "binary_focal": (int(_L.FOCAL), ("exact", "fisher"), {"gamma": 2.0, "alpha": None}),
    "huber": (int(_L.HUBER), ("exact", "lightgbm"), {"delta": 1.0}),
    "pseudo_huber": (int(_L.PSEUDO_HUBER), ("exact", "mm"), {"delta": 1.0}),
    "log_cosh": (int(_L.LOG_COSH), ("exact",), {}),
    "fair": (int(_L.FAIR), ("exact",), {"c": 1.0}),
    "quantile": (int(_L.QUANTILE), ("constant",), {"alpha": None}),
    "poisson": (int(_L.POISSON), ("exact", "max_delta_step"), {"max_delta_step": 0.7}),
    "gamma": (int(_L.GAMMA), ("exact",), {}),
    "tweedie": (int(_L.TWEEDIE), ("exact",), {"power": 1.5}),
    "squared_log": (int(_L.SQLOG), ("exact", "xgboost"), {}),
    "softmax": (int(_L.SOFTMAX), ("exact", "xgboost", "lightgbm"),
                {"class_weight": None, "label_smoothing": 0.0}),
    "softmax_focal": (int(_L.SOFTMAX_FOCAL), ("exact", "fisher"), {"gamma": 2.0, "alpha": None}),
}
# The loss names accepted by grad_hess, init_score and Objective.
LOSSES = tuple(_SPECS)
_SOFTMAX = ("softmax", "softmax_focal")
_FLOORS = {("logistic", "xgboost"): 1e-16, ("softmax", "xgboost"): 1e-16,
           ("squared_log", "xgboost"): 1e-6}
_DOMAIN = {"logistic": "0 <= y <= 1", "binary_focal": "0 <= y <= 1", "poisson": "y >= 0",
           "tweedie": "y >= 0", "gamma": "y > 0", "squared_log": "y > -1"}
# outputs of this size and up are written with non-temporal stores when reused
_STREAM_BYTES = 4 << 20


def _real(value, name, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not (v == v) or below or above:
        lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}, got {value!r}")
    return v


def _vector(value, name, lo=0.0, hi=math.inf, lo_open=False, hi_open=False):
    v = np.array(value, dtype=np.float64, ndmin=1)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {v.shape}")
    for i, x in enumerate(v):
        _real(float(x), f"{name}[{i}]", lo, hi, lo_open, hi_open)
    return v


class _Plan:
    """A loss with its checked parameters, ready for the kernel."""

    __slots__ = ("loss", "lid", "hessian", "hv", "a", "b", "c", "floor", "smooth", "cw",
                 "col", "params", "n_threads")

    def __init__(self, loss, hessian, hess_floor, n_threads, params):
        if not isinstance(loss, str) or loss not in _SPECS:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
        lid, variants, defaults = _SPECS[loss]
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(f"loss {loss!r} takes the parameters {sorted(defaults)}, "
                            f"got unknown {unknown}")
        p = dict(defaults)
        p.update(params)
        if hessian is None:
            hessian = variants[0]
        if not isinstance(hessian, str) or hessian not in variants:
            raise ValueError(f"hessian must be one of {list(variants)} for loss {loss!r}, "
                             f"got {hessian!r}")
        floor = _FLOORS.get((loss, hessian)) if hess_floor is None else hess_floor
        self.floor = -math.inf if floor is None else _real(floor, "hess_floor")
        self.loss, self.lid, self.hessian, self.params = loss, lid, hessian, p
        # the kernel's GbdtHess: the exact Hessian, or the loss's other variant
        self.hv = _H_EXACT if hessian in ("exact", "constant") else _H_ALT
        self.a = self.b = self.c = 0.0
        self.smooth = 0.0
        self.cw = self.col = None
        effective_n_threads(n_threads)  # checks it
        self.n_threads = n_threads
        if loss in ("logistic", "binary_focal"):
            key = "class_weight" if loss == "logistic" else "alpha"
            pair = p[key]
            if pair is None:
                self.a, self.b = 1.0, 1.0
            elif np.ndim(pair) == 0:
                al = _real(pair, key, 0.0, 1.0)
                self.a, self.b = 1.0 - al, al
            else:
                v = _vector(pair, key)
                if v.shape != (2,):
                    raise ValueError(f"{key} must be a number or a pair (weight of y=0, "
                                     f"weight of y=1), got shape {v.shape}")
                self.a, self.b = float(v[0]), float(v[1])
            if loss == "logistic":
                self.b *= _real(p["scale_pos_weight"], "scale_pos_weight", 0.0)
            else:
                self.c = _real(p["gamma"], "gamma", 0.0)
        elif loss in ("huber", "pseudo_huber"):
            self.a = _real(p["delta"], "delta", 0.0, lo_open=True)
        elif loss == "fair":
            self.a = _real(p["c"], "c", 0.0, lo_open=True)
        elif loss == "quantile":
            if p["alpha"] is None:
                raise TypeError("loss 'quantile' needs alpha= (a level or a sequence of levels)")
            self.col = _vector(p["alpha"], "alpha", 0.0, 1.0, True, True)
        elif loss == "poisson":
            self.a = _real(p["max_delta_step"], "max_delta_step")
        elif loss == "tweedie":
            self.a = _real(p["power"], "power", 1.0, 2.0, True, True)
        elif loss == "softmax":
            self.smooth = _real(p["label_smoothing"], "label_smoothing", 0.0, 1.0)
            if p["class_weight"] is not None:
                self.cw = _vector(p["class_weight"], "class_weight")
            self.b = {"exact": 1.0, "xgboost": 2.0, "lightgbm": 0.0}[hessian]
            self.hv = _H_EXACT if hessian == "exact" else _H_SCALED
        elif loss == "softmax_focal":
            self.c = _real(p["gamma"], "gamma", 0.0)
            if p["alpha"] is not None:
                self.cw = _vector(p["alpha"], "alpha")

    # ------------------------------------------------------------ arrays

    def columns(self, margins):
        """The number of columns K of the margins this loss expects, checked."""
        K = margins.shape[1] if margins.ndim == 2 else 1
        if self.loss in _SOFTMAX:
            if margins.ndim != 2 or K < 2:
                raise ValueError(f"margins must be 2-D (n, K) with K >= 2 classes for loss "
                                 f"{self.loss!r}, got shape {margins.shape}")
            if self.cw is not None and self.cw.shape != (K,):
                key = "class_weight" if self.loss == "softmax" else "alpha"
                raise ValueError(f"{key} must have one value per class, K = {K} "
                                 f"(margins' columns), got {self.cw.shape[0]}")
        elif self.loss == "quantile":
            if K != self.col.shape[0]:
                raise ValueError(f"margins must have one column per quantile level: "
                                 f"{self.col.shape[0]} levels in alpha, margins of shape "
                                 f"{margins.shape}")
        elif K != 1:
            raise ValueError(f"margins must be 1-D (n,) or (n, 1) for loss {self.loss!r}, "
                             f"got shape {margins.shape}")
        return K

    def margins(self, margins):
        m = np.asarray(margins)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"margins must be a real numeric array, got dtype {m.dtype}")
        if m.dtype != np.float32 and m.dtype != np.float64:
            m = m.astype(np.float32 if m.dtype == np.float16 else np.float64)
        if m.ndim not in (1, 2):
            raise ValueError(f"margins must be 1-D (n,) or 2-D (n, K), got shape {m.shape}")
        if not (m.flags.c_contiguous or m.flags.f_contiguous):
            m = np.ascontiguousarray(m)   # the only copy: a strided view
        return m

    def labels(self, y, m):
        n = m.shape[0]
        t = np.asarray(y)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"y must be a real numeric array, got dtype {t.dtype}")
        soft = False
        if self.loss == "softmax" and t.ndim == 2:
            if t.shape != m.shape:
                raise ValueError(f"y as class probabilities must have the margins' shape "
                                 f"{m.shape}, got {t.shape}")
            soft = True
            if t.dtype != m.dtype or not (t.flags.c_contiguous or t.flags.f_contiguous):
                t = np.asarray(t, dtype=m.dtype, order="K")
                if not (t.flags.c_contiguous or t.flags.f_contiguous):
                    t = np.ascontiguousarray(t)
            return t, soft
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim != 1:
            raise ValueError(f"y must be 1-D (n,) for loss {self.loss!r}, got shape {t.shape}")
        if t.shape[0] != n:
            K = m.shape[1] if m.ndim == 2 else 1
            raise ValueError(f"y has n = {t.shape[0]} labels but margins has {m.shape[0]} rows "
                             f"(margins of shape {m.shape}, {m.size} = n * K values with "
                             f"K = {K})")
        if t.dtype != m.dtype or not t.flags.c_contiguous:
            t = np.ascontiguousarray(t, dtype=m.dtype)
        return t, soft

    def weights(self, sample_weight, n):
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must be a real numeric array, got dtype {w.dtype}")
        w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1) if w.ndim <= 1 else w
        if w.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},) (one weight per row), "
                             f"got {np.shape(sample_weight)}")
        if not np.all(w >= 0):
            i = int(np.flatnonzero(~(w >= 0))[0])
            raise ValueError(f"sample_weight must be >= 0 (and not NaN), got "
                             f"sample_weight[{i}] = {float(w[i])!r}")
        return w

    def outputs(self, out, m):
        if out is None:
            order = "F" if (m.ndim == 2 and m.flags.f_contiguous
                            and not m.flags.c_contiguous) else "C"
            return np.empty(m.shape, m.dtype, order=order), np.empty(m.shape, m.dtype,
                                                                     order=order), False
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("out must be a pair (grad, hess) of ndarrays")
        g, h = out
        for name, a in (("out[0] (grad)", g), ("out[1] (hess)", h)):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{name} must be an ndarray, got {type(a).__name__}")
            if a.dtype != np.float32 and a.dtype != np.float64:
                raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
            if a.shape != m.shape:
                raise ValueError(f"{name} must have the margins' shape {m.shape}, got {a.shape}")
            if not a.flags.writeable:
                raise ValueError(f"{name} is read-only")
            if np.shares_memory(a, m):
                raise ValueError(f"{name} overlaps margins")
        if g.dtype != h.dtype:
            raise TypeError(f"out[0] and out[1] must have one dtype, got {g.dtype} and {h.dtype}")
        if np.shares_memory(g, h):
            raise ValueError("out[0] (grad) and out[1] (hess) overlap")
        both_c = g.flags.c_contiguous and h.flags.c_contiguous
        both_f = g.flags.f_contiguous and h.flags.f_contiguous
        if not (both_c or both_f):
            raise ValueError("out[0] and out[1] must both be C-contiguous or both "
                             "F-contiguous")
        return g, h, g.nbytes >= _STREAM_BYTES

    def run(self, y, margins, sample_weight, out, n_threads, own_out=False,
            value_only=False):
        """The kernel call; ``own_out``: ``out`` is an Objective's own pair of
        buffers, made for these margins (their checks are skipped);
        ``value_only``: the loss value alone (g and h are None)."""
        m = self.margins(margins)
        K = self.columns(m)
        t, soft = self.labels(y, m)
        w = self.weights(sample_weight, m.shape[0])
        if value_only:
            g = h = None
            stream = False
        elif own_out:
            g, h = out
            stream = g.nbytes >= _STREAM_BYTES
        else:
            g, h, stream = self.outputs(out, m)
        nt = effective_n_threads(self.n_threads if n_threads is None else n_threads)
        fac = K / (K - 1.0) if self.loss == "softmax" and self.hessian == "lightgbm" else self.b
        total, wsum, bad = _k.grad_hess(
            loss=self.lid, x=m, y=t, w=w, g=g, h=h, hess=self.hv, a=self.a, b=self.b, c=self.c,
            fac=fac, floor=self.floor, smooth=self.smooth, cw=self.cw, col=self.col, soft=soft,
            stream=stream, n_threads=nt)
        if bad >= 0:
            self._raise_label(t, bad, K)
        cols = K if self.loss == "quantile" else 1
        value = total / (wsum * cols) if wsum > 0 else math.nan
        return g, h, value

    def _raise_label(self, t, i, K):
        v = float(t[i])
        if self.loss in _SOFTMAX:
            raise ValueError(f"y[{i}] = {v!r} is not a class index in [0, {K}) for loss "
                             f"{self.loss!r} (K = {K} columns of margins)")
        dom = _DOMAIN.get(self.loss, "y not NaN")
        raise ValueError(f"y[{i}] = {v!r} is outside the domain of loss {self.loss!r} ({dom})")


@doc
def grad_hess(loss, y, margins, sample_weight=None, *, hessian=None, hess_floor=None, out=None,
              n_threads=None, **params):
    r"""Gradient and Hessian of a boosting loss w.r.t. the margins, and the loss, in one pass.

    For every row i (and column k of multi-output margins) with raw margin
    :math:`f`, label :math:`y` and sample weight :math:`w_i`:

    .. math::

        g_{ik} = w_i \frac{\partial l_i}{\partial f_{ik}}, \qquad
        h_{ik} = w_i \max\Big(\frac{\partial^2 l_i}{\partial f_{ik}^2},
        \text{hess\_floor}\Big), \qquad
        \text{value} = \frac{\sum_i w_i l_i}{\sum_i w_i}

    (divided by the number of levels too for ``'quantile'``).  Gradients are
    per sample, not divided by n, as every GBDT library expects.  Losses,
    with :math:`p = \sigma(f)`, :math:`r = f - y`, :math:`\mu = e^f`:

    * ``'logistic'``: :math:`w_1 y\,\mathrm{sp}(-f) + w_0 (1-y)\,\mathrm{sp}(f)`
      (``class_weight=(w0, w1)``, ``scale_pos_weight`` multiplies w1);
      :math:`g = w_0(1-y)p - w_1 y(1-p)`, :math:`h = (w_1 y + w_0(1-y)) p(1-p)`.
      ``hessian='xgboost'``: floor 1e-16 (XGBoost 3.2 ``binary:logistic``).
    * ``'binary_focal'``: :math:`\alpha_1 y (1-p)^\gamma(-\log p) +
      \alpha_0 (1-y) p^\gamma (-\log(1-p))` (``gamma >= 0``, ``alpha`` a
      number a (alpha_1 = a, alpha_0 = 1 - a, torchvision) or a pair);
      exact Hessian (negative in places) or ``hessian='fisher'``:
      :math:`(\alpha_1 y (1-p)^\gamma + \alpha_0 (1-y) p^\gamma) p (1-p)`.
    * ``'softmax'``: :math:`-\sum_k c_k \log p_k`, :math:`c_k = w_k t_k`
      (``class_weight`` w, t one-hot, smoothed by ``label_smoothing`` or
      soft labels of the margins' shape); :math:`g_k = s p_k - c_k`,
      :math:`h_k = \phi s p_k(1-p_k)`, :math:`s = \sum_k c_k`, with
      :math:`\phi = 1` (``'exact'``, the diagonal), 2 (``'xgboost'``,
      ``multi:softprob`` up to 3.4.1, floor 1e-16) or K/(K-1)
      (``'lightgbm'``, ``multiclass`` 4.x).
    * ``'softmax_focal'``: :math:`-\alpha_y (1-p_y)^\gamma \log p_y`;
      ``'exact'`` diagonal or ``'fisher'``: :math:`\alpha_y (1-p_y)^\gamma p_k(1-p_k)`.
    * ``'huber'`` (``delta``): :math:`g = \mathrm{clip}(r, \pm\delta)`,
      :math:`h = 1[|r| \le \delta]`, or 1 everywhere (``'lightgbm'``).
    * ``'pseudo_huber'`` (``delta``): :math:`\delta^2(\sqrt{1+(r/\delta)^2}-1)`,
      :math:`h = (1+(r/\delta)^2)^{-3/2}` or ``'mm'``: :math:`(1+(r/\delta)^2)^{-1/2}`.
    * ``'log_cosh'``: :math:`\log\cosh r`, :math:`g = \tanh r`, :math:`h = 1 - \tanh^2 r`.
    * ``'fair'`` (``c``): :math:`c^2(|r|/c - \log(1+|r|/c))`,
      :math:`g = c r/(|r|+c)`, :math:`h = c^2/(|r|+c)^2` (LightGBM ``fair``).
    * ``'quantile'`` (``alpha``: a level or a sequence, one margin column per
      level): pinball loss, :math:`g = 1-\alpha` for :math:`r \ge 0` else
      :math:`-\alpha`, :math:`h = 1` (``'constant'``, as LightGBM and
      scikit-learn; the exact Hessian is 0).
    * ``'poisson'``: :math:`\mu - y f`, :math:`g = \mu - y`, :math:`h = \mu`
      or ``'max_delta_step'``: :math:`e^{f + \text{max\_delta\_step}}`
      (XGBoost ``count:poisson`` 3.2, LightGBM ``poisson``).
    * ``'gamma'``: :math:`y e^{-f} + f`; ``'tweedie'`` (``power`` in (1, 2)):
      :math:`-y\mu^{1-\rho}/(1-\rho) + \mu^{2-\rho}/(2-\rho)`.
    * ``'squared_log'``: :math:`\frac12(\log(1+f) - \log(1+y))^2` with f
      clamped at :math:`-1 + 10^{-6}` (XGBoost ``reg:squaredlogerror``;
      ``'xgboost'``: floor 1e-6).

    Parameters
    ----------
    loss : str
        One of ``fastloss.gbdt.LOSSES``.
    y : array_like
        Labels, shape (n,): 0/1 (or probabilities) for the binary losses,
        class indices (integers, or floats holding integers as XGBoost and
        LightGBM store them) for the softmax losses, or (n, K) class
        probabilities for ``'softmax'``; targets for regression.
    margins : array_like
        Raw scores, (n,) or (n, K) (softmax: K classes; quantile: one column
        per level), float32 or float64, C- or Fortran-ordered (read in place).
    sample_weight : array_like, optional
        (n,) non-negative weights.
    hessian : str, optional
        The Hessian variant (listed per loss above); None: ``'exact'``
        (``'constant'`` for quantile).
    hess_floor : float, optional
        Lower bound of the per-sample Hessian before the sample weight; None:
        the variant's floor (1e-16 / 1e-6 for the ``'xgboost'`` variants),
        else no floor.
    out : tuple of ndarray, optional
        (grad, hess) buffers of the margins' shape, one float dtype, both C-
        or both F-contiguous; float32 buffers with float64 margins are
        allowed (LightGBM's layout).
    %(n_threads)s
    **params
        The loss's parameters (above).

    Returns
    -------
    grad, hess : ndarray
        The margins' shape; float of the margins (or of ``out``).
    value : float
        Weighted mean loss.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import gbdt
    >>> g, h, v = gbdt.grad_hess("logistic", [0.0, 1.0], np.array([0.0, 0.0]))
    >>> g, h, round(v, 6)
    (array([ 0.5, -0.5]), array([0.25, 0.25]), 0.693147)
    """
    plan = _Plan(loss, hessian, hess_floor, n_threads, params)
    return plan.run(y, margins, sample_weight, out, None)


def init_score(loss, y, sample_weight=None, **params):
    r"""The constant margin that minimises the weighted loss (where boosting starts).

    Closed forms: logistic :math:`\mathrm{logit}(\bar y_w)` (with class
    weights), softmax :math:`\log \bar t_k` (class frequencies, smoothed and
    weighted, centred), Poisson / Gamma / Tweedie :math:`\log \bar y_w`,
    squared log :math:`\mathrm{expm1}(\overline{\log(1+y)}_w)`, quantile the
    weighted quantile per level; the others (focal, Huber, pseudo-Huber,
    log-cosh, fair) by Newton steps safeguarded by bisection on the total
    gradient, to 1e-12.

    Parameters
    ----------
    loss : str
        One of ``fastloss.gbdt.LOSSES``.
    y : array_like
        Labels as for :func:`grad_hess`.
    sample_weight : array_like, optional
        (n,) non-negative weights.
    **params
        The loss's parameters; the softmax losses also take ``num_class``
        (default: the largest label + 1, or soft labels' columns).

    Returns
    -------
    float or ndarray
        A float, or an array of K values (softmax) or one per level (quantile).

    Examples
    --------
    >>> from fastloss import gbdt
    >>> round(float(gbdt.init_score("logistic", [0, 0, 0, 1])), 6)
    -1.098612
    >>> round(float(gbdt.init_score("poisson", [1.0, 2.0, 3.0])), 6)
    0.693147
    """
    num_class = params.pop("num_class", None)
    plan = _Plan(loss, None, None, None, params)
    t = np.asarray(y, dtype=np.float64)
    n = t.shape[0]
    w = plan.weights(sample_weight, n)
    wv = np.ones(n) if w is None else w
    if n == 0 or wv.sum() == 0:
        raise ValueError("init_score needs at least one row with a positive weight")
    if loss in _SOFTMAX:
        if t.ndim == 2:
            K = t.shape[1]
            tt = t
        else:
            K = int(num_class) if num_class is not None else int(t.max()) + 1
            bad = (t != np.floor(t)) | (t < 0) | (t >= K)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"y[{i}] = {t[i]!r} is not a class index in [0, {K})")
            tt = np.zeros((n, K))
            tt[np.arange(n), t.astype(np.int64)] = 1.0
            tt = (1 - plan.smooth) * tt + plan.smooth / K
        freq = (wv[:, None] * tt).sum(axis=0) / wv.sum()
        if loss == "softmax" and plan.cw is not None:
            freq = freq * plan.cw
        freq = np.maximum(freq / freq.sum(), 1e-15)
        c = np.log(freq)
        c -= c.mean()
        if loss == "softmax_focal":
            c = _newton_vector(plan, tt, wv, c, K)
        return c
    if t.ndim != 1:
        raise ValueError(f"y must be 1-D (n,) for loss {loss!r}, got shape {t.shape}")
    W = wv.sum()
    if loss == "logistic":
        pos = plan.b * np.dot(wv, t)
        neg = plan.a * np.dot(wv, 1.0 - t)
        return float(np.log(pos) - np.log(neg))
    if loss in ("poisson", "gamma", "tweedie"):
        return float(np.log(np.dot(wv, t) / W))
    if loss == "squared_log":
        return float(np.expm1(np.dot(wv, np.log1p(t)) / W))
    if loss == "quantile":
        order = np.argsort(t, kind="stable")
        cw = np.cumsum(wv[order])
        out = []
        for a in plan.col:
            i = int(np.searchsorted(cw, a * cw[-1], side="left"))
            out.append(t[order[min(i, n - 1)]])
        return np.array(out)
    return _newton_scalar(plan, t, wv)


def _newton_scalar(plan, t, w):
    """argmin_c sum_i w_i l(c, y_i): Newton on the total gradient, kept in a bracket."""
    def gh(c):
        g, h, _ = plan.run(t, np.full(t.shape, c), w, None, None)
        return float(np.sum(g)), float(np.sum(h))

    if plan.loss == "binary_focal":
        lo, hi = -40.0, 40.0
    else:
        lo, hi = float(t.min()), float(t.max())
    c = 0.5 * (lo + hi) if plan.loss != "binary_focal" else 0.0
    for _ in range(200):
        g, h = gh(c)
        if g > 0:
            hi = c
        else:
            lo = c
        step = c - g / h if h > 0 else None
        c = step if step is not None and lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < 1e-12 * max(1.0, abs(c)) or g == 0:
            break
    return float(c)


def _newton_vector(plan, t, w, c, K):
    """Softmax focal's optimal constant: damped Newton with the diagonal Hessian."""
    n = t.shape[0]
    y = np.argmax(t, axis=1).astype(np.float64)
    for _ in range(100):
        g, h, v = plan.run(y, np.broadcast_to(c, (n, K)).copy(), w, None, None)
        gs = g.sum(axis=0)
        hs = np.maximum(np.abs(h.sum(axis=0)), 1e-12)
        step = gs / hs
        c = c - step
        c -= c.mean()
        if np.max(np.abs(step)) < 1e-12:
            break
    return c
