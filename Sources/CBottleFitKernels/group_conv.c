#include "activation.h"

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
    /* Output vectors read up to the width rounded up to 16 (and 64 for the four-vector blocks
       of single channels), plus the furthest tap. */
    ptrdiff_t widest = (g->output_width + 63) / 64 * 64;
    p->phase_floats = widest + ((g->kernel_width - 1) * g->dilation_width) / sw + 1;
    p->row_floats = p->phase_floats * sw;
    for (ptrdiff_t kx = 0; kx < g->kernel_width; kx++) {
        ptrdiff_t col = kx * g->dilation_width;
        p->tap_offsets[kx] = (col % sw) * p->phase_floats + col / sw;
    }
    return 1;
}

/* Copies the group's cg input planes into the padded, phase-split buffer: each phase row takes
   every stride-th input column (no division per element), and only the floats around what
   it takes are zeroed. */
static void bf_pad_group(const bf_group_plan *p, const float *x, float *padded) {
    const bottlefit_depthwise_geometry *g = p->g;
    ptrdiff_t sw = g->stride_width, iw = g->input_width, ih = g->input_height, pf = p->phase_floats;
    for (ptrdiff_t c = 0; c < p->cg; c++) {
        for (ptrdiff_t r = 0; r < p->rows; r++) {
            float *dst = padded + (c * p->rows + r) * p->row_floats;
            ptrdiff_t iy = r - g->pad_top;
            if (iy < 0 || iy >= ih) {
                for (ptrdiff_t i = 0; i < p->row_floats; i++) dst[i] = 0.0f;
                continue;
            }
            const float *src = x + (c * ih + iy) * iw;
            /* Input column ix is padded column ix + pad_left: phase (ix + pad_left) % sw, at
               (ix + pad_left) / sw. */
            for (ptrdiff_t phase = 0; phase < sw; phase++) {
                float *row = dst + phase * pf;
                ptrdiff_t first = ((phase - g->pad_left) % sw + sw) % sw;
                ptrdiff_t at = (first + g->pad_left) / sw;
                ptrdiff_t count = first < iw ? bf_max(0, bf_min((iw - first + sw - 1) / sw, pf - at)) : 0;
                if (count == 0) at = 0;
                const float *s = src + first;
                for (ptrdiff_t j = 0; j < at; j++) row[j] = 0.0f;
                if (sw == 1) {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[j];
                } else if (sw == 2) {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[2 * j];
                } else {
                    for (ptrdiff_t j = 0; j < count; j++) row[at + j] = s[j * sw];
                }
                for (ptrdiff_t j = at + count; j < pf; j++) row[j] = 0.0f;
            }
        }
    }
}

#define BF_BODY "group_conv_body.h"
#include "builds.h"

ptrdiff_t bottlefit_group_conv_scratch(const bottlefit_depthwise_geometry *g, ptrdiff_t cg, ptrdiff_t output_height) {
    bf_group_plan p;
    if (!bf_group_plan_make(g, cg, 1, output_height, &p)) return -1;
    return cg * p.rows * p.row_floats;
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
