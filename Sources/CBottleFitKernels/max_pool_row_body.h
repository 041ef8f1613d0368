/* Max pooling of one output row, for one instruction set: included by max_pool_row.c with
   BF_TARGET and BF_NAME defined (no include guard on purpose).

   Per channel: the window's input rows are combined into one row, which is written between
   -inf margins so that every output takes the same branch-free path; then each block of
   outputs takes its `kernel_width` taps (for ResNet's 3x3/2 pool, the even and odd halves of
   16 loaded floats and the even half 2 floats on). One call does a whole output row of all
   channels, so none of the set-up is paid per channel. */

static BF_TARGET void BF_NAME(max_pool_row)(
    bottlefit_max_pool_row_geometry g, ptrdiff_t channels, const float *input, ptrdiff_t input_channel_stride,
    const ptrdiff_t *row_offsets, ptrdiff_t row_count, float *output, ptrdiff_t output_channel_stride,
    const float *scale, const float *shift, int relu, float *scratch) {
    ptrdiff_t iw = g.input_width, pw = g.output_width, kw = g.kernel_width, sw = g.stride;
    float *row = scratch + g.pad_left;
    /* Margins: -inf left of the row and right of it up to what the last output reads. */
    for (ptrdiff_t i = 0; i < g.pad_left; i++) scratch[i] = -__builtin_inff();
    ptrdiff_t end = bottlefit_max_pool_row_scratch(g);
    for (ptrdiff_t i = g.pad_left + iw; i < end; i++) scratch[i] = -__builtin_inff();
    for (ptrdiff_t j = 0; j < channels; j++) {
        const float *base = input + j * input_channel_stride;
        /* The window's rows combined. */
        const float *first = base + row_offsets[0];
        if (row_count == 3) {
            const float *second = base + row_offsets[1], *third = base + row_offsets[2];
            ptrdiff_t x = 0;
            for (; x + 16 <= iw; x += 16) {
                BF_STORE16(row + x, bf_larger(bf_larger(BF_LOAD16(first + x), BF_LOAD16(second + x)), BF_LOAD16(third + x)));
            }
            for (; x < iw; x++) row[x] = bf_larger(bf_larger(first[x], second[x]), third[x]);
        } else {
            for (ptrdiff_t x = 0; x < iw; x++) row[x] = first[x];
            for (ptrdiff_t i = 1; i < row_count; i++) {
                const float *line = base + row_offsets[i];
                for (ptrdiff_t x = 0; x < iw; x++) row[x] = bf_larger(row[x], line[x]);
            }
        }
        /* The columns: output ox reads margined positions ox·stride + kx; then the affine. */
        float *out = output + j * output_channel_stride;
        float a = scale ? scale[j] : 1, b = shift ? shift[j] : 0;
        if (sw == 2 && kw == 3) {
            ptrdiff_t ox = 0;
            for (; ox + 8 <= pw; ox += 8) {
                const float *p = scratch + 2 * ox;
                bf_v16 here = BF_LOAD16(p), next = BF_LOAD16(p + 2);
                bf_v8 m = bf_larger(bf_larger(here.even, here.odd), next.even);
                if (scale) {
                    bf_v8 va = a, vb = b;
                    m = m * va + vb;
                    if (relu) {
                        bf_v8 zero = 0.0f;
                        m = bf_larger(m, zero);
                    }
                }
                BF_STORE8(out + ox, m);
            }
            for (; ox < pw; ox++) {
                float m = bf_larger(bf_larger(scratch[2 * ox], scratch[2 * ox + 1]), scratch[2 * ox + 2]);
                if (scale) m = m * a + b;
                if (scale && relu) m = bf_larger(m, 0.0f);
                out[ox] = m;
            }
            continue;
        }
        for (ptrdiff_t ox = 0; ox < pw; ox++) out[ox] = scratch[ox * sw];
        for (ptrdiff_t kx = 1; kx < kw; kx++) {
            const float *p = scratch + kx;
            if (sw == 1) {
                for (ptrdiff_t ox = 0; ox < pw; ox++) out[ox] = bf_larger(out[ox], p[ox]);
            } else {
                for (ptrdiff_t ox = 0; ox < pw; ox++) out[ox] = bf_larger(out[ox], p[2 * ox]);
            }
        }
        if (scale) {
            if (relu) {
                for (ptrdiff_t ox = 0; ox < pw; ox++) out[ox] = bf_larger(out[ox] * a + b, 0.0f);
            } else {
                for (ptrdiff_t ox = 0; ox < pw; ox++) out[ox] = out[ox] * a + b;
            }
        }
    }
}
