"""The catalogue: one row per public function, the facts the rest of the
package and its tests read instead of restating them.

A row says where a function lives (``family``: its module), which array
arguments it reads (``arrays``) and which of them get a gradient with
``return_grad=True`` (``grads``, in the order returned), the domain of each
scalar parameter (``params``), how ``reduction='mean'`` counts the terms it
divides by (``mean``), the shape of a ``reduction='none'`` result
(``none``), which array options are broadcast against the input element by
element (``per_element``: the chunks of ``fastloss.dask`` align them), and
the peer function with the same semantics (``peer``).

``mean`` and ``none`` name a rule:

============  =============================================================
rule          'mean' divides by / 'none' has the shape of
============  =============================================================
elem          the input's elements (the sum of ``sample_weight``)
lastaxis      the input without its last axis (a row of a multi-label row)
axis          the input without ``axis``
positions     the input without its class axis 1; 'mean' over non-ignored
              positions (the sum of ``sample_weight``)
class_weight  as positions, 'mean' by the sum of the target classes'
              weights (torch's cross_entropy / nll_loss)
rows          the rows N of (N, C) or (N, D) (the sum of ``sample_weight``)
classes       (N, C) Dice-family terms, (C,) with ``batch=True`` (MONAI)
batch         one term per image, (N,), (1,) with ``batch=True`` (MONAI)
dice_ce       (mean only) the Dice part over classes, the cross-entropy
              part over positions
============  =============================================================

``None``: the function has no such reduction.  ``tests/test_catalogue.py``
checks every row against the function it describes (the names, the
domains on both sides of each bound, the gradients returned, the 'none'
shape and the 'mean' count), so a row cannot drift from the code.
"""

import math
from dataclasses import dataclass, field

__all__ = ["Domain", "Row", "ROWS", "names", "row"]


