"""
Checking gradients with ``fastloss.testing.check_grad``
=======================================================

``check_grad`` compares the gradient a function returns with
``return_grad=True`` with 5-point central finite differences in float64 and
returns the largest relative error (or raises ``AssertionError`` naming the
worst element).
"""

import matplotlib.pyplot as plt
import numpy as np

import fastloss
from fastloss.testing import check_grad, numerical_grad

rng = np.random.default_rng(0)
x = rng.normal(size=(6, 5))
y = rng.integers(0, 5, size=6)

cases = {
    "cross_entropy": (fastloss.cross_entropy, (x, y), {"label_smoothing": 0.1}),
    "softmax_focal_loss": (fastloss.softmax_focal_loss, (x, y), {"gamma": 2.0}),
    "multi_margin_loss": (fastloss.multi_margin_loss, (x, y), {}),
    "huber_loss": (fastloss.huber_loss, (x, rng.normal(size=x.shape)), {"delta": 0.5}),
    "binary_cross_entropy_with_logits":
        (fastloss.binary_cross_entropy_with_logits, (x, rng.random(x.shape)), {}),
}
errors = {}
for name, (fn, inputs, kw) in cases.items():
    errors[name] = check_grad(fn, *inputs, **kw)
    print(f"{name:35s} largest relative error {errors[name]:.2e}")

# %%
# The analytic gradient against the numerical one, element by element:
fn = lambda a, b: fastloss.cross_entropy(a, b, label_smoothing=0.1)  # noqa: E731
num = numerical_grad(fn, (x, y))
_, ana = fastloss.cross_entropy(x, y, label_smoothing=0.1, return_grad=True)
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(num.ravel(), ana.ravel(), s=12)
ax.plot([num.min(), num.max()], [num.min(), num.max()], "k--", lw=0.8)
ax.set_xlabel("central differences")
ax.set_ylabel("return_grad=True")
ax.set_title("cross_entropy gradient")
fig.tight_layout()
plt.show()
