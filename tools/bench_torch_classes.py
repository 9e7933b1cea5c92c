"""Every torch-named fastloss.torch class against torch's own, at one batch size.

    python tools/bench_torch_classes.py [--shape 8 10] [--rounds 15] [--calls 200]

For each class (``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, ...) on a
(N, C) float32 batch: forward + backward (``grad = None`` first) and the
forward alone under ``torch.no_grad()``, the two modules taking turns in
each round (``fastloss.bench.runner.round_order``); prints the median over
rounds of the mean time per call and torch's time over fastloss's (above
1: fastloss is faster).
"""

import argparse
import statistics
import time

import torch

import fastloss
import fastloss.torch as ft
from fastloss.bench.runner import round_order


def _inputs(name, N, C):
    """The module's arguments and the tensors that require grad."""
    x = torch.randn(N, C, requires_grad=True)
    if name in ("CrossEntropyLoss", "MultiMarginLoss"):
        return (x, torch.randint(0, C, (N,))), [x]
    if name in ("NLLLoss", "KLDivLoss"):
        lp = torch.log_softmax(torch.randn(N, C), 1).requires_grad_()
        other = torch.randint(0, C, (N,)) if name == "NLLLoss" else torch.softmax(
            torch.randn(N, C), 1)
        return (lp, other), [lp]
    if name == "BCELoss":
        p = torch.rand(N, C).clamp(0.01, 0.99).requires_grad_()
        return (p, torch.rand(N, C)), [p]
    if name in ("BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"):
        return (x, torch.rand(N, C).round()), [x]
    if name == "SoftMarginLoss":
        return (x, torch.randint(0, 2, (N, C)).float() * 2 - 1), [x]
    if name == "TripletMarginLoss":
        return (x, torch.randn(N, C), torch.randn(N, C)), [x]
    return (x, torch.randn(N, C)), [x]


def _fwd_bwd(m, inputs, leaves):
    for t in leaves:
        t.grad = None
    m(*inputs).backward()


def _fwd(m, inputs, leaves):
    with torch.no_grad():
        m(*inputs)


def _time(step, m, inputs, leaves, calls):
    for _ in range(calls // 10):
        step(m, inputs, leaves)
    t = time.perf_counter()
    for _ in range(calls):
        step(m, inputs, leaves)
    return (time.perf_counter() - t) / calls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(8, 10), metavar=("N", "C"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(fastloss.get_num_threads())
    N, C = args.shape
    print(f"({N}, {C}) float32, {args.calls} calls per round, median of {args.rounds} rounds; "
          "ratio = torch / fastloss")
    print(f"{'class':26s} {'fwd+bwd fastloss':>17s} {'torch':>8s} {'ratio':>6s}   "
          f"{'no_grad fastloss':>16s} {'torch':>8s} {'ratio':>6s}")
    for name in ft._CLASSES:
        if not hasattr(ft, name):
            continue
        inputs, leaves = _inputs(name, N, C)
        kw = {"reduction": "batchmean"} if name == "KLDivLoss" else {}
        mods = (getattr(ft, name)(**kw), getattr(torch.nn, name)(**kw))
        row = []
        for step in (_fwd_bwd, _fwd):
            times = ([], [])
            for r in range(args.rounds):
                for i in round_order(2, r):
                    times[i].append(_time(step, mods[i], inputs, leaves, args.calls))
            mine, theirs = (statistics.median(t) * 1e6 for t in times)
            row.append(f"{mine:14.1f} us {theirs:8.1f} {theirs / mine:5.2f}x")
        print(f"{name:26s} {row[0]}   {row[1]}")


if __name__ == "__main__":
    main()
