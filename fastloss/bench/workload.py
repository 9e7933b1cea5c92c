"""The workload definition shared by `python -m fastloss bench` and benchmarks/.

A workload is one problem (arrays of a fixed size) and the implementations
that solve it: fastloss, the NumPy reference, and every peer library that
has the function.  Family modules in ``fastloss/bench/workloads/`` each
define a list ``WORKLOADS``; the CLI and the pytest-benchmark suite read
those lists and nothing else, so sizes and peers are defined once.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class PeerMissing(Exception):
    """Raised by an implementation builder whose library is not installed."""


@dataclass
class Workload:
    name: str
    """Short id, e.g. ``"ce_wide"``; ``--only`` matches it."""
    family: str
    """"classification", "lse", "elementwise", "embedding", "segmentation", ..."""
    description: str
    """One line for the table, with shapes and dtypes."""
    make: Callable[[bool], dict]
    """``make(quick)`` returns the inputs (arrays, parameters); quick = small sizes."""
    impls: dict
    """Implementation name -> ``builder(data) -> zero-argument callable``.

    Names: "fastloss" (always first), "fastloss+grad" (return_grad=True),
    "reference", "torch", "scipy", "sklearn", "monai", "numpy" ...  A builder
    raises PeerMissing when its library cannot be imported.  Each callable
    returns the computed value (scalar or array) for the agreement check.
    A builder reads what it needs from ``data`` (``n_threads`` included)
    when it runs, not the callable when it is called: tools/bench_threads.py
    builds one callable per thread count from the same ``data``.
    """
    bytes_moved: Callable[[dict], int]
    """Bytes a single fastloss call must read and write (the memory floor)."""
    n_exp: Callable[[dict], int] | None = None
    """Exponentials/logarithms a call must evaluate (the exp floor), if any."""
    rtol: float = 1e-4
    """Agreement tolerance of each implementation's value vs the reference."""
    compare_to: dict = field(default_factory=dict)
    """Optional: impl name -> the impl whose value it must match (default: "reference").

    E.g. {"fastloss+grad": "fastloss"} or a peer computing something other
    than the reference, mapped to None to skip the check."""
    bytes_moved_grad: Callable[[dict], int] | None = None
    """Optional: bytes a "fastloss+grad" call moves (default: ``bytes_moved``)."""
    read_floor: bool = False
    """Time a plain parallel sum over ``bytes_moved`` bytes in the same rounds
    and take it as the memory floor (memory-bound workloads: the floor is
    then measured under the same load as the kernel)."""
    pass_bytes: Callable[[dict], int] | None = None
    """Optional: bytes the passes of the algorithm itself read and write at
    the least, where it must go over the data more than once (a separable
    distance transform: its float64 field once per axis).  Printed as the
    passes floor beside the memory floor; not part of the limit, which is
    the machine's."""


def peer(module, data=None):
    """Import a peer library, or raise PeerMissing.

    With ``data``, torch is set to the run's thread count.
    """
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise PeerMissing(str(e)) from e
    if data is not None and module == "torch":
        mod.set_num_threads(data["n_threads"])
    return mod


def fastloss_impls(name, keys=("x", "t"), grad=True, **options):
    """The "fastloss", "fastloss+grad" and "reference" builders of one function.

    Each calls ``fastloss.<name>`` (resp. ``fastloss.reference.<name>``) on
    ``data[k] for k in keys`` with ``options``; "fastloss+grad" adds
    ``return_grad=True`` (left out with ``grad=False``), and
    "fastloss+grad_out", where the function takes ``grad_out``, writes that
    gradient into one buffer allocated beforehand (the call without the
    operating system's first touch of a fresh array).
    """
    import fastloss
    import fastloss.reference as ref

    fn, rf = getattr(fastloss, name), getattr(ref, name)

    def fl(d):
        args, nt = [d[k] for k in keys], d["n_threads"]
        return lambda: fn(*args, n_threads=nt, **options)

    def fl_grad(d):
        args, nt = [d[k] for k in keys], d["n_threads"]
        return lambda: fn(*args, return_grad=True, n_threads=nt, **options)

    def fl_grad_out(d):
        # the gradient written into one buffer allocated (and touched) here:
        # the kernel's cost without the first touch of fresh memory
        args, nt = [d[k] for k in keys], d["n_threads"]
        buf = np.zeros_like(args[0])
        return lambda: fn(*args, return_grad=True, grad_out=buf, n_threads=nt, **options)

    def reference(d):
        args = [d[k] for k in keys]
        return lambda: rf(*args, **options)

    impls = {"fastloss": fl, "fastloss+grad": fl_grad, "reference": reference}
    if not grad:
        del impls["fastloss+grad"]
    elif "grad_out" in inspect.signature(fn).parameters:
        impls["fastloss+grad_out"] = fl_grad_out
    return impls


def torch_impls(get_fn, keys=("x", "t"), wrt=("x",)):
    """The "torch" and "torch+grad" builders of one torch function.

    ``get_fn(torch)`` returns the function, called on ``torch.from_numpy``
    views of ``data[k] for k in keys``; "torch+grad" also computes the
    gradient with respect to the inputs named in ``wrt`` (autograd).
    """
    def th(d):
        torch = peer("torch", d)
        f = get_fn(torch)
        args = [torch.from_numpy(d[k]) for k in keys]
        return lambda: f(*args)

    def th_grad(d):
        torch = peer("torch", d)
        f = get_fn(torch)
        args = [torch.from_numpy(d[k]).requires_grad_(k in wrt) for k in keys]
        leaves = [a for k, a in zip(keys, args) if k in wrt]

        def call():
            loss = f(*args)
            return (loss.detach(),) + torch.autograd.grad(loss, leaves)
        return call

    return {"torch": th, "torch+grad": th_grad}
