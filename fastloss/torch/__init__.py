"""PyTorch interop: fastloss's kernels as differentiable torch losses.

``import fastloss.torch`` (never imported by ``fastloss`` itself) gives

- :mod:`fastloss.torch.functional`: torch's functional loss names and
  signatures (``cross_entropy``, ``nll_loss``, ...), each differentiable;
- nn.Module classes with torch's names (``CrossEntropyLoss``, ``NLLLoss``,
  ...), subclasses of torch's own classes with the same constructor
  arguments, buffers and ``repr``, whose ``forward`` calls the function above;
- MONAI's loss classes (``DiceLoss``, ``GeneralizedDiceLoss``,
  ``TverskyLoss``, ``FocalLoss``, ``DiceCELoss``, ``DiceFocalLoss``,
  ``GeneralizedDiceFocalLoss``): subclasses of ``monai.losses``' own with
  MONAI's constructor, defaults, warnings and results, created on first
  use (see :mod:`fastloss.torch._monai` for which options run the kernels);
- :func:`is_accelerated`, which tells whether fastloss's kernels or torch's
  own implementation will run for given tensors;
- :func:`empty_cache`, which drops the gradient buffers kept for reuse
  (each loss keeps its last gradient once autograd is done with it).

Only losses that exist in the installed fastloss are defined.  CPU
float32/float64 tensors are read in place by the kernels, which return the
gradient from the same pass; other devices and dtypes run torch's code
with identical semantics.  Under ``torch.compile`` each loss is the custom
op ``torch.ops.fastloss.<name>`` (opaque to the compiler, no graph break).
"""

import torch

from fastloss.torch import _core, functional
from fastloss.torch._core import empty_cache, is_accelerated

# class name -> functional name; a class is defined only when its function exists.
_CLASSES = {
    "CrossEntropyLoss": "cross_entropy",
    "NLLLoss": "nll_loss",
    "MSELoss": "mse_loss",
    "L1Loss": "l1_loss",
    "SmoothL1Loss": "smooth_l1_loss",
    "HuberLoss": "huber_loss",
    "BCELoss": "binary_cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "KLDivLoss": "kl_div",
    "SoftMarginLoss": "soft_margin_loss",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
    "MultiMarginLoss": "multi_margin_loss",
    "TripletMarginLoss": "triplet_margin_loss",
}

# The arguments each torch class passes from its attributes to the function.
_ATTRS = {
    "cross_entropy": ("weight", "ignore_index", "reduction", "label_smoothing"),
    "nll_loss": ("weight", "ignore_index", "reduction"),
    "mse_loss": ("reduction",),
    "l1_loss": ("reduction",),
    "smooth_l1_loss": ("reduction", "beta"),
    "huber_loss": ("reduction", "delta"),
    "binary_cross_entropy": ("weight", "reduction"),
    "binary_cross_entropy_with_logits": ("weight", "reduction", "pos_weight"),
    "kl_div": ("reduction", "log_target"),
    "soft_margin_loss": ("reduction",),
    "multilabel_soft_margin_loss": ("weight", "reduction"),
    "multi_margin_loss": ("p", "margin", "weight", "reduction"),
    "triplet_margin_loss": ("margin", "p", "eps", "swap", "reduction"),
}


# Inputs of each class's docstring example (float64, so that the values
# compare with torch's at allclose's default tolerance).
_X = "torch.tensor([[1.5, -0.3, 0.2], [0.1, 0.9, -1.2]], dtype=torch.float64)"
_EXAMPLE_INPUTS = {
    "cross_entropy": f"{_X}, torch.tensor([0, 2])",
    "nll_loss": f"{_X}.log_softmax(1), torch.tensor([0, 2])",
    "mse_loss": f"{_X}, torch.zeros(2, 3, dtype=torch.float64)",
    "l1_loss": f"{_X}, torch.zeros(2, 3, dtype=torch.float64)",
    "smooth_l1_loss": f"{_X}, torch.zeros(2, 3, dtype=torch.float64)",
    "huber_loss": f"{_X}, torch.zeros(2, 3, dtype=torch.float64)",
    "binary_cross_entropy": f"{_X}.sigmoid(), torch.ones(2, 3, dtype=torch.float64)",
    "binary_cross_entropy_with_logits": f"{_X}, torch.ones(2, 3, dtype=torch.float64)",
    "kl_div": f"{_X}.log_softmax(1), torch.full((2, 3), 1 / 3, dtype=torch.float64)",
    "soft_margin_loss": f"{_X}, torch.ones(2, 3, dtype=torch.float64)",
    "multilabel_soft_margin_loss": f"{_X}, torch.ones(2, 3, dtype=torch.float64)",
    "multi_margin_loss": f"{_X}, torch.tensor([0, 2])",
    "triplet_margin_loss": f"{_X}, torch.ones(2, 3, dtype=torch.float64), "
                           "torch.zeros(2, 3, dtype=torch.float64)",
}


