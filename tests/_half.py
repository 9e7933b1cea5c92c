"""The half-precision dtypes the tests run: float16, and bfloat16 where ml_dtypes is installed."""

import numpy as np

try:
    import ml_dtypes
except ImportError:  # optional dependency: the float16 cases still run
    ml_dtypes = None

HALF = [np.dtype(np.float16)]
if ml_dtypes is not None:
    HALF.append(np.dtype(ml_dtypes.bfloat16))
HALF_IDS = [d.name for d in HALF]
