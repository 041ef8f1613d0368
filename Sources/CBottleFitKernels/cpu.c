#include "CBottleFitKernels.h"

#if defined(__x86_64__)
#include <cpuid.h>

/* AVX-512 F, DQ, BW, VL (CPUID leaf 7, EBX bits 16, 17, 30, 31) and FMA (leaf 1, ECX bit 12),
   and an operating system that saves the opmask and ZMM registers (XCR0 bits 1, 2, 5, 6, 7;
   OSXSAVE, leaf 1 ECX bit 27, says XGETBV may be used). */
static int detect_avx512(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & (1u << 27)) || !(ecx & (1u << 12))) return 0;
    unsigned xcr0_low, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0xe6) != 0xe6) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned needed = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
    return (ebx & needed) == needed;
}

/* -1 until first asked; then 0 or 1. Two threads asking at once both compute the same answer. */
static int avx512_state = -1;
#endif


int bottlefit_isa_supported(bottlefit_isa isa) {
    switch (isa) {
    case BOTTLEFIT_ISA_PORTABLE:
        return 1;
    case BOTTLEFIT_ISA_AVX512: {
#if defined(__x86_64__)
        int state = __atomic_load_n(&avx512_state, __ATOMIC_RELAXED);
        if (state < 0) {
            state = detect_avx512();
            __atomic_store_n(&avx512_state, state, __ATOMIC_RELAXED);
        }
        return state;
#else
        return 0;
#endif
    }
    }
    return 0;
}

bottlefit_isa bottlefit_isa_best(void) {
    return bottlefit_isa_supported(BOTTLEFIT_ISA_AVX512) ? BOTTLEFIT_ISA_AVX512 : BOTTLEFIT_ISA_PORTABLE;
}
