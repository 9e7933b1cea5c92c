"""Half-precision workloads: bfloat16 inputs read in their own width.

The element-wise rows of ``elementwise.py`` (16,777,216 elements),
``ce_wide`` and ``multi_margin`` ((16384, 1000) scores, int64 labels),
``ce_seg`` ((8, 21, 256, 256) logits, int64 label map) and
``triplet`` (three (65536, 512) embeddings) and ``dice_3d`` ((2, 4, 160,
160, 160) logits, uint8 labels) with bfloat16 data (``ml_dtypes.bfloat16``);
rows of the losses that read half rows too: ``nll_wide`` (log-probabilities)
and ``focal_wide`` ((16384, 1000), int64 labels), ``cosface`` ((16384,
1000) cosines) and ``contrastive`` (two (65536, 512) embeddings, 0/1
labels); torch has none of the last three.
Implementations: "fastloss" on the bfloat16 arrays (loss in float32,
gradient in bfloat16), "fastloss f32" on float32
copies of the same values (the row the half-width read is measured
against: half the bytes), the float64 reference on those float32 copies,
and torch under ``torch.autocast("cpu", dtype=torch.bfloat16)`` on bfloat16
tensors viewing the same memory: autocast casts the inputs of its loss ops
to float32 (a converted copy of each) before the float32 kernel runs
(torch has no Dice loss: the Dice row has no torch column).
"""

import numpy as np

from fastloss.bench.workload import PeerMissing, Workload, peer

SEED = 0
FULL = 16_777_216
SMALL = 65_536
CE_FULL = (16384, 1000)
CE_SMALL = (256, 1000)
SEG_FULL = (2, 4, 160, 160, 160)
SEG_SMALL = (1, 4, 32, 32, 32)
MAP_FULL = (8, 21, 256, 256)
MAP_SMALL = (2, 21, 64, 64)


def _bf16():
    try:
        import ml_dtypes
    except ImportError as e:  # the test extra installs it
        raise PeerMissing(str(e)) from e
    return np.dtype(ml_dtypes.bfloat16)


def _make_elem(kind):
    def make(quick):
        bf = _bf16()
        n = SMALL if quick else FULL
        rng = np.random.default_rng(SEED)
        x = (rng.standard_normal(n, dtype=np.float32) * np.float32(2)).astype(bf)
        if kind == "real":
            t = rng.standard_normal(n, dtype=np.float32).astype(bf)
        else:
            t = (rng.random(n, dtype=np.float32) < 0.5).astype(bf)
        return {"x": x, "t": t, "x32": x.astype(np.float32), "t32": t.astype(np.float32)}
    return make


def _make_ce(quick):
    bf = _bf16()
    shape = CE_SMALL if quick else CE_FULL
    rng = np.random.default_rng(SEED)
    x = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(bf)
    t = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
    return {"x": x, "t": t, "x32": x.astype(np.float32), "t32": t}


def _make_seg(quick):
    bf = _bf16()
    shape = SEG_SMALL if quick else SEG_FULL
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal(shape, dtype=np.float32).astype(bf)
    t = rng.integers(0, shape[1], size=(shape[0],) + shape[2:], dtype=np.uint8)
    return {"x": x, "t": t, "x32": x.astype(np.float32), "t32": t}


def _make_map(quick):
    bf = _bf16()
    shape = MAP_SMALL if quick else MAP_FULL
    rng = np.random.default_rng(SEED)
    x = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(bf)
    # int64 labels: the only kind torch's cross_entropy takes
    t = rng.integers(0, shape[1], size=(shape[0],) + shape[2:], dtype=np.int64)
    return {"x": x, "t": t, "x32": x.astype(np.float32), "t32": t}


