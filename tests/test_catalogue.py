"""The catalogue (fastloss/_catalogue.py) against the functions it describes.

Each row's facts are checked on the function itself: its module and
signature, the domain of every scalar parameter on both sides of each bound,
the gradients ``return_grad=True`` returns, the shape of a 'none' result and
what 'mean' divides by.  Valid calls come from tests/_registry.py.
"""

import inspect
import math

import numpy as np
import pytest

import fastloss
from fastloss import _catalogue as catalogue
from fastloss import metrics
from tests._registry import NOT_LOSSES, REGISTRY

ROWS = list(catalogue.ROWS.values())
IDS = [r.name for r in ROWS]
# rows with a valid call in the registry (the distance family has its own suite)
BUILT = [r for r in ROWS if r.name in REGISTRY]


def _bound(name, rng, flags=None):
    """A valid call of ``name`` as a BoundArguments (defaults applied)."""
    args, kwargs = REGISTRY[name].call(rng, np.float64, flags=flags)
    fn = getattr(fastloss, name)
    ba = inspect.signature(fn).bind(*args, **kwargs)
    ba.apply_defaults()
    return fn, ba


def _call(fn, ba, **changes):
    kw = dict(ba.arguments)
    kw.update(changes)
    pos = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.POSITIONAL_ONLY:
            pos.append(kw.pop(p.name))
        elif p.kind == p.VAR_POSITIONAL:
            pos.extend(kw.pop(p.name))
    return fn(*pos, **kw)


def _arrays(ba, name):
    """The arrays an argument holds (the penalties' *arrays: several)."""
    v = ba.arguments[name]
    return list(v) if isinstance(v, tuple) else [v]


def test_every_public_function_has_one_row():
    public = [n for n in fastloss.__all__ if n not in NOT_LOSSES]
    assert sorted(public) == sorted(catalogue.ROWS)
    assert len(ROWS) == len(catalogue.ROWS)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_row_matches_the_signature(row):
    fn = getattr(fastloss, row.name)
    assert fn.__module__ == f"fastloss.{row.family}"
    params = inspect.signature(fn).parameters
    for group in (row.arrays, row.grads, tuple(row.params), row.per_element):
        assert set(group) <= set(params), group
    assert set(row.grads) <= set(row.arrays)
    assert ("return_grad" in params) == bool(row.grads)
    has_reduction = "reduction" in params
    assert has_reduction == (row.mean is not None)
    if row.none is not None:
        assert params["reduction"].default is not None


def _outside(d):
    """Values just outside each finite bound of a domain (and NaN)."""
    out = [math.nan]
    step = 1 if d.integer else 0.5
    if math.isfinite(d.lo):
        out.append(d.lo if d.lo_open else d.lo - step)
    if math.isfinite(d.hi):
        out.append(d.hi if d.hi_open else d.hi + step)
    return out


def _closed_bounds(d):
    return [b for b, is_open in ((d.lo, d.lo_open), (d.hi, d.hi_open))
            if math.isfinite(b) and not is_open]


@pytest.mark.parametrize("row", [r for r in BUILT if r.params], ids=lambda r: r.name)
def test_parameter_domains(row):
    rng = np.random.default_rng(0)
    fn, ba = _bound(row.name, rng)
    for p, d in row.params.items():
        for bad in _outside(d):
            if d.integer and bad != bad:
                bad = 0.5  # an integer parameter rejects a fractional value
            with pytest.raises((ValueError, TypeError), match=p):
                _call(fn, ba, **{p: bad})
        if d.integer:
            with pytest.raises(TypeError, match=p):
                _call(fn, ba, **{p: 1.5})
        for ok in _closed_bounds(d):
            # a closed bound is accepted (the call may fail for another reason,
            # e.g. a class count below the labels, but never on this parameter)
            try:
                _call(fn, ba, **{p: int(ok) if d.integer else ok})
            except (ValueError, TypeError) as e:
                assert p not in str(e).split(" must ")[0], (p, ok, e)


def _expected_none_shape(rule, shape, ba):
    if rule == "elem":
        return shape
    if rule == "lastaxis":
        return shape[:-1]
    if rule == "axis":
        ax = ba.arguments["axis"] % len(shape)
        return shape[:ax] + shape[ax + 1:]
    if rule == "positions":
        return () if len(shape) == 1 else (shape[0],) + shape[2:]
    if rule == "rows":
        return () if len(shape) == 1 else shape[:1]
    c = shape[1] - (0 if ba.arguments.get("include_background", True) else 1)
    batch = ba.arguments.get("batch", False)
    if rule == "classes":
        return (c,) if batch else (shape[0], c)
    assert rule == "batch"
    return (1,) if batch else shape[:1]


@pytest.mark.parametrize("row", [r for r in BUILT if r.none is not None
                                 and "none" in REGISTRY[r.name].reductions],
                         ids=lambda r: r.name)
def test_none_shape(row):
    rng = np.random.default_rng(1)
    flag_sets = [None]
    flags = REGISTRY[row.name].flags
    for k in ("batch", "include_background"):
        for v in flags.get(k, ())[1:]:
            flag_sets.append({k: v})
    for f in flag_sets:
        fn, ba = _bound(row.name, rng, f)
        out = _call(fn, ba, reduction="none")
        arrays = [ba.arguments[a] for a in row.arrays]
        outs = out if isinstance(out, tuple) else (out,)
        for o, a in zip(outs, arrays):
            assert np.shape(o) == _expected_none_shape(row.none, np.shape(a), ba), f


