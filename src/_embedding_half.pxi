# float16 / bfloat16 rows of the embedding losses: their units (included by
# _embedding.pyx, whose cimports they use).  Each row is widened into L1 and
# run through the float32 row code of _embedding_math.pxd (the same bits as
# the float32 kernel on the widened values); gradients are narrowed to
# nearest even on the way out, or copied for float32.

cdef enum:
    # rows ahead whose lines a float16 / bfloat16 triplet unit requests
    # before widening its current rows, in inputs of more than
    # EMB_AHEAD_BYTES: one row of each input at a time leaves few misses in
    # flight, and the widening loop waited on memory ((65536, 512) bfloat16
    # at 2 threads: 0.83x the time, with the gradients 0.93x; the float32
    # rows, read by the distance loop itself, gained nothing)
    EMB_AHEAD = 2
    EMB_AHEAD_BYTES = 4194304


cdef inline void narrow_out(const float* src, void* dst, int kind, Py_ssize_t m, bint st,
                            float* tmp) noexcept nogil:
    """dst[:m] = src[:m] narrowed to nearest even into kind (or copied for
    float32); st: out with non-temporal stores, for a dst that starts on a
    64-byte line and ends on one (see lines_whole): bfloat16 on AVX2 straight
    from the registers (triplet (65536, 512) with its gradients 0.93-0.94x
    the time of the copy through tmp), else through tmp (m floats)."""
    if st and kind == FL_KIND_BF16 and fl_narrow_bf16_nt(src, <unsigned short*>dst, m):
        return
    if st:
        fl_narrow(src, tmp, kind, m)
        fl_stream_f32(<float*>dst, tmp, m * (4 if kind == FL_KIND_F32 else 2) // 4)
    else:
        fl_narrow(src, dst, kind, m)


cdef inline bint lines_whole(const void* p, Py_ssize_t nbytes) noexcept nogil:
    """Whether [p + k nbytes, p + (k + 1) nbytes) is whole 64-byte lines for
    every k: rows of nbytes from p that streamed stores write without a
    partial line."""
    return (<size_t>p) % 64 == 0 and nbytes % 64 == 0


cdef void _triplet_half_unit(const unsigned short* a, const unsigned short* pp,
                             const unsigned short* n, int kind, Py_ssize_t N, Py_ssize_t D,
                             Py_ssize_t R, Py_ssize_t u, double margin, int pkind, double pn,
                             float eps, bint swap, bint squared, const double* sw,
                             float* loss_out, void* ga, void* gp, void* gn, int kg,
                             double gscale, bint stream, BlockOut* out) noexcept nogil:
    """_triplet_unit for float16 / bfloat16 rows (D <= HALF_ROW): each row
    widened into L1 and run through the float32 row code (the same bits),
    its gradients narrowed (round to nearest even) or copied out; stream
    (gradients out of the cache) where their rows are whole lines: through
    L1 and out with non-temporal stores."""
    # one array each (see _contrastive_half_unit)
    cdef float araw[HALF_ROW + 16]
    cdef float praw[HALF_ROW + 16]
    cdef float nraw[HALF_ROW + 16]
    cdef float garaw[HALF_ROW + 16]
    cdef float gpraw[HALF_ROW + 16]
    cdef float gnraw[HALF_ROW + 16]
    cdef float* ab = <float*>align64(&araw[0])
    cdef float* pb = <float*>align64(&praw[0])
    cdef float* nb = <float*>align64(&nraw[0])
    cdef float* gab = <float*>align64(&garaw[0])
    cdef float* gpb = <float*>align64(&gpraw[0])
    cdef float* gnb = <float*>align64(&gnraw[0])
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef Py_ssize_t i, i0, i1, off
    cdef bint ahead = N * D * 2 > EMB_AHEAD_BYTES
    cdef double loss, swj
    cdef float traw[HALF_ROW + 16]
    cdef float* tb = <float*>align64(&traw[0])
    cdef bint st = (stream and ga != NULL and lines_whole(ga, D * gsize)
                    and lines_whole(gp, D * gsize) and lines_whole(gn, D * gsize))
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        if ahead:
            prefetch_bytes(a + off + EMB_AHEAD * D, D * 2)
            prefetch_bytes(pp + off + EMB_AHEAD * D, D * 2)
            prefetch_bytes(n + off + EMB_AHEAD * D, D * 2)
        fl_widen(a + off, kind, ab, D)
        fl_widen(pp + off, kind, pb, D)
        fl_widen(n + off, kind, nb, D)
        swj = sw[i] if sw != NULL else 1.0
        loss = triplet_row(ab, pb, nb, D, margin, pkind, pn, eps, swap, squared, swj,
                           gab if ga != NULL else NULL, gpb, gnb, gscale)
        if ga != NULL:
            narrow_out(gab, <char*>ga + off * gsize, kg, D, st, tb)
            narrow_out(gpb, <char*>gp + off * gsize, kg, D, st, tb)
            narrow_out(gnb, <char*>gn + off * gsize, kg, D, st, tb)
        if loss_out != NULL:
            loss_out[i] = <float>loss
        out.loss += loss
        out.weight += swj
    if st:
        fl_stream_fence()


cdef void _contrastive_half_unit(const unsigned short* x1, const unsigned short* x2, int kind,
                                 const label_t* t, Py_ssize_t N, Py_ssize_t D, Py_ssize_t R,
                                 Py_ssize_t u, double margin, const double* sw,
                                 float* loss_out, void* g1, void* g2, int kg, double gscale,
                                 bint stream, BlockOut* out) noexcept nogil:
    """_contrastive_unit for float16 / bfloat16 rows (D <= HALF_ROW): each pair
    widened into L1 and run through the float32 row code (the same bits), its
    gradients narrowed (round to nearest even) or copied out (streamed as
    _triplet_half_unit's)."""
    # one array each: carved from one array, the gradient buffers could
    # overlap the widened rows for gcc, which then left the gradient loop
    # scalar (2x slower in L1)
    cdef float araw[HALF_ROW + 16]
    cdef float braw[HALF_ROW + 16]
    cdef float g1raw[HALF_ROW + 16]
    cdef float g2raw[HALF_ROW + 16]
    cdef float* ab = <float*>align64(&araw[0])
    cdef float* bb = <float*>align64(&braw[0])
    cdef float* g1b = <float*>align64(&g1raw[0])
    cdef float* g2b = <float*>align64(&g2raw[0])
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef Py_ssize_t i, i0, i1, off, y
    cdef double loss, swj
    cdef float traw[HALF_ROW + 16]
    cdef float* tb = <float*>align64(&traw[0])
    cdef bint st = (stream and g1 != NULL and lines_whole(g1, D * gsize)
                    and lines_whole(g2, D * gsize))
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        y = <Py_ssize_t>t[i]
        if contrastive_bad(y, i, loss_out, sizeof(float), g1, g2, D * gsize, out):
            continue
        fl_widen(x1 + off, kind, ab, D)
        fl_widen(x2 + off, kind, bb, D)
        swj = sw[i] if sw != NULL else 1.0
        loss = contrastive_row(ab, bb, D, y, margin, swj, g1b if g1 != NULL else NULL, g2b,
                               gscale)
        if g1 != NULL:
            narrow_out(g1b, <char*>g1 + off * gsize, kg, D, st, tb)
            narrow_out(g2b, <char*>g2 + off * gsize, kg, D, st, tb)
        if loss_out != NULL:
            loss_out[i] = <float>loss
        out.loss += loss
        out.weight += swj
    if st:
        fl_stream_fence()


cdef void _center_half_unit(const unsigned short* x, int kind, const label_t* t,
                            const float* cen, Py_ssize_t N, Py_ssize_t D, Py_ssize_t C,
                            Py_ssize_t R, Py_ssize_t u, const double* sw, float* loss_out,
                            void* gx, int kg, double gscale, BlockOut* out) noexcept nogil:
    """_center_unit for float16 / bfloat16 features (D <= HALF_ROW): each row
    widened into L1 and run through the float32 row code, its gradient
    narrowed (round to nearest even) or copied out."""
    cdef float xraw[HALF_ROW + 16]
    cdef float graw[HALF_ROW + 16]
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* gb = <float*>align64(&graw[0])
    cdef size_t gsize = 4 if kg == FL_KIND_F32 else 2
    cdef Py_ssize_t i, i0, i1, off, y
    cdef double loss, swj
    block_init(out)
    unit_rows(u, R, N, &i0, &i1)
    for i in range(i0, i1):
        off = i * D
        y = <Py_ssize_t>t[i]
        if skip_label(y, 0, False, C, i, loss_out, out):
            if gx != NULL:
                memset(<char*>gx + off * gsize, 0, D * gsize)
            continue
        fl_widen(x + off, kind, xb, D)
        swj = sw[i] if sw != NULL else 1.0
        loss = center_row(xb, cen + y * D, D, swj, gscale, gb if gx != NULL else NULL)
        if gx != NULL:
            fl_narrow(gb, <char*>gx + off * gsize, kg, D)
        if loss_out != NULL:
            loss_out[i] = <float>loss
        out.loss += loss
        out.weight += swj
