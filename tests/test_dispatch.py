"""Runtime CPU dispatch: every built target computes the same losses.

Each kernel module is compiled once per CPU target (setup.py) and
fastloss/_dispatch.py picks one at import.  These tests run the public
functions on every target that was built (and that this CPU can execute) and
check that the results agree with each other and with fastloss.reference to
within a few units in the last place, measured against the largest
magnitude of the result (``_ulps``).  Targets are switched in-process by
``fastloss._dispatch.use_target``, which points the wrappers' kernel modules
at another target's build; a
subprocess per target with ``FASTLOSS_CPU_TARGET`` checks that this gives
bit-for-bit what the real dispatch gives, and a focused subset of the test
suite runs with ``FASTLOSS_CPU_TARGET=baseline``.
"""

import importlib
import os

import numpy as np
import pytest

import fastloss
import fastloss.reference as ref
from fastloss import _dispatch

from conftest import run_python

HERE = os.path.dirname(os.path.abspath(__file__))


TARGETS = _dispatch.runnable()

# Agreement bounds, in ulps of the result dtype scaled by the result's largest
# magnitude.  Targets differ only by rounding (FMA contraction, vector width
# changing the order of lane sums, the 1-2 ulp exp/log of src/fastmath.h).
BETWEEN_TARGETS_ULPS = 4
VS_REFERENCE_ULPS = {np.float32: 4, np.float64: 4}


use_target = _dispatch.use_target


# ---------------------------------------------------------------- cases
# name -> (function name, make(rng, dtype) -> (args, kwargs), has return_grad)

def _logits(rng, dtype, shape):
    return (3.0 * rng.standard_normal(shape)).astype(dtype)


def _labels(rng, n, c, shape=None):
    return rng.integers(0, c, size=shape if shape is not None else n).astype(np.int64)


def _case_lse(rng, dt):
    return (_logits(rng, dt, (37, 301)),), {"axis": -1}


def _case_lse_axis0(rng, dt):
    return (_logits(rng, dt, (129, 17)),), {"axis": 0}


def _case_ce(rng, dt):
    return (_logits(rng, dt, (53, 211)), _labels(rng, 53, 211)), {}


def _case_ce_none_smooth(rng, dt):
    x = _logits(rng, dt, (41, 19))
    return (x, _labels(rng, 41, 19)), {"reduction": "none", "label_smoothing": 0.1}


def _case_ce_nchw(rng, dt):
    x = _logits(rng, dt, (2, 5, 13, 11))
    return (x, _labels(rng, 2, 5, (2, 13, 11))), {}


def _case_nll(rng, dt):
    x = _logits(rng, dt, (33, 40))
    return (x - ref.logsumexp(x.astype(np.float64), axis=1, keepdims=True).astype(dt),
            _labels(rng, 33, 40)), {}


def _case_bce_logits(rng, dt):
    return (_logits(rng, dt, (257, 7)), rng.random((257, 7)).astype(dt)), {}


def _case_pair(rng, dt):
    return (_logits(rng, dt, (301, 5)), _logits(rng, dt, (301, 5))), {}


def _case_pm1(rng, dt):
    return (_logits(rng, dt, (257, 7)),
            np.where(rng.random((257, 7)) < 0.5, -1.0, 1.0).astype(dt)), {}


def _case_focal(rng, dt):
    return (_logits(rng, dt, (301, 3)), (rng.random((301, 3)) < 0.3).astype(dt)), \
        {"reduction": "mean"}


def _case_rows(rng, dt):
    return (_logits(rng, dt, (47, 31)), _labels(rng, 47, 31)), {}


def _case_cosine(rng, dt):
    return (np.tanh(rng.standard_normal((47, 31))).astype(dt), _labels(rng, 47, 31)), {}


def _case_seg(rng, dt):
    x = _logits(rng, dt, (2, 4, 9, 10))
    return (x, rng.integers(0, 4, size=(2, 1, 9, 10)).astype(np.uint8)), {}


