"""fastloss.distance: the distance losses (Hausdorff DT, boundary), fields
from the distance transform and one kernel pass."""

import math
import threading

import numpy as np

from fastloss import _validate as V
from fastloss._dispatch import kernels
from fastloss._docs import doc
from fastloss.distance._transform import (
    _edt_flat,
    _spacing,
)

_k = kernels("dtloss")

# ------------------------------------------------------------ losses

_ACTIVATIONS = (None, "none", "sigmoid", "softmax")


class _LossInputs:
    """Validated loss inputs: probabilities and the target (soft or labels)."""


def _loss_inputs(input, target, activation, include_background, reduction, spacing,
                 n_threads):
    q = _LossInputs()
    x = V.as_float(input, "input")
    # float16 / bfloat16 logits are computed through one float32 copy; the
    # gradient comes back in their dtype, as the other families return it
    q.gdt = np.asarray(input).dtype if V.is_half(np.asarray(input).dtype) else x.dtype
    if x.ndim < 3:
        raise ValueError(
            f"input must have shape (N, C, d1, ...) with at least one spatial axis, got {x.shape}"
        )
    N, C = x.shape[:2]
    if C == 0:
        raise ValueError(f"input must have at least one class (axis 1), got shape {x.shape}")
    V.check_reduction(reduction)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}")
    if activation == "softmax" and C == 1:
        raise ValueError("activation='softmax' needs at least 2 classes on axis 1, got 1; "
                         "use activation='sigmoid' for a single channel")
    q.x, q.N, q.C, q.spatial = x, N, C, x.shape[2:]
    q.nt = V.threads(n_threads)
    q.spacing = _spacing(spacing, x.ndim - 2)
    t = np.asarray(target)
    q.off = 0
    if t.shape == x.shape and (t.dtype.kind in "fb" or C == 1):
        q.g, q.lab = V.as_float(t, "target", dtype=np.float64), None
    else:
        if t.dtype.kind == "f":
            raise TypeError(
                f"target must hold integer class indices of shape {(N,) + q.spatial} or "
                f"masks of the input's shape {x.shape}, got dtype {t.dtype} and shape {t.shape}"
            )
        want = (N,) + q.spatial
        if t.ndim == x.ndim and t.shape[1] == 1 and t.shape[:1] + t.shape[2:] == want:
            t = t.reshape(want)
        lab = V.as_labels(t, "target")
        if lab.shape != want:
            raise ValueError(
                f"target label map must have shape {want} for input of shape {x.shape} "
                f"(or masks of the input's shape), got {lab.shape}"
            )
        ncls = 2 if C == 1 else C
        bad = np.flatnonzero((lab < 0) | (lab >= ncls))
        if bad.size:
            raise V.label_error(lab.reshape(-1), int(bad[0]), ncls, None)
        q.g, q.lab = None, lab
        q.off = 1 if C == 1 else 0  # a single channel is the binary mask (label == 1)
    q.x = np.ascontiguousarray(x)
    q.act = activation
    q.c0 = 0 if (include_background or C == 1) else 1
    return q


_ACT_CODES = _k.ACTIVATIONS
_scratch_local = threading.local()
_SCRATCH_MAX = 256 << 20   # bytes of field scratch kept per thread between calls


def _scratch(slot, n, dtype=np.float64):
    """A reused 1-D scratch array of n elements for the fields (never
    handed out): a fresh array costs the OS's zeroing of its pages, about
    as long as the loss pass itself."""
    kept = getattr(_scratch_local, "kept", None)
    if kept is None:
        kept = _scratch_local.kept = {}
    a = kept.get(slot)
    if a is None or a.size != n or a.dtype != dtype:
        a = np.empty(n, dtype=dtype)
        kept[slot] = a
        if sum(v.nbytes for v in kept.values()) > _SCRATCH_MAX:
            kept.clear()
    return a


