"""The workload definition shared by `python -m fastloss bench` and benchmarks/.

A workload is one problem (arrays of a fixed size) and the implementations
that solve it: fastloss, the NumPy reference, and every peer library that
has the function.  Family modules in ``fastloss/bench/workloads/`` each
define a list ``WORKLOADS``; the CLI and the pytest-benchmark suite read
those lists and nothing else, so sizes and peers are defined once.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional


class PeerMissing(Exception):
    """Raised by an implementation builder whose library is not installed."""


@dataclass
class Workload:
    name: str
    """Short id, e.g. ``"ce_wide"``; ``--only`` matches it."""
    family: str
    """"classification", "lse", "elementwise", "rowwise", "segmentation", ..."""
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
    """
    bytes_moved: Callable[[dict], int]
    """Bytes a single fastloss call must read and write (the memory floor)."""
    n_exp: Optional[Callable[[dict], int]] = None
    """Exponentials/logarithms a call must evaluate (the exp floor), if any."""
    rtol: float = 1e-4
    """Agreement tolerance of each implementation's value vs the reference."""
    compare_to: dict = field(default_factory=dict)
    """Optional: impl name -> the impl whose value it must match (default: "reference").

    E.g. {"fastloss+grad": "fastloss"} or a peer computing something other
    than the reference, mapped to None to skip the check."""
    bytes_moved_grad: Optional[Callable[[dict], int]] = None
    """Optional: bytes a "fastloss+grad" call moves (default: ``bytes_moved``)."""
