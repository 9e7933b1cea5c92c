"""The one mechanism behind every ``fastloss.torch`` function.

Design:
A. A loss is described by a :class:`Spec` (a row of a table, not code):
   which arguments are tensors, which of them the fastloss kernel returns
   gradients for (``diff``), which gradients follow from those (``derived``,
   e.g. the target of ``mse_loss`` gets minus the input's), how a
   ``'none'`` output maps onto the input (``none``: per element, per
   position of the class axis 1, or per row of the last axis), and the
   torch implementation with the same semantics (``fallback``).  A
   ``variadic`` spec takes one sequence of tensors (the penalties' arrays).
B. The fast path hands CPU float32/float64 tensors to the NumPy API without
   copying: one C pass (``fastloss._tensor_views.call``) makes every
   check on the tensors and builds the arrays ``tensor.numpy()`` would give,
   views of their storage (a non-contiguous view is accepted and copied
   once by fastloss only when its kernel needs it); what that pass declines
   takes the same checks in Python.  Per call, a (8, 10) batch's forward
   pays about 1 us a tensor there, the kernel, two ``torch.from_numpy`` and
   the autograd node's C entry.
   The gradient is asked for, and computed in the same pass as the loss,
   only when grad mode is on and some input requires grad.
C. Backward multiplies the kernel's gradient by ``grad_output``: a scalar
   for 'mean'/'sum'; for 'none' the kernel's gradient of the sum times
   ``grad_output`` broadcast over the axes a 'none' output does not have
   (exact because each 'none' output depends on its own element / row).
   In eager mode the multiplication is done in place on the kernel's buffer
   (skipped when grad_output is 1), so backward costs no extra pass; a
   second backward through a retained graph recomputes the gradient from
   the saved inputs.
D. Everything else (CUDA, MPS, tensor subclasses, mixed float dtypes,
   options fastloss does not have, a tensor requiring grad that the kernel
   has no gradient for) runs ``fallback`` unchanged, so results and
   autograd match torch everywhere.
G. float16 and bfloat16 tensors (CPU autocast's logits) take the fast path
   of the losses in eager mode: the kernels read their storage in its own
   width (bfloat16 as the ml_dtypes NumPy dtype, viewed, not copied; without
   ml_dtypes installed, bfloat16 runs ``fallback``), compute in float32 and
   return the loss in float32 (as autocast's loss ops do) and the gradient
   in the tensor's dtype.
F. Gradient buffers are recycled by the NumPy API itself (fastloss._buffers):
   the kernel's gradient array stays referenced by the torch tensor that
   wraps it until autograd is done with it, and the next call of the same
   shape and dtype writes into it once nothing references it any more.  A
   training loop thus pays the first touch of fresh memory once instead of
   every step; a gradient that is still in use (kept as ``.grad``, returned
   by ``autograd.grad``) is never written.  :func:`empty_cache` drops the
   kept arrays.
E. Under ``torch.compile`` the same computation is a ``torch.library``
   custom op (``fastloss::<name>``) with a fake implementation (output
   shapes only) and a registered backward made of torch ops, so the graph
   is captured without breaks and the kernel runs as one opaque node.
"""

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import fastloss
from fastloss import _tensor_views

__all__ = ["Spec", "call", "empty_cache", "is_accelerated", "register"]

FAST_DTYPES = (torch.float32, torch.float64)
try:  # the NumPy dtype through which the kernels read bfloat16 storage
    import ml_dtypes as _ml_dtypes

    _BF16 = np.dtype(_ml_dtypes.bfloat16)
    HALF_DTYPES = (torch.float16, torch.bfloat16)
except ImportError:
    _BF16 = None
    HALF_DTYPES = (torch.float16,)
REGISTRY = {}
_TENSOR_NAMES = {}  # spec name -> its tensor argument names, as a set
_GRADABLE = {}      # spec name -> the tensor arguments that may require grad on the fast path
_TABLES = {}        # spec name -> its row for _tensor_views.call (see register)


