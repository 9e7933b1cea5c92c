r"""Accumulators of the surface-distance metrics, reduced as MONAI's metrics.

:class:`HausdorffAccumulator`, :class:`SurfaceDistanceAccumulator` and
:class:`SurfaceDiceAccumulator` are fed label maps (with ``num_classes``)
or one-hot masks piece by piece, any number of images at a time; each
``update`` scores every image of the piece with the in-memory function
(:func:`fastloss.hausdorff_distance`, :func:`fastloss.average_surface_distance`,
:func:`fastloss.surface_dice`, ``reduction='none'``) and keeps its (N, C')
row of per-(image, class) values, as MONAI's ``Cumulative`` buffer does.
A surface metric of one image needs the whole image, so the pieces split
the batch, not the spatial axes.

``result(reduction)`` is MONAI's ``do_metric_reduction``: it returns
``(value, not_nans)``; NaN values (a class absent from both masks) are
left out of every mean and sum, ``inf`` (a class absent from one mask of
an image) is kept and makes the means it enters ``inf``, and a mean over
nothing is 0.  The sums are exactly rounded (``math.fsum``), so every
reduction but 'none', 'mean_channel' and 'sum_channel' (whose rows follow
the order of updates and merges) is bit-identical under any split of the
data and any order of merges.  State: one float64 per (image, class).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fastloss import distance as _dist
from fastloss.distance import _surface as _ds

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["HausdorffAccumulator", "SurfaceDiceAccumulator", "SurfaceDistanceAccumulator"]

REDUCTIONS = ("mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none")


def _fsum_rows(z):
    return np.array([math.fsum(r) for r in z], dtype=np.float64)


def reduce_rows(f, reduction):
    """``(value, not_nans)`` of MONAI's ``do_metric_reduction`` on (N, C') values."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    ok = ~np.isnan(f)
    if reduction == "none":
        return f, ok.astype(np.float64)
    z = np.where(ok, f, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if reduction in ("mean", "mean_channel", "sum_channel"):
            per_img, n_img = _fsum_rows(z), ok.sum(axis=1)
            if reduction == "sum_channel":
                return per_img, n_img
            means = np.where(n_img > 0, per_img / np.maximum(n_img, 1), 0.0)
            if reduction == "mean_channel":
                return means, n_img
            n = int((n_img > 0).sum())
            return np.float64(math.fsum(means) / n if n else 0.0), np.int64(n)
        if reduction == "sum":
            return np.float64(math.fsum(z.ravel())), np.int64(ok.sum())
        per_cls, n_cls = _fsum_rows(z.T), ok.sum(axis=0)
        if reduction == "sum_batch":
            return per_cls, n_cls
        return np.where(n_cls > 0, per_cls / np.maximum(n_cls, 1), 0.0), n_cls


class _SurfaceAccumulator:
    """Rows of per-(image, class) values of one surface metric."""

    _fn: Any = None
    _same: tuple = ()

    def __init__(self, num_classes, spacing, include_background):
        if num_classes is not None:
            num_classes = int(num_classes)
            if num_classes < 1:
                raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.spacing = None if spacing is None else tuple(np.atleast_1d(
            np.asarray(spacing, dtype=np.float64)).tolist())
        self.include_background = bool(include_background)
        self._rows = []

    def _options(self):
        """The metric's own keyword arguments (each subclass adds its options)."""
        return {}

    def update(self, pred: ArrayLike, target: ArrayLike, *,
               n_threads: int | None = None) -> None:
        """Score every image (first axis) of one piece and keep the (N, C') rows."""
        s = self._fn(pred, target, num_classes=self.num_classes, spacing=self.spacing,
                     include_background=self.include_background, reduction="none",
                     n_threads=n_threads, **self._options())
        if self._rows and s.shape[1] != self._rows[0].shape[1]:
            raise ValueError(f"pred must have {self._rows[0].shape[1]} used classes as the "
                             f"earlier updates, got {s.shape[1]}")
        self._rows.append(np.ascontiguousarray(s, dtype=np.float64))

    def merge(self, other):
        """Append another accumulator's rows after this one's; returns self."""
        if type(other) is not type(self):
            raise TypeError(f"can only merge a {type(self).__name__} with another, "
                            f"got {type(other).__name__}")
        for name in ("num_classes", "spacing", "include_background") + self._same:
            a, b = getattr(self, name), getattr(other, name)
            if not (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))):
                raise ValueError(f"cannot merge accumulators with different {name}: "
                                 f"{a!r} and {b!r}")
        if self._rows and other._rows and self._rows[0].shape[1] != other._rows[0].shape[1]:
            raise ValueError("cannot merge accumulators with different numbers of classes")
        self._rows.extend(r.copy() for r in other._rows)
        return self

    def values(self) -> NDArray[np.float64]:
        """The (images, classes) values kept so far (NaN: left out of reductions)."""
        if not self._rows:
            return np.empty((0, 0), dtype=np.float64)
        return np.concatenate(self._rows, axis=0)

    def result(self, reduction: str = "mean") -> tuple[Any, NDArray]:
        """``(value, not_nans)`` as MONAI's ``do_metric_reduction(values, reduction)``."""
        return reduce_rows(self.values(), reduction)

    def reset(self) -> None:
        """Drop every row (MONAI's ``reset``)."""
        self._rows = []

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        return (f"{type(self).__name__}(num_classes={self.num_classes}, "
                f"images={sum(len(r) for r in self._rows)})")


