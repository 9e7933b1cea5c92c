"""The bad-input matrix: invalid calls generated from the registry.

``cases(entry)`` yields ``Case`` objects: a call that must raise ValueError or
TypeError with a message naming one of ``names`` (``edge=True`` marks a
degenerate but legal call, e.g. an empty batch, which must not crash and must
either raise such an error or return a sane result).  ``run(names)`` runs the
matrix for the named functions and returns ``(n_tried, failures)``; it is what
the child process of the crash-isolation test executes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from _registry import NAN, REGISTRY

N_THREADS_BAD = [0, 1.5, "2", True]
REDUCTION_BAD = ["avg", "MEAN", None, 1]


@dataclass
class Case:
    label: str
    args: list
    kwargs: dict
    names: tuple
    edge: bool = False
    extra: dict = field(default_factory=dict)


def arg_names(fn, args):
    """The parameter name of each positional argument (``arrays[i]`` for *args)."""
    out = []
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    for i in range(len(args)):
        p = params[min(i, len(params) - 1)]
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"{p.name}[{i - params.index(p)}]")
        else:
            out.append(p.name)
    return out


def _set(args, kwargs, names, name, value):
    args = list(args)
    kwargs = dict(kwargs)
    if name in names:
        args[names.index(name)] = value
    else:
        kwargs[name] = value
    return args, kwargs


def _get(args, kwargs, names, name):
    return args[names.index(name)] if name in names else kwargs.get(name)


def _other_shape(shape, axis=0):
    """Shapes that are wrong for an argument of ``shape`` (never broadcastable here):
    one more element along ``axis``, and an extra trailing axis of size 3."""
    if len(shape) == 0:
        return [(4,)]
    s = list(shape)
    s[axis] += 1
    return [tuple(s), shape + (3,)]


def cases(entry, fn):
    rng = np.random.default_rng(7)
    args, kwargs = entry.call(rng, flags=entry.full)
    names = arg_names(fn, args)
    sig = inspect.signature(fn).parameters
    arrays = {n: a for n, a in zip(names, args) if isinstance(a, np.ndarray)}
    arrays.update({k: v for k, v in kwargs.items() if isinstance(v, np.ndarray)})
    all_arrays = tuple(arrays)

    # wrong dtypes for every array argument
    for n, a in arrays.items():
        bad = {
            "complex": a.astype(np.complex128),
            "object": a.astype(object),
            "string": a.astype(str),
        }
        if n in entry.labels:
            bad["float labels"] = a.astype(np.float64)
            bad["bool labels"] = (a % 2).astype(bool)
        for what, v in bad.items():
            yield Case(f"{n}: {what}", *_set(args, kwargs, names, n, v), (n,))
    # wrong shapes
    for n in entry.shaped:
        a = arrays.get(n)
        if a is None:
            continue
        for shp in _other_shape(a.shape, entry.shape_axis.get(n, 0)):
            v = np.zeros(shp, dtype=a.dtype)
            yield Case(f"{n}: shape {shp} for {a.shape}", *_set(args, kwargs, names, n, v),
                       all_arrays)
    # out-of-range and negative labels
    for n, dim in entry.labels.items():
        a = arrays[n]
        C = entry.bad_dims[dim]
        ignore = _get(args, kwargs, names, "ignore_index")
        if ignore is None and "ignore_index" in sig:
            ignore = sig["ignore_index"].default
        bads = [("== n_classes", C, a.dtype), ("n_classes + 7", C + 7, a.dtype),
                ("-1", -1, np.int64), ("2**40", 2**40, np.int64)]
        if ignore != -100:
            bads.append(("-100", -100, np.int64))
        for what, val, dt in bads:
            if val == ignore:
                continue
            for pos in (0, a.size - 1):
                v = a.astype(dt)
                v.flat[pos] = val
                yield Case(f"{n}: label {what} at {pos}", *_set(args, kwargs, names, n, v),
                           (n,))
        if "ignore_index" in sig and a.dtype == np.uint8 and ignore not in (None,):
            pass
    # zero-size class axis (labels cannot be valid)
    if entry.class_dim is not None:
        d = dict(entry.bad_dims)
        d[entry.class_dim] = 0
        try:
            a0, k0 = entry.build(np.random.default_rng(1), np.dtype(np.float64), d,
                                 _flags(entry))
        except Exception:  # noqa: BLE001 - the generator cannot express C=0
            a0 = None
        if a0 is not None:
            yield Case("zero-size class axis", a0, k0, all_arrays + ("num_classes",))
    # empty batch: legal, must not crash
    for dim in ("N", "a"):
        if dim in entry.bad_dims:
            d = dict(entry.bad_dims)
            d[dim] = 0
            a0, k0 = entry.build(np.random.default_rng(1), np.dtype(np.float64), d,
                                 _flags(entry))
            for red in entry.reductions or (None,):
                kk = dict(k0)
                if red is not None:
                    kk["reduction"] = red
                yield Case(f"empty ({dim}=0) reduction={red}", a0, kk, all_arrays, edge=True)
    # scalar hyper-parameters
    for n, vals in entry.bad_scalars.items():
        for v in vals:
            yield Case(f"{n}={v!r}", *_set(args, kwargs, names, n, v), (n,))
    for n, vals in entry.bad_options.items():
        for v in vals:
            yield Case(f"{n}={v!r}", *_set(args, kwargs, names, n, v), (n,))
    # reductions
    if "reduction" in sig:
        for v in REDUCTION_BAD:
            yield Case(f"reduction={v!r}", args, dict(kwargs, reduction=v), ("reduction",))
    # n_threads
    for v in N_THREADS_BAD:
        yield Case(f"n_threads={v!r}", args, dict(kwargs, n_threads=v), ("n_threads",))
    # grad_out
    if entry.grad_out:
        x = args[0]
        kk = dict(kwargs, return_grad=True)
        for what, g in [("wrong shape", np.empty(x.shape + (2,), x.dtype)),
                        ("wrong dtype", np.empty(x.shape, np.float32)),
                        ("not contiguous", np.empty(x.shape[:-1] + (2 * x.shape[-1],),
                                                    x.dtype)[..., ::2]),
                        ("read-only", _readonly(np.empty(x.shape, x.dtype))),
                        ("list", x.tolist())]:
            yield Case(f"grad_out: {what}", args, dict(kk, grad_out=g), ("grad_out",))


def _readonly(a):
    a.setflags(write=False)
    return a


def _flags(entry):
    f = {k: v[0] for k, v in entry.flags.items()}
    f.update(entry.full)
    return f


def check(fn, case):
    """None if ``case`` behaves, else a description of what went wrong."""
    try:
        with np.errstate(all="ignore"):
            out = fn(*case.args, **case.kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if not any(n in msg for n in case.names):
            return f"{type(exc).__name__} does not name {case.names}: {msg!r}"
        return None
    except Exception as exc:  # noqa: BLE001
        return f"raised {type(exc).__name__}: {exc}"
    if not case.edge:
        return f"returned {_short(out)} instead of raising"
    red = case.kwargs.get("reduction")
    vals = out if not isinstance(out, tuple) else out[0]
    if red == "sum" and np.ndim(vals) == 0 and vals != 0:
        return f"empty 'sum' gave {vals!r}, expected 0"
    if red == "mean" and np.ndim(vals) == 0 and not np.isnan(vals):
        return f"empty 'mean' gave {vals!r}, expected NaN"
    return None


def _short(out):
    s = repr(out)
    return s if len(s) < 80 else s[:77] + "..."


def run(names=None):
    """Run the matrix; returns (n_tried, [failure strings])."""
    import fastloss

    n, failures = 0, []
    for name in names or list(REGISTRY):
        fn = getattr(fastloss, name, None)
        if fn is None:
            failures.append(f"{name}: missing from fastloss")
            continue
        for case in cases(REGISTRY[name], fn):
            n += 1
            err = check(fn, case)
            if err:
                failures.append(f"{name}[{case.label}]: {err}")
    return n, failures


__all__ = ["Case", "cases", "check", "run", "NAN"]