CASES = {
    "logsumexp": ("logsumexp", _case_lse, False),
    "logsumexp_axis0": ("logsumexp", _case_lse_axis0, False),
    "softmax": ("softmax", _case_lse, False),
    "log_softmax": ("log_softmax", _case_lse_axis0, False),
    "cross_entropy": ("cross_entropy", _case_ce, True),
    "cross_entropy_none_smoothing": ("cross_entropy", _case_ce_none_smooth, True),
    "cross_entropy_nchw": ("cross_entropy", _case_ce_nchw, True),
    "nll_loss": ("nll_loss", _case_nll, True),
    "binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits",
                                         _case_bce_logits, True),
    "soft_margin_loss": ("soft_margin_loss", _case_pm1, True),
    "log_cosh_loss": ("log_cosh_loss", _case_pair, True),
    "mse_loss": ("mse_loss", _case_pair, True),
    "sigmoid_focal_loss": ("sigmoid_focal_loss", _case_focal, True),
    "softmax_focal_loss": ("softmax_focal_loss", _case_rows, True),
    "multi_margin_loss": ("multi_margin_loss", _case_rows, True),
    "arcface_loss": ("arcface_loss", _case_cosine, True),
    "dice_loss": ("dice_loss", _case_seg, True),
    "dice_ce_loss": ("dice_ce_loss", _case_seg, True),
}
CORE = ["logsumexp", "softmax", "log_softmax", "cross_entropy", "cross_entropy_nchw",
        "nll_loss"]


def _inputs(case, dtype):
    fname, make, has_grad = CASES[case]
    if not hasattr(fastloss, fname):
        pytest.skip(f"fastloss.{fname} is not available")
    rng = np.random.default_rng(sum(map(ord, case)) + np.dtype(dtype).itemsize)
    args, kwargs = make(rng, dtype)
    return fname, args, kwargs, has_grad


def _outputs(fname, args, kwargs, grad):
    """The function's results as a list of float64 arrays."""
    kw = dict(kwargs, return_grad=True) if grad else kwargs
    res = getattr(fastloss, fname)(*args, **kw)
    res = res if isinstance(res, tuple) else (res,)
    return [np.asarray(r) for r in res]