@pytest.mark.parametrize("row", [r for r in BUILT if r.grads and REGISTRY[r.name].grad],
                         ids=lambda r: r.name)
def test_gradients_returned(row):
    rng = np.random.default_rng(2)
    fn, ba = _bound(row.name, rng)
    _, grads = _call(fn, ba, return_grad=True)
    arrays = [a for name in row.grads for a in _arrays(ba, name)]
    if len(row.grads) == 1 and row.grads != ("arrays",):  # a penalty: a tuple, one per array
        grads = (grads,)
    assert isinstance(grads, tuple) and len(grads) == len(arrays)
    for g, a in zip(grads, arrays):
        assert isinstance(g, np.ndarray) and g.shape == np.shape(a)


@pytest.mark.parametrize("name", sorted(metrics.ELEMENTWISE_MEAN))
def test_mean_counts_terms_as_declared(name):
    # 'mean' * (number of terms of the rule) == 'sum', for the element-wise rules
    rng = np.random.default_rng(3)
    fn, ba = _bound(name, rng)
    shape = np.shape(ba.arguments[catalogue.row(name).arrays[0]])
    terms = math.prod(_expected_none_shape(catalogue.row(name).mean, shape, ba))
    mean = float(_call(fn, ba, reduction="mean", sample_weight=None))
    total = float(_call(fn, ba, reduction="sum", sample_weight=None))
    assert mean * terms == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("row", [r for r in ROWS if r.per_element], ids=lambda r: r.name)
def test_dask_aligns_the_per_element_arrays(row):
    # the dask version, given the per-element arrays as dask arrays chunked
    # like the input, gives the in-memory value
    da = pytest.importorskip("dask.array")
    import fastloss.dask as fd

    rng = np.random.default_rng(4)
    args, kwargs = REGISTRY[row.name].call(rng, np.float64, flags=REGISTRY[row.name].full)
    fn = getattr(fastloss, row.name)
    ba = inspect.signature(fn).bind(*args, **kwargs)
    given = [k for k in row.per_element if ba.arguments.get(k) is not None]
    assert given, "the registry's full call passes the per-element arrays"
    want = fn(*args, **kwargs)
    x = ba.arguments[row.arrays[0]]
    chunks = (max(1, x.shape[0] // 2),) + x.shape[1:]  # rows split, class axis whole
    dkw = {k: v for k, v in ba.arguments.items() if k not in row.arrays}
    for k in given:
        v = np.broadcast_to(dkw[k], x.shape) if row.name != "multilabel_soft_margin_loss" \
            else dkw[k]
        dkw[k] = da.from_array(np.ascontiguousarray(v), chunks=chunks[-v.ndim:])
    got = getattr(fd, row.name)(da.from_array(x, chunks=chunks),
                                da.from_array(ba.arguments[row.arrays[1]], chunks=chunks), **dkw)
    np.testing.assert_allclose(np.asarray(got.compute()), want, rtol=1e-12)


# how fastloss.torch broadcasts grad_output of a 'none' result onto the input
# (its Spec.none) and the catalogue rules it covers
_TORCH_NONE = {"elem": {"elem"}, "class": {"positions", "rows"},
               "last": {"lastaxis", "rows", "axis"}}


def test_torch_specs_agree_with_the_catalogue():
    pytest.importorskip("torch")
    from fastloss.torch import _core

    for spec in _core.REGISTRY.values():
        row = catalogue.row(spec.fl_name or spec.name)
        if not spec.variadic:
            assert spec.diff == row.grads, spec.name
        if spec.none is not None:
            assert row.none in _TORCH_NONE[spec.none], spec.name


GRAD_OUT = [n for n in IDS if n in REGISTRY and "grad_out" in
            inspect.signature(getattr(fastloss, n)).parameters]


@pytest.mark.parametrize("name", GRAD_OUT)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_out_without_return_grad_raises(name, dtype):
    # a grad_out that would be left unwritten is an error, not a silent no-op;
    # with return_grad=True the same buffer is filled with the gradient
    rng = np.random.default_rng(4)
    args, kwargs = REGISTRY[name].call(rng, dtype)
    fn = getattr(fastloss, name)
    ba = inspect.signature(fn).bind(*args, **kwargs)
    ba.apply_defaults()
    x = np.asarray(_arrays(ba, catalogue.row(name).arrays[0])[0])
    g = np.full(x.shape, 7.0, x.dtype)
    with pytest.raises(ValueError, match="grad_out.*return_grad=True"):
        _call(fn, ba, grad_out=g)
    assert (g == 7.0).all()
    loss, grad = _call(fn, ba, grad_out=g, return_grad=True)
    assert grad is g
    np.testing.assert_array_equal(g, _call(fn, ba, return_grad=True)[1])


def test_grad_out_covers_every_function_that_takes_it():
    takes = [n for n in IDS if "grad_out" in inspect.signature(getattr(fastloss, n)).parameters]
    assert len(GRAD_OUT) == len(takes) >= 30
