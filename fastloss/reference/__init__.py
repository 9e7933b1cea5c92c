"""The NumPy oracle: every public function of fastloss, same name and signature.

Written for clarity, in float64, with no attention to speed: the test-suite
checks the kernels against it and the benchmarks use it as the NumPy baseline.
Results are float64 whatever the input dtype.
"""

from fastloss.reference._classification import cross_entropy, nll_loss
from fastloss.reference._lse import log_softmax, logsumexp, softmax

__all__ = ["logsumexp", "softmax", "log_softmax", "cross_entropy", "nll_loss"]
