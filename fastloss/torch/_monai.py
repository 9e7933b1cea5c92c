"""MONAI-named loss classes over fastloss's segmentation and focal kernels.

Design:
A. Each class subclasses MONAI's own (same constructor, defaults,
   attributes, buffers, ``state_dict`` and ``repr``; MONAI is imported on
   first use of a class name) and overrides ``forward`` only.
B. ``forward`` first builds a *plan*: the kernel call that gives MONAI's
   value for this module's options and these tensors.  When no plan exists
   (an option or input the kernels do not serve: see ``PATHS``), the class
   runs MONAI's own ``forward``, which is exact by definition, with
   autograd.  MONAI's warnings (a single channel with ``softmax=True``,
   ``to_onehot_y=True`` or ``include_background=False``) are given on both
   paths, MONAI's errors come from MONAI's code.
C. Compound losses (DiceCELoss, DiceFocalLoss, GeneralizedDiceFocalLoss)
   hold MONAI's sub-modules; their classes are switched to the fastloss
   subclasses here (``DiceLoss``, ``FocalLoss``, ``GeneralizedDiceLoss``,
   ``CrossEntropyLoss``, ``BCEWithLogitsLoss``: subclasses without state of
   their own, so the switch keeps every attribute and buffer).  MONAI's
   ``forward`` of the compound then runs each term on a kernel where one
   fits; DiceCELoss with softmax has one fused kernel for both terms, and
   DiceFocalLoss with ``to_onehot_y`` hands the label map itself to the
   Dice kernel and runs both kernels in one autograd node whose gradients
   are added in place (about 10 % of a (2, 4, 96, 96, 96) step saved
   against autograd's sum of two fresh gradient tensors).
D. The kernels compute in the input's dtype.  MONAI casts some steps to
   float32 (FocalLoss casts input and target, GeneralizedDiceLoss its
   weights, the one-hot targets of DiceFocalLoss are float32): a float64
   input gets float64 results here where MONAI's carry float32 rounding,
   and FocalLoss returns the input's dtype where MONAI returns float32.
"""

import warnings

import numpy as np
import torch

import fastloss
import fastloss.torch.functional as FF
from fastloss.torch._core import is_accelerated

_MSG = "single channel prediction, `{}=True` ignored."
_MSG_BG = "single channel prediction, `include_background=False` ignored."

