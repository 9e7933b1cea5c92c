"""Distance workloads: the exact EDT of a 256^3 mask, HD95 / ASSD / NSD of 160^3 label maps."""

import tracemalloc

import numpy as np

import fastloss
from fastloss import reference
from fastloss.bench.workload import Workload, peer


def _edt_passes(shape, fields=1):
    """Bytes a separable EDT's passes move at the least: each field's one-byte
    labels read once, then its float64 values read and written once per axis."""
    return fields * int(np.prod(shape)) * (1 + 16 * len(shape))


def _balls(shape, balls):
    """A uint8 label map: each (label, centre, radius) ball painted in order."""
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    lab = np.zeros(shape, dtype=np.uint8)
    for label, centre, r in balls:
        d2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
        lab[d2 <= r * r] = label
    return lab


def _make_mask(quick):
    n = 64 if quick else 256
    rng = np.random.default_rng(3)
    balls = [(1, rng.uniform(0, n, 3), rng.uniform(n / 10, n / 4)) for _ in range(12)]
    m = _balls((n, n, n), balls).astype(bool)
    m ^= rng.random(m.shape) < 0.001  # scattered voxels: irregular, non-convex background
    return {"m": m}


def _make_maps(quick):
    n = 48 if quick else 160
    s = n / 160
    t = _balls((n, n, n), [(1, (80 * s, 80 * s, 70 * s), 40 * s),
                           (2, (80 * s, 90 * s, 110 * s), 25 * s),
                           (1, (30 * s, 40 * s, 130 * s), 9 * s)])
    p = _balls((n, n, n), [(1, (82 * s, 78 * s, 71 * s), 38 * s),
                           (2, (79 * s, 92 * s, 108 * s), 27 * s),
                           (1, (33 * s, 40 * s, 128 * s), 8 * s),
                           (2, (130 * s, 130 * s, 30 * s), 5 * s)])  # a false positive
    return {"p": p[None], "t": t[None], "C": 3}


def _make_labels(quick):
    n = 64 if quick else 256
    rng = np.random.default_rng(4)
    balls = [(int(rng.integers(1, 4)), rng.uniform(0, n, 3), rng.uniform(n / 10, n / 4))
             for _ in range(16)]
    return {"m": _balls((n, n, n), balls)}


def _make_loss(quick):
    rng = np.random.default_rng(5)
    n = 32 if quick else 96
    s = n / 96
    y = np.stack([_balls((n, n, n), [(1, (48 * s, 48 * s, 40 * s), 25 * s),
                                     (2, (40 * s, 55 * s, 70 * s), 15 * s),
                                     (3, (70 * s, 30 * s, 30 * s), 10 * s)]),
                  _balls((n, n, n), [(3, (50 * s, 50 * s, 50 * s), 30 * s),
                                     (1, (20 * s, 20 * s, 70 * s), 12 * s)])])
    # logits that mostly agree with the labels, so the thresholded
    # prediction has a boundary of its own
    x = rng.standard_normal((2, 4, n, n, n), dtype=np.float32)
    x += 3.0 * np.moveaxis(np.eye(4, dtype=np.float32)[y], -1, 1)
    return {"x": x, "y": y}


def _loss_fl(name, grad):
    def build(data):
        f = getattr(fastloss, name)
        x, y, nt = data["x"], data["y"], data["n_threads"]
        if grad:
            return lambda: f(x, y, return_grad=True, n_threads=nt)
        return lambda: f(x, y, n_threads=nt)
    return build


def _loss_ref(name):
    def build(data):
        f = getattr(reference, name)
        return lambda: f(data["x"], data["y"])
    return build


def _loss_monai(cls_name, grad):
    def build(data):
        torch = peer("torch", data)
        losses = peer("monai.losses")
        loss = getattr(losses, cls_name)(softmax=True, to_onehot_y=True)
        y = torch.from_numpy(data["y"].astype(np.int64))[:, None]
        if not grad:
            x = torch.from_numpy(data["x"])
            return lambda: float(loss(x, y))

        def call():
            x = torch.from_numpy(data["x"]).requires_grad_(True)
            v = loss(x, y)
            v.backward()
            return (v.detach().numpy(), x.grad.numpy())
        return call
    return build


def _make_cells(quick):
    """A (1, 512, 512) label image of touching and separate disc cells."""
    n = 128 if quick else 512
    rng = np.random.default_rng(6)
    balls = [(1, rng.uniform(0, n, 2), rng.uniform(n / 40, n / 16)) for _ in range(60)]
    lab = _balls((n, n), balls)
    return {"y": lab[None]}


def _peak_extra(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _edt_fl(data):
    m, nt = data["m"], data["n_threads"]

    def call():
        return fastloss.distance_transform(m, n_threads=nt)
    extra = _peak_extra(call) - m.size * 8
    print(f"  distance_transform: extra memory {extra / 2**20:.1f} MiB beyond the "
          f"{m.size * 8 / 2**20:.0f} MiB result")
    return call


def _edt_scipy(data):
    nd = peer("scipy.ndimage")
    return lambda: nd.distance_transform_edt(data["m"])


def _edt_pkg(data):
    edt = peer("edt")
    return lambda: edt.edt(data["m"], parallel=data["n_threads"])


def _metric_fl(name, **kw):
    def build(data):
        f = getattr(fastloss, name)
        p, t, C, nt = data["p"], data["t"], data["C"], data["n_threads"]
        return lambda: f(p, t, num_classes=C, n_threads=nt, **kw)
    return build


def _metric_ref(name, **kw):
    def build(data):
        f = getattr(reference, name)
        return lambda: f(data["p"], data["t"], num_classes=data["C"], **kw)
    return build


def _metric_monai(name, **kw):
    def build(data):
        torch = peer("torch", data)
        metrics = peer("monai.metrics")
        C = data["C"]
        eye = np.eye(C, dtype=np.uint8)
        p = torch.from_numpy(np.ascontiguousarray(np.moveaxis(eye[data["p"]], -1, 1)))
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(eye[data["t"]], -1, 1)))
        f = getattr(metrics, name)
        return lambda: f(p, t, **kw).double().numpy()
    return build


