"""The tensor checks and NumPy views of ``fastloss.torch``'s calls, in one C pass.

Compiled once (no hot loop).  torch is not imported here: ``init`` receives
the few torch objects the checks compare with, so the module builds and
imports without torch.  Every tensor this pass does not take (a dtype
outside ``init``'s table, bfloat16 included; a tensor subclass; a null or
negative-bit storage; more than 32 dimensions) makes ``prepare`` return
None, and the caller's Python path decides, with its own messages.
"""

cimport numpy as cnp
from cpython.long cimport PyLong_AsVoidPtr

cnp.import_array()

cdef object _TENSOR = None, _PARAMETER = None, _STRIDED = None, _WRAPPED = None
cdef dict _TYPENUM = {}   # torch dtype -> NumPy type number
cdef enum:
    MAX_DIMS = 32


def init(tensor_type, parameter_type, strided, is_wrapped, dict typenums):
    """Set the torch objects ``prepare`` compares with: the two plain tensor
    types, the strided layout, functorch's wrapped-tensor test, and
    {torch dtype: NumPy type number} of the dtypes viewed."""
    global _TENSOR, _PARAMETER, _STRIDED, _WRAPPED
    _TENSOR, _PARAMETER, _STRIDED, _WRAPPED = tensor_type, parameter_type, strided, is_wrapped
    _TYPENUM.clear()
    _TYPENUM.update(typenums)


cdef object _view(object t, int typenum):
    """A writeable NumPy array over ``t``'s elements (what ``t.numpy()``
    gives), its base the tensor itself; None for a null storage."""
    cdef cnp.npy_intp dims[MAX_DIMS]
    cdef cnp.npy_intp strides[MAX_DIMS]
    cdef tuple shape = <tuple>t.shape   # torch.Size is a tuple
    cdef tuple stride
    cdef Py_ssize_t i, nd = len(shape), item
    cdef void* data
    if nd > MAX_DIMS:
        return None
    data = PyLong_AsVoidPtr(t.data_ptr())
    if data == NULL:
        return None
    stride = t.stride()
    item = cnp.PyArray_DescrFromType(typenum).itemsize
    for i in range(nd):
        dims[i] = shape[i]
        strides[i] = <cnp.npy_intp>stride[i] * item
    arr = cnp.PyArray_New(cnp.ndarray, <int>nd, dims, typenum, strides, data, 0,
                          cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_ALIGNED, None)
    cnp.Py_INCREF(t)
    cnp.PyArray_SetBaseObject(arr, t)
    return arr


def prepare(dict args, frozenset tensor_names, frozenset gradable, bint grad_on):
    """One pass over a loss's arguments (torch names -> values).

    Returns (names, tensors, versions, inputs, gnames, opts, kw): the names
    of the tensors given (a tuple), the tensors and their version counters
    (None when no tensor requires grad), those of them that require grad
    (with grad mode on) and their names, the
    other arguments, and the fastloss function's keyword arguments (the
    other arguments and a NumPy view of each tensor); None unless every
    tensor is a plain strided CPU tensor of a viewed dtype, not wrapped,
    without the negative bit, the floating ones of one dtype (at least one),
    and every tensor requiring grad is in ``gradable``.
    """
    return _prepare(args, tensor_names, gradable, grad_on)


cdef object _prepare(dict args, frozenset tensor_names, frozenset gradable, bint grad_on):
    cdef list present = [], tensors = [], inputs = [], gnames = []
    cdef list versions = None
    cdef dict opts = {}, kw = {}
    cdef object fdtype = None, d, num, arr
    for n, t in args.items():
        if n not in tensor_names:
            opts[n] = t
            kw[n] = t
            continue
        if t is None:
            continue
        if ((type(t) is not _TENSOR and type(t) is not _PARAMETER) or not t.is_cpu
                or t.layout is not _STRIDED or _WRAPPED(t) or t.is_neg()):
            return None
        d = t.dtype
        num = _TYPENUM.get(d)
        if num is None:
            return None
        if d.is_floating_point:
            if fdtype is not None and d is not fdtype:
                return None
            fdtype = d
        arr = _view(t, num)
        if arr is None:
            return None
        kw[n] = arr
        if grad_on and t.requires_grad:
            if n not in gradable:
                return None
            inputs.append(t)
            gnames.append(n)
        present.append(n)
        tensors.append(t)
    if fdtype is None:
        return None
    if inputs:  # the autograd node checks them before a second backward
        versions = [t._version for t in tensors]
    return tuple(present), tensors, versions, inputs, gnames, opts, kw


# ------------------------------------------------------------ the fast path of a call

