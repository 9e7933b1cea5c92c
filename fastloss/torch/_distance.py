"""The distance losses in torch: functional forms and MONAI-named classes.

Design:
A. ``hausdorff_dt_loss`` and ``boundary_loss`` are two more rows of the
   :mod:`fastloss.torch._core` table: CPU float32/float64 tensors go to the
   NumPy functions (the distance fields, the loss and the gradient of the
   input from one kernel pass), everything else runs ``_hd_torch`` /
   ``_boundary_torch``: the same formulas in torch ops, with the distance
   fields (constants, as in MONAI) computed by fastloss's exact EDT on a
   CPU copy of the thresholded masks.
B. 'none' (one value per image and class, each mixing a whole image) runs
   the torch-op version, whose autograd handles any ``grad_output``.
C. ``HausdorffDTLoss``, ``LogHausdorffDTLoss`` and ``BoundaryLoss``
   subclass MONAI's own classes (constructor, attributes, ``repr``) and
   override ``forward`` only: when the options and tensors fit the
   functional form (see ``_plan``), it runs; otherwise MONAI's ``forward``
   does, with its warnings and errors (a single channel with
   ``softmax=True``, ``to_onehot_y=True`` or ``include_background=False``
   warns there, so those cases always take MONAI's code).
"""

import math

import numpy as np
import torch

from fastloss import _validate as V
from fastloss.distance import _losses as _DL
from fastloss.distance import _transform as _DT
from fastloss.torch._core import Spec, call, is_accelerated, register

__all__ = ["boundary_loss", "hausdorff_dt_loss", "make_classes"]


# ------------------------------------------------------------ torch-op versions

def _probs_and_target(input, target, activation, include_background):
    """(p, g, c0): probabilities and float target masks of the used classes."""
    C = input.shape[1]
    if activation == "softmax":
        p = torch.softmax(input, 1)
    elif activation == "sigmoid":
        p = torch.sigmoid(input)
    elif activation in (None, "none"):
        p = input
    else:
        raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
    if target.shape == input.shape and (target.is_floating_point() or C == 1):
        g = target.to(p.dtype)
    else:
        lab = target
        if lab.dim() == input.dim():
            lab = lab[:, 0]
        if lab.is_floating_point():
            raise TypeError(f"target must hold integer class indices or masks of the input's "
                            f"shape {tuple(input.shape)}, got dtype {target.dtype}")
        if C == 1:
            g = (lab == 1).unsqueeze(1).to(p.dtype)
        else:
            cls = torch.arange(C, device=lab.device).view((1, C) + (1,) * (lab.dim() - 1))
            g = (lab.unsqueeze(1) == cls).to(p.dtype)
    c0 = 0 if (include_background or C == 1) else 1
    return p[:, c0:], g[:, c0:], c0


def _fields_of(masks, spacing, squared):
    """Distance fields (EDT(m) + EDT(~m), squared with ``squared``) of a
    (N, C', *spatial) bool tensor, as a float64 tensor on the mask's device;
    zero for a mask of one value (MONAI's rule)."""
    m = masks.detach().to("cpu").numpy()
    shp = m.shape
    sp = _DT._spacing(spacing, len(shp) - 2)
    d = _DL._fields(np.ascontiguousarray(m.reshape((-1,) + shp[2:])), sp, V.threads(None),
                   squared=squared)
    d[np.isinf(d)] = 0.0
    return torch.from_numpy(d.reshape(shp)).to(masks.device)


def _reduce(f, batch, reduction):
    if batch:
        f = f.mean(0)
    if reduction == "mean":
        return f.mean()
    if reduction == "sum":
        return f.sum()
    if reduction == "none":
        return f
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _hd_torch(input, target, alpha=2.0, log=False, activation="softmax",
              include_background=False, batch=False, reduction="mean"):
    """hausdorff_dt_loss in torch ops (autograd through the activation)."""
    p, g, _ = _probs_and_target(input, target, activation, include_background)
    with torch.no_grad():
        w = (_fields_of(p > 0.5, None, True) ** (0.5 * alpha)
             + _fields_of(g > 0.5, None, True) ** (0.5 * alpha))
    dims = tuple(range(2, input.dim()))
    f = ((p - g) ** 2 * w.to(p.dtype)).mean(dim=dims)
    out = _reduce(f, batch, reduction)
    return torch.log1p(out) if log else out


def _boundary_torch(input, target, spacing=None, activation="softmax", include_background=True,
                    batch=False, reduction="mean"):
    """boundary_loss in torch ops (autograd through the activation)."""
    p, g, _ = _probs_and_target(input, target, activation, include_background)
    with torch.no_grad():
        inside = g > 0.5
        d = _fields_of(inside, spacing, False)
        phi = torch.where(inside & (d > 0), 1.0 - d, d).to(p.dtype)
    dims = tuple(range(2, input.dim()))
    f = (p * phi).sum(dim=dims) / math.prod(input.shape[2:])
    return _reduce(f, batch, reduction)


def _single_or_double(args):
    """The kernel path for float32 / float64 inputs only: half-precision
    logits gain nothing there (the time is the distance transforms) and keep
    torch's dtype rules on the torch-op path."""
    return args["input"].dtype in (torch.float32, torch.float64)


