# The prepared call's C side: argument checks that read only an object's
# type and an array's header, shared by every kernel module's `*_call`
# entry.
#
# Design:
# A. A public function first offers its arguments to its module's `*_call`
#    entry.  That entry accepts the common case (ndarrays of a kernel
#    dtype, C-contiguous, aligned, native byte order; options of their
#    plain Python types) and runs the kernel with no Python layer in
#    between.  Anything else, including every argument that would raise,
#    makes it return `None`, and the Python wrapper takes its full path,
#    which owns every error message.  So the fast path never decides an
#    error, and both paths call the same unit kernels: same bits.
# B. A call whose work fits in one work unit runs on the calling thread
#    without an OpenMP region (the `nt == 1` branch of each driver);
#    n_threads is resolved only when there is more than one unit to share.

cimport numpy as cnp

from libc.math cimport isnan
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport malloc

cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void* data, cnp.dtype descr, object base)
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void* descr,
                                int subok)


# Gradients and outputs from this size up come from fastloss._buffers
# (MIN_BYTES there); below it they are new arrays, as in the full path.
cdef enum:
    FRESH_BYTES = 1 << 20


cdef enum:
    RED_MEAN = 0
    RED_SUM = 1
    RED_NONE = 2


cdef inline int fc_reduction(object reduction) noexcept:
    """RED_* for 'mean', 'sum', 'none'; -1 for anything else."""
    if type(reduction) is not str:
        return -1
    if reduction == "mean":
        return RED_MEAN
    if reduction == "sum":
        return RED_SUM
    if reduction == "none":
        return RED_NONE
    return -1


cdef inline bint fc_plain(object a) noexcept:
    """An ndarray (not a subclass), C-contiguous, aligned, native byte order."""
    if type(a) is not cnp.ndarray:
        return False
    return (cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a))


cdef inline int fc_float(object a) noexcept:
    """NPY_FLOAT / NPY_DOUBLE for a plain float32 / float64 array, else -1."""
    cdef int t
    if not fc_plain(a):
        return -1
    t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    return t if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE else -1


cdef enum:
    LBL_U8 = 1
    LBL_I8 = 2
    LBL_I16 = 3
    LBL_I32 = 4
    LBL_I64 = 5


cdef inline int fc_labels(object a) noexcept:
    """LBL_* for a plain integer array of a width the kernels read (uint8,
    int8, int16, int32, int64), else -1."""
    cdef int t
    cdef Py_ssize_t size
    if not fc_plain(a):
        return -1
    t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    size = cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)
    if t == cnp.NPY_UBYTE:
        return LBL_U8
    if (t != cnp.NPY_BYTE and t != cnp.NPY_SHORT and t != cnp.NPY_INT
            and t != cnp.NPY_LONG and t != cnp.NPY_LONGLONG):
        return -1
    if size == 1:
        return LBL_I8
    if size == 2:
        return LBL_I16
    if size == 4:
        return LBL_I32
    return LBL_I64 if size == 8 else -1


cdef inline const int64_t* fc_labels64(cnp.ndarray ta, bint bool_ok, Py_ssize_t n,
                                       int64_t** owned) noexcept:
    """The n labels of ta as int64, for a kernel instantiated for one label
    width: ta's data if int64, else a widened copy in *owned (malloc'ed, the
    caller frees it; NULL otherwise).  NULL for a dtype fc_labels does not
    take (bool taken where bool_ok) or no memory.  For row kernels, whose
    rows outweigh their labels; the class-axis kernels read every width."""
    cdef int lt = fc_labels(ta)
    cdef const void* p = cnp.PyArray_DATA(ta)
    cdef Py_ssize_t i
    cdef int64_t* out
    owned[0] = NULL
    if lt == LBL_I64:
        return <const int64_t*>p
    if lt < 0 and not (bool_ok and cnp.PyArray_TYPE(ta) == cnp.NPY_BOOL):
        return NULL
    out = <int64_t*>malloc((n if n > 0 else 1) * sizeof(int64_t))
    if out == NULL:
        return NULL
    if lt == LBL_I32:
        for i in range(n):
            out[i] = (<const int32_t*>p)[i]
    elif lt == LBL_I16:
        for i in range(n):
            out[i] = (<const int16_t*>p)[i]
    elif lt == LBL_I8:
        for i in range(n):
            out[i] = (<const int8_t*>p)[i]
    else:  # uint8, bool
        for i in range(n):
            out[i] = (<const uint8_t*>p)[i]
    owned[0] = out
    return out


