# float16 / bfloat16 operands of the element-wise kernel: its units for
# them (included by _elementwise.pyx.tp, whose tag types, elem and _chunk
# they use).  Each chunk is widened into L1 buffers and run through the
# float32 chunk (_unit_half), or, for the arithmetic-only losses on
# bfloat16, read where the value loop loads it (_unit_bf16); gradients are
# narrowed to nearest even on the way out.


cdef inline bint reads_bf16(tag_t* tag) noexcept nogil:
    """Whether bfloat16 x and t go straight through the value loop (a
    zero-extend and a shift per element, _unit_bf16) instead of being
    widened a chunk at a time into L1 buffers (_unit_half): the losses of a
    few arithmetic operations per element, whose chunk the widening
    passes' stores bound (2^24 elements, 2 threads, AMD EPYC Zen 3, loss
    only: mse 0.71-0.80x, l1 0.78-0.85x, smooth L1 0.85-0.97x, huber
    0.90-0.98x the time).  float16 operands keep the widening pass (gcc 12
    leaves a per-element F16C conversion in a loop scalar), and so do
    gradients on 16-byte vector (SSE2) builds, where the fused loop of
    huber and smooth L1 with its derivative ran 1.07-1.09x slower."""
    return (tag_t is TMse or tag_t is TL1 or tag_t is TSmoothL1 or tag_t is THuber
            or tag_t is TBias or tag_t is THinge or tag_t is TSqHinge)


cdef double _chunk_bf16(tag_t* tag, const unsigned short* xs, const unsigned short* ts,
                        const double* wc, Py_ssize_t m, float a, float b, float c,
                        float* dst, float* gd, float gs, float* xb, float* tb,
                        Py_ssize_t c0, Py_ssize_t* bad) noexcept nogil:
    """_chunk of a reads_bf16 loss on bfloat16 x and t: the same values and
    derivatives (the same float32 arithmetic on the same widened values).
    xb, tb: buffers of m floats for the rare chunk with a bad element."""
    cdef float der, xv, tv
    cdef int nbad = 0
    cdef Py_ssize_t i
    if gd == NULL:
        for i in range(m):
            xv = fl_bf16_to_f32(xs[i])
            tv = fl_bf16_to_f32(ts[i])
            dst[i] = elem(tag, xv, tv, xv, <float>0, a, b, c, &der)
            nbad = nbad | is_bad(tag, xv, tv)
    else:
        for i in range(m):
            xv = fl_bf16_to_f32(xs[i])
            tv = fl_bf16_to_f32(ts[i])
            dst[i] = elem(tag, xv, tv, xv, <float>0, a, b, c, &der)
            gd[i] = der * gs
            nbad = nbad | is_bad(tag, xv, tv)
    if nbad != 0:  # _chunk_end scans float values for the position
        fl_widen(xs, FL_KIND_BF16, xb, m)
        fl_widen(ts, FL_KIND_BF16, tb, m)
    return _chunk_end(tag, xb, tb, wc, m, c, dst, gd, gs, nbad, c0, bad)


cdef inline const float* _widened(const void* p, int kind, Py_ssize_t c0, Py_ssize_t m,
                                  float* buf) noexcept nogil:
    """Elements c0 .. c0+m of operand p as float32: in place, or widened into buf."""
    if kind == FL_KIND_F32:
        return <const float*>p + c0
    if kind == FL_KIND_U8:
        fl_widen_u8(<const unsigned char*>p + c0, buf, m)
        return buf
    fl_widen(<const unsigned short*>p + c0, kind, buf, m)
    return buf


cdef inline float* _half_gd(void* g, int kg, bint stream, Py_ssize_t c0,
                            float* gb) noexcept nogil:
    """Where a half unit's chunk at c0 puts its float32 derivatives: straight
    into a float32 gradient not streamed, else the chunk buffer gb (NULL: no
    gradient)."""
    if g == NULL:
        return NULL
    return <float*>g + c0 if kg == FL_KIND_F32 and not stream else gb


cdef inline void _half_grad_out(void* g, int kg, bint stream, Py_ssize_t c0, Py_ssize_t m,
                                const float* gb) noexcept nogil:
    """The chunk's derivatives from gb into the gradient: streamed (float32),
    narrowed (16-bit), or for stream and bfloat16 narrowed with
    non-temporal stores straight from the registers where the target has
    them (AVX2; the chunk starts on a 32-byte boundary in the cache's
    line-aligned arrays); nothing where _half_gd put them in place."""
    if g != NULL and kg == FL_KIND_F32 and stream:
        stream_out(<float*>g + c0, gb, m)
    elif (g != NULL and kg == FL_KIND_BF16 and stream
          and (<size_t>(<unsigned short*>g + c0)) % 32 == 0
          and fl_narrow_bf16_nt(gb, <unsigned short*>g + c0, m)):
        pass
    elif g != NULL and kg != FL_KIND_F32:
        fl_narrow(gb, <unsigned short*>g + c0, kg, m)


