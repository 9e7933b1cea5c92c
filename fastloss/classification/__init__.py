"""Losses over a class axis: softmax cross-entropy and negative
log-likelihood (torch semantics), softmax focal loss, the multi-class
margins and the margin-softmax face-recognition losses.

Each reduces the class scores of a position (a row of (N, C) scores or the
class axis of (N, C, d1, ...) maps) and then the positions, in one pass
over the data that also writes the gradient when asked (see the design
notes of ``src/_classification.pyx``, ``src/_rowwise.pyx`` and ``src/_margin.pyx``).
"""

from fastloss.classification._entropy import cross_entropy, nll_loss, softmax_focal_loss
from fastloss.classification._margin import (
    arcface_loss,
    cosface_loss,
    multi_margin_loss,
    multiclass_hinge_loss,
    sphereface_loss,
)

__all__ = [
    "cross_entropy",
    "nll_loss",
    "softmax_focal_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "cosface_loss",
    "arcface_loss",
    "sphereface_loss",
]

# documented, stubbed and shown as fastloss.classification's own
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
