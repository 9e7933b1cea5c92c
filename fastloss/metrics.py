r"""Mergeable accumulators: dataset-scale losses and metrics in O(C) / O(C^2) state.

An accumulator is fed the data piece by piece (``update``), pieces computed
elsewhere are folded in (``merge``), and ``result()`` gives the value the
in-memory function would give on all the data at once:

- :class:`ConfusionMatrix` holds the (C, C) int64 counts of
  :func:`fastloss.confusion_matrix`; counts are exact, so any split of the
  data and any merge order give bit-identical results.
- :class:`DiceAccumulator` holds the per-class soft-Dice sums
  :math:`\sum pg, \sum p, \sum p^2, \sum g, \sum g^2` (optionally with the
  cross-entropy sums of :func:`fastloss.dice_ce_loss` from the same pass)
  and gives the ``batch=True`` value of the soft Dice family.
- :class:`LossAccumulator` holds the sum of weighted losses and the sum of
  weights of a loss with a mean reduction.
- :class:`ScoreAccumulator` keeps the per-image hard Dice / IoU scores
  (MONAI's ``DiceMetric`` / ``MeanIoU`` buffer) and reduces them as MONAI's
  ``do_metric_reduction``: NaN scores (a class absent from the target) are
  left out of every mean and sum.

Each update calls the same kernels as the in-memory functions.  float64
sums are kept as double-double pairs (hi + lo, Knuth's two-sum), so adding
partial sums loses nothing and the result is within a few ulps of the
exactly rounded sum of the partial sums whatever the order of updates and
merges.  Accumulators are plain Python objects holding small NumPy arrays:
they pickle cheaply and can be sent between processes.

The ``*_sums`` functions at the end return the raw per-piece statistics
(float64) that :mod:`fastloss.dask` combines with a tree reduction.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fastloss import _catalogue as catalogue
from fastloss import _validate as V
from fastloss import segmentation as _seg
from fastloss._distance_metrics import (
    HausdorffAccumulator,
    SurfaceDiceAccumulator,
    SurfaceDistanceAccumulator,
    reduce_rows,
)
from fastloss.classification import _entropy as _cl
from fastloss.segmentation import _hard as _sh
from fastloss.segmentation import _prep as _sp

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["ConfusionMatrix", "DiceAccumulator", "HausdorffAccumulator", "LossAccumulator",
           "ScoreAccumulator", "SurfaceDiceAccumulator", "SurfaceDistanceAccumulator"]


# ------------------------------------------------------------ exact sums

def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


class _DD:
    """An array of float64 sums kept as hi + lo (double-double)."""

    __slots__ = ("hi", "lo")

    def __init__(self, shape):
        self.hi = np.zeros(shape, dtype=np.float64)
        self.lo = np.zeros(shape, dtype=np.float64)

    def add(self, value, lo=None):
        v = np.asarray(value, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            s, e = _two_sum(self.hi, v)
            e = e + self.lo + (0.0 if lo is None else lo)
            self.hi, self.lo = _two_sum(s, e)
        # non-finite values: the error terms are NaN; keep the plain sum
        bad = ~np.isfinite(self.hi)
        if np.any(bad):
            self.lo = np.where(bad, 0.0, self.lo)

    def merge(self, other):
        self.add(other.hi, other.lo)

    def value(self):
        return self.hi + self.lo

    def __getstate__(self):
        return (self.hi, self.lo)

    def __setstate__(self, state):
        self.hi, self.lo = state


def _check_same(a, b, what):
    if type(a) is not type(b):
        raise TypeError(f"can only merge a {type(a).__name__} with another, got {type(b).__name__}")
    for name in what:
        va, vb = getattr(a, name), getattr(b, name)
        same = np.array_equal(va, vb) if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray) \
            else va == vb
        if not same:
            raise ValueError(f"cannot merge accumulators with different {name}: {va!r} and {vb!r}")


# ------------------------------------------------------- raw statistics

def confusion_sums(pred, target, num_classes, ignore_index=None, per_image=False, n_threads=None):
    """(C, C) int64 counts, or (N, C, C) per image (first axis)."""
    if not per_image:
        return _seg.confusion_matrix(pred, target, num_classes, ignore_index, n_threads=n_threads)
    pr, tg = np.asarray(pred), np.asarray(target)
    V.same_shape(pr, tg, "pred", "target")
    if pr.ndim < 1:
        raise ValueError("per_image=True needs label maps with a leading image axis, got a scalar")
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    out = np.empty((pr.shape[0], C, C), dtype=np.int64)
    for n in range(pr.shape[0]):
        out[n] = _seg.confusion_matrix(pr[n], tg[n], C, ignore_index, n_threads=n_threads)
    return out


def overlap_from_confusion(cm, iou, empty_score=np.nan, ignore_empty=False):
    """Hard Dice (2TP / (|P| + |T|)) or IoU per class from (..., C, C) counts.

    ``ignore_empty``: NaN for a class absent from the target (MONAI's
    metrics); otherwise ``empty_score`` where the class is absent from both.
    """
    tp, st, sp = _sh._confusion_counts(cm)
    return _sh._score_from_counts(tp, st, sp, iou, ignore_empty, empty_score)


def soft_stats(input, target, *, activation="softmax", ignore_index=None, mode="overlap",
               ce=False, weight=None, sample_weight=None, n_threads=None):
    """Per-(image, class) sums (N, C, 5) and the cross-entropy sums (3,) of one piece.

    ``mode='overlap'``: I, P, P2, G, G2 (the Dice family); ``'sensspec'``:
    the sensitivity-specificity sums.  With ``ce=True`` the cross-entropy
    sum and its two denominators (label map, soft target) come from the
    same pass.  Uses the segmentation kernel's one-pass statistics.
    """
    p = _sp._prepare(input, target, activation if not ce else "softmax", ignore_index,
                      n_threads, "mean")
    cw = V.class_weight(weight, p.C) if ce else None
    sw = None
    if ce and sample_weight is not None:
        sw = V.broadcast_weight(sample_weight, (p.N,) + p.x.shape[2:]).reshape(-1)
    m = _sp._OVERLAP if mode == "overlap" else _sp._SENSSPEC
    # P2 and G2 too, so that squared_pred can be chosen at result time
    return _sp._stats(p, m, squared=True, do_ce=ce, cw=cw, sw=sw)


def ce_sums(input, target, weight=None, ignore_index=-100, label_smoothing=0.0,
            sample_weight=None, *, log_input=False, n_threads=None):
    """(sum of weighted losses, sum of weights) of cross_entropy / nll_loss, float64.

    One pass of the classification kernel; 'mean' of the in-memory call is
    the first divided by the second.
    """
    return _cl._ce(input, target, weight, ignore_index, _cl.SUMS, label_smoothing,
                   sample_weight, False, None, n_threads, log_input, allowed=(_cl.SUMS,))


# Element-wise losses with a mean reduction: how the denominator is formed.
# 'elem': one term per element of input; 'lastaxis': one per position
# without the last axis; 'axis': one per position without ``axis``.
# the element-wise losses of an input and a target (the gradient the input's
# alone), by how 'mean' counts their terms
ELEMENTWISE_MEAN = {n: catalogue.row(n).mean
                    for n in catalogue.names("elementwise", ("elem", "lastaxis", "axis"))
                    if len(catalogue.row(n).arrays) == 2 and len(catalogue.row(n).grads) == 1}


def _positions(x_shape, kind, axis):
    if kind == "elem":
        return tuple(x_shape), None
    ax = len(x_shape) - 1 if kind == "lastaxis" else axis % len(x_shape)
    return tuple(x_shape[:ax] + x_shape[ax + 1:]), ax


def loss_sums(name, input, target, *, sample_weight=None, reduction="mean", n_threads=None,
              **options):
    """(sum of weighted losses, sum of weights) of one piece for loss ``name``.

    cross_entropy / nll_loss call the kernel directly (float64 sums).  The
    element-wise losses call the public function with ``reduction='sum'``
    (its float64 sum rounded to the input's dtype) and form the denominator
    as that function does: the sum of ``sample_weight`` over the loss terms,
    their number, or with ``'batchmean'`` the batch size.
    """
    if name in ("cross_entropy", "nll_loss"):
        return ce_sums(input, target, sample_weight=sample_weight, n_threads=n_threads,
                       log_input=name == "nll_loss", **options)
    if name not in ELEMENTWISE_MEAN:
        raise ValueError(
            f"loss must be 'cross_entropy', 'nll_loss' or one of {sorted(ELEMENTWISE_MEAN)}, "
            f"got {name!r}"
        )
    import fastloss

    fn = getattr(fastloss, name)
    x_shape = np.shape(input)
    total = float(fn(input, target, reduction="sum", sample_weight=sample_weight,
                     n_threads=n_threads, **options))
    if reduction == "batchmean":
        return total, float(x_shape[0]) if len(x_shape) else 1.0
    pos, _ = _positions(x_shape, ELEMENTWISE_MEAN[name], options.get("axis", -1))
    if sample_weight is None:
        denom = float(np.prod(pos, dtype=np.int64))
    else:
        denom = float(np.sum(V.broadcast_weight(sample_weight, pos)))
    return total, denom


# --------------------------------------------------- soft losses from sums

_SOFT_LOSSES = ("dice_loss", "jaccard_loss", "dice_ce_loss", "tversky_loss",
                "focal_tversky_loss", "generalized_dice_loss", "sensitivity_specificity_loss")
# arguments of the soft losses that sums do not depend on
_NOT_OPTIONS = ("input", "target", "return_grad", "grad_out", "n_threads")


def _defaults(fn):
    """A loss's keyword options and their defaults, from its signature."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if k not in _NOT_OPTIONS}


def soft_value(loss, st, ce, options, dtype, reduction="mean"):
    """The value of a soft Dice-family loss from per-(image, class) sums.

    ``st`` is (N, C, 5) (per image) or (C, 5) (already summed over the
    batch, i.e. ``batch=True``); ``ce`` the (3,) cross-entropy sums
    (dice_ce_loss only).  Same arithmetic as fastloss.segmentation.
    """
    # The value comes from the kernel's seg_finish, which the losses use on
    # their own sums, so the value from merged sums is the in-memory value
    # by construction; the options' defaults are read from the loss's own
    # signature.
    fn = getattr(_seg, loss, None) if loss in _SOFT_LOSSES else None
    if fn is None:
        raise ValueError(f"unknown soft loss {loss!r}")
    o = _defaults(fn)
    if loss != "dice_ce_loss":
        del o["reduction"]  # given as the argument (dice_ce_loss: an option)
    # options that shaped the sums, not the value from them, are accepted for any loss
    unknown = set(options) - set(o) - {"activation", "ignore_index", "sample_weight"}
    if unknown:
        raise TypeError(f"{loss} got unexpected options {sorted(unknown)}")
    o.update(options)
    batch = bool(o["batch"]) or st.ndim == 2
    if st.ndim == 2:
        st = st[None]
    C = st.shape[1]
    c0 = 0 if (o["include_background"] or C == 1) else 1
    snr, sdr = _sp._check_smooth(o["smooth_nr"], o["smooth_dr"])
    if loss == "dice_ce_loss":
        reduction = options.get("reduction", reduction)
        V.check_reduction(reduction, ("mean", "sum"))
    else:
        V.check_reduction(reduction)
    weight = o.get("weight")
    kind, a, b, g, wtype, sq, jac = _sp._k.DICE, 0.0, 0.0, 0.0, 0, False, False
    if loss in ("dice_loss", "jaccard_loss", "dice_ce_loss"):
        jac = loss == "jaccard_loss" or bool(o.get("jaccard", False))
        sq = bool(o["squared_pred"])
        if loss == "dice_ce_loss":
            kind = _sp._k.DICE_CE
            w = _sp._dice_ce_weights(weight, C, c0)[1]
            a = V.check_scalar(o["lambda_dice"], "lambda_dice", 0.0)
            b = V.check_scalar(o["lambda_ce"], "lambda_ce", 0.0)
        else:
            w = _sp._dice_weight(weight, C - c0, C)
    elif loss in ("tversky_loss", "focal_tversky_loss"):
        kind = _sp._k.TVERSKY
        a = V.check_scalar(o["alpha"], "alpha", 0.0)
        b = V.check_scalar(o["beta"], "beta", 0.0)
        if loss == "focal_tversky_loss":
            g = V.check_scalar(o["gamma"], "gamma", 0.0, lo_open=True)
        w = _sp._dice_weight(weight, C - c0, C)
    elif loss == "generalized_dice_loss":
        kind, w = _sp._k.GENERALIZED, None
        wtype = _sp._k.WEIGHT_TYPES.get(o["w_type"]) if isinstance(o["w_type"], str) else None
        if wtype is None:
            raise ValueError(
                f"w_type must be 'square', 'simple' or 'uniform', got {o['w_type']!r}")
    else:  # sensitivity_specificity_loss
        kind = _sp._k.SENSSPEC
        a = V.check_scalar(o["r"], "r", 0.0, 1.0)
        w = _sp._dice_weight(weight, C - c0, C)
    ce = np.zeros(3) if ce is None else np.asarray(ce, dtype=np.float64)
    return _sp._k.seg_finish(kind=kind, st=np.ascontiguousarray(st, dtype=np.float64),
                             ce=ce[:3].copy(), labels=kind != _sp._k.DICE_CE or bool(ce[3]),
                             w=_sp._EMPTY if w is None else w, c0=c0, batch=batch, squared=sq,
                             jaccard=jac, wtype=wtype, snr=snr, sdr=sdr, a=a, b=b, g=g,
                             reduction=reduction, typenum=np.dtype(dtype).num, coef=False)


def _is_label_map(input, target):
    t = np.asarray(target) if not hasattr(target, "dtype") else target
    return not (tuple(t.shape) == tuple(np.shape(input))
                and (t.dtype.kind in "fb" or np.shape(input)[1] == 1))


# ------------------------------------------------------------ accumulators

class ConfusionMatrix:
    """Confusion matrix accumulated over any number of label-map pieces.

    Parameters
    ----------
    num_classes : int >= 1
    ignore_index : int, optional
        Positions whose target equals it are not counted.

    Notes
    -----
    ``update(pred, target)`` calls :func:`fastloss.confusion_matrix` (one
    pass) and adds its int64 counts; counts are exact, so any split of the
    data and any order of updates and merges give bit-identical results.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.metrics import ConfusionMatrix
    >>> a, b = ConfusionMatrix(3), ConfusionMatrix(3)
    >>> a.update(np.array([0, 1]), np.array([0, 1]))
    >>> b.update(np.array([1, 2]), np.array([2, 2]))
    >>> a.merge(b).result()
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = V.check_scalar(num_classes, "num_classes", 1, integer=True)
        if ignore_index is not None:
            ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
        self.ignore_index = ignore_index
        self.counts = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike, *, n_threads: int | None = None) -> None:
        """Count the (target, pred) pairs of one piece."""
        self.counts += _seg.confusion_matrix(pred, target, self.num_classes, self.ignore_index,
                                             n_threads=n_threads)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another accumulator's counts; returns self."""
        _check_same(self, other, ("num_classes", "ignore_index"))
        self.counts += other.counts
        return self

    def result(self) -> NDArray[np.int64]:
        """The (C, C) int64 counts (rows = target, columns = pred), a copy."""
        return self.counts.copy()

    def dice(self, empty_score: float = np.nan, *,
            ignore_empty: bool = True) -> NDArray[np.float64]:
        """Per-class hard Dice, as :func:`fastloss.dice_score` on all the data.

        ``ignore_empty=True`` (default, MONAI's): NaN for a class absent from
        the target; False: ``empty_score`` for a class absent from both.
        """
        return overlap_from_confusion(self.counts, False, empty_score, ignore_empty)

    def iou(self, empty_score: float = np.nan, *,
            ignore_empty: bool = True) -> NDArray[np.float64]:
        """Per-class hard IoU, as :func:`fastloss.iou_score` on all the data.

        ``ignore_empty=True`` (default, MONAI's): NaN for a class absent from
        the target; False: ``empty_score`` for a class absent from both.
        """
        return overlap_from_confusion(self.counts, True, empty_score, ignore_empty)

    def __repr__(self):
        return f"ConfusionMatrix(num_classes={self.num_classes}, n={int(self.counts.sum())})"


class DiceAccumulator:
    """Per-class soft-Dice sums accumulated over pieces of a dataset.

    Holds, per class, :math:`\\sum pg, \\sum p, \\sum p^2, \\sum g, \\sum g^2`
    over every position seen (the ``batch=True`` statistics of the soft
    Dice family), and with ``ce=True`` the cross-entropy sum and weight sum
    of :func:`fastloss.dice_ce_loss`, from the same kernel pass.

    Parameters
    ----------
    activation : {'softmax', 'sigmoid', None}
        Applied to the input on the fly (``ce=True`` needs 'softmax').
    ignore_index : int, optional
        Label-map positions holding it are excluded from every sum.
    ce : bool
        Also accumulate the cross-entropy of :func:`fastloss.dice_ce_loss`.
    weight : array_like (C,), optional
        Class weights of the cross-entropy (``ce=True`` only).

    Notes
    -----
    ``update(input, target, sample_weight=None)`` takes logits
    ``(N, C, *spatial)`` and a label map ``(N, *spatial)`` or soft masks, any piece of the
    batch or spatial axes.  ``result(loss='dice_loss', **options)`` gives the
    value of ``fastloss.<loss>(all_input, all_target, batch=True,
    **options)`` for dice_loss, jaccard_loss, tversky_loss,
    focal_tversky_loss, generalized_dice_loss and (``ce=True``)
    dice_ce_loss; ``per_class(...)`` the (C,) per-class losses ('none').
    State: 5*C (+3) float64 double-double sums.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> from fastloss.metrics import DiceAccumulator
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(2, 3, 8, 8)), rng.integers(0, 3, (2, 8, 8))
    >>> acc = DiceAccumulator()
    >>> acc.update(x[:1], y[:1]); acc.update(x[1:], y[1:])
    >>> bool(np.isclose(acc.result("dice_loss"), fastloss.dice_loss(x, y, batch=True), rtol=1e-12))
    True
    """

    def __init__(self, *, activation: Literal["softmax", "sigmoid"] | None = "softmax",
                 ignore_index: int | None = None, ce: bool = False,
                 weight: ArrayLike | float | None = None) -> None:
        if activation not in _sp._ACT:
            raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
        if ce and activation != "softmax":
            raise ValueError(f"ce=True needs activation='softmax', got {activation!r}")
        if ignore_index is not None:
            ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
        self.activation, self.ignore_index, self.ce = activation, ignore_index, bool(ce)
        self.weight = None if weight is None else V.as_float(weight, "weight", dtype=np.float64)
        self.num_classes = None
        self.dtype = None
        self.label_map = None
        self._st = None
        self._ce = _DD(3)

    def update(self, input: ArrayLike, target: ArrayLike, *,
               sample_weight: ArrayLike | None = None, n_threads: int | None = None) -> None:
        """Add the sums of one piece (any images, any spatial block)."""
        st, ce = soft_stats(input, target, activation=self.activation,
                            ignore_index=self.ignore_index, ce=self.ce, weight=self.weight,
                            sample_weight=sample_weight, n_threads=n_threads)
        C = st.shape[1]
        if self._st is None:
            self.num_classes, self._st = C, _DD((C, 5))
        elif C != self.num_classes:
            raise ValueError(f"input must have {self.num_classes} classes (axis 1) as the "
                             f"earlier updates, got {C}")
        dt = V.as_float(np.empty(0, dtype=np.asarray(input).dtype), "input").dtype
        self.dtype = dt if self.dtype is None else np.promote_types(self.dtype, dt)
        self.label_map = _is_label_map(input, target)
        self._st.add(st.sum(axis=0))
        self._ce.add(ce)

    def merge(self, other: DiceAccumulator) -> DiceAccumulator:
        """Fold in another accumulator's sums; returns self."""
        _check_same(self, other, ("activation", "ignore_index", "ce"))
        if other._st is None:
            return self
        if self._st is None:
            self.num_classes, self._st = other.num_classes, _DD((other.num_classes, 5))
            self.label_map = other.label_map
        elif other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge accumulators with {self.num_classes} and "
                             f"{other.num_classes} classes")
        self.dtype = (other.dtype if self.dtype is None
                      else np.promote_types(self.dtype, other.dtype))
        self._st.merge(other._st)
        self._ce.merge(other._ce)
        return self

    def sums(self) -> NDArray[np.float64]:
        """The (C, 5) float64 sums I, P, P2, G, G2 per class."""
        if self._st is None:
            raise ValueError("no data: call update() first")
        return self._st.value()

    def result(self, loss: str = "dice_loss", reduction: Literal["mean", "sum", "none"] = "mean",
               **options: Any) -> np.floating[Any] | NDArray[np.floating[Any]]:
        """Value of ``fastloss.<loss>(..., batch=True, **options)`` on all the data."""
        names = ("dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
                 "generalized_dice_loss", "dice_ce_loss")
        if loss not in names:
            raise ValueError(f"loss must be one of {list(names)}, got {loss!r}")
        if loss == "dice_ce_loss" and not self.ce:
            raise ValueError("dice_ce_loss needs DiceAccumulator(ce=True)")
        ce = np.append(self._ce.value(), 1.0 if self.label_map else 0.0)
        return soft_value(loss, self.sums(), ce, options, self.dtype, reduction)

    def per_class(self, loss: str = "dice_loss", **options: Any) -> NDArray[np.floating[Any]]:
        """(C',) per-class losses, ``reduction='none'``."""
        return self.result(loss, reduction="none", **options)

    def __repr__(self):
        return f"DiceAccumulator(num_classes={self.num_classes}, ce={self.ce})"


