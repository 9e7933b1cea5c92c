"""Row-wise workloads (issue 4), float32.

multi_margin_loss on (16384, 1000) logits with int64 targets (peer: torch
F.multi_margin_loss); triplet_margin_loss on three (65536, 512) embedding
arrays (peer: torch F.triplet_margin_loss); arcface_loss on a (16384, 1000)
cosine matrix (peers: fastloss.cross_entropy on the same matrix, the
target of "within 1.3x", and torch's usual ArcFace logits + F.cross_entropy).
"+grad" rows return the loss and the gradient (torch: forward + autograd).
"""

import numpy as np

from fastloss.bench.workload import Workload, fastloss_impls, peer, torch_impls

SEED = 0


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
    return dict(fastloss_impls("multi_margin_loss"),
                **torch_impls(lambda torch: torch.nn.functional.multi_margin_loss))


# ---------------------------------------------------------------- triplet

def _make_triplet(full, small):
    def make(quick):
        n, dim = small if quick else full
        rng = np.random.default_rng(SEED)
        return {k: rng.standard_normal((n, dim), dtype=np.float32) for k in "apn"}
    return make


def _triplet_impls():
    return dict(fastloss_impls("triplet_margin_loss", keys=("a", "p", "n")),
                **torch_impls(lambda torch: torch.nn.functional.triplet_margin_loss,
                              keys=("a", "p", "n"), wrt=("a", "p", "n")))


# ---------------------------------------------------------------- arcface

def _arcface_impls():
    def th(d):
        torch = peer("torch", d)
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

    ce = fastloss_impls("cross_entropy")
    return dict(fastloss_impls("arcface_loss"), torch=th, **{
        "fastloss.cross_entropy": ce["fastloss"],
        "fastloss.cross_entropy+grad": ce["fastloss+grad"]})


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
        name="multi_margin", family="classification",
        description="multi_margin_loss (16384, 1000) float32, int64 targets",
        make=_make_classes((16384, 1000), (512, 100), False), impls=_mm_impls(),
        bytes_moved=_x_bytes, bytes_moved_grad=_x_bytes_grad, rtol=1e-4,
        compare_to={"fastloss+grad": "torch+grad", "torch+grad": None},
    ),
    Workload(
        name="triplet", family="embedding",
        description="triplet_margin_loss on three (65536, 512) float32 arrays",
        make=_make_triplet((65536, 512), (1024, 64)), impls=_triplet_impls(),
        bytes_moved=_triplet_bytes, bytes_moved_grad=_triplet_bytes_grad, rtol=1e-4,
        compare_to={"fastloss+grad": "torch+grad", "torch+grad": None},
    ),
    Workload(
        name="arcface", family="classification",
        description="arcface_loss (s=64, m=0.5) on a (16384, 1000) float32 cosine matrix",
        make=_make_classes((16384, 1000), (512, 100), True), impls=_arcface_impls(),
        bytes_moved=_x_bytes, bytes_moved_grad=_x_bytes_grad,
        n_exp=lambda d: d["x"].size, rtol=1e-4,
        compare_to={"fastloss+grad": None, "fastloss.cross_entropy": None,
                    "fastloss.cross_entropy+grad": None},
    ),
]