class HausdorffAccumulator(_SurfaceAccumulator):
    """Per-image Hausdorff distances (or HD95) gathered piece by piece, reduced as MONAI.

    MONAI's ``HausdorffDistanceMetric`` on NumPy arrays: each update calls
    :func:`fastloss.hausdorff_distance` (MONAI 1.6 semantics, with its
    documented difference: one empty mask with a ``percentile`` gives
    ``inf``, where MONAI gives NaN) and keeps the (N, C') rows.

    Parameters
    ----------
    num_classes : int, optional
        For label maps (N, d1, ...); None for one-hot masks (N, C, d1, ...).
    percentile : float in [0, 100], optional
        95 gives HD95.
    directed : bool
        Prediction-to-target only.
    spacing : float or sequence of floats, optional
        Voxel size per spatial axis.
    include_background : bool
        MONAI's default False.
    mode : {'monai', 'pooled'}
        As in :func:`fastloss.hausdorff_distance`.

    Notes
    -----
    ``result(reduction)`` returns ``(value, not_nans)`` as MONAI's
    ``do_metric_reduction`` (NaN left out, ``inf`` kept).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> from fastloss._distance_metrics import HausdorffAccumulator
    >>> t = np.zeros((2, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=2); p[1] = 0          # image 1: nothing predicted
    >>> acc = HausdorffAccumulator(num_classes=2)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):   # image 1's "prediction is all 0"
    ...     acc.update(p[:1], t[:1]); acc.update(p[1:], t[1:])
    >>> acc.values()
    array([[ 2.],
           [inf]])
    >>> acc.result("mean")
    (np.float64(inf), np.int64(2))
    """

    _fn = staticmethod(_dist.hausdorff_distance)
    _same = ("percentile", "directed", "mode")

    def __init__(self, num_classes: int | None = None, *, percentile: float | None = None,
                 directed: bool = False, spacing: float | Sequence[float] | None = None,
                 include_background: bool = False,
                 mode: Literal["monai", "pooled"] = "monai") -> None:
        super().__init__(num_classes, spacing, include_background)
        self.percentile = _ds._check_percentile(percentile)
        if mode not in ("monai", "pooled"):
            raise ValueError(f"mode must be 'monai' or 'pooled', got {mode!r}")
        self.directed, self.mode = bool(directed), mode

    def _options(self):
        return dict(percentile=self.percentile, directed=self.directed, mode=self.mode)