class LossAccumulator:
    """Sum of weighted losses and sum of weights of a loss with a mean reduction.

    Parameters
    ----------
    loss : str or callable
        ``'cross_entropy'``, ``'nll_loss'`` or an element-wise loss of
        fastloss (``'mse_loss'``, ``'binary_cross_entropy_with_logits'``,
        ``'multilabel_soft_margin_loss'``, ``'js_div'``, ...), or the
        function itself.
    reduction : {'mean', 'batchmean'}
        ``'batchmean'`` for kl_div only.
    **options
        Passed to the loss on every update (``weight``, ``ignore_index``,
        ``label_smoothing``, ``delta``, ...).

    Notes
    -----
    ``update(input, target, sample_weight=None)`` adds the piece's sum of
    weighted losses and sum of weights; ``result()`` is their ratio, the
    'mean' of the loss over all the data (NaN when no weight was seen).
    cross_entropy and nll_loss take both float64 sums from one kernel
    pass.  The element-wise losses take the piece's ``reduction='sum'``
    value, which the public function rounds to the input's dtype (exact for
    float64; float32 pieces add up to ~1e-7 relative).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> from fastloss.metrics import LossAccumulator
    >>> x, y = np.array([[2.0, 0.5], [0.1, 1.0]]), np.array([0, 1])
    >>> acc = LossAccumulator("cross_entropy")
    >>> acc.update(x[:1], y[:1]); acc.update(x[1:], y[1:])
    >>> bool(acc.result() == fastloss.cross_entropy(x, y))
    True
    """

    def __init__(self, loss: str | Callable[..., Any] = "cross_entropy",
                 reduction: Literal["mean", "batchmean"] = "mean", **options: Any) -> None:
        name = getattr(loss, "__name__", loss)
        if name not in ("cross_entropy", "nll_loss") and name not in ELEMENTWISE_MEAN:
            raise ValueError(
                f"loss must be 'cross_entropy', 'nll_loss' or one of {sorted(ELEMENTWISE_MEAN)}, "
                f"got {loss!r}"
            )
        V.check_reduction(reduction, ("mean", "batchmean") if name == "kl_div" else ("mean",))
        self.loss, self.reduction, self.options = name, reduction, options
        self.dtype = None
        self._sums = _DD(2)

    def update(self, input: ArrayLike, target: ArrayLike, *,
               sample_weight: ArrayLike | None = None, n_threads: int | None = None) -> None:
        """Add one piece's sum of weighted losses and sum of weights."""
        total, denom = loss_sums(self.loss, input, target, sample_weight=sample_weight,
                                 reduction=self.reduction, n_threads=n_threads, **self.options)
        dt = V.as_float(np.empty(0, dtype=np.asarray(input).dtype), "input").dtype
        self.dtype = dt if self.dtype is None else np.promote_types(self.dtype, dt)
        self._sums.add(np.array([total, denom]))

    def merge(self, other: LossAccumulator) -> LossAccumulator:
        """Fold in another accumulator's sums; returns self."""
        _check_same(self, other, ("loss", "reduction"))
        if self.options.keys() != other.options.keys() or any(
                not np.array_equal(self.options[k], other.options[k]) for k in self.options):
            raise ValueError("cannot merge accumulators with different loss options")
        if other.dtype is not None:
            self.dtype = other.dtype if self.dtype is None else np.promote_types(self.dtype,
                                                                                 other.dtype)
        self._sums.merge(other._sums)
        return self

    @property
    def total(self) -> float:
        """Sum of the weighted losses seen (float64)."""
        return float(self._sums.value()[0])

    @property
    def weight_sum(self) -> float:
        """Sum of the weights seen: the 'mean' denominator (float64)."""
        return float(self._sums.value()[1])

    def result(self) -> np.floating[Any]:
        """total / weight_sum, a NumPy scalar of the inputs' dtype."""
        return V.reduce_total(self.total, self.weight_sum, "mean",
                              self.dtype if self.dtype is not None else np.float64)

    def __repr__(self):
        return (f"LossAccumulator({self.loss!r}, total={self.total!r}, "
                f"weight_sum={self.weight_sum!r})")


