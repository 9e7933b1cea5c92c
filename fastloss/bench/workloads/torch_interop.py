"""Bench rows for fastloss.torch: forward+backward of a loss alone and of a CPU training step.

Each implementation builds its tensors once and returns a callable that runs
forward and backward (gradient written into ``.grad``) and returns the loss.
"fastloss" is ``fastloss.torch``; "torch" / "monai" are the peers.  Both
sides run with the bench's thread count (``torch.set_num_threads``).
"""

import numpy as np

from fastloss.bench.workload import PeerMissing, Workload, peer


def _fastloss_torch(data):
    torch = peer("torch", data)
    import fastloss
    import fastloss.torch as ft

    fastloss.set_num_threads(data["n_threads"])
    return torch, ft


def _make_ce(quick):
    rng = np.random.default_rng(0)
    n, c = (1024, 100) if quick else (16384, 1000)
    return {"x": rng.standard_normal((n, c), dtype=np.float32),
            "t": rng.integers(0, c, n).astype(np.int64)}


def _ce_loop(torch, fn, data, bf16=False, autocast=False):
    x = torch.from_numpy(data["x"])
    if bf16:
        x = x.to(torch.bfloat16)
    x.requires_grad_()
    t = torch.from_numpy(data["t"])

    def run():
        x.grad = None
        if autocast:
            # what a CPU training step under autocast runs: the loss op
            # casts its bfloat16 input to float32 (autocast's fp32 list)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = fn(x, t)
        else:
            loss = fn(x, t)
        loss.backward()
        return float(loss.detach())

    return run


def _ce_fastloss(data):
    torch, ft = _fastloss_torch(data)
    return _ce_loop(torch, ft.functional.cross_entropy, data)


def _ce_torch(data):
    torch = peer("torch", data)
    return _ce_loop(torch, torch.nn.functional.cross_entropy, data)


def _ce_fastloss_bf16(data):
    torch, ft = _fastloss_torch(data)
    return _ce_loop(torch, ft.functional.cross_entropy, data, bf16=True)


def _ce_torch_autocast(data):
    torch = peer("torch", data)
    return _ce_loop(torch, torch.nn.functional.cross_entropy, data, bf16=True, autocast=True)


def _ce_reference(data):
    from fastloss import reference

    return lambda: reference.cross_entropy(data["x"], data["t"])


def _make_step(quick):
    rng = np.random.default_rng(1)
    n, d, c = (512, 64, 100) if quick else (8192, 256, 1000)
    return {"x": rng.standard_normal((n, d), dtype=np.float32),
            "t": rng.integers(0, c, n).astype(np.int64), "c": c}


def _step(torch, loss_fn, data):
    torch.manual_seed(0)
    x = torch.from_numpy(data["x"])
    t = torch.from_numpy(data["t"])
    model = torch.nn.Linear(x.shape[1], data["c"])
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: every call sees the same weights

    def run():
        opt.zero_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return run


def _step_fastloss(data):
    torch, ft = _fastloss_torch(data)
    return _step(torch, ft.CrossEntropyLoss(), data)


def _step_torch(data):
    torch = peer("torch", data)
    return _step(torch, torch.nn.CrossEntropyLoss(), data)


def _make_dice(quick):
    rng = np.random.default_rng(2)
    shape = (2, 4, 32, 32, 32) if quick else (2, 4, 160, 160, 160)
    return {"x": rng.standard_normal(shape, dtype=np.float32),
            "t": rng.integers(0, shape[1], (shape[0], 1) + shape[2:]).astype(np.int64)}


def _dice_loop(torch, loss_fn, data):
    x = torch.from_numpy(data["x"]).requires_grad_()
    t = torch.from_numpy(data["t"])

    def run():
        x.grad = None
        loss = loss_fn(x, t)
        loss.backward()
        return float(loss.detach())

    return run


def _dice_fastloss(data):
    torch, ft = _fastloss_torch(data)
    if not hasattr(ft, "DiceCELoss"):
        raise PeerMissing("fastloss.torch.DiceCELoss (dice_ce_loss not built)")
    return _dice_loop(torch, ft.DiceCELoss(softmax=True, to_onehot_y=True), data)


def _dice_monai(data):
    torch = peer("torch", data)
    DiceCELoss = peer("monai.losses").DiceCELoss
    return _dice_loop(torch, DiceCELoss(softmax=True, to_onehot_y=True), data)


