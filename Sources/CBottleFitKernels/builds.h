/* Includes the kernel body named by BF_BODY once per instruction set, each time with
   BF_TARGET (the functions' `target` attribute), BF_NAME (the suffix: name_portable,
   name_avx512, name_avx2) and BF_FMA(a, b, acc) defined: the portable build plain, with
   multiply and add as two operations (a fused one would be a libm call on x86-64 without
   FMA; the compiler fuses them where the target has FMA, as on aarch64), and on x86-64 only
   the AVX-512 and AVX2 builds with explicit FMA. BF_WIDE is 1 where the build holds 32
   vectors of 16 floats in registers (AVX-512's 32 ZMM), else 0 (SSE2, NEON and AVX2 hold 4 to
   8). BF_AVX2 is 1 in the AVX2 build only (its masked 8-float loads and stores). No include
   guard: one use per kernel file. */

#define BF_TARGET
#define BF_NAME(name) name##_portable
#define BF_FMA(a, b, acc) ((acc) + (a) * (b))
#define BF_WIDE 0
#define BF_AVX2 0
#include BF_BODY
#undef BF_TARGET
#undef BF_NAME
#undef BF_FMA
#undef BF_WIDE

#if defined(__x86_64__)
#define BF_FMA(a, b, acc) __builtin_elementwise_fma((a), (b), (acc))
#define BF_TARGET BF_TARGET_AVX512
#define BF_NAME(name) name##_avx512
#define BF_WIDE 1
#include BF_BODY
#undef BF_TARGET
#undef BF_NAME
#undef BF_WIDE
#undef BF_AVX2
#define BF_TARGET BF_TARGET_AVX2
#define BF_NAME(name) name##_avx2
#define BF_WIDE 0
#define BF_AVX2 1
#include BF_BODY
#undef BF_WIDE
#undef BF_TARGET
#undef BF_NAME
#undef BF_FMA
#endif
#undef BF_AVX2
