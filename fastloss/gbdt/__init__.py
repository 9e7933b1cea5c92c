"""Gradient-boosting objectives: gradient, Hessian and loss value from one pass.

:func:`grad_hess` evaluates a loss's per-sample gradient and Hessian with
respect to the raw margins (and the weighted mean loss) in one pass of
``src/_gbdt.pyx``; :class:`Objective` wraps it in the calling conventions of
XGBoost, LightGBM, CatBoost and their scikit-learn estimators.  Importing
this module imports none of those libraries.

Layouts are read in place: XGBoost's C-ordered ``(n, K)`` float32 margins,
LightGBM's Fortran-ordered ``(n, K)`` float64 margins, and the gradients are
written in the order the consumer reads (C for XGBoost, F for LightGBM,
float32 for both) into buffers that an :class:`Objective` reuses across
rounds.
"""

from fastloss.gbdt._objective import Objective

# LOSSES: the loss names, documented as fastloss.gbdt.LOSSES
from fastloss.gbdt._plan import LOSSES as LOSSES
from fastloss.gbdt._plan import grad_hess, init_score

__all__ = ["Objective", "grad_hess", "init_score"]

# documented, stubbed and shown as fastloss.gbdt's own
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
