"""The prepared calls of the embedding losses, the Fast R-CNN box term and
the penalties (see tests/test_fastcall.py for the convention): the same
bits as the full path on every case taken, one work unit (serial) and
several (threaded), every label width; None for what the full path must
decide, whose messages stay.
"""

import numpy as np
import pytest
from _same import same as _same

import fastloss
from fastloss import detection, embedding
from fastloss.elementwise import _penalties

rng = np.random.default_rng(11)

LABEL_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64]
# (N, D): one work unit, and several (rows_per_unit(128) is 128 rows)
ROW_SHAPES = [(8, 10), (64, 100), (700, 128), (5, 1)]


def _full(monkeypatch, module, entry, fn, *args, **kw):
    """fn(*args, **kw) with module._k.<entry> declining: the full path."""
    with monkeypatch.context() as m:
        m.setattr(module._k, entry, lambda *a: None, raising=False)
        return fn(*args, **kw)


# ------------------------------------------------------------ contrastive

@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ldtype", LABEL_DTYPES + [np.bool_])
def test_contrastive_call_matches_full_path(shape, dtype, reduction, ldtype, monkeypatch):
    x1, x2 = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    y = (rng.random(shape[0]) < 0.5).astype(ldtype)
    for return_grad in (False, True):
        for nt in (1, 2):
            fast = embedding._k.contrastive_call(x1, x2, y, 0.8, reduction, None, return_grad,
                                                 nt)
            assert fast is not None
            full = _full(monkeypatch, embedding, "contrastive_call", fastloss.contrastive_loss,
                         x1, x2, y, 0.8, reduction, return_grad=return_grad, n_threads=nt)
            _same(fast, full)
            _same(fastloss.contrastive_loss(x1, x2, y, 0.8, reduction, return_grad=return_grad,
                                            n_threads=nt), full)


# ----------------------------------------------------------------- center

@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("C", [3, 20])
def test_center_call_matches_full_path(shape, dtype, reduction, C, monkeypatch):
    x = rng.standard_normal(shape).astype(dtype)
    centers = rng.standard_normal((C, shape[1])).astype(dtype)
    for ldtype in LABEL_DTYPES:
        y = rng.integers(0, C, shape[0]).astype(ldtype)
        for return_grad in (False, True):
            for nt in (1, 2):
                fast = embedding._k.center_call(x, y, centers, reduction, None, return_grad, nt)
                assert fast is not None
                full = _full(monkeypatch, embedding, "center_call", fastloss.center_loss, x, y,
                             centers, reduction, return_grad=return_grad, n_threads=nt)
                _same(fast, full)


# ------------------------------------------------------------ Fast R-CNN

