"""Segmentation workloads: Dice / Dice+CE on large 3D logits, hard metrics on label volumes."""

import tracemalloc

import numpy as np

import fastloss
from fastloss import reference
from fastloss.bench.workload import Workload, peer


def _monai_losses(data):
    peer("torch", data)
    return peer("monai.losses")


def _make_logits(quick):
    rng = np.random.default_rng(0)
    shape = (2, 4, 32, 32, 32) if quick else (2, 4, 160, 160, 160)
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.integers(0, 4, size=(shape[0],) + shape[2:], dtype=np.uint8)
    return {"x": x, "y": y}


def _make_labels(quick):
    rng = np.random.default_rng(1)
    shape = (64, 64, 64) if quick else (256, 256, 256)
    p = rng.integers(0, 4, size=shape, dtype=np.uint8)
    t = rng.integers(0, 4, size=shape, dtype=np.uint8)
    return {"p": p, "t": t, "C": 4}


def _peak_extra(fn):
    """Peak bytes NumPy allocates during one call (tracemalloc), printed once.

    The gradient cache is emptied first, so that a gradient is allocated in
    the call (and counted) rather than reused from an earlier one.
    """
    fastloss.empty_gradient_cache()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _fl(name, grad=False):
    def build(data):
        f = getattr(fastloss, name)
        x, y, nt = data["x"], data["y"], data["n_threads"]
        call = (lambda: f(x, y, n_threads=nt, return_grad=True)[0]) if grad else \
            (lambda: f(x, y, n_threads=nt))
        extra = _peak_extra(call) - (x.nbytes if grad else 0)
        print(f"  {name}{'+grad' if grad else ''}: extra memory {extra / 2**20:.3f} MiB "
              f"beyond inputs{' and gradient' if grad else ''}")
        return call
    return build


def _ref(name):
    def build(data):
        f = getattr(reference, name)
        return lambda: f(data["x"], data["y"])
    return build


def _monai(cls_name):
    def build(data):
        ml = _monai_losses(data)
        import torch
        xt = torch.from_numpy(data["x"])
        yt = torch.from_numpy(data["y"].astype(np.int64))[:, None]
        loss = getattr(ml, cls_name)(softmax=True, to_onehot_y=True)
        return lambda: float(loss(xt, yt))
    return build


def _bytes_logits(d):
    return d["x"].nbytes + d["y"].nbytes


def _bytes_logits_grad(d):
    """Bytes of a Dice gradient: the logits and labels read twice, the gradient written once.

    Each position's gradient depends on the per-class sums over the whole
    image, so the first pass can only gather those sums; an input that
    does not fit in the cache is then read again for the gradient.  Keeping
    each position's softmax for that second pass instead writes and reads
    as many bytes again as the logits (more than reading them a second
    time), so no schedule moves fewer bytes than this.
    """
    return 3 * d["x"].nbytes + 2 * d["y"].nbytes


def _cm_fl(name):
    def build(data):
        f = getattr(fastloss, name)
        p, t, C, nt = data["p"], data["t"], data["C"], data["n_threads"]
        return lambda: f(p, t, C, n_threads=nt)
    return build


def _cm_numpy(data):
    C = data["C"]
    return lambda: np.bincount(data["t"].ravel().astype(np.int64) * C + data["p"].ravel(),
                               minlength=C * C).reshape(C, C)


def _cm_torch(data):
    torch = peer("torch", data)
    C = data["C"]
    t = torch.from_numpy(data["t"])
    p = torch.from_numpy(data["p"])
    return lambda: torch.bincount(t.ravel().long() * C + p.ravel().long(),
                                  minlength=C * C).reshape(C, C).numpy()


WORKLOADS = [
    Workload(
        name="dice_3d",
        family="segmentation",
        description="dice_loss softmax, logits (2, 4, 160, 160, 160) f32, uint8 labels",
        make=_make_logits,
        impls={"fastloss": _fl("dice_loss"), "fastloss+grad": _fl("dice_loss", True),
               "reference": _ref("dice_loss"), "monai": _monai("DiceLoss")},
        bytes_moved=_bytes_logits, bytes_moved_grad=_bytes_logits_grad,
        n_exp=lambda d: d["x"].size,
    ),
    Workload(
        name="dice_ce_3d",
        family="segmentation",
        description="dice_ce_loss, logits (2, 4, 160, 160, 160) f32, uint8 labels",
        make=_make_logits,
        impls={"fastloss": _fl("dice_ce_loss"), "fastloss+grad": _fl("dice_ce_loss", True),
               "reference": _ref("dice_ce_loss"), "monai": _monai("DiceCELoss")},
        bytes_moved=_bytes_logits, bytes_moved_grad=_bytes_logits_grad,
        n_exp=lambda d: d["x"].size,
    ),
    Workload(
        name="confusion_256",
        family="segmentation",
        description="confusion_matrix, two (256, 256, 256) uint8 volumes, 4 classes",
        make=_make_labels,
        impls={"fastloss": _cm_fl("confusion_matrix"),
               "reference": lambda d: (lambda: reference.confusion_matrix(d["p"], d["t"], d["C"])),
               "numpy": _cm_numpy, "torch": _cm_torch},
        bytes_moved=lambda d: d["p"].nbytes + d["t"].nbytes,
        rtol=0.0,
    ),
    Workload(
        name="dice_score_256",
        family="segmentation",
        description="dice_score, two (256, 256, 256) uint8 volumes, 4 classes",
        make=_make_labels,
        impls={"fastloss": _cm_fl("dice_score"),
               "reference": lambda d: (lambda: reference.dice_score(d["p"], d["t"], d["C"]))},
        bytes_moved=lambda d: d["p"].nbytes + d["t"].nbytes,
    ),
]
