"""The :class:`Objective`: one plan in the calling conventions of XGBoost,
LightGBM and CatBoost (and their scikit-learn estimators), with buffers
reused across rounds."""

import math

import numpy as np

from fastloss.gbdt._plan import _SOFTMAX, _Plan, init_score


class _CatBoostObjective:
    """CatBoost's user objective: calc_ders_range / calc_ders_multi, derivatives negated."""

    def __init__(self, obj):
        self._obj = obj

    def calc_ders_range(self, approxes, targets, weights):
        # CatBoost calls this from several threads at once (the kernel drops
        # the GIL): fresh outputs per call, never the objective's shared buffers
        f = np.asarray(approxes, dtype=np.float64)
        g, h, _ = self._obj._plan.run(targets, f, weights, None, None)
        res = np.empty((f.shape[0], 2), dtype=np.float64)
        np.negative(g, out=res[:, 0])
        np.negative(h, out=res[:, 1])
        return res

    def calc_ders_multi(self, approx, target, weight):
        # one Python call per object: no fast path exists for this API
        f = np.asarray(approx, dtype=np.float64)[None, :]
        g, h, _ = self._obj._plan.run(np.array([target], dtype=np.float64), f,
                                      None if weight is None else np.array([weight]), None, 1)
        return list(-g[0]), np.diag(-h[0]).tolist()


class _CatBoostMetric:
    """CatBoost's user metric: the objective's weighted mean loss."""

    def __init__(self, obj):
        self._obj = obj

    def is_max_optimal(self):
        return False

    def evaluate(self, approxes, target, weight):
        f = np.asarray(approxes, dtype=np.float64)
        f = f[0] if f.shape[0] == 1 else f.T
        t = np.asarray(target, dtype=np.float64)
        _, _, v = self._obj._plan.run(t, f, weight, None, None, value_only=True)
        W = float(np.sum(weight)) if weight is not None else float(t.shape[0])
        return v * W, W

    def get_final_error(self, error, weight):
        return error / weight if weight != 0 else math.nan


