"""Element-wise losses: regression, binary/probabilistic, margin, divergences,
penalties and GAN losses (torch semantics where torch has the loss).

Every function validates in Python, then makes ONE pass over the data in
``src/_elementwise.pyx.tp`` that returns the weighted sum and, optionally, the
per-element losses and the gradient.  float16 and bfloat16 data are read in
their own width and computed in float32: the loss comes back in float32, the
gradient in the input's dtype (or float32 with ``grad_dtype=np.float32``).
"""

from fastloss.elementwise._binary import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    exponential_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    hinge_loss,
    js_div,
    kl_div,
    multilabel_soft_margin_loss,
    sigmoid_focal_loss,
    soft_margin_loss,
)
from fastloss.elementwise._penalties import (
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
)
from fastloss.elementwise._regression import (
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mean_bias_error,
    mse_loss,
    pseudo_huber_loss,
    smooth_l1_loss,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "elastic_net_penalty",
    "exponential_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "hinge_loss",
    "huber_loss",
    "js_div",
    "kl_div",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "log_cosh_loss",
    "mean_bias_error",
    "mse_loss",
    "multilabel_soft_margin_loss",
    "pseudo_huber_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
]

# documented, stubbed and shown as fastloss.elementwise's own
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
