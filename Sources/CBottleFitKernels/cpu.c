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

/* AVX2 (leaf 7 EBX bit 5), FMA and AVX (leaf 1 ECX bits 12, 28), and an operating system
   that saves the YMM registers (XCR0 bits 1, 2). */
static int detect_avx2(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & (1u << 27)) || !(ecx & (1u << 12)) || !(ecx & (1u << 28))) return 0;
    unsigned xcr0_low, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 0x6) != 0x6) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    return (ebx & (1u << 5)) != 0;
}

/* -1 until first asked; then 0 or 1. Two threads asking at once both compute the same answer. */
static int avx512_state = -1, avx2_state = -1;

static int cached(int *state, int (*detect)(void)) {
    int s = __atomic_load_n(state, __ATOMIC_RELAXED);
    if (s < 0) {
        s = detect();
        __atomic_store_n(state, s, __ATOMIC_RELAXED);
    }
    return s;
}
#endif


int bottlefit_isa_supported(bottlefit_isa isa) {
    switch (isa) {
    case BOTTLEFIT_ISA_PORTABLE:
        return 1;
    case BOTTLEFIT_ISA_AVX512:
#if defined(__x86_64__)
        return cached(&avx512_state, detect_avx512);
#else
        return 0;
#endif
    case BOTTLEFIT_ISA_AVX2:
#if defined(__x86_64__)
        return cached(&avx2_state, detect_avx2);
#else
        return 0;
#endif
    }
    return 0;
}

bottlefit_isa bottlefit_isa_best(void) {
    if (bottlefit_isa_supported(BOTTLEFIT_ISA_AVX512)) return BOTTLEFIT_ISA_AVX512;
    if (bottlefit_isa_supported(BOTTLEFIT_ISA_AVX2)) return BOTTLEFIT_ISA_AVX2;
    return BOTTLEFIT_ISA_PORTABLE;
}

bottlefit_isa bottlefit_isa_runnable(bottlefit_isa isa) {
    return bottlefit_isa_supported(isa) ? isa : BOTTLEFIT_ISA_PORTABLE;
}