class Objective:
    r"""A boosting loss with adapters for XGBoost, LightGBM, CatBoost and scikit-learn.

    Holds the loss, its parameters (checked once) and output buffers that are
    reused from one round to the next (no allocation per round; a returned
    gradient is overwritten by the next call of the same adapter).

    ============================  ==============================================
    ``obj.xgboost``               ``xgb.train(..., obj=obj.xgboost)``: (predt, dtrain)
    ``obj.xgboost_metric``        ``custom_metric=``: (predt, dtrain) -> (name, value)
    ``obj.xgboost_sklearn``       ``XGBClassifier(objective=...)``
    ``obj.lightgbm``              ``lgb.train({"objective": obj.lightgbm, ...})``
    ``obj.lightgbm_metric``       ``feval=``: -> (name, value, False)
    ``obj.lightgbm_sklearn``      ``LGBMRegressor(objective=...)``
    ``obj.catboost``              ``loss_function=`` (calc_ders_range, negated)
    ``obj.catboost_metric``       ``eval_metric=`` (evaluate, get_final_error)
    ============================  ==============================================

    The gradients go out float32 in the consumer's order (C for XGBoost,
    Fortran for LightGBM, which then uses them without a copy).  One
    Objective serves one training at a time: two trainings running
    concurrently in threads need an Objective each (the buffers are shared).  CatBoost's
    multiclass API calls the objective once per row (``calc_ders_multi``):
    it works, but no kernel can make it fast.

    Parameters
    ----------
    loss : str
        One of ``fastloss.gbdt.LOSSES``.
    hessian : str, optional
        Hessian variant, as in :func:`grad_hess`.
    hess_floor : float, optional
        As in :func:`grad_hess`.
    n_threads : int, optional
        Threads per call.
    **params
        The loss's parameters (see :func:`grad_hess`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import gbdt
    >>> obj = gbdt.Objective("softmax_focal", gamma=2.0, alpha=[0.25, 0.75, 0.5])
    >>> g, h = obj.xgboost_sklearn(np.array([0.0, 2.0]), np.zeros((2, 3), np.float32))
    >>> g.dtype, g.shape, bool(g[0, 0] < 0 < g[0, 1])
    (dtype('float32'), (2, 3), True)
    """

    def __init__(self, loss, *, hessian=None, hess_floor=None, n_threads=None, **params):
        self._plan = _Plan(loss, hessian, hess_floor, n_threads, params)
        self._bufs = {}
        self._labels = {}
        self.loss = loss

    @property
    def name(self):
        return self.loss

    def __repr__(self):
        ps = ", ".join(f"{k}={v!r}" for k, v in self._plan.params.items())
        return f"Objective({self.loss!r}, hessian={self._plan.hessian!r}" + (
            f", {ps})" if ps else ")")

    def grad_hess(self, y, margins, sample_weight=None, out=None):
        """:func:`grad_hess` with this objective's loss and parameters.

        Parameters
        ----------
        y : array_like
            Labels.
        margins : array_like
            Raw scores.
        sample_weight : array_like, optional
            Weights.
        out : tuple of ndarray, optional
            (grad, hess) buffers.

        Returns
        -------
        grad, hess : ndarray
        value : float

        Examples
        --------
        >>> from fastloss import gbdt
        >>> g, h, v = gbdt.Objective("huber", delta=1.0).grad_hess([0.0], [3.0])
        >>> float(g[0]), float(h[0]), float(v)
        (1.0, 0.0, 2.5)
        """
        return self._plan.run(y, margins, sample_weight, out, None)

    def init_score(self, y, sample_weight=None, num_class=None):
        """:func:`init_score` with this objective's loss and parameters.

        Parameters
        ----------
        y : array_like
            Labels.
        sample_weight : array_like, optional
            Weights.
        num_class : int, optional
            Classes (softmax losses).

        Returns
        -------
        float or ndarray

        Examples
        --------
        >>> from fastloss import gbdt
        >>> round(float(gbdt.Objective("gamma").init_score([1.0, 1.0])), 6)
        0.0
        """
        extra = {"num_class": num_class} if self.loss in _SOFTMAX else {}
        params = {k: v for k, v in self._plan.params.items()}
        return init_score(self.loss, y, sample_weight, **params, **extra)

    # ------------------------------------------------------------ plumbing

    def _buffers(self, key, m, order):
        """(grad, hess) float32 buffers of m's shape in `order`, kept per adapter."""
        b = self._bufs.get(key)
        if b is None or b[0].shape != m.shape or not b[0].flags[
                "C_CONTIGUOUS" if order == "C" else "F_CONTIGUOUS"]:
            b = (np.empty(m.shape, np.float32, order=order),
                 np.empty(m.shape, np.float32, order=order))
            self._bufs[key] = b
        return b

    def _label(self, key, y, dtype):
        """Labels in the margins' dtype, converted once per label array."""
        if y is None:
            raise ValueError("the training data has no labels")
        c = self._labels.get(key)
        if c is not None and c[0] is y:
            return c[1]
        t = np.asarray(y)
        conv = t if t.dtype == dtype else t.astype(dtype)
        self._labels[key] = (y, conv)
        return conv

    def _run(self, y, margins, weight, key, order="C", value_only=False):
        m = self._plan.margins(margins)
        if self._plan.loss in _SOFTMAX and m.ndim == 1 and np.ndim(y) == 1 and \
                m.shape[0] != np.shape(y)[0]:
            n = np.shape(y)[0]
            if m.shape[0] % n:
                raise ValueError(f"margins has {m.shape[0]} values, not n * K for "
                                 f"n = {n} labels")
            m = m.reshape((n, m.shape[0] // n), order=order)
        t = self._label(key, y, m.dtype)
        if weight is not None and np.size(weight) == 0:
            weight = None
        if value_only:
            return self._plan.run(t, m, weight, None, None, value_only=True)
        out = self._buffers(key, m, order)
        return self._plan.run(t, m, weight, out, None, own_out=True)

    # ------------------------------------------------------------ XGBoost

    def xgboost(self, predt, dtrain):
        """XGBoost's native objective: ``xgb.train(params, dtrain, obj=obj.xgboost)``.

        Parameters
        ----------
        predt : ndarray
            Margins, (n,) or (n, K) float32, C order.
        dtrain : xgboost.DMatrix
            Labels and weights are read from it.

        Returns
        -------
        grad, hess : ndarray
            float32, the margins' shape, C order (reused buffers).

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> class D:  # what xgboost.DMatrix offers
        ...     def get_label(self): return np.array([1.0], np.float32)
        ...     def get_weight(self): return np.array([], np.float32)
        >>> g, h = gbdt.Objective("logistic").xgboost(np.zeros(1, np.float32), D())
        >>> float(g[0]), float(h[0])
        (-0.5, 0.25)
        """
        g, h, _ = self._run(dtrain.get_label(), predt, dtrain.get_weight(), "xgb")
        return g, h

    def xgboost_metric(self, predt, dtrain):
        """XGBoost's ``custom_metric``: the weighted mean loss of raw margins.

        Parameters
        ----------
        predt : ndarray
            Margins (XGBoost passes raw margins when a custom objective is used).
        dtrain : xgboost.DMatrix
            Evaluation data.

        Returns
        -------
        name : str
        value : float

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> class D:
        ...     def get_label(self): return np.array([1.0], np.float32)
        ...     def get_weight(self): return np.array([], np.float32)
        >>> name, v = gbdt.Objective("logistic").xgboost_metric(np.zeros(1, np.float32), D())
        >>> name, round(v, 6)
        ('logistic', 0.693147)
        """
        _, _, v = self._run(dtrain.get_label(), predt, dtrain.get_weight(), "xgb_metric",
                            value_only=True)
        return self.loss, float(v)

    def xgboost_sklearn(self, y_true, y_pred, *, sample_weight=None):
        """``XGBClassifier(objective=obj.xgboost_sklearn)`` / ``XGBRegressor``.

        Parameters
        ----------
        y_true : ndarray
            Labels.
        y_pred : ndarray
            Margins, (n,) or (n, K).
        sample_weight : ndarray, optional
            Weights (XGBoost passes them by this name).

        Returns
        -------
        grad, hess : ndarray
            float32, C order.

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> g, h = gbdt.Objective("poisson").xgboost_sklearn(np.array([1.0]), np.zeros(1))
        >>> float(g[0]), float(h[0])
        (0.0, 1.0)
        """
        g, h, _ = self._run(y_true, y_pred, sample_weight, "xgb_sk")
        return g, h

    # ----------------------------------------------------------- LightGBM

    def lightgbm(self, preds, train_data):
        """LightGBM's native objective: ``lgb.train({"objective": obj.lightgbm}, ...)``.

        Parameters
        ----------
        preds : ndarray
            Margins, (n,) or (n, K) float64 (Fortran-ordered for K > 1).
        train_data : lightgbm.Dataset
            Labels and weights are read from it.

        Returns
        -------
        grad, hess : ndarray
            float32 in Fortran order: LightGBM takes them without a copy.

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> class D:  # what lightgbm.Dataset offers
        ...     def get_label(self): return np.array([0.0, 1.0])
        ...     def get_weight(self): return None
        >>> g, h = gbdt.Objective("softmax").lightgbm(np.zeros((2, 2), order="F"), D())
        >>> g.flags.f_contiguous, g.tolist()
        (True, [[-0.5, 0.5], [0.5, -0.5]])
        """
        g, h, _ = self._run(train_data.get_label(), preds, train_data.get_weight(), "lgb",
                            order="F")
        return g, h

    def lightgbm_metric(self, preds, eval_data):
        """LightGBM's ``feval``: ``(name, weighted mean loss, is_higher_better=False)``.

        Parameters
        ----------
        preds : ndarray
            Raw margins.
        eval_data : lightgbm.Dataset
            Evaluation data.

        Returns
        -------
        name : str
        value : float
        is_higher_better : bool

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> class D:
        ...     def get_label(self): return np.array([2.0])
        ...     def get_weight(self): return None
        >>> gbdt.Objective("huber").lightgbm_metric(np.zeros(1), D())
        ('huber', 1.5, False)
        """
        _, _, v = self._run(eval_data.get_label(), preds, eval_data.get_weight(),
                            "lgb_metric", order="F", value_only=True)
        return self.loss, float(v), False

    def lightgbm_sklearn(self, y_true, y_pred, weight=None):
        """``LGBMRegressor(objective=obj.lightgbm_sklearn)`` / ``LGBMClassifier``.

        Parameters
        ----------
        y_true : ndarray
            Labels.
        y_pred : ndarray
            Margins, (n,) or (n, K) Fortran-ordered float64.
        weight : ndarray, optional
            Weights (LightGBM passes them as the third positional argument).

        Returns
        -------
        grad, hess : ndarray
            float32, Fortran order.

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> g, h = gbdt.Objective("fair", c=1.0).lightgbm_sklearn(np.zeros(1), np.ones(1))
        >>> float(g[0]), float(h[0])
        (0.5, 0.25)
        """
        g, h, _ = self._run(y_true, y_pred, weight, "lgb_sk", order="F")
        return g, h

    # ----------------------------------------------------------- CatBoost

    @property
    def catboost(self):
        """CatBoost's ``loss_function=`` object.

        ``calc_ders_range(approxes, targets, weights)`` returns an (n, 2)
        float64 array of (-g, -h): CatBoost maximises, so it takes the
        derivatives of the negated loss.  Multiclass / multi-target models
        call ``calc_ders_multi`` once per row.

        Returns
        -------
        object
            With ``calc_ders_range`` and ``calc_ders_multi``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastloss import gbdt
        >>> gbdt.Objective("logistic").catboost.calc_ders_range([0.0], [1.0], None).tolist()
        [[0.5, -0.25]]
        """
        return _CatBoostObjective(self)

    @property
    def catboost_metric(self):
        """CatBoost's ``eval_metric=`` object (``evaluate``, ``get_final_error``).

        Returns
        -------
        object
            The weighted mean loss of raw approxes; lower is better.

        Examples
        --------
        >>> from fastloss import gbdt
        >>> m = gbdt.Objective("poisson").catboost_metric
        >>> m.get_final_error(*m.evaluate([[0.0, 0.0]], [1.0, 1.0], None))
        1.0
        """
        return _CatBoostMetric(self)