# option -> path, per class (the table of docs/guide/monai.md is written from it)
PATHS = {
    "DiceLoss": {
        "kernel": "softmax / sigmoid / no activation; other_act (run by torch, its output "
                  "fed to the kernel); to_onehot_y; include_background; squared_pred; "
                  "jaccard; smooth_nr, smooth_dr; batch; weight; ignore_index (label maps, "
                  "hard one-hot targets, one channel); soft_label with hard targets and "
                  "softmax/sigmoid, or with squared_pred; reduction 'mean', 'sum'",
        "torch": "reduction 'none'; soft_label with soft targets or without activation; "
                 "ignore_index with soft or multi-label targets",
    },
    "GeneralizedDiceLoss": {
        "kernel": "activations, other_act, to_onehot_y, include_background, w_type, "
                  "smooth_nr, smooth_dr, batch, soft_label as DiceLoss; reduction 'mean', 'sum'",
        "torch": "reduction 'none'; soft_label as DiceLoss",
    },
    "TverskyLoss": {
        "kernel": "activations, other_act, to_onehot_y, include_background, alpha, beta "
                  "(>= 0), smooth_nr, smooth_dr, batch, ignore_index, soft_label as DiceLoss; "
                  "reduction 'mean', 'sum'",
        "torch": "reduction 'none'; negative alpha or beta; soft_label and ignore_index as "
                 "DiceLoss",
    },
    "FocalLoss": {
        "kernel": "sigmoid (default): to_onehot_y, include_background, gamma >= 0, alpha "
                  "(scalar, or per class on the positives as MONAI), weight (scalar or per "
                  "class), ignore_index (MONAI's mask and divisors), reductions 'mean', "
                  "'sum', 'none'; "
                  "use_softmax=True with to_onehot_y: include_background (softmax over the "
                  "C - 1 other channels, as MONAI), alpha (scalar or per class), weight, "
                  "ignore_index, all reductions",
        "torch": "sigmoid with soft targets; use_softmax with a target "
                 "of the input's shape (soft / multi-label); ignore_index with soft one-hot "
                 "targets",
    },
    "DiceCELoss": {
        "kernel": "softmax=True with C >= 2: one fused kernel (Dice + CE, weight, "
                  "lambda_dice, lambda_ce, label maps or one-hot/soft targets); otherwise "
                  "(softmax=False, MONAI's default; sigmoid; other_act) the Dice term as "
                  "DiceLoss and the CE term on the cross_entropy kernel, BCE-with-logits "
                  "kernel for one channel (pos_weight=weight)",
        "torch": "the Dice term's MONAI cases as DiceLoss (label_smoothing > 0 runs the "
                 "Dice kernel and the cross_entropy kernel with label_smoothing)",
    },
    "DiceFocalLoss": {
        "kernel": "the Dice term as DiceLoss (with to_onehot_y the label map itself), the "
                  "focal term as FocalLoss (sigmoid; gamma, alpha, weight)",
        "torch": "each term's torch cases as DiceLoss / FocalLoss",
    },
    "GeneralizedDiceFocalLoss": {
        "kernel": "the terms as GeneralizedDiceLoss and FocalLoss",
        "torch": "each term's torch cases as GeneralizedDiceLoss / FocalLoss",
    },
}


def _red(mod):
    return getattr(mod.reduction, "value", mod.reduction)


def _label_like(t):
    return not (t.is_floating_point() or t.is_complex())


def _activation(mod, input, warn=True):
    """(tensor for the kernel, activation name): MONAI's sigmoid / softmax / other_act."""
    if mod.other_act is not None:
        return mod.other_act(input), None
    if mod.sigmoid:
        return input, "sigmoid"
    if mod.softmax:
        if input.shape[1] == 1:
            if warn:
                warnings.warn(_MSG.format("softmax"), stacklevel=4)
            return input, None
        return input, "softmax"
    return input, None


def _target(input, target, to_onehot_y, warn=True):
    """The kernel's target: a label map (N, *spatial) with to_onehot_y, else the
    input-shaped target (floats in the input's dtype); None: MONAI's code runs."""
    if torch.is_grad_enabled() and target.requires_grad:
        return None
    if target.dim() != input.dim():
        return None
    C = input.shape[1]
    if to_onehot_y:
        if C == 1:
            if warn:
                warnings.warn(_MSG.format("to_onehot_y"), stacklevel=4)
        else:
            if target.shape[1] != 1 or target.shape[2:] != input.shape[2:]:
                return None
            if target.device != input.device:
                return None
            t = target[:, 0]
            return t.long() if t.is_floating_point() else t
    if target.shape != input.shape:
        return None
    if target.is_floating_point() and target.dtype != input.dtype:
        target = target.to(input.dtype)
    return target


def _bg_warn(mod, input, warn=True):
    if warn and not mod.include_background and input.shape[1] == 1:
        warnings.warn(_MSG_BG, stacklevel=4)


def _hard(t):
    """True when a target holds only 0 and 1 (label maps are hard by construction)."""
    return _label_like(t) or bool(((t == 0) | (t == 1)).all())


