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

import fastloss
import fastloss.reference as ref
from fastloss.bench.workload import PeerMissing, Workload

SEED = 0


def _torch(data):
    try:
        import torch
    except ImportError as e:
        raise PeerMissing(str(e)) from e
    torch.set_num_threads(data["n_threads"])
    return torch


def _scipy_special(data):
    try:
        import scipy.special
    except ImportError as e:
        raise PeerMissing(str(e)) from e
    return scipy.special


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
    def fl(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.cross_entropy(x, t, n_threads=nt)

    def fl_grad(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.cross_entropy(x, t, return_grad=True, n_threads=nt)

    def reference(d):
        x, t = d["x"], d["t"]
        return lambda: ref.cross_entropy(x, t)

    def th(d):
        torch = _torch(d)
        F = torch.nn.functional
        x, t = torch.from_numpy(d["x"]), torch.from_numpy(d["t"])
        if t.dtype == torch.int64:
            return lambda: F.cross_entropy(x, t)
        return lambda: F.cross_entropy(x, t.long())

    def th_grad(d):
        torch = _torch(d)
        F = torch.nn.functional
        x = torch.from_numpy(d["x"]).requires_grad_(True)
        t = torch.from_numpy(d["t"])
        long = t.dtype != torch.int64

        def call():
            loss = F.cross_entropy(x, t.long() if long else t)
            (g,) = torch.autograd.grad(loss, x)
            return loss.detach(), g
        return call

    def sk(d):
        # scikit-learn's multinomial loss (per-sample, natural log) on 2-D logits.
        try:
            from sklearn._loss.loss import HalfMultinomialLoss
        except ImportError as e:
            raise PeerMissing(str(e)) from e
        x, nt = d["x"], d["n_threads"]
        y = d["t"].astype(x.dtype)
        loss = HalfMultinomialLoss(n_classes=x.shape[1])
        out = np.empty(x.shape[0], dtype=x.dtype)
        return lambda: np.float64(loss.loss(y, x, loss_out=out, n_threads=nt).mean())

    def sk_grad(d):
        try:
            from sklearn._loss.loss import HalfMultinomialLoss
        except ImportError as e:
            raise PeerMissing(str(e)) from e
        x, nt = d["x"], d["n_threads"]
        y = d["t"].astype(x.dtype)
        loss = HalfMultinomialLoss(n_classes=x.shape[1])
        lo, go = np.empty(x.shape[0], x.dtype), np.empty_like(x)
        return lambda: np.float64(loss.loss_gradient(
            y, x, loss_out=lo, gradient_out=go, n_threads=nt)[0].mean())

    impls = {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference,
             "torch": th, "torch+grad": th_grad}
    if sklearn_peer:  # HalfMultinomialLoss takes (N, C) logits only
        impls.update({"sklearn": sk, "sklearn+grad": sk_grad})
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
    def fl(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.nll_loss(x, t, n_threads=nt)

    def fl_grad(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.nll_loss(x, t, return_grad=True, n_threads=nt)

    def reference(d):
        x, t = d["x"], d["t"]
        return lambda: ref.nll_loss(x, t)

    def th(d):
        torch = _torch(d)
        x, t = torch.from_numpy(d["x"]), torch.from_numpy(d["t"])
        return lambda: torch.nn.functional.nll_loss(x, t)

    return {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference, "torch": th}


def _nll_bytes(d):
    # The targets, and one 64-byte cache line of each row for the picked value.
    return d["t"].nbytes + 64 * d["t"].size


def _nll_bytes_grad(d):
    # The gradient is dense: every element is written (zero off the target).
    return d["t"].nbytes + d["x"].nbytes


# ---------------------------------------------------------------- LSE family

def _lse_impls():
    def fl(d):
        x, nt = d["x"], d["n_threads"]
        return lambda: fastloss.logsumexp(x, axis=-1, n_threads=nt)

    def reference(d):
        x = d["x"]
        return lambda: ref.logsumexp(x, axis=-1)

    def th(d):
        torch = _torch(d)
        x = torch.from_numpy(d["x"])
        return lambda: torch.logsumexp(x, dim=-1)

    def sp(d):
        special = _scipy_special(d)
        x = d["x"]
        return lambda: special.logsumexp(x, axis=-1)

    return {"fastloss": fl, "reference": reference, "torch": th, "scipy": sp}


def _softmax_impls(kind):
    def fl(d):
        x, nt = d["x"], d["n_threads"]
        f = getattr(fastloss, kind)
        return lambda: f(x, axis=-1, n_threads=nt)

    def reference(d):
        x = d["x"]
        f = getattr(ref, kind)
        return lambda: f(x, axis=-1)

    def th(d):
        torch = _torch(d)
        x = torch.from_numpy(d["x"])
        f = getattr(torch, kind)
        return lambda: f(x, dim=-1)

    def sp(d):
        special = _scipy_special(d)
        x = d["x"]
        f = getattr(special, kind)
        return lambda: f(x, axis=-1)

    return {"fastloss": fl, "reference": reference, "torch": th, "scipy": sp}


def _read_bytes(d):
    return d["x"].nbytes


def _read_write_bytes(d):
    return 2 * d["x"].nbytes


# ---------------------------------------------------------------- the list

WIDE, WIDE_Q = (16384, 1000), (1024, 1000)
ROWS, ROWS_Q = (4194304, 10), (65536, 10)
SEG, SEG_Q = (8, 21, 256, 256), (2, 21, 64, 64)

WORKLOADS = [
    _ce("ce_wide", "cross_entropy (16384, 1000) float32, int64 targets",
        WIDE, WIDE_Q, np.int64),
    _ce("ce_rows", "cross_entropy (4194304, 10) float32, int64 targets",
        ROWS, ROWS_Q, np.int64),
    _ce("ce_seg_u8", "cross_entropy (8, 21, 256, 256) float32, uint8 label map",
        SEG, SEG_Q, np.uint8),
    _ce("ce_seg_i64", "cross_entropy (8, 21, 256, 256) float32, int64 label map",
        SEG, SEG_Q, np.int64),
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
        name="log_softmax_wide", family="lse",
        description="log_softmax over the last axis of (16384, 1000) float32",
        make=_make_rows(WIDE, WIDE_Q), impls=_softmax_impls("log_softmax"),
        bytes_moved=_read_write_bytes, n_exp=_x_size, rtol=1e-5,
    ),
]
