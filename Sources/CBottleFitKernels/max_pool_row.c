#include "CBottleFitKernels.h"
#include "vectors.h"

/* y = a·s + b stays two roundings, as in the engine's generic pooling, in every build. */
#pragma clang fp contract(off)

/* a > b ? a : b lane-wise: one `maxps` on x86 (NaN in a gives b, as the engine's pooling). */
#define bf_larger(a0, b0) \
    ({ \
        __typeof__(a0) larger_a_ = (a0); \
        __typeof__(b0) larger_b_ = (b0); \
        larger_a_ > larger_b_ ? larger_a_ : larger_b_; \
    })

int bottlefit_max_pool_row_supported(bottlefit_max_pool_row_geometry g) {
    return (g.stride == 1 || g.stride == 2) && g.kernel_width >= 1 && g.pad_left >= 0 && g.pad_left < g.kernel_width;
}

ptrdiff_t bottlefit_max_pool_row_scratch(bottlefit_max_pool_row_geometry g) {
    return (g.output_width + 15) / 16 * 16 * g.stride + g.kernel_width + 32;
}

#define BF_BODY "max_pool_row_body.h"
#include "builds.h"

void bottlefit_max_pool_row(
    bottlefit_isa isa, bottlefit_max_pool_row_geometry g, ptrdiff_t channels, const float *input,
    ptrdiff_t input_channel_stride, const ptrdiff_t *row_offsets, ptrdiff_t row_count, float *output,
    ptrdiff_t output_channel_stride, const float *scale, const float *shift, int relu, float *scratch) {
    BF_DISPATCH(
        isa, max_pool_row,
        (g, channels, input, input_channel_stride, row_offsets, row_count, output, output_channel_stride, scale, shift, relu,
         scratch));
}
