# The (N, C, S) view of class-axis data and its work units, and the
# float16 / bfloat16 units widened into L1: the layout every class-axis
# kernel (lse, cross-entropy, softmax focal) and every row kernel
# (margins, embeddings) shares.  Header-only, `noexcept nogil`.

from libc.string cimport memset

from _common cimport (
    ELEM_BLOCK, FL_KIND_F32, PLANE_BLOCK, STREAM_ROW, WIDE_ROW, BlockOut, align64, block_init,
    fl_narrow, fl_widen, label_t, n_blocks, skip_label,
)


# ------------------------------------------------------ (N, C, S) layouts
# Every class-axis reduction sees its data as (N, C, S), C-contiguous: N
# outer items, C classes, S positions.  LAYOUT_ROWS (S == 1, C >= WIDE_ROW):
# each row is reduced on its own, `rows` rows per work unit.  LAYOUT_PLANES:
# a unit is PLANE_BLOCK positions of one outer item; value (c, j) of the
# unit sits at base + c*cs + j*ps.  For NCHW data that is cs = S, ps = 1;
# for narrow rows (S == 1, C < WIDE_ROW) all N rows are positions of a
# single outer item, cs = 1, ps = C.  In both layouts, position j of outer
# item o has flat index o*npos + j into (N, S)-shaped targets and outputs.
cdef enum:
    LAYOUT_ROWS = 0
    LAYOUT_PLANES = 1


cdef struct Layout:
    int kind
    Py_ssize_t N, C, S
    Py_ssize_t outer, npos, os, cs, ps
    Py_ssize_t bpo       # work units per outer item (planes)
    Py_ssize_t rows      # rows per work unit (rows)
    Py_ssize_t units


cdef inline Py_ssize_t rows_per_unit(Py_ssize_t D) noexcept nogil:
    """Rows of D values per work unit: about ELEM_BLOCK values, at least one row."""
    if D <= 0:
        return ELEM_BLOCK
    return ELEM_BLOCK // D if D < ELEM_BLOCK else 1


cdef inline void unit_rows(Py_ssize_t u, Py_ssize_t R, Py_ssize_t N,
                           Py_ssize_t* i0, Py_ssize_t* i1) noexcept nogil:
    """Rows [i0, i1) of work unit u of R rows each (the last one shorter)."""
    i0[0] = u * R
    i1[0] = i0[0] + R if i0[0] + R < N else N


cdef inline Layout make_layout(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S) noexcept nogil:
    cdef Layout L
    L.N = N
    L.C = C
    L.S = S
    if S == 1 and C >= WIDE_ROW:
        L.kind = LAYOUT_ROWS
        L.rows = rows_per_unit(C)
        L.units = n_blocks(N, L.rows)
        L.outer = N
        L.npos = 1
        L.os = C
        L.cs = 1
        L.ps = 1
        L.bpo = 1
        return L
    L.kind = LAYOUT_PLANES
    L.rows = 0
    if S == 1:
        L.outer = 1
        L.npos = N
        L.os = 0
        L.cs = 1
        L.ps = C
    else:
        L.outer = N
        L.npos = S
        L.os = C * S
        L.cs = S
        L.ps = 1
    L.bpo = n_blocks(L.npos, PLANE_BLOCK)
    L.units = L.outer * L.bpo
    return L


cdef inline Py_ssize_t unit_start(Layout* L, Py_ssize_t u, Py_ssize_t* nb,
                                  Py_ssize_t* base) noexcept nogil:
    """First flat (N*S) position of unit u; sets its size and data offset.

    rows: nb = rows in the unit, base = offset of its first row.
    planes: nb = positions in the unit, base = offset of (c=0, j=first).
    """
    cdef Py_ssize_t o, j0
    if L.kind == LAYOUT_ROWS:
        j0 = u * L.rows
        nb[0] = L.rows if j0 + L.rows <= L.N else L.N - j0
        base[0] = j0 * L.C
        return j0
    o = u // L.bpo
    j0 = (u - o * L.bpo) * PLANE_BLOCK
    nb[0] = PLANE_BLOCK if j0 + PLANE_BLOCK <= L.npos else L.npos - j0
    base[0] = o * L.os + j0 * L.ps
    return o * L.npos + j0


# ------------------------------------------- float16 / bfloat16 class-axis units
# A half-precision unit is widened into an L1 block laid out as a float32
# unit of the same positions (the one-unit layout B); the float32 unit code
# runs on it (the same steps on the same values: the float32 kernel's
# results on the widened input, bit for bit) and its gradient or output is
# narrowed back into the caller's layout.
cdef enum:
    HALF_UNIT = 16384   # values of a unit widened at once: rows * C, or PLANE_BLOCK * 32


cdef inline bint half_unit_fits(Layout* L) noexcept nogil:
    """Whether every unit of L fits the HALF_UNIT values of widen_unit."""
    if L.kind == LAYOUT_ROWS:
        return L.rows * L.C <= HALF_UNIT
    return L.C * PLANE_BLOCK <= HALF_UNIT