def _metric_workload(name, fn, monai_fn, desc, **kw):
    monai_kw = dict(kw)
    if fn == "surface_dice":
        monai_kw = {"class_thresholds": kw["class_thresholds"]}
    return Workload(
        name=name,
        family="distance",
        description=desc,
        make=_make_maps,
        impls={"fastloss": _metric_fl(fn, **kw), "reference": _metric_ref(fn, **kw),
               "monai": _metric_monai(monai_fn, **monai_kw)},
        bytes_moved=lambda d: d["p"].nbytes + d["t"].nbytes,
        rtol=1e-5,  # MONAI's distances are float32
    )


WORKLOADS = [
    Workload(
        name="edt_256",
        family="distance",
        description="distance_transform, (256, 256, 256) bool mask (balls + 0.1% noise), f64 out",
        make=_make_mask,
        impls={"fastloss": _edt_fl, "scipy": _edt_scipy, "edt": _edt_pkg},
        bytes_moved=lambda d: d["m"].nbytes + d["m"].size * 8,
        pass_bytes=lambda d: _edt_passes(d["m"].shape),
        rtol=1e-6,  # edt returns float32
        compare_to={"scipy": "fastloss", "edt": "fastloss"},
    ),
    Workload(
        name="edt_labels_256",
        family="distance",
        description="distance_transform, (256, 256, 256) uint8 label map (4 labels), f64 out",
        make=_make_labels,
        impls={"fastloss": _edt_fl, "edt": _edt_pkg,
               "reference": lambda d: (lambda: reference.distance_transform(d["m"]))},
        bytes_moved=lambda d: d["m"].nbytes + d["m"].size * 8,
        pass_bytes=lambda d: _edt_passes(d["m"].shape),
        rtol=1e-6,  # edt returns float32
        compare_to={"edt": "fastloss"},
    ),
    _metric_workload("hd95_160", "hausdorff_distance", "compute_hausdorff_distance",
                     "hausdorff_distance(percentile=95), two (1, 160, 160, 160) uint8 maps, "
                     "3 classes", percentile=95),
    _metric_workload("assd_160", "average_surface_distance", "compute_average_surface_distance",
                     "average_surface_distance(symmetric=True), two (1, 160, 160, 160) uint8 "
                     "maps, 3 classes", symmetric=True),
    _metric_workload("nsd_160", "surface_dice", "compute_surface_dice",
                     "surface_dice(class_thresholds=[1, 2]), two (1, 160, 160, 160) uint8 maps, "
                     "3 classes", class_thresholds=[1.0, 2.0]),
]

# fields per (image, class): the Hausdorff loss transforms the thresholded
# prediction and the target of each class but the background, the boundary
# loss the target of every class
for _name, _fn, _cls, _nf in [("hd_dt_loss", "hausdorff_dt_loss", "HausdorffDTLoss", (2, 1)),
                              ("boundary_loss", "boundary_loss", "BoundaryLoss", (1, 0))]:
    WORKLOADS.append(Workload(
        name=_name,
        family="distance",
        description=f"{_fn}, softmax logits (2, 4, 96, 96, 96) f32, uint8 labels",
        make=_make_loss,
        impls={"fastloss": _loss_fl(_fn, False), "fastloss+grad": _loss_fl(_fn, True),
               "reference": _loss_ref(_fn), "monai": _loss_monai(_cls, False),
               "monai+grad": _loss_monai(_cls, True)},
        bytes_moved=lambda d: d["x"].nbytes + d["y"].nbytes,
        bytes_moved_grad=lambda d: 2 * d["x"].nbytes + d["y"].nbytes,
        # the fields' passes, then the fused pass: logits in, gradient out
        pass_bytes=lambda d, nf=_nf: (
            _edt_passes(d["y"].shape[1:], nf[0] * d["x"].shape[0] * (d["x"].shape[1] - nf[1]))
            + 2 * d["x"].nbytes + d["y"].nbytes),
        rtol=1e-5,  # MONAI's distance maps are float32
        compare_to={"fastloss+grad": "monai+grad"},
    ))

WORKLOADS.append(Workload(
    name="unet_weight_map_512",
    family="distance",
    description="unet_weight_map, a (1, 512, 512) uint8 image of 60 disc cells",
    make=_make_cells,
    impls={"fastloss": lambda d: (lambda: fastloss.unet_weight_map(
               d["y"], n_threads=d["n_threads"])),
           "reference": lambda d: (lambda: reference.unet_weight_map(d["y"]))},
    bytes_moved=lambda d: d["y"].nbytes + d["y"].size * 8,
    rtol=1e-10,
))
