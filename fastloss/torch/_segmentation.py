"""fastloss's segmentation losses in torch (MONAI's semantics, the NumPy
functions' signatures).

Each function is a row of the :mod:`fastloss.torch._core` table.  'none'
(one value per image and class, each mixing a whole image) always runs the
torch-op version of :mod:`fastloss.torch._formulas`, whose autograd
handles any ``grad_output``.  ``fastloss.torch.functional`` re-exports
them.
"""

import torch

from fastloss._docs import doc
from fastloss.torch import _formulas as T
from fastloss.torch._core import Spec, call, register

for _s in [
    # per-(image, class) 'none' outputs each mix a whole image: 'none' runs the fallback
    Spec("dice_loss", ("input", "target"), ("input",), None, T.dice_loss),
    Spec("jaccard_loss", ("input", "target"), ("input",), None, T.jaccard_loss),
    Spec("dice_ce_loss", ("input", "target"), ("input",), None, T.dice_ce_loss),
    Spec("tversky_loss", ("input", "target"), ("input",), None, T.tversky_loss),
    Spec("focal_tversky_loss", ("input", "target"), ("input",), None, T.focal_tversky_loss),
    Spec("generalized_dice_loss", ("input", "target"), ("input",), None,
         T.generalized_dice_loss),
    Spec("sensitivity_specificity_loss", ("input", "target"), ("input",), None,
         T.sensitivity_specificity_loss),
]:
    register(_s)
del _s


def _weight_list(weight):
    return weight.tolist() if isinstance(weight, torch.Tensor) else weight