@pytest.mark.parametrize("N, C", [(5, 6), (64, 21), (3000, 81)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_class", [False, True])
@pytest.mark.parametrize("opts", [{}, {"beta": 1 / 9, "box_weight": 2}, {"beta": 0.0}], ids=str)
def test_box_call_matches_full_path(N, C, dtype, per_class, opts, monkeypatch):
    x = rng.standard_normal((N, C)).astype(dtype)
    b = rng.standard_normal((N, 4 * C if per_class else 4)).astype(dtype)
    bt = rng.standard_normal((N, 4)).astype(dtype)
    for ldtype in (np.uint8, np.int32, np.int64):
        y = rng.integers(0, C, N).astype(ldtype)
        assert detection._k.box_call(b, bt, y, x, opts.get("beta", 1.0),
                                     opts.get("box_weight", 1.0), False, None) is not None
        for return_grad in (False, True):
            for parts in (False, True):
                for nt in (1, 2):
                    kw = dict(return_parts=parts, return_grad=return_grad, n_threads=nt, **opts)
                    fast = fastloss.fast_rcnn_loss(x, y, b, bt, **kw)
                    full = _full(monkeypatch, detection, "box_call", fastloss.fast_rcnn_loss,
                                 x, y, b, bt, **kw)
                    _same(fast, full)


# -------------------------------------------------------------- penalties

@pytest.mark.parametrize("dtypes", [(np.float32,), (np.float64,), (np.float32, np.float64),
                                    (np.float32, np.float32, np.float32), (np.float16,),
                                    (np.float16, np.float64)], ids=str)
@pytest.mark.parametrize("name, kw", [("l1_penalty", {}), ("l2_penalty", {}),
                                      ("elastic_net_penalty", {"l1_ratio": 0.3})])
def test_penalty_call_matches_full_path(dtypes, name, kw, monkeypatch):
    shapes = [(5, 4), (40000,), (3, 7, 2)]
    arrays = [rng.standard_normal(s).astype(d) for d, s in zip(dtypes, shapes)]
    fn = getattr(fastloss, name)
    for return_grad in (False, True):
        fast = fn(*arrays, return_grad=return_grad, **kw)
        with monkeypatch.context() as m:
            m.setattr(_penalties, "_penalty_call", lambda *a: None)
            full = fn(*arrays, return_grad=return_grad, **kw)
        _same(fast, full)
        assert _penalties._penalty_call(arrays, kw.get("l1_ratio", 1.0 if name == "l1_penalty"
                                                      else 0.0), return_grad, None) is not None


# ---------------------------------------------------------------- declines

def _pairs():
    x1, x2 = (rng.standard_normal((16, 8)).astype(np.float32) for _ in range(2))
    return dict(x1=x1, x2=x2, label=np.zeros(16, np.int64), margin=1.0, reduction="mean",
                sample_weight=None, return_grad=False, n_threads=None)


@pytest.mark.parametrize("case, change", [
    ("sample_weight", dict(sample_weight=np.ones(16))),
    ("float16", dict(x1=np.zeros((16, 8), np.float16))),
    ("mixed", dict(x2=np.zeros((16, 8)))),
    ("noncontig", dict(x2=np.zeros((8, 16), np.float32).T)),
    ("1d", dict(x1=np.zeros(8, np.float32), x2=np.zeros(8, np.float32),
                label=np.zeros((), np.int64))),
    ("label_shape", dict(label=np.zeros(15, np.int64))),
    ("float_label", dict(label=np.zeros(16))),
    ("uint16_label", dict(label=np.zeros(16, np.uint16))),
    ("bad_label", dict(label=np.full(16, 2))),
    ("nan_margin", dict(margin=float("nan"))),
    ("reduction", dict(reduction="avg")),
    ("n_threads0", dict(n_threads=0)),
    ("empty", dict(x1=np.zeros((0, 8), np.float32), x2=np.zeros((0, 8), np.float32),
                   label=np.zeros(0, np.int64))),
    ("list", dict(label=[0] * 16)),
])
def test_contrastive_call_declines(case, change):
    args = {**_pairs(), **change}
    assert embedding._k.contrastive_call(*args.values()) is None


@pytest.mark.parametrize("case", ["sample_weight", "centers_dtype", "centers_shape",
                                  "bool_labels", "bad_label", "negative_label"])
def test_center_call_declines(case):
    x = rng.standard_normal((16, 8)).astype(np.float32)
    args = dict(features=x, labels=np.zeros(16, np.int64),
                centers=np.zeros((4, 8), np.float32), reduction="mean", sample_weight=None,
                return_grad=False, n_threads=None)
    if case == "sample_weight":
        args["sample_weight"] = np.ones(16)
    elif case == "centers_dtype":
        args["centers"] = np.zeros((4, 8))
    elif case == "centers_shape":
        args["centers"] = np.zeros((4, 7), np.float32)
    elif case == "bool_labels":
        args["labels"] = np.zeros(16, np.bool_)
    elif case == "bad_label":
        args["labels"] = np.full(16, 4)
    elif case == "negative_label":
        args["labels"] = np.full(16, -1, np.int8)
    assert embedding._k.center_call(*args.values()) is None


@pytest.mark.parametrize("case", ["half", "mixed", "shape", "targets", "bad_label", "beta",
                                  "weight", "empty", "list"])
def test_box_call_declines(case):
    x = rng.standard_normal((6, 3)).astype(np.float32)
    args = dict(reg=np.zeros((6, 4), np.float32), tgt=np.zeros((6, 4), np.float32),
                labels=np.zeros(6, np.int64), logits=x, beta=1.0, box_weight=1.0,
                return_grad=False, n_threads=None)
    if case == "half":
        args["logits"] = x.astype(np.float16)
    elif case == "mixed":
        args["tgt"] = np.zeros((6, 4))
    elif case == "shape":
        args["reg"] = np.zeros((6, 8), np.float32)
    elif case == "targets":
        args["tgt"] = np.zeros((6, 12), np.float32)
    elif case == "bad_label":
        args["labels"] = np.full(6, 3)
    elif case == "beta":
        args["beta"] = -1.0
    elif case == "weight":
        args["box_weight"] = float("nan")
    elif case == "empty":
        args.update(reg=np.zeros((0, 4), np.float32), tgt=np.zeros((0, 4), np.float32),
                    labels=np.zeros(0, np.int64), logits=x[:0])
    elif case == "list":
        args["labels"] = [0] * 6
    assert detection._k.box_call(*args.values()) is None


@pytest.mark.parametrize("call, error, message", [
    (lambda x: fastloss.contrastive_loss(x, x, np.full(4, 2)), ValueError,
     "label holds 2 at flat position 0"),
    (lambda x: fastloss.contrastive_loss(x, x[:3], np.zeros(4, int)), ValueError, "shape"),
    (lambda x: fastloss.contrastive_loss(x, x, np.zeros(4, int), margin=float("nan")),
     ValueError, "margin must be in"),
    (lambda x: fastloss.center_loss(x, np.array([0, 1, 5, 0]), np.zeros((3, 3), np.float32)),
     ValueError, "class index 5 at flat position 2"),
    (lambda x: fastloss.center_loss(x, np.zeros(4, int), np.zeros((3, 2), np.float32)),
     ValueError, r"centers must have shape \(C, 3\)"),
    (lambda x: fastloss.fast_rcnn_loss(x, np.array([0, 1, 3, 0]), np.zeros((4, 4), np.float32),
                                       np.zeros((4, 4), np.float32)),
     ValueError, "class index 3 at flat position 2"),
    (lambda x: fastloss.fast_rcnn_loss(x, np.zeros(4, int), np.zeros((4, 4), np.float32),
                                       np.zeros((4, 4), np.float32), beta=-1.0),
     ValueError, "beta must be in"),
    (lambda x: fastloss.l2_penalty(x, np.array(["a"])), (TypeError, ValueError), r"arrays\[1\]"),
    (lambda x: fastloss.elastic_net_penalty(x, l1_ratio=2.0), ValueError, "l1_ratio must be in"),
])
def test_errors_keep_their_messages(call, error, message):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(error, match=message):
        call(x)


# ------------------------------------------------------------ triplet

TRIPLET_OPTS = [dict(), dict(p=1), dict(p=3.0, swap=True), dict(squared=True, margin=0.5),
                dict(eps=0.0, margin=2)]


@pytest.mark.parametrize("shape", [(8, 10), (64, 100), (700, 128), (5, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", TRIPLET_OPTS, ids=str)
def test_triplet_call_matches_full_path(shape, dtype, reduction, opts, monkeypatch):
    from fastloss import embedding

    a, p, n = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    for return_grad in (False, True):
        for nt in (1, 2):
            fast = embedding._k.triplet_call(a, p, n, opts.get("margin", 1.0), opts.get("p", 2),
                                             opts.get("eps", 1e-6), opts.get("swap", False),
                                             opts.get("squared", False), reduction, None,
                                             return_grad, nt)
            assert fast is not None
            with monkeypatch.context() as m:
                m.setattr(embedding._k, "triplet_call", lambda *a: None, raising=False)
                full = fastloss.triplet_margin_loss(a, p, n, reduction=reduction,
                                                    return_grad=return_grad, n_threads=nt,
                                                    **opts)
            _same(fast, full)
            _same(fastloss.triplet_margin_loss(a, p, n, reduction=reduction,
                                               return_grad=return_grad, n_threads=nt, **opts),
                  full)


@pytest.mark.parametrize("case", ["sample_weight", "float16", "mixed", "noncontig", "1d",
                                  "shape", "p0", "p_inf", "nan_margin", "bool_p", "swap_int",
                                  "reduction", "n_threads0", "empty", "list"])
def test_triplet_call_declines(case):
    from fastloss import embedding

    a, p, n = (rng.standard_normal((16, 8)).astype(np.float32) for _ in range(3))
    args = dict(anchor=a, positive=p, negative=n, margin=1.0, p=2, eps=1e-6, swap=False,
                squared=False, reduction="mean", sample_weight=None, return_grad=False,
                n_threads=None)
    if case == "sample_weight":
        args["sample_weight"] = np.ones(16)
    elif case == "float16":
        args["anchor"] = a.astype(np.float16)
    elif case == "mixed":
        args["negative"] = n.astype(np.float64)
    elif case == "noncontig":
        args["positive"] = np.asfortranarray(p)
    elif case == "1d":
        args.update(anchor=a[0], positive=p[0], negative=n[0])
    elif case == "shape":
        args["negative"] = n[:8]
    elif case == "p0":
        args["p"] = 0.0
    elif case == "p_inf":
        args["p"] = float("inf")
    elif case == "nan_margin":
        args["margin"] = float("nan")
    elif case == "bool_p":
        args["p"] = True
    elif case == "swap_int":
        args["swap"] = 1
    elif case == "reduction":
        args["reduction"] = "avg"
    elif case == "n_threads0":
        args["n_threads"] = 0
    elif case == "empty":
        args.update(anchor=a[:0], positive=p[:0], negative=n[:0])
    elif case == "list":
        args["anchor"] = a.tolist()
    assert embedding._k.triplet_call(*args.values()) is None


@pytest.mark.parametrize("call, message", [
    (lambda a: fastloss.triplet_margin_loss(a, a, a[:3]), "same shape|shape"),
    (lambda a: fastloss.triplet_margin_loss(a, a, a, p=0), "p must be in"),
    (lambda a: fastloss.triplet_margin_loss(a, a, a, margin=float("nan")), "margin must be in"),
    (lambda a: fastloss.triplet_margin_loss(a, a, a, reduction="avg"), "reduction must be one of"),
    (lambda a: fastloss.triplet_margin_loss(a, a, a, n_threads=0), "n_threads must be a non-zero"),
])
def test_triplet_errors_keep_their_messages(call, message):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        call(a)
