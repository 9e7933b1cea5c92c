"""The prepared calls of the segmentation losses (``seg_call``) and of the
confusion matrix (see tests/test_fastcall.py for the convention): the same
bits as the full path on every case taken, None for what the full path must
decide, whose messages stay.
"""

import re

import numpy as np
import pytest
from _same import same as _same

import fastloss

rng = np.random.default_rng(13)


def _labels(shape, C, dtype):
    return rng.integers(0, C, size=shape).astype(dtype)


SEG_CASES = [
    ("dice_loss", {}),
    ("dice_loss", {"squared_pred": True, "include_background": False, "batch": True}),
    ("dice_loss", {"activation": "sigmoid", "smooth_nr": 0.0}),
    ("jaccard_loss", {"squared_pred": True}),
    ("jaccard_loss", {"activation": None, "batch": True}),
    ("tversky_loss", {"alpha": 0.3, "beta": 0.7}),
    ("focal_tversky_loss", {"gamma": 1.5, "include_background": False}),
    ("generalized_dice_loss", {}),
    ("generalized_dice_loss", {"w_type": "simple", "batch": True}),
    ("generalized_dice_loss", {"w_type": "uniform", "include_background": False}),
    ("sensitivity_specificity_loss", {"r": 0.2}),
    ("dice_ce_loss", {}),
    ("dice_ce_loss", {"jaccard": True, "squared_pred": True, "lambda_dice": 0.5,
                      "lambda_ce": 2.0, "include_background": False}),
]


def _seg_spy(monkeypatch, module):
    """Records whether each seg_call took its call (True) or declined it."""
    taken, real = [], module._k.seg_call

    def spy(*a):
        r = real(*a)
        taken.append(r is not None)
        return r
    monkeypatch.setattr(module._k, "seg_call", spy, raising=False)
    return taken


@pytest.mark.parametrize("name, kw", SEG_CASES)
@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (2, 3, 32, 32), (1, 2, 9, 10, 11),
                                   (2, 3, 100, 100), (2, 4, 128, 128)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seg_call_matches_full_path(name, kw, shape, dtype, monkeypatch):
    from fastloss.segmentation import _soft
    x = rng.standard_normal(shape).astype(dtype)
    N, C = shape[:2]
    # the last class absent from the first image (the generalized Dice's
    # infinite weight), labels in three widths and MONAI's (N, 1, ...) form
    y = _labels((N,) + shape[2:], C, np.int64)
    y[0][y[0] == C - 1] = 0
    fn = getattr(fastloss, name)
    reductions = ("mean", "sum") if name == "dice_ce_loss" else ("mean", "sum", "none")
    for reduction, target, nt in zip(reductions * 2,
                                     (y, y.astype(np.uint8), y.astype(np.int16)[:, None],
                                      y.astype(np.int32), y, y.astype(np.int8)),
                                     (None, 1, 2, 2, 1, None)):
        for return_grad in (False, True):
            taken = _seg_spy(monkeypatch, _soft)
            fast = fn(x, target, reduction=reduction, return_grad=return_grad, n_threads=nt, **kw)
            assert taken == [True]
            monkeypatch.setattr(_soft._k, "seg_call", lambda *a: None, raising=False)
            full = fn(x, target, reduction=reduction, return_grad=return_grad, n_threads=nt,
                      **kw)
            monkeypatch.undo()
            _same(fast, full)
    # any thread count, the same bits
    _same(fn(x, y, return_grad=True, n_threads=1, **kw),
          fn(x, y, return_grad=True, n_threads=2, **kw))


