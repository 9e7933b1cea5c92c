"""fastloss.torch with bfloat16 / float16 tensors (CPU autocast's logits).

The kernels read the tensors' storage in its own width (bfloat16 through
the ml_dtypes NumPy dtype); the loss comes back in float32 and the gradient
in the tensor's dtype, equal to the NumPy API on the same arrays.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")

import fastloss  # noqa: E402
import fastloss.torch as ft  # noqa: E402
import fastloss.torch.functional as F  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [(torch.bfloat16, BF16), (torch.float16, np.dtype(np.float16))]
IDS = ["bfloat16", "float16"]


def _np(t, nd):
    return t.detach().view(torch.int16).numpy().view(nd)


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


@pytest.mark.parametrize("td,nd", DTYPES, ids=IDS)
def test_kernel_path_and_fallback(td, nd):
    x = torch.randn(6, 40).to(td)
    t = torch.randn(6, 40).to(td)
    # the kernels: a float32 loss; torch's own code (the fallback) keeps the dtype
    assert F.mse_loss(x, t).dtype == torch.float32
    # one floating dtype per call, else torch's code
    assert F.mse_loss(x, t.float()).dtype == torch.promote_types(td, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert F.cross_entropy(x, torch.zeros(6, dtype=torch.long)).dtype == torch.float32


@pytest.mark.parametrize("td,nd", DTYPES, ids=IDS)
@pytest.mark.parametrize("case", ["cross_entropy", "mse_loss", "bce_logits", "triplet"])
def test_values_and_gradients_match_numpy(td, nd, case):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 100, generator=g) * 3).to(td).requires_grad_(True)
    if case == "cross_entropy":
        t = torch.randint(0, 100, (64,), generator=g)
        loss = F.cross_entropy(x, t, label_smoothing=0.1)
        ref, ref_g = fastloss.cross_entropy(_np(x, nd), t.numpy(), label_smoothing=0.1,
                                            return_grad=True)
    elif case == "mse_loss":
        t = torch.randn(64, 100, generator=g).to(td)
        loss = F.mse_loss(x, t)
        ref, ref_g = fastloss.mse_loss(_np(x, nd), _np(t, nd), return_grad=True)
    elif case == "bce_logits":
        t = (torch.rand(64, 100, generator=g) < 0.5).to(td)
        loss = F.binary_cross_entropy_with_logits(x, t)
        ref, ref_g = fastloss.binary_cross_entropy_with_logits(_np(x, nd), _np(t, nd),
                                                               return_grad=True)
    else:
        p = torch.randn(64, 100, generator=g).to(td)
        n = torch.randn(64, 100, generator=g).to(td)
        loss = F.triplet_margin_loss(x, p, n)
        ref, ref_g = fastloss.triplet_margin_loss(_np(x, nd), _np(p, nd), _np(n, nd),
                                                  return_grad=True)
        ref_g = ref_g[0]
    assert loss.dtype == torch.float32
    assert loss.item() == float(ref)
    loss.backward()
    assert x.grad.dtype == td
    np.testing.assert_array_equal(_bits(_np(x.grad, nd)), _bits(ref_g))


@pytest.mark.parametrize("td,nd", DTYPES, ids=IDS)
def test_close_to_torch_in_float32(td, nd):
    """Against torch's own loss on the widened tensors: float32 agreement."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 10, generator=g).to(td).requires_grad_(True)
    t = torch.randint(0, 10, (32,), generator=g)
    loss = ft.CrossEntropyLoss()(x, t)
    loss.backward()
    xr = x.detach().float().requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(xr, t)
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-7)
    # within one unit in the last place of the 16-bit gradient
    ulp = 2.0 ** -7 if td == torch.bfloat16 else 2.0 ** -10
    torch.testing.assert_close(x.grad.float(), xr.grad.to(td).float(), rtol=ulp, atol=1e-7)


def _train(loss_fn, steps=40):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(256, 16, generator=g)
    y = (x[:, :5].argmax(1) + (x[:, 5] > 1).long()) % 5
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
            assert logits.dtype == torch.bfloat16
            loss = loss_fn(logits, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def test_training_under_autocast_matches_torch():
    """A small model trained under CPU autocast with fastloss's cross-entropy
    follows the same loss trajectory as with torch's (bfloat16 tolerance)."""
    ours = _train(ft.CrossEntropyLoss())
    theirs = _train(torch.nn.CrossEntropyLoss())
    assert ours[-1] < 0.8 * ours[0]          # it trains
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
