"""fastloss.distance: argument checks shared by the family and the exact
Euclidean distance transform."""

import numbers

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels

_k = kernels("distance")



_NO_FEAT = np.empty(0, dtype=np.int64)
_BOX_CODES = {np.uint8: 0, np.int8: 1, np.int16: 2, np.int32: 3, np.int64: 4}
_METRIC_REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------ validation

def _spacing(spacing, ndim, name="spacing"):
    """One positive finite float64 per spatial axis."""
    if spacing is None:
        return np.ones(ndim, dtype=np.float64)
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        s = np.full(ndim, float(spacing))
    else:
        try:
            s = np.asarray(spacing, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a sequence of {ndim} numbers, got {spacing!r}"
            ) from None
        if s.ndim != 1 or s.shape[0] != ndim:
            raise ValueError(
                f"{name} must have one value per spatial axis ({ndim}), got {s.tolist()}"
            )
    if not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"{name} must be finite and positive, got {s.tolist()}")
    return np.ascontiguousarray(s)


def _edt_flat(lab, shape, spacing, zero_bg, want_feat, take_sqrt, nt, skip=0, out=None):
    """Run the kernel on a C-contiguous integer array; (out, feat or None).

    The first ``skip`` axes are a batch of independent volumes (``spacing``
    has one value per axis, those of the batch axes unused).  ``out``: a
    float64 array of lab.size elements to write into."""
    if out is None:
        out = np.empty(lab.size, dtype=np.float64)
    feat = np.empty(lab.size, dtype=np.int64) if want_feat else _NO_FEAT
    shp = np.asarray(shape, dtype=np.int64)
    lab, spacing = np.ascontiguousarray(lab), np.ascontiguousarray(spacing, dtype=np.float64)
    if lab.size != out.size or shp.size != spacing.size or int(np.prod(shp)) != lab.size:
        raise AssertionError("_edt_flat: inconsistent sizes")
    if not 0 <= skip < shp.size:
        raise AssertionError("_edt_flat: no axis to transform")
    rc = _k.edt_sq(lab_addr=lab.ctypes.data, width=lab.dtype.itemsize, total=lab.size,
                   shape_addr=shp.ctypes.data, ndim=shp.size, skip=skip,
                   spacing_addr=spacing.ctypes.data, zero_bg=zero_bg, out_addr=out.ctypes.data,
                   feat_addr=feat.ctypes.data, want_feat=want_feat, take_sqrt=take_sqrt,
                   n_threads=nt)
    if rc:
        raise MemoryError("fastloss: cannot allocate the distance-transform scratch buffers")
    return out.reshape(shape), (feat.reshape(shape) if want_feat else None)


def _as_mask_u8(a):
    """Non-zero elements as a uint8 0/1 array (a view of a bool array)."""
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    return (a != 0).view(np.uint8)


# ------------------------------------------------------------ distance transform

def distance_transform(mask_or_labels, spacing=None, *, signed=False, return_indices=False,
                       n_threads=None):
    r"""Exact Euclidean distance transform, :math:`d(x) = \min_{y \in B} \|(x - y) \odot s\|_2`.

    For a mask (bool or float: non-zero is the object), :math:`B` is the set
    of zero elements, so every object voxel gets its distance to the
    nearest background voxel and background voxels get 0: the values of
    ``scipy.ndimage.distance_transform_edt(mask, sampling=spacing)``.  For
    an integer label map (multi-label mode, as the ``edt`` package), a
    voxel of label :math:`l \ne 0` gets its distance to the nearest voxel
    whose label is not :math:`l` (label 0 is background, distance 0); a
    0/1 label map is a mask.

    Parameters
    ----------
    mask_or_labels : array_like, shape (d1, ..., dk), k >= 1
        bool or float mask, or integer label map.
    spacing : float or sequence of k floats, optional
        Voxel size along each array axis (SciPy's ``sampling``); finite and
        positive.  Default 1.
    signed : bool
        Signed distance map of the mask ``mask_or_labels != 0``:
        :math:`d_{in}(x) - d_{out}(x)`, positive inside (the distance to the
        nearest outside voxel) and negative outside (minus the distance to
        the nearest inside voxel), the convention of ``edt.sdf``.
    return_indices : bool
        Also return the nearest site of every voxel, shape (k, d1, ..., dk)
        (SciPy's feature transform; the nearest zero element, or for
        ``signed`` the nearest voxel of the other side; ties may resolve to
        a different site than SciPy's at the same distance).  -1 where
        there is no site.
    n_threads : int, optional
        See :func:`fastloss.set_num_threads`.  The result does not depend on it.

    Returns
    -------
    distances : ndarray of float64, the input's shape
    indices : ndarray of int32 (int64 above 2**31 - 1 voxels), shape ``(k, *shape)``
        Only with ``return_indices=True``.

    Notes
    -----
    Separable: one pass per axis, each a lower envelope of parabolas
    (Felzenszwalb & Huttenlocher 2012) over squared distances in float64,
    O(k * voxels) work, 8 bytes per voxel for the result plus a per-thread
    scratch of 64 lines of the longest axis; with ``return_indices``, 8 more
    bytes per voxel during the transform and the index array itself.  Where a
    voxel has no site at all (a mask with no background, a label map of a
    single non-zero label) the distance is ``inf``; SciPy returns distances
    to a phantom point outside the image there (SciPy issue #15585).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.distance_transform(np.array([0, 1, 1, 1, 1, 0]))
    array([0., 1., 2., 2., 1., 0.])
    >>> fastloss.distance_transform(np.array([[0, 1, 1]]), spacing=(1.0, 0.5))
    array([[0. , 0.5, 1. ]])
    >>> fastloss.distance_transform(np.array([1, 1, 2, 2, 2, 0]))
    array([2., 1., 1., 2., 1., 0.])
    >>> fastloss.distance_transform(np.array([0, 1, 1, 0]) > 0, signed=True)
    array([-1.,  1.,  1., -1.])
    """
    a = np.asarray(mask_or_labels)
    kind = a.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"mask_or_labels must be a bool, integer or float array, got dtype {a.dtype}"
        )
    if a.ndim == 0:
        raise ValueError("mask_or_labels must have at least one axis, got a 0-d array")
    s = _spacing(spacing, a.ndim)
    nt = V.threads(n_threads)
    signed = bool(signed)
    if signed or kind in "bf":
        lab = np.ascontiguousarray(_as_mask_u8(a))
    else:
        lab = V.as_labels(a, "mask_or_labels")
    d, feat = _edt_flat(lab, a.shape, s, not signed, bool(return_indices), True, nt)
    if signed:
        np.negative(d, out=d, where=(lab == 0))
    if not return_indices:
        return d
    itype = np.int32 if a.size < 2**31 else np.int64
    ind = np.empty((a.ndim,) + a.shape, dtype=itype)
    if a.size:
        none = feat < 0
        ind[...] = np.unravel_index(np.where(none, 0, feat), a.shape)
        ind[:, none] = -1
    return d, ind