@pytest.mark.parametrize("case", [
    dict(weight=np.array([1.0, 2.0, 3.0])), dict(ignore_index=2), dict(include_background=1),
    dict(smooth_nr=np.float64(1e-5)), dict(n_threads=np.int64(1)), dict(activation="Softmax"),
    dict(smooth_dr=-1.0), dict(reduction="batchmean"), dict(batch=np.bool_(True)),
])
def test_seg_call_declines(case, monkeypatch):
    # what the prepared call leaves to the full path gives the full path's
    # result or error, with or without the prepared call
    from fastloss.segmentation import _soft
    x = rng.standard_normal((2, 3, 6, 7))
    y = _labels((2, 6, 7), 3, np.int64)
    taken = _seg_spy(monkeypatch, _soft)
    try:
        want = fastloss.dice_loss(x, y, return_grad=True, **case)
    except (TypeError, ValueError) as e:
        want = e
    assert True not in taken
    monkeypatch.undo()
    monkeypatch.setattr(_soft._k, "seg_call", lambda *a: None, raising=False)
    if isinstance(want, Exception):
        with pytest.raises(type(want), match=re.escape(str(want))):
            fastloss.dice_loss(x, y, return_grad=True, **case)
    else:
        _same(want, fastloss.dice_loss(x, y, return_grad=True, **case))


@pytest.mark.parametrize("make", [
    lambda x, y: (x[:, :1], y),                                # one class
    lambda x, y: (x, y + 1),                                   # a label out of range
    lambda x, y: (x, (y[:, None] == np.arange(3)[:, None, None]).astype(np.float32)),  # soft
    lambda x, y: (x.transpose(0, 1, 3, 2), y.transpose(0, 2, 1)),  # not contiguous
    lambda x, y: (x.astype(np.float16), y),                    # half input
    lambda x, y: (x, y.astype(np.uint16)),                     # a label width not read
    lambda x, y: (x[:1], y),                                   # shapes that differ
])
@pytest.mark.parametrize("name", ["dice_loss", "generalized_dice_loss", "dice_ce_loss"])
def test_seg_call_declines_inputs(make, name):
    from fastloss.segmentation import _soft
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    y = _labels((2, 6, 7), 3, np.int64)
    xi, yi = make(x, y)
    kind = {"dice_loss": _soft._k.DICE, "generalized_dice_loss": _soft._k.GENERALIZED,
            "dice_ce_loss": _soft._k.DICE_CE}[name]
    a = "square" if name == "generalized_dice_loss" else 1.0
    assert _soft._k.seg_call(kind, xi, yi, "softmax", True, False, False, False, 1e-5, 1e-5,
                             a, 1.0, None, "mean", True, None) is None


@pytest.mark.parametrize("shape", [(2, 5, 6), (4, 64, 64), (2, 300, 300)])
@pytest.mark.parametrize("C", [3, 20])
@pytest.mark.parametrize("ldtype", [np.uint8, np.int64])
def test_confusion_call_matches_full_path(shape, C, ldtype, monkeypatch):
    from fastloss.segmentation import _hard

    p = _labels(shape, C, ldtype)
    t = _labels(shape, C, ldtype)
    t[0][t[0] == 1] = 0                          # class 1 absent from the first image
    p[0][p[0] == 1] = 0
    real = _hard._k.confusion_call
    taken = []

    def spy(*a):
        taken.append(real(*a))
        return taken[-1]
    cases = [(fastloss.confusion_matrix, {}), (fastloss.dice_score, {}),
             (fastloss.iou_score, {"per_image": True}),
             (fastloss.dice_score, {"per_image": True, "ignore_empty": False,
                                    "empty_score": 1.0}),
             (fastloss.iou_score, {"ignore_empty": False})]
    for fn, kw in cases:
        for nt in (1, 2):
            taken.clear()
            monkeypatch.setattr(_hard._k, "confusion_call", spy, raising=False)
            fast = fn(p, t, C, n_threads=nt, **kw)
            assert taken[0] is not None
            monkeypatch.setattr(_hard._k, "confusion_call", lambda *a: None, raising=False)
            full = fn(p, t, C, n_threads=nt, **kw)
            monkeypatch.undo()
            _same(fast, full)
    bad = t.copy()
    bad.reshape(-1)[-1] = C
    assert real(p, bad, C, False, _hard._k.CmResult.CM_DICE, True, 0.0, None) is None
    with pytest.raises(ValueError, match=f"target holds class index {C}"):
        fastloss.dice_score(p, bad, C)
    # what the call leaves to the full path: other widths per array, ignore_index
    assert real(p, t.astype(np.int16), C, False, _hard._k.CmResult.CM_MATRIX, True, 0.0,
                None) is None
    _same(fastloss.confusion_matrix(p, t.astype(np.int16), C),
          fastloss.confusion_matrix(p, t, C))
