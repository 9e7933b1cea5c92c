"""Row-wise workloads (issue 4), float32.

multi_margin_loss on (16384, 1000) logits with int64 targets (peer: torch
F.multi_margin_loss); triplet_margin_loss on three (65536, 512) embedding
arrays (peer: torch F.triplet_margin_loss); arcface_loss on a (16384, 1000)
cosine matrix (peers: fastloss.cross_entropy on the same matrix, the
target of "within 1.3x", and torch's usual ArcFace logits + F.cross_entropy).
"+grad" rows return the loss and the gradient (torch: forward + autograd).
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


# ------------------------------------------------------------ multi-margin

def _make_classes(full, small, cosine):
    def make(quick):
        n, c = small if quick else full
        rng = np.random.default_rng(SEED)
        if cosine:
            x = rng.uniform(-1.0, 1.0, size=(n, c)).astype(np.float32)
        else:
            x = rng.standard_normal((n, c), dtype=np.float32)
        return {"x": x, "t": rng.integers(0, c, size=n)}
    return make


def _mm_impls():
    def fl(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.multi_margin_loss(x, t, n_threads=nt)

    def fl_grad(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.multi_margin_loss(x, t, return_grad=True, n_threads=nt)

    def reference(d):
        x, t = d["x"], d["t"]
        return lambda: ref.multi_margin_loss(x, t)

    def th(d):
        torch = _torch(d)
        x, t = torch.from_numpy(d["x"]), torch.from_numpy(d["t"])
        return lambda: torch.nn.functional.multi_margin_loss(x, t)

    def th_grad(d):
        torch = _torch(d)
        x = torch.from_numpy(d["x"]).requires_grad_(True)
        t = torch.from_numpy(d["t"])

        def call():
            loss = torch.nn.functional.multi_margin_loss(x, t)
            (g,) = torch.autograd.grad(loss, x)
            return loss.detach(), g
        return call

    return {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference,
            "torch": th, "torch+grad": th_grad}


# ---------------------------------------------------------------- triplet

def _make_triplet(full, small):
    def make(quick):
        n, dim = small if quick else full
        rng = np.random.default_rng(SEED)
        return {k: rng.standard_normal((n, dim), dtype=np.float32) for k in "apn"}
    return make


def _triplet_impls():
    def fl(d):
        a, p, n, nt = d["a"], d["p"], d["n"], d["n_threads"]
        return lambda: fastloss.triplet_margin_loss(a, p, n, n_threads=nt)

    def fl_grad(d):
        a, p, n, nt = d["a"], d["p"], d["n"], d["n_threads"]

        def call():
            loss, grads = fastloss.triplet_margin_loss(a, p, n, return_grad=True, n_threads=nt)
            return loss, grads[0]
        return call

    def reference(d):
        a, p, n = d["a"], d["p"], d["n"]
        return lambda: ref.triplet_margin_loss(a, p, n)

    def th(d):
        torch = _torch(d)
        a, p, n = (torch.from_numpy(d[k]) for k in "apn")
        return lambda: torch.nn.functional.triplet_margin_loss(a, p, n)

    def th_grad(d):
        torch = _torch(d)
        a, p, n = (torch.from_numpy(d[k]).requires_grad_(True) for k in "apn")

        def call():
            loss = torch.nn.functional.triplet_margin_loss(a, p, n)
            ga, _, _ = torch.autograd.grad(loss, (a, p, n))
            return loss.detach(), ga
        return call

    return {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference,
            "torch": th, "torch+grad": th_grad}


# ---------------------------------------------------------------- arcface

def _arcface_impls():
    def fl(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.arcface_loss(x, t, n_threads=nt)

    def fl_grad(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.arcface_loss(x, t, return_grad=True, n_threads=nt)

    def ce(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.cross_entropy(x, t, n_threads=nt)

    def ce_grad(d):
        x, t, nt = d["x"], d["t"], d["n_threads"]
        return lambda: fastloss.cross_entropy(x, t, return_grad=True, n_threads=nt)

    def reference(d):
        x, t = d["x"], d["t"]
        return lambda: ref.arcface_loss(x, t)

    def th(d):
        torch = _torch(d)
        F = torch.nn.functional
        x, t = torch.from_numpy(d["x"]), torch.from_numpy(d["t"])
        s, m = 64.0, 0.5
        cos_m, sin_m = float(np.cos(m)), float(np.sin(m))
        th_, mm = float(np.cos(np.pi - m)), float(np.sin(np.pi - m) * m)

        def call():
            sine = torch.sqrt((1.0 - x * x).clamp(0, 1))
            phi = x * cos_m - sine * sin_m
            phi = torch.where(x > th_, phi, x - mm)
            onehot = torch.zeros_like(x).scatter_(1, t[:, None], 1.0).bool()
            return F.cross_entropy(s * torch.where(onehot, phi, x), t)
        return call

    return {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference,
            "fastloss.cross_entropy": ce, "fastloss.cross_entropy+grad": ce_grad,
            "torch": th}


def _x_bytes(d):
    return d["x"].nbytes + d["t"].nbytes


def _x_bytes_grad(d):
    return 2 * d["x"].nbytes + d["t"].nbytes


def _triplet_bytes(d):
    return 3 * d["a"].nbytes


def _triplet_bytes_grad(d):
    return 6 * d["a"].nbytes


WORKLOADS = [
    Workload(
        name="multi_margin", family="rowwise",
        description="multi_margin_loss (16384, 1000) float32, int64 targets",
        make=_make_classes((16384, 1000), (512, 100), False), impls=_mm_impls(),
        bytes_moved=_x_bytes, bytes_moved_grad=_x_bytes_grad, rtol=1e-4,
        compare_to={"fastloss+grad": "torch+grad", "torch+grad": None},
    ),
    Workload(
        name="triplet", family="rowwise",
        description="triplet_margin_loss on three (65536, 512) float32 arrays",
        make=_make_triplet((65536, 512), (1024, 64)), impls=_triplet_impls(),
        bytes_moved=_triplet_bytes, bytes_moved_grad=_triplet_bytes_grad, rtol=1e-4,
        compare_to={"fastloss+grad": "torch+grad", "torch+grad": None},
    ),
    Workload(
        name="arcface", family="rowwise",
        description="arcface_loss (s=64, m=0.5) on a (16384, 1000) float32 cosine matrix",
        make=_make_classes((16384, 1000), (512, 100), True), impls=_arcface_impls(),
        bytes_moved=_x_bytes, bytes_moved_grad=_x_bytes_grad,
        n_exp=lambda d: d["x"].size, rtol=1e-4,
        compare_to={"fastloss+grad": None, "fastloss.cross_entropy": None,
                    "fastloss.cross_entropy+grad": None},
    ),
]
