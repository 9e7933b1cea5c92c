"""The NumPy oracle: every public function of fastloss, same name and signature.

Written for clarity, in float64, with no attention to speed: the test-suite
checks the kernels against it and the benchmarks use it as the NumPy baseline.
Results are float64 whatever the input dtype.
"""

from fastloss.reference import (
    _classification,
    _distance,
    _elementwise,
    _lse,
    _rowwise,
    _segmentation,
)
from fastloss.reference import _gbdt as gbdt  # noqa: F401  (fastloss.gbdt's twin)
from fastloss.reference._classification import *  # noqa: F403
from fastloss.reference._distance import *  # noqa: F403
from fastloss.reference._elementwise import *  # noqa: F403
from fastloss.reference._lse import *  # noqa: F403
from fastloss.reference._rowwise import *  # noqa: F403
from fastloss.reference._segmentation import *  # noqa: F403

__all__ = (
    _lse.__all__ + _classification.__all__ + _elementwise.__all__
    + _rowwise.__all__ + _segmentation.__all__ + _distance.__all__
)
