"""Gradient-boosting objectives (issue 24), float32, one boosting round's call.

gbdt_softmax: softmax cross-entropy on XGBoost's layout, C-ordered (4194304, 10)
float32 margins and float32 class ids, gradient and Hessian (XGBoost's 2p(1-p))
written into float32 buffers reused from call to call.  gbdt_binary_focal:
binary focal loss (gamma 2, alpha 0.25, Fisher Hessian) on 16,777,216 float32
margins.  The peer is the same objective in NumPy, written the way users
write it (one array operation per step, float32 throughout).  The memory
floor reads as many bytes as the objective reads and writes (margins, labels,
g and h), timed in the same rounds.
"""

import numpy as np

from fastloss.bench.workload import Workload

SEED = 0


def _make_softmax(quick):
    n, K = (65_536, 10) if quick else (4_194_304, 10)
    rng = np.random.default_rng(SEED)
    F = rng.standard_normal((n, K), dtype=np.float32) * np.float32(2)
    y = rng.integers(0, K, n).astype(np.float32)
    return {"x": F, "t": y}


def _make_focal(quick):
    n = 65_536 if quick else 16_777_216
    rng = np.random.default_rng(SEED)
    f = rng.standard_normal(n, dtype=np.float32) * np.float32(2)
    y = (rng.random(n, dtype=np.float32) < 0.1).astype(np.float32)
    return {"x": f, "t": y}


def _fastloss(loss, **params):
    def build(d):
        from fastloss import gbdt

        obj = gbdt.Objective(loss, n_threads=d["n_threads"], **params)
        x, t = d["x"], d["t"]
        out = (np.empty_like(x), np.empty_like(x))

        def call():
            g, h, _ = obj.grad_hess(t, x, out=out)
            return g
        return call
    return build


def _numpy_softmax(d):
    F, y = d["x"], d["t"]
    rows = np.arange(F.shape[0])
    labels = y.astype(np.int64)

    def call():
        # the objective as XGBoost's custom_softmax demo writes it, vectorized
        e = np.exp(F - F.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        g = p.copy()
        g[rows, labels] -= 1.0
        _h = np.maximum(2.0 * p * (1.0 - p), 1e-16)   # timed with g, as the objective returns both
        return g
    return call


def numpy_focal(f, y, gamma=2.0, alpha=0.25):
    """The binary focal objective (Fisher Hessian) as users write it in NumPy: (g, h)."""
    p = 1.0 / (1.0 + np.exp(-f))
    q = 1.0 - p
    lp = np.log(np.maximum(p, 1e-30))
    lq = np.log(np.maximum(q, 1e-30))
    g = (alpha * y * (-(q ** gamma)) * (-gamma * p * lp + q)
         + (1 - alpha) * (1 - y) * (p ** gamma) * (-gamma * q * lq + p))
    h = (alpha * y * q ** gamma + (1 - alpha) * (1 - y) * p ** gamma) * p * q
    return g, h


def _numpy_focal(d, gamma=2.0, alpha=0.25):
    f, y = d["x"], d["t"]
    return lambda: numpy_focal(f, y, gamma, alpha)[0]


def _bytes(d):
    # read margins and labels, write g and h (the margins' size each)
    return 3 * d["x"].nbytes + d["t"].nbytes


WORKLOADS = [
    Workload(
        name="gbdt_softmax", family="gbdt",
        description="gbdt.grad_hess softmax (XGBoost layout and Hessian), (4194304, 10) "
                    "float32, reused float32 g/h",
        make=_make_softmax,
        impls={"fastloss": _fastloss("softmax", hessian="xgboost"), "numpy": _numpy_softmax},
        bytes_moved=_bytes, n_exp=lambda d: d["x"].size, rtol=1e-4, read_floor=True,
        compare_to={"numpy": "fastloss", "fastloss": None},
    ),
    Workload(
        name="gbdt_binary_focal", family="gbdt",
        description="gbdt.grad_hess binary_focal (gamma 2, alpha 0.25, Fisher Hessian), "
                    "16,777,216 float32, reused float32 g/h",
        make=_make_focal,
        impls={"fastloss": _fastloss("binary_focal", gamma=2.0, alpha=0.25, hessian="fisher"),
               "numpy": _numpy_focal},
        bytes_moved=_bytes, n_exp=lambda d: 4 * d["x"].size, rtol=1e-4, read_floor=True,
        compare_to={"numpy": "fastloss", "fastloss": None},
    ),
]