def _class_doc(cls_name, fn_name, attrs):
    kw = "reduction='batchmean'" if fn_name == "kl_div" else ""
    return f"""``torch.nn.{cls_name}`` (same constructor arguments) computed by
    :func:`fastloss.torch.functional.{fn_name}`.

    A subclass of torch's class: the constructor, buffers, ``state_dict``
    and ``repr`` are torch's; ``forward`` passes the module's
    {", ".join(f"``{a}``" for a in attrs)} to the function.

    Parameters
    ----------
    *args, **kwargs
        The constructor arguments of ``torch.nn.{cls_name}``.

    Examples
    --------
    >>> import torch, fastloss.torch as ft
    >>> inputs = ({_EXAMPLE_INPUTS[fn_name]})
    >>> loss = ft.{cls_name}({kw})(*inputs)
    >>> bool(torch.allclose(loss, torch.nn.{cls_name}({kw})(*inputs)))
    True
    """


_NOT_A_BUFFER = object()


def _make_class(cls_name, fn_name):
    base = getattr(torch.nn, cls_name)
    fn = getattr(functional, fn_name)
    attrs = _ATTRS[fn_name]

    # forward builds call()'s argument dict itself (the functional's own
    # dict, minus one Python layer per step); other argument counts go
    # through the functional, which raises torch's TypeError
    positional = tuple(n for n in _core.REGISTRY[fn_name].tensors if n not in attrs)

    def forward(self, *inputs):
        if len(inputs) != len(positional):
            return fn(*inputs, **{a: getattr(self, a) for a in attrs})
        args = dict(zip(positional, inputs))
        # a registered buffer (the class weights) read from _buffers: what
        # getattr returns for it, without nn.Module.__getattr__'s Python
        # frame (most of a microsecond, paid at every training step)
        buffers = self._buffers
        for a in attrs:
            v = buffers.get(a, _NOT_A_BUFFER)
            args[a] = getattr(self, a) if v is _NOT_A_BUFFER else v
        return _core.call(fn_name, args)

    doc = _class_doc(cls_name, fn_name, attrs)
    return type(cls_name, (base,), {"forward": forward, "__doc__": doc,
                                    "__module__": __name__})


__all__ = ["empty_cache", "functional", "is_accelerated"]
for _cls, _fn in _CLASSES.items():
    if hasattr(functional, _fn):
        globals()[_cls] = _make_class(_cls, _fn)
        __all__.append(_cls)
del _cls, _fn

_MONAI_CLASSES = ("DiceLoss", "GeneralizedDiceLoss", "TverskyLoss", "FocalLoss", "DiceCELoss",
                  "DiceFocalLoss", "GeneralizedDiceFocalLoss")
_monai_cache = {}
_DISTANCE_CLASSES = ("HausdorffDTLoss", "LogHausdorffDTLoss", "BoundaryLoss")
_distance_cache = {}


def __getattr__(name):
    """MONAI-named classes (the Dice family's and the distance losses'), created on
    first use (imports MONAI then)."""
    if name in _MONAI_CLASSES:
        import fastloss

        if not hasattr(fastloss, "dice_ce_loss"):
            raise AttributeError(f"fastloss.torch.{name} needs fastloss's segmentation losses")
        if not _monai_cache:
            from fastloss.torch import _monai

            _monai_cache.update(_monai.make_classes())
        return _monai_cache[name]
    if name in _DISTANCE_CLASSES:
        if not _distance_cache:
            from fastloss.torch import _distance

            _distance_cache.update(_distance.make_classes())
        return _distance_cache[name]
    raise AttributeError(f"module 'fastloss.torch' has no attribute {name!r}")