def _overlap_plan(mod, input, target, to_onehot_y, ignore_index=None):
    """(x, target, activation) for the Dice-family kernels, or None."""
    if input.dim() < 3 or not is_accelerated(input) or _red(mod) not in ("mean", "sum"):
        return None
    if mod.other_act is not None and (mod.sigmoid or mod.softmax):
        return None
    t = _target(input, target, to_onehot_y, warn=False)
    if t is None:
        return None
    is_map = t.dim() == input.dim() - 1
    soft_label = getattr(mod, "soft_label", False)
    if soft_label and not getattr(mod, "squared_pred", False):
        # MONAI's soft-label form equals the plain sums for hard targets and p in [0, 1]
        if mod.other_act is not None or not (mod.sigmoid or (mod.softmax and input.shape[1] > 1)):
            return None
        if not is_map and not _hard(t):
            return None
    if ignore_index is not None and not is_map:
        if input.shape[1] == 1:
            if t.is_floating_point() and not bool((t == t.round()).all()):
                return None
        elif not _hard(t) or bool((t.sum(1) > 1).any()):
            return None
        elif 0 <= ignore_index < input.shape[1] and bool((t.sum(1) == 0).any()):
            return None
    # every check passed: give MONAI's warnings, then activate
    x, act = _activation(mod, input)
    if to_onehot_y and input.shape[1] == 1:
        warnings.warn(_MSG.format("to_onehot_y"), stacklevel=3)
    _bg_warn(mod, input)
    if x is not input and not is_accelerated(x):
        return None
    return x, t, act


def _class_weight(w, n_used):
    """MONAI DiceLoss's weight as a list (None when not applied); False: MONAI must run."""
    if w is None or n_used == 1:
        return None
    if w.ndim == 0:
        return [float(w)] * n_used if float(w) >= 0 else False
    if w.shape[0] != n_used or bool((w < 0).any()):
        return False
    return w.tolist()


def _dice_value(mod, input, target, to_onehot_y):
    plan = _overlap_plan(mod, input, target, to_onehot_y, mod.ignore_index)
    if plan is None:
        return None
    x, t, act = plan
    C = input.shape[1]
    w = _class_weight(mod.class_weight, C if (mod.include_background or C == 1) else C - 1)
    if w is False:
        return None
    fn = FF.jaccard_loss if mod.jaccard else FF.dice_loss
    return fn(x, t, activation=act, include_background=mod.include_background,
              squared_pred=mod.squared_pred, smooth_nr=mod.smooth_nr, smooth_dr=mod.smooth_dr,
              batch=mod.batch, weight=w, ignore_index=mod.ignore_index, reduction=_red(mod))


def _one_hot(t, C):
    """Boolean one-hot (N, C, *spatial) of a label map (N, *spatial).

    One broadcast compare, in NumPy for CPU labels: on (2, 4, 96, 96, 96)
    int64 labels 1.4 ms against 6.3 ms for torch's ``==`` (and 17 ms for a
    float one-hot); the focal kernel reads the bool target in its own width."""
    if t.is_cpu and t.layout == torch.strided and not t.requires_grad:
        tn = t.numpy(force=True)
        classes = np.arange(C)
        if (tn.dtype.kind == "f" and C < 1 << 24) or (
                tn.dtype.kind in "iu" and np.iinfo(tn.dtype).max >= C - 1):
            classes = classes.astype(tn.dtype)   # a compare without a cast per element
        return torch.from_numpy(tn[:, None] == classes.reshape((1, C) + (1,) * (tn.ndim - 1)))
    classes = torch.arange(C, device=t.device).view((1, C) + (1,) * (t.dim() - 1))
    return t.unsqueeze(1) == classes


