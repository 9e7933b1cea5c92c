# Type stubs of fastloss.gbdt (written by hand: tools/gen_stubs.py covers the
# modules of fastloss.__all__, and gbdt is a submodule of its own).
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ['Objective', 'grad_hess', 'init_score']

Loss = Literal['logistic', 'binary_focal', 'huber', 'pseudo_huber', 'log_cosh', 'fair',
               'quantile', 'poisson', 'gamma', 'tweedie', 'squared_log', 'softmax',
               'softmax_focal']
Hessian = Literal['exact', 'xgboost', 'lightgbm', 'fisher', 'mm', 'constant',
                  'max_delta_step']
GradHess = tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]

LOSSES: tuple[str, ...]

def grad_hess(
    loss: Loss,
    y: ArrayLike,
    margins: ArrayLike,
    sample_weight: ArrayLike | None = ...,
    *,
    hessian: Hessian | None = ...,
    hess_floor: float | None = ...,
    out: tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]] | None = ...,
    n_threads: int | None = ...,
    **params: Any,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]], float]: ...

def init_score(
    loss: Loss,
    y: ArrayLike,
    sample_weight: ArrayLike | None = ...,
    **params: Any,
) -> float | NDArray[np.float64]: ...

class _CatBoostObjective(Protocol):
    def calc_ders_range(self, approxes: ArrayLike, targets: ArrayLike,
                        weights: ArrayLike | None) -> NDArray[np.float64]: ...
    def calc_ders_multi(self, approx: ArrayLike, target: float,
                        weight: float | None) -> tuple[list[float], list[list[float]]]: ...

class _CatBoostMetric(Protocol):
    def is_max_optimal(self) -> bool: ...
    def evaluate(self, approxes: Any, target: ArrayLike,
                 weight: ArrayLike | None) -> tuple[float, float]: ...
    def get_final_error(self, error: float, weight: float) -> float: ...

class Objective:
    loss: str
    def __init__(self, loss: Loss, *, hessian: Hessian | None = ...,
                 hess_floor: float | None = ..., n_threads: int | None = ...,
                 **params: Any) -> None: ...
    @property
    def name(self) -> str: ...
    def grad_hess(self, y: ArrayLike, margins: ArrayLike,
                  sample_weight: ArrayLike | None = ...,
                  out: tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]] | None = ...
                  ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]], float]: ...
    def init_score(self, y: ArrayLike, sample_weight: ArrayLike | None = ...,
                   num_class: int | None = ...) -> float | NDArray[np.float64]: ...
    def xgboost(self, predt: NDArray[Any], dtrain: Any) -> GradHess: ...
    def xgboost_metric(self, predt: NDArray[Any], dtrain: Any) -> tuple[str, float]: ...
    def xgboost_sklearn(self, y_true: ArrayLike, y_pred: ArrayLike, *,
                        sample_weight: ArrayLike | None = ...) -> GradHess: ...
    def lightgbm(self, preds: NDArray[Any], train_data: Any) -> GradHess: ...
    def lightgbm_metric(self, preds: NDArray[Any],
                        eval_data: Any) -> tuple[str, float, bool]: ...
    def lightgbm_sklearn(self, y_true: ArrayLike, y_pred: ArrayLike,
                         weight: ArrayLike | None = ...) -> GradHess: ...
    @property
    def catboost(self) -> _CatBoostObjective: ...
    @property
    def catboost_metric(self) -> _CatBoostMetric: ...
