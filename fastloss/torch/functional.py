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

import fastloss
from fastloss._docs import doc
from fastloss.torch import _core
from fastloss.torch import _formulas as T
from fastloss.torch._core import Spec, call, legacy_reduction, register

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


def _neg_input(g):
    return -g["input"]


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


def _index_target(args):
    return not args["target"].is_floating_point()


def _last_dim(args):
    return args["dim"] in (-1, args["p"].dim() - 1)


def _dim_to_axis(kw):
    kw["axis"] = kw.pop("dim")
    return kw


# One row per loss: the table that drives forward, backward, 'none' and fallback.
_SPECS = [
    Spec("cross_entropy", ("input", "target", "weight"), ("input",), "class",
         F.cross_entropy, accept=_ce_accept),
    Spec("nll_loss", ("input", "target", "weight"), ("input",), "class", F.nll_loss,
         accept=_index_target),
    Spec("mse_loss", ("input", "target", "weight"), ("input",), "elem", F.mse_loss,
         derived={"target": _neg_input}, accept=_no_weight, same_shape=("target",),
         to_fastloss=_drop("weight")),
    Spec("l1_loss", ("input", "target", "weight"), ("input",), "elem", F.l1_loss,
         derived={"target": _neg_input}, accept=_no_weight, same_shape=("target",),
         to_fastloss=_drop("weight")),
    Spec("smooth_l1_loss", ("input", "target"), ("input",), "elem", F.smooth_l1_loss,
         derived={"target": _neg_input}, same_shape=("target",)),
    Spec("huber_loss", ("input", "target", "weight"), ("input",), "elem", F.huber_loss,
         derived={"target": _neg_input}, accept=_no_weight, same_shape=("target",),
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



# ---- fastloss's own losses; their torch-op fallbacks live in _formulas --------

_OWN_SPECS = [
    Spec("log_cosh_loss", ("input", "target"), ("input",), "elem", T.log_cosh_loss,
         derived={"target": _neg_input}, same_shape=("target",)),
    Spec("pseudo_huber_loss", ("input", "target"), ("input",), "elem", T.pseudo_huber_loss,
         derived={"target": _neg_input}, same_shape=("target",)),
    Spec("sigmoid_focal_loss", ("inputs", "targets", "sample_weight"), ("inputs",), "elem",
         T.sigmoid_focal_loss, same_shape=("targets",)),
    Spec("softmax_focal_loss", ("input", "target"), ("input",), "class", T.softmax_focal_loss,
         accept=_index_target),
    Spec("cosface_loss", ("cosine", "target"), ("cosine",), "class", T.cosface_loss),
    Spec("arcface_loss", ("cosine", "target"), ("cosine",), "class", T.arcface_loss),
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
    Spec("sphereface_loss", ("cosine", "target"), ("cosine",), "class", T.sphereface_loss),
    Spec("hinge_loss", ("input", "target"), ("input",), "elem", T.hinge_loss,
         same_shape=("target",)),
    Spec("exponential_loss", ("input", "target"), ("input",), "elem", T.exponential_loss,
         same_shape=("target",)),
    Spec("multiclass_hinge_loss", ("input", "target"), ("input",), "class",
         T.multiclass_hinge_loss, accept=_index_target),
    Spec("contrastive_loss", ("x1", "x2", "label"), ("x1", "x2"), "last", T.contrastive_loss,
         same_shape=("x2",)),
    # the kernel differentiates p; a q that requires grad runs the torch formula
    Spec("js_div", ("p", "q"), ("p",), "last", T.js_div, same_shape=("q",),
         accept=_last_dim, to_fastloss=_dim_to_axis),
    # 'none': each center's gradient mixes rows, so it runs the torch formula
    Spec("center_loss", ("features", "labels", "centers"), ("features", "centers"), None,
         T.center_loss),
    Spec("gan_discriminator_loss", ("real_logits", "fake_logits"),
         ("real_logits", "fake_logits"), None, T.gan_discriminator_loss),
    Spec("gan_generator_loss", ("fake_logits",), ("fake_logits",), "elem",
         T.gan_generator_loss),
    Spec("l1_penalty", ("arrays",), (), None, T.l1_penalty, variadic=True),
    Spec("l2_penalty", ("arrays",), (), None, T.l2_penalty, variadic=True),
    Spec("elastic_net_penalty", ("arrays",), (), None, T.elastic_net_penalty, variadic=True),
]

for _s in _SPECS + _OWN_SPECS:
    if hasattr(fastloss, _s.fl_name or _s.name):
        register(_s)


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


@doc
def log_cosh_loss(input, target, reduction="mean"):
    """:func:`fastloss.log_cosh_loss`: mean of log(cosh(input - target)); gradients for both.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.log_cosh_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.log_cosh_loss`.
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
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.log_cosh_loss(x, t)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.0398
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("log_cosh_loss", dict(input=input, target=target, reduction=reduction))


@doc
def pseudo_huber_loss(input, target, delta=1.0, reduction="mean"):
    """:func:`fastloss.pseudo_huber_loss`: delta^2 (sqrt(1 + (d/delta)^2) - 1); gradients for both.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.pseudo_huber_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.pseudo_huber_loss`.
    delta
        As in :func:`fastloss.pseudo_huber_loss`.
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
    >>> t = torch.tensor([[1.0, 0.0, 0.5], [0.2, 1.0, -1.0]], dtype=torch.float64)
    >>> loss = F.pseudo_huber_loss(x, t, delta=0.5)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.036
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("pseudo_huber_loss", dict(input=input, target=target, delta=delta,
                                          reduction=reduction))


@doc
def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none",
                       sample_weight=None):
    """``torchvision.ops.sigmoid_focal_loss`` on :func:`fastloss.sigmoid_focal_loss`.

    ``sample_weight`` (fastloss's addition) is a tensor broadcastable to the
    loss: 'none' gives ``w * l``, 'sum' ``sum(w * l)``, 'mean'
    ``sum(w * l) / sum(w)`` (``w`` broadcast to the loss's shape); a
    (1, C, 1, ...) tensor is a per-class weight.

    Parameters
    ----------
    inputs, targets, alpha, gamma
        As in :func:`fastloss.sigmoid_focal_loss`.
    %(torch_reduction)s
    sample_weight : torch.Tensor, optional
        Weights broadcastable to the loss (see above).

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
    >>> loss = F.sigmoid_focal_loss(x, t, reduction='mean')
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.0465
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("sigmoid_focal_loss", dict(inputs=inputs, targets=targets, alpha=alpha,
                                           gamma=gamma, reduction=reduction,
                                           sample_weight=sample_weight))


@doc
def softmax_focal_loss(input, target, gamma=2.0, alpha=None, ignore_index=-100,
                       reduction="mean"):
    """:func:`fastloss.softmax_focal_loss`: -alpha_y (1 - p_y)^gamma log p_y over class indices.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.softmax_focal_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.softmax_focal_loss`; class indices may have any integer dtype.
    gamma, alpha, ignore_index
        As in :func:`fastloss.softmax_focal_loss`.
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
    >>> loss = F.softmax_focal_loss(x, y, gamma=2.0)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.1018
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("softmax_focal_loss", dict(input=input, target=target, gamma=gamma,
                                           alpha=alpha, ignore_index=ignore_index,
                                           reduction=reduction))


@doc
def cosface_loss(cosine, target, s=30.0, m=0.35, reduction="mean"):
    """:func:`fastloss.cosface_loss`: cross-entropy of s (cos - m [j = y]); gradient for ``cosine``.

    Parameters
    ----------
    cosine, s, m
        As in :func:`fastloss.cosface_loss`.
    target : torch.Tensor
        As in :func:`fastloss.cosface_loss`; class indices may have any integer dtype.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[0.8, 0.1, -0.3], [0.2, 0.5, 0.9]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.cosface_loss(x, y, s=10.0)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.2615
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("cosface_loss", dict(cosine=cosine, target=target, s=s, m=m,
                                     reduction=reduction))


@doc
def arcface_loss(cosine, target, s=64.0, m=0.5, easy_margin=False, reduction="mean"):
    """:func:`fastloss.arcface_loss`: cross-entropy of s cos(theta_y + m); gradient for ``cosine``.

    Parameters
    ----------
    cosine, s, m, easy_margin
        As in :func:`fastloss.arcface_loss`.
    target : torch.Tensor
        As in :func:`fastloss.arcface_loss`; class indices may have any integer dtype.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[0.8, 0.1, -0.3], [0.2, 0.5, 0.9]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.arcface_loss(x, y, s=10.0)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.2133
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("arcface_loss", dict(cosine=cosine, target=target, s=s, m=m,
                                     easy_margin=easy_margin, reduction=reduction))


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
    lambda_dice
        As in :func:`fastloss.dice_ce_loss`.
    lambda_ce
        As in :func:`fastloss.dice_ce_loss`.
    include_background
        As in :func:`fastloss.dice_ce_loss`.
    squared_pred
        As in :func:`fastloss.dice_ce_loss`.
    jaccard
        As in :func:`fastloss.dice_ce_loss`.
    smooth_nr
        As in :func:`fastloss.dice_ce_loss`.
    smooth_dr
        As in :func:`fastloss.dice_ce_loss`.
    batch
        As in :func:`fastloss.dice_ce_loss`.
    weight
        As in :func:`fastloss.dice_ce_loss`.
    ignore_index
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
    alpha
        As in :func:`fastloss.focal_tversky_loss`.
    beta
        As in :func:`fastloss.focal_tversky_loss`.
    gamma
        As in :func:`fastloss.focal_tversky_loss`.
    activation
        As in :func:`fastloss.focal_tversky_loss`.
    include_background
        As in :func:`fastloss.focal_tversky_loss`.
    smooth_nr
        As in :func:`fastloss.focal_tversky_loss`.
    smooth_dr
        As in :func:`fastloss.focal_tversky_loss`.
    batch
        As in :func:`fastloss.focal_tversky_loss`.
    weight
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


@doc
def sphereface_loss(cosine, target, s=30.0, m=4, reduction="mean"):
    """:func:`fastloss.sphereface_loss`: cross-entropy with psi(theta_y) = (-1)^k cos(m theta) - 2k.

    Parameters
    ----------
    cosine, s, m
        As in :func:`fastloss.sphereface_loss`.
    target : torch.Tensor
        As in :func:`fastloss.sphereface_loss`; class indices may have any integer dtype.
    %(torch_reduction)s

    Returns
    -------
    %(torch_loss)s

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[0.8, 0.1, -0.3], [0.2, 0.5, 0.9]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> y = torch.tensor([0, 2])
    >>> loss = F.sphereface_loss(x, y, s=10.0)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    8.4057
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("sphereface_loss", dict(cosine=cosine, target=target, s=s, m=m,
                                        reduction=reduction))


@doc
def hinge_loss(input, target, margin=1.0, squared=False, reduction="mean"):
    """:func:`fastloss.hinge_loss`: max(0, margin - y x) (squared: its square), y in {-1, +1}.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.hinge_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.hinge_loss`.
    margin, squared
        As in :func:`fastloss.hinge_loss`.
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
    >>> loss = F.hinge_loss(x, t)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.45
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("hinge_loss", dict(input=input, target=target, margin=margin, squared=squared,
                                   reduction=reduction))


@doc
def exponential_loss(input, target, reduction="mean"):
    """:func:`fastloss.exponential_loss`: exp(-y x), y in {-1, +1}.

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.exponential_loss` (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.exponential_loss`.
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
    >>> loss = F.exponential_loss(x, t)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.5993
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("exponential_loss", dict(input=input, target=target, reduction=reduction))


@doc
def multiclass_hinge_loss(input, target, margin=1.0, squared=False, reduction="mean"):
    """:func:`fastloss.multiclass_hinge_loss`: sum over j != y of max(0, margin - x_y + x_j).

    Parameters
    ----------
    input : torch.Tensor
        As in :func:`fastloss.multiclass_hinge_loss`
        (CPU float32/float64 tensors run fastloss's kernel).
    target : torch.Tensor
        As in :func:`fastloss.multiclass_hinge_loss`; class indices may have any integer dtype.
    margin, squared
        As in :func:`fastloss.multiclass_hinge_loss`.
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
    >>> loss = F.multiclass_hinge_loss(x, y)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    2.7
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("multiclass_hinge_loss", dict(input=input, target=target, margin=margin,
                                              squared=squared, reduction=reduction))


@doc
def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean"):
    """:func:`fastloss.contrastive_loss` (label 0 = similar); gradients for both embeddings.

    Parameters
    ----------
    x1, x2, label, margin
        As in :func:`fastloss.contrastive_loss`.
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
    >>> x2 = torch.zeros(2, 3, dtype=torch.float64)
    >>> label = torch.tensor([0.0, 1.0], dtype=torch.float64)
    >>> loss = F.contrastive_loss(x, x2, label)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.595
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("contrastive_loss", dict(x1=x1, x2=x2, label=label, margin=margin,
                                         reduction=reduction))


@doc
def js_div(p, q, dim=-1, reduction="mean"):
    """:func:`fastloss.js_div`: Jensen-Shannon divergence of ``p`` and ``q`` along ``dim``.

    1/2 sum p log(2p/(p+q)) + 1/2 sum q log(2q/(p+q)); the kernel gives the
    gradient for ``p`` (a ``q`` that requires grad runs the torch formula).

    Parameters
    ----------
    p, q
        As in :func:`fastloss.js_div`.
    dim : int
        The axis, as in :func:`fastloss.js_div`.
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
    >>> q = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
    >>> loss = F.js_div(x / x.sum(1, keepdim=True), q)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.1004
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("js_div", dict(p=p, q=q, dim=dim, reduction=reduction))


@doc
def center_loss(features, labels, centers, reduction="mean"):
    """:func:`fastloss.center_loss`: 1/2 ||x_i - c_{y_i}||^2; gradients for features and centers.

    Parameters
    ----------
    features, labels, centers
        As in :func:`fastloss.center_loss`.
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
    >>> centers = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    >>> loss = F.center_loss(x, y, centers)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.16
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("center_loss", dict(features=features, labels=labels, centers=centers,
                                    reduction=reduction))


@doc
def gan_discriminator_loss(real_logits, fake_logits, reduction="mean"):
    """:func:`fastloss.gan_discriminator_loss`: mean softplus(-real) + mean softplus(fake).

    'none' returns the pair of per-element losses.

    Parameters
    ----------
    real_logits, fake_logits
        As in :func:`fastloss.gan_discriminator_loss`.
    %(torch_reduction)s

    Returns
    -------
    loss : torch.Tensor
        0-d for 'mean' and 'sum'; for 'none' the pair of per-element losses.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> fake = torch.tensor([0.3, -0.2], dtype=torch.float64)
    >>> loss = F.gan_discriminator_loss(x, fake)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    1.41
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("gan_discriminator_loss", dict(real_logits=real_logits,
                                               fake_logits=fake_logits, reduction=reduction))


@doc
def gan_generator_loss(fake_logits, non_saturating=True, reduction="mean"):
    """:func:`fastloss.gan_generator_loss`: softplus(-fake) (non-saturating) or -softplus(fake).

    Parameters
    ----------
    fake_logits, non_saturating
        As in :func:`fastloss.gan_generator_loss`.
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
    >>> loss = F.gan_generator_loss(x)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    0.6838
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("gan_generator_loss", dict(fake_logits=fake_logits,
                                           non_saturating=non_saturating, reduction=reduction))


def l1_penalty(*arrays):
    """:func:`fastloss.l1_penalty`: sum of ``|w|`` over all tensors (e.g. ``model.parameters()``).

    Parameters
    ----------
    *arrays : torch.Tensor
        The tensors, e.g. ``*model.parameters()``.

    Returns
    -------
    torch.Tensor
        0-d.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> w = torch.tensor([2.0, -1.0], dtype=torch.float64)
    >>> loss = F.l1_penalty(x, w)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    7.2
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("l1_penalty", dict(arrays=arrays))


def l2_penalty(*arrays):
    """:func:`fastloss.l2_penalty`: sum of w^2 over all tensors (no 1/2).

    Parameters
    ----------
    *arrays : torch.Tensor
        The tensors, e.g. ``*model.parameters()``.

    Returns
    -------
    torch.Tensor
        0-d.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> w = torch.tensor([2.0, -1.0], dtype=torch.float64)
    >>> loss = F.l2_penalty(x, w)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    9.64
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("l2_penalty", dict(arrays=arrays))


def elastic_net_penalty(*arrays, l1_ratio=0.5):
    """:func:`fastloss.elastic_net_penalty`: l1_ratio sum ``|w|`` + (1 - l1_ratio) sum w^2.

    Parameters
    ----------
    *arrays : torch.Tensor
        The tensors, e.g. ``*model.parameters()``.
    l1_ratio
        As in :func:`fastloss.elastic_net_penalty`.

    Returns
    -------
    torch.Tensor
        0-d.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> w = torch.tensor([2.0, -1.0], dtype=torch.float64)
    >>> loss = F.elastic_net_penalty(x, w, l1_ratio=0.3)
    >>> loss.backward()
    >>> round(loss.item(), 4)
    8.908
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return call("elastic_net_penalty", dict(arrays=arrays, l1_ratio=l1_ratio))


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


# ---- softmax family: fastloss forward, backward from the output in torch ops -----

class _SoftmaxFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, mode):
        fn = {"softmax": fastloss.softmax, "log_softmax": fastloss.log_softmax}[mode]
        y = _core._to_torch(fn(_core._np(x), axis=dim))
        ctx.save_for_backward(y)
        ctx.dim, ctx.mode = dim, mode
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if ctx.mode == "softmax":
            return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None, None
        return g - y.exp() * g.sum(ctx.dim, keepdim=True), None, None


class _LogsumexpFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, keepdim):
        out = _core._to_torch(fastloss.logsumexp(_core._np(x), axis=dim, keepdims=keepdim))
        ctx.save_for_backward(x, out)
        ctx.dim, ctx.keepdim = dim, keepdim
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        if not ctx.keepdim:
            for d in sorted(a % x.dim() for a in ctx.dim):
                g, out = g.unsqueeze(d), out.unsqueeze(d)
        return g * (x - out).exp(), None, None


def _softmax_fast(x, dim, dtype):
    return (dtype is None and dim is not None and x.dim() > 0 and is_accelerated(x)
            and not torch.compiler.is_compiling())


def _softmax_call(x, dim, mode):
    if torch.is_grad_enabled() and x.requires_grad:
        return _SoftmaxFn.apply(x, dim, mode)
    fn = {"softmax": fastloss.softmax, "log_softmax": fastloss.log_softmax}[mode]
    return _core._to_torch(fn(_core._np(x), axis=dim))


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``torch.nn.functional.softmax`` with fastloss's forward (``dim`` required on the fast path).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.softmax`` (CPU float32/float64 tensors run fastloss's kernel).
    dim : int
        The axis, as in ``torch.nn.functional.softmax``.
    dtype
        As in ``torch.nn.functional.softmax``.

    Returns
    -------
    torch.Tensor
        Of ``input``'s shape.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> p = F.softmax(x, dim=1)
    >>> bool(torch.allclose(p, torch.softmax(x, dim=1)))
    True
    """
    if not _softmax_fast(input, dim, dtype):
        return F.softmax(input, dim, _stacklevel, dtype)
    return _softmax_call(input, dim, "softmax")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``torch.nn.functional.log_softmax`` with fastloss's forward (``dim`` required on the
    fast path).

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.nn.functional.log_softmax``
        (CPU float32/float64 tensors run fastloss's kernel).
    dim : int
        The axis, as in ``torch.nn.functional.log_softmax``.
    dtype
        As in ``torch.nn.functional.log_softmax``.

    Returns
    -------
    torch.Tensor
        Of ``input``'s shape.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> p = F.log_softmax(x, dim=1)
    >>> p.sum().backward()
    >>> bool(torch.allclose(p, torch.log_softmax(x, dim=1)))
    True
    """
    if not _softmax_fast(input, dim, dtype):
        return F.log_softmax(input, dim, _stacklevel, dtype)
    return _softmax_call(input, dim, "log_softmax")


def logsumexp(input, dim, keepdim=False):
    """``torch.logsumexp`` with fastloss's forward.

    Parameters
    ----------
    input : torch.Tensor
        As in ``torch.logsumexp`` (CPU float32/float64 tensors run fastloss's kernel).
    dim : int
        The axis, as in ``torch.logsumexp``.
    keepdim
        As in ``torch.logsumexp``.

    Returns
    -------
    torch.Tensor
        ``input`` reduced over ``dim``.

    Examples
    --------
    >>> import torch
    >>> import fastloss.torch.functional as F
    >>> x = torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)
    >>> x = x.requires_grad_()
    >>> v = F.logsumexp(x, dim=1)
    >>> v.sum().backward()
    >>> bool(torch.allclose(v, torch.logsumexp(x, dim=1)))
    True
    """
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not (len(dims) > 0 and input.dim() > 0 and is_accelerated(input)
            and not torch.compiler.is_compiling()):
        return torch.logsumexp(input, dim, keepdim)
    if torch.is_grad_enabled() and input.requires_grad:
        return _LogsumexpFn.apply(input, dims, keepdim)
    return _core._to_torch(fastloss.logsumexp(_core._np(input), axis=dims, keepdims=keepdim))


is_accelerated = _core.is_accelerated

from fastloss.torch._distance import boundary_loss, hausdorff_dt_loss  # noqa: E402

__all__ = [n for n in _TORCH_NAMES if n in _core.REGISTRY] + [
    "softmax", "log_softmax", "logsumexp", "fastrcnn_loss", "hausdorff_dt_loss",
    "boundary_loss"]
for _n in _TORCH_NAMES:
    if _n not in _core.REGISTRY:
        del globals()[_n]
del _n, _s