@dataclass(frozen=True)
class Domain:
    """The values a scalar parameter accepts: an interval, integers or not."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False


REAL = Domain()
NONNEG = Domain(0.0)
POSITIVE = Domain(0.0, lo_open=True)
UNIT = Domain(0.0, 1.0)
INTEGER = Domain(integer=True)


@dataclass(frozen=True)
class Row:
    name: str
    family: str
    arrays: tuple
    grads: tuple = ()
    params: dict = field(default_factory=dict)
    mean: str | None = None
    none: str | None = None
    per_element: tuple = ()
    peer: str = ""


def _rows():
    ew = "elementwise"
    tf = "torch.nn.functional."

    def elem(name, params=None, peer="", arrays=("input", "target"), mean="elem",
             per_element=()):
        return Row(name, ew, arrays, (arrays[0],), params or {}, mean, mean, per_element, peer)

    def cls(name, params, mean, peer, arrays=("input", "target")):
        none = "positions" if mean == "class_weight" else mean
        return Row(name, "classification", arrays, (arrays[0],), params, mean, none, (), peer)

    def seg(name, params=None, none="classes", grads=("input",), peer=""):
        smooth = {"smooth_nr": NONNEG, "smooth_dr": NONNEG, "ignore_index": INTEGER}
        return Row(name, "segmentation", ("input", "target"), grads,
                   {**smooth, **(params or {})}, none or "dice_ce", none, (), peer)

    ignore = {"ignore_index": INTEGER}
    margin_s = {"s": Domain(0.0, math.inf, True, True)}
    return [
        Row("logsumexp", "lse", ("a",), peer="scipy.special.logsumexp"),
        Row("softmax", "lse", ("x",), peer="scipy.special.softmax"),
        Row("log_softmax", "lse", ("x",), peer="scipy.special.log_softmax"),
        cls("cross_entropy", {**ignore, "label_smoothing": UNIT}, "class_weight",
            tf + "cross_entropy"),
        cls("nll_loss", ignore, "class_weight", tf + "nll_loss"),
        cls("softmax_focal_loss", {**ignore, "gamma": NONNEG}, "positions", ""),
        cls("multi_margin_loss", {"margin": REAL}, "rows", tf + "multi_margin_loss"),
        cls("multiclass_hinge_loss", {"margin": REAL}, "rows", ""),
        cls("cosface_loss", {**margin_s, "m": REAL}, "rows", "", ("cosine", "target")),
        cls("arcface_loss", {**margin_s, "m": Domain(0.0, math.pi, hi_open=True)}, "rows", "",
            ("cosine", "target")),
        cls("sphereface_loss", {**margin_s, "m": Domain(1, 4, integer=True)}, "rows", "",
            ("cosine", "target")),
        elem("binary_cross_entropy", peer=tf + "binary_cross_entropy", per_element=("weight",)),
        elem("binary_cross_entropy_with_logits", peer=tf + "binary_cross_entropy_with_logits",
             per_element=("weight", "pos_weight")),
        elem("soft_margin_loss", peer=tf + "soft_margin_loss"),
        elem("multilabel_soft_margin_loss", peer=tf + "multilabel_soft_margin_loss",
             mean="lastaxis", per_element=("weight",)),
        elem("kl_div", peer=tf + "kl_div"),
        elem("js_div", arrays=("p", "q"), mean="axis"),
        elem("sigmoid_focal_loss", {"alpha": Domain(hi=1.0), "gamma": NONNEG},
             "torchvision.ops.sigmoid_focal_loss", arrays=("inputs", "targets")),
        elem("mse_loss", peer=tf + "mse_loss"),
        elem("l1_loss", peer=tf + "l1_loss"),
        elem("smooth_l1_loss", {"beta": NONNEG}, tf + "smooth_l1_loss"),
        elem("huber_loss", {"delta": POSITIVE}, tf + "huber_loss"),
        elem("log_cosh_loss"),
        elem("pseudo_huber_loss", {"delta": POSITIVE}),
        elem("mean_bias_error"),
        elem("hinge_loss", {"margin": REAL}),
        elem("exponential_loss"),
        Row("l1_penalty", ew, ("arrays",), ("arrays",)),
        Row("l2_penalty", ew, ("arrays",), ("arrays",)),
        Row("elastic_net_penalty", ew, ("arrays",), ("arrays",), {"l1_ratio": UNIT}),
        Row("gan_discriminator_loss", ew, ("real_logits", "fake_logits"),
            ("real_logits", "fake_logits"), mean="elem", none="elem"),
        Row("gan_generator_loss", ew, ("fake_logits",), ("fake_logits",), mean="elem",
            none="elem"),
        Row("triplet_margin_loss", "embedding", ("anchor", "positive", "negative"),
            ("anchor", "positive", "negative"),
            {"margin": REAL, "p": Domain(0.0, math.inf, True, True), "eps": REAL},
            "rows", "rows", (), tf + "triplet_margin_loss"),
        Row("contrastive_loss", "embedding", ("x1", "x2", "label"), ("x1", "x2"),
            {"margin": REAL}, "rows", "rows"),
        Row("center_loss", "embedding", ("features", "labels", "centers"),
            ("features", "centers"), {}, "rows", "rows"),
        Row("fast_rcnn_loss", "detection",
            ("class_logits", "labels", "box_regression", "box_targets"),
            ("class_logits", "box_regression"), {"box_weight": NONNEG, "beta": NONNEG},
            peer="torchvision.models.detection.roi_heads.fastrcnn_loss"),
        seg("dice_loss", peer="monai.losses.DiceLoss"),
        seg("jaccard_loss", peer="monai.losses.DiceLoss(jaccard=True)"),
        seg("tversky_loss", {"alpha": NONNEG, "beta": NONNEG}, peer="monai.losses.TverskyLoss"),
        seg("focal_tversky_loss", {"alpha": NONNEG, "beta": NONNEG, "gamma": POSITIVE}),
        seg("generalized_dice_loss", none="batch", peer="monai.losses.GeneralizedDiceLoss"),
        seg("sensitivity_specificity_loss", {"r": UNIT}),
        seg("dice_ce_loss", {"lambda_dice": NONNEG, "lambda_ce": NONNEG}, none=None,
            peer="monai.losses.DiceCELoss"),
        Row("confusion_matrix", "segmentation", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True), "ignore_index": INTEGER}),
        Row("dice_score", "segmentation", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True), "ignore_index": INTEGER},
            peer="monai.metrics.DiceMetric"),
        Row("iou_score", "segmentation", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True), "ignore_index": INTEGER},
            peer="monai.metrics.MeanIoU"),
        Row("distance_transform", "distance", ("mask_or_labels",),
            peer="scipy.ndimage.distance_transform_edt"),
        Row("surface_distances", "distance", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True)}),
        Row("hausdorff_distance", "distance", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True), "percentile": Domain(0.0, 100.0)},
            mean="classes", none="classes", peer="monai.metrics.compute_hausdorff_distance"),
        Row("average_surface_distance", "distance", ("pred", "target"),
            params={"num_classes": Domain(1, integer=True)}, mean="classes", none="classes",
            peer="monai.metrics.compute_average_surface_distance"),
        Row("surface_dice", "distance", ("pred", "target", "class_thresholds"),
            params={"num_classes": Domain(1, integer=True)}, mean="classes", none="classes",
            peer="monai.metrics.compute_surface_dice"),
        Row("hausdorff_dt_loss", "distance", ("input", "target"), ("input",),
            {"alpha": NONNEG}, "classes", "classes", peer="monai.losses.HausdorffDTLoss"),
        Row("boundary_loss", "distance", ("input", "target"), ("input",), {}, "classes",
            "classes"),
        Row("unet_weight_map", "distance", ("labels",),
            params={"w0": NONNEG, "sigma": POSITIVE}),
    ]


ROWS = {r.name: r for r in _rows()}


def row(name):
    """The catalogue row of public function ``name``."""
    return ROWS[name]


def names(family=None, mean=None):
    """The public names (of one family, with one 'mean' rule), in catalogue order."""
    return [r.name for r in ROWS.values()
            if (family is None or r.family == family) and (mean is None or r.mean in mean)]
