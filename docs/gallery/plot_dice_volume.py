"""
Dice and Dice+CE on a 3-D volume
================================

A synthetic (1, 4, 48, 64, 64) volume of logits with a label map of three
nested spheres in uint8. ``fastloss.dice_loss`` and
``fastloss.dice_ce_loss`` read the label map in its own width (no one-hot
volume is built); ``fastloss.dice_score`` gives the hard per-class scores of
the predicted label map.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastloss

rng = np.random.default_rng(0)
D, H, W, C = 48, 64, 64, 4
z, yy, xx = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
r = np.sqrt(((z - D / 2) / D) ** 2 + ((yy - H / 2) / H) ** 2 + ((xx - W / 2) / W) ** 2)
labels = np.select([r < 0.15, r < 0.28, r < 0.4], [3, 2, 1], 0).astype(np.uint8)[None]

# logits that favour the true class, with noise
logits = rng.normal(0.0, 1.5, size=(1, C, D, H, W)).astype(np.float32)
np.put_along_axis(logits, labels[:, None].astype(np.int64), 2.0, axis=1)

dice, grad = fastloss.dice_loss(logits, labels, return_grad=True)
dice_ce = fastloss.dice_ce_loss(logits, labels)
per_class = fastloss.dice_loss(logits, labels, reduction="none")
pred = logits.argmax(1).astype(np.uint8)
scores = fastloss.dice_score(pred, labels, C)
print(f"soft Dice loss {float(dice):.4f}, Dice+CE {float(dice_ce):.4f}")
print("soft Dice loss per class:", np.round(per_class[0], 4))
print("hard Dice score per class:", np.round(scores, 4))
print("gradient:", grad.shape, grad.dtype)

# %%
# A slice through the middle of the volume, and the per-class scores.
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
k = D // 2
axes[0].imshow(labels[0, k], cmap="viridis", vmin=0, vmax=C - 1)
axes[0].set_title("labels")
axes[1].imshow(pred[0, k], cmap="viridis", vmin=0, vmax=C - 1)
axes[1].set_title("argmax of the logits")
axes[2].imshow(grad[0, 1, k], cmap="RdBu")
axes[2].set_title("dice_loss gradient, class 1")
for a in axes[:3]:
    a.set_axis_off()
axes[3].bar(np.arange(C) - 0.2, 1 - per_class[0], width=0.4, label="1 - soft Dice loss")
axes[3].bar(np.arange(C) + 0.2, scores, width=0.4, label="hard Dice score")
axes[3].set_xticks(range(C))
axes[3].set_xlabel("class")
axes[3].set_ylim(0, 1)
axes[3].legend(loc="upper right", fontsize=8)
fig.tight_layout()
plt.show()