def _fields(masks, spacing, nt, squared=False, slot=None):
    """For a stack of masks (K, *spatial): each voxel's distance to the nearest
    voxel on the other side of its mask (EDT(mask) + EDT(~mask), one
    multi-label pass for the whole stack), squared with ``squared``.  A mask
    that is all one value has no other side: its field is +inf (the loss
    pass reads it as 0, MONAI's value)."""
    m = np.ascontiguousarray(masks)
    if m.size == 0:
        return np.zeros(m.shape)
    sp = np.concatenate(([1.0], spacing))
    out = _scratch(slot, m.size) if slot is not None else None
    d, _ = _edt_flat(m.view(np.uint8), m.shape, sp, False, False, not squared, nt, skip=1,
                     out=out)
    return d


def _target_masks(q):
    """(N, C', S) uint8 masks of the used target classes (g > 0.5, or label == c)."""
    S = math.prod(q.spatial)
    if q.g is not None:
        m = q.g[:, q.c0:] > 0.5
    else:
        cls = np.arange(q.c0, q.C, dtype=np.int64).reshape(1, -1, 1) + q.off
        m = q.lab.reshape(q.N, 1, S) == cls
    return np.ascontiguousarray(m).view(np.uint8).reshape(q.N, q.C - q.c0, S)


def _pred_masks(q):
    """(N, C', S) uint8 masks p > 0.5 of the used classes, p the activation."""
    S = math.prod(q.spatial)
    out = np.empty((q.N, q.C - q.c0, S), dtype=np.uint8)
    if out.size and _k.prob_masks(x_addr=q.x.ctypes.data, f32=q.x.dtype == np.float32, N=q.N,
                                  C=q.C, S=S, act=_ACT_CODES[q.act], c0=q.c0,
                                  out_addr=out.ctypes.data, n_threads=q.nt):
        raise MemoryError("fastloss: cannot allocate the loss scratch")
    return out


