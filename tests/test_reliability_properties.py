"""Property tests: every registered function against fastloss.reference.

For each function hypothesis draws sizes (incl. 1 and odd sizes), float32 /
float64, the options of the registry entry, a reduction, the integer dtype of
class-index arrays and, per array argument, a memory layout (C, Fortran,
strided view, negative strides, read-only, read-only np.memmap).  The result
must match the float64 NumPy reference computed from the same values, keep the
input dtype, and (with return_grad) give the same loss and, where the
reference has one, the same gradient.
"""

import inspect
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastloss
import fastloss.reference

from _layouts import LAYOUTS, label_dtypes_for, relayout
from _registry import REGISTRY

TOL = {np.float64: (1e-9, 1e-10), np.float32: (2e-4, 2e-5)}
EXAMPLES = {}


@pytest.fixture(scope="module")
def mmdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("memmap"))


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return list(itertools.chain.from_iterable(_leaves(v) for v in x))
    return [x]


def _close(got, ref, dtype, what):
    rtol, atol = TOL[dtype]
    g, r = _leaves(got), _leaves(ref)
    assert len(g) == len(r), f"{what}: {len(g)} outputs vs reference {len(r)}"
    for i, (a, b) in enumerate(zip(g, r)):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        assert a.shape == b.shape, f"{what}[{i}]: shape {a.shape} vs reference {b.shape}"
        scale = max(1.0, float(np.nanmax(np.abs(b)))) if b.size and np.isfinite(b).any() else 1.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True,
                                   err_msg=f"{what}[{i}]")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_matches_reference(name, mmdir, record_property):
    e = REGISTRY[name]
    fn = getattr(fastloss, name, None)
    ref = getattr(fastloss.reference, name, None)
    assert fn is not None and ref is not None, f"fastloss(.reference).{name} is missing"
    ref_grad = "return_grad" in inspect.signature(ref).parameters
    count = [0]

    @settings(suppress_health_check=list(HealthCheck))
    @given(st.data())
    def prop(data):
        d = {k: data.draw(st.integers(lo, hi), label=k) for k, (lo, hi) in e.dims.items()}
        f = {k: data.draw(st.sampled_from(v), label=k) for k, v in e.flags.items()}
        dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        args, kwargs = e.build(np.random.default_rng(seed), np.dtype(dtype), d, f)
        if e.reductions:
            kwargs["reduction"] = data.draw(st.sampled_from(e.reductions), label="reduction")
        n_threads = data.draw(st.sampled_from([1, 2, 3]), label="n_threads")

        def lay(a, key):
            if not isinstance(a, np.ndarray):
                return a
            if a.dtype.kind in "iu":
                a = a.astype(data.draw(st.sampled_from(label_dtypes_for(a)), label=key + ".dt"))
            return relayout(a, data.draw(st.sampled_from(LAYOUTS), label=key), mmdir)

        fargs = [lay(a, f"arg{i}") for i, a in enumerate(args)]
        fkw = {k: lay(v, k) for k, v in kwargs.items()}

        def up(a):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                return a.astype(np.float64)
            return a

        rargs = [up(a) for a in args]
        rkw = {k: up(v) for k, v in kwargs.items()}
        with np.errstate(all="ignore"):
            expected = ref(*rargs, **rkw)
            got = fn(*fargs, **fkw, n_threads=n_threads)
        _close(got, expected, dtype, f"{name} {d} {f} {kwargs.get('reduction')}")
        if e.keeps_dtype:
            for leaf in _leaves(got):
                assert np.asarray(leaf).dtype == dtype, \
                    f"{name}: result dtype {np.asarray(leaf).dtype} for {np.dtype(dtype)} input"
            if kwargs.get("reduction") in ("mean", "sum", "batchmean"):
                assert isinstance(got, np.generic), f"{name}: scalar result is {type(got)}"
        if e.grad:
            with np.errstate(all="ignore"):
                got2 = fn(*fargs, **fkw, return_grad=True, n_threads=n_threads)
                _close(got2[0], got, dtype, f"{name}: loss with return_grad")
                if ref_grad:
                    rg = ref(*rargs, **rkw, return_grad=True)
                    _close(got2[1], rg[1], dtype, f"{name}: gradient")
        count[0] += 1

    prop()
    EXAMPLES[name] = count[0]
    record_property("hypothesis_examples", count[0])
    print(f"\n{name}: {count[0]} hypothesis examples")
    assert count[0] > 0
