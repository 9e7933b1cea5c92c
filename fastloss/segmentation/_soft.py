"""fastloss.segmentation: the soft losses, each a formula on the
per-(image, class) sums."""


import numpy as np

from fastloss import _validate as V
from fastloss._docs import doc
from fastloss.segmentation._prep import (
    _check_smooth,
    _dice_ce_weights,
    _dice_weight,
    _first,
    _k,
    _loss,
    _prepare,
)

# ------------------------------------------------------------ Dice / Jaccard

def _dice_family(input, target, jaccard, activation, include_background, squared_pred,
                 smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                 return_grad, n_threads, grad_out=None):
    if weight is None and ignore_index is None:
        r = _k.seg_call(_k.DICE, input, target, activation, include_background, batch,
                        squared_pred, jaccard, smooth_nr, smooth_dr, None, None, None,
                        reduction, return_grad, n_threads, grad_out)
        if r is not None:
            return r
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    return _loss(p, _k.DICE, c0, w, batch, snr, sdr, reduction, return_grad,
                 squared=bool(squared_pred), jaccard=jaccard)


_SEG_PARAMS = """\
input : array_like, shape (N, C, d1, ..., dk), k >= 1
    Logits (``activation='softmax'`` or ``'sigmoid'``) or probabilities
    (``activation=None``); float32 and float64 are computed natively.
    The class axis is read in place; a non-contiguous input is copied once.
target : array_like
    Integer label map of shape (N, d1, ..., dk) (any integer dtype, read
    in its own width; MONAI's (N, 1, d1, ...) form is accepted too), or
    one-hot / soft masks of ``input``'s shape (any real dtype: float,
    bool or integer, e.g. a uint8 one-hot).  With a single channel
    (C == 1) a label map is the binary mask (labels 0 and 1).
activation : {'softmax', 'sigmoid', None}
    Applied to ``input`` on the fly (MONAI's ``softmax=True`` /
    ``sigmoid=True``).  With a single channel (C == 1) ``'softmax'`` is
    ignored with a ``UserWarning``, as MONAI does.
include_background : bool
    False drops class 0 from every sum (ignored for C == 1, as MONAI).
smooth_nr, smooth_dr : float >= 0
    Added to the numerator and the denominator of each ratio.
batch : bool
    Sum the statistics over the batch before the ratio (one value per
    class) instead of per image.
ignore_index : int, optional
    Positions of a label map holding it are excluded from every sum
    (MONAI's mask).  Labels outside [0, C) other than ``ignore_index``
    raise ``ValueError`` naming the first bad value; they are detected
    inside the kernel, in the same pass.  With a hard one-hot target of
    ``input``'s shape, MONAI's rule: an index in [0, C) drops the
    positions of that class, any other value the positions of no class
    (soft or multi-label targets raise ``ValueError``).  With one
    channel the (N, 1, ...) target is compared with it.
reduction : {'mean', 'sum', 'none'}
    ``'none'`` gives the per-class losses, (N, C') or (C',) with
    ``batch=True`` (C' = classes used).
return_grad : bool
    Also return d(loss)/d(input) (for ``'none'``, of the sum).
%(grad_out)s
%(n_threads)s"""

_SEG_RETURNS = """\
Returns
-------
%(loss_grad)s

Notes
-----
One pass over the input computes the per-(image, class) sums; with
``return_grad=True`` a second pass writes the gradient (dL/dp from the
sums, chained through the activation).  Extra memory is O(N*C)."""


_seg_doc = doc(seg_params=_SEG_PARAMS, seg_returns=_SEG_RETURNS)


