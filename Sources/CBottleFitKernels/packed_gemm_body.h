/* The packed GEMM's microkernels and the loops around them, for one instruction set: included
   by packed_gemm.c with BF_TARGET (the functions' `target` attribute, or nothing), BF_NAME
   (the suffix) and BF_FMA(a, b, acc) defined. No include guard: it is meant to be included
   once per instruction set. */

#define BF_FN static inline __attribute__((always_inline)) BF_TARGET

/* An 8 x 48 tile of A·B over kc steps: per k, three loads of B, eight broadcasts of A and 24
   FMAs, and a prefetch of A 2 KiB ahead (weights come from DRAM at batch 1). */
#define BF_PUT48(sink, r, x0, y0, z0) \
    do { \
        bf_v16 x = (x0), y = (y0), z = (z0); \
        if (!(sink)->c) { \
            float *t = (sink)->tile + (r) * 48; \
            BF_STORE16(t, x); \
            BF_STORE16(t + 16, y); \
            BF_STORE16(t + 32, z); \
        } else { \
            BF_NAME(finish48)(sink, r, &x, &y, &z); \
        } \
    } while (0)

/* Straight into C: + bias, + residual, ReLU, the activation. */
BF_FN void BF_NAME(finish48)(const bf_sink *sink, ptrdiff_t r, bf_v16 *px, bf_v16 *py, bf_v16 *pz) {
    const bottlefit_epilogue *e = &sink->epilogue;
    bf_v16 x = *px, y = *py, z = *pz;
    bf_v16 bias = e->bias ? e->bias[r] : 0.0f;
    x += bias;
    y += bias;
    z += bias;
    if (e->residual) {
        const float *q = e->residual + r * e->residual_stride;
        x += BF_LOAD16(q);
        y += BF_LOAD16(q + 16);
        z += BF_LOAD16(q + 32);
    }
    if (e->relu) {
        bf_v16 zero = 0.0f;
        x = x < zero ? zero : x;
        y = y < zero ? zero : y;
        z = z < zero ? zero : z;
    }
    if (e->activation.kind != BOTTLEFIT_ACTIVATION_NONE) {
        bf_activate16(&x, &e->activation);
        bf_activate16(&y, &e->activation);
        bf_activate16(&z, &e->activation);
    }
    float *d = sink->c + r * sink->ldc;
    BF_STORE16(d + sink->offsets[0], x);
    BF_STORE16(d + sink->offsets[1], y);
    BF_STORE16(d + sink->offsets[2], z);
}

#if BF_WIDE
#define BF_ROW48(r) \
    s = pa[r]; \
    c##r##0 = BF_FMA(s, b0, c##r##0); \
    c##r##1 = BF_FMA(s, b1, c##r##1); \
    c##r##2 = BF_FMA(s, b2, c##r##2);

BF_FN void BF_NAME(kernel8x48)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, const bf_sink *sink) {
    bf_v16 c00 = 0, c01 = 0, c02 = 0, c10 = 0, c11 = 0, c12 = 0, c20 = 0, c21 = 0, c22 = 0, c30 = 0, c31 = 0, c32 = 0;
    bf_v16 c40 = 0, c41 = 0, c42 = 0, c50 = 0, c51 = 0, c52 = 0, c60 = 0, c61 = 0, c62 = 0, c70 = 0, c71 = 0, c72 = 0;
    const float *pa = a;
    for (ptrdiff_t k = 0; k < kc; k++) {
        __builtin_prefetch(pa + 512, 0, 3);
        const float *p[3];
        bf_vectors(b, kind, k, p);
        bf_v16 b0 = BF_LOAD16(p[0]), b1 = BF_LOAD16(p[1]), b2 = BF_LOAD16(p[2]);
        bf_v16 s;
        BF_ROW48(0) BF_ROW48(1) BF_ROW48(2) BF_ROW48(3) BF_ROW48(4) BF_ROW48(5) BF_ROW48(6) BF_ROW48(7)
        pa += 8;
    }
    BF_PUT48(sink, 0, c00, c01, c02);
    BF_PUT48(sink, 1, c10, c11, c12);
    BF_PUT48(sink, 2, c20, c21, c22);
    BF_PUT48(sink, 3, c30, c31, c32);
    BF_PUT48(sink, 4, c40, c41, c42);
    BF_PUT48(sink, 5, c50, c51, c52);
    BF_PUT48(sink, 6, c60, c61, c62);
    BF_PUT48(sink, 7, c70, c71, c72);
}
#undef BF_ROW48

