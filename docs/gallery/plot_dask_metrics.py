"""
Metrics over a Dask array
=========================

``fastloss.dask`` computes the losses and metrics of a chunked array with
the same kernels, one task per chunk and a tree reduction of the small
per-chunk statistics; ``.compute()`` gives the in-memory value. Here a
(6, 3, 32, 32, 32) volume of logits in chunks of one image.
"""

import dask
import dask.array as da
import numpy as np

import fastloss
import fastloss.dask as fd
from fastloss.metrics import ConfusionMatrix

rng = np.random.default_rng(0)
N, C, S = 6, 3, 32
logits_np = rng.normal(size=(N, C, S, S, S)).astype(np.float32)
labels_np = rng.integers(0, C, size=(N, S, S, S), dtype=np.uint8)
logits = da.from_array(logits_np, chunks=(1, C, S, S, S))
labels = da.from_array(labels_np, chunks=(1, S, S, S))

with dask.config.set(scheduler="threads", num_workers=2):
    ce = fd.cross_entropy(logits, labels).compute()
    dice = fd.dice_score(logits.argmax(1), labels, num_classes=C).compute()
    acc = fd.dice_accumulator(logits, labels, ce=True).compute()

print("cross-entropy:", float(ce),
      "in memory:", float(fastloss.cross_entropy(logits_np, labels_np)))
print("hard Dice per class:", np.round(dice, 4))
print("soft Dice loss per class:", np.round(acc.per_class("dice_loss"), 4))
print("Dice+CE:", float(acc.result("dice_ce_loss")),
      "in memory:", float(fastloss.dice_ce_loss(logits_np, labels_np, batch=True)))

# %%
# The same confusion matrix from an accumulator fed chunk by chunk, as a
# loop over a loader would:
cm = ConfusionMatrix(num_classes=C)
for i in range(N):
    cm.update(logits_np[i:i + 1].argmax(1), labels_np[i:i + 1])
print(cm.result())
print("Dice from the counts:", np.round(cm.dice(), 4))