@doc
def dice_loss(input, target, activation="softmax", include_background=True,
              squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False, weight=None,
              ignore_index=None, reduction="mean"):
    """:func:`fastloss.dice_loss` (MONAI's DiceLoss on label maps or masks); gradient for ``input``.

    'none' (one value per image and class, each mixing a whole image) runs
    the torch-op version; so does a ``target`` that requires grad.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.dice_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.dice_loss`; class indices may have any integer dtype.
    activation, include_background, squared_pred, smooth_nr, smooth_dr, batch, weight, ignore_index
        As in :func:`fastloss.dice_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.dice_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.6931
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return call("dice_loss", dict(
        input=input, target=target, activation=activation,
        include_background=include_background, squared_pred=squared_pred,
        smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, weight=_weight_list(weight),
        ignore_index=ignore_index, reduction=reduction))


@doc
def jaccard_loss(input, target, activation="softmax", include_background=True,
                 squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False, weight=None,
                 ignore_index=None, reduction="mean"):
    """:func:`fastloss.jaccard_loss` (MONAI's DiceLoss(jaccard=True)); gradient for ``input``.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.jaccard_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.jaccard_loss`; class indices may have any integer dtype.
    activation, include_background, squared_pred, smooth_nr, smooth_dr, batch, weight, ignore_index
        As in :func:`fastloss.jaccard_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.jaccard_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.816
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return call("jaccard_loss", dict(
        input=input, target=target, activation=activation,
        include_background=include_background, squared_pred=squared_pred,
        smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, weight=_weight_list(weight),
        ignore_index=ignore_index, reduction=reduction))


@doc
def dice_ce_loss(input, target, lambda_dice=1.0, lambda_ce=1.0, include_background=True,
                 squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5,
                 batch=False, weight=None, ignore_index=None, reduction="mean"):
    """:func:`fastloss.dice_ce_loss` (softmax Dice + cross-entropy, one pass); gradient for
    ``input``.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.dice_ce_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.dice_ce_loss`; class indices may have any integer dtype.
    lambda_dice, lambda_ce, include_background, squared_pred, jaccard, smooth_nr, smooth_dr, batch
        As in :func:`fastloss.dice_ce_loss`.
    weight, ignore_index
        As in :func:`fastloss.dice_ce_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.dice_ce_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.9587
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return call("dice_ce_loss", dict(
        input=input, target=target, lambda_dice=lambda_dice, lambda_ce=lambda_ce,
        include_background=include_background, squared_pred=squared_pred, jaccard=jaccard,
        smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch, weight=_weight_list(weight),
        ignore_index=ignore_index, reduction=reduction))


def _seg_call(name, input, target, reduction, weight=None, **options):
    if weight is not None:
        options["weight"] = _weight_list(weight)
    return call(name, dict(input=input, target=target, reduction=reduction, **options))


@doc
def tversky_loss(input, target, alpha=0.5, beta=0.5, activation="softmax",
                 include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                 weight=None, ignore_index=None, reduction="mean"):
    """:func:`fastloss.tversky_loss` (MONAI's TverskyLoss); gradient for ``input``.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.tversky_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.tversky_loss`; class indices may have any integer dtype.
    alpha, beta, activation, include_background, smooth_nr, smooth_dr, batch, weight, ignore_index
        As in :func:`fastloss.tversky_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.tversky_loss(x, y, alpha=0.3, beta=0.7)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.6886
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return _seg_call("tversky_loss", input, target, reduction, weight, alpha=alpha, beta=beta,
                     activation=activation, include_background=include_background,
                     smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                     ignore_index=ignore_index)


@doc
def focal_tversky_loss(input, target, alpha=0.5, beta=0.5, gamma=0.75, activation="softmax",
                       include_background=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
                       weight=None, ignore_index=None, reduction="mean"):
    """:func:`fastloss.focal_tversky_loss`: the Tversky loss per class to the power gamma.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.focal_tversky_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.focal_tversky_loss`; class indices may have any integer dtype.
    alpha, beta, gamma, activation, include_background, smooth_nr, smooth_dr, batch, weight
        As in :func:`fastloss.focal_tversky_loss`.
    ignore_index
        As in :func:`fastloss.focal_tversky_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.focal_tversky_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.7586
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return _seg_call("focal_tversky_loss", input, target, reduction, weight, alpha=alpha,
                     beta=beta, gamma=gamma, activation=activation,
                     include_background=include_background, smooth_nr=smooth_nr,
                     smooth_dr=smooth_dr, batch=batch, ignore_index=ignore_index)


@doc
def generalized_dice_loss(input, target, w_type="square", activation="softmax",
                          include_background=True, smooth_nr=1e-5, smooth_dr=1e-5,
                          batch=False, ignore_index=None, reduction="mean"):
    """:func:`fastloss.generalized_dice_loss` (MONAI's GeneralizedDiceLoss).

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.generalized_dice_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.generalized_dice_loss`; class indices may have any integer dtype.
    w_type, activation, include_background, smooth_nr, smooth_dr, batch, ignore_index
        As in :func:`fastloss.generalized_dice_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.generalized_dice_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.6688
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return _seg_call("generalized_dice_loss", input, target, reduction, w_type=w_type,
                     activation=activation, include_background=include_background,
                     smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                     ignore_index=ignore_index)


@doc
def sensitivity_specificity_loss(input, target, r=0.05, activation="softmax",
                                 include_background=True, smooth_nr=0.0, smooth_dr=1e-5,
                                 batch=False, weight=None, ignore_index=None,
                                 reduction="mean"):
    """:func:`fastloss.sensitivity_specificity_loss`; gradient for ``input``.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.sensitivity_specificity_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.sensitivity_specificity_loss`;
        class indices may have any integer dtype.
    r, activation, include_background, smooth_nr, smooth_dr, batch, weight, ignore_index
        As in :func:`fastloss.sensitivity_specificity_loss`.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> x = x.requires_grad_()
    >>> y = (torch.arange(32).reshape(2, 4, 4) % 3).to(torch.uint8)
    >>> loss = F.sensitivity_specificity_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.1579
    >>> x.grad.shape
    torch.Size([2, 3, 4, 4])
    """
    return _seg_call("sensitivity_specificity_loss", input, target, reduction, weight, r=r,
                     activation=activation, include_background=include_background,
                     smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=batch,
                     ignore_index=ignore_index)