@dataclass(frozen=True)
class Spec:
    name: str
    """Public name in ``fastloss.torch.functional`` (and of the custom op)."""
    tensors: tuple
    """Names of the tensor arguments, in signature order."""
    diff: tuple
    """Tensor arguments the fastloss function returns gradients for, in its return order."""
    none: str | None
    """How a 'none' output maps onto the input: 'elem', 'class' (axis 1 removed),
    'last' (last axis removed), or None ('none' always runs ``fallback``)."""
    fallback: Callable
    """Torch implementation with the same signature and semantics."""
    fl_name: str = ""
    """fastloss function (default: ``name``)."""
    derived: dict = field(default_factory=dict)
    """Tensor argument -> function(grads by name) giving its gradient."""
    accept: Callable | None = None
    """function(args) -> bool: extra conditions for the fast path."""
    to_fastloss: Callable | None = None
    """function(kwargs) -> kwargs: rename / drop arguments for the fastloss call."""
    same_shape: tuple = ()
    """Tensor arguments that must have the first tensor's shape on the fast path."""
    variadic: bool = False
    """The tensors are one sequence argument (``tensors[0]``, e.g. the arrays
    of a penalty), passed positionally and all differentiable."""


def _diff(spec, names):
    """The tensor arguments the kernel returns gradients for."""
    return names if spec.variadic else spec.diff


def neg_input(g):
    """A Spec's derived gradient: the target's is minus the input's."""
    return -g["input"]


def index_target(args):
    """A Spec's accept test: class-index (integer) targets only."""
    return not args["target"].is_floating_point()


def register(spec):
    """Add a spec to the registry and create its custom op; returns the spec."""
    REGISTRY[spec.name] = spec
    _TENSOR_NAMES[spec.name] = frozenset(spec.tensors)
    _GRADABLE[spec.name] = frozenset(spec.diff) | frozenset(spec.derived)
    # the spec as _tensor_views.call reads it: the names the C pass checks,
    # the fastloss function, the spec's own conditions (_accept's), the
    # argument map, and what the autograd node needs
    _TABLES[spec.name] = (spec, _TENSOR_NAMES[spec.name], _GRADABLE[spec.name],
                          spec.fl_name or spec.name, spec.same_shape, spec.none is not None,
                          spec.accept, spec.to_fastloss, spec.variadic,
                          spec.diff[0] if spec.diff else None)
    _make_op(spec)
    return spec


_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def _plain(t, compiling=False):
    if compiling:  # traced by dynamo: the op sees real tensors later
        return t.device.type == "cpu" and t.layout == torch.strided
    return (
        type(t) in _PLAIN_TYPES
        and t.is_cpu
        and t.layout == torch.strided
        and not t.is_conj()
        and not t.is_neg()
        and not _is_wrapped(t)
    )


def is_accelerated(*tensors: torch.Tensor | None) -> bool:
    """True when fastloss's CPU kernels serve these tensors (else torch's code runs).

    The kernels serve plain strided CPU tensors of dtype float32 or float64
    (all floating tensors of one call sharing the dtype) together with
    integer tensors of any width (class indices).  Tensors on other devices
    (CUDA, MPS, ...), complex, sparse and wrapped tensors (vmap/grad
    transforms, tensor subclasses) run torch's own implementation.  The
    losses of ``fastloss.torch.functional`` (and their modules) also serve
    float16 and bfloat16 tensors in eager mode (bfloat16 when ml_dtypes is
    installed): computed in float32, the loss returned in float32 and the
    gradient in the tensor's dtype; this function answers for float32 and
    float64, which every fastloss.torch entry serves.  ``None`` entries are
    ignored.

    Parameters
    ----------
    *tensors : torch.Tensor or None
        The tensors of one call.

    Returns
    -------
    bool

    Examples
    --------
    >>> import torch, fastloss.torch as ft
    >>> ft.is_accelerated(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))
    True
    >>> ft.is_accelerated(torch.zeros(4, 3, dtype=torch.bfloat16))
    False
    """
    return _accelerated(tensors, torch.compiler.is_compiling())


