"""
A CPU training loop with ``fastloss.torch``
===========================================

``fastloss.torch.CrossEntropyLoss`` is a subclass of
``torch.nn.CrossEntropyLoss`` with the same constructor arguments; swapping
it in is the only change a training loop needs. Its forward pass computes
the loss and the gradient in one pass of fastloss's kernel, the backward
pass only scales the stored gradient.
"""

import matplotlib.pyplot as plt
import torch

import fastloss.torch as ft

torch.manual_seed(0)
# a linear classifier on a synthetic problem with 5 classes
n, d, c = 2048, 32, 5
centers = 2.0 * torch.randn(c, d)
y = torch.randint(0, c, (n,))
x = centers[y] + torch.randn(n, d)

model = torch.nn.Linear(d, c)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
loss_fn = ft.CrossEntropyLoss(label_smoothing=0.05)   # was torch.nn.CrossEntropyLoss
reference = torch.nn.CrossEntropyLoss(label_smoothing=0.05)

losses = []
for _ in range(60):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    losses.append(float(loss))

# %%
# The same value as torch's own loss, and fastloss's kernels ran:
with torch.no_grad():
    logits = model(x)
print(f"fastloss {float(loss_fn(logits, y)):.6f}  torch {float(reference(logits, y)):.6f}")
print("accelerated:", ft.is_accelerated(logits))
print("accuracy:", float((logits.argmax(1) == y).float().mean()))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (label smoothing 0.05)")
ax.set_title("SGD on a linear classifier")
fig.tight_layout()
plt.show()