register(Spec("hausdorff_dt_loss", ("input", "target"), ("input",), None, _hd_torch,
              accept=_single_or_double))
register(Spec("boundary_loss", ("input", "target"), ("input",), None, _boundary_torch,
              accept=_single_or_double))


# ------------------------------------------------------------ functional forms

def hausdorff_dt_loss(input, target, alpha=2.0, log=False, activation="softmax",
                      include_background=False, batch=False, reduction="mean"):
    r""":func:`fastloss.hausdorff_dt_loss` (MONAI's HausdorffDTLoss); gradient for ``input``.

    Per image and class :math:`\frac{1}{S}\sum_x (p_x - g_x)^2 (d_p(x)^\alpha +
    d_g(x)^\alpha)`, the distance fields of :math:`p > 0.5` and :math:`g > 0.5`
    held constant (as in MONAI); ``log=True`` is ``LogHausdorffDTLoss``.
    'none' (one value per image and class) runs the torch-op version; so
    does a ``target`` that requires grad, and any tensor on another device
    or of another dtype (its fields still come from fastloss's EDT, on a
    CPU copy of the masks).

    Parameters
    ----------
    input : torch.Tensor
        (N, C, d1, ..., dk) logits or probabilities, as in
        :func:`fastloss.hausdorff_dt_loss` (CPU float32/float64 tensors run
        fastloss's kernels).
    target : torch.Tensor
        Integer label map (N, d1, ...) or (N, 1, d1, ...), or masks of the
        input's shape.
    alpha : float
        Exponent of the distances.
    log : bool
        :math:`\log(1 + L)` after the reduction.
    activation : {'softmax', 'sigmoid', None}
        As in :func:`fastloss.hausdorff_dt_loss`.
    include_background : bool
        As in :func:`fastloss.hausdorff_dt_loss`.
    batch : bool
        As in :func:`fastloss.hausdorff_dt_loss`.
    reduction : {'mean', 'sum', 'none'}
        'none' gives the (N, C') per-class losses ((C',) with ``batch``).

    Returns
    -------
    loss : torch.Tensor
        0-d for 'mean' and 'sum'.

    Examples
    --------
    >>> import torch
    >>> from fastloss.torch._distance import hausdorff_dt_loss
    >>> x = torch.tensor([[[[0.0, 1.0, 1.0, 0.0]]]], dtype=torch.float64, requires_grad=True)
    >>> y = torch.tensor([[[0, 0, 1, 1]]])
    >>> loss = hausdorff_dt_loss(x, y, activation=None)
    >>> loss.backward()
    >>> loss.item(), x.grad.shape
    (1.75, torch.Size([1, 1, 1, 4]))
    """
    return call("hausdorff_dt_loss", dict(
        input=input, target=target, alpha=float(alpha), log=bool(log), activation=activation,
        include_background=bool(include_background), batch=bool(batch), reduction=reduction))


def boundary_loss(input, target, spacing=None, activation="softmax", include_background=True,
                  batch=False, reduction="mean"):
    r""":func:`fastloss.boundary_loss` (MONAI 1.6's BoundaryLoss); gradient for ``input``.

    Per image and class :math:`\frac{1}{S}\sum_x p_x \phi_g(x)`, the signed
    map :math:`\phi_g` of the target held constant (as in MONAI); with
    ``spacing``, Kervadec's anisotropic map.  'none' runs the torch-op
    version, as do targets that require grad and other devices / dtypes.

    Parameters
    ----------
    input : torch.Tensor
        (N, C, d1, ..., dk) logits or probabilities, as in
        :func:`fastloss.boundary_loss`.
    target : torch.Tensor
        Integer label map (N, d1, ...) or (N, 1, d1, ...), or masks of the
        input's shape.
    spacing : float or sequence of k floats, optional
        Voxel size per spatial axis.
    activation : {'softmax', 'sigmoid', None}
        As in :func:`fastloss.boundary_loss`.
    include_background : bool
        As in :func:`fastloss.boundary_loss`.
    batch : bool
        As in :func:`fastloss.boundary_loss`.
    reduction : {'mean', 'sum', 'none'}
        'none' gives the (N, C') per-class losses ((C',) with ``batch``).

    Returns
    -------
    loss : torch.Tensor
        0-d for 'mean' and 'sum'.

    Examples
    --------
    >>> import torch
    >>> from fastloss.torch._distance import boundary_loss
    >>> x = torch.tensor([[[[0.0, 1.0, 1.0, 0.0]]]], dtype=torch.float64, requires_grad=True)
    >>> y = torch.tensor([[[0, 0, 1, 1]]])            # phi = [2, 1, 0, -1]
    >>> loss = boundary_loss(x, y, activation=None)
    >>> loss.backward()
    >>> loss.item(), x.grad.flatten().tolist()
    (0.25, [0.5, 0.25, 0.0, -0.25])
    """
    sp = None if spacing is None else (
        float(spacing) if isinstance(spacing, (int, float)) else tuple(float(s) for s in spacing))
    return call("boundary_loss", dict(
        input=input, target=target, spacing=sp, activation=activation,
        include_background=bool(include_background), batch=bool(batch), reduction=reduction))


