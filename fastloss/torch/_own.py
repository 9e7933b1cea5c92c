"""fastloss's own losses in torch (no namesake in ``torch.nn.functional``): the
element-wise, class-score, embedding, GAN and penalty families.

Each function is a row of the :mod:`fastloss.torch._core` table with the
signature of the NumPy function; the torch-op fallback of every row is in
:mod:`fastloss.torch._formulas`.  ``fastloss.torch.functional`` re-exports
them.
"""

from fastloss._docs import doc
from fastloss.torch import _formulas as T
from fastloss.torch._core import Spec, call, index_target, neg_input, register


def _last_dim(args):
    return args["dim"] in (-1, args["p"].dim() - 1)


def _dim_to_axis(kw):
    kw["axis"] = kw.pop("dim")
    return kw


for _s in [
    Spec("log_cosh_loss", ("input", "target"), ("input",), "elem", T.log_cosh_loss,
         derived={"target": neg_input}, same_shape=("target",)),
    Spec("pseudo_huber_loss", ("input", "target"), ("input",), "elem", T.pseudo_huber_loss,
         derived={"target": neg_input}, same_shape=("target",)),
    Spec("sigmoid_focal_loss", ("inputs", "targets", "sample_weight"), ("inputs",), "elem",
         T.sigmoid_focal_loss, same_shape=("targets",)),
    Spec("softmax_focal_loss", ("input", "target"), ("input",), "class", T.softmax_focal_loss,
         accept=index_target),
    Spec("cosface_loss", ("cosine", "target"), ("cosine",), "class", T.cosface_loss),
    Spec("arcface_loss", ("cosine", "target"), ("cosine",), "class", T.arcface_loss),
    Spec("sphereface_loss", ("cosine", "target"), ("cosine",), "class", T.sphereface_loss),
    Spec("hinge_loss", ("input", "target"), ("input",), "elem", T.hinge_loss,
         same_shape=("target",)),
    Spec("exponential_loss", ("input", "target"), ("input",), "elem", T.exponential_loss,
         same_shape=("target",)),
    Spec("multiclass_hinge_loss", ("input", "target"), ("input",), "class",
         T.multiclass_hinge_loss, accept=index_target),
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
]:
    register(_s)
del _s


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
