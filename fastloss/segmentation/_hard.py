"""fastloss.segmentation: the hard metrics (confusion matrix, Dice and IoU
scores) on label maps or one-hot masks."""


import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc

_k = kernels("confusion")

# ------------------------------------------------------------ hard metrics

def _cm_inputs(pred, target, num_classes, ignore_index, per_image):
    pr = V.as_labels(pred, "pred")
    tg = V.as_labels(target, "target")
    V.same_shape(pr, tg, "pred", "target")
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    if ignore_index is not None:
        ignore_index = V.check_scalar(ignore_index, "ignore_index", integer=True)
    if per_image:
        if pr.ndim < 1:
            raise ValueError(
                "per_image=True needs label maps with a leading image axis, got a scalar")
        N = pr.shape[0]
    else:
        N = 1
    S = pr.size // N if N else 0
    return pr.reshape(N, S), tg.reshape(N, S), C, ignore_index, N


def _confusion(pred, target, num_classes, ignore_index, per_image, n_threads):
    pr, tg, C, ig, N = _cm_inputs(pred, target, num_classes, ignore_index, per_image)
    nt = V.threads(n_threads)
    out = np.empty((N if per_image else 1) * C * C, dtype=np.int64)
    bad = _k.confusion(pred=pr, target=tg, C=C, ignore=0 if ig is None else ig,
                       has_ignore=ig is not None, per_image=per_image, out=out, n_threads=nt)
    if bad >= 0:
        t, q = tg.reshape(-1)[bad], pr.reshape(-1)[bad]
        which, val = ("target", t) if (t < 0 or t >= C) else ("pred", q)
        allowed = f"[0, {C})"
        if ig is not None and which == "target":
            allowed += f" or ignore_index={ig}"
        raise ValueError(f"{which} holds class index {val} at flat position {bad}; "
                         f"expected values in {allowed}")
    return out.reshape((N, C, C) if per_image else (C, C))


@doc
def confusion_matrix(pred, target, num_classes, ignore_index=None, *, n_threads=None):
    r"""Confusion matrix of two label maps: ``M[i, j]`` = #positions with
    target ``i`` and prediction ``j`` (rows = target, columns = pred).

    Parameters
    ----------
    pred, target : array_like of integers, same shape
        Label maps of any shape and integer dtype (each read in its own width).
    num_classes : int >= 1
    ignore_index : int, optional
        Positions whose *target* equals it are not counted.  Any other
        value outside [0, num_classes), in either array, raises ValueError
        naming the array, the value and its position.
    %(n_threads)s

    Returns
    -------
    ndarray of shape (C, C), int64 (exact counts).

    Notes
    -----
    One pass over both arrays; per-thread private matrices merged in order.
    Same as ``sklearn.metrics.confusion_matrix(target.ravel(), pred.ravel(),
    labels=range(C))`` and ``np.bincount(C * target + pred, minlength=C*C)``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """
    if ignore_index is None:
        r = _k.confusion_call(pred, target, num_classes, False, _k.CmResult.CM_MATRIX, True,
                              0.0, n_threads)
        if r is not None:
            return r
    return _confusion(pred, target, num_classes, ignore_index, False, n_threads)


def _multilabel_counts(pred, target, num_classes, ignore_index, per_image):
    """(tp, |T|, |P|) per class (per image) of multi-label masks (N, C, ...)."""
    pr, tg = np.asarray(pred), np.asarray(target)
    V.same_shape(pr, tg, "pred", "target")
    C = V.check_scalar(num_classes, "num_classes", 1, integer=True)
    if pr.ndim < 2 or pr.shape[1] != C:
        raise ValueError(f"multilabel=True needs masks of shape (N, num_classes={C}, ...), "
                         f"got pred of shape {pr.shape}")
    if ignore_index is not None:
        raise ValueError("ignore_index applies to label maps; with multilabel=True leave the "
                         "ignored positions 0 in pred and target, or mask them out")
    masks = []
    for name, a in (("pred", pr), ("target", tg)):
        if a.dtype.kind == "b":
            masks.append(a)
            continue
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a boolean or 0/1 mask, got dtype {a.dtype}")
        b = a != 0
        if not np.all(b == (a == 1)):
            raise ValueError(f"{name} must hold only 0 and 1 with multilabel=True")
        masks.append(b)
    pb, tb = masks
    axes = tuple(i for i in range(pr.ndim) if i != 1 and (i != 0 or not per_image))
    return (np.sum(pb & tb, axis=axes, dtype=np.int64).astype(np.float64),
            np.sum(tb, axis=axes, dtype=np.int64).astype(np.float64),
            np.sum(pb, axis=axes, dtype=np.int64).astype(np.float64))