/* The first 4 rows of an 8-row panel times 16·vectors columns (1 to 3), into the tile: a last
   panel of at most 4 rows (M = 12, the BottleFit bottleneck) skips the zero rows. `vectors`
   is a constant at every call: the unused lanes compile away. */
BF_FN void BF_NAME(kernel4xw)(int vectors, ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v16 c00 = 0, c01 = 0, c02 = 0, c10 = 0, c11 = 0, c12 = 0, c20 = 0, c21 = 0, c22 = 0, c30 = 0, c31 = 0, c32 = 0;
    const float *pa = a;
    for (ptrdiff_t k = 0; k < kc; k++) {
        __builtin_prefetch(pa + 512, 0, 3);
        const float *pb = bf_row(b, kind, k);
        bf_v16 b0 = BF_LOAD16(pb);
        bf_v16 b1 = vectors > 1 ? BF_LOAD16(pb + 16) : 0.0f;
        bf_v16 b2 = vectors > 2 ? BF_LOAD16(pb + 32) : 0.0f;
        bf_v16 s0 = pa[0], s1 = pa[1], s2 = pa[2], s3 = pa[3];
        c00 = BF_FMA(s0, b0, c00);
        c10 = BF_FMA(s1, b0, c10);
        c20 = BF_FMA(s2, b0, c20);
        c30 = BF_FMA(s3, b0, c30);
        if (vectors > 1) {
            c01 = BF_FMA(s0, b1, c01);
            c11 = BF_FMA(s1, b1, c11);
            c21 = BF_FMA(s2, b1, c21);
            c31 = BF_FMA(s3, b1, c31);
        }
        if (vectors > 2) {
            c02 = BF_FMA(s0, b2, c02);
            c12 = BF_FMA(s1, b2, c12);
            c22 = BF_FMA(s2, b2, c22);
            c32 = BF_FMA(s3, b2, c32);
        }
        pa += 8;
    }
    bf_sink sink = {.tile = tile};
    BF_PUT48(&sink, 0, c00, c01, c02);
    BF_PUT48(&sink, 1, c10, c11, c12);
    BF_PUT48(&sink, 2, c20, c21, c22);
    BF_PUT48(&sink, 3, c30, c31, c32);
}

#define BF_ROW32(r) \
    s = pa[r]; \
    c##r##0 = BF_FMA(s, b0, c##r##0); \
    c##r##1 = BF_FMA(s, b1, c##r##1);

BF_FN void BF_NAME(kernel8x32)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v16 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
    bf_v16 c40 = 0, c41 = 0, c50 = 0, c51 = 0, c60 = 0, c61 = 0, c70 = 0, c71 = 0;
    const float *pa = a;
    for (ptrdiff_t k = 0; k < kc; k++) {
        __builtin_prefetch(pa + 512, 0, 3);
        const float *pb = bf_row(b, kind, k);
        bf_v16 b0 = BF_LOAD16(pb), b1 = BF_LOAD16(pb + 16);
        bf_v16 s;
        BF_ROW32(0) BF_ROW32(1) BF_ROW32(2) BF_ROW32(3) BF_ROW32(4) BF_ROW32(5) BF_ROW32(6) BF_ROW32(7)
        pa += 8;
    }
    BF_STORE16(tile + 0 * 48, c00); BF_STORE16(tile + 0 * 48 + 16, c01);
    BF_STORE16(tile + 1 * 48, c10); BF_STORE16(tile + 1 * 48 + 16, c11);
    BF_STORE16(tile + 2 * 48, c20); BF_STORE16(tile + 2 * 48 + 16, c21);
    BF_STORE16(tile + 3 * 48, c30); BF_STORE16(tile + 3 * 48 + 16, c31);
    BF_STORE16(tile + 4 * 48, c40); BF_STORE16(tile + 4 * 48 + 16, c41);
    BF_STORE16(tile + 5 * 48, c50); BF_STORE16(tile + 5 * 48 + 16, c51);
    BF_STORE16(tile + 6 * 48, c60); BF_STORE16(tile + 6 * 48 + 16, c61);
    BF_STORE16(tile + 7 * 48, c70); BF_STORE16(tile + 7 * 48 + 16, c71);
}
#undef BF_ROW32