def _torch_bf16(torch, a):
    """A torch tensor viewing ``a``'s memory: bfloat16 for bfloat16 data."""
    if a.dtype.kind == "V":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _impls(name, torch_name, keys=("x", "t"), wrt=("x",)):
    """Builders of the bfloat16 call, the float32 call on the same values (keys
    with a "32" suffix), the reference and torch under autocast (none when
    ``torch_name`` is None)."""
    import fastloss
    import fastloss.reference as ref

    fn, rf = getattr(fastloss, name), getattr(ref, name)
    keys32 = tuple(k + "32" for k in keys)

    def call(ks, **kw):
        def build(d):
            args, nt = [d[k] for k in ks], d["n_threads"]
            return lambda: fn(*args, n_threads=nt, **kw)
        return build

    def reference(d):
        args = [d[k] for k in keys32]
        return lambda: rf(*args)

    def th(d):
        torch = peer("torch", d)
        f = getattr(torch.nn.functional, torch_name)
        args = [_torch_bf16(torch, d[k]) for k in keys]

        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return f(*args)
        return run

    def th_grad(d):
        torch = peer("torch", d)
        f = getattr(torch.nn.functional, torch_name)
        args = [_torch_bf16(torch, d[k]).requires_grad_(k in wrt) for k in keys]
        leaves = [a for k, a in zip(keys, args) if k in wrt]

        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = f(*args)
            return (loss.detach(),) + torch.autograd.grad(loss, leaves)
        return run

    fl, fl_grad = call(keys), call(keys, return_grad=True)
    fl32, fl32_grad = call(keys32), call(keys32, return_grad=True)

    impls = {"fastloss": fl, "fastloss+grad": fl_grad, "fastloss f32": fl32,
             "fastloss f32+grad": fl32_grad, "reference": reference}
    if torch_name is not None:
        impls.update({"torch autocast": th, "torch autocast+grad": th_grad})
    return impls


def _make_triplet(quick):
    bf = _bf16()
    shape = (2048, 512) if quick else (65536, 512)
    rng = np.random.default_rng(SEED)
    d = {}
    for k in ("a", "p", "n"):
        d[k] = rng.standard_normal(shape, dtype=np.float32).astype(bf)
        d[k + "32"] = d[k].astype(np.float32)
    return d


def _make_logp(quick):
    d = _make_ce(quick)
    x32 = d["x32"] - np.log(np.exp(d["x32"]).sum(axis=1, keepdims=True))
    d["x"] = x32.astype(_bf16())
    d["x32"] = d["x"].astype(np.float32)
    return d


def _make_cos(quick):
    bf = _bf16()
    shape = CE_SMALL if quick else CE_FULL
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1.0, 1.0, shape).astype(np.float32).astype(bf)
    t = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
    return {"x": x, "t": t, "x32": x.astype(np.float32), "t32": t}


def _make_pairs(quick):
    d = _make_triplet(quick)
    lab = np.random.default_rng(SEED + 1).integers(0, 2, d["a"].shape[0])
    return {"a": d["a"], "p": d["p"], "a32": d["a32"], "p32": d["p32"], "lab": lab,
            "lab32": lab}


def _nll_bytes(d):
    # one value a row (a cache line each) and the labels
    return 64 * d["t"].size + d["t"].nbytes


def _nll_bytes_grad(d):
    return d["x"].nbytes + _nll_bytes(d)


def _pair_bytes(d):
    return 2 * d["a"].nbytes + d["lab"].nbytes


def _pair_bytes_grad(d):
    return 4 * d["a"].nbytes + d["lab"].nbytes


def _bytes(d):
    return d["x"].nbytes + d["t"].nbytes


def _triplet_bytes(d):
    return 3 * d["a"].nbytes


def _triplet_bytes_grad(d):
    return 6 * d["a"].nbytes


def _bytes_grad(d):
    return 2 * d["x"].nbytes + d["t"].nbytes


def _dice_bytes_grad(d):
    """A Dice gradient reads its input twice (segmentation.py's ``_bytes_logits_grad``)."""
    return 3 * d["x"].nbytes + 2 * d["t"].nbytes


def _n_exp_elem(d):
    return 2 * d["x"].size


def _n_exp_ce(d):
    return d["x"].size


def _workload(name, fn, torch_name, kind, label, exp=False):
    return Workload(
        name=name, family="half",
        description=f"{label} on two bfloat16 arrays of 16,777,216 elements",
        make=_make_elem(kind), impls=_impls(fn, torch_name),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad,
        n_exp=_n_exp_elem if exp else None, rtol=1e-4, read_floor=not exp,
    )