def _ulps(got, want, dtype):
    """max |got - want| in ulps of dtype at the scale of max |want|."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    if got.size == 0:
        return 0.0
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    scale = max(float(np.max(np.abs(want[ok]), initial=0.0)), np.finfo(dtype).tiny)
    return float(np.max(np.abs(got[ok] - want[ok]), initial=0.0)) / (scale * np.finfo(dtype).eps)


def _all_targets(case, dtype):
    fname, args, kwargs, has_grad = _inputs(case, dtype)
    out = {}
    for target in TARGETS:
        with use_target(target):
            out[target] = _outputs(fname, args, kwargs, has_grad)
    return fname, args, kwargs, out


# ---------------------------------------------------------------- tests

def test_targets_listed():
    assert "baseline" in TARGETS
    assert _dispatch.TARGET in TARGETS
    # The dispatcher picks the best target this CPU runs.
    if not os.environ.get("FASTLOSS_CPU_TARGET"):
        assert _dispatch.TARGET == TARGETS[0]


# the wrapper modules' kernel-module attributes, by family
KERNEL_SLOTS = [("lse", "_k", "lse"), ("classification._entropy", "_k", "classification"),
                ("classification._entropy", "_kr", "rowwise"),
                ("classification._entropy", "_ks", "ce_soft"),
                ("classification._margin", "_kr", "margin"),
                ("elementwise._core", "_k", "elementwise"),
                ("embedding", "_k", "embedding"), ("detection", "_k", "rowwise"),
                ("segmentation._prep", "_k", "segmentation"),
                ("segmentation._hard", "_k", "confusion"),
                ("distance._transform", "_k", "distance"), ("distance._surface", "_k", "surface"),
                ("distance._surface", "_kd", "distance"), ("distance._losses", "_k", "dtloss"),
                ("gbdt._plan", "_k", "gbdt")]


def _slots():
    import importlib

    return {(m, a): getattr(importlib.import_module(f"fastloss.{m}"), a).__name__
            for m, a, _ in KERNEL_SLOTS}


def _expect(target):
    return {(m, a): f"fastloss._{target}._{fam}" for m, a, fam in KERNEL_SLOTS}


def test_use_target_switches_kernels():
    start = _dispatch.TARGET
    assert _slots() == _expect(start)
    for target in TARGETS:
        with use_target(target):
            assert _dispatch.TARGET == target
            assert _slots() == _expect(target)
            assert _dispatch.kernels("lse").__name__ == f"fastloss._{target}._lse"
            # the modules come from the target's own package
            assert fastloss.embedding._k.__file__.startswith(
                os.path.dirname(importlib.import_module(f"fastloss._{target}").__file__))
        assert _dispatch.TARGET == start
        assert _slots() == _expect(start)


def test_use_target_nests():
    start = _dispatch.TARGET
    outer, inner = TARGETS[-1], TARGETS[0]
    with use_target(outer):
        with use_target(inner):
            assert _slots() == _expect(inner)
        assert _dispatch.TARGET == outer and _slots() == _expect(outer)
    assert _dispatch.TARGET == start and _slots() == _expect(start)


def test_use_target_restores_after_an_exception():
    start, reason = _dispatch.TARGET, _dispatch.REASON
    other = TARGETS[-1]   # baseline: another target than the dispatched one when several run
    with pytest.raises(RuntimeError, match="inside"):
        with use_target(other):
            assert _slots() == _expect(other)
            raise RuntimeError("inside the block")
    assert (_dispatch.TARGET, _dispatch.REASON) == (start, reason)
    assert _slots() == _expect(start)


def test_use_target_rejects_unknown_and_unavailable(monkeypatch):
    start = _dispatch.TARGET
    with pytest.raises(ValueError, match=r"unknown CPU target 'pentium'.*baseline"):
        with use_target("pentium"):
            pass
    # a CPU without AVX-512 / AVX2: the x86-64-v3/v4 builds must not run
    monkeypatch.setattr(_dispatch, "_cpu_features", lambda: set())
    for name in ("x86_64_v4", "x86_64_v3"):
        if _dispatch._built(name):
            with pytest.raises(ValueError, match=rf"CPU target '{name}' needs AVX"):
                with use_target(name):
                    pass
    # a target this platform did not build
    monkeypatch.setattr(_dispatch, "_built", lambda t: t == "baseline")
    with pytest.raises(ValueError, match=r"CPU target 'x86_64_v3' was not built.*\['baseline'\]"):
        with use_target("x86_64_v3"):
            pass
    monkeypatch.undo()
    assert _dispatch.TARGET == start and _slots() == _expect(start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_targets_agree(case, dtype):
    if len(TARGETS) < 2:
        pytest.skip("only one CPU target is built or runnable here")
    _, _, _, out = _all_targets(case, dtype)
    base = out["baseline"]
    for target, res in out.items():
        assert len(res) == len(base)
        for i, (a, b) in enumerate(zip(res, base)):
            assert a.dtype == b.dtype == np.dtype(dtype), (target, i, a.dtype)
            err = _ulps(a, b, dtype)
            assert err <= BETWEEN_TARGETS_ULPS, (
                f"{case}: {target} vs baseline output {i} differ by {err:.1f} ulp")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_targets_match_reference(case, dtype):
    fname, args, kwargs, out = _all_targets(case, dtype)
    if not hasattr(ref, fname):
        pytest.skip(f"fastloss.reference.{fname} is not available")
    r = getattr(ref, fname)(*args, **kwargs)
    r = list(r) if isinstance(r, tuple) else [r]
    bound = VS_REFERENCE_ULPS[dtype]
    for target, res in out.items():
        # the loss (the gradient is checked against the other targets above
        # and by each family's check_grad tests)
        err = _ulps(res[0], r[0], dtype)
        assert err <= bound, f"{case}: {target} vs reference differ by {err:.1f} ulp"


def test_cross_entropy_grad_matches_reference_formula():
    # d mean CE / dx = (softmax(x) - onehot) / N, from the reference softmax
    x, t = _case_ce(np.random.default_rng(3), np.float64)[0]
    want = ref.softmax(x, axis=1)
    want[np.arange(len(t)), t] -= 1.0
    want /= len(t)
    for target in TARGETS:
        with use_target(target):
            _, g = fastloss.cross_entropy(x, t, return_grad=True)
        assert _ulps(g, want, np.float64) <= VS_REFERENCE_ULPS[np.float64], target


# ------------------------------------------------- the real dispatch path

def dump_core_results(path):
    """Run the CORE cases with whatever target was dispatched; save to path."""
    arrays = {}
    for case in CORE:
        for dtype in (np.float32, np.float64):
            fname, args, kwargs, has_grad = _inputs(case, dtype)
            for i, a in enumerate(_outputs(fname, args, kwargs, has_grad)):
                arrays[f"{case}|{np.dtype(dtype).name}|{i}"] = a
    arrays["target"] = np.array(_dispatch.TARGET)
    np.savez(path, **arrays)


@pytest.mark.parametrize("target", TARGETS)
def test_forced_target_subprocess_matches_in_process(target, tmp_path):
    path = str(tmp_path / "out.npz")
    code = (f"import sys; sys.path.insert(0, {HERE!r}); import test_dispatch; "
            f"test_dispatch.dump_core_results({path!r})")
    proc = run_python(code, {"FASTLOSS_CPU_TARGET": target})
    assert proc.returncode == 0, proc.stderr
    got = np.load(path)
    assert str(got["target"]) == target
    for case in CORE:
        for dtype in (np.float32, np.float64):
            fname, args, kwargs, has_grad = _inputs(case, dtype)
            with use_target(target):
                want = _outputs(fname, args, kwargs, has_grad)
            for i, w in enumerate(want):
                g = got[f"{case}|{np.dtype(dtype).name}|{i}"]
                # same kernels, same inputs, deterministic: bit-identical
                np.testing.assert_array_equal(g, w, err_msg=f"{case} {dtype} {i}")


# Run in a subprocess with FASTLOSS_CPU_TARGET=baseline: the fastmath ulp
# sweep (exp/log accuracy), the log-sum-exp family, cross-entropy hand
# values, label dtypes and finite-difference gradients, the unweighted
# narrow rows (flnarrow.h's scalar transposition here), and the element-wise
# losses against torch, at infinite logits and by finite differences (the
# softplus losses take their exp in passes of their own on this target; in
# float32, one loop on x86_64_v4), and half-precision inputs (float16
# converted by integer arithmetic here, by F16C on x86_64_v3 and up).
BASELINE_SUBSET = [
    "test_fastmath.py",
    "test_lse.py",
    "test_classification.py::test_hand_computed",
    "test_classification.py::test_label_dtypes",
    "test_classification.py::test_gradient_finite_differences",
    "test_classification.py::test_cross_entropy_narrow_rows_unweighted",
    "test_elementwise.py::test_vs_torch",
    "test_elementwise.py::test_check_grad",
    "test_elementwise.py::test_extremes_logits_and_probabilities",
    "test_elementwise.py::test_bce_logits_infinite_logits_among_many",
    "test_elementwise.py::test_bce_weights_vs_torch",
    "test_elementwise.py::test_multilabel_soft_margin_vs_torch",
    "test_elementwise.py::test_multilabel_nonfinite_like_torch",
    "test_elementwise.py::test_focal_gradient_finite",
    "test_half.py",
    "test_build.py::test_kernels_are_compiled_extensions",
]


def test_suite_subset_with_baseline_target(tmp_path):
    if os.environ.get("FASTLOSS_CPU_TARGET"):
        pytest.skip("already running under a forced CPU target")
    files = [os.path.join(HERE, f) for f in BASELINE_SUBSET]
    missing = [f for f in files if not os.path.exists(f.split("::")[0])]
    assert not missing, missing
    code = ("import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))")
    args = ["-q", "-x", "-p", "no:cacheprovider", "--import-mode=importlib", *files]
    proc = run_python(f"import sys; sys.argv[1:] = {args!r}; sys.path.insert(0, {HERE!r}); "
                      + code, {"FASTLOSS_CPU_TARGET": "baseline"}, timeout=900)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail
