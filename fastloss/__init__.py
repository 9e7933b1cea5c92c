"""fastloss: fast, exact loss functions and their gradients for NumPy on the CPU.

Every loss is a typed Cython kernel with OpenMP loops behind a thin NumPy
API with torch / MONAI / SciPy semantics; ``fastloss.reference`` holds the
NumPy float64 oracle of every function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TextIO

__version__ = "0.1.0"

from fastloss import classification, detection, distance, elementwise, embedding, lse, segmentation

# "name as name": explicit re-exports for type checkers (mypy --strict)
from fastloss._buffers import empty_gradient_cache as empty_gradient_cache
from fastloss._buffers import get_gradient_cache as get_gradient_cache
from fastloss._buffers import set_gradient_cache as set_gradient_cache
from fastloss._threads import get_num_threads as get_num_threads
from fastloss._threads import set_num_threads as set_num_threads
from fastloss.classification import *  # noqa: F403
from fastloss.detection import *  # noqa: F403
from fastloss.distance import *  # noqa: F403
from fastloss.elementwise import *  # noqa: F403
from fastloss.embedding import *  # noqa: F403
from fastloss.lse import *  # noqa: F403
from fastloss.segmentation import *  # noqa: F403


def _openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""
    from fastloss._openmp_helpers import openmp_enabled

    return openmp_enabled()


def show_config(file: TextIO | None = None) -> None:
    """Print the version, OpenMP status, default threads, CPU target, half conversions and
    the CPU-dependent choices of the kernels.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: ``sys.stdout``).

    Returns
    -------
    None

    Examples
    --------
    >>> import io, fastloss
    >>> buf = io.StringIO()
    >>> fastloss.show_config(buf)
    >>> buf.getvalue().splitlines()[0] == f"fastloss {fastloss.__version__}"
    True
    """
    import sys

    import numpy as np

    from fastloss import _dispatch

    lines = [
        f"fastloss {__version__}",
        f"  numpy:           {np.__version__}",
        f"  OpenMP:          {'enabled' if _openmp_enabled() else 'DISABLED (serial build)'}",
        f"  default threads: {get_num_threads()}",
        f"  CPU target:      {_dispatch.TARGET} ({_dispatch.REASON})",
        f"  targets built:   {', '.join(t for t, _ in _dispatch.TARGETS if _dispatch._built(t))}",
        f"  half precision:  {_dispatch.kernels('elementwise').HALF_CONVERSIONS}",
        "  requests ahead:  the Dice family's class planes: "
        + ("yes" if _dispatch.kernels("segmentation").PLANES_AHEAD else "no (an AMD CPU)"),
        "  gradient cache:  {} MiB, {:.1f} MiB kept".format(
            *(b / 2**20 for b in get_gradient_cache())),
    ]
    print("\n".join(lines), file=file or sys.stdout)


__all__ = (
    ["__version__", "show_config", "get_num_threads", "set_num_threads",
     "set_gradient_cache", "get_gradient_cache", "empty_gradient_cache"]
    + lse.__all__
    + classification.__all__
    + elementwise.__all__
    + embedding.__all__
    + detection.__all__
    + segmentation.__all__
    + distance.__all__
)