BF_FN void BF_NAME(kernel8x16)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v16 c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
    const float *pa = a;
    for (ptrdiff_t k = 0; k < kc; k++) {
        __builtin_prefetch(pa + 512, 0, 3);
        bf_v16 b0 = BF_LOAD16(bf_row(b, kind, k));
        bf_v16 s0 = pa[0], s1 = pa[1], s2 = pa[2], s3 = pa[3], s4 = pa[4], s5 = pa[5], s6 = pa[6], s7 = pa[7];
        c0 = BF_FMA(s0, b0, c0);
        c1 = BF_FMA(s1, b0, c1);
        c2 = BF_FMA(s2, b0, c2);
        c3 = BF_FMA(s3, b0, c3);
        c4 = BF_FMA(s4, b0, c4);
        c5 = BF_FMA(s5, b0, c5);
        c6 = BF_FMA(s6, b0, c6);
        c7 = BF_FMA(s7, b0, c7);
        pa += 8;
    }
    BF_STORE16(tile + 0 * 48, c0);
    BF_STORE16(tile + 1 * 48, c1);
    BF_STORE16(tile + 2 * 48, c2);
    BF_STORE16(tile + 3 * 48, c3);
    BF_STORE16(tile + 4 * 48, c4);
    BF_STORE16(tile + 5 * 48, c5);
    BF_STORE16(tile + 6 * 48, c6);
    BF_STORE16(tile + 7 * 48, c7);
}

#else
/* Builds with 16 vector registers of 8 floats (AVX2) or 32 of 4 (NEON), where the kernels
   above would keep 24 or 16 accumulators of 16 floats and spill (48 YMM registers for the
   8 x 48 tile): every block is done as 4-row strips of 8-float vectors instead, 4 x 24 at most
   (12 accumulators, three B vectors and a broadcast: 16 YMM, or 31 of NEON's 32). The strips
   write the tile; a block that goes straight to C is finished from there. */

#if BF_AVX2
/* An empty asm that takes a row's accumulators in registers and clobbers memory, so that the
   compiler keeps the strip in row order and loads the next broadcast only after it. Without it
   clang hoisted all four broadcasts, needed 17 YMM registers and spilled one accumulator
   through the stack every k: a store-to-load forward inside that accumulator's FMA chain,
   which then set the loop's pace (the BottleFit head's stem, 7x7 -> 64: 2.93 -> 1.46 ms at
   2 threads on Zen 3). Other builds are scheduled as the compiler likes (NEON has 32
   registers; not measured on ARM hardware). */
#define BF_PIN(x, y, z) __asm__ volatile("" : "+x"(x), "+x"(y), "+x"(z) : : "memory")
#else
#define BF_PIN(x, y, z) ((void)0)
#endif