cdef inline bint fc_real(object v, double* out) noexcept:
    """A Python float, or an int (not bool) exact in a double (|v| <= 2^53);
    not NaN."""
    if type(v) is float:
        out[0] = <double>v
    elif type(v) is int and -(1 << 53) <= v <= (1 << 53):
        out[0] = <double>v
    else:
        return False
    return not isnan(out[0])


cdef inline bint fc_unit_float(object v, double* out) noexcept:
    """fc_real in [0, 1]."""
    cdef double d
    if not fc_real(v, &d) or d < 0.0 or d > 1.0:
        return False
    out[0] = d
    return True


cdef inline bint fc_threads_arg(object n_threads) noexcept:
    """None or a positive Python int: the values taken without resolving."""
    return n_threads is None or (type(n_threads) is int and n_threads > 0)


cdef inline bint fc_shape_is(cnp.ndarray a, cnp.ndarray b, int skip) noexcept:
    """a's shape equals b's with b's axis ``skip`` removed (skip < 0: equal)."""
    cdef int i, j = 0
    cdef int nb = cnp.PyArray_NDIM(b)
    if cnp.PyArray_NDIM(a) != (nb - 1 if 0 <= skip < nb else nb):
        return False
    for i in range(nb):
        if i == skip:
            continue
        if cnp.PyArray_DIM(a, j) != cnp.PyArray_DIM(b, i):
            return False
        j += 1
    return True


cdef inline bint fc_class_axis(cnp.ndarray xa, cnp.ndarray ta, Py_ssize_t* N, Py_ssize_t* C,
                               Py_ssize_t* S) noexcept:
    """(N, C, S) of scores with a class axis, (C,) or (N, C, d1, ...), whose
    labels ta have their shape without it; False for an empty or a
    mismatched pair."""
    cdef int i
    S[0] = 1
    if cnp.PyArray_NDIM(xa) == 0 or cnp.PyArray_SIZE(xa) == 0:
        return False
    if cnp.PyArray_NDIM(xa) == 1:
        N[0], C[0] = 1, cnp.PyArray_DIM(xa, 0)
        return cnp.PyArray_NDIM(ta) == 0
    N[0], C[0] = cnp.PyArray_DIM(xa, 0), cnp.PyArray_DIM(xa, 1)
    for i in range(2, cnp.PyArray_NDIM(xa)):
        S[0] *= cnp.PyArray_DIM(xa, i)
    return fc_shape_is(ta, xa, 1)


cdef inline object fc_scalar(double v, int typenum):
    """A NumPy scalar of the computation dtype (float32 rounds once, here)."""
    cdef float f
    if typenum == cnp.NPY_FLOAT:
        f = <float>v
        return PyArray_Scalar(&f, cnp.PyArray_DescrFromType(cnp.NPY_FLOAT), None)
    return PyArray_Scalar(&v, cnp.PyArray_DescrFromType(cnp.NPY_DOUBLE), None)


cdef inline object fc_result(int red, double total, double denom, int typenum,
                             object loss_arr, bint return_grad, object grad_arr):
    """The public result: 'none' -> loss_arr; 'mean' -> total / denom (IEEE: an
    empty denominator gives NaN or inf, as the full path); 'sum' -> total; with
    the gradient when asked."""
    if red == RED_NONE:
        loss = loss_arr
    elif red == RED_MEAN:
        loss = fc_scalar(total / denom, typenum)
    else:
        loss = fc_scalar(total, typenum)
    return (loss, grad_arr) if return_grad else loss


cdef inline object fc_empty_like(cnp.ndarray a, int typenum, void** data):
    """A new C-contiguous array of a's shape and dtype ``typenum``; its data in *data."""
    cdef object out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), typenum, 0)
    data[0] = cnp.PyArray_DATA(<cnp.ndarray>out)
    return out


cdef inline bint fc_apart(cnp.ndarray a, object b) noexcept:
    """a's bytes and b's do not overlap (b None: nothing to overlap; both
    contiguous, as the prepared calls' operands are)."""
    cdef char* lo
    cdef char* blo
    if b is None:
        return True
    lo = <char*>cnp.PyArray_DATA(a)
    blo = <char*>cnp.PyArray_DATA(<cnp.ndarray>b)
    return (lo + cnp.PyArray_NBYTES(a) <= blo
            or blo + cnp.PyArray_NBYTES(<cnp.ndarray>b) <= lo)


