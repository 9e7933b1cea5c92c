"""Detection losses: the Fast R-CNN multi-task loss.

A composition: the classification part is :func:`fastloss.cross_entropy`,
the box part one pass over the regression rows (``src/_rowwise.pyx``).
"""

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc
from fastloss.classification import cross_entropy

_k = kernels("rowwise")

__all__ = ["fast_rcnn_loss"]


@doc
def fast_rcnn_loss(class_logits, labels, box_regression, box_targets, *, box_weight=1.0,
                   beta=1.0, return_parts=False, return_grad=False, n_threads=None):
    r"""Fast R-CNN multi-task loss: classification CE plus box smooth L1.

    .. math:: L = \operatorname{CE}_{\text{mean}}(x, y) + \lambda \frac{1}{N}
              \sum_{i:\, y_i \ge 1} \sum_{k=1}^{4}
              \operatorname{smoothL1}_\beta(b_{ik} - t_{ik})

    with :math:`\operatorname{smoothL1}_\beta(d) = d^2/(2\beta)` for
    :math:`|d| < \beta`, :math:`|d| - \beta/2` otherwise (L1 at
    :math:`\beta = 0`); label 0 is the background.

    Parameters
    ----------
    class_logits : array_like, shape (N, C)
        float16 / bfloat16 logits are computed in float32 and read in
        their own width where :func:`cross_entropy` reads them so; the loss
        is then float32 and each gradient comes back in its input's dtype.
    labels : array_like of int, shape (N,)
        Class indices in [0, C), 0 = background.
    box_regression : array_like, shape (N, 4) or (N, 4 C)
        Box deltas; with 4 C columns (class-specific), row i uses columns
        ``4 y_i .. 4 y_i + 3``.
    box_targets : array_like, shape (N, 4)
    box_weight : float >= 0
        :math:`\lambda`.
    beta : float >= 0
        Smooth-L1 threshold.  ``beta=1/9`` (with ``box_weight=1``)
        reproduces torchvision's internal
        ``torchvision.models.detection.roi_heads.fastrcnn_loss``
        (classification loss + box loss).
    return_parts : bool
        Return ``(total, ce, box)`` instead of ``total``.
    return_grad : bool
        Also return ``(g_class_logits, g_box_regression)``.
    %(n_threads)s

    Returns
    -------
    loss : NumPy scalar, or the tuple ``(total, ce, box)``
    grads : tuple of two ndarrays, only with ``return_grad=True``

    Notes
    -----
    The cross-entropy part is :func:`fastloss.cross_entropy` (one pass over
    the logits); the box part is one pass over the regression rows, which
    also checks the labels.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.zeros((2, 3)); y = np.array([0, 2])
    >>> b = np.zeros((2, 4)); t = np.array([[0, 0, 0, 0], [0.5, 0, 0, 2.0]])
    >>> round(float(fastloss.fast_rcnn_loss(x, y, b, t)), 6)  # log 3 + (0.125 + 1.5) / 2
    1.911112
    """
    r = _k.box_call(box_regression, box_targets, labels, class_logits, beta, box_weight,
                    return_grad, n_threads)
    if r is not None:
        c = cross_entropy(class_logits, labels, return_grad=return_grad, n_threads=n_threads)
        box, gb = r
        ce, gx = c if return_grad else (c, None)
        total = box.dtype.type(float(ce) + float(box))
        loss = (total, ce, box) if return_parts else total
        return (loss, (gx, gb)) if return_grad else loss
    x_raw = np.asarray(class_logits)
    # float16 / bfloat16 logits go to cross_entropy as they are (it reads
    # them in their own width); the box rows are computed in float32
    x = V.as_float(x_raw, "class_logits", half=True)
    cdt = V.compute_dtype(x.dtype)
    if x.ndim != 2:
        raise ValueError(f"class_logits must have shape (N, C), got {x.shape}")
    N, C = x.shape
    t = V.row_labels(labels, N, False, "labels")
    b = V.as_float(box_regression, "box_regression", dtype=cdt)
    if b.ndim != 2 or b.shape[0] != N or b.shape[1] not in (4, 4 * C):
        raise ValueError(
            f"box_regression must have shape ({N}, 4) or ({N}, {4 * C}), got {b.shape}")
    bt = V.as_float(box_targets, "box_targets", dtype=cdt)
    if bt.shape != (N, 4):
        raise ValueError(f"box_targets must have shape ({N}, 4), got {bt.shape}")
    box_weight = V.check_scalar(box_weight, "box_weight", 0.0)
    beta = V.check_scalar(beta, "beta", 0.0)
    nt = V.threads(n_threads)
    gb = V.grad_array(None, b.shape, cdt)[0] if return_grad else None
    scale = box_weight / N if N > 0 else 0.0
    box_sum, _, bad = _k.box_smooth_l1(
        reg=b, tgt=bt, labels=t, C=C, beta=beta,
        grad=gb.reshape(-1) if gb is not None else V.empty(cdt), gscale=scale, n_threads=nt)
    V.raise_label_error(t, bad, C, name="labels")
    if return_grad:
        ce, gx = cross_entropy(x, t, return_grad=True, n_threads=nt)
    else:
        ce = cross_entropy(x, t, n_threads=nt)
    with np.errstate(invalid="ignore", divide="ignore"):
        box = V.scalar(box_weight * box_sum / N if N > 0 else np.nan, cdt)
    total = V.scalar(np.float64(ce) + np.float64(box), cdt)
    loss = (total, ce, box) if return_parts else total
    if not return_grad:
        return loss
    return loss, V.grads_in_dtypes((gx, gb), (x_raw, np.asarray(box_regression)))