def _focal_value(mod, input, target, to_onehot_y, warn=True):
    """MONAI FocalLoss's value on the kernels, or None."""
    red = _red(mod)
    if (input.dim() < 3 or not is_accelerated(input) or not mod.gamma >= 0
            or red not in ("mean", "sum", "none")):
        return None
    t = _target(input, target, to_onehot_y, warn=False)
    if t is None:
        return None
    C = input.shape[1]
    is_map = t.dim() == input.dim() - 1
    ii = mod.ignore_index
    mask = None
    if ii is not None:
        # MONAI's create_ignore_mask, as a boolean (N, *spatial) map of kept positions
        if is_map:
            mask = t != ii
        elif C == 1:
            mask = t[:, 0] != ii
        else:
            if not _hard(t):
                return None
            mask = t[:, ii] == 0 if 0 <= ii < C else t.sum(1) > 0
        if not is_map:
            t = t * mask.unsqueeze(1)  # MONAI zeroes the target where masked
    if not mod.use_softmax and not is_map and not _hard(t):
        # MONAI's sigmoid focal term uses 1 - p_t = sigmoid(-x (2 t - 1)), which equals
        # the kernel's p (1 - t) + (1 - p) t only for targets 0 and 1
        return None
    drop_bg = not mod.include_background and C > 1
    Cu = C - 1 if drop_bg else C
    cw = mod.class_weight
    if cw is not None:
        cw = cw.to(dtype=input.dtype, device=input.device)
        if (cw.ndim > 0 and (Cu == 1 or cw.numel() != Cu)) or bool((cw < 0).any()):
            return None
    alpha = mod.alpha
    if mod.use_softmax:
        if not is_map:
            return None
        if alpha is not None and not isinstance(alpha, float):
            if alpha.ndim != 1 or alpha.shape[0] != Cu:
                return None
    elif alpha is not None and not isinstance(alpha, float):
        if alpha.ndim != 1 or alpha.shape[0] != Cu:
            return None  # MONAI raises
    if warn:
        if to_onehot_y and C == 1:
            warnings.warn(_MSG.format("to_onehot_y"), stacklevel=3)
        _bg_warn(mod, input)
    x = input[:, 1:] if drop_bg else input
    S = x[0, 0].numel()
    if mod.use_softmax:
        if isinstance(alpha, float):
            if drop_bg:
                warnings.warn("`include_background=False`, scalar `alpha` ignored when using "
                              "softmax.", stacklevel=3)
                alpha = None
            else:
                alpha = [1.0 - alpha] + [alpha] * (Cu - 1)
        a = None if alpha is None else torch.as_tensor(alpha, dtype=input.dtype)
        # a per-class weight multiplies the one nonzero term of a position: alpha_y w_y
        if cw is not None:
            a = (torch.ones(Cu, dtype=input.dtype) if a is None else a) * cw.cpu()
        lab = t
        if drop_bg or mask is not None:
            drop = (t == 0) if drop_bg else torch.zeros_like(t, dtype=torch.bool)
            if mask is not None:
                drop = drop | ~mask
            lab = torch.where(drop, -100, t.long() - (1 if drop_bg else 0))
        kw = dict(gamma=float(mod.gamma), alpha=None if a is None else a.tolist(),
                  ignore_index=-100)
        if red == "none":
            # MONAI's (N, C, *spatial) terms: a position's loss sits in its class
            per = FF.softmax_focal_loss(x, lab, reduction="none", **kw)
            return per.unsqueeze(1) * _one_hot(lab, Cu).to(input.dtype)
        if mask is None:
            total = FF.softmax_focal_loss(x, lab, reduction="sum", **kw)
            # MONAI's 'mean' averages the (N, C, *spatial) class terms; 'sum' sums
            # the spatial means of each (image, class)
            return total / (x.shape[0] * Cu * S) if red == "mean" else total / S
        # masked: MONAI divides by the kept positions (of the batch for 'mean',
        # of each image for 'sum'), floored at float32's eps
        if red == "mean":
            return (FF.softmax_focal_loss(x, lab, reduction="sum", **kw)
                    / _count(mask, None))
        per = FF.softmax_focal_loss(x, lab, reduction="none", **kw)
        return (per.flatten(1).sum(1) / _count(mask, 1)).sum()
    if is_map:
        g = _one_hot(t, C)
    else:
        g = t if t.is_floating_point() else t.to(input.dtype)
    if drop_bg:
        g = g[:, 1:]
    seq = alpha is not None and not isinstance(alpha, float)
    a = -1.0 if alpha is None or seq else float(alpha)
    # per-element weights: a class alpha on the positives (MONAI's sequence alpha)
    # and the ignore mask; 'mean' / 'sum' then divide by MONAI's counts
    w = None
    if seq:
        av = alpha.to(input.dtype).view([1, Cu] + [1] * (x.dim() - 2))
        w = torch.where(g == 1, av, torch.ones((), dtype=input.dtype))
    if mask is not None:
        wm = mask.unsqueeze(1).to(input.dtype)
        w = wm if w is None else w * wm
    fk = dict(alpha=a, gamma=float(mod.gamma), sample_weight=w)
    if cw is None and red != "none" and (red == "mean" or mask is None):
        total = FF.sigmoid_focal_loss(x, g, reduction="sum", **fk)
        if red == "sum":
            return total / S
        return total / (_count(mask, None) if mask is not None else x.numel())
    loss = FF.sigmoid_focal_loss(x, g, reduction="none", **fk)
    if cw is not None:
        loss = loss * (cw if cw.ndim == 0 else cw.view([1, Cu] + [1] * (x.dim() - 2)))
    if red == "none":
        return loss
    if mask is None:
        return loss.mean() if red == "mean" else loss.sum() / S
    if red == "mean":
        return loss.sum() / _count(mask, None)
    return (loss.flatten(2).sum(2) / _count(mask, 1)[:, None]).sum()


