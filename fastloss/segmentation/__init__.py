r"""Segmentation losses over large 2D/3D masks (MONAI semantics) and hard metrics.

Every soft loss reads logits ``(N, C, *spatial)`` once, applies the
activation on the fly and accumulates per-(image, class) sums

    PG = sum p g,  P = sum p,  P2 = sum p^2,  G = sum g,  G2 = sum g^2

over the non-ignored positions (``p`` the activated input, ``g`` the target
of the class).  Label maps ``(N, *spatial)`` are read in their own integer
width and never expanded into a one-hot copy: the extra memory is O(N*C).
The losses are then O(N*C) arithmetic on the sums, in the kernel
(``src/_seg_value.pxd``: the same code for the metrics' merged sums).  With
``return_grad=True`` a second pass over the logits writes the gradient.
"""

from fastloss.segmentation._hard import confusion_matrix, dice_score, iou_score
from fastloss.segmentation._soft import (
    dice_ce_loss,
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    sensitivity_specificity_loss,
    tversky_loss,
)

__all__ = [
    "dice_loss",
    "jaccard_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "sensitivity_specificity_loss",
    "dice_ce_loss",
    "confusion_matrix",
    "dice_score",
    "iou_score",
]

# documented, stubbed and shown as fastloss.segmentation's own
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