cdef inline object fc_grad_out(object g, cnp.ndarray xa, object a2, object a3):
    """The caller's grad_out for a prepared call: g itself where it is a plain
    writeable array of xa's dtype and shape, apart from xa and from a2 and
    a3 (the call's other arrays, or None); else None (the full path checks
    it and owns the messages); the kernels write the same values into it as
    into a new array."""
    cdef cnp.ndarray ga
    if not fc_plain(g):
        return None
    ga = <cnp.ndarray>g
    if (not cnp.PyArray_ISWRITEABLE(ga) or cnp.PyArray_TYPE(ga) != cnp.PyArray_TYPE(xa)
            or not fc_shape_is(ga, xa, -1)):
        return None
    if not (fc_apart(ga, xa) and fc_apart(ga, a2) and fc_apart(ga, a3)):
        return None
    return g


cdef inline tuple fc_outputs(cnp.ndarray xa, cnp.ndarray ta, int typenum, int red,
                             bint return_grad, void** lp, void** gp, object go,
                             bint* stream):
    """A prepared call's arrays, (losses, gradient): new 'none' losses of
    ta's shape, of dtype typenum (xa's), and fc_grad's gradient (None where
    not asked; their data in *lp, *gp; *stream as fc_grad's)."""
    loss = fc_empty_like(ta, typenum, lp) if red == RED_NONE else None
    grad = None
    stream[0] = False
    if return_grad:
        grad = fc_grad(xa, go, 1, gp, stream)
    return loss, grad


# ---------------------------------------------- half-precision operands

cdef inline bint fc_is_bf16(cnp.ndarray a) noexcept:
    """ml_dtypes' bfloat16: a 2-byte dtype of kind 'V' whose scalar type is
    named bfloat16 (by the type's name: NumPy computes a user dtype's
    ``name`` in Python, a microsecond a call)."""
    cdef cnp.dtype d = <cnp.dtype>cnp.PyArray_DESCR(a)
    return (cnp.PyArray_ITEMSIZE(a) == 2 and d.kind == b'V'
            and (<object>d.typeobj).__name__ == "bfloat16")


cdef inline int fc_operand_kind(cnp.ndarray a, Py_ssize_t n, str what) except -1:
    """The storage kind of an operand the wrapper has prepared: 0 (float32), 1
    (float16) or 2 (bfloat16, ml_dtypes', known by name), C-contiguous with n
    elements; anything else is a ValueError (an internal error)."""
    cdef int t = cnp.PyArray_TYPE(a)
    if cnp.PyArray_SIZE(a) != n or not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"fastloss internal error: {what} has the wrong size or layout")
    if t == cnp.NPY_FLOAT:
        return 0
    if t == cnp.NPY_FLOAT16:
        return 1
    if fc_is_bf16(a):
        return 2
    raise ValueError(f"fastloss internal error: {what} has dtype {a.dtype}")


cdef inline int fc_half(object a) noexcept:
    """1 (float16) or 2 (bfloat16) for a plain half-precision array, else -1."""
    if not fc_plain(a):
        return -1
    if cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_FLOAT16:
        return 1
    return 2 if fc_is_bf16(<cnp.ndarray>a) else -1


cdef inline object fc_empty_same(cnp.ndarray a, void** data):
    """A new C-contiguous array of a's shape and dtype (any dtype, half ones
    included); its data in *data."""
    cdef object out = PyArray_NewLikeArray(a, cnp.NPY_CORDER, NULL, 0)
    data[0] = cnp.PyArray_DATA(<cnp.ndarray>out)
    return out


cdef inline object fc_grad(cnp.ndarray xa, object go, int per_call, void** data,
                           bint* stream):
    """A prepared call's gradient of xa's shape and dtype, as the full path's
    _validate.grad_array chooses it: go (the caller's grad_out, taken by
    fc_grad_out) if not None, else a new array below FRESH_BYTES, else
    fastloss._buffers' (a kept array the caller dropped, or a new one;
    ``per_call`` arrays of this shape in the call).  Its data in *data;
    *stream: write it with non-temporal stores (a caller's or reused array
    of at least _buffers.stream_bytes(), from FRESH_BYTES up: its lines are
    out of the cache)."""
    cdef object g
    cdef bint reused = True
    if go is None and cnp.PyArray_NBYTES(xa) < FRESH_BYTES:
        stream[0] = False
        return fc_empty_same(xa, data)
    if go is None:
        from fastloss._buffers import gradient_array
        g, reused = gradient_array((<object>xa).shape, (<object>xa).dtype, per_call)
    else:
        g = go
    data[0] = cnp.PyArray_DATA(<cnp.ndarray>g)
    stream[0] = False
    if reused and cnp.PyArray_NBYTES(<cnp.ndarray>g) >= FRESH_BYTES:
        from fastloss._buffers import stream_bytes
        stream[0] = cnp.PyArray_NBYTES(<cnp.ndarray>g) >= stream_bytes()
    return g
