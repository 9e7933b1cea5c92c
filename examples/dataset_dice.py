"""Per-class Dice and Dice+CE over a zarr volume larger than a memory budget.

Writes synthetic logits (N, C, D, H, W) float32 and a uint8 label map to a
zarr store (once), then evaluates them with fastloss.dask on the threaded
scheduler: each chunk goes through the segmentation kernel once, giving its
per-(image, class) soft-Dice sums and cross-entropy sums; the sums are
tree-reduced into a fastloss.metrics.DiceAccumulator
(``fastloss.dask.dice_accumulator``), which gives the per-class soft Dice
(1 - ``dice_loss(..., batch=True, reduction='none')``) and the MONAI-style
Dice+CE value (``dice_ce_loss(..., batch=True)``) from one read of the store.

Reports wall time, throughput and the peak resident memory of the
evaluating process against the budget; with ``--verify`` also checks the
result against a plain fastloss.DiceAccumulator loop over the images.

Usage::

    python examples/dataset_dice.py --shape 4 4 384 384 384 --budget-gb 1
    python examples/dataset_dice.py --shape 2 4 64 64 64 --verify   # quick check

Needs dask and zarr (``pip install fastloss[dask] zarr``).
"""

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _zarr_open(path):
    import zarr

    return zarr.open_group(path, mode="r")


def generate(path, shape, chunks, seed=0):
    """Write logits and labels (argmax of the logits plus noise) chunk by chunk."""
    import dask
    import dask.array as da

    rng = da.random.default_rng(seed)
    x = rng.standard_normal(shape, chunks=chunks, dtype=np.float32)
    noise = rng.standard_normal(shape, chunks=chunks, dtype=np.float32)
    y = (x + 1.5 * noise).argmax(axis=1).astype(np.uint8)
    wx = x.to_zarr(path, component="logits", overwrite=True, compute=False)
    wy = y.to_zarr(path, component="labels", overwrite=True, compute=False)
    dask.compute(wx, wy)


def evaluate(path, n_threads_per_chunk=1, workers=None):
    import dask.array as da

    import fastloss.dask as fd

    x = da.from_zarr(path, component="logits")
    y = da.from_zarr(path, component="labels")
    # one lazy accumulator: a single read of the store gives both values
    lazy = fd.dice_accumulator(x, y, ce=True, n_threads=n_threads_per_chunk)
    t0 = time.perf_counter()
    acc = lazy.compute(scheduler="threads", num_workers=workers)
    pc, dc = acc.per_class("dice_loss"), acc.result("dice_ce_loss")
    return 1.0 - pc, dc, time.perf_counter() - t0, x


def verify(path, dice, dice_ce):
    """The same values from fastloss.metrics accumulators, image by image."""
    import fastloss
    from fastloss.metrics import DiceAccumulator

    g = _zarr_open(path)
    x, y = g["logits"], g["labels"]
    acc = DiceAccumulator()
    values = []
    for n in range(x.shape[0]):
        xi, yi = x[n:n + 1], y[n:n + 1]
        acc.update(xi, yi)
        values.append((xi, yi))
    want = 1.0 - acc.per_class("dice_loss")
    xa = np.concatenate([v[0] for v in values])
    ya = np.concatenate([v[1] for v in values])
    want_ce = fastloss.dice_ce_loss(xa, ya, batch=True)
    np.testing.assert_allclose(dice, want, rtol=1e-12)
    np.testing.assert_allclose(dice_ce, want_ce, rtol=1e-6)
    return "ok (matches the accumulator loop and the in-memory dice_ce_loss)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", default="/tmp/fastloss_dataset.zarr")
    ap.add_argument("--shape", type=int, nargs=5, default=[4, 4, 384, 384, 384],
                    metavar=("N", "C", "D", "H", "W"))
    ap.add_argument("--chunk", type=int, nargs=3, default=[64, 128, 128],
                    metavar=("CD", "CH", "CW"), help="spatial chunk (the class axis is whole)")
    ap.add_argument("--budget-gb", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=None, help="dask threads (default: cores)")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    shape = tuple(a.shape)
    chunks = (1, shape[1]) + tuple(a.chunk)
    if a.generate_only:
        generate(a.path, shape, chunks)
        return 0
    exists = os.path.exists(os.path.join(a.path, "logits"))
    if exists:
        exists = tuple(_zarr_open(a.path)["logits"].shape) == shape
    if a.regenerate or not exists:
        t0 = time.perf_counter()
        # in a child process, so that the peak memory below is the evaluation's
        subprocess.run([sys.executable, __file__, "--generate-only", "--path", a.path,
                        "--shape", *map(str, shape), "--chunk", *map(str, a.chunk)], check=True)
        print(f"generated {a.path} in {time.perf_counter() - t0:.1f} s")
    dice, dice_ce, wall, x = evaluate(a.path, workers=a.workers)
    nbytes = x.nbytes + x.nbytes // (4 * shape[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"logits {shape} float32 + labels uint8 = {nbytes / 1e9:.2f} GB, chunks {chunks}")
    print(f"per-class soft Dice: {np.array2string(dice, precision=6)}")
    print(f"Dice+CE: {float(dice_ce):.6f}")
    print(f"wall {wall:.1f} s ({nbytes / wall / 1e9:.2f} GB/s), peak RSS {peak / 1e9:.2f} GB "
          f"(budget {a.budget_gb:.2f} GB: {'within' if peak <= a.budget_gb * 1e9 else 'OVER'})")
    if a.verify:
        print("verify:", verify(a.path, dice, dice_ce))
    return 0 if peak <= a.budget_gb * 1e9 else 1


if __name__ == "__main__":
    sys.exit(main())
