"""Mergeable accumulators (fastloss.metrics) against the in-memory functions."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss import metrics
from fastloss.metrics import ConfusionMatrix, DiceAccumulator, LossAccumulator

RTOL = 1e-12
SETTINGS = settings(max_examples=20, deadline=None)


def _close(a, b, dtype=np.float64):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if dtype == np.float64:
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    else:  # both rounded to float32 from float64 values that agree to ~1e-15
        np.testing.assert_allclose(a, b, rtol=2.5e-7, atol=0)


def _cuts(draw, n):
    """Sorted cut points splitting range(n) into 1..4 (possibly empty) pieces."""
    k = draw(st.integers(0, 3))
    return sorted(draw(st.lists(st.integers(0, n), min_size=k, max_size=k)))


def _pieces(n, cuts):
    edges = [0] + list(cuts) + [n]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


@st.composite
def seg_problem(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    N, C, H, W = draw(st.integers(1, 4)), draw(st.integers(2, 4)), draw(st.integers(1, 6)), \
        draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(N, C, H, W))
    y = rng.integers(0, C, size=(N, H, W)).astype(np.uint8)
    return x, y, _cuts(draw, N), _cuts(draw, H), draw(st.permutations(range(3)))


def _split_updates(make, x, y, ncuts, hcuts, **kw):
    """One accumulator per (batch piece, row piece), merged in a shuffled tree."""
    accs = []
    for bn in _pieces(x.shape[0], ncuts):
        for bh in _pieces(x.shape[2], hcuts):
            a = make()
            if x[bn, :, bh].size:
                a.update(x[bn, :, bh], y[bn, bh], **kw)
            accs.append(a)
    return accs


def _merge_all(accs, order):
    accs = [accs[i % len(accs)] for i in order if i < len(accs)] + \
        [a for i, a in enumerate(accs) if i not in order]
    total = accs[0]
    for a in accs[1:]:
        total = total.merge(pickle.loads(pickle.dumps(a)))
    return total


# ------------------------------------------------------------------ Dice

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@SETTINGS
@given(prob=seg_problem())
def test_dice_accumulator_random_splits(dtype, prob):
    x, y, nc, hc, order = prob
    x = x.astype(dtype)
    acc = _merge_all(_split_updates(lambda: DiceAccumulator(ce=True), x, y, nc, hc), order)
    for loss, opts in [("dice_loss", {}), ("jaccard_loss", {}),
                       ("dice_loss", {"squared_pred": True}),
                       ("tversky_loss", {"alpha": 0.3, "beta": 0.7}),
                       ("focal_tversky_loss", {"gamma": 0.5}),
                       ("generalized_dice_loss", {"w_type": "simple"}),
                       ("dice_loss", {"include_background": False}),
                       ("dice_ce_loss", {"lambda_ce": 0.5})]:
        got = acc.result(loss, **opts)
        want = getattr(fastloss, loss)(x, y, batch=True, **opts)
        assert got.dtype == want.dtype
        _close(got, want, dtype)
    _close(acc.per_class("dice_loss"), fastloss.dice_loss(x, y, batch=True, reduction="none"),
           dtype)


def test_dice_accumulator_ignore_sigmoid_soft_and_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 3, 5, 4))
    y = rng.integers(0, 4, size=(3, 5, 4))
    y[y == 3] = 255
    sw = rng.uniform(size=(3, 5, 4))
    w = np.array([0.5, 1.0, 2.0])
    a, b = DiceAccumulator(ignore_index=255, ce=True, weight=w), \
        DiceAccumulator(ignore_index=255, ce=True, weight=w)
    a.update(x[:, :, :2], y[:, :2], sample_weight=sw[:, :2])
    b.update(x[:, :, 2:], y[:, 2:], sample_weight=sw[:, 2:])
    a.merge(b)
    _close(a.result("dice_ce_loss", weight=w),
           fastloss.dice_ce_loss(x, y, batch=True, ignore_index=255, weight=w, sample_weight=sw))
    _close(a.result("dice_loss"), fastloss.dice_loss(x, y, batch=True, ignore_index=255))
    # sigmoid activation with soft targets
    t = rng.uniform(size=x.shape)
    s1, s2 = DiceAccumulator(activation="sigmoid"), DiceAccumulator(activation="sigmoid")
    s1.update(x[:1], t[:1])
    s2.update(x[1:], t[1:])
    _close(s1.merge(s2).result("jaccard_loss"),
           fastloss.jaccard_loss(x, t, batch=True, activation="sigmoid"))


def test_dice_accumulator_pickle_round_trip_and_state_size():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2, 4, 6, 6)), rng.integers(0, 4, size=(2, 6, 6))
    acc = DiceAccumulator(ce=True)
    acc.update(x, y)
    back = pickle.loads(pickle.dumps(acc))
    assert np.array_equal(back.sums(), acc.sums())
    assert back.result("dice_ce_loss") == acc.result("dice_ce_loss")
    assert len(pickle.dumps(acc)) < 2000  # O(C) numbers, independent of the data size


def test_dice_accumulator_errors():
    with pytest.raises(ValueError, match="activation must be"):
        DiceAccumulator(activation="relu")
    with pytest.raises(ValueError, match="ce=True needs activation='softmax'"):
        DiceAccumulator(activation="sigmoid", ce=True)
    acc = DiceAccumulator()
    with pytest.raises(ValueError, match="no data: call update"):
        acc.result()
    rng = np.random.default_rng(3)
    acc.update(rng.normal(size=(1, 3, 2, 2)), np.zeros((1, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="must have 3 classes"):
        acc.update(rng.normal(size=(1, 2, 2, 2)), np.zeros((1, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="needs DiceAccumulator\\(ce=True\\)"):
        acc.result("dice_ce_loss")
    with pytest.raises(ValueError, match="loss must be one of"):
        acc.result("mse_loss")
    with pytest.raises(ValueError, match="different ignore_index"):
        acc.merge(DiceAccumulator(ignore_index=0))
    with pytest.raises(TypeError, match="can only merge a DiceAccumulator"):
        acc.merge(ConfusionMatrix(3))
    with pytest.raises(ValueError, match="target holds class index 7"):
        acc.update(rng.normal(size=(1, 3, 2, 2)), np.full((1, 2, 2), 7, dtype=np.uint8))
    with pytest.raises(TypeError, match=r"dice_loss got unexpected options \['bogus'\]"):
        acc.result("dice_loss", bogus=1)
    with pytest.raises(TypeError, match=r"tversky_loss got unexpected options \['w_type'\]"):
        acc.result("tversky_loss", w_type="square")


def test_dice_accumulator_defaults_are_the_losses_defaults():
    # every soft loss from sums with no options equals the in-memory loss with its
    # own defaults (sensitivity_specificity_loss: smooth_nr=0, the others 1e-5)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 3, 5, 4)), rng.integers(0, 3, (2, 5, 4))
    acc = DiceAccumulator(ce=True)
    acc.update(x, y)
    for loss in ("dice_loss", "jaccard_loss", "dice_ce_loss", "tversky_loss",
                 "focal_tversky_loss", "generalized_dice_loss"):
        np.testing.assert_allclose(acc.result(loss), getattr(fastloss, loss)(x, y, batch=True),
                                   rtol=1e-12, err_msg=loss)
    sums, _ = metrics.soft_stats(x, y, mode="sensspec")
    np.testing.assert_allclose(
        metrics.soft_value("sensitivity_specificity_loss", sums.sum(axis=0), None, {},
                           np.float64),
        fastloss.sensitivity_specificity_loss(x, y, batch=True), rtol=1e-12)


# ------------------------------------------------------- confusion matrix

@st.composite
def label_problem(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n, C = draw(st.integers(0, 200)), draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, C, size=n).astype(np.int16)
    target = rng.integers(-1, C, size=n).astype(np.int64)
    return pred, target, C, _cuts(draw, n), draw(st.permutations(range(5)))


@SETTINGS
@given(prob=label_problem())
def test_confusion_matrix_any_split_and_merge_order_bit_identical(prob):
    pred, target, C, cuts, order = prob
    want = fastloss.confusion_matrix(pred, target, C, ignore_index=-1)
    accs = []
    for sl in _pieces(pred.size, cuts):
        a = ConfusionMatrix(C, ignore_index=-1)
        a.update(pred[sl], target[sl])
        accs.append(a)
    for perm in (order, list(reversed(order))):
        got = _merge_all([pickle.loads(pickle.dumps(a)) for a in accs], perm)
        assert got.result().dtype == np.int64
        assert np.array_equal(got.result(), want)
        np.testing.assert_array_equal(
            got.dice(), fastloss.dice_score(pred, target, C, ignore_index=-1))
        np.testing.assert_array_equal(
            got.iou(0.0), fastloss.iou_score(pred, target, C, ignore_index=-1, empty_score=0.0))


def test_confusion_matrix_hand_values_and_errors():
    a, b = ConfusionMatrix(3), ConfusionMatrix(3)
    a.update(np.array([0, 1]), np.array([0, 1]))
    b.update(np.array([1, 2]), np.array([2, 2]))
    assert a.merge(b).result().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="different num_classes"):
        a.merge(ConfusionMatrix(4))
    with pytest.raises(ValueError, match="num_classes must be in"):
        ConfusionMatrix(0)
    with pytest.raises(ValueError, match="pred holds class index 5"):
        a.update(np.array([5]), np.array([0]))


# ---------------------------------------------------------------- losses

@st.composite
def ce_problem(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    N, C, S = draw(st.integers(1, 12)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, C, S))
    y = rng.integers(-1, C, size=(N, S))
    return x, y, rng.uniform(0.1, 2, C), rng.uniform(size=(N, S)), _cuts(draw, N), \
        draw(st.permutations(range(5)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@SETTINGS
@given(prob=ce_problem())
def test_loss_accumulator_cross_entropy_random_splits(dtype, prob):
    x, y, w, sw, cuts, order = prob
    x = x.astype(dtype)
    opts = dict(weight=w, ignore_index=-1, label_smoothing=0.1)
    accs = []
    for sl in _pieces(x.shape[0], cuts):
        a = LossAccumulator("cross_entropy", **opts)
        a.update(x[sl], y[sl], sample_weight=sw[sl])
        accs.append(a)
    got = _merge_all(accs, order)
    want = fastloss.cross_entropy(x, y, sample_weight=sw, **opts)
    assert got.result().dtype == want.dtype
    _close(got.result(), want, dtype)
    nll = LossAccumulator(fastloss.nll_loss, ignore_index=-1)
    for sl in _pieces(x.shape[0], cuts):
        nll.update(x[sl], y[sl])
    _close(nll.result(), fastloss.nll_loss(x, y, ignore_index=-1), dtype)


@pytest.mark.parametrize("name,opts", [
    ("mse_loss", {}), ("huber_loss", {"delta": 0.5}), ("binary_cross_entropy_with_logits",
                                                         {"pos_weight": np.array([2.0, 0.5, 1.0])}),
    ("kl_div", {}), ("multilabel_soft_margin_loss", {}), ("js_div", {}),
])
def test_loss_accumulator_elementwise(name, opts):
    rng = np.random.default_rng(4)
    x, t = rng.uniform(0.05, 0.95, size=(10, 3)), rng.uniform(0.05, 0.95, size=(10, 3))
    sw = rng.uniform(size=(10, 3) if name not in ("multilabel_soft_margin_loss", "js_div")
                     else (10,))
    acc = LossAccumulator(name, **opts)
    for sl in (slice(0, 3), slice(3, 3), slice(3, 10)):
        acc.update(x[sl], t[sl], sample_weight=sw[sl])
    _close(acc.result(), getattr(fastloss, name)(x, t, sample_weight=sw, **opts))
    bm = LossAccumulator("kl_div", reduction="batchmean")
    bm.update(x[:4], t[:4])
    bm.update(x[4:], t[4:])
    _close(bm.result(), fastloss.kl_div(x, t, reduction="batchmean"))


def test_loss_accumulator_empty_pickle_and_errors():
    acc = LossAccumulator("cross_entropy")
    assert np.isnan(acc.result())
    acc.update(np.array([[1.0, 2.0]]), np.array([1]))
    back = pickle.loads(pickle.dumps(acc))
    assert back.result() == acc.result() == fastloss.cross_entropy(np.array([[1.0, 2.0]]),
                                                                   np.array([1]))
    assert back.total == acc.total and back.weight_sum == 1.0
    with pytest.raises(ValueError, match="loss must be 'cross_entropy', 'nll_loss' or one of"):
        LossAccumulator("dice_loss")
    with pytest.raises(ValueError, match="reduction must be one of"):
        LossAccumulator("mse_loss", reduction="sum")
    with pytest.raises(ValueError, match="different loss options"):
        acc.merge(LossAccumulator("cross_entropy", label_smoothing=0.2))
    with pytest.raises(ValueError, match="different loss"):
        acc.merge(LossAccumulator("nll_loss"))
    with pytest.raises(ValueError, match="target holds class index 3"):
        acc.update(np.zeros((1, 2)), np.array([3]))


# ------------------------------------------------------------ per-image scores (MONAI)

def _score_data(seed, n=5):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 4, size=(n, 6, 5)).astype(np.uint8)
    target = rng.integers(0, 4, size=(n, 6, 5)).astype(np.uint8)
    target[0][target[0] == 3] = 1        # class 3 predicted, absent from the target: NaN
    target[2][target[2] == 2] = 0
    pred[2][pred[2] == 2] = 0            # class 2 absent from both
    target[3][(target[3] == 1) | (target[3] == 2) | (target[3] == 3)] = 0  # background only
    return pred, target


@pytest.mark.parametrize("metric", ["dice", "iou"])
@pytest.mark.parametrize("ib", [True, False], ids=["bg", "nobg"])
@pytest.mark.parametrize("ie", [True, False], ids=["ignore_empty", "keep_empty"])
def test_score_accumulator_matches_monai(metric, ib, ie):
    torch = pytest.importorskip("torch")
    mm = pytest.importorskip("monai.metrics")
    from fastloss.metrics import ScoreAccumulator

    pred, target = _score_data(3)
    oh = lambda a: torch.tensor(np.moveaxis(np.eye(4)[a], -1, 1))  # noqa: E731
    for red in ("mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none"):
        cls = mm.DiceMetric if metric == "dice" else mm.MeanIoU
        m = cls(include_background=ib, reduction=red, get_not_nans=True, ignore_empty=ie)
        acc = ScoreAccumulator(4, metric, include_background=ib, ignore_empty=ie,
                               empty_score=1.0)
        for sl in (slice(0, 2), slice(2, 5)):
            m(oh(pred[sl]), oh(target[sl]))
            acc.update(pred[sl], target[sl])
        want, want_n = m.aggregate()
        got, got_n = acc.result(red)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, err_msg=red)
        np.testing.assert_array_equal(np.asarray(got_n, dtype=np.float64), want_n.numpy())


def test_score_accumulator_split_merge_pickle():
    from fastloss.metrics import ScoreAccumulator

    pred, target = _score_data(4, n=7)
    whole = ScoreAccumulator(4, "iou")
    whole.update(pred, target)
    parts = []
    for sl in (slice(0, 3), slice(3, 4), slice(4, 7)):
        a = ScoreAccumulator(4, "iou")
        a.update(pred[sl], target[sl])
        parts.append(pickle.loads(pickle.dumps(a)))
    fwd = ScoreAccumulator(4, "iou")
    for a in parts:
        fwd.merge(a)
    rev = ScoreAccumulator(4, "iou")
    for a in reversed(parts):
        rev.merge(a)
    np.testing.assert_array_equal(fwd.scores(), fastloss.iou_score(pred, target, 4,
                                                                   per_image=True))
    for red in ("mean", "sum", "mean_batch", "sum_batch"):
        for acc in (fwd, rev):
            got, n = acc.result(red)
            want, wn = whole.result(red)
            assert np.array_equal(got, want) and np.array_equal(n, wn), red
    # rows follow the merge order for the per-image reductions
    np.testing.assert_array_equal(rev.result("mean_channel")[0][:3],
                                  whole.result("mean_channel")[0][4:7])
    empty = ScoreAccumulator(4)
    assert empty.result("mean") == (0.0, 0) and empty.scores().shape == (0, 4)
    with pytest.raises(ValueError, match="reduction must be one of"):
        whole.result("avg")
    with pytest.raises(ValueError, match="metric must be"):
        ScoreAccumulator(3, "f1")
    with pytest.raises(ValueError, match="different ignore_empty"):
        ScoreAccumulator(4).merge(ScoreAccumulator(4, ignore_empty=False))
    with pytest.raises(ValueError, match="different empty_score"):
        ScoreAccumulator(4, empty_score=1.0).merge(ScoreAccumulator(4))