def _make_monai96(quick):
    rng = np.random.default_rng(3)
    shape = (2, 4, 24, 24, 24) if quick else (2, 4, 96, 96, 96)
    return {"x": rng.standard_normal(shape, dtype=np.float32),
            "t": rng.integers(0, shape[1], (shape[0], 1) + shape[2:]).astype(np.int64)}


# MONAI class name -> constructor arguments of the (2, 4, 96, 96, 96) rows
_MONAI96 = {
    "DiceCELoss": dict(softmax=True, to_onehot_y=True),
    "DiceFocalLoss": dict(softmax=True, to_onehot_y=True),
    "FocalLoss": dict(to_onehot_y=True),
}


def _monai_class_impls(cls):
    def ours(data):
        torch, ft = _fastloss_torch(data)
        if not hasattr(ft, cls):
            raise PeerMissing(f"fastloss.torch.{cls} (segmentation losses not built)")
        return _dice_loop(torch, getattr(ft, cls)(**_MONAI96[cls]), data)

    def monai(data):
        torch = peer("torch", data)
        return _dice_loop(torch, getattr(peer("monai.losses"), cls)(**_MONAI96[cls]), data)

    return {"fastloss": ours, "monai": monai}


def _monai96_workload(name, cls, args, n_exp_per):
    return Workload(
        name=name,
        family="torch_interop",
        description=f"{cls}({args}) forward+backward, (2, 4, 96, 96, 96) float32, "
                    "int64 (N, 1, ...) labels",
        make=_make_monai96,
        impls=_monai_class_impls(cls),
        bytes_moved=lambda d: 2 * d["x"].nbytes + d["t"].nbytes,
        n_exp=lambda d: n_exp_per * d["x"].size,
        compare_to={"fastloss": "monai", "monai": None},
    )


WORKLOADS = [
    Workload(
        name="torch_ce_fwd_bwd",
        family="torch_interop",
        description="fastloss.torch cross_entropy forward+backward, (16384, 1000) float32, "
                    "int64 targets",
        make=_make_ce,
        impls={"fastloss": _ce_fastloss, "torch": _ce_torch, "reference": _ce_reference},
        bytes_moved=lambda d: 2 * d["x"].nbytes + d["t"].nbytes,
        n_exp=lambda d: d["x"].size,
    ),
    Workload(
        name="torch_ce_bf16_fwd_bwd",
        family="torch_interop",
        description="fastloss.torch cross_entropy forward+backward, (16384, 1000) bfloat16 "
                    "logits (gradient in bfloat16), against torch under "
                    "autocast('cpu', bfloat16); int64 targets",
        make=_make_ce,
        impls={"fastloss": _ce_fastloss_bf16, "torch autocast": _ce_torch_autocast},
        # read the bfloat16 logits, write their bfloat16 gradient: 4 bytes a logit
        bytes_moved=lambda d: d["x"].nbytes + d["t"].nbytes,
        n_exp=lambda d: d["x"].size,
        rtol=1e-5,  # both compute the loss in float32 from the same bfloat16 values
        compare_to={"fastloss": "torch autocast", "torch autocast": None},
    ),
    Workload(
        name="torch_ce_train_step",
        family="torch_interop",
        description="CPU training step Linear(256->1000) + CrossEntropyLoss + SGD, "
                    "batch 8192 float32",
        make=_make_step,
        impls={"fastloss": _step_fastloss, "torch": _step_torch},
        bytes_moved=lambda d: 2 * d["x"].shape[0] * d["c"] * 4,
        compare_to={"fastloss": "torch", "torch": None},
    ),
    Workload(
        name="torch_dice_ce_fwd_bwd",
        family="torch_interop",
        description="DiceCELoss(softmax, to_onehot_y) forward+backward, "
                    "(2, 4, 160, 160, 160) float32",
        make=_make_dice,
        impls={"fastloss": _dice_fastloss, "monai": _dice_monai},
        bytes_moved=lambda d: 2 * d["x"].nbytes + d["t"].nbytes,
        n_exp=lambda d: d["x"].size,
        compare_to={"fastloss": "monai", "monai": None},
    ),
    _monai96_workload("torch_monai_dice_ce_96", "DiceCELoss", "softmax, to_onehot_y", 1),
    _monai96_workload("torch_monai_dice_focal_96", "DiceFocalLoss", "softmax, to_onehot_y", 2),
    _monai96_workload("torch_monai_focal_96", "FocalLoss", "to_onehot_y", 2),
]
