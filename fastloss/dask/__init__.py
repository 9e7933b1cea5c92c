r"""fastloss on dask arrays: per-chunk statistics with the kernels, tree-reduced.

Install with ``pip install fastloss[dask]``; dask is imported only when a
function of this module is called.

Every function takes dask arrays (NumPy arrays are wrapped, chunked like
the main input) and returns a lazy dask array; ``.compute()`` gives the
value of the in-memory function of the same name:

1. Each block is handed to the same kernels as the in-memory call
   (``da.blockwise``), which return small float64 / int64 statistics:
   (sum of weighted losses, sum of weights) for the mean losses, the
   per-(image, class) soft-Dice sums, or the confusion counts.
2. The statistics are summed over the block grid by dask's tree reduction
   (``Array.sum(split_every=...)``): a fixed graph, so a fixed order.
3. A final task turns the O(N*C) statistics into the value with the same
   arithmetic as the in-memory function.

Chunking: any chunks along the batch and spatial axes.  The class axis
(axis 1; the last axis for ``multilabel_soft_margin_loss``, ``axis`` for
``js_div``) must be one chunk: a chunked class axis is rechunked whole with
a :class:`dask.array.PerformanceWarning` (a copy of the data through the
graph), or a ``ValueError`` with ``rechunk=False``.  Targets and weights
given as dask arrays must have the input's chunks on the axes they share
(``ValueError`` otherwise, saying how to rechunk); NumPy targets are
chunked to match.  Unknown (NaN) chunk sizes are a ``ValueError``.

Exactness: counts (confusion matrix, hard Dice / IoU) are bit-identical
to the in-memory call; float64 sums differ from the in-memory kernel's own
block order by rounding only (<= 1e-12 relative for well-conditioned
values).  cross_entropy, nll_loss and the soft Dice family carry float64
block sums for every input dtype; the element-wise losses take each
block's ``reduction='sum'`` value, which is rounded to the input's dtype
(exact for float64 input, ~1e-7 relative for float32).
"""

from fastloss import metrics as _m
from fastloss.dask import _elementwise
from fastloss.dask._classification import cross_entropy, nll_loss
from fastloss.dask._elementwise import (
    elastic_net_penalty,
    gan_discriminator_loss,
    gan_generator_loss,
    l1_penalty,
    l2_penalty,
)
from fastloss.dask._segmentation import (
    confusion_matrix,
    dice_accumulator,
    dice_ce_loss,
    dice_loss,
    dice_score,
    focal_tversky_loss,
    generalized_dice_loss,
    iou_score,
    jaccard_loss,
    sensitivity_specificity_loss,
    tversky_loss,
)
from fastloss.dask._surface import average_surface_distance, hausdorff_distance, surface_dice

__all__ = [
    "cross_entropy", "nll_loss",
    "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
    "generalized_dice_loss", "sensitivity_specificity_loss", "dice_ce_loss",
    "confusion_matrix", "dice_score", "iou_score", "dice_accumulator",
    "hausdorff_distance", "average_surface_distance", "surface_dice",
    "l1_penalty", "l2_penalty", "elastic_net_penalty",
    "gan_discriminator_loss", "gan_generator_loss",
] + sorted(_m.ELEMENTWISE_MEAN)

# the element-wise losses, made from the in-memory catalogue
for _name in _m.ELEMENTWISE_MEAN:
    globals()[_name] = getattr(_elementwise, _name)
del _name
