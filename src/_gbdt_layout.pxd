"""Moving a sub-block of _gbdt.pyx between the caller's layout and class
planes (design B-D of _gbdt.pyx): the margins read in place or transposed
into L1, and a finished block put out (copied or streamed); _gbdt.pyx's
`store` turns output planes back into the caller's layout with these."""

from libc.math cimport INFINITY
from libc.stdint cimport int32_t
from libc.string cimport memcpy

from _common cimport (
    fl_stream_f32, fl_stream_f64, floating, rows_to_planes, tr_rows,
)


cdef extern from "flgather.h" nogil:
    void gb_gather_f32(float* dst, const float* src, const int32_t* idx, Py_ssize_t n)
    void gb_gather_f64(double* dst, const double* src, const int32_t* idx, Py_ssize_t n)


cdef inline void gather(floating* dst, const floating* src, const int32_t* idx,
                        Py_ssize_t n) noexcept nogil:
    if floating is float:
        gb_gather_f32(dst, src, idx, n)
    else:
        gb_gather_f64(dst, src, idx, n)


cdef struct Geo:
    Py_ssize_t n, K
    Py_ssize_t xrs, xcs     # margins: element (i, k) at i*xrs + k*xcs
    Py_ssize_t yrs, ycs     # soft labels, likewise
    bint out_f32            # outputs are float32 (else float64)
    bint out_rows           # outputs are C-ordered (n, K) with K > 1 (else planes k*n + i)
    bint stream             # non-temporal stores
    Py_ssize_t rows         # rows per unit
    Py_ssize_t nb           # rows per sub-block
    const int32_t* tin      # C-ordered margins: plane position k*nb + j <- offset j*K + k
    const int32_t* tout     # C-ordered outputs: offset j*K + k <- plane position k*nb + j


# ----------------------------------------------------------- data movement

cdef inline const floating* planes_of(const floating* x, Py_ssize_t rs, Py_ssize_t cs,
                                      Py_ssize_t r0, Py_ssize_t nb, Py_ssize_t K,
                                      floating* buf, Py_ssize_t NB, const int32_t* tin,
                                      Py_ssize_t* ps, floating* mx, bint ahead) noexcept nogil:
    """Rows r0..r0+nb of x as planes: in place (ps = cs) when rows are
    adjacent (rs == 1 or K == 1), else transposed into buf (ps = NB), by
    the gather table `tin` for a full C-ordered block.  mx (or NULL): the
    row maxima, NaN passed over (-inf for a row of NaN).  ahead: the
    register transpose requests the next sub-block's rows tile by tile
    (a caller with more arithmetic per row spreads the requests itself)."""
    cdef Py_ssize_t j, k
    cdef const floating* xr
    cdef const floating* planes
    cdef floating v
    if rs == 1 or K == 1:
        ps[0] = cs
        planes = x + r0 * rs
    else:
        ps[0] = NB
        planes = buf
        if cs == 1 and rs == K and tr_rows(K, floating is float):
            # C-ordered rows: through registers, the maxima taken there
            rows_to_planes(x + r0 * rs, K, nb, buf, NB, x + (r0 + nb) * rs if ahead else NULL,
                           mx)
            return buf
        if tin != NULL and nb == NB:
            gather(buf, x + r0 * rs, tin, K * NB)
        else:
            for k in range(K):
                xr = x + r0 * rs + k * cs
                for j in range(nb):
                    buf[k * NB + j] = xr[j * rs]
    if mx != NULL:
        # a select in the data's type: an `if` store is a branch per element
        for j in range(nb):
            mx[j] = -INFINITY
        for k in range(K):
            xr = planes + k * ps[0]
            for j in range(nb):
                v = xr[j]
                mx[j] = v if v > mx[j] else mx[j]
    return planes


cdef inline void put(void* out, bint f32, Py_ssize_t off, const void* src, Py_ssize_t m,
                     bint stream) noexcept nogil:
    if f32:
        if stream:
            fl_stream_f32(<float*>out + off, <const float*>src, m)
        else:
            memcpy(<float*>out + off, src, m * sizeof(float))
    else:
        if stream:
            fl_stream_f64(<double*>out + off, <const double*>src, m)
        else:
            memcpy(<double*>out + off, src, m * sizeof(double))
