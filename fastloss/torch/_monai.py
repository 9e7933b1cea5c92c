"""MONAI-named loss classes (DiceLoss, DiceCELoss) over fastloss's segmentation kernels.

Each class subclasses MONAI's own (same constructor, attributes and
``repr``; MONAI is imported on first use of the class name).  ``forward``
runs fastloss's kernel for CPU float32/float64 logits with reduction
'mean' or 'sum' and the options that map onto fastloss (softmax / sigmoid /
no activation, to_onehot_y, include_background, squared_pred, jaccard,
smooth_nr, smooth_dr, batch, ignore_index; lambda_dice / lambda_ce for
DiceCELoss); anything else (reduction 'none' — whose per-(image, class)
outputs each mix a whole image, a class ``weight``, ``other_act``,
``soft_label``, label smoothing, other devices and dtypes, a target that
requires grad) runs MONAI's own ``forward``.
"""

import torch

import fastloss.torch.functional  # noqa: F401  (registers the segmentation ops)
from fastloss.torch._core import call, is_accelerated


def _target(self, input, target):
    """fastloss's target (label map or input-shaped mask), or None when MONAI must run."""
    if torch.is_grad_enabled() and target.requires_grad:
        return None
    if self.to_onehot_y:
        if target.dim() != input.dim() or target.shape[1] != 1:
            return None
        t = target[:, 0]
        return t.long() if t.is_floating_point() else t
    if target.shape != input.shape or target.dtype != input.dtype:
        return None
    return target


def _dice_kwargs(dice, input, target):
    if (dice.other_act is not None or dice.soft_label or (dice.sigmoid and dice.softmax)
            or dice.class_weight is not None or not is_accelerated(input)
            or input.dim() < 3):
        return None
    t = _target(dice, input, target)
    if t is None:
        return None
    return dict(input=input, target=t,
                activation="softmax" if dice.softmax else "sigmoid" if dice.sigmoid else None,
                include_background=dice.include_background, squared_pred=dice.squared_pred,
                smooth_nr=dice.smooth_nr, smooth_dr=dice.smooth_dr, batch=dice.batch,
                ignore_index=dice.ignore_index)


def make_classes():
    from monai.losses import DiceCELoss as _MDiceCE
    from monai.losses import DiceLoss as _MDice

    class DiceLoss(_MDice):
        """``monai.losses.DiceLoss`` (same constructor) on fastloss's kernel; see the module notes."""

        def forward(self, input, target):
            red = getattr(self.reduction, "value", self.reduction)
            kw = _dice_kwargs(self, input, target) if red in ("mean", "sum") else None
            if kw is None:
                return super().forward(input, target)
            return call("jaccard_loss" if self.jaccard else "dice_loss", dict(kw, reduction=red))

    class DiceCELoss(_MDiceCE):
        """``monai.losses.DiceCELoss`` (same constructor) on fastloss's kernel; see the module notes."""

        def forward(self, input, target):
            red = getattr(self.dice.reduction, "value", self.dice.reduction)
            ce = self.cross_entropy
            kw = None
            if (red in ("mean", "sum") and self.dice.softmax and ce.weight is None
                    and ce.label_smoothing == 0.0 and input.shape[1] >= 2):
                kw = _dice_kwargs(self.dice, input, target)
            if kw is None:
                return super().forward(input, target)
            kw.pop("activation")
            return call("dice_ce_loss", dict(kw, reduction=red, jaccard=self.dice.jaccard,
                                             lambda_dice=self.lambda_dice,
                                             lambda_ce=self.lambda_ce))

    DiceLoss.__module__ = DiceCELoss.__module__ = "fastloss.torch"
    return {"DiceLoss": DiceLoss, "DiceCELoss": DiceCELoss}