def _accelerated(tensors, compiling, half=False):
    """is_accelerated; with ``half``, float16 / bfloat16 tensors too (the losses of call())."""
    if compiling:
        return _accelerated_traced(tensors, half)
    floats = _HALF_OK if half else _FLOAT_OK
    fdtype = None
    for t in tensors:
        if t is None:
            continue
        # _plain(t), inlined: this runs on every call of every loss.  The
        # conjugate and negative bits need no test here: _run reads tensors
        # with numpy(force=True), which resolves them (bfloat16, read
        # through an int16 view, is tested)
        if type(t) not in _PLAIN_TYPES or not t.is_cpu or t.layout != _STRIDED or _is_wrapped(t):
            return False
        d = t.dtype
        if d == _BF16_TORCH and (t.is_conj() or t.is_neg()):
            return False
        if d.is_floating_point:
            if d not in floats or (fdtype is not None and d != fdtype):
                return False
            fdtype = d
        elif d.is_complex:
            return False
    return fdtype is not None


def _accelerated_traced(tensors, half):
    fdtype = None
    for t in tensors:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor) or not _plain(t, True):
            return False
        d = t.dtype
        if d.is_floating_point:
            if ((d not in FAST_DTYPES and not (half and d in HALF_DTYPES))
                    or (fdtype is not None and d != fdtype)):
                return False
            fdtype = d
        elif d.is_complex:
            return False
    return fdtype is not None


_STRIDED = torch.strided
_BF16_TORCH = torch.bfloat16
_FLOAT_OK = frozenset(FAST_DTYPES)
_HALF_OK = frozenset(FAST_DTYPES + HALF_DTYPES)

# The fast pass of call(): the dtypes it views (those numpy(force=True)
# gives, and bfloat16 as ml_dtypes' dtype); anything else takes the
# Python pass.
_tensor_views.init(torch.Tensor, torch.nn.Parameter, _STRIDED, _is_wrapped, {
    td: np.dtype(nd).num for td, nd in (
        (torch.float32, np.float32), (torch.float64, np.float64), (torch.float16, np.float16),
        (torch.int64, np.int64), (torch.int32, np.int32), (torch.int16, np.int16),
        (torch.int8, np.int8), (torch.uint8, np.uint8), (torch.bool, np.bool_),
        *(((torch.bfloat16, _BF16),) if _BF16 is not None else ()))})
_is_compiling = torch.compiler.is_compiling


