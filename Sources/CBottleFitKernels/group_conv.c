#include "activation.h"

#if defined(__x86_64__)
#include <immintrin.h> /* masked loads and stores: the AVX-512 build (BF_WIDE) and the AVX2 build (BF_AVX2) */
#endif

/* Depthwise and grouped convolutions, computed directly per group (group_conv_body.h). */

/* How one group's padded input is laid out. */
typedef struct bf_group_plan {
    const bottlefit_depthwise_geometry *g;
    ptrdiff_t cg, mg, output_height, output_plane;
    /* Padded rows per channel, floats per padded row (all its phases), floats per phase. */
    ptrdiff_t rows, row_floats, phase_floats;
    /* Where tap kx's input starts in a padded row, for output column 0 (kx < 16). */
    ptrdiff_t tap_offsets[16];
} bf_group_plan;

static int bf_group_plan_make(
    const bottlefit_depthwise_geometry *g, ptrdiff_t cg, ptrdiff_t mg, ptrdiff_t oh, bf_group_plan *p) {
    if (g->kernel_width > 16 || g->stride_width < 1 || g->stride_height < 1 || g->output_width < 1 || oh < 1) return 0;
    ptrdiff_t sw = g->stride_width;
    p->g = g;
    p->cg = cg;
    p->mg = mg;
    p->output_height = oh;
    p->output_plane = oh * g->output_width;
    p->rows = (oh - 1) * g->stride_height + (g->kernel_height - 1) * g->dilation_height + 1;
    /* Output vectors read up to the width rounded up to 16 (blocks of several vectors are
       taken only where they fit in the row), plus the furthest tap. */
    ptrdiff_t widest = (g->output_width + 15) / 16 * 16;
    p->phase_floats = widest + ((g->kernel_width - 1) * g->dilation_width) / sw + 1;
    p->row_floats = p->phase_floats * sw;
    for (ptrdiff_t kx = 0; kx < g->kernel_width; kx++) {
        ptrdiff_t col = kx * g->dilation_width;
        p->tap_offsets[kx] = (col % sw) * p->phase_floats + col / sw;
    }
    return 1;
}

#define BF_BODY "group_conv_body.h"
#include "builds.h"

ptrdiff_t bottlefit_group_conv_scratch(const bottlefit_depthwise_geometry *g, ptrdiff_t cg, ptrdiff_t output_height) {
    bf_group_plan p;
    if (!bf_group_plan_make(g, cg, 1, output_height, &p)) return -1;
    /* At least a zero input row for the AVX2 build's depthwise path. */
    return bf_max(cg * p.rows * p.row_floats, g->input_width);
}

int bottlefit_group_conv(
    bottlefit_isa isa, const float *x, ptrdiff_t cg, ptrdiff_t mg, const float *w, const float *bias,
    const float *residual, float *y, const bottlefit_depthwise_geometry *g, ptrdiff_t output_height,
    bottlefit_activation activation, float *scratch) {
    bf_group_plan p;
    if (!bf_group_plan_make(g, cg, mg, output_height, &p)) return 0;
    BF_DISPATCH(isa, group_conv, (&p, x, w, bias, residual, y, &activation, scratch));
    return 1;
}