@_seg_doc
def dice_loss(input, target, *, activation="softmax", include_background=True,
              squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
              weight=None, ignore_index=None, reduction="mean", return_grad=False,
              grad_out=None, n_threads=None):
    r"""Soft Dice loss over ``(N, C, *spatial)`` predictions.

    Per image and class (or per class with ``batch=True``)

    .. math:: \ell = 1 - \frac{2 \sum p g + s_{nr}}{\sum p + \sum g + s_{dr}}

    (with ``squared_pred=True`` the denominator is :math:`\sum p^2 + \sum g^2`),
    multiplied by ``weight[c]`` when given, then reduced.  Equivalent to
    ``monai.losses.DiceLoss(softmax=True, to_onehot_y=True, ...)`` with the
    label map as target (``sigmoid=True`` for ``activation='sigmoid'``).

    Parameters
    ----------
    %(seg_params)s
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background, as MONAI), non-negative; not read when one class is
        used (C == 1, or C == 2 without the background), as MONAI.
    squared_pred : bool
        Use squared predictions and targets in the denominator.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[9.0, -9.0]], [[-9.0, 9.0]]]])   # (1, 2, 1, 2) logits
    >>> y = np.array([[[0, 1]]], dtype=np.uint8)          # (1, 1, 2) labels
    >>> float(fastloss.dice_loss(x, y)) < 1e-7   # 1 - 2*sigma(18) / 2 per class
    True
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _dice_family(input, target, False, activation, include_background, squared_pred,
                        smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                        return_grad, n_threads, grad_out)


@_seg_doc
def jaccard_loss(input, target, *, activation="softmax", include_background=True,
                 squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", return_grad=False,
                 grad_out=None, n_threads=None):
    r"""Soft Jaccard (IoU) loss, MONAI's ``DiceLoss(jaccard=True)``.

    .. math:: \ell = 1 - \frac{2 \sum p g + s_{nr}}
              {2 (\sum p + \sum g - \sum p g) + s_{dr}}

    (squared sums with ``squared_pred=True``); options as :func:`dice_loss`.

    Parameters
    ----------
    %(seg_params)s
    squared_pred : bool
        Use squared predictions and targets in the denominator.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])                     # (1, 1, 1, 2) probabilities
    >>> y = np.array([[[1, 0]]])                           # binary label map
    >>> round(float(fastloss.jaccard_loss(x, y, activation=None, smooth_nr=0, smooth_dr=0)), 6)
    0.666667
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _dice_family(input, target, True, activation, include_background, squared_pred,
                        smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                        return_grad, n_threads, grad_out)


# ------------------------------------------------------------------ Tversky

def _tversky(input, target, alpha, beta, gamma, activation, include_background, smooth_nr,
             smooth_dr, batch, weight, ignore_index, reduction, return_grad, n_threads,
             grad_out=None):
    if weight is None and ignore_index is None:
        r = _k.seg_call(_k.TVERSKY, input, target, activation, include_background, batch,
                        False, False, smooth_nr, smooth_dr, alpha, beta, gamma, reduction,
                        return_grad, n_threads, grad_out)
        if r is not None:
            return r
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    alpha = V.check_scalar(alpha, "alpha", 0.0)
    beta = V.check_scalar(beta, "beta", 0.0)
    if gamma is not None:
        gamma = V.check_scalar(gamma, "gamma", 0.0, lo_open=True)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    return _loss(p, _k.TVERSKY, c0, w, batch, snr, sdr, reduction, return_grad,
                 a=alpha, b=beta, g=0.0 if gamma is None else gamma)


@_seg_doc
def tversky_loss(input, target, *, alpha=0.5, beta=0.5, activation="softmax",
                 include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean", return_grad=False,
                 grad_out=None, n_threads=None):
    r"""Tversky loss, MONAI's ``TverskyLoss``.

    .. math:: \ell = 1 - \frac{TP + s_{nr}}{TP + \alpha FP + \beta FN + s_{dr}},
       \quad TP = \sum p g,\ FP = \sum p (1 - g),\ FN = \sum (1 - p) g

    ``alpha`` weighs false positives, ``beta`` false negatives;
    alpha = beta = 0.5 is the Dice loss.  ``weight`` (per used class)
    multiplies each class's loss (fastloss's addition).

    Parameters
    ----------
    %(seg_params)s
    alpha, beta : float >= 0
        Weights of the false positives and the false negatives.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.tversky_loss(x, y, activation=None, alpha=0.3, beta=0.7,
    ...                                   smooth_nr=0, smooth_dr=0)), 6)
    0.5
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _tversky(input, target, alpha, beta, None, activation, include_background,
                    smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                    return_grad, n_threads, grad_out)


@_seg_doc
def focal_tversky_loss(input, target, *, alpha=0.5, beta=0.5, gamma=0.75,
                       activation="softmax", include_background=True, smooth_nr=1e-5,
                       smooth_dr=1e-5, batch=False, weight=None, ignore_index=None,
                       reduction="mean", return_grad=False, grad_out=None, n_threads=None):
    r"""Focal Tversky loss: the Tversky loss of each class raised to ``gamma``.

    .. math:: \ell = \Big(1 - \frac{TP + s_{nr}}{TP + \alpha FP + \beta FN + s_{dr}}\Big)^{\gamma}

    (Abraham & Khan 2019 with gamma = 1/their gamma); other options as
    :func:`tversky_loss`.  With ``gamma < 1`` the gradient is infinite where
    a class's Tversky loss is exactly 0.

    Parameters
    ----------
    %(seg_params)s
    alpha, beta : float >= 0
        Weights of the false positives and the false negatives.
    gamma : float > 0
        Exponent of each class's Tversky loss.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.focal_tversky_loss(x, y, activation=None, gamma=0.5,
    ...                                         smooth_nr=0, smooth_dr=0)), 6)
    0.707107
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    return _tversky(input, target, alpha, beta, gamma, activation, include_background,
                    smooth_nr, smooth_dr, batch, weight, ignore_index, reduction,
                    return_grad, n_threads, grad_out)


