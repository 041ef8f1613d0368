#include "CBottleFitKernels.h"
#include "vectors.h"

/* The depthwise convolution's tap loops: in Swift they had been compiled for AVX2 by the
   manifest; compiled for the baseline they cost MobileNetV2 a third more time, so they are
   here, built per instruction set like the other kernels. */

#define BF_TARGET
#define BF_NAME(name) name##_portable
#include "depthwise_row_body.h"
#undef BF_TARGET
#undef BF_NAME

#if defined(__x86_64__)
#define BF_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define BF_NAME(name) name##_avx512
#include "depthwise_row_body.h"
#undef BF_TARGET
#undef BF_NAME
#endif

void bottlefit_depthwise_row(
    bottlefit_isa isa, const float *x, float *row, const float *w, const bottlefit_depthwise_geometry *g, ptrdiff_t oy) {
#if defined(__x86_64__)
    if (isa == BOTTLEFIT_ISA_AVX512 && bottlefit_isa_supported(BOTTLEFIT_ISA_AVX512)) {
        depthwise_row_avx512(x, row, w, g, oy);
        return;
    }
#endif
    (void)isa;
    depthwise_row_portable(x, row, w, g, oy);
}