cdef void _unit_bf16(tag_t* tag, const unsigned short* x, const unsigned short* t, Kinds K,
                     Py_ssize_t n, Py_ssize_t u, Params P, const double* w, float* out,
                     void* g, double gscale, bint stream, BlockOut* res) noexcept nogil:
    """_unit_half for a reads_bf16 loss on bfloat16 x and t: each chunk goes
    straight through _chunk_bf16's value loop (the lines EW_AHEAD elements
    ahead requested first in large operands) instead of being widened into
    L1 buffers."""
    cdef float bufraw[CHUNK + 16]
    cdef float graw[CHUNK + 16]
    cdef float xraw[CHUNK + 16]
    cdef float traw[CHUNK + 16]
    cdef float* buf = <float*>align64(&bufraw[0])
    cdef float* gb = <float*>align64(&graw[0])
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* tb = <float*>align64(&traw[0])
    cdef Py_ssize_t m, c0
    cdef Py_ssize_t i0 = u * ELEM_BLOCK
    cdef Py_ssize_t i1 = i0 + ELEM_BLOCK if i0 + ELEM_BLOCK < n else n
    cdef bint ahead = n * 2 > EW_AHEAD_BYTES
    cdef double acc = 0.0
    block_init(res)
    c0 = i0
    while c0 < i1:
        m = i1 - c0 if i1 - c0 < CHUNK else CHUNK
        if ahead:
            prefetch_bytes(x + c0 + EW_AHEAD, m * 2)
            prefetch_bytes(t + c0 + EW_AHEAD, m * 2)
        acc += _chunk_bf16(tag, x + c0, t + c0, w + c0 if w != NULL else NULL, m,
                           <float>P.a, <float>P.b, <float>P.c,
                           out + c0 if out != NULL else buf, _half_gd(g, K.g, stream, c0, gb),
                           <float>gscale, xb, tb, c0, &res.bad)
        _half_grad_out(g, K.g, stream, c0, m, gb)
        c0 += m
    if g != NULL and stream:
        fl_stream_fence()
    res.loss = acc


cdef void _unit_half(tag_t* tag, const void* x, const void* t, const void* aux, Kinds K,
                     Py_ssize_t n, Py_ssize_t u, Params P, const double* w, float* out,
                     void* g, double gscale, bint stream, BlockOut* res) noexcept nogil:
    """_unit for float16 / bfloat16 operands or gradient: each chunk is widened
    into L1 buffers, run through the float32 chunk, and its gradient narrowed
    (round to nearest even) on the way out.  stream: a float32 gradient
    as _unit's, a bfloat16 one as _half_grad_out's; a float16 one is
    narrowed into place with ordinary stores (streamed from an L1 buffer,
    a 2^24 bfloat16 mse gradient took 1.05-1.14x the time; narrowed and
    streamed from the registers, 0.955x)."""
    # one array each: carved from one array, the output buffers could
    # overlap the widened operands for gcc, which may then leave loops scalar
    cdef float bufraw[CHUNK + 16]
    cdef float graw[CHUNK + 16]
    cdef float eraw[CHUNK + 16]
    cdef float sraw[CHUNK + 16]
    cdef float xraw[CHUNK + 16]
    cdef float traw[CHUNK + 16]
    cdef float araw[CHUNK + 16]
    cdef float* buf = <float*>align64(&bufraw[0])
    cdef float* gb = <float*>align64(&graw[0])
    cdef float* eb = <float*>align64(&eraw[0])
    cdef float* sb = <float*>align64(&sraw[0])
    cdef float* xb = <float*>align64(&xraw[0])
    cdef float* tb = <float*>align64(&traw[0])
    cdef float* ab = <float*>align64(&araw[0])
    cdef Py_ssize_t m, c0
    cdef Py_ssize_t i0 = u * ELEM_BLOCK
    cdef Py_ssize_t i1 = i0 + ELEM_BLOCK if i0 + ELEM_BLOCK < n else n
    cdef const float* xc
    cdef const float* tc
    cdef const float* ac
    cdef double acc = 0.0
    block_init(res)
    c0 = i0
    while c0 < i1:
        m = i1 - c0 if i1 - c0 < CHUNK else CHUNK
        xc = _widened(x, K.x, c0, m, xb)
        tc = _widened(t, K.t, c0, m, tb) if t != x or K.t != K.x else xc
        ac = _widened(aux, K.aux, c0, m, ab) if aux != x or K.aux != K.x else xc
        acc += _chunk(tag, xc, tc, ac, w + c0 if w != NULL else NULL, m,
                      <float>P.a, <float>P.b, <float>P.c, out + c0 if out != NULL else buf,
                      _half_gd(g, K.g, stream, c0, gb), <float>gscale, eb, sb, c0, &res.bad)
        _half_grad_out(g, K.g, stream, c0, m, gb)
        c0 += m
    if g != NULL and stream:
        fl_stream_fence()
    res.loss = acc