class ScoreAccumulator:
    """Per-image hard Dice or IoU scores gathered piece by piece, reduced as MONAI's metrics.

    Parameters
    ----------
    num_classes : int >= 1
    metric : {'dice', 'iou'}
        :func:`fastloss.dice_score` or :func:`fastloss.iou_score`.
    include_background : bool
        False leaves class 0 out (MONAI's ``include_background``).
    ignore_index : int, optional
        Label-map positions whose target equals it are not counted.
    ignore_empty : bool
        True (MONAI's default): a class absent from an image's target
        scores NaN; False: 0 when predicted there, ``empty_score`` when absent
        from both.
    empty_score : float
        With ``ignore_empty=False`` (1.0 is MONAI's value).
    multilabel : bool
        ``pred`` / ``target`` are (N, C, ...) masks, as in :func:`fastloss.dice_score`.

    Notes
    -----
    ``update(pred, target)`` scores each image (first axis) with one call of
    :func:`fastloss.dice_score` / :func:`fastloss.iou_score`
    (``per_image=True``) and keeps the (N, C) rows, O(images x classes) as
    MONAI's metric buffer.  ``result(reduction)`` is MONAI's
    ``do_metric_reduction`` and returns ``(value, not_nans)``: NaN scores
    are left out ('mean': the mean over each image's non-NaN classes, then
    over the images that have one; 'mean_batch': per class over images;
    'mean_channel': per image over classes; a mean over nothing is 0, as
    MONAI).  The sums are exactly rounded (``math.fsum``), so every
    reduction but 'none', 'mean_channel' and 'sum_channel' (whose rows
    follow the order of updates and merges) is bit-identical under any
    split and merge order.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.metrics import ScoreAccumulator
    >>> acc = ScoreAccumulator(3)
    >>> acc.update(np.array([[0, 1, 1, 2]]), np.array([[0, 1, 2, 2]]))
    >>> acc.update(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 1, 1]]))   # no class 2: NaN
    >>> acc.scores()
    array([[1.        , 0.66666667, 0.66666667],
           [1.        , 1.        ,        nan]])
    >>> value, not_nans = acc.result("mean_batch")
    >>> value, not_nans
    (array([1.        , 0.83333333, 0.66666667]), array([2, 2, 1]))
    """

    def __init__(self, num_classes: int, metric: Literal["dice", "iou"] = "dice", *,
                 include_background: bool = True, ignore_index: int | None = None,
                 ignore_empty: bool = True, empty_score: float = np.nan,
                 multilabel: bool = False) -> None:
        self.num_classes = V.check_scalar(num_classes, "num_classes", 1, integer=True)
        if metric not in ("dice", "iou"):
            raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
        if ignore_index is not None:
            ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
        self.metric = metric
        self.include_background = bool(include_background)
        self.ignore_index = ignore_index
        self.ignore_empty = bool(ignore_empty)
        self.empty_score = float(empty_score)
        self.multilabel = bool(multilabel)
        self._rows = []

    def update(self, pred: ArrayLike, target: ArrayLike, *, n_threads: int | None = None) -> None:
        """Score each image (first axis) of one piece and keep the rows."""
        f = _seg.dice_score if self.metric == "dice" else _seg.iou_score
        s = f(pred, target, self.num_classes, ignore_index=self.ignore_index, per_image=True,
              ignore_empty=self.ignore_empty, empty_score=self.empty_score,
              multilabel=self.multilabel, n_threads=n_threads)
        if not self.include_background and self.num_classes > 1:
            s = s[:, 1:]
        self._rows.append(np.ascontiguousarray(s, dtype=np.float64))

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        """Append another accumulator's rows after this one's; returns self."""
        _check_same(self, other, ("num_classes", "metric", "include_background",
                                  "ignore_index", "ignore_empty", "multilabel"))
        if not (self.empty_score == other.empty_score
                or (math.isnan(self.empty_score) and math.isnan(other.empty_score))):
            raise ValueError("cannot merge accumulators with different empty_score: "
                             f"{self.empty_score!r} and {other.empty_score!r}")
        self._rows.extend(r.copy() for r in other._rows)
        return self

    def scores(self) -> NDArray[np.float64]:
        """The (images, classes) scores kept so far (NaN: left out of reductions)."""
        C = self.num_classes - (0 if self.include_background or self.num_classes == 1 else 1)
        if not self._rows:
            return np.empty((0, C), dtype=np.float64)
        return np.concatenate(self._rows, axis=0)

    def result(self, reduction: str = "mean") -> tuple[Any, NDArray]:
        """``(value, not_nans)`` as MONAI's ``do_metric_reduction(scores, reduction)``."""
        return reduce_rows(self.scores(), reduction)

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        return (f"ScoreAccumulator(num_classes={self.num_classes}, metric={self.metric!r}, "
                f"images={sum(len(r) for r in self._rows)})")

