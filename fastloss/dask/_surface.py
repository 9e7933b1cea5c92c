"""fastloss.dask: the surface metrics, one task per block of whole images."""

import functools
import warnings

import numpy as np

from fastloss import _validate as V
from fastloss import distance as _dist
from fastloss._docs import doc
from fastloss.dask._graph import (
    _aligned,
    _da,
    _finish,
    _input,
)
from fastloss.distance import _surface as _ds
from fastloss.distance import _transform as _dt

# ------------------------------------------------------------ surface metrics

def _whole_images(x, name, rechunk):
    """x with every axis but the first (images) in one chunk."""
    axes = [ax for ax in range(1, x.ndim) if len(x.chunks[ax]) > 1]
    if not axes:
        return x
    if not rechunk:
        raise ValueError(
            f"{name} is chunked along axes {axes} (chunks {x.chunks}); a surface metric "
            f"needs each image whole: rechunk it with {name}.rechunk({{{axes[0]}: -1, ...}}) "
            "(chunks along the first axis only) or pass rechunk=True"
        )
    from dask.array import PerformanceWarning

    warnings.warn(
        f"{name} is chunked along axes {axes} (chunks {x.chunks}); rechunking each image "
        "to one chunk copies the data through the graph. Store the images whole (chunks "
        "along the first axis only) to avoid this.",
        PerformanceWarning, stacklevel=4,
    )
    return x.rechunk({ax: -1 for ax in range(1, x.ndim)})


def _surface_block(p, t, *, fn, kw):
    return getattr(_dist, fn)(p, t, reduction="none", **kw)


def _surface(fn, pred, target, num_classes, include_background, reduction, rechunk, kw):
    V.check_reduction(reduction, _dt._METRIC_REDUCTIONS)
    p = _input(pred, "pred")
    t, raw = _aligned(target, p.shape, p.chunks, "target", "pred")
    if t is None:
        raise ValueError(f"target must have the same shape as pred {p.shape}, "
                         f"got {tuple(np.shape(raw))}")
    if num_classes is None:
        if p.ndim < 3:
            raise ValueError(f"pred must be one-hot (N, C, *spatial) or a label map with "
                             f"num_classes, got shape {p.shape}")
        C = p.shape[1]
    else:
        C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
        if p.ndim < 2:
            raise ValueError(f"pred must be a label map (N, *spatial), got shape {p.shape}")
    Cu = C if (include_background or C == 1) else C - 1
    p, t = _whole_images(p, "pred", rechunk), _whole_images(t, "target", rechunk)
    da = _da()
    ind = "n" + "abcdefghijlmopqrstuvwxyz"[:p.ndim - 1]   # one letter per axis
    kw = dict(kw, num_classes=num_classes, include_background=include_background)
    out = da.blockwise(_surface_block, "nk", p, ind, t, ind, new_axes={"k": Cu},
                       concatenate=True, dtype=np.float64, meta=np.empty((0, 0)),
                       fn=fn, kw=kw)
    if reduction == "none":
        return out
    return _finish(functools.partial(_ds._reduce, reduction=reduction), out, (), np.float64)


_SURFACE_DOC = """\
pred, target : dask.array.Array or array_like
    Label maps (N, d1, ...) with ``num_classes``, or one-hot masks
    (N, C, d1, ...), of one shape; chunks along the first axis only
    (each image whole; other chunkings are rechunked with a
    PerformanceWarning, or a ValueError with ``rechunk=False``).
rechunk : bool
    Rechunk images split over several chunks (default True).
%(dask_threads)s"""

_surface_doc = doc(surface=_SURFACE_DOC)


@_surface_doc
def hausdorff_distance(pred, target, *, num_classes=None, percentile=None, directed=False,
                       spacing=None, include_background=False, reduction="none",
                       mode="monai", rechunk=True, n_threads=None):
    """:func:`fastloss.hausdorff_distance` of a stack of volumes, one task per block of images.

    Each block of whole images is scored by the in-memory function
    (``reduction='none'``); the (N, C') values are then reduced as it does.

    Parameters
    ----------
    %(surface)s
    num_classes, percentile, directed, spacing, include_background, mode
        As in :func:`fastloss.hausdorff_distance`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.hausdorff_distance`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=2)
    >>> dp = da.from_array(p, chunks=(2, 8, 8))
    >>> fastloss.dask.hausdorff_distance(dp, t, num_classes=2, reduction="mean").compute()
    np.float64(2.0)
    """
    kw = dict(percentile=_ds._check_percentile(percentile), directed=bool(directed),
              spacing=spacing, mode=mode, n_threads=n_threads)
    return _surface("hausdorff_distance", pred, target, num_classes, bool(include_background),
                    reduction, rechunk, kw)


@_surface_doc
def average_surface_distance(pred, target, *, num_classes=None, symmetric=False, spacing=None,
                             include_background=False, reduction="none", rechunk=True,
                             n_threads=None):
    """:func:`fastloss.average_surface_distance` of a stack of volumes, one task per block.

    Parameters
    ----------
    %(surface)s
    num_classes, symmetric, spacing, include_background
        As in :func:`fastloss.average_surface_distance`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.average_surface_distance`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 1, axis=1)
    >>> dp = da.from_array(p, chunks=(1, 8, 8))
    >>> fastloss.dask.average_surface_distance(dp, t, num_classes=2, symmetric=True,
    ...                                        reduction="mean").compute()
    np.float64(0.5)
    """
    kw = dict(symmetric=bool(symmetric), spacing=spacing, n_threads=n_threads)
    return _surface("average_surface_distance", pred, target, num_classes,
                    bool(include_background), reduction, rechunk, kw)


@_surface_doc
def surface_dice(pred, target, class_thresholds, *, num_classes=None, spacing=None,
                 include_background=False, use_subvoxels=False, reduction="none",
                 rechunk=True, n_threads=None):
    """:func:`fastloss.surface_dice` of a stack of volumes, one task per block of images.

    Parameters
    ----------
    %(surface)s
    class_thresholds, num_classes, spacing, include_background, use_subvoxels
        As in :func:`fastloss.surface_dice`.
    reduction : {'none', 'mean', 'sum'}
        As in :func:`fastloss.surface_dice`.

    Returns
    -------
    dask.array.Array
        Lazy (N, C') float64 values, or a 0-d float64 with a reduction.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> t = np.zeros((4, 8, 8), dtype=np.uint8); t[:, 2:5, 2:5] = 1
    >>> p = np.roll(t, 2, axis=1)
    >>> dp = da.from_array(p, chunks=(2, 8, 8))
    >>> fastloss.dask.surface_dice(dp, t, [1.0], num_classes=2).compute().ravel()
    array([0.625, 0.625, 0.625, 0.625])
    """
    kw = dict(class_thresholds=np.asarray(class_thresholds, dtype=np.float64).tolist(),
              spacing=spacing, use_subvoxels=bool(use_subvoxels), n_threads=n_threads)
    return _surface("surface_dice", pred, target, num_classes, bool(include_background),
                    reduction, rechunk, kw)