# ---------------------------------------------------------- generalized Dice

@_seg_doc
def generalized_dice_loss(input, target, *, w_type="square", activation="softmax",
                          include_background=True, smooth_nr=1e-5, smooth_dr=1e-5,
                          batch=False, ignore_index=None, reduction="mean",
                          return_grad=False, grad_out=None, n_threads=None):
    r"""Generalized Dice loss (Sudre et al. 2017), MONAI's ``GeneralizedDiceLoss``.

    Per image (or once with ``batch=True``)

    .. math:: \ell = 1 - \frac{2 \sum_c w_c \sum p g + s_{nr}}
              {\sum_c w_c (\sum p + \sum g) + s_{dr}}

    with :math:`w_c = 1/(\sum g)^2` (``'square'``), :math:`1/\sum g`
    (``'simple'``) or 1 (``'uniform'``); an infinite weight (a class absent
    from the target) is replaced by the largest finite weight of the image,
    as MONAI.  ``'none'`` gives one value per image, (N,), or (1,) with
    ``batch=True``.  MONAI computes the weights in float32; fastloss in
    float64.

    Parameters
    ----------
    %(seg_params)s
    w_type : {'square', 'simple', 'uniform'}
        The class weights :math:`w_c` above.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[9.0, -9.0]], [[-9.0, 9.0]]]])
    >>> y = np.array([[[0, 1]]])
    >>> float(fastloss.generalized_dice_loss(x, y)) < 1e-3
    True
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if ignore_index is None:
        r = _k.seg_call(_k.GENERALIZED, input, target, activation, include_background, batch,
                        False, False, smooth_nr, smooth_dr, w_type, None, None, reduction,
                        return_grad, n_threads, grad_out)
        if r is not None:
            return r
    if w_type not in _k.WEIGHT_TYPES:
        raise ValueError(f"w_type must be 'square', 'simple' or 'uniform', got {w_type!r}")
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    return _loss(p, _k.GENERALIZED, _first(p, include_background), None, batch, snr, sdr,
                 reduction, return_grad, wtype=_k.WEIGHT_TYPES[w_type])


# ------------------------------------------------- sensitivity-specificity

@_seg_doc
def sensitivity_specificity_loss(input, target, *, r=0.05, activation="softmax",
                                 include_background=True, smooth_nr=0.0, smooth_dr=1e-5,
                                 batch=False, weight=None, ignore_index=None,
                                 reduction="mean", return_grad=False, grad_out=None,
                                 n_threads=None):
    r"""Sensitivity-specificity loss (Brosch et al. 2015), per class.

    .. math:: \ell = r \frac{\sum (g - p)^2 g + s_{nr}}{\sum g + s_{dr}}
              + (1 - r) \frac{\sum (g - p)^2 (1 - g) + s_{nr}}{\sum (1 - g) + s_{dr}}

    the sums running over the non-ignored positions.  ``smooth_nr`` defaults
    to 0 so that a perfect prediction gives 0 (NiftyNet's form);
    ``weight`` multiplies each used class's loss.  No MONAI equivalent.

    Parameters
    ----------
    %(seg_params)s
    r : float in [0, 1]
        Weight of the sensitivity term; 1 - r weighs the specificity term.
    weight : array_like or float, optional
        Per-class weight of the used classes (C - 1 values without the
        background), multiplying each class's loss; non-negative.

    %(seg_returns)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[[[0.5, 0.5]]]])
    >>> y = np.array([[[1, 0]]])
    >>> round(float(fastloss.sensitivity_specificity_loss(x, y, activation=None, r=0.5,
    ...                                                   smooth_dr=0)), 6)
    0.25
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if weight is None and ignore_index is None:
        res = _k.seg_call(_k.SENSSPEC, input, target, activation, include_background, batch,
                          False, False, smooth_nr, smooth_dr, r, None, None, reduction,
                          return_grad, n_threads, grad_out)
        if res is not None:
            return res
    p = _prepare(input, target, activation, ignore_index, n_threads, reduction,
                 grad_out=grad_out if return_grad else None)
    r = V.check_scalar(r, "r", 0.0, 1.0)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    w = _dice_weight(weight, p.C - c0, p.C)
    return _loss(p, _k.SENSSPEC, c0, w, batch, snr, sdr, reduction, return_grad, a=r)