#define BF_STRIP_ROW(r) \
    { \
        bf_v8 s = pa[r]; \
        c##r##0 = BF_FMA(s, b0, c##r##0); \
        if (nv > 1) c##r##1 = BF_FMA(s, b1, c##r##1); \
        if (nv > 2) c##r##2 = BF_FMA(s, b2, c##r##2); \
        BF_PIN(c##r##0, c##r##1, c##r##2); \
    }

/* Rows r0..<r0 + 4 of the panel times 8·nv columns from column 8·c0 (r0, c0 and nv constant
   once inlined), into the tile. Column chunk j of row k is at p[j / 2] + 8·(j % 2). */
BF_FN void BF_NAME(strip4)(
    int r0, int c0, int nv, ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v8 c00 = 0, c01 = 0, c02 = 0, c10 = 0, c11 = 0, c12 = 0, c20 = 0, c21 = 0, c22 = 0, c30 = 0, c31 = 0, c32 = 0;
    const float *pa = a + r0;
    for (ptrdiff_t k = 0; k < kc; k++) {
        __builtin_prefetch(pa + 512, 0, 3);
        const float *p[3];
        bf_vectors(b, kind, k, p);
        bf_v8 b0 = BF_LOAD8(p[c0 / 2] + 8 * (c0 % 2));
        bf_v8 b1 = nv > 1 ? BF_LOAD8(p[(c0 + 1) / 2] + 8 * ((c0 + 1) % 2)) : 0.0f;
        bf_v8 b2 = nv > 2 ? BF_LOAD8(p[(c0 + 2) / 2] + 8 * ((c0 + 2) % 2)) : 0.0f;
        /* Row by row, one broadcast live at a time: 12 accumulators, three B vectors and one
           broadcast are exactly 16 YMM registers. */
        BF_STRIP_ROW(0) BF_STRIP_ROW(1) BF_STRIP_ROW(2) BF_STRIP_ROW(3)
        pa += 8;
    }
    float *t = tile + r0 * 48 + 8 * c0;
    BF_STORE8(t, c00);
    BF_STORE8(t + 48, c10);
    BF_STORE8(t + 96, c20);
    BF_STORE8(t + 144, c30);
    if (nv > 1) {
        BF_STORE8(t + 8, c01);
        BF_STORE8(t + 56, c11);
        BF_STORE8(t + 104, c21);
        BF_STORE8(t + 152, c31);
    }
    if (nv > 2) {
        BF_STORE8(t + 16, c02);
        BF_STORE8(t + 64, c12);
        BF_STORE8(t + 112, c22);
        BF_STORE8(t + 160, c32);
    }
}

BF_FN void BF_NAME(kernel8x48)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, const bf_sink *sink) {
    BF_NAME(strip4)(0, 0, 3, kc, a, b, kind, sink->tile);
    BF_NAME(strip4)(0, 3, 3, kc, a, b, kind, sink->tile);
    BF_NAME(strip4)(4, 0, 3, kc, a, b, kind, sink->tile);
    BF_NAME(strip4)(4, 3, 3, kc, a, b, kind, sink->tile);
    if (!sink->c) return;
    for (ptrdiff_t r = 0; r < 8; r++) {
        const float *t = sink->tile + r * 48;
        bf_v16 x = BF_LOAD16(t), y = BF_LOAD16(t + 16), z = BF_LOAD16(t + 32);
        BF_NAME(finish48)(sink, r, &x, &y, &z);
    }
}

/* The first 4 rows of an 8-row panel times 16·vectors columns (1 to 3). */
BF_FN void BF_NAME(kernel4xw)(int vectors, ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    if (vectors == 3) {
        BF_NAME(strip4)(0, 0, 3, kc, a, b, kind, tile);
        BF_NAME(strip4)(0, 3, 3, kc, a, b, kind, tile);
    } else if (vectors == 2) {
        BF_NAME(strip4)(0, 0, 2, kc, a, b, kind, tile);
        BF_NAME(strip4)(0, 2, 2, kc, a, b, kind, tile);
    } else {
        BF_NAME(strip4)(0, 0, 2, kc, a, b, kind, tile);
    }
}

BF_FN void BF_NAME(kernel8x32)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    BF_NAME(strip4)(0, 0, 2, kc, a, b, kind, tile);
    BF_NAME(strip4)(0, 2, 2, kc, a, b, kind, tile);
    BF_NAME(strip4)(4, 0, 2, kc, a, b, kind, tile);
    BF_NAME(strip4)(4, 2, 2, kc, a, b, kind, tile);
}

BF_FN void BF_NAME(kernel8x16)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    BF_NAME(strip4)(0, 0, 2, kc, a, b, kind, tile);
    BF_NAME(strip4)(4, 0, 2, kc, a, b, kind, tile);
}

