"""fastloss.distance: the U-Net edge weight map."""


import numpy as np

from fastloss import _validate as V
from fastloss._docs import doc
from fastloss.distance._transform import (
    _edt_flat,
)

# ------------------------------------------------------------ U-Net weight map

_INSTANCE_CHUNK = 16  # instance masks transformed per kernel call


@doc
def unet_weight_map(labels, w0=10.0, sigma=5.0, class_weight="balanced", instances=None, *,
                    n_threads=None):
    r"""U-Net edge weight map (Ronneberger et al. 2015, eq. 2) for weighted cross-entropy.

    Per image and position :math:`x`

    .. math:: w(x) = w_c(\ell(x)) + [\ell(x) = 0]\; w_0
              \exp\!\Big(-\frac{(d_1(x) + d_2(x))^2}{2 \sigma^2}\Big)

    with :math:`\ell` the label, :math:`w_c` the class weights and
    :math:`d_1`, :math:`d_2` the distances from :math:`x` to the nearest and
    the second-nearest object instance (:math:`d_2 = \infty`, so no border
    term, with fewer than two instances).  The border term is applied to
    background pixels only, as the common implementations do.  The map is
    the ``sample_weight`` of :func:`fastloss.cross_entropy` (shape
    (N, d1, ..., dk)): the paper's weighted pixel-wise cross-entropy.

    Parameters
    ----------
    labels : array_like of integers, shape (N, d1, ..., dk), k >= 1
        Class labels, 0 is the background; values must be >= 0.
    w0 : float >= 0
        Weight of the border term (the paper's 10).
    sigma : float > 0
        Width of the border term in pixels (the paper's "about 5").
    class_weight : 'balanced', None or array_like
        'balanced': per image :math:`w_c = S / (K n_c)` (scikit-learn's
        convention; :math:`S` pixels, :math:`K` classes present, :math:`n_c`
        pixels of class c); None: 1; an array: one weight per label value
        (its length must exceed the largest label).
    instances : array_like of integers, optional
        Instance ids of the shape of ``labels`` (0: no instance).  Default:
        the face-connected components of ``labels != 0`` of each image,
        which needs SciPy (``scipy.ndimage.label``).
    %(n_threads)s

    Returns
    -------
    ndarray of float64, the shape of ``labels``.

    Notes
    -----
    One exact distance transform per instance (batched, 16 instances per
    kernel call), keeping the two smallest distances per pixel: O(K * S)
    work and 8 * 19 bytes per pixel of scratch.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> lab = np.zeros((1, 1, 7), dtype=np.uint8)
    >>> lab[0, 0, :2] = 1; lab[0, 0, 5:] = 1      # two cells, a 3-pixel gap
    >>> w = fastloss.unet_weight_map(lab, w0=10.0, sigma=5.0, class_weight=None)
    >>> w.round(3)        # in the gap d1 + d2 = 4: 1 + 10 exp(-16 / 50)
    array([[[1.   , 1.   , 8.261, 8.261, 8.261, 1.   , 1.   ]]])
    >>> x = np.zeros((1, 2, 1, 7), dtype=np.float32)   # logits (N, C, H, W)
    >>> round(float(fastloss.cross_entropy(x, lab, sample_weight=w, reduction="sum")), 3)
    19.952
    """
    lab = V.as_labels(labels, "labels")
    if lab.ndim < 2:
        raise ValueError(
            f"labels must have shape (N, d1, ...) with at least one spatial axis, got {lab.shape}"
        )
    if lab.size and lab.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(lab.min())}")
    w0 = V.check_scalar(w0, "w0", 0.0)
    sigma = V.check_scalar(sigma, "sigma", 0.0, lo_open=True)
    nt = V.threads(n_threads)
    if instances is None:
        try:
            from scipy import ndimage
        except ImportError:
            raise ImportError(
                "unet_weight_map needs SciPy to find the instances (connected components); "
                "install scipy or pass instances="
            ) from None
        inst = np.empty(lab.shape, dtype=np.int32)
        for n in range(lab.shape[0]):
            ndimage.label(lab[n] != 0, output=inst[n])
    else:
        inst = V.as_labels(instances, "instances")
        if inst.shape != lab.shape:
            raise ValueError(
                f"instances must have the shape of labels {lab.shape}, got {inst.shape}"
            )
    cw = None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced', None or an array, "
                             f"got {class_weight!r}")
    elif class_weight is not None:
        cw = V.as_float(class_weight, "class_weight", dtype=np.float64)
        if cw.ndim != 1 or (lab.size and cw.shape[0] <= int(lab.max())):
            raise ValueError(
                f"class_weight must have one value per label (at least {int(lab.max()) + 1}), "
                f"got shape {cw.shape}"
            )
        if not np.all(np.isfinite(cw)) or np.any(cw < 0):
            raise ValueError(f"class_weight must be finite and >= 0, got {cw.tolist()}")
    spatial = lab.shape[1:]
    ones = np.ones(len(spatial) + 1)
    out = np.empty(lab.shape, dtype=np.float64)
    for n in range(lab.shape[0]):
        ln = lab[n]
        if class_weight is None:
            w = np.ones(spatial)
        elif cw is not None:
            w = cw[ln]
        else:
            cnt = np.bincount(ln.reshape(-1))
            present = cnt > 0
            wc = np.zeros(cnt.shape)
            wc[present] = ln.size / (present.sum() * cnt[present])
            w = wc[ln]
        ids = np.unique(inst[n])
        ids = ids[ids != 0]
        if ids.size >= 2 and w0 > 0:
            d1 = np.full(spatial, np.inf)
            d2 = np.full(spatial, np.inf)
            tmp = np.empty(spatial)
            for i in range(0, ids.size, _INSTANCE_CHUNK):
                chunk = ids[i:i + _INSTANCE_CHUNK]
                cls = chunk.reshape((-1,) + (1,) * len(spatial))
                sites = np.ascontiguousarray(inst[n][None] != cls)  # 0 on the instance
                d, _ = _edt_flat(sites.view(np.uint8), sites.shape, ones, True, False, True,
                                 nt, skip=1)
                for dk in d:  # the two smallest so far: d1 <= d2
                    np.maximum(d1, dk, out=tmp)
                    np.minimum(d2, tmp, out=d2)
                    np.minimum(d1, dk, out=d1)
            bg = ln == 0
            w[bg] += w0 * np.exp(-((d1[bg] + d2[bg]) ** 2) / (2.0 * sigma * sigma))
        out[n] = w
    return out