WORKLOADS = [
    _workload("mse_loss_bf16", "mse_loss", "mse_loss", "real", "mse_loss"),
    _workload("l1_loss_bf16", "l1_loss", "l1_loss", "real", "l1_loss"),
    _workload("smooth_l1_loss_bf16", "smooth_l1_loss", "smooth_l1_loss", "real",
              "smooth_l1_loss (beta=1)"),
    _workload("huber_loss_bf16", "huber_loss", "huber_loss", "real", "huber_loss (delta=1)"),
    _workload("bce_logits_bf16", "binary_cross_entropy_with_logits",
              "binary_cross_entropy_with_logits", "binary",
              "binary_cross_entropy_with_logits, 0/1 targets", exp=True),
    Workload(
        name="ce_wide_bf16", family="half",
        description="cross_entropy, (16384, 1000) bfloat16 logits, int64 targets",
        make=_make_ce, impls=_impls("cross_entropy", "cross_entropy"),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad, n_exp=_n_exp_ce, rtol=1e-4,
    ),
    Workload(
        name="ce_seg_bf16", family="half",
        description="cross_entropy, (8, 21, 256, 256) bfloat16 logits, int64 label map",
        make=_make_map, impls=_impls("cross_entropy", "cross_entropy"),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad, n_exp=_n_exp_ce, rtol=1e-4,
    ),
    Workload(
        name="multi_margin_bf16", family="half",
        description="multi_margin_loss, (16384, 1000) bfloat16 scores, int64 targets",
        make=_make_ce, impls=_impls("multi_margin_loss", "multi_margin_loss"),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad, rtol=1e-4, read_floor=True,
    ),
    Workload(
        name="triplet_bf16", family="half",
        description="triplet_margin_loss, three (65536, 512) bfloat16 embeddings",
        make=_make_triplet,
        impls=_impls("triplet_margin_loss", "triplet_margin_loss", keys=("a", "p", "n"),
                     wrt=("a", "p", "n")),
        bytes_moved=_triplet_bytes, bytes_moved_grad=_triplet_bytes_grad, rtol=1e-4,
        read_floor=True,
    ),
    Workload(
        name="nll_wide_bf16", family="half",
        description="nll_loss, (16384, 1000) bfloat16 log-probabilities, int64 targets",
        make=_make_logp, impls=_impls("nll_loss", "nll_loss"),
        # no plain read in the rounds: its 1.2 MB (a line a row and the
        # labels) would be re-read from the cache, while the rows' lines lie
        # across 33 MB; the run's bandwidth, as for nll_wide
        bytes_moved=_nll_bytes, bytes_moved_grad=_nll_bytes_grad, rtol=1e-4,
    ),
    Workload(
        name="focal_wide_bf16", family="half",
        description="softmax_focal_loss (gamma=2), (16384, 1000) bfloat16 logits, int64 targets",
        make=_make_ce, impls=_impls("softmax_focal_loss", None),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad, n_exp=_n_exp_ce, rtol=1e-4,
    ),
    Workload(
        name="cosface_bf16", family="half",
        description="cosface_loss (s=30, m=0.35), (16384, 1000) bfloat16 cosines, int64 targets",
        make=_make_cos, impls=_impls("cosface_loss", None),
        bytes_moved=_bytes, bytes_moved_grad=_bytes_grad, n_exp=_n_exp_ce, rtol=1e-4,
    ),
    Workload(
        name="contrastive_bf16", family="half",
        description="contrastive_loss, two (65536, 512) bfloat16 embeddings, 0/1 labels",
        make=_make_pairs,
        impls=_impls("contrastive_loss", None, keys=("a", "p", "lab"), wrt=("a", "p")),
        bytes_moved=_pair_bytes, bytes_moved_grad=_pair_bytes_grad, rtol=1e-4,
        read_floor=True,
    ),
    Workload(
        name="dice_3d_bf16", family="half",
        description="dice_loss softmax, (2, 4, 160, 160, 160) bfloat16 logits, uint8 labels",
        make=_make_seg, impls=_impls("dice_loss", None),
        bytes_moved=_bytes, bytes_moved_grad=_dice_bytes_grad, n_exp=_n_exp_ce, rtol=1e-4,
    ),
]
