#ifndef BOTTLEFIT_KERNELS_VECTORS_H
#define BOTTLEFIT_KERNELS_VECTORS_H

/* Clang's generic vectors: one source for every instruction set. A function with an AVX-512
   `target` attribute keeps a 16-float vector in one ZMM register; without one the compiler
   splits it (four SSE2 registers, or four NEON ones). Loads and stores are unaligned. */

#include <stddef.h>

#include "CBottleFitKernels.h"

typedef float bf_v16 __attribute__((ext_vector_type(16)));
typedef float bf_v8 __attribute__((ext_vector_type(8)));
typedef float bf_v16u __attribute__((ext_vector_type(16), aligned(4)));
typedef float bf_v8u __attribute__((ext_vector_type(8), aligned(4)));

#define BF_LOAD16(p) (*(const bf_v16u *)(const void *)(p))
#define BF_STORE16(p, v) (*(bf_v16u *)(void *)(p) = (v))
#define BF_LOAD8(p) (*(const bf_v8u *)(const void *)(p))
#define BF_STORE8(p, v) (*(bf_v8u *)(void *)(p) = (v))

/* The per-function targets of the x86-64 builds. */
#define BF_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define BF_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* Runs name_avx512, name_avx2 or name_portable with `args`: the build `isa` names when this
   CPU runs it (`bottlefit_isa_runnable`), else the portable one. */
#if defined(__x86_64__)
#define BF_DISPATCH(isa, name, args) \
    do { \
        switch (bottlefit_isa_runnable(isa)) { \
        case BOTTLEFIT_ISA_AVX512: name##_avx512 args; break; \
        case BOTTLEFIT_ISA_AVX2: name##_avx2 args; break; \
        case BOTTLEFIT_ISA_PORTABLE: name##_portable args; break; \
        } \
    } while (0)
#else
#define BF_DISPATCH(isa, name, args) ((void)(isa), name##_portable args)
#endif

static inline ptrdiff_t bf_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t bf_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

/* The depth blocks A is packed in and multiplied by: equal sizes of at most 512. */
static inline void bf_depth_blocks(ptrdiff_t k, ptrdiff_t *count, ptrdiff_t *size) {
    *count = bf_max(1, (k + 511) / 512);
    *size = (k + *count - 1) / *count;
}

static inline ptrdiff_t bf_panels(ptrdiff_t m) { return (m + 7) / 8; }

#endif
