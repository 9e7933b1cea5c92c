"""softmax, log_softmax and logsumexp for ``fastloss.torch.functional``:
fastloss's forward, the backward from the output in torch ops."""

import torch
import torch.nn.functional as F

import fastloss
from fastloss.torch import _core

is_accelerated = _core.is_accelerated


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