def _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                   empty_score, n_threads, iou, multilabel=False):
    if not multilabel and ignore_index is None:
        which = _k.CmResult.CM_IOU if iou else _k.CmResult.CM_DICE
        r = _k.confusion_call(pred, target, num_classes, per_image, which, ignore_empty,
                              empty_score, n_threads)
        if r is not None:
            return r
    empty_score = float(empty_score)
    if multilabel:
        tp, st, sp = _multilabel_counts(pred, target, num_classes, ignore_index, per_image)
    else:
        cm = _confusion(pred, target, num_classes, ignore_index, per_image, n_threads)
        tp, st, sp = _confusion_counts(cm)
    return _score_from_counts(tp, st, sp, iou, ignore_empty, empty_score)


def _confusion_counts(cm):
    """(true positives, target counts, prediction counts) per class of (..., C, C) counts."""
    return (np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64),
            cm.sum(axis=-1).astype(np.float64),    # rows: the target's classes
            cm.sum(axis=-2).astype(np.float64))    # columns: the prediction's


def _score_from_counts(tp, st, sp, iou, ignore_empty, empty_score):
    """Hard Dice 2TP / (|T| + |P|) or IoU TP / (|T| + |P| - TP) per class.

    ``ignore_empty``: NaN for a class absent from the target (MONAI's
    metrics); otherwise ``empty_score`` where the class is absent from both.
    """
    den = st + sp - tp if iou else st + sp
    num = tp if iou else 2.0 * tp
    with np.errstate(divide="ignore", invalid="ignore"):
        score = num / den
    if ignore_empty:
        return np.where(st == 0, np.nan, score)
    return np.where(den == 0, float(empty_score), score)


def dice_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
               ignore_empty=True, empty_score=np.nan, multilabel=False, n_threads=None):
    r"""Hard Dice score per class of two label maps: :math:`2|P \cap T| / (|P| + |T|)`.

    Parameters
    ----------
    pred, target : array_like of integers, same shape (N, ...) or any shape
    num_classes : int
    ignore_index : int, optional
        Positions whose target equals it are not counted.
    per_image : bool
        One score per image (first axis) and class, shape (N, C).
    ignore_empty : bool
        True (default): a class absent from the target scores NaN, whatever
        the prediction, as MONAI's ``DiceMetric`` / ``compute_dice`` with
        their default ``ignore_empty=True`` (NaN entries are left out of
        MONAI's means; ``np.nanmean`` does the same).  False: such a class
        scores 0 when predicted and ``empty_score`` when absent from both.
    empty_score : float
        With ``ignore_empty=False``, the score of a class absent from both
        pred and target (default NaN; 1.0 is MONAI's ``ignore_empty=False``).
    multilabel : bool
        ``pred`` and ``target`` are masks of shape (N, num_classes, ...)
        (bool or 0/1) whose channels may overlap (BraTS-style regions) or
        all be 0 at a position; each channel is scored on its own, as
        MONAI's ``compute_dice(pred, target)`` on such masks.  Not with
        ``ignore_index``.

    Returns
    -------
    ndarray (C,) or (N, C), float64.

    Notes
    -----
    One pass (the confusion-matrix kernel).  Equivalent to MONAI's
    ``compute_dice(one_hot(pred), one_hot(target), include_background=True,
    ignore_empty=ignore_empty)`` (with ``empty_score=1.0`` when
    ``ignore_empty=False``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.dice_score(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), 3)
    array([0.66666667, 0.5       ,        nan])
    >>> fastloss.dice_score(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1]), 3,
    ...                     ignore_empty=False)
    array([0.66666667, 0.5       , 0.        ])
    """
    return _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                          empty_score, n_threads, False, multilabel)


@doc
def iou_score(pred, target, num_classes, *, ignore_index=None, per_image=False,
              ignore_empty=True, empty_score=np.nan, multilabel=False, n_threads=None):
    r"""Hard IoU (Jaccard index) per class: :math:`|P \cap T| / |P \cup T|`.

    Options, shapes and passes as :func:`dice_score`; MONAI's
    ``compute_iou`` on one-hot inputs.

    Parameters
    ----------
    pred, target : array_like of integers
        Label maps of the same shape, (N, ...) or any shape.
    num_classes : int
    ignore_index : int, optional
        Positions whose target equals it are not counted.
    per_image : bool
        One score per image (first axis) and class, shape (N, C).
    ignore_empty : bool
        True (default): NaN for a class absent from the target, as MONAI's
        ``MeanIoU`` / ``compute_iou``; False: 0 when only predicted and
        ``empty_score`` when absent from both.
    empty_score : float
        With ``ignore_empty=False``, the score of a class absent from both
        maps (default NaN; 1.0 is MONAI's ``ignore_empty=False``).
    multilabel : bool
        Masks (N, num_classes, ...) with channels scored on their own, as
        :func:`dice_score`; MONAI's ``compute_iou`` on such masks.
    %(n_threads)s

    Returns
    -------
    ndarray (C,) or (N, C), float

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.iou_score(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 2)
    array([0.5       , 0.66666667])
    """
    return _overlap_score(pred, target, num_classes, ignore_index, per_image, ignore_empty,
                          empty_score, n_threads, True, multilabel)