# ------------------------------------------------------------ MONAI-named classes

def _red(mod):
    return getattr(mod.reduction, "value", mod.reduction)


def _plan(mod, input, target, map_dims):
    """(x, target, activation) for the functional form, or None (MONAI's forward).

    ``map_dims``: the label-map ranks ``to_onehot_y`` accepts besides
    (N, 1, *spatial) (BoundaryLoss also takes (N, *spatial))."""
    if input.dim() not in (4, 5) or not is_accelerated(input):
        return None
    if _red(mod) not in ("mean", "sum", "none"):
        return None
    C = input.shape[1]
    if C == 1 and (mod.softmax or mod.to_onehot_y or not mod.include_background):
        return None  # MONAI warns (its code runs)
    if target.requires_grad or target.device != input.device:
        return None
    if mod.to_onehot_y:
        if target.dim() == input.dim() and target.shape[1] == 1:
            t = target[:, 0]
        elif target.dim() == input.dim() - 1 and target.dim() in map_dims:
            t = target
        else:
            return None
        if t.shape[1:] != input.shape[2:]:
            return None
        t = t.long() if t.is_floating_point() else t
    else:
        if target.shape != input.shape:
            return None
        t = target if target.dtype == input.dtype else target.to(input.dtype)
    x = input
    act = None
    if mod.other_act is not None:
        x = mod.other_act(input)
        if not is_accelerated(x) or x.shape != input.shape:
            return None
    elif mod.sigmoid:
        act = "sigmoid"
    elif mod.softmax:
        act = "softmax"
    return x, t, act


def make_classes():
    """``{'HausdorffDTLoss': ..., 'LogHausdorffDTLoss': ..., 'BoundaryLoss': ...}``:
    subclasses of the installed MONAI's classes (those it has)."""
    import monai.losses as ML

    classes = {}

    def done(cls):
        cls.__module__ = "fastloss.torch"
        cls.__qualname__ = cls.__name__
        cls.__doc__ = _CLASS_DOC.format(name=cls.__name__)
        classes[cls.__name__] = cls
        return cls

    def hd_forward(self, input, target, log):
        plan = _plan(self, input, target, ())
        if plan is None:
            return None
        x, t, act = plan
        out = hausdorff_dt_loss(x, t, alpha=float(self.alpha), log=log, activation=act,
                                include_background=self.include_background, batch=self.batch,
                                reduction=_red(self))
        if _red(self) == "none":  # MONAI's broadcastable (N or 1, C', 1, ...)
            out = out.reshape((1 if self.batch else input.shape[0], -1)
                              + (1,) * (input.dim() - 2))
        return out

    if hasattr(ML, "HausdorffDTLoss"):
        @done
        class HausdorffDTLoss(ML.HausdorffDTLoss):
            def forward(self, input, target):
                out = hd_forward(self, input, target, False)
                return super().forward(input, target) if out is None else out

    if hasattr(ML, "LogHausdorffDTLoss"):
        @done
        class LogHausdorffDTLoss(ML.LogHausdorffDTLoss):
            def forward(self, input, target):
                out = hd_forward(self, input, target, True)
                return super().forward(input, target) if out is None else out

    if hasattr(ML, "BoundaryLoss"):
        @done
        class BoundaryLoss(ML.BoundaryLoss):
            def forward(self, input, target):
                plan = _plan(self, input, target, (input.dim() - 1,))
                if plan is None:
                    return super().forward(input, target)
                x, t, act = plan
                return boundary_loss(x, t, activation=act,
                                     include_background=self.include_background,
                                     batch=self.batch, reduction=_red(self))

    return classes


_CLASS_DOC = """``monai.losses.{name}`` (same constructor, defaults and warnings) on
    fastloss's kernels.

    A subclass of MONAI's class: the constructor, attributes and ``repr``
    are MONAI's.  ``forward`` gives MONAI's value and gradient: CPU
    float32/float64 inputs of 2-D/3-D images run fastloss's EDT and loss
    kernels (any ``sigmoid`` / ``softmax`` / ``other_act``, ``to_onehot_y``,
    ``include_background``, ``batch``, every reduction); a single channel
    with ``softmax``, ``to_onehot_y`` or ``include_background=False`` (where
    MONAI warns), a target that requires grad, other devices and dtypes
    run MONAI's own code.

    Parameters
    ----------
    *args, **kwargs
        The constructor arguments of ``monai.losses.{name}``.

    Examples
    --------
    >>> import torch, monai.losses
    >>> from fastloss.torch._distance import make_classes
    >>> cls = make_classes()["{name}"]
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> y = (torch.arange(32).reshape(2, 1, 4, 4) % 3)
    >>> ours = cls(softmax=True, to_onehot_y=True)(x, y)
    >>> theirs = monai.losses.{name}(softmax=True, to_onehot_y=True)(x, y)
    >>> bool(torch.allclose(ours, theirs.to(ours.dtype)))
    True
    """
