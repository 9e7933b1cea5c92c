# float16 / bfloat16 logits of the cross-entropy and NLL kernel: its units
# for them (included by _classification.pyx, whose cimports, Layout and
# row code they use).  Rows and class planes are widened into L1 and run
# through the float32 row code (the same bits as the float32 kernel on the
# widened values); gradients are narrowed to nearest even on the way out.

cdef struct CeArgs:
    const double* w
    const double* sw
    double eps
    double wsum
    double ew
    double gscale


cdef double _ce_half_row(const float* xr, float* gr, Py_ssize_t C, Py_ssize_t y, Py_ssize_t i,
                         const void* P, const float* nxt, double* weight) noexcept nogil:
    """A row of _ce_index_unit's streamed path (row_max, row_sumexp,
    ce_row_finish: the same bits as the float32 kernel) for half_rows_unit:
    float16 / bfloat16 rows of up to STREAM_ROW classes."""
    cdef const CeArgs* a = <const CeArgs*>P
    cdef double mx = row_max(xr, C), sm
    cdef double swj = a.sw[i] if a.sw != NULL else 1.0
    cdef double wy = a.w[y] if a.w != NULL else 1.0
    sm = row_sumexp(xr, C, mx, gr, nxt)
    weight[0] = swj * wy
    return ce_row_finish(xr, gr, C, y, mx + fl_log(sm), sm, a.w, wy, swj, a.eps, a.wsum, a.ew,
                         a.gscale)


cdef void _nll_rows_half_unit(const unsigned short* x, int kx, const label_t* t,
                              Layout* L, Py_ssize_t u, const double* w, const double* sw,
                              Py_ssize_t ignore, float* loss_out, void* g, int kg,
                              double gscale, BlockOut* out) noexcept nogil:
    """_nll_unit's rows for float16 / bfloat16 log-probabilities, any C.

    NLL reads one value a row, x[y]: it is widened on its own and goes
    through _nll_unit's arithmetic (the same bits as the float32 kernel on
    the widened values); the gradient rows are zeroed (+0.0 in every
    format) and their one value narrowed (round to nearest even) or copied.
    """
    cdef Py_ssize_t C = L.C, nb, base, pos, j, y, off
    cdef double wy, swj, loss
    cdef double acc_l = 0.0, acc_w = 0.0
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef float v, gv
    block_init(out)
    pos = unit_start(L, u, &nb, &base)
    if g != NULL:
        memset(<char*>g + base * gsize, 0, nb * C * gsize)
    for j in range(nb):
        y = <Py_ssize_t>t[pos + j]
        if skip_label(y, ignore, True, C, pos + j, loss_out, out):
            continue
        off = base + j * C + y
        fl_widen(x + off, kx, &v, 1)
        wy = w[y] if w != NULL else 1.0
        swj = sw[pos + j] if sw != NULL else 1.0
        loss = -swj * wy * v
        if loss_out != NULL:
            loss_out[pos + j] = <float>loss
        acc_l += loss
        acc_w += swj * wy
        if g != NULL:
            gv = <float>(-gscale * swj * wy)
            fl_narrow(&gv, <char*>g + off * gsize, kg, 1)
    out.loss += acc_l
    out.weight += acc_w


cdef void _ce_half_unit(const unsigned short* x, int kx, const label_t* t, Layout* L,
                        Py_ssize_t u, const double* w, const double* sw, Py_ssize_t ignore,
                        double eps, double wsum, float* loss_out, void* g, int kg,
                        double gscale, bint log_input, BlockOut* out) noexcept nogil:
    """_ce_index_unit (or _nll_unit with log_input) for float16 / bfloat16
    logits on a class-plane layout (half_unit_fits): the unit widened by
    widen_unit, the float32 unit, the gradient narrowed by narrow_unit."""
    cdef float xraw[HALF_UNIT + 16]
    cdef float graw[HALF_UNIT + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* gb = <float*>align64(&graw[0]) if g != NULL else NULL
    cdef Py_ssize_t nb, base, pos
    cdef Layout B
    pos = widen_unit(x, kx, L, u, xb, &B, &nb, &base)
    if log_input:
        _nll_unit(xb, t + pos, &B, 0, w, sw + pos if sw != NULL else NULL, ignore,
                  loss_out + pos if loss_out != NULL else NULL, gb, gscale, False, out)
    else:
        _ce_index_unit(xb, t + pos, &B, 0, w, sw + pos if sw != NULL else NULL, ignore, eps,
                       wsum, loss_out + pos if loss_out != NULL else NULL, gb, gscale, False,
                       out)
    if out.bad >= 0:
        out.bad += pos
    if g != NULL:
        narrow_unit(gb, g, kg, L, nb, base)


cdef inline void _half_unit(const unsigned short* x, int kx, const label_t* t, Layout* L,
                            Py_ssize_t u, const double* w, const double* sw, Py_ssize_t ignore,
                            double eps, double wsum, float* loss_out, void* g, int kg,
                            double gscale, bint log_input, BlockOut* out) noexcept nogil:
    cdef CeArgs a
    if L.kind == LAYOUT_ROWS and log_input:
        _nll_rows_half_unit(x, kx, t, L, u, w, sw, ignore, loss_out, g, kg, gscale, out)
    elif L.kind == LAYOUT_ROWS:
        a.w, a.sw, a.eps, a.wsum, a.ew, a.gscale = w, sw, eps, wsum, eps / L.C * wsum, gscale
        half_rows_unit(x, kx, t, L, u, ignore, loss_out, g, kg, _ce_half_row, &a, out)
    else:
        _ce_half_unit(x, kx, t, L, u, w, sw, ignore, eps, wsum, loss_out, g, kg, gscale,
                      log_input, out)