def _count(mask, per_image):
    """Kept positions (all, or per image with ``per_image``), floored at float32's eps
    as MONAI's FocalLoss does (its mask is float32)."""
    n = mask.flatten(1).sum(1) if per_image else mask.sum()
    return n.to(torch.float64).clamp(min=torch.finfo(torch.float32).eps)


def _gdl_value(mod, input, target, to_onehot_y):
    plan = _overlap_plan(mod, input, target, to_onehot_y)
    if plan is None:
        return None
    x, t, act = plan
    return FF.generalized_dice_loss(
        x, t, w_type=str(mod.w_type), activation=act, include_background=mod.include_background,
        smooth_nr=mod.smooth_nr, smooth_dr=mod.smooth_dr, batch=mod.batch, reduction=_red(mod))


def _tversky_value(mod, input, target, to_onehot_y):
    if not (mod.alpha >= 0 and mod.beta >= 0):
        return None
    plan = _overlap_plan(mod, input, target, to_onehot_y, mod.ignore_index)
    if plan is None:
        return None
    x, t, act = plan
    return FF.tversky_loss(
        x, t, alpha=float(mod.alpha), beta=float(mod.beta), activation=act,
        include_background=mod.include_background, smooth_nr=mod.smooth_nr,
        smooth_dr=mod.smooth_dr, batch=mod.batch, ignore_index=mod.ignore_index,
        reduction=_red(mod))


class _SumOfKernels(torch.autograd.Function):
    """sum_k lam_k L_k(x) from NumPy kernel calls on the same input, their gradients
    added in place into the first one's buffer (autograd would add two fresh
    tensors of the input's size: one more pass and a new allocation)."""

    @staticmethod
    def forward(ctx, x, calls):
        ctx.calls, ctx.x = calls, x.detach()
        loss, ctx.grad = _sum_of_kernels(ctx.x, calls)
        return torch.tensor(loss, dtype=x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, go):
        g, ctx.grad = ctx.grad, None
        if g is None:  # a second backward through a retained graph
            g = _sum_of_kernels(ctx.x, ctx.calls)[1]
        v = go.item()
        if v != 1.0:
            g.mul_(v)
        return g, None


