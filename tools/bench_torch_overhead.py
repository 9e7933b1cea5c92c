"""Where the time of a small fastloss.torch loss goes: forward + backward, interleaved.

    python tools/bench_torch_overhead.py [--shape 8 10] [--rounds 15] [--calls 2000]

Times one cross-entropy forward and backward (``x.grad = None`` first) on a
(N, C) float32 batch, the implementations taking turns in each round
(``fastloss.bench.runner.round_order``); prints the median over rounds of
the mean time per call:

* ``empty Function``: a ``torch.autograd.Function`` that sums its input
  and returns a stored gradient (the cost of Python autograd alone);
* ``minimal Function``: the smallest Function that calls
  ``fastloss.cross_entropy(..., return_grad=True)`` and returns its
  gradient (the floor of any Python-level autograd wrapper of the kernel);
* ``fastloss.torch F`` / ``fastloss.torch module``: the public API;
* ``torch F`` / ``torch module``: torch's own C++ loss.
"""

import argparse
import statistics
import timeit

import numpy as np
import torch

import fastloss
import fastloss.torch as ft
from fastloss.bench.runner import round_order
from fastloss.torch import functional as FF


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(8, 10), metavar=("N", "C"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    threads = args.threads or fastloss.get_num_threads()
    torch.set_num_threads(threads)
    n, c = args.shape
    x = torch.randn(n, c, requires_grad=True)
    y = torch.randint(0, c, (n,))
    g0 = torch.zeros(n, c)

    class Empty(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a.sum()

        @staticmethod
        def backward(ctx, go):
            return g0, None

    class Minimal(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            loss, g = fastloss.cross_entropy(a.detach().numpy(), b.numpy(), return_grad=True)
            ctx.g = torch.from_numpy(g)
            return torch.from_numpy(np.array(loss))

        @staticmethod
        def backward(ctx, go):
            g, ctx.g = ctx.g, None
            v = go.item()
            if v != 1.0:
                g.mul_(v)
            return g, None

    mine, theirs = ft.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    impls = {
        "empty Function": lambda: Empty.apply(x, y),
        "minimal Function": lambda: Minimal.apply(x, y),
        "fastloss.torch F": lambda: FF.cross_entropy(x, y),
        "fastloss.torch module": lambda: mine(x, y),
        "torch F": lambda: torch.nn.functional.cross_entropy(x, y),
        "torch module": lambda: theirs(x, y),
    }
    names = list(impls)
    steps = {}
    for name, f in impls.items():
        def step(f=f):
            x.grad = None
            f().backward()
        steps[name] = step
        step()
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for k in round_order(len(names), r):
            name = names[k]
            times[name].append(timeit.timeit(steps[name], number=args.calls) / args.calls * 1e6)
    print(f"cross-entropy forward + backward, ({n}, {c}) float32, {threads} thread(s), "
          f"median of {args.rounds} rounds of {args.calls} calls")
    for name in names:
        print(f"  {name:24s} {statistics.median(times[name]):8.1f} us")


if __name__ == "__main__":
    main()
