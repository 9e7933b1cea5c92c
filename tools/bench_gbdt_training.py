"""Whole trainings with a custom objective against the built-in one (issue 24).

    python tools/bench_gbdt_training.py [--rows 1000000] [--features 50] [--rounds 50]

Trains XGBoost (hist) and LightGBM on the same synthetic binary problem with
(a) the built-in logistic objective, (b) fastloss.gbdt's logistic objective
(the same trees: the cost of the callback path itself), (c) fastloss.gbdt's
binary focal objective and (d) the same focal objective written in NumPy,
and prints the wall time of each training, the time spent inside the
objective callback, and the ratios to the built-in run.  Focal trees are
not the logistic ones (smaller Hessians stop splits earlier), so (c) and
(d) compare with each other; (b) against (a) shows the overhead.  Every run
uses the same thread count (``--threads``, default all CPUs) and starts
from margin 0.
"""

import argparse
import time

import numpy as np

from fastloss import gbdt
from fastloss.bench.workloads.gbdt import numpy_focal  # the same NumPy objective as the bench


def timed(fn):
    """fn wrapped to add up the seconds spent in it (in acc[0]).

    A closure, not a callable object: lightgbm.train deep-copies its
    parameters, which would copy an object's counter but not a function.
    """
    acc = [0.0]

    def wrapper(*args):
        t0 = time.perf_counter()
        out = fn(*args)
        acc[0] += time.perf_counter() - t0
        return out
    return wrapper, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", choices=("xgboost", "lightgbm"), default=None)
    a = ap.parse_args()
    import os
    nt = a.threads or len(os.sched_getaffinity(0))

    rng = np.random.default_rng(0)
    X = rng.standard_normal((a.rows, a.features), dtype=np.float32)
    logit = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3], np.float32) - 2.5
    y = (rng.random(a.rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    print(f"{a.rows} x {a.features}, {a.rounds} rounds, {nt} threads, positives {y.mean():.3f}")
    focal = gbdt.Objective("binary_focal", gamma=2.0, alpha=0.25, hessian="fisher",
                           n_threads=nt)
    logistic = gbdt.Objective("logistic", n_threads=nt)
    rows = []

    def runs(adapt):
        """(name, objective callable or None, seconds counter)."""
        out = [("built-in logistic", None, None)]
        for name, fn in (("fastloss logistic", adapt(logistic)),
                         ("fastloss binary_focal", adapt(focal)),
                         ("NumPy binary_focal",
                          lambda p, dt: numpy_focal(p, dt.get_label()))):
            wrapped, acc = timed(fn)
            out.append((name, wrapped, acc))
        return out

    if a.only in (None, "xgboost"):
        import xgboost as xgb
        d = xgb.DMatrix(X, label=y, base_margin=np.zeros(a.rows), nthread=nt)
        base = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": nt,
                "max_bin": 256}
        xgb.train(dict(base, objective="binary:logistic"), d, 1)   # builds the histogram index
        for name, obj, acc in runs(lambda o: o.xgboost):
            params = dict(base, objective="binary:logistic") if obj is None else dict(
                base, disable_default_eval_metric=1)
            t0 = time.perf_counter()
            xgb.train(params, d, a.rounds, obj=obj)
            rows.append(("xgboost " + xgb.__version__, name, time.perf_counter() - t0,
                         acc[0] if acc else None))
            print("  ", *rows[-1], flush=True)

    if a.only in (None, "lightgbm"):
        import lightgbm as lgb
        ds = lgb.Dataset(X, label=y, params={"verbose": -1, "max_bin": 255}).construct()
        base = {"num_leaves": 63, "learning_rate": 0.1, "num_threads": nt, "verbose": -1,
                "boost_from_average": False}
        lgb.train(dict(base, objective="binary"), ds, 1)
        for name, obj, acc in runs(lambda o: o.lightgbm):
            params = dict(base, objective="binary" if obj is None else obj)
            t0 = time.perf_counter()
            lgb.train(params, ds, a.rounds)
            rows.append(("lightgbm " + lgb.__version__, name, time.perf_counter() - t0,
                         acc[0] if acc else None))
            print("  ", *rows[-1], flush=True)

    print(f"{'library':16s} {'objective':26s} {'total s':>8s} {'objective s':>12s} "
          f"{'vs built-in':>11s}")
    builtin = {}
    for lib, name, total, inside in rows:
        builtin.setdefault(lib, total)
        obj = f"{inside:12.2f}" if inside is not None else f"{'-':>12s}"
        print(f"{lib:16s} {name:26s} {total:8.2f} {obj} {total / builtin[lib]:10.2f}x")


if __name__ == "__main__":
    main()
