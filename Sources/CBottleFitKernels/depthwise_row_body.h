/* One output row of a depthwise convolution, for one instruction set: included by
   depthwise_row.c with BF_TARGET and BF_NAME defined (no include guard on purpose). Plain loops
   that the compiler vectorises: 16 floats a step in the AVX-512 build, 4 in the portable one. */

static BF_TARGET void BF_NAME(depthwise_row)(
    const float *x, float *row, const float *w, const bottlefit_depthwise_geometry *g, ptrdiff_t oy) {
    ptrdiff_t ow = g->output_width;
    for (ptrdiff_t ox = 0; ox < ow; ox++) row[ox] = 0;
    for (ptrdiff_t ki = 0; ki < g->kernel_height; ki++) {
        ptrdiff_t iy = oy * g->stride_height - g->pad_top + ki * g->dilation_height;
        if (iy < 0 || iy >= g->input_height) continue;
        const float *xr = x + iy * g->input_width;
        for (ptrdiff_t kj = 0; kj < g->kernel_width; kj++) {
            float wv = w[ki * g->kernel_width + kj];
            /* Input column of output column ox: ox·sw + offset; keep 0 <= it < iw. */
            ptrdiff_t sw = g->stride_width;
            ptrdiff_t offset = kj * g->dilation_width - g->pad_left;
            ptrdiff_t first = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
            ptrdiff_t last_input = g->input_width - 1 - offset;
            ptrdiff_t end = last_input < 0 ? 0 : bf_min(ow, last_input / sw + 1);
            if (first >= end) continue;
            const float *src = xr + offset;
            if (sw == 1) {
                for (ptrdiff_t ox = first; ox < end; ox++) row[ox] += wv * src[ox];
            } else if (sw == 2) {
                for (ptrdiff_t ox = first; ox < end; ox++) row[ox] += wv * src[2 * ox];
            } else {
                for (ptrdiff_t ox = first; ox < end; ox++) row[ox] += wv * src[ox * sw];
            }
        }
    }
}
