"""Core workloads: softmax cross-entropy, NLL and the log-sum-exp family.

Sizes of issue 2, float32: CE wide (16384, 1000) with int64 targets, CE
many rows (4194304, 10), CE segmentation (8, 21, 256, 256) with uint8 and
with int64 label maps, logsumexp / softmax / log_softmax over the last axis
of (16384, 1000), NLL on (16384, 1000).  Peers: torch (F.cross_entropy,
F.nll_loss, torch.logsumexp, torch.softmax, torch.log_softmax) and
scipy.special (logsumexp, softmax, log_softmax).  torch needs int64 class
indices, so its uint8 segmentation row includes the ``.long()`` conversion
a torch user has to pay.  "+grad" rows return the loss and the gradient
with respect to the logits (torch: forward + autograd backward).
"""

import numpy as np

from fastloss.bench.workload import Workload, fastloss_impls, peer, torch_impls

SEED = 0


# ---------------------------------------------------------------- inputs

def _logits(shape, rng):
    return (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32, copy=False)


def _make_ce(full, small, label_dtype):
    def make(quick):
        shape = small if quick else full
        rng = np.random.default_rng(SEED)
        x = _logits(shape, rng)
        tshape = (shape[0],) + shape[2:]
        t = rng.integers(0, shape[1], size=tshape).astype(label_dtype)
        return {"x": x, "t": t}
    return make


def _make_rows(full, small):
    def make(quick):
        rng = np.random.default_rng(SEED)
        return {"x": _logits(small if quick else full, rng)}
    return make


# ---------------------------------------------------------------- CE

def _ce_impls(sklearn_peer):
    def sk(d, grad=False):
        # scikit-learn's multinomial loss (per-sample, natural log) on 2-D logits.
        loss = peer("sklearn._loss.loss").HalfMultinomialLoss(n_classes=d["x"].shape[1])
        x, nt = d["x"], d["n_threads"]
        y = d["t"].astype(x.dtype)
        lo, go = np.empty(x.shape[0], x.dtype), np.empty_like(x)
        if grad:
            return lambda: np.float64(loss.loss_gradient(
                y, x, loss_out=lo, gradient_out=go, n_threads=nt)[0].mean())
        return lambda: np.float64(loss.loss(y, x, loss_out=lo, n_threads=nt).mean())

    impls = fastloss_impls("cross_entropy")
    impls.update(torch_impls(lambda torch: lambda x, t: torch.nn.functional.cross_entropy(
        x, t.long())))
    if sklearn_peer:  # HalfMultinomialLoss takes (N, C) logits only
        impls.update({"sklearn": sk, "sklearn+grad": lambda d: sk(d, grad=True)})
    return impls


def _ce_bytes(d):
    return d["x"].nbytes + d["t"].nbytes


def _ce_bytes_grad(d):
    return 2 * d["x"].nbytes + d["t"].nbytes


def _x_size(d):
    return d["x"].size


def _ce(name, description, full, small, label_dtype):
    return Workload(
        name=name, family="classification", description=description,
        make=_make_ce(full, small, label_dtype), impls=_ce_impls(len(full) == 2),
        bytes_moved=_ce_bytes, bytes_moved_grad=_ce_bytes_grad, n_exp=_x_size, rtol=1e-4,
    )


# ---------------------------------------------------------------- NLL

def _nll_impls():
    return dict(fastloss_impls("nll_loss"),
                **torch_impls(lambda torch: torch.nn.functional.nll_loss))


def _nll_bytes(d):
    # The targets, and one 64-byte cache line of each row for the picked value.
    return d["t"].nbytes + 64 * d["t"].size


def _nll_bytes_grad(d):
    # The gradient is dense: every element is written (zero off the target).
    return d["t"].nbytes + d["x"].nbytes


# ---------------------------------------------------------------- LSE family

def _lse_impls():
    return _softmax_impls("logsumexp")


def _softmax_impls(kind):
    """logsumexp / softmax / log_softmax over the last axis, vs torch and SciPy."""
    def th(d):
        f, x = getattr(peer("torch", d), kind), peer("torch").from_numpy(d["x"])
        return lambda: f(x, dim=-1)

    def sp(d):
        f, x = getattr(peer("scipy.special"), kind), d["x"]
        return lambda: f(x, axis=-1)

    return dict(fastloss_impls(kind, keys=("x",), grad=False, axis=-1), torch=th, scipy=sp)


def _read_bytes(d):
    return d["x"].nbytes


def _read_write_bytes(d):
    return 2 * d["x"].nbytes


# ---------------------------------------------------------------- the list

WIDE, WIDE_Q = (16384, 1000), (1024, 1000)
ROWS, ROWS_Q = (4194304, 10), (65536, 10)
SEG, SEG_Q = (8, 21, 256, 256), (2, 21, 64, 64)
SEG3D, SEG3D_Q = (2, 4, 160, 160, 160), (1, 4, 32, 32, 32)

WORKLOADS = [
    _ce("ce_wide", "cross_entropy (16384, 1000) float32, int64 targets",
        WIDE, WIDE_Q, np.int64),
    _ce("ce_rows", "cross_entropy (4194304, 10) float32, int64 targets",
        ROWS, ROWS_Q, np.int64),
    _ce("ce_seg_u8", "cross_entropy (8, 21, 256, 256) float32, uint8 label map",
        SEG, SEG_Q, np.uint8),
    _ce("ce_seg_i64", "cross_entropy (8, 21, 256, 256) float32, int64 label map",
        SEG, SEG_Q, np.int64),
    _ce("ce_3d", "cross_entropy (2, 4, 160, 160, 160) float32, uint8 label map",
        SEG3D, SEG3D_Q, np.uint8),
    Workload(
        name="nll_wide", family="classification",
        description="nll_loss (16384, 1000) float32 log-probabilities, int64 targets",
        make=_make_ce(WIDE, WIDE_Q, np.int64), impls=_nll_impls(),
        bytes_moved=_nll_bytes, bytes_moved_grad=_nll_bytes_grad, rtol=1e-4,
    ),
    Workload(
        name="logsumexp_wide", family="lse",
        description="logsumexp over the last axis of (16384, 1000) float32",
        make=_make_rows(WIDE, WIDE_Q), impls=_lse_impls(),
        bytes_moved=_read_bytes, n_exp=_x_size, rtol=1e-5,
    ),
    Workload(
        name="softmax_wide", family="lse",
        description="softmax over the last axis of (16384, 1000) float32",
        make=_make_rows(WIDE, WIDE_Q), impls=_softmax_impls("softmax"),
        bytes_moved=_read_write_bytes, n_exp=_x_size, rtol=1e-5,
    ),
    Workload(
        name="softmax_rows", family="lse",
        description="softmax over the last axis of (4194304, 10) float32",
        make=_make_rows(ROWS, ROWS_Q), impls=_softmax_impls("softmax"),
        bytes_moved=_read_write_bytes, n_exp=_x_size, rtol=1e-5,
    ),
    Workload(
        name="log_softmax_wide", family="lse",
        description="log_softmax over the last axis of (16384, 1000) float32",
        make=_make_rows(WIDE, WIDE_Q), impls=_softmax_impls("log_softmax"),
        bytes_moved=_read_write_bytes, n_exp=_x_size, rtol=1e-5,
    ),
]