class SurfaceDistanceAccumulator(_SurfaceAccumulator):
    """Per-image average surface distances gathered piece by piece, reduced as MONAI.

    MONAI's ``SurfaceDistanceMetric``: each update calls
    :func:`fastloss.average_surface_distance` and keeps the (N, C') rows.

    Parameters
    ----------
    num_classes : int, optional
        For label maps (N, d1, ...); None for one-hot masks (N, C, d1, ...).
    symmetric : bool
        ASSD (both directions pooled) instead of the directed mean.
    spacing : float or sequence of floats, optional
        Voxel size per spatial axis.
    include_background : bool
        MONAI's default False.

    Notes
    -----
    ``result(reduction)`` returns ``(value, not_nans)`` as MONAI's
    ``do_metric_reduction``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss._distance_metrics import SurfaceDistanceAccumulator
    >>> t = np.zeros((2, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 1, axis=1); p[1] = t[1]        # image 1 predicted exactly
    >>> acc = SurfaceDistanceAccumulator(num_classes=2, symmetric=True)
    >>> acc.update(p[:1], t[:1]); acc.update(p[1:], t[1:])
    >>> acc.result("mean")
    (np.float64(0.25), np.int64(2))
    """

    _fn = staticmethod(_dist.average_surface_distance)
    _same = ("symmetric",)

    def __init__(self, num_classes: int | None = None, *, symmetric: bool = False,
                 spacing: float | Sequence[float] | None = None,
                 include_background: bool = False) -> None:
        super().__init__(num_classes, spacing, include_background)
        self.symmetric = bool(symmetric)

    def _options(self):
        return dict(symmetric=self.symmetric)


class SurfaceDiceAccumulator(_SurfaceAccumulator):
    """Per-image normalised surface Dice gathered piece by piece, reduced as MONAI.

    MONAI's ``SurfaceDiceMetric``: each update calls
    :func:`fastloss.surface_dice` and keeps the (N, C') rows.

    Parameters
    ----------
    class_thresholds : sequence of floats
        Tolerance of each used class, in the units of ``spacing``.
    num_classes : int, optional
        For label maps (N, d1, ...); None for one-hot masks (N, C, d1, ...).
    spacing : float or sequence of floats, optional
        Voxel size per spatial axis.
    include_background : bool
        MONAI's default False.
    use_subvoxels : bool
        As in :func:`fastloss.surface_dice`.

    Notes
    -----
    ``result(reduction)`` returns ``(value, not_nans)`` as MONAI's
    ``do_metric_reduction``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss._distance_metrics import SurfaceDiceAccumulator
    >>> t = np.zeros((2, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=1); p[1] = t[1]
    >>> acc = SurfaceDiceAccumulator([1.0], num_classes=2)
    >>> acc.update(p, t)
    >>> acc.values()
    array([[0.625],
           [1.   ]])
    >>> acc.result("mean_batch")
    (array([0.8125]), array([2]))
    """

    _fn = staticmethod(_dist.surface_dice)
    _same = ("class_thresholds", "use_subvoxels")

    def __init__(self, class_thresholds: ArrayLike, num_classes: int | None = None, *,
                 spacing: float | Sequence[float] | None = None,
                 include_background: bool = False, use_subvoxels: bool = False) -> None:
        super().__init__(num_classes, spacing, include_background)
        try:
            tau = np.atleast_1d(np.asarray(class_thresholds, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"class_thresholds must be a sequence of numbers, "
                            f"got {class_thresholds!r}") from None
        if tau.ndim != 1 or not np.all(np.isfinite(tau)) or np.any(tau < 0):
            raise ValueError(f"class_thresholds must be finite and >= 0, got {tau.tolist()}")
        self.class_thresholds = tuple(tau.tolist())
        self.use_subvoxels = bool(use_subvoxels)

    def update(self, pred: ArrayLike, target: ArrayLike, *,
               n_threads: int | None = None) -> None:
        """Score every image (first axis) of one piece and keep the (N, C') rows."""
        s = _dist.surface_dice(pred, target, list(self.class_thresholds),
                               num_classes=self.num_classes, spacing=self.spacing,
                               include_background=self.include_background,
                               use_subvoxels=self.use_subvoxels, reduction="none",
                               n_threads=n_threads)
        self._rows.append(np.ascontiguousarray(s, dtype=np.float64))