def _sum_of_kernels(x, calls):
    xn = x.numpy()
    total, acc = 0.0, None
    for lam, sl, fn in calls:
        loss, g = fn(xn[sl])
        total += lam * float(loss)
        if lam != 1.0:
            np.multiply(g, lam, out=g)
        if acc is None and sl == slice(None):
            acc = g
        elif acc is None:
            acc = np.zeros(xn.shape, dtype=g.dtype)
            acc[sl] = g
        else:
            np.add(acc[sl], g, out=acc[sl])
    return total, torch.from_numpy(acc)


def _dice_focal_fused(mod, input, target):
    """DiceFocalLoss (label map, sigmoid focal term) as one autograd node, or None."""
    d, f = mod.dice, mod.focal
    red = _red(d)
    if (not (torch.is_grad_enabled() and input.requires_grad) or torch.compiler.is_compiling()
            or torch._C._are_functorch_transforms_active() or d.other_act is not None
            or f.class_weight is not None or f.ignore_index is not None
            or not (f.alpha is None or isinstance(f.alpha, float)) or not f.gamma >= 0
            or red not in ("mean", "sum")):
        return None
    plan = _overlap_plan(d, input, target, True, d.ignore_index)
    if plan is None:
        return None
    x, t, act = plan
    C = input.shape[1]
    w = _class_weight(d.class_weight, C if d.include_background else C - 1)
    if w is False:
        return None
    tn = t.numpy()
    dice_fn = fastloss.jaccard_loss if d.jaccard else fastloss.dice_loss
    dkw = dict(activation=act, include_background=d.include_background,
               squared_pred=d.squared_pred, smooth_nr=d.smooth_nr, smooth_dr=d.smooth_dr,
               batch=d.batch, weight=w, ignore_index=d.ignore_index, reduction=red,
               return_grad=True)
    drop = not f.include_background
    sl = (slice(None), slice(1, None)) if drop else slice(None)
    g = _one_hot(t, C)
    gn = (g[:, 1:] if drop else g).numpy()
    S = x[0, 0].numel()
    # MONAI's 'mean' over all (N, C, *spatial) terms (the kernel's own 'mean', which
    # scales the gradient in the same pass), 'sum' of spatial means
    fkw = dict(alpha=-1.0 if f.alpha is None else float(f.alpha), gamma=float(f.gamma),
               reduction=red, return_grad=True)
    calls = [(float(mod.lambda_dice), slice(None), lambda xn: dice_fn(xn, tn, **dkw)),
             (float(mod.lambda_focal) / (1 if red == "mean" else S), sl,
              lambda xn: fastloss.sigmoid_focal_loss(xn, gn, **fkw))]
    return _SumOfKernels.apply(input, calls)


def _compound_shapes_ok(input, target):
    return input.dim() == target.dim() and target.shape[1] in (1, input.shape[1])