def _np(t):
    """A tensor's data as a NumPy array viewing its storage (bfloat16: ml_dtypes')."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_BF16)
    return t.numpy()


def _to_torch(a):
    a = np.asarray(a)
    if not a.flags.writeable:
        a = a.copy()
    if a.dtype == _BF16 and _BF16 is not None:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def empty_cache() -> None:
    """Drop the gradient arrays fastloss keeps for reuse (``fastloss.empty_gradient_cache``).

    Each gradient the kernels return (one array the size of the input) is
    kept once autograd no longer uses it, and the next gradient of the same
    shape and dtype is written into it: a training loop then does not pay
    the operating system's first touch of fresh memory at every step.  An
    array that anything else still references is never reused.

    Returns
    -------
    None

    Examples
    --------
    >>> import fastloss, fastloss.torch as ft
    >>> ft.empty_cache()
    >>> fastloss.get_gradient_cache()[1]
    0
    """
    fastloss.empty_gradient_cache()


def _run(spec, names, tensors, opts, need_grad):
    """Call the fastloss function; return (loss tensor, tuple of gradient tensors)."""
    return _kernel(_TABLES[spec.name], names, _views(names, tensors, opts), need_grad)


def _views(names, tensors, opts):
    """The fastloss function's keyword arguments: ``opts`` and the tensors' NumPy views."""
    kw = dict(opts)
    for n, t in zip(names, tensors):
        kw[n] = t.numpy(force=True) if t.dtype is not _BF16_TORCH else _np(t)
    return kw


_kernel = _tensor_views.kernel  # (table, names, kw, need_grad) -> (loss, gradients)


def _go_view(spec, reduction, go, g):
    """grad_output shaped to broadcast against a gradient ``g`` of an input."""
    if reduction == "none" and g.dim() > go.dim():
        if spec.none == "class":
            return go.unsqueeze(1) if g.dim() >= 2 else go
        if spec.none == "last":
            return go.unsqueeze(-1)
    return go


def _grads_out(spec, names, reduction, grads, go, needs, inplace):
    """The gradient of every tensor argument (None where not needed)."""
    by_name = {}
    for n, g in zip(_diff(spec, names), grads):
        gv = _go_view(spec, reduction, go, g)
        if inplace:
            if gv.dim() == 0:
                v = gv.item()
                if v != 1.0:
                    g.mul_(v)
            else:
                g.mul_(gv)
        else:
            g = g * gv
        by_name[n] = g
    out = []
    for n, need in zip(names, needs):
        if not need:
            out.append(None)
        elif n in by_name:
            out.append(by_name[n])
        else:
            out.append(spec.derived[n](by_name))
    return out


class _Fn(torch.autograd.Function):
    """Eager autograd node around a loss already computed with its gradient.

    ``call`` runs the kernel first (loss and gradient in one pass) and
    hands the node ``done`` = [state, gnames, grads, loss, simple], state =
    (spec, names, tensors, opts, versions), with only the tensors that
    require grad as inputs: the node's forward merely keeps ``done`` and
    returns the loss (taken out of ``done``), so the autograd layer costs
    what an empty Function costs; backward sets ``done[2]`` to None once the
    gradients are used.
    ``tensors`` and their version counters are kept for a second backward
    through a retained graph (which recomputes the gradient), so that an
    input modified in place in between raises as ``save_for_backward``
    would; keeping them as plain references costs nothing in the usual
    single backward.
    """

    @staticmethod
    def forward(ctx, done, *inputs):
        ctx.done = done  # one attribute: each costs a dict store in the C entry
        # the loss leaves done: its grad_fn is this node, and a node holding
        # its own output is a reference cycle, freed only by the cyclic GC
        loss, done[3] = done[3], None
        return loss

    @staticmethod
    def backward(ctx, go):
        done = ctx.done
        grads = done[2]
        if grads is not None and done[4] and go.dim() == 0 and not _grad_enabled():
            # the usual case, one differentiable input (the kernel's only
            # gradient) and a scalar loss: the gradient scaled in place
            done[2] = None
            g = grads[0]
            v = go.item()
            if v != 1.0:
                g.mul_(v)
            return None, g
        if _grad_enabled():  # create_graph=True: the gradient is not differentiable
            return _backward_once(ctx, go)
        return _backward(ctx, go)


_grad_enabled = torch.is_grad_enabled


def _backward(ctx, go):
    done = ctx.done
    spec, names, tensors, opts, versions = done[0]
    grads, done[2] = done[2], None
    if grads is None:  # a second backward through a retained graph
        if [t._version for t in tensors] != versions:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by "
                "an inplace operation (an input of fastloss's " + spec.name + ")")
        _, grads = _run(spec, names, tensors, opts, True)
    gnames = done[1]
    needs = [n in gnames for n in names]
    out = _grads_out(spec, names, opts.get("reduction"), grads, go, needs, True)
    return (None, *[g for g, need in zip(out, needs) if need])


_backward_once = torch.autograd.function.once_differentiable(_backward)


# The engine runs a Python node through its class's ``apply``, which in
# torch's BackwardCFunction looks up ``backward`` against ``vjp`` and a
# boxed-call flag at every call (about 1.5 us of a (8, 10) batch's step).
# _Fn defines neither vjp nor the flag, so its node's apply is backward.
if getattr(_Fn, "_backward_cls", None) is not None and (
        _Fn._backward_cls.apply is torch.autograd.function.BackwardCFunction.apply):
    _Fn._backward_cls.apply = _Fn.backward

# Function.apply's Python layer only unwraps dead functorch wrappers, which
# the fast path never sees (_plain): without active transforms the C
# entry is called directly.
_apply_c = super(torch.autograd.Function, _Fn).apply
_transforms_active = torch._C._are_functorch_transforms_active

# the call's kernel-and-node step, in the C module with the tensor pass
_tensor_views.init_call(fastloss, torch.from_numpy, _to_torch, _BF16, _apply_c, _Fn.apply,
                        _transforms_active)
_fast_call = _tensor_views.call
_finish = _tensor_views.finish
_FALLBACK = _tensor_views.FALLBACK


# ---- torch.compile: one custom op per spec -------------------------------------

@functools.lru_cache(maxsize=512)
def _decode(opts):
    names, items = ast.literal_eval(opts)
    return names, items


def _loss_shape(spec, reduction, x):
    if reduction != "none":
        return ()
    if spec.none == "elem":
        return tuple(x.shape)
    if spec.none == "class":
        return tuple(x.shape[:1]) + tuple(x.shape[2:]) if x.dim() >= 2 else ()
    return tuple(x.shape[:-1])


def _make_op(spec):
    qualname = f"fastloss::{spec.name}"

    def impl(tensors: list[torch.Tensor], opts: str, need_grad: bool) -> list[torch.Tensor]:
        names, items = _decode(opts)
        loss, grads = _run(spec, names, tensors, items, need_grad)
        if not need_grad:
            grads = tuple(tensors[0].new_empty(0) for _ in _diff(spec, names))
        return [loss, *grads]

    op = torch.library.custom_op(qualname, impl, mutates_args=())

    def fake(tensors, opts, need_grad):
        names, items = _decode(opts)
        by = dict(zip(names, tensors))
        x = tensors[0]
        loss = x.new_empty(_loss_shape(spec, dict(items).get("reduction"), x))
        diff = _diff(spec, names)
        if need_grad:
            grads = [torch.empty_like(by[n], memory_format=torch.contiguous_format) for n in diff]
        else:
            grads = [x.new_empty(0) for _ in diff]
        return [loss, *grads]

    op.register_fake(fake)

    def setup_context(ctx, inputs, output):
        tensors, opts, need_grad = inputs
        ctx.names, items = _decode(opts)
        ctx.reduction = dict(items).get("reduction")
        ctx.save_for_backward(*output[1:])

    def backward(ctx, grads_out):
        diff = _diff(spec, ctx.names)
        out = _grads_out(spec, ctx.names, ctx.reduction, ctx.saved_tensors, grads_out[0],
                         [n in diff or n in spec.derived for n in ctx.names], False)
        return out, None, None

    op.register_autograd(backward, setup_context=setup_context)
    spec_ops[spec.name] = op


spec_ops = {}


# ---- the entry point of every functional wrapper ------------------------------

def legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    from torch.nn import _reduction

    return _reduction.legacy_get_string(size_average, reduce, emit_warning=False)


def call(name, args):
    """Run loss ``name`` on ``args`` (a dict of its torch-named arguments).

    ``args`` holds the tensors and options (``reduction`` already resolved
    from the legacy size_average/reduce); chooses the fast path or the
    fallback as described in the module docstring.  Written for the
    per-call cost of small batches (every Python step here is paid at each
    training step): one C entry (``_tensor_views.call``) makes the checks
    of ``_accelerated`` and the spec's own (``_accept``), takes the tensors'
    NumPy views, runs the kernel and enters the autograd node through its
    C entry; the same steps in Python serve what that pass declines.
    """
    table = _TABLES[name]
    spec = table[0]
    if spec.variadic:
        return _call_variadic(spec, args)
    if _is_compiling():
        return _call_traced(spec, args, table[1])
    grad_on = _grad_enabled()
    out = _fast_call(args, table, grad_on)
    if out is None:  # tensors the C pass does not take: the same steps in Python
        r = _prepare_general(args, table[1], table[2], grad_on)
        if r is None:
            return spec.fallback(**args)
        names, tensors, versions, inputs, gnames, opts, kw = r
        if not _accept(spec, args, names, tensors, opts, True):
            return spec.fallback(**args)
        return _finish(table, names, tensors, versions, inputs, gnames, opts, kw)
    if out is _FALLBACK:
        return spec.fallback(**args)
    return out


def _prepare_general(args, tnames, gradable, grad_on):
    """_tensor_views.prepare in Python, for what the C pass does not take:
    the same checks and the same result, None where the call is one the
    kernels cannot serve (it then runs the fallback)."""
    # _accelerated(tensors, False, half=True) inlined.  The conjugate and
    # negative bits need no test: numpy(force=True) resolves them, except
    # for bfloat16's int16 view.
    fdtype = None
    present, tensors, inputs, gnames = [], [], [], []
    opts, kw = {}, {}
    for n, t in args.items():
        if n not in tnames:
            opts[n] = kw[n] = t
            continue
        if t is None:
            continue
        if (type(t) not in _PLAIN_TYPES or not t.is_cpu or t.layout != _STRIDED
                or _is_wrapped(t)):
            return None
        d = t.dtype
        if d.is_floating_point:
            if d not in _HALF_OK or (fdtype is not None and d != fdtype):
                return None
            if d == _BF16_TORCH:
                if t.is_conj() or t.is_neg():
                    return None
                kw[n] = _np(t)
            else:
                kw[n] = t.numpy(force=True)
            fdtype = d
        elif d.is_complex:
            return None
        else:
            kw[n] = t.numpy(force=True)
        if grad_on and t.requires_grad:
            if n not in gradable:
                return None
            inputs.append(t)
            gnames.append(n)
        present.append(n)
        tensors.append(t)
    if fdtype is None:
        return None
    versions = [t._version for t in tensors] if inputs else None
    return tuple(present), tensors, versions, inputs, gnames, opts, kw


def _call_traced(spec, args, tnames):
    """call() while dynamo traces: the custom op, or the fallback."""
    present = [n for n, v in args.items() if n in tnames and v is not None]
    tensors = [args[n] for n in present]
    opts = {n: v for n, v in args.items() if n not in tnames}
    if not _accept(spec, args, present, tensors, opts, _accelerated(tensors, True)):
        return spec.fallback(**args)
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return spec_ops[spec.name](tensors, repr((tuple(present), tuple(sorted(opts.items())))),
                               need_grad)[0]


def _accept(spec, args, present, tensors, opts, accelerated):
    """The spec's own conditions for the fast path, on top of ``_accelerated``:
    ``_tensor_views.conditions`` in Python, which dynamo can trace."""
    return (
        accelerated
        and (not spec.same_shape
             or all(args[n].shape == tensors[0].shape for n in spec.same_shape if n in present))
        and (spec.none is not None or opts.get("reduction") != "none")
        and (spec.accept is None or spec.accept(args))
    )


def _dispatch(spec, names, tensors, opts, need_grad, compiling):
    """The fast path's last step for a checked call: the custom op (compiling),
    the kernel alone (no gradient), or the autograd node."""
    if compiling:
        return spec_ops[spec.name](tensors, repr((names, tuple(sorted(opts.items())))),
                                   need_grad)[0]
    if not need_grad:
        return _run(spec, names, tensors, opts, False)[0]
    inputs = [t for t in tensors if t.requires_grad]
    gnames = [n for n, t in zip(names, tensors) if t.requires_grad]
    return _node(spec, names, tensors, opts, inputs, gnames)


def _node(spec, names, tensors, opts, inputs, gnames):
    """Run the kernel with its gradient and return the loss from the autograd
    node whose inputs are ``inputs`` (the tensors named ``gnames``, those that
    require grad): through its C entry unless functorch transforms are active."""
    return _finish(_TABLES[spec.name], tuple(names), list(tensors),
                   [t._version for t in tensors], list(inputs), list(gnames), dict(opts),
                   _views(names, tensors, opts))


def _call_variadic(spec, args):
    """call() for a loss of one sequence of tensors (the penalties)."""
    tensors = list(args[spec.tensors[0]])
    present = [f"{spec.tensors[0]}{i}" for i in range(len(tensors))]
    opts = {n: v for n, v in args.items() if n != spec.tensors[0]}
    compiling = torch.compiler.is_compiling()
    if (not _accelerated(tensors, compiling, half=not compiling)
            or opts.get("reduction") == "none"):
        return spec.fallback(*tensors, **opts)
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return _dispatch(spec, tuple(present), tensors, opts, need_grad, compiling)