# ------------------------------------------------------------------ Dice+CE

@doc
def dice_ce_loss(input, target, *, lambda_dice=1.0, lambda_ce=1.0, include_background=True,
                 squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5,
                 batch=False, weight=None, ignore_index=None, sample_weight=None,
                 reduction="mean", return_grad=False, grad_out=None, n_threads=None):
    r"""Dice (softmax) + cross-entropy of logits, MONAI's ``DiceCELoss(softmax=True)``.

    .. math:: L = \lambda_{dice} L_{dice} + \lambda_{ce} L_{ce}

    :math:`L_{dice}` is :func:`dice_loss` (``jaccard=True``:
    :func:`jaccard_loss`) with the softmax activation; :math:`L_{ce}` is the
    pixel-wise cross-entropy ``torch.nn.functional.cross_entropy(input,
    target, weight)`` (class indices) or its probability form (soft target).
    The softmax is computed once for both terms.

    Parameters
    ----------
    lambda_dice, lambda_ce : float >= 0
    weight : array_like of shape (C,), optional
        Class weights of the cross-entropy; the Dice term uses
        ``weight[1:]`` without the background (as MONAI).
    ignore_index : int, optional
        Label-map positions holding it are excluded from the Dice sums and
        from the cross-entropy (torch's ``ignore_index``).
    sample_weight : array_like, optional
        Per-pixel weights broadcastable to (N, d1, ..., dk) for the
        cross-entropy: 'mean' becomes :math:`\sum s_i w_{y_i} \ell_i / \sum
        s_i w_{y_i}` (probability targets: :math:`/ \sum s_i`).
    reduction : {'mean', 'sum'}
        Applied to both terms (MONAI rejects 'none' too).
    %(grad_out)s

    Other parameters as :func:`dice_loss` (C >= 2).

    Returns
    -------
    loss : NumPy scalar; with ``return_grad=True`` also the gradient.

    Notes
    -----
    One pass computes the Dice sums and the cross-entropy together; with
    ``return_grad=True`` a second pass writes the gradient of both terms.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.zeros((1, 2, 1, 2))
    >>> y = np.array([[[0, 1]]])
    >>> round(float(fastloss.dice_ce_loss(x, y, smooth_nr=0, smooth_dr=0)), 6)  # 0.5 + log 2
    1.193147
    """
    if grad_out is not None and not return_grad:
        V.unused_grad_out()
    if weight is None and ignore_index is None and sample_weight is None:
        r = _k.seg_call(_k.DICE_CE, input, target, "softmax", include_background, batch,
                        squared_pred, jaccard, smooth_nr, smooth_dr, lambda_dice, lambda_ce,
                        None, reduction, return_grad, n_threads, grad_out)
        if r is not None:
            return r
    shape = np.shape(input)
    if len(shape) >= 2 and shape[1] == 1:
        raise ValueError(
            "dice_ce_loss needs at least 2 classes on axis 1 (softmax), got 1; for a single "
            "channel use dice_loss(activation='sigmoid') + binary_cross_entropy_with_logits "
            "(what MONAI's DiceCELoss does there)")
    # the class and sample weights are read by the gradient pass too
    p = _prepare(input, target, "softmax", ignore_index, n_threads, reduction,
                 allowed=("mean", "sum"), grad_out=grad_out if return_grad else None,
                 weights=(("weight", weight), ("sample_weight", sample_weight)))
    lambda_dice = V.check_scalar(lambda_dice, "lambda_dice", 0.0)
    lambda_ce = V.check_scalar(lambda_ce, "lambda_ce", 0.0)
    snr, sdr = _check_smooth(smooth_nr, smooth_dr)
    c0 = _first(p, include_background)
    cw, wd = _dice_ce_weights(weight, p.C, c0)
    sw = V.broadcast_weight(sample_weight, (p.N,) + p.x.shape[2:])
    return _loss(p, _k.DICE_CE, c0, wd, batch, snr, sdr, reduction, return_grad,
                 squared=bool(squared_pred), jaccard=bool(jaccard), a=lambda_dice, b=lambda_ce,
                 cw=cw, sw=None if sw is None else sw.reshape(-1))