cdef object _FL = None, _FROM_NUMPY = None, _TO_TORCH = None, _BF16 = None
cdef object _APPLY_C = None, _FN_APPLY = None, _TRANSFORMS_ACTIVE = None
FALLBACK = object()  # call(): the spec's conditions send this call to torch's code


def init_call(fastloss_module, from_numpy, to_torch, bf16, apply_c, fn_apply, transforms_active):
    """Set what ``kernel`` and ``call`` use: the fastloss package (its loss
    functions are looked up at each call), torch.from_numpy, fastloss.torch's
    array-to-tensor conversion (read-only and bfloat16 arrays), ml_dtypes'
    bfloat16 dtype (or None), the autograd node's C entry, its Python entry
    (functorch transforms active) and the test for active transforms."""
    global _FL, _FROM_NUMPY, _TO_TORCH, _BF16, _APPLY_C, _FN_APPLY, _TRANSFORMS_ACTIVE
    _FL, _FROM_NUMPY, _TO_TORCH, _BF16 = fastloss_module, from_numpy, to_torch, bf16
    _APPLY_C, _FN_APPLY, _TRANSFORMS_ACTIVE = apply_c, fn_apply, transforms_active


cdef object _loss_tensor(object loss):
    """The loss as a tensor: a NumPy scalar (a reduced loss) becomes a fresh
    0-d array first."""
    if type(loss) is cnp.ndarray:
        return _TO_TORCH(loss)
    return _FROM_NUMPY(cnp.PyArray_FROM_O(loss))


def kernel(tuple table, tuple names, dict kw, bint need_grad):
    """Call the spec's fastloss function on ``kw`` (the options and the
    tensors' NumPy views; consumed): (loss tensor, tuple of gradient
    tensors, empty without ``need_grad``).  ``table``: fastloss.torch's
    row for the spec (its _TABLES entry)."""
    cdef object to_fl = table[7], loss, grads
    cdef tuple pos = ()
    if to_fl is not None:
        kw = to_fl(kw)
    fn = getattr(_FL, table[3])
    if table[8]:  # variadic: the arrays positionally
        pos = tuple([kw.pop(n) for n in names])
    if not need_grad:
        return _loss_tensor(fn(*pos, **kw)), ()
    kw["return_grad"] = True
    loss, grads = fn(*pos, **kw)
    if type(grads) is cnp.ndarray:
        if grads.dtype is not _BF16:
            return _loss_tensor(loss), (_FROM_NUMPY(grads),)
        return _loss_tensor(loss), (_TO_TORCH(grads),)
    return _loss_tensor(loss), tuple([_TO_TORCH(g) for g in grads])


def finish(tuple table, tuple names, list tensors, list versions, list inputs, list gnames,
           dict opts, dict kw):
    """A checked call's last step (``prepare``'s results): the loss alone
    when no tensor requires grad, else the loss from the autograd node made
    around the kernel's gradients (fastloss.torch._core._Fn)."""
    if not inputs:
        return kernel(table, names, kw, False)[0]
    loss, grads = kernel(table, names, kw, True)
    diff0 = names[0] if table[8] else table[9]
    simple = len(grads) == 1 and len(gnames) == 1 and gnames[0] == diff0
    done = [(table[0], names, tensors, opts, versions), gnames, grads, loss, simple]
    if _TRANSFORMS_ACTIVE():
        return _FN_APPLY(done, *inputs)
    return _APPLY_C(done, *inputs)


def conditions(dict args, tuple table, names, list tensors, dict opts):
    """The spec's own conditions for the fast path: the tensors named
    same-shape have the first tensor's shape, 'none' only where the spec
    maps it, and the spec's accept test (fastloss.torch._core._accept is
    the same test in Python, for what dynamo traces)."""
    cdef object shape0, accept = table[6]
    if table[4]:
        shape0 = tensors[0].shape
        for n in table[4]:
            if n in names and args[n].shape != shape0:
                return False
    if not table[5] and opts.get("reduction") == "none":
        return False
    return accept is None or bool(accept(args))


def call(dict args, tuple table, bint grad_on):
    """fastloss.torch's call() for the tensors ``prepare`` takes: the loss
    (from ``finish``), FALLBACK when the spec's own conditions send the call
    to torch's code, None when ``prepare`` declines (the caller's Python
    pass decides).  ``table``: (spec, tensor names, gradable names, fastloss
    function name, same-shape names, 'none' supported, accept test or None,
    argument map or None, variadic, first differentiable name)."""
    cdef object r = _prepare(args, table[1], table[2], grad_on)
    if r is None:
        return None
    if not conditions(args, table, r[0], r[1], r[5]):
        return FALLBACK
    return finish(table, r[0], r[1], r[2], r[3], r[4], r[5], r[6])