cdef inline Py_ssize_t widen_unit(const void* x, int kx, Layout* L, Py_ssize_t u,
                                  float* xb, Layout* B, Py_ssize_t* nb,
                                  Py_ssize_t* base) noexcept nogil:
    """Unit u of the float16 / bfloat16 (or float32, copied) x (layout L,
    half_unit_fits) widened into xb, with B the one-unit layout of xb (the
    unit code then runs on unit 0 of B).  Returns the unit's first position
    and sets nb and base as unit_start does.  B is set by hand: make_layout
    could call a single position of many values a row."""
    cdef Py_ssize_t pos = unit_start(L, u, nb, base), c
    cdef size_t isz = 4 if kx == FL_KIND_F32 else 2
    cdef const char* xc = <const char*>x
    B[0] = L[0]
    B.units = 1
    if L.kind == LAYOUT_ROWS:
        fl_widen(xc + base[0] * isz, kx, xb, nb[0] * L.C)
        B.N = nb[0]
        B.rows = nb[0]
        return pos
    B.outer = 1
    B.npos = nb[0]
    B.bpo = 1
    if L.ps != 1:   # narrow rows: nb rows of C values, one after the other
        fl_widen(xc + base[0] * isz, kx, xb, nb[0] * L.C)
        B.os = 0
        return pos
    for c in range(L.C):   # maps: C planes of nb positions, S apart
        fl_widen(xc + (base[0] + c * L.cs) * isz, kx, xb + c * nb[0], nb[0])
    B.cs = nb[0]
    B.os = L.C * nb[0]
    return pos


cdef inline void narrow_unit(const float* gb, void* g, int kg, Layout* L, Py_ssize_t nb,
                             Py_ssize_t base) noexcept nogil:
    """A unit's values in widen_unit's block layout (gb) into g of layout L:
    rounded to nearest even into kind kg, or copied for float32."""
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef Py_ssize_t c
    if L.kind == LAYOUT_PLANES and L.ps == 1:
        for c in range(L.C):
            fl_narrow(gb + c * nb, <char*>g + (base + c * L.cs) * gsize, kg, nb)
    else:
        fl_narrow(gb, <char*>g + base * gsize, kg, nb * L.C)


# A labelled row's float32 code for half_rows_unit: its loss from the widened
# row xr (C values, label y, flat position i); with gr, its gradient there;
# *weight its 'mean' weight; nxt: the next row's 16-bit values, for
# prefetches only.  P: the loss's parameters.
ctypedef double (*half_row_fn)(const float* xr, float* gr, Py_ssize_t C, Py_ssize_t y,
                               Py_ssize_t i, const void* P, const float* nxt,
                               double* weight) noexcept nogil


cdef inline void half_rows_unit(const unsigned short* x, int kx, const label_t* t, Layout* L,
                                Py_ssize_t u, Py_ssize_t ignore, float* loss_out, void* g,
                                int kg, half_row_fn row, const void* P,
                                BlockOut* out) noexcept nogil:
    """Unit u of a rows layout L of float16 / bfloat16 rows (C <= STREAM_ROW)
    a row at a time: each labelled row widened into an L1 buffer and run
    through ``row`` (the float32 kernel's row code: its bits on the widened
    values), the next row's 16-bit values requested during its
    exponentials, its gradient narrowed (round to nearest even) or copied
    into g (kind kg); a skipped row's gradient zeroed.  Widening the unit at
    once (64 KiB, past L1, read in a burst) took 1.22x the time for the
    softmax focal loss of (16384, 1000) bfloat16, with its gradient 1.16x."""
    cdef float xraw[STREAM_ROW + 16]
    cdef float graw[STREAM_ROW + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* gb = <float*>align64(&graw[0]) if g != NULL else NULL
    cdef Py_ssize_t C = L.C, nb, base, pos, r, y
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef double loss, wt, acc_l = 0.0, acc_w = 0.0
    cdef char* gr
    block_init(out)
    pos = unit_start(L, u, &nb, &base)
    for r in range(nb):
        gr = <char*>g + (base + r * C) * gsize if g != NULL else NULL
        y = <Py_ssize_t>t[pos + r]
        if skip_label(y, ignore, True, C, pos + r, loss_out, out):
            if gr != NULL:
                memset(gr, 0, C * gsize)  # +0.0 in every format
            continue
        fl_widen(x + base + r * C, kx, xb, C)
        # the pointer only steers prefetches, which cover twice the row:
        # never a fault
        loss = row(xb, gb, C, y, pos + r, P, <const float*>(x + base + (r + 1) * C), &wt)
        if gr != NULL:
            fl_narrow(gb, gr, kg, C)
        if loss_out != NULL:
            loss_out[pos + r] = <float>loss
        acc_l += loss
        acc_w += wt
    out.loss += acc_l
    out.weight += acc_w
