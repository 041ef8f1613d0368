#include "activation.h"

/* Activations over a run of floats, built per instruction set. */

#define BF_ACTIVATE_BODY(name, target) \
    static target void name(float *x, ptrdiff_t count, const bottlefit_activation *a) { \
        ptrdiff_t i = 0; \
        for (; i + 16 <= count; i += 16) { \
            bf_v16 v = BF_LOAD16(x + i); \
            bf_activate16(&v, a); \
            BF_STORE16(x + i, v); \
        } \
        for (; i < count; i++) x[i] = bf_activate1(x[i], a); \
    }

BF_ACTIVATE_BODY(activate_portable, )
#if defined(__x86_64__)
BF_ACTIVATE_BODY(activate_avx512, BF_TARGET_AVX512)
BF_ACTIVATE_BODY(activate_avx2, BF_TARGET_AVX2)
#endif

void bottlefit_activate(bottlefit_isa isa, float *x, ptrdiff_t count, bottlefit_activation activation) {
    if (activation.kind == BOTTLEFIT_ACTIVATION_NONE) return;
    BF_DISPATCH(isa, activate, (x, count, &activation));
}
