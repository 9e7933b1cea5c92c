"""Size sweep: fastloss against its peer from a mini-batch to 64 MiB.

Per-call cost (Python layers, validation, allocation, OpenMP start-up)
decides the small sizes, per-element cost in cache the middle ones and
memory bandwidth the large ones; the workloads of ``python -m fastloss
bench`` only show the last.  Each case here times fastloss and its peer
(torch, or MONAI for the Dice family) at sizes from a few rows up, the
two calls interleaved in a balanced order (``runner.round_order``).  A
timing is the median over rounds of the mean time of a batch of calls
long enough (about 2 ms) for the clock; the ratio is the median of the
per-round ratios peer / fastloss (above 1: fastloss is faster).

The ``fastloss.torch`` rows (forward + backward through a torch module)
also time a loss module that computes nothing (one Python autograd node
handing autograd an allocated gradient) on the same input in the same
rounds, the node floor: what any loss made as a
``torch.autograd.Function`` costs before it does any work.
"""

import time

import numpy as np

from fastloss.bench.runner import round_order

MIB = 1 << 20


def _ce_sizes(quick):
    full = [(8, 10), (64, 10), (128, 100), (512, 100), (256, 1000), (1024, 1000),
            (4096, 1000), (16384, 1000)]
    return [(8, 10), (128, 100), (1024, 1000)] if quick else full


def _elem_sizes(quick):
    full = [8, 80, 1000, 10_000, 100_000, 262_144, 1_000_000, 4_194_304, 16_777_216]
    return [8, 10_000, 262_144] if quick else full


def _seg_sizes(quick):
    full = [(2, 3, 32, 32), (8, 4, 128, 128), (2, 4, 64, 64, 64), (2, 4, 160, 160, 160)]
    return full[:2] if quick else full


class Case:
    """One function at one size: ``make()`` -> (fastloss callable, peer callable, bytes)."""

    def __init__(self, name, peer, size, make):
        self.name, self.peer, self.size, self.make = name, peer, size, make


def _cases(quick, threads):
    import fastloss

    rng = np.random.default_rng(0)
    cases = []
    try:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(threads)
    except ImportError:
        return cases

    def ce(shape):
        def make():
            x = rng.standard_normal(shape).astype(np.float32)
            t = rng.integers(0, shape[1], shape[0])
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)
            return (lambda: fastloss.cross_entropy(x, t, n_threads=threads),
                    lambda: F.cross_entropy(xt, tt), x.nbytes)
        return make

    def elem(name, n):
        def make():
            x = rng.standard_normal(n).astype(np.float32)
            t = (rng.random(n) if "logits" in name else rng.standard_normal(n)).astype(np.float32)
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)
            fl, th = getattr(fastloss, name), getattr(F, name)
            return (lambda: fl(x, t, n_threads=threads), lambda: th(xt, tt), x.nbytes)
        return make

    def torch_rows(module, log_probs=False):
        def rows(shape):
            def make():
                import fastloss.torch as ft
                x = torch.randn(*shape)
                if log_probs:
                    x = torch.log_softmax(x, 1)
                x.requires_grad_()
                t = torch.randint(0, shape[1], (shape[0],))
                mine, theirs = getattr(ft, module)(), getattr(torch.nn, module)()

                def run(crit):
                    x.grad = None
                    crit(x, t).backward()
                return (lambda: run(mine), lambda: run(theirs), x.numel() * 4,
                        _node_floor(torch, x))
            return make
        return rows

    for shape in _ce_sizes(quick):
        cases.append(Case("cross_entropy", "torch", shape, ce(shape)))
    for name in ("mse_loss", "binary_cross_entropy_with_logits"):
        for n in _elem_sizes(quick):
            cases.append(Case(name, "torch", (n,), elem(name, n)))
    for module, log_probs in (("CrossEntropyLoss", False), ("NLLLoss", True),
                              ("MultiMarginLoss", False)):
        make_rows = torch_rows(module, log_probs)
        for shape in _ce_sizes(quick):
            cases.append(Case(f"torch.{module} fwd+bwd", "torch", shape, make_rows(shape)))

    try:
        import monai.losses  # noqa: F401
    except ImportError:
        return cases

    def dice_ce(shape, torch_api):
        def make():
            from monai.losses import DiceCELoss
            x = rng.standard_normal(shape).astype(np.float32)
            lab = rng.integers(0, shape[1], (shape[0], 1) + shape[2:])
            xt = torch.from_numpy(x)
            tt = torch.from_numpy(lab)
            theirs = DiceCELoss(to_onehot_y=True, softmax=True)
            if not torch_api:
                y = lab[:, 0]
                return (lambda: fastloss.dice_ce_loss(x, y, n_threads=threads),
                        lambda: theirs(xt, tt), x.nbytes)
            import fastloss.torch as ft
            mine = ft.DiceCELoss(to_onehot_y=True, softmax=True)
            xg = xt.clone().requires_grad_()

            def run(crit):
                xg.grad = None
                crit(xg, tt).backward()
            return (lambda: run(mine), lambda: run(theirs), x.nbytes, _node_floor(torch, xg))
        return make

    for shape in _seg_sizes(quick):
        cases.append(Case("dice_ce_loss", "monai", shape, dice_ce(shape, False)))
    for shape in _seg_sizes(quick):
        cases.append(Case("torch.DiceCELoss fwd+bwd", "monai", shape, dice_ce(shape, True)))
    return cases


