"""Element-wise workloads (issue 3), float32, 16,777,216 elements (two 64 MiB arrays).

mse_loss, l1_loss, smooth_l1_loss, huber_loss (memory-bound: the bench
times a plain sum over as many bytes in the same rounds and prints the
fraction of that read speed), and
binary_cross_entropy_with_logits, soft_margin_loss (one exp and one log per
element).  Peers: torch's F.<name> with the same thread count; the NumPy
reference is the NumPy baseline.  "+grad" rows return the loss and the
gradient (torch: forward + autograd).
"""

import numpy as np

from fastloss.bench.workload import Workload, fastloss_impls, torch_impls

SEED = 0
FULL = 16_777_216
SMALL = 65_536


def _make(kind):
    def make(quick):
        n = SMALL if quick else FULL
        rng = np.random.default_rng(SEED)
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(2)
        if kind == "real":
            t = rng.standard_normal(n, dtype=np.float32)
        elif kind == "binary":
            t = (rng.random(n, dtype=np.float32) < 0.5).astype(np.float32)
        else:  # labels in {-1, +1}
            t = np.where(rng.random(n, dtype=np.float32) < 0.5, -1.0, 1.0).astype(np.float32)
        return {"x": x, "t": t}
    return make


def _impls(name, torch_name):
    return dict(fastloss_impls(name),
                **torch_impls(lambda torch: getattr(torch.nn.functional, torch_name)))


def _bytes(d):
    return d["x"].nbytes + d["t"].nbytes


def _bytes_grad(d):
    return 2 * d["x"].nbytes + d["t"].nbytes


def _two_exp(d):
    return 2 * d["x"].size  # one exp and one log1p per element


def _workload(name, torch_name, kind, label, exp=False):
    return Workload(
        name=name, family="elementwise",
        description=f"{label} on two float32 arrays of 16,777,216 elements",
        make=_make(kind), impls=_impls(name, torch_name),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad,
        n_exp=_two_exp if exp else None, rtol=1e-4, read_floor=not exp,
        compare_to={"fastloss+grad": "torch+grad", "torch+grad": None},
    )


WORKLOADS = [
    _workload("mse_loss", "mse_loss", "real", "mse_loss"),
    _workload("l1_loss", "l1_loss", "real", "l1_loss"),
    _workload("smooth_l1_loss", "smooth_l1_loss", "real", "smooth_l1_loss (beta=1)"),
    _workload("huber_loss", "huber_loss", "real", "huber_loss (delta=1)"),
    _workload("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits", "binary",
              "binary_cross_entropy_with_logits, 0/1 targets", exp=True),
    _workload("soft_margin_loss", "soft_margin_loss", "pm1",
              "soft_margin_loss, -1/+1 targets", exp=True),
]
