"""fastloss's kernels behind torch's functional loss API.

Every function has the signature and semantics of its namesake in
``torch.nn.functional`` (or, for fastloss's own losses, of the NumPy
function in ``fastloss``) and is differentiable with autograd.  CPU
float32/float64 tensors go to the fastloss kernels without a copy and get
their gradient from the same pass; anything else runs torch's own
implementation (see :func:`fastloss.torch.is_accelerated`).  The
deprecated ``size_average``/``reduce`` arguments are honoured as in torch.
Where fastloss accepts more than torch (class-index targets of any integer
width, e.g. uint8 label maps), so does the fast path.
"""

import torch
import torch.nn.functional as F

from fastloss._docs import doc
from fastloss.torch import _core
from fastloss.torch._core import (
    Spec,
    call,
    index_target,
    legacy_reduction,
    neg_input,
    register,
)

_TORCH_NAMES = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "soft_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
    "triplet_margin_loss",
    # fastloss's own (torchvision's name and signature for sigmoid_focal_loss)
    "log_cosh_loss", "pseudo_huber_loss", "sigmoid_focal_loss", "softmax_focal_loss",
    "cosface_loss", "arcface_loss", "sphereface_loss", "dice_loss", "jaccard_loss",
    "dice_ce_loss", "tversky_loss", "focal_tversky_loss", "generalized_dice_loss",
    "sensitivity_specificity_loss", "hinge_loss", "exponential_loss", "multiclass_hinge_loss",
    "contrastive_loss", "js_div", "center_loss", "gan_discriminator_loss", "gan_generator_loss",
    "l1_penalty", "l2_penalty", "elastic_net_penalty",
]


def _no_weight(args):
    return args.get("weight") is None


def _drop(*names):
    def f(kw):
        for n in names:
            kw.pop(n, None)
        return kw
    return f


def _ce_accept(args):
    t = args["target"]
    return not t.is_floating_point() or t.shape == args["input"].shape


# One row per loss: the table that drives forward, backward, 'none' and fallback.
_SPECS = [
    Spec("cross_entropy", ("input", "target", "weight"), ("input",), "class",
         F.cross_entropy, accept=_ce_accept),
    Spec("nll_loss", ("input", "target", "weight"), ("input",), "class", F.nll_loss,
         accept=index_target),
    Spec("mse_loss", ("input", "target", "weight"), ("input",), "elem", F.mse_loss,
         derived={"target": neg_input}, accept=_no_weight, same_shape=("target",),
         to_fastloss=_drop("weight")),
    Spec("l1_loss", ("input", "target", "weight"), ("input",), "elem", F.l1_loss,
         derived={"target": neg_input}, accept=_no_weight, same_shape=("target",),
         to_fastloss=_drop("weight")),
    Spec("smooth_l1_loss", ("input", "target"), ("input",), "elem", F.smooth_l1_loss,
         derived={"target": neg_input}, same_shape=("target",)),
    Spec("huber_loss", ("input", "target", "weight"), ("input",), "elem", F.huber_loss,
         derived={"target": neg_input}, accept=_no_weight, same_shape=("target",),
         to_fastloss=_drop("weight")),
    Spec("binary_cross_entropy", ("input", "target", "weight"), ("input",), "elem",
         F.binary_cross_entropy, same_shape=("target",)),
    Spec("binary_cross_entropy_with_logits", ("input", "target", "weight", "pos_weight"),
         ("input",), "elem", F.binary_cross_entropy_with_logits, same_shape=("target",)),
    Spec("kl_div", ("input", "target"), ("input",), "elem", F.kl_div, same_shape=("target",)),
    Spec("soft_margin_loss", ("input", "target"), ("input",), "elem", F.soft_margin_loss,
         same_shape=("target",)),
    Spec("multilabel_soft_margin_loss", ("input", "target", "weight"), ("input",), "last",
         F.multilabel_soft_margin_loss, same_shape=("target",)),
    Spec("multi_margin_loss", ("input", "target", "weight"), ("input",), "class",
         F.multi_margin_loss),
    Spec("triplet_margin_loss", ("anchor", "positive", "negative"),
         ("anchor", "positive", "negative"), "last", F.triplet_margin_loss,
         same_shape=("positive", "negative")),
]

for _s in _SPECS:
    register(_s)
del _s


@doc
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """``torch.nn.functional.cross_entropy`` on fastloss's kernel (one pass for loss and gradient).

    Class-index targets of any integer dtype or class probabilities of the
    input's shape; (C,), (N, C) and (N, C, d1, ...) inputs (the class axis
    of NCHW data read in place).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.cross_entropy``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.cross_entropy``; class indices may have any integer dtype.
    weight, ignore_index, label_smoothing
        As in ``torch.nn.functional.cross_entropy``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.cross_entropy(x, y, label_smoothing=0.1)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.cross_entropy(x, y, label_smoothing=0.1)))
    True
    """
    return call("cross_entropy", dict(
        input=input, target=target, weight=weight, ignore_index=ignore_index,
        reduction=legacy_reduction(size_average, reduce, reduction),
        label_smoothing=label_smoothing))


