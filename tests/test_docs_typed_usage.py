"""Typed use of the public API: checked by ``mypy --strict`` in CI, run by pytest.

CI runs ``mypy --strict --follow-imports=silent tests/test_docs_typed_usage.py``:
a wrong stub or annotation (a missing overload, a parameter typed too
narrowly) makes this file fail the type check; pytest runs the same calls,
so the types asserted here are also the values' real types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

import fastloss
from fastloss.metrics import ConfusionMatrix, DiceAccumulator, LossAccumulator
from fastloss.testing import check_grad

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:
    def assert_type(value, _type):
        return value

Loss = np.floating[Any] | NDArray[np.floating[Any]]
Grad = NDArray[np.floating[Any]]


def _is_loss(value: object) -> bool:
    return isinstance(value, (np.floating, np.ndarray))


def test_return_grad_overloads() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 8)

    loss = assert_type(fastloss.cross_entropy(logits, labels), Loss)
    assert _is_loss(loss)

    loss, grad = fastloss.cross_entropy(logits, labels, label_smoothing=0.1, return_grad=True)
    assert_type(grad, Grad)
    assert grad.shape == logits.shape and grad.dtype == np.float32

    flag: bool = bool(rng.integers(0, 2))
    either = fastloss.mse_loss(logits, np.zeros_like(logits), return_grad=flag)
    assert isinstance(either, tuple) == flag

    per_elem = fastloss.binary_cross_entropy_with_logits(
        logits, (logits > 0).astype(np.float32), reduction="none")
    assert np.shape(per_elem) == logits.shape


def test_tuple_gradients_and_penalties() -> None:
    w1, w2 = np.ones((3, 2)), np.arange(4.0)
    value, grads = fastloss.l2_penalty(w1, w2, return_grad=True)
    assert_type(grads, tuple[Grad, ...])
    assert len(grads) == 2 and float(value) == 6.0 + 14.0

    anchor = np.zeros((4, 3))
    _, (ga, gp, gn) = fastloss.triplet_margin_loss(anchor, anchor + 1, anchor - 2,
                                                   return_grad=True)
    assert ga.shape == gp.shape == gn.shape == (4, 3)


def test_segmentation_and_metrics() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4, 4))
    y = rng.integers(0, 3, (2, 4, 4)).astype(np.uint8)
    dice = fastloss.dice_loss(x, y, activation="softmax", reduction="mean")
    assert _is_loss(dice)

    cm: NDArray[np.int64] = fastloss.confusion_matrix(x.argmax(1), y, 3)
    assert cm.sum() == y.size

    acc = ConfusionMatrix(3)
    acc.update(x.argmax(1), y)
    merged = acc.merge(ConfusionMatrix(3))
    assert np.array_equal(merged.result(), cm)
    scores: NDArray[np.float64] = merged.dice()
    assert scores.shape == (3,)

    soft = DiceAccumulator(ce=True)
    soft.update(x, y)
    assert np.isclose(soft.result("dice_ce_loss"), fastloss.dice_ce_loss(x, y, batch=True))

    ce = LossAccumulator("cross_entropy", label_smoothing=0.1)
    ce.update(x, y)
    total: float = ce.total
    assert total > 0.0


def test_settings_and_check_grad() -> None:
    n: int = fastloss.get_num_threads()
    fastloss.set_num_threads(1)
    try:
        assert fastloss.get_num_threads() == 1
    finally:
        fastloss.set_num_threads(None)
    assert n >= 1

    limit, kept = fastloss.get_gradient_cache()
    assert kept <= limit

    err: float = check_grad(fastloss.huber_loss, np.array([0.3, -2.0]), np.zeros(2), delta=1.0)
    assert err < 1e-6

    probs = fastloss.softmax(np.array([[1.0, 2.0, 3.0]]), axis=1)
    assert_type(probs, Grad)
    assert np.isclose(probs.sum(), 1.0)


def test_torch_and_dask() -> None:
    import dask.array as da
    import torch

    import fastloss.dask as fd
    import fastloss.torch as ft

    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0])
    loss = assert_type(ft.functional.cross_entropy(x, y, label_smoothing=0.1), torch.Tensor)
    # torch's Tensor.backward and dask's compute carry no annotations
    loss.backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    module: torch.nn.CrossEntropyLoss = ft.CrossEntropyLoss(label_smoothing=0.1)
    assert torch.allclose(module(x, y), loss)
    assert ft.is_accelerated(x, y)

    lazy = assert_type(fd.mse_loss(da.ones(6, chunks=2), np.zeros(6)), da.Array)
    assert float(lazy.compute()) == 1.0  # type: ignore[no-untyped-call]