#endif

/* The last few columns (at most 4: N = 49 is 48 + 1, N = 196 is 4·48 + 4): the 8 rows of A at
   step k are one 8-float vector, times each of the 4 B values broadcast, with steps k and k + 1
   in separate accumulators (8 independent FMA chains). Reads 4 floats of each B row. */
BF_FN void BF_NAME(kernel8x4)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v8 c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
    const float *pa = a;
    ptrdiff_t k = 0;
    for (; k + 2 <= kc; k += 2) {
        bf_v8 a0 = BF_LOAD8(pa), a1 = BF_LOAD8(pa + 8);
        const float *p0 = bf_row(b, kind, k), *p1 = bf_row(b, kind, k + 1);
        bf_v8 q00 = p0[0], q01 = p0[1], q02 = p0[2], q03 = p0[3];
        bf_v8 q10 = p1[0], q11 = p1[1], q12 = p1[2], q13 = p1[3];
        c0 = BF_FMA(a0, q00, c0);
        c1 = BF_FMA(a0, q01, c1);
        c2 = BF_FMA(a0, q02, c2);
        c3 = BF_FMA(a0, q03, c3);
        d0 = BF_FMA(a1, q10, d0);
        d1 = BF_FMA(a1, q11, d1);
        d2 = BF_FMA(a1, q12, d2);
        d3 = BF_FMA(a1, q13, d3);
        pa += 16;
    }
    if (k < kc) {
        bf_v8 a0 = BF_LOAD8(pa);
        const float *p0 = bf_row(b, kind, k);
        bf_v8 q00 = p0[0], q01 = p0[1], q02 = p0[2], q03 = p0[3];
        c0 = BF_FMA(a0, q00, c0);
        c1 = BF_FMA(a0, q01, c1);
        c2 = BF_FMA(a0, q02, c2);
        c3 = BF_FMA(a0, q03, c3);
    }
    c0 += d0;
    c1 += d1;
    c2 += d2;
    c3 += d3;
    for (int r = 0; r < 8; r++) {
        float *t = tile + r * 48;
        t[0] = c0[r];
        t[1] = c1[r];
        t[2] = c2[r];
        t[3] = c3[r];
    }
}

/* One column (N = 49 = 48 + 1): the 8 rows of A at step k times one broadcast B value, four
   steps in flight in separate accumulators. */
BF_FN void BF_NAME(kernel8x1)(ptrdiff_t kc, const float *a, const bf_rows *b, int kind, float *tile) {
    bf_v8 c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    const float *pa = a;
    ptrdiff_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        bf_v8 q0 = bf_row(b, kind, k)[0], q1 = bf_row(b, kind, k + 1)[0];
        bf_v8 q2 = bf_row(b, kind, k + 2)[0], q3 = bf_row(b, kind, k + 3)[0];
        c0 = BF_FMA(BF_LOAD8(pa), q0, c0);
        c1 = BF_FMA(BF_LOAD8(pa + 8), q1, c1);
        c2 = BF_FMA(BF_LOAD8(pa + 16), q2, c2);
        c3 = BF_FMA(BF_LOAD8(pa + 24), q3, c3);
        pa += 32;
    }
    for (; k < kc; k++) {
        bf_v8 q0 = bf_row(b, kind, k)[0];
        c0 = BF_FMA(BF_LOAD8(pa), q0, c0);
        pa += 8;
    }
    bf_v8 sum = (c0 + c1) + (c2 + c3);
    for (int r = 0; r < 8; r++) tile[r * 48] = sum[r];
}

