r"""Exact Euclidean distance transforms, surface-distance metrics, distance losses.

``distance_transform`` is the exact Euclidean distance transform (the
values of ``scipy.ndimage.distance_transform_edt``), multi-threaded, with
anisotropic spacing, a multi-label mode and signed maps.  On it rest the
losses ``hausdorff_dt_loss`` and ``boundary_loss`` (MONAI's
``HausdorffDTLoss`` / ``BoundaryLoss``, with gradients) and the U-Net
edge weights ``unet_weight_map``.  The metrics
(Hausdorff distance and its percentiles, average surface distance, surface
Dice) follow MONAI 1.6 on label maps ``(N, *spatial)`` and one-hot masks
``(N, C, *spatial)``:

* the surface of a class is its set of *edge voxels*: voxels of the class
  with a face neighbour outside it, the outside of the image counting as
  background (``mask ^ binary_erosion(mask)``, face connectivity);
* distances are between voxel centres, in the units of ``spacing`` (one
  value per array axis, in array-axis order);
* for each (image, class) the distances from every predicted edge voxel to
  the nearest target edge voxel, and back, are computed inside the union
  bounding box of the class by an exact EDT whose sites are the edge
  voxels.

Empty masks (MONAI's rules): a class absent from both ``pred`` and
``target`` gives NaN; absent from one of them gives ``inf`` (Hausdorff,
average surface distance) or 0 (surface Dice), with a ``UserWarning``.
One deliberate difference: with a ``percentile`` and one empty mask the
Hausdorff distance is ``inf``, where MONAI returns NaN (MONAI issue #9095:
its NaN is then dropped by the mean, so a missed structure improves the
reported HD95).
"""

from fastloss.distance._losses import boundary_loss, hausdorff_dt_loss
from fastloss.distance._surface import (
    average_surface_distance,
    hausdorff_distance,
    surface_dice,
    surface_distances,
)
from fastloss.distance._transform import distance_transform
from fastloss.distance._weight_map import unet_weight_map

__all__ = [
    "distance_transform",
    "surface_distances",
    "hausdorff_distance",
    "average_surface_distance",
    "surface_dice",
    "hausdorff_dt_loss",
    "boundary_loss",
    "unet_weight_map",
]

# documented, stubbed and shown as fastloss.distance's own
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