def make_classes():
    import monai.losses as ML

    import fastloss.torch as ft

    classes = {}

    def done(cls):
        cls.__module__ = "fastloss.torch"
        cls.__qualname__ = cls.__name__
        cls.__doc__ = _class_doc(cls.__name__)
        classes[cls.__name__] = cls
        return cls

    @done
    class DiceLoss(ML.DiceLoss):
        def forward(self, input, target):
            out = _dice_value(self, input, target, self.to_onehot_y)
            return super().forward(input, target) if out is None else out

    @done
    class GeneralizedDiceLoss(ML.GeneralizedDiceLoss):
        def forward(self, input, target):
            out = _gdl_value(self, input, target, self.to_onehot_y)
            return super().forward(input, target) if out is None else out

    @done
    class TverskyLoss(ML.TverskyLoss):
        def forward(self, input, target):
            out = _tversky_value(self, input, target, self.to_onehot_y)
            return super().forward(input, target) if out is None else out

    @done
    class FocalLoss(ML.FocalLoss):
        def forward(self, input, target):
            out = _focal_value(self, input, target, self.to_onehot_y)
            return super().forward(input, target) if out is None else out

    def adopt(mod):
        """Switch MONAI's sub-modules of a compound loss to the fastloss subclasses."""
        for name, cls in (("dice", DiceLoss), ("focal", FocalLoss),
                          ("generalized_dice", GeneralizedDiceLoss),
                          ("cross_entropy", ft.CrossEntropyLoss),
                          ("binary_cross_entropy", ft.BCEWithLogitsLoss)):
            sub = getattr(mod, name, None)
            if sub is not None and cls.__mro__[1] is type(sub):
                sub.__class__ = cls

    @done
    class DiceCELoss(ML.DiceCELoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            adopt(self)

        def forward(self, input, target):
            out = self._fused(input, target) if _compound_shapes_ok(input, target) else None
            return super().forward(input, target) if out is None else out

        def _fused(self, input, target):
            d, ce = self.dice, self.cross_entropy
            if not (d.softmax and input.shape[1] >= 2 and ce.label_smoothing == 0.0):
                return None
            if ce.weight is not None and (ce.weight.device != input.device
                                          or ce.weight.dtype != input.dtype):
                return None  # MONAI's cross_entropy raises on a weight of another dtype
            plan = _overlap_plan(d, input, target, d.to_onehot_y)
            if plan is None:
                return None
            x, t, _ = plan
            if t.dim() == input.dim() and not t.is_floating_point():
                t = t.to(input.dtype)  # MONAI's CE reads an integer one-hot as probabilities
            w = ce.weight
            n_used = input.shape[1] - (0 if d.include_background else 1)
            if w is not None and n_used > 1 and (
                    w.ndim != 1 or w.shape[0] != input.shape[1] or bool((w < 0).any())):
                return None
            return FF.dice_ce_loss(
                x, t, lambda_dice=float(self.lambda_dice), lambda_ce=float(self.lambda_ce),
                include_background=d.include_background, squared_pred=d.squared_pred,
                jaccard=d.jaccard, smooth_nr=d.smooth_nr, smooth_dr=d.smooth_dr, batch=d.batch,
                weight=w, reduction=_red(d))

    @done
    class DiceFocalLoss(ML.DiceFocalLoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            adopt(self)

        def forward(self, input, target):
            out = None
            if (self.to_onehot_y and input.shape[1] > 1
                    and _compound_shapes_ok(input, target)):
                # the label map goes to the Dice kernel as is (no one-hot copy)
                out = _dice_focal_fused(self, input, target)
                if out is None:
                    d = _dice_value(self.dice, input, target, True)
                    f = None if d is None else _focal_value(self.focal, input, target, True)
                    if f is not None:
                        out = self.lambda_dice * d + self.lambda_focal * f
            return super().forward(input, target) if out is None else out

    @done
    class GeneralizedDiceFocalLoss(ML.GeneralizedDiceFocalLoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            adopt(self)

    return classes


def _class_doc(name):
    p = PATHS[name]
    return f"""``monai.losses.{name}`` (same constructor, defaults and warnings) on
    fastloss's kernels.

    A subclass of MONAI's class: the constructor, attributes, buffers,
    ``state_dict`` and ``repr`` are MONAI's.  ``forward`` computes MONAI's
    value and gradient; CPU float32/float64 inputs run fastloss's kernels
    with these options, anything else MONAI's own code.

    Kernel path: {p['kernel']}.

    MONAI's code: {p['torch']}; other devices and dtypes; a target that
    requires grad.

    Parameters
    ----------
    *args, **kwargs
        The constructor arguments of ``monai.losses.{name}``.

    Examples
    --------
    >>> import torch, monai.losses, fastloss.torch as ft
    >>> x = torch.linspace(-2, 2, 2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    >>> y = (torch.arange(32).reshape(2, 1, 4, 4) % 3)
    >>> kw = dict(to_onehot_y=True{", softmax=True" if name != "FocalLoss" else ""})
    >>> ours = ft.{name}(**kw)(x, y)
    >>> bool(torch.allclose(ours, monai.losses.{name}(**kw)(x, y).to(ours.dtype)))
    True
    """