/* Adds (or stores) an 8 x 48 tile into C's valid rows and columns, with the epilogue if any. */
BF_FN void BF_NAME(commit)(
    const float *tile, ptrdiff_t rows, ptrdiff_t columns, float *c, ptrdiff_t ldc, int accumulate,
    const bottlefit_epilogue *e) {
    ptrdiff_t vectors = columns / 16;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *t = tile + r * 48;
        float *dst = c + r * ldc;
        float bias = e && e->bias ? e->bias[r] : 0.0f;
        bf_v16 vbias = bias;
        const float *residual = e && e->residual ? e->residual + r * e->residual_stride : NULL;
        int relu = e && e->relu;
        for (ptrdiff_t v = 0; v < vectors; v++) {
            bf_v16 x = BF_LOAD16(t + 16 * v);
            if (accumulate) x += BF_LOAD16(dst + 16 * v);
            if (e) {
                x += vbias;
                if (residual) x += BF_LOAD16(residual + 16 * v);
                if (relu) {
                    bf_v16 zero = 0.0f;
                    x = x < zero ? zero : x;
                }
                bf_activate16(&x, &e->activation);
            }
            BF_STORE16(dst + 16 * v, x);
        }
        for (ptrdiff_t j = vectors * 16; j < columns; j++) {
            float x = t[j];
            if (accumulate) x += dst[j];
            if (e) {
                x += bias;
                if (residual) x += residual[j];
                if (relu) x = x > 0 ? x : 0;
                x = bf_activate1(x, &e->activation);
            }
            dst[j] = x;
        }
    }
}

/* One block of C (rows row0..<row0+rows, columns column0..<column0+cols, at most 8 x 48) over
   one depth block: the kernel for its width, then into C — straight from registers for a full
   block in a single depth block, else through the tile, adding to what earlier depth blocks
   left and applying the epilogue after the last. */
BF_FN void BF_NAME(block)(
    ptrdiff_t kc, const float *a, const bf_rows *b, int kind, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t row0,
    ptrdiff_t column0, float *c, ptrdiff_t ldc, const bottlefit_epilogue *epilogue, int first, int last, float *tile) {
    bottlefit_epilogue e = *epilogue;
    if (last) {
        if (e.bias) e.bias += row0;
        if (e.residual) e.residual += row0 * e.residual_stride + column0;
    }
    float *out = c + row0 * ldc + column0;
    if (first && last && rows == 8 && cols == 48) {
        bf_sink sink = {.tile = tile, .c = out, .ldc = ldc, .epilogue = e, .offsets = {0, 16, 32}};
        BF_NAME(kernel8x48)(kc, a, b, kind, &sink);
        return;
    }
    ptrdiff_t vectors = (cols + 15) / 16;
    int few = rows <= 4 && cols > 4;
    if (vectors == 3 && !few) {
        bf_sink sink = {.tile = tile};
        BF_NAME(kernel8x48)(kc, a, b, kind, &sink);
    } else if (vectors == 2 && !few) {
        BF_NAME(kernel8x32)(kc, a, b, kind, tile);
    } else if (vectors == 3) {
        BF_NAME(kernel4xw)(3, kc, a, b, kind, tile);
    } else if (vectors == 2) {
        BF_NAME(kernel4xw)(2, kc, a, b, kind, tile);
    } else if (few) {
        BF_NAME(kernel4xw)(1, kc, a, b, kind, tile);
    } else if (cols == 1) {
        BF_NAME(kernel8x1)(kc, a, b, kind, tile);
    } else if (cols <= 4) {
        BF_NAME(kernel8x4)(kc, a, b, kind, tile);
    } else {
        BF_NAME(kernel8x16)(kc, a, b, kind, tile);
    }
    BF_NAME(commit)(tile, rows, cols, out, ldc, !first, last ? &e : NULL);
}

/* Every depth block, every panel of rows, every block of up to 48 of the columns: the loops
   both drivers share. With `even_tail`, 64 columns left are done as 32 + 32 instead of 48 + 16
   (the 8 x 16 kernel waits on its loads; only where B is read in place: packed B is laid out
   in panels of 48). */
