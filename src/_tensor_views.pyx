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
