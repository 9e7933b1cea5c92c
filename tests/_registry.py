"""A registry of every public fastloss function with generators of valid inputs.

Generic tests (tests/test_reliability_*.py) run over ``REGISTRY`` so that a new
public function is covered by the bad-input matrix, the property tests, the
determinism and the NaN/inf tests as soon as it has an entry here.

An :class:`Entry` describes one function:

* ``build(rng, dtype, d, f)`` returns ``(args, kwargs)``: a valid call for the
  float dtype ``dtype``, the sizes ``d`` (a dict drawn from ``dims``) and the
  option flags ``f`` (a dict drawn from ``flags``).  Every float array is made
  in ``dtype``; class-index arrays are int64 (tests recast them).
* ``dims``: name -> (lo, hi) inclusive ranges for the property tests;
  ``bad_dims``: fixed sizes for the bad-input matrix (no size 1 or 3, so that
  a perturbed shape never broadcasts); ``big_dims``: sizes spanning several
  work units (> 16384 elements / > 512 positions) for the determinism test.
* ``flags``: option name -> list of values; ``full``: the flags that make
  ``build`` pass every optional array (weights, ...), for the bad-input matrix.
* ``labels``: argument name -> name of the dim holding the class count, for
  arguments that are class indices; ``shaped``: array arguments whose shape
  is constrained by the others; ``bad_scalars``: argument -> invalid values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NOT_LOSSES = {"__version__", "show_config", "get_num_threads", "set_num_threads",
              "set_gradient_cache", "get_gradient_cache", "empty_gradient_cache"}
# The distance family takes masks, label maps, spacings and class thresholds,
# which the generators below do not build; tests/test_distance.py and
# tests/test_surface_metrics.py check each of them against SciPy, MONAI, the
# edt package and the reference, with their own bad-input, thread and
# gradient tests (test_reliability_registry checks that they name every one).
OWN_SUITE = {"distance_transform", "surface_distances", "hausdorff_distance",
             "average_surface_distance", "surface_dice", "hausdorff_dt_loss",
             "boundary_loss", "unet_weight_map"}
NAN = float("nan")


@dataclass
class Entry:
    name: str
    build: Callable
    dims: dict
    bad_dims: dict
    big_dims: dict
    flags: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    reductions: tuple = ("mean", "sum", "none")
    labels: dict = field(default_factory=dict)
    shaped: tuple = ()
    bad_scalars: dict = field(default_factory=dict)
    bad_options: dict = field(default_factory=dict)
    grad: bool = True            # accepts return_grad=True
    grad_out: bool = False       # accepts grad_out=
    keeps_dtype: bool = True     # result dtype follows the float inputs
    class_dim: str | None = None  # dim that is the class axis (zero-size test)
    sample_weight: bool = False
    shape_axis: dict = field(default_factory=dict)  # axis to grow in the wrong-shape test

    def call(self, rng, dtype=np.float64, dims=None, flags=None):
        d = dict(self.bad_dims if dims is None else dims)
        f = {k: v[0] for k, v in self.flags.items()}
        f.update(flags or {})
        return self.build(rng, np.dtype(dtype), d, f)


# ---------------------------------------------------------------- helpers

def unif(rng, shape, dtype, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def labels(rng, shape, n_classes):
    return rng.integers(0, max(n_classes, 1), size=shape).astype(np.int64)


def probs(rng, shape, dtype, axis=-1):
    p = rng.uniform(0.05, 1.0, size=shape)
    return (p / p.sum(axis=axis, keepdims=True)).astype(dtype)


def signs(rng, shape, dtype):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


def nd_shape(d):
    return tuple(d[k] for k in ("a", "b", "c"))[: d["E"]]


def spatial(d):
    return tuple(d[k] for k in ("H", "W"))[: d["K"]]


ELEM_DIMS = {"E": (1, 3), "a": (1, 9), "b": (1, 7), "c": (1, 5)}
ELEM_BAD = {"E": 2, "a": 5, "b": 4, "c": 2}
ELEM_BIG = {"E": 2, "a": 131, "b": 257, "c": 1}
ROW_DIMS = {"N": (1, 9), "C": (1, 7)}
ROW_BAD = {"N": 5, "C": 4}
ROW_BIG = {"N": 1031, "C": 23}
SEG_DIMS = {"N": (1, 3), "C": (2, 4), "K": (1, 2), "H": (1, 9), "W": (1, 7)}
SEG_BAD = {"N": 2, "C": 4, "K": 2, "H": 5, "W": 6}
SEG_BIG = {"N": 2, "C": 3, "K": 2, "H": 97, "W": 61}

REGISTRY: dict[str, Entry] = {}


def add(**kw):
    e = Entry(**kw)
    REGISTRY[e.name] = e
    return e


def _sw(rng, shape, on):
    return rng.uniform(0.1, 2.0, size=shape) if on else None


# ---------------------------------------------------------------- log-sum-exp

def _lse_build(rng, dt, d, f):
    kw = {"axis": f["axis"]}
    if "keepdims" in f:
        kw["keepdims"] = f["keepdims"]
    return [unif(rng, nd_shape(d), dt, -10, 10)], kw


for _n in ("logsumexp", "softmax", "log_softmax"):
    add(name=_n, build=_lse_build, dims=ELEM_DIMS, bad_dims=ELEM_BAD, big_dims=ELEM_BIG,
        flags=dict({"axis": [None, -1, 0]}, **({"keepdims": [False, True]}
                                               if _n == "logsumexp" else {})),
        reductions=(), grad=False,
        bad_options={"axis": [5, "x", 1.5]})


# ---------------------------------------------------------------- classification

def _class_shape(d):
    return (d["N"], d["C"]) + spatial(d)


def _target_shape(d):
    return (d["N"],) + spatial(d)


def _with_ignore(rng, t, on, ignore=-100):
    if on and t.size:
        t = t.copy()
        t.flat[rng.integers(0, t.size)] = ignore
    return t


CLS_DIMS = {"N": (1, 9), "C": (1, 6), "K": (0, 2), "H": (1, 5), "W": (1, 4)}
CLS_BAD = {"N": 5, "C": 4, "K": 1, "H": 6, "W": 2}
CLS_BIG = {"N": 37, "C": 5, "K": 2, "H": 23, "W": 29}


def _ce_build(rng, dt, d, f):
    x = unif(rng, _class_shape(d), dt)
    kw = {}
    if f.get("prob"):
        t = probs(rng, _class_shape(d), dt, axis=1)
    else:
        t = _with_ignore(rng, labels(rng, _target_shape(d), d["C"]), f["ignore"])
    if f["weight"]:
        kw["weight"] = rng.uniform(0.2, 2.0, d["C"])
    if f.get("label_smoothing"):
        kw["label_smoothing"] = f["label_smoothing"]
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, _target_shape(d))
    return [x, t], kw


add(name="cross_entropy", build=_ce_build, dims=CLS_DIMS, bad_dims=CLS_BAD, big_dims=CLS_BIG,
    flags={"prob": [False, True], "ignore": [False, True], "weight": [False, True],
           "label_smoothing": [0.0, 0.1], "sample_weight": [False, True]},
    full={"weight": True, "sample_weight": True, "ignore": True},
    labels={"target": "C"}, shaped=("input", "target", "weight", "sample_weight"),
    bad_scalars={"label_smoothing": [NAN, -0.1, 1.5, "0.1"], "ignore_index": ["x", 1.5]},
    grad_out=True, class_dim="C", sample_weight=True)

add(name="nll_loss", build=_ce_build, dims=CLS_DIMS, bad_dims=CLS_BAD, big_dims=CLS_BIG,
    flags={"ignore": [False, True], "weight": [False, True], "sample_weight": [False, True]},
    full={"weight": True, "sample_weight": True, "ignore": True},
    labels={"target": "C"}, shaped=("input", "target", "weight", "sample_weight"),
    bad_scalars={"ignore_index": ["x", 1.5]},
    grad_out=True, class_dim="C", sample_weight=True)


# ---------------------------------------------------------------- element-wise

def _elem(target="float", param=None, values=(1.0,), weight=False, pos_weight=False,
          lo=-3.0, hi=3.0):
    def build(rng, dt, d, f):
        shp = nd_shape(d)
        x = unif(rng, shp, dt, lo, hi)
        if target == "float":
            t = unif(rng, shp, dt)
        elif target == "sign":
            t = signs(rng, shp, dt)
        elif target == "unit":
            t = rng.uniform(0, 1, shp).astype(dt)
        elif target == "binary":
            t = (rng.random(shp) < 0.5).astype(dt)
        elif target == "logprob":
            t = np.log(rng.uniform(0.05, 1.0, shp)).astype(dt)
        kw = {}
        if param:
            kw[param] = f[param]
        if weight and f.get("weight"):
            kw["weight"] = rng.uniform(0.2, 2.0, shp)
        if pos_weight and f.get("pos_weight"):
            kw["pos_weight"] = rng.uniform(0.2, 2.0, shp[-1:])
        if f.get("sample_weight"):
            kw["sample_weight"] = rng.uniform(0.1, 2.0, shp)
        for k in ("squared", "log_target", "alpha", "gamma"):
            if k in f:
                kw[k] = f[k]
        if f.get("log_target") and target == "unit":
            t = np.log(np.maximum(t, 0.05)).astype(dt)
        return [x, t], kw
    return build


def _add_elem(name, build, flags=None, bad_scalars=None, reductions=("mean", "sum", "none"),
              extra_shaped=(), full=None):
    fl = {"sample_weight": [False, True]}
    fl.update(flags or {})
    fu = {"sample_weight": True}
    fu.update(full or {})
    add(name=name, build=build, dims=ELEM_DIMS, bad_dims=ELEM_BAD, big_dims=ELEM_BIG,
        flags=fl, full=fu, reductions=reductions,
        shaped=("input", "target", "sample_weight") + tuple(extra_shaped),
        bad_scalars=bad_scalars or {}, grad_out=True, sample_weight=True)


_add_elem("mse_loss", _elem())
_add_elem("l1_loss", _elem())
_add_elem("smooth_l1_loss", _elem(param="beta"), flags={"beta": [1.0, 0.5, 2.0]},
          bad_scalars={"beta": [NAN, -1.0, "1"]})
_add_elem("huber_loss", _elem(param="delta"), flags={"delta": [1.0, 0.5, 2.0]},
          bad_scalars={"delta": [NAN, -1.0, 0.0, "1"]})
_add_elem("log_cosh_loss", _elem())
_add_elem("pseudo_huber_loss", _elem(param="delta"), flags={"delta": [1.0, 0.5, 2.0]},
          bad_scalars={"delta": [NAN, -1.0, 0.0, "1"]})
_add_elem("mean_bias_error", _elem())
_add_elem("binary_cross_entropy", _elem(target="unit", weight=True, lo=0.02, hi=0.98),
          flags={"weight": [False, True]}, full={"weight": True}, extra_shaped=("weight",))
_add_elem("binary_cross_entropy_with_logits",
          _elem(target="unit", weight=True, pos_weight=True),
          flags={"weight": [False, True], "pos_weight": [False, True]},
          full={"weight": True, "pos_weight": True}, extra_shaped=("weight", "pos_weight"))
_add_elem("soft_margin_loss", _elem(target="sign"))
_add_elem("kl_div", _elem(target="unit", lo=-4.0, hi=0.0),
          flags={"log_target": [False, True]},
          reductions=("mean", "sum", "none", "batchmean"))
_add_elem("sigmoid_focal_loss", _elem(target="binary"),
          flags={"alpha": [0.25, 0.5], "gamma": [2.0, 0.0, 1.5]},
          bad_scalars={"gamma": [NAN, -1.0, "2"], "alpha": [NAN, "x"]})
_add_elem("hinge_loss", _elem(target="sign", param="margin"),
          flags={"margin": [1.0, 0.5], "squared": [False, True]},
          bad_scalars={"margin": [NAN, "1"]})
_add_elem("exponential_loss", _elem(target="sign"))


def _mlsm_build(rng, dt, d, f):
    shp = (d["N"], d["C"])
    kw = {}
    if f["weight"]:
        kw["weight"] = rng.uniform(0.2, 2.0, d["C"])
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, d["N"])
    return [unif(rng, shp, dt), (rng.random(shp) < 0.5).astype(dt)], kw


add(name="multilabel_soft_margin_loss", build=_mlsm_build, dims=ROW_DIMS, bad_dims=ROW_BAD,
    big_dims=ROW_BIG, flags={"weight": [False, True], "sample_weight": [False, True]},
    full={"weight": True, "sample_weight": True},
    shaped=("input", "target", "weight", "sample_weight"), grad_out=True, sample_weight=True)


def _js_build(rng, dt, d, f):
    ax = f["axis"]
    shp = (d["N"], d["C"])
    kw = {"axis": ax}
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, shp[1 - (ax % 2)])
    return [probs(rng, shp, dt, ax), probs(rng, shp, dt, ax)], kw


add(name="js_div", build=_js_build, dims=ROW_DIMS, bad_dims=ROW_BAD, big_dims=ROW_BIG,
    flags={"axis": [-1, 0], "sample_weight": [False, True]}, full={"sample_weight": True},
    shaped=("p", "q", "sample_weight"), bad_options={"axis": [5, "x"]}, grad_out=True,
    sample_weight=True)


# ---------------------------------------------------------------- penalties and GAN

def _pen_build(rng, dt, d, f):
    arrays = [unif(rng, nd_shape(d), dt)]
    if f["n_arrays"] > 1:
        arrays.append(unif(rng, (d["b"],), dt))
    if f["n_arrays"] > 2:
        arrays.append(unif(rng, (d["a"], 1), dt))
    kw = {}
    if "l1_ratio" in f:
        kw["l1_ratio"] = f["l1_ratio"]
    return arrays, kw


for _n in ("l1_penalty", "l2_penalty", "elastic_net_penalty"):
    add(name=_n, build=_pen_build, dims=ELEM_DIMS, bad_dims=ELEM_BAD, big_dims=ELEM_BIG,
        flags=dict({"n_arrays": [1, 2, 3]},
                   **({"l1_ratio": [0.5, 0.0, 1.0, 0.3]} if _n == "elastic_net_penalty" else {})),
        full={"n_arrays": 2}, reductions=(),
        bad_scalars={"l1_ratio": [NAN, -0.1, 1.5, "x"]} if _n == "elastic_net_penalty" else {})


def _gan_d_build(rng, dt, d, f):
    return [unif(rng, nd_shape(d), dt), unif(rng, (2 * d["a"],), dt)], {}


def _gan_g_build(rng, dt, d, f):
    return [unif(rng, nd_shape(d), dt)], {"non_saturating": f["non_saturating"]}


add(name="gan_discriminator_loss", build=_gan_d_build, dims=ELEM_DIMS, bad_dims=ELEM_BAD,
    big_dims=ELEM_BIG)
add(name="gan_generator_loss", build=_gan_g_build, dims=ELEM_DIMS, bad_dims=ELEM_BAD,
    big_dims=ELEM_BIG, flags={"non_saturating": [True, False]})


# ---------------------------------------------------------------- row-wise

def _rows_build(extra):
    def build(rng, dt, d, f):
        N, C = d["N"], d["C"]
        x = unif(rng, (N, C), dt)
        t = labels(rng, (N,), C)
        kw = {}
        if f.get("sample_weight"):
            kw["sample_weight"] = rng.uniform(0.1, 2.0, N)
        extra(rng, dt, d, f, kw)
        if f.get("ignore"):
            t = _with_ignore(rng, t, True)
        if kw.pop("_cosine", False):
            x = rng.uniform(-1, 1, (N, C)).astype(dt)
        return [x, t], kw
    return build


def _sfl_extra(rng, dt, d, f, kw):
    kw["gamma"] = f["gamma"]
    if f["alpha"]:
        kw["alpha"] = rng.uniform(0.1, 1.0, d["C"])


def _mm_extra(rng, dt, d, f, kw):
    kw["p"] = f["p"]
    kw["margin"] = f["margin"]
    if f["weight"]:
        kw["weight"] = rng.uniform(0.2, 2.0, d["C"])


def _mh_extra(rng, dt, d, f, kw):
    kw["margin"] = f["margin"]
    kw["squared"] = f["squared"]


def _margin_extra(keys):
    def extra(rng, dt, d, f, kw):
        kw["_cosine"] = True
        for k in keys:
            kw[k] = f[k]
    return extra


_SW = {"sample_weight": [False, True]}
_ROWS = dict(dims=ROW_DIMS, bad_dims=ROW_BAD, big_dims=ROW_BIG, labels={"target": "C"},
             grad_out=True, class_dim="C", sample_weight=True)

add(name="softmax_focal_loss", build=_rows_build(_sfl_extra),
    flags=dict(_SW, gamma=[2.0, 0.0, 1.5], alpha=[False, True], ignore=[False, True]),
    full={"sample_weight": True, "alpha": True, "ignore": True},
    shaped=("input", "target", "alpha", "sample_weight"),
    bad_scalars={"gamma": [NAN, -1.0, "2"], "ignore_index": ["x", 1.5]}, **_ROWS)
add(name="multi_margin_loss", build=_rows_build(_mm_extra),
    flags=dict(_SW, p=[1, 2], margin=[1.0, 0.5], weight=[False, True]),
    full={"sample_weight": True, "weight": True},
    shaped=("input", "target", "weight", "sample_weight"),
    bad_scalars={"p": [3, 0, NAN, "1"], "margin": [NAN, "1"]}, **_ROWS)
add(name="multiclass_hinge_loss", build=_rows_build(_mh_extra),
    flags=dict(_SW, margin=[1.0, 0.5], squared=[False, True]),
    full={"sample_weight": True}, shaped=("input", "target", "sample_weight"),
    bad_scalars={"margin": [NAN, "1"]}, **_ROWS)
add(name="cosface_loss", build=_rows_build(_margin_extra(("s", "m"))),
    flags=dict(_SW, s=[30.0, 5.0], m=[0.35, 0.1]), full={"sample_weight": True},
    shaped=("cosine", "target", "sample_weight"),
    bad_scalars={"s": [NAN, -1.0, 0.0, "1"], "m": [NAN, "1"]}, **_ROWS)
add(name="arcface_loss", build=_rows_build(_margin_extra(("s", "m", "easy_margin"))),
    flags=dict(_SW, s=[64.0, 5.0], m=[0.5, 0.2], easy_margin=[False, True]),
    full={"sample_weight": True}, shaped=("cosine", "target", "sample_weight"),
    bad_scalars={"s": [NAN, -1.0, 0.0, "1"], "m": [NAN, "1"]}, **_ROWS)
add(name="sphereface_loss", build=_rows_build(_margin_extra(("s", "m"))),
    flags=dict(_SW, s=[30.0, 5.0], m=[4, 1, 2, 3]), full={"sample_weight": True},
    shaped=("cosine", "target", "sample_weight"),
    bad_scalars={"s": [NAN, -1.0, 0.0, "1"], "m": [NAN, 0, 5, 1.5, "4"]}, **_ROWS)

EMB_DIMS = {"N": (1, 9), "D": (1, 7), "C": (1, 5)}
EMB_BAD = {"N": 5, "D": 4, "C": 6}
EMB_BIG = {"N": 1031, "D": 19, "C": 7}


def _triplet_build(rng, dt, d, f):
    shp = (d["N"], d["D"])
    kw = {k: f[k] for k in ("margin", "p", "swap", "squared")}
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, d["N"])
    return [unif(rng, shp, dt), unif(rng, shp, dt), unif(rng, shp, dt)], kw


add(name="triplet_margin_loss", build=_triplet_build, dims=EMB_DIMS, bad_dims=EMB_BAD,
    big_dims=EMB_BIG,
    flags=dict(_SW, margin=[1.0, 0.5], p=[2, 1, 3], swap=[False, True], squared=[False, True]),
    full={"sample_weight": True},
    shaped=("anchor", "positive", "negative", "sample_weight"),
    bad_scalars={"margin": [NAN, "1"], "p": [NAN, 0, -1, "2"], "eps": [NAN, "x"]},
    sample_weight=True)


def _contrastive_build(rng, dt, d, f):
    shp = (d["N"], d["D"])
    kw = {"margin": f["margin"]}
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, d["N"])
    return [unif(rng, shp, dt), unif(rng, shp, dt), labels(rng, (d["N"],), 2)], kw


add(name="contrastive_loss", build=_contrastive_build, dims=EMB_DIMS, bad_dims=EMB_BAD,
    big_dims=EMB_BIG, flags=dict(_SW, margin=[1.0, 2.0]), full={"sample_weight": True},
    shaped=("x1", "x2", "label", "sample_weight"),
    bad_scalars={"margin": [NAN, "1"]}, sample_weight=True)


def _center_build(rng, dt, d, f):
    kw = {}
    if f["sample_weight"]:
        kw["sample_weight"] = rng.uniform(0.1, 2.0, d["N"])
    return [unif(rng, (d["N"], d["D"]), dt), labels(rng, (d["N"],), d["C"]),
            unif(rng, (d["C"], d["D"]), dt)], kw


add(name="center_loss", build=_center_build, dims=EMB_DIMS, bad_dims=EMB_BAD, big_dims=EMB_BIG,
    flags=_SW, full={"sample_weight": True}, labels={"labels": "C"},
    shaped=("features", "labels", "centers", "sample_weight"), class_dim="C",
    shape_axis={"centers": -1},
    sample_weight=True)


def _frcnn_build(rng, dt, d, f):
    N, C = d["N"], d["C"]
    cols = 4 * C if f["class_specific"] else 4
    kw = {"box_weight": f["box_weight"], "beta": f["beta"]}
    return [unif(rng, (N, C), dt), labels(rng, (N,), C), unif(rng, (N, cols), dt),
            unif(rng, (N, 4), dt)], kw


add(name="fast_rcnn_loss", build=_frcnn_build, dims={"N": (1, 9), "C": (1, 5)},
    bad_dims={"N": 5, "C": 6}, big_dims={"N": 1031, "C": 21},
    flags={"class_specific": [False, True], "box_weight": [1.0, 2.0], "beta": [1.0, 1 / 9]},
    reductions=(), labels={"labels": "C"}, class_dim="C",
    shaped=("class_logits", "labels", "box_regression", "box_targets"),
    bad_scalars={"box_weight": [NAN, -1.0, "1"], "beta": [NAN, -1.0, "1"]})


# ---------------------------------------------------------------- segmentation

def _seg_build(extra_keys=(), weight=True, all_class_weight=False):
    def build(rng, dt, d, f):
        ishape = (d["N"], d["C"]) + spatial(d)
        tshape = (d["N"],) + spatial(d)
        act = f["activation"]
        if act is None:
            x = probs(rng, ishape, dt, axis=1)
        else:
            x = unif(rng, ishape, dt)
        kw = {"activation": act} if "activation" in f else {}
        if f["onehot"]:
            t = np.moveaxis(np.eye(d["C"])[labels(rng, tshape, d["C"])], -1, 1).astype(dt)
        else:
            t = labels(rng, tshape, d["C"]).astype(np.uint8)
            if f["ignore"] and t.size:
                t.flat[rng.integers(0, t.size)] = 255
                kw["ignore_index"] = 255
        for k in ("include_background", "batch", "squared_pred") + tuple(extra_keys):
            if k in f:
                kw[k] = f[k]
        if weight and f.get("weight"):
            # MONAI: without the background class a Dice weight has C - 1 entries;
            # DiceCELoss takes all C (its cross-entropy needs them) and drops weight[0].
            nw = d["C"] - 1 if (f.get("include_background") is False and d["C"] > 1
                                and not all_class_weight) else d["C"]
            kw["weight"] = rng.uniform(0.2, 2.0, nw)
        if f.get("sample_weight"):
            kw["sample_weight"] = rng.uniform(0.1, 2.0, tshape)
        return [x, t], kw
    return build


_SEG_FLAGS = {"activation": ["softmax", "sigmoid", None], "onehot": [False, True],
              "ignore": [False, True], "include_background": [True, False],
              "batch": [False, True]}
_SEG_BAD_SCALARS = {"smooth_nr": [NAN, -1.0, "x"], "smooth_dr": [NAN, -1.0, "x"],
                    "ignore_index": ["x", 1.5]}
_SEG = dict(dims=SEG_DIMS, bad_dims=SEG_BAD, big_dims=SEG_BIG, labels={"target": "C"},
            class_dim="C")

add(name="dice_loss", build=_seg_build(),
    flags=dict(_SEG_FLAGS, squared_pred=[False, True], weight=[False, True]),
    full={"weight": True}, shaped=("input", "target", "weight"),
    bad_scalars=_SEG_BAD_SCALARS, bad_options={"activation": ["relu", 1]}, **_SEG)
add(name="jaccard_loss", build=_seg_build(),
    flags=dict(_SEG_FLAGS, squared_pred=[False, True], weight=[False, True]),
    full={"weight": True}, shaped=("input", "target", "weight"),
    bad_scalars=_SEG_BAD_SCALARS, bad_options={"activation": ["relu", 1]}, **_SEG)
add(name="tversky_loss", build=_seg_build(("alpha", "beta")),
    flags=dict(_SEG_FLAGS, alpha=[0.5, 0.3], beta=[0.5, 0.7], weight=[False, True]),
    full={"weight": True}, shaped=("input", "target", "weight"),
    bad_scalars=dict(_SEG_BAD_SCALARS, alpha=[NAN, -0.5, "x"], beta=[NAN, -0.5, "x"]),
    bad_options={"activation": ["relu", 1]}, **_SEG)
add(name="focal_tversky_loss", build=_seg_build(("alpha", "beta", "gamma")),
    flags=dict(_SEG_FLAGS, alpha=[0.5, 0.3], beta=[0.5, 0.7], gamma=[0.75, 1.0, 2.0],
               weight=[False, True]),
    full={"weight": True}, shaped=("input", "target", "weight"),
    bad_scalars=dict(_SEG_BAD_SCALARS, alpha=[NAN, -0.5, "x"], beta=[NAN, -0.5, "x"],
                     gamma=[NAN, -1.0, "x"]),
    bad_options={"activation": ["relu", 1]}, **_SEG)
add(name="generalized_dice_loss", build=_seg_build(("w_type",), weight=False),
    flags=dict(_SEG_FLAGS, w_type=["square", "simple", "uniform"]),
    shaped=("input", "target"), bad_scalars=_SEG_BAD_SCALARS,
    bad_options={"activation": ["relu", 1], "w_type": ["cube", None]}, **_SEG)
add(name="sensitivity_specificity_loss", build=_seg_build(("r",)),
    flags=dict(_SEG_FLAGS, r=[0.05, 0.5], weight=[False, True]),
    full={"weight": True}, shaped=("input", "target", "weight"),
    bad_scalars=dict(_SEG_BAD_SCALARS, r=[NAN, -0.1, 1.5, "x"]),
    bad_options={"activation": ["relu", 1]}, **_SEG)
add(name="dice_ce_loss", build=None,
    flags={"activation": ["softmax"], "onehot": [False, True], "ignore": [False, True],
           "include_background": [True, False], "batch": [False, True],
           "squared_pred": [False, True], "lambda_dice": [1.0, 0.5], "lambda_ce": [1.0, 2.0],
           "weight": [False, True], "sample_weight": [False, True]},
    full={"weight": True, "sample_weight": True},
    shaped=("input", "target", "weight", "sample_weight"),
    bad_scalars=dict(_SEG_BAD_SCALARS, lambda_dice=[NAN, -1.0, "x"],
                     lambda_ce=[NAN, -1.0, "x"]),
    reductions=("mean", "sum"), sample_weight=True, **_SEG)


def _dice_ce_build(rng, dt, d, f):
    args, kw = _seg_build(("lambda_dice", "lambda_ce"), all_class_weight=True)(rng, dt, d, f)
    kw.pop("activation", None)
    return args, kw


REGISTRY["dice_ce_loss"].build = _dice_ce_build


def _metric_build(rng, dt, d, f):
    shp = (d["N"],) + spatial(d)
    p = labels(rng, shp, d["C"]).astype(np.uint8)
    t = labels(rng, shp, d["C"]).astype(np.uint8)
    kw = {}
    if f["ignore"] and t.size:
        t.flat[rng.integers(0, t.size)] = 255
        kw["ignore_index"] = 255
    for k in ("per_image", "empty_score"):
        if k in f:
            kw[k] = f[k]
    return [p, t, d["C"]], kw


_MET = dict(dims=SEG_DIMS, bad_dims=SEG_BAD, big_dims=SEG_BIG, reductions=(), grad=False,
            keeps_dtype=False, labels={"pred": "C", "target": "C"}, class_dim="C",
            shaped=("pred", "target"))
add(name="confusion_matrix", build=_metric_build, flags={"ignore": [False, True]},
    bad_scalars={"num_classes": [0, -1, 1.5, "x"], "ignore_index": ["x", 1.5]}, **_MET)
for _n in ("dice_score", "iou_score"):
    add(name=_n, build=_metric_build,
        flags={"ignore": [False, True], "per_image": [False, True], "empty_score": [NAN, 1.0]},
        bad_scalars={"num_classes": [0, -1, 1.5, "x"], "ignore_index": ["x", 1.5]}, **_MET)


def public_functions():
    import fastloss

    return [n for n in fastloss.__all__ if n not in NOT_LOSSES and n not in OWN_SUITE]