BF_FN void BF_NAME(sweep)(
    const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end, ptrdiff_t column_begin,
    ptrdiff_t column_end, float *c, ptrdiff_t ldc, const bottlefit_epilogue *e, float *tile, int even_tail, int kind,
    const float *b_base, const ptrdiff_t *offsets) {
    ptrdiff_t blocks, size;
    bf_depth_blocks(k, &blocks, &size);
    ptrdiff_t m_pad = bf_panels(m) * 8;
    for (ptrdiff_t blk = 0; blk < blocks; blk++) {
        ptrdiff_t k0 = blk * size, k1 = bf_min(k, k0 + size), kc = k1 - k0;
        int first = blk == 0, last = blk == blocks - 1;
        const float *a_block = packed_a + k0 * m_pad;
        for (ptrdiff_t panel = panel_begin; panel < panel_end; panel++) {
            const float *a = a_block + panel * kc * 8;
            ptrdiff_t row0 = panel * 8;
            ptrdiff_t rows = bf_min(8, m - row0);
            for (ptrdiff_t q = column_begin; q < column_end;) {
                ptrdiff_t left = column_end - q;
                ptrdiff_t cols = even_tail && left == 64 ? 32 : bf_min(48, left);
                bf_rows b = {0};
                if (kind == BF_PACKED) {
                    ptrdiff_t w = (cols + 15) / 16 * 16;
                    b.base = b_base + q * k + k0 * w;
                    b.stride = w;
                } else {
                    b.base = b_base + q;
                    b.offsets = offsets + k0;
                }
                BF_NAME(block)(kc, a, &b, kind, rows, cols, row0, q, c, ldc, e, first, last, tile);
                q += cols;
            }
        }
    }
}

static BF_TARGET void BF_NAME(multiply)(
    const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end, const float *packed_b,
    ptrdiff_t n, float *c, ptrdiff_t ldc, const bottlefit_epilogue *e, float *tile) {
    /* Blocks of columns whose B panels stay in L2 while all of A's panels pass. */
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 240) {
        ptrdiff_t width = bf_min(240, n - j0);
        BF_NAME(sweep)(packed_a, m, k, panel_begin, panel_end, j0, j0 + width, c, ldc, e, tile, 0, BF_PACKED, packed_b, NULL);
    }
}

static BF_TARGET void BF_NAME(multiply_indirect)(
    const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end, const float *base,
    const ptrdiff_t *offsets, ptrdiff_t n, float *c, ptrdiff_t ldc, const bottlefit_epilogue *e, float *tile) {
    BF_NAME(sweep)(packed_a, m, k, panel_begin, panel_end, 0, n, c, ldc, e, tile, 1, BF_INDIRECT, base, offsets);
}

static BF_TARGET void BF_NAME(multiply_indirect_rows)(
    const float *packed_a, ptrdiff_t m, ptrdiff_t k, const float *const *bases, const ptrdiff_t *offsets, ptrdiff_t n,
    float *const *c, ptrdiff_t ldc, const bottlefit_epilogue *epilogue, float *tile) {
    ptrdiff_t per_row = n / 16;
    for (ptrdiff_t panel = 0; panel < bf_panels(m); panel++) {
        const float *a = packed_a + panel * k * 8;
        bottlefit_epilogue e = *epilogue;
        if (e.bias) e.bias += panel * 8;
        for (ptrdiff_t block = 0; block < per_row; block++) {
            ptrdiff_t v0 = 3 * block, v1 = v0 + 1, v2 = v0 + 2;
            ptrdiff_t r0 = v0 / per_row, q0 = v0 % per_row * 16;
            ptrdiff_t r1 = v1 / per_row, q1 = v1 % per_row * 16;
            ptrdiff_t r2 = v2 / per_row, q2 = v2 % per_row * 16;
            bf_rows b = {.offsets = offsets, .bases = {bases[r0] + q0, bases[r1] + q1, bases[r2] + q2}};
            b.base = b.bases[0];
            float *out = c[r0] + q0;
            bf_sink sink = {
                .tile = tile, .c = out + panel * 8 * ldc, .ldc = ldc, .epilogue = e,
                .offsets = {0, (c[r1] + q1) - out, (c[r2] + q2) - out}};
            BF_NAME(kernel8x48)(k, a, &b, BF_SPLIT, &sink);
        }
    }
}

#undef BF_FN
#undef BF_PIN
#undef BF_STRIP_ROW