def _node_floor(torch, x):
    """Forward and backward of a loss module that does no work, on ``x``: the
    floor of ``fastloss.torch``'s fwd+bwd rows, measured without fastloss.

    Every ``fastloss.torch`` loss is a ``torch.nn.Module`` whose forward
    enters one ``torch.autograd.Function`` and whose backward hands
    autograd the input's gradient.  This one computes nothing: a 0-d
    output, and a gradient of the input's shape allocated in forward (where
    a loss computes it) and handed over in backward with no other reference
    (so autograd takes it as ``x.grad`` without a copy, as it takes
    fastloss's).  Its node is entered as fastloss.torch enters its own (the
    node's C apply, the engine calling ``backward`` directly).  Where
    torch's own loss is faster than this, no loss built that way can match
    it.
    """
    class Empty(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.grad = [torch.empty_like(x, memory_format=torch.contiguous_format)]
            return x.new_zeros(())

        @staticmethod
        def backward(ctx, go):
            return ctx.grad.pop()

    if getattr(Empty, "_backward_cls", None) is not None:
        Empty._backward_cls.apply = Empty.backward
    apply = super(torch.autograd.Function, Empty).apply

    class EmptyLoss(torch.nn.Module):
        def forward(self, x):
            return apply(x)

    crit = EmptyLoss()

    def run():
        x.grad = None
        crit(x).backward()
    return run


def _batch(fn, target_s=0.002):
    """Calls per timed batch so that one batch lasts about ``target_s``."""
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    return max(1, min(10_000, int(target_s / max(one, 1e-7))))


def _time_batch(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def run_sweep(*, quick, threads, repeat, progress=None):
    """Time every case; returns a list of result rows (times in microseconds)."""
    rows = []
    cases = _cases(quick, threads)
    for i, c in enumerate(cases):
        if progress:
            progress(f"sweep [{i + 1}/{len(cases)}] {c.name} {c.size}")
        try:
            fl, peer, nbytes, *floor = c.make()
            fns = (fl, peer, *floor)
            for f in fns:  # warm-up: first touch, OpenMP team, torch's caches
                f()
                f()
            numbers = [_batch(f) for f in fns]
        except Exception as e:  # a peer missing an option, memory
            rows.append({"name": c.name, "peer": c.peer, "size": list(c.size),
                         "error": f"{type(e).__name__}: {e}"})
            continue
        times = [[] for _ in fns]
        for r in range(repeat):
            for k in round_order(len(fns), r):
                times[k].append(_time_batch(fns[k], numbers[k]))
        ratios = [p / f for f, p in zip(times[0], times[1])]
        row = {
            "name": c.name, "peer": c.peer, "size": list(c.size), "bytes": int(nbytes),
            "fastloss_us": float(np.median(times[0]) * 1e6),
            "peer_us": float(np.median(times[1]) * 1e6),
            "ratio": float(np.median(ratios)),
            "calls_per_round": numbers,
        }
        if floor:
            row["node_floor_us"] = float(np.median(times[2]) * 1e6)
        rows.append(row)
    return rows


def _fmt_us(us):
    if us >= 1e4:
        return f"{us / 1e3:.0f} ms"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} us" if us < 100 else f"{us:.0f} us"


def _fmt_bytes(n):
    for unit, scale in (("MiB", MIB), ("KiB", 1024)):
        if n >= scale:
            v = n / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{n} B"


def table(rows):
    """The sweep as text: one line per (case, size) and the slower sizes named."""
    lines = [f"{'function':34s} {'size':>22s} {'input':>10s} {'fastloss':>10s} "
             f"{'peer':>16s} {'peer/fastloss':>13s} {'node floor':>10s}"]
    slower = []
    for r in rows:
        size = "x".join(str(s) for s in r["size"])
        if "error" in r:
            lines.append(f"{r['name']:34s} {size:>22s}  error: {r['error']}")
            continue
        floor = r.get("node_floor_us")
        lines.append(f"{r['name']:34s} {size:>22s} {_fmt_bytes(r['bytes']):>10s} "
                     f"{_fmt_us(r['fastloss_us']):>10s} "
                     f"{r['peer'] + ' ' + _fmt_us(r['peer_us']):>16s} {r['ratio']:>12.2f}x "
                     f"{'-' if floor is None else _fmt_us(floor):>10s}")
        if r["ratio"] < 1.0:
            below = floor is not None and r["peer_us"] < floor
            slower.append(f"{r['name']} {size}" + (" (peer below the node floor)" if below else ""))
    lines.append("peer faster at: " + (", ".join(slower) if slower else "no size"))
    if any("node_floor_us" in r for r in rows):
        lines.append("node floor: forward + backward of a loss module that computes nothing "
                     "(one Python autograd node handing autograd an allocated gradient of the "
                     "input's shape) on the same input; fastloss.torch's losses are such modules")
    return "\n".join(lines)


def plot(rows, path):
    """Log-log chart of time per call against input bytes, fastloss and peer."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no sweep chart"
    names = list(dict.fromkeys(r["name"] for r in rows if "error" not in r))
    cols = 3
    nrows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        rs = [r for r in rows if r["name"] == name and "error" not in r]
        b = [r["bytes"] for r in rs]
        ax.loglog(b, [r["fastloss_us"] for r in rs], "o-", label="fastloss")
        ax.loglog(b, [r["peer_us"] for r in rs], "s--", label=rs[0]["peer"])
        if all("node_floor_us" in r for r in rs):
            ax.loglog(b, [r["node_floor_us"] for r in rs], ":", color="gray",
                      label="node floor (no work)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("input bytes")
        ax.set_ylabel("us per call")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