@doc
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """``torch.nn.functional.nll_loss`` on fastloss's kernel.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.nll_loss`` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.nll_loss``; class indices may have any integer dtype.
    weight, ignore_index
        As in ``torch.nn.functional.nll_loss``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.nll_loss(x.log_softmax(1), y)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.nll_loss(x.log_softmax(1), y)))
    True
    """
    return call("nll_loss", dict(
        input=input, target=target, weight=weight, ignore_index=ignore_index,
        reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """``torch.nn.functional.mse_loss``; gradients for input and target (``weight`` runs
    torch's code).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.mse_loss`` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.mse_loss``.
    %(torch_legacy)s
    %(torch_reduction)s
    weight
        As in ``torch.nn.functional.mse_loss``.

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.mse_loss(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.mse_loss(x, t)))
    True
    """
    return call("mse_loss", dict(input=input, target=target, weight=weight,
                                 reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """``torch.nn.functional.l1_loss``; gradients for input and target (``weight`` runs
    torch's code).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.l1_loss`` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.l1_loss``.
    %(torch_legacy)s
    %(torch_reduction)s
    weight
        As in ``torch.nn.functional.l1_loss``.

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.l1_loss(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.l1_loss(x, t)))
    True
    """
    return call("l1_loss", dict(input=input, target=target, weight=weight,
                                reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``torch.nn.functional.smooth_l1_loss``; gradients for input and target.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.smooth_l1_loss``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.smooth_l1_loss``.
    %(torch_legacy)s
    %(torch_reduction)s
    beta
        As in ``torch.nn.functional.smooth_l1_loss``.

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.smooth_l1_loss(x, t, beta=0.5)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.smooth_l1_loss(x, t, beta=0.5)))
    True
    """
    return call("smooth_l1_loss", dict(input=input, target=target, beta=beta,
                                       reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``torch.nn.functional.huber_loss``; gradients for input and target (``weight`` runs
    torch's code).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.huber_loss``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.huber_loss``.
    %(torch_reduction)s
    delta, weight
        As in ``torch.nn.functional.huber_loss``.

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.huber_loss(x, t, delta=0.5)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.huber_loss(x, t, delta=0.5)))
    True
    """
    return call("huber_loss", dict(input=input, target=target, weight=weight,
                                   reduction=reduction, delta=delta))


@doc
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """``torch.nn.functional.binary_cross_entropy`` (log clamped at -100).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.binary_cross_entropy``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.binary_cross_entropy``.
    weight
        As in ``torch.nn.functional.binary_cross_entropy``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[0.7, 0.2, 0.9], [0.1, 0.6, 0.4]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    >>> loss = F.binary_cross_entropy(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.binary_cross_entropy(x, t)))
    True
    """
    return call("binary_cross_entropy", dict(
        input=input, target=target, weight=weight,
        reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """``torch.nn.functional.binary_cross_entropy_with_logits``.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.binary_cross_entropy_with_logits``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.binary_cross_entropy_with_logits``.
    weight, pos_weight
        As in ``torch.nn.functional.binary_cross_entropy_with_logits``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    >>> loss = F.binary_cross_entropy_with_logits(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.binary_cross_entropy_with_logits(x, t)))
    True
    """
    return call("binary_cross_entropy_with_logits", dict(
        input=input, target=target, weight=weight, pos_weight=pos_weight,
        reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """``torch.nn.functional.kl_div`` (incl. ``'batchmean'``).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.kl_div`` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.kl_div``.
    %(torch_legacy)s
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        As in torch: 'batchmean' divides the sum by the batch size, 'none' gives
        the unreduced losses.
    log_target
        As in ``torch.nn.functional.kl_div``.

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    >>> loss = F.kl_div(x.log_softmax(1), t, reduction='batchmean')
    >>> loss.backward()
    >>> ref = torch.nn.functional.kl_div(x.log_softmax(1), t, reduction='batchmean')
    >>> bool(torch.allclose(loss, ref))
    True
    """
    return call("kl_div", dict(input=input, target=target, log_target=log_target,
                               reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``torch.nn.functional.soft_margin_loss``.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.soft_margin_loss``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.soft_margin_loss``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.soft_margin_loss(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.soft_margin_loss(x, t)))
    True
    """
    return call("soft_margin_loss", dict(
        input=input, target=target, reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """``torch.nn.functional.multilabel_soft_margin_loss``.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.multilabel_soft_margin_loss``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.multilabel_soft_margin_loss``.
    weight
        As in ``torch.nn.functional.multilabel_soft_margin_loss``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    >>> loss = F.multilabel_soft_margin_loss(x, t)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.multilabel_soft_margin_loss(x, t)))
    True
    """
    return call("multilabel_soft_margin_loss", dict(
        input=input, target=target, weight=weight,
        reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """``torch.nn.functional.multi_margin_loss``.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.multi_margin_loss``
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in ``torch.nn.functional.multi_margin_loss``; class indices may have any integer dtype.
    p, margin, weight
        As in ``torch.nn.functional.multi_margin_loss``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.multi_margin_loss(x, y)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.multi_margin_loss(x, y)))
    True
    """
    return call("multi_margin_loss", dict(
        input=input, target=target, p=p, margin=margin, weight=weight,
        reduction=legacy_reduction(size_average, reduce, reduction)))


@doc
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``torch.nn.functional.triplet_margin_loss``; gradients for all three embeddings.

    Parameters
    ----------
    anchor, positive, negative, margin, p, eps, swap
        As in ``torch.nn.functional.triplet_margin_loss``.
    %(torch_legacy)s
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> p, n = torch.ones(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
    >>> loss = F.triplet_margin_loss(x, p, n)
    >>> loss.backward()
    >>> bool(torch.allclose(loss, torch.nn.functional.triplet_margin_loss(x, p, n)))
    True
    """
    return call("triplet_margin_loss", dict(
        anchor=anchor, positive=positive, negative=negative, margin=margin, p=p, eps=eps,
        swap=swap, reduction=legacy_reduction(size_average, reduce, reduction)))


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    """torchvision's ``roi_heads.fastrcnn_loss`` on fastloss's kernels.

    ``labels`` and ``regression_targets`` are per-image lists (concatenated,
    as torchvision does) or tensors.  Returns ``(classification_loss,
    box_loss)``: the cross-entropy mean and the smooth L1 (beta = 1/9) of
    the labelled class's box on foreground rows, summed and divided by the
    number of rows -- :func:`fastloss.fast_rcnn_loss` with ``beta=1/9``.

    Parameters
    ----------
    class_logits, box_regression, labels, regression_targets
        As in :func:`fastloss.fast_rcnn_loss`.

    Returns
    -------
    classification_loss, box_loss : torch.Tensor
        0-d tensors.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 1.2]], dtype=torch.float64)
    >>> logits = logits.requires_grad_()
    >>> boxes = torch.zeros(2, 12, dtype=torch.float64, requires_grad=True)
    >>> labels = [torch.tensor([0, 2])]
    >>> targets = [torch.full((2, 4), 0.05, dtype=torch.float64)]
    >>> cls_loss, box_loss = F.fastrcnn_loss(logits, boxes, labels, targets)
    >>> (cls_loss + box_loss).backward()
    >>> round(cls_loss.item(), 4), round(box_loss.item(), 4)
    (0.3974, 0.0225)
    """
    if isinstance(labels, (list, tuple)):
        labels = torch.cat(labels, dim=0)
    if isinstance(regression_targets, (list, tuple)):
        regression_targets = torch.cat(regression_targets, dim=0)
    classification_loss = cross_entropy(class_logits, labels)
    pos = torch.where(labels > 0)[0]
    n = class_logits.shape[0]
    boxes = box_regression.reshape(n, box_regression.shape[-1] // 4, 4)[pos, labels[pos]]
    box_loss = smooth_l1_loss(boxes, regression_targets[pos], beta=1 / 9, reduction="sum")
    return classification_loss, box_loss / labels.numel()


is_accelerated = _core.is_accelerated

# the softmax family and fastloss's own losses, in modules of their own
from fastloss.torch._distance import boundary_loss, hausdorff_dt_loss  # noqa: E402
from fastloss.torch._own import (  # noqa: E402, F401 (in __all__ by _TORCH_NAMES)
    arcface_loss,
    center_loss,
    contrastive_loss,
    cosface_loss,
    elastic_net_penalty,
    exponential_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    hinge_loss,
    js_div,
    l1_penalty,
    l2_penalty,
    log_cosh_loss,
    multiclass_hinge_loss,
    pseudo_huber_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
    sphereface_loss,
)
from fastloss.torch._segmentation import (  # noqa: E402, F401
    dice_ce_loss,
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    sensitivity_specificity_loss,
    tversky_loss,
)
from fastloss.torch._softmax import log_softmax, logsumexp, softmax  # noqa: E402

__all__ = _TORCH_NAMES + ["softmax", "log_softmax", "logsumexp", "fastrcnn_loss",
                          "hausdorff_dt_loss", "boundary_loss"]