def _loss_pass(q, gm, fa, fb, alpha, kind, scale, grad):
    """Per-(image, class) sums of the loss terms, and the gradient into ``grad``."""
    S = math.prod(q.spatial)
    ncls = q.C - q.c0
    nch = -(-S // _LCHUNK)
    part = np.zeros((q.N, ncls, nch))
    if q.N * ncls * S == 0:
        if grad is not None:
            grad[...] = 0
        return part.sum(axis=2)
    gs = None
    if gm is None:
        gs = np.ascontiguousarray(q.g, dtype=np.float64)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    rc = _k.loss_pass(x_addr=q.x.ctypes.data, f32=q.x.dtype == np.float32,
                      gx_addr=grad.ctypes.data if grad is not None else 0, N=q.N, C=q.C, S=S,
                      act=_ACT_CODES[q.act], c0=q.c0,
                      gm_addr=gm.ctypes.data if gm is not None else 0,
                      gs_addr=gs.ctypes.data if gs is not None else 0, fa_addr=fa.ctypes.data,
                      fb_addr=fb.ctypes.data if fb is not None else 0, alpha=float(alpha),
                      kind=kind, scale_addr=scale.ctypes.data, want_grad=grad is not None,
                      part_addr=part.ctypes.data, n_threads=q.nt)
    if rc:
        raise MemoryError("fastloss: cannot allocate the loss scratch")
    return part.sum(axis=2)


_LCHUNK = 16384  # voxels per partial sum in the kernel (its LCHUNK)


_KIND_HD, _KIND_BOUNDARY = 0, 1


def _loss_run(q, kind, alpha, gm, fa, fb, batch, reduction, log, return_grad):
    """The loss (and gradient) from the target masks and the fields.

    Per (image, class) f = sum / S; ``batch`` averages f over the images;
    then the reduction, and log1p of the result with ``log``.  The
    gradient's factor per (image, class) is d(loss)/d(f) times d(f)/d(sum)
    (times 2 (p - g) w for Hausdorff, phi for boundary, inside the kernel);
    without ``log`` it does not depend on the values, so loss and gradient
    come out of one pass; with ``log`` it needs the loss: two passes.
    """
    S = math.prod(q.spatial)
    ncls = q.C - q.c0
    if q.g is not None:
        gm = None  # soft targets: the kernel reads q.g, its masks are g > 0.5
    nf = ncls if batch else q.N * ncls
    dL = np.full((q.N, ncls), 1.0 / nf if reduction == "mean" else 1.0)
    if batch:
        dL /= q.N
    dL /= max(S, 1)
    grad = None
    if return_grad:
        grad, _ = V.grad_array(None, q.x.shape, q.x.dtype)
    one_pass = return_grad and not log
    sums = _loss_pass(q, gm, fa, fb, alpha, kind, dL, grad if one_pass else None)
    f = sums / S if S else np.full((q.N, ncls), np.nan)
    if batch:
        f = f.mean(axis=0)
    if reduction == "none":
        red = f
    elif reduction == "sum":
        red = f.sum()
    else:
        red = f.mean() if f.size else np.nan
    loss = np.log1p(red) if log else red
    loss = np.asarray(loss).astype(q.x.dtype) if reduction == "none" else V.scalar(loss,
                                                                                    q.x.dtype)
    if not return_grad:
        return loss
    if log:
        # d log(1 + r) / d r = 1 / (1 + r), per class for 'none'
        k = 1.0 / (1.0 + np.asarray(red, dtype=np.float64))
        dL = dL * (np.broadcast_to(k, (q.N, ncls)) if np.ndim(k) else k)
        _loss_pass(q, gm, fa, fb, alpha, kind, dL, grad)
    if q.gdt != grad.dtype:
        grad = grad.astype(q.gdt)  # rounded to nearest even
    return loss, grad


_LOSS_INPUTS = """\
input : array_like, shape (N, C, d1, ..., dk), k >= 1
    Logits (``activation='softmax'`` or ``'sigmoid'``) or probabilities
    (``activation=None``), float32 or float64 (float16 and bfloat16 are
    computed in float32; the loss is float32, the gradient in their dtype).
target : array_like
    Integer label map (N, d1, ..., dk) (or MONAI's (N, 1, d1, ...)), or
    one-hot / soft masks of ``input``'s shape.  With C == 1 a label map
    is the binary mask (labels 0 and 1).
activation : {'softmax', 'sigmoid', None}
    MONAI's ``softmax=True`` / ``sigmoid=True``."""

_LOSS_OPTIONS = """\
batch : bool
    Average over the batch too: one value per class.
reduction : {'mean', 'sum', 'none'}
    'none': the per-class losses, (N, C') or (C',) with ``batch``.
return_grad : bool
    Also return d(loss)/d(input) (for 'none', of the sum); the distance
    maps are constants, as in MONAI (computed without gradient).
%(n_threads)s"""

_loss_doc = doc(loss_inputs=_LOSS_INPUTS, loss_options=_LOSS_OPTIONS)


@_loss_doc
def hausdorff_dt_loss(input, target, *, alpha=2.0, log=False, activation="softmax",
                      include_background=False, batch=False, reduction="mean",
                      return_grad=False, n_threads=None):
    r"""Hausdorff distance-transform loss (Karimi & Salcudean 2019), MONAI semantics.

    Per image and class

    .. math:: \ell = \frac{1}{S} \sum_x (p_x - g_x)^2 \, (d_p(x)^\alpha + d_g(x)^\alpha)

    with :math:`S` the number of voxels and :math:`d_p`, :math:`d_g` the
    distance fields of the thresholded prediction :math:`p > 0.5` and of
    the target :math:`g > 0.5`: every voxel's distance to the nearest voxel
    on the other side of the mask (MONAI's ``EDT(fg) + EDT(~fg)``, here one
    multi-label pass), zero for a mask that is all one value.  Equals
    ``monai.losses.HausdorffDTLoss(alpha, include_background, softmax=True,
    to_onehot_y=True, batch=batch, reduction=reduction)``; ``log=True`` is
    ``LogHausdorffDTLoss``: :math:`\log(1 + L)` after the reduction.

    Parameters
    ----------
    %(loss_inputs)s
    include_background : bool
        False drops class 0 (ignored for C == 1, as MONAI); default False.
    %(loss_options)s
    alpha : float
        Exponent of the distances (MONAI's default 2).
    log : bool
        :math:`\log(1 + L)`, MONAI's ``LogHausdorffDTLoss``.

    Returns
    -------
    %(loss_grad)s

    Notes
    -----
    Two multi-label distance transforms, one over the stack of every
    (image, class) thresholded prediction and one over the targets, each
    O(voxels) with 8 bytes per used (image, class) voxel (scratch kept per
    thread between calls, up to 256 MiB); then one pass computes the
    activation, the loss terms and the gradient through the activation,
    voxel block by voxel block, in double.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.array([[[[0.0, 1.0, 1.0, 0.0]]]])      # (1, 1, 1, 4) probabilities
    >>> g = np.array([[[0, 0, 1, 1]]])                # binary label map
    >>> # d_p = [1, 1, 1, 1], d_g = [2, 1, 1, 2]: (1 * (1 + 1) + 1 * (1 + 4)) / 4
    >>> float(fastloss.hausdorff_dt_loss(p, g, activation=None))
    1.75
    """
    a = V.check_scalar(alpha, "alpha", 0.0)
    q = _loss_inputs(input, target, activation, include_background, reduction, None,
                     n_threads)
    gm = _target_masks(q)
    # d^alpha = (d^2)^(alpha / 2) from the squared fields: alpha = 2 (the
    # default) needs no power at all and its weights are exact integers
    shp = (gm.shape[0] * gm.shape[1],) + q.spatial
    fa = _fields(_pred_masks(q).reshape(shp), q.spacing, q.nt, squared=True, slot="a")
    fb = _fields(gm.reshape(shp), q.spacing, q.nt, squared=True, slot="b")
    return _loss_run(q, _KIND_HD, a, gm, fa, fb, batch, reduction, log, return_grad)



@_loss_doc
def boundary_loss(input, target, spacing=None, *, activation="softmax", include_background=True,
                  batch=False, reduction="mean", return_grad=False, n_threads=None):
    r"""Boundary loss (Kervadec et al. 2019), MONAI 1.6 ``BoundaryLoss`` semantics.

    Per image and class

    .. math:: \ell = \frac{1}{S} \sum_x p_x \, \phi_g(x), \qquad
              \phi_g(x) = \begin{cases} d(x, G) & x \notin G \\
                                        -(d(x, \bar G) - 1) & x \in G \end{cases}

    with :math:`G = \{g > 0.5\}`, :math:`d` the Euclidean distance to the
    nearest voxel of the set (0 on the inner border, negative deeper,
    positive outside) and :math:`\phi_g = 0` for a class absent or filling
    the image.  The loss is negative for a good prediction, by design.
    Without ``spacing`` it equals ``monai.losses.BoundaryLoss(softmax=True,
    to_onehot_y=True, batch=batch, reduction=reduction)``; with ``spacing``
    the map is Kervadec's ``one_hot2dist(seg, resolution=spacing)``.

    Parameters
    ----------
    %(loss_inputs)s
    include_background : bool
        False drops class 0 (ignored for C == 1, as MONAI); default True.
    %(loss_options)s
    spacing : float or sequence of k floats, optional
        Voxel size per spatial axis (Kervadec's ``resolution``); default 1.

    Returns
    -------
    %(loss_grad)s

    Notes
    -----
    One multi-label distance transform over the stack of every (image,
    class) target gives both sides of the signed maps (each voxel's distance
    to the other side of its mask); one pass then computes the activation,
    the loss terms and the gradient, voxel block by voxel block, in double.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> p = np.array([[[[0.0, 1.0, 1.0, 0.0]]]])      # (1, 1, 1, 4) probabilities
    >>> g = np.array([[[0, 0, 1, 1]]])                # phi = [2, 1, 0, -1]
    >>> float(fastloss.boundary_loss(p, g, activation=None))   # (1 + 0) / 4
    0.25
    """
    q = _loss_inputs(input, target, activation, include_background, reduction, spacing,
                     n_threads)
    gm = _target_masks(q)
    fa = _fields(gm.reshape((gm.shape[0] * gm.shape[1],) + q.spatial), q.spacing, q.nt,
                 slot="a")
    return _loss_run(q, _KIND_BOUNDARY, 2.0, gm, fa, None, batch, reduction, False,
                     return_grad)
