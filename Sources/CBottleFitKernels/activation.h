#ifndef BOTTLEFIT_KERNELS_ACTIVATION_H
#define BOTTLEFIT_KERNELS_ACTIVATION_H

/* The activations on 16 floats at once, as generic vectors: always inlined into the caller,
   so they take the caller's instruction set (the packed GEMM's epilogue, depthwise rows,
   `bottlefit_activate`). e^x is Cephes' expf (range reduction by ln 2, degree-5 polynomial,
   about 1 ulp) with x clamped to [-87.3, 88], as the engine's Swift `vectorExp`. */

#include "CBottleFitKernels.h"
#include "vectors.h"

typedef int bf_i16 __attribute__((ext_vector_type(16)));

#define BF_INLINE static inline __attribute__((always_inline))

/* Vectors go in and out through pointers: passed by value, a 16-float vector's ABI differs
   between the builds, and clang refuses such calls across `target` attributes. */

/* *v = e^*v. */
BF_INLINE void bf_exp16(bf_v16 *v) {
    bf_v16 lo = -87.33654f, hi = 88.0f;
    bf_v16 x = *v < lo ? lo : *v;
    x = x > hi ? hi : x;
    /* Round to nearest even by adding and subtracting 1.5·2^23 (|x·log2 e| < 2^22 here): two
       additions in every build, where SSE2 has no rounding instruction (a libm call per lane). */
    bf_v16 magic = 12582912.0f;
    bf_v16 n = (x * 1.44269504088896341f + magic) - magic;
    bf_v16 r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    bf_v16 p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    bf_v16 y = p * (r * r) + r + 1.0f;
    bf_i16 e = (__builtin_convertvector(n, bf_i16) + 127) << 23;
    *v = y * (bf_v16)e;
}

/* *x = min(max(*x, lo), hi). */
BF_INLINE void bf_clamp16(bf_v16 *x, float lo, float hi) {
    bf_v16 l = lo, h = hi;
    bf_v16 v = *x < l ? l : *x;
    *x = v > h ? h : v;
}

/* The activation of `a` on *x in place (BOTTLEFIT_ACTIVATION_*; a->alpha, a->beta are its
   parameters). */
BF_INLINE void bf_activate16(bf_v16 *x, const bottlefit_activation *a) {
    bf_v16 v = *x, zero = 0.0f, t;
    switch (a->kind) {
    case BOTTLEFIT_ACTIVATION_NONE: return;
    case BOTTLEFIT_ACTIVATION_RELU: *x = v < zero ? zero : v; return;
    case BOTTLEFIT_ACTIVATION_CLIP: bf_clamp16(x, a->alpha, a->beta); return;
    case BOTTLEFIT_ACTIVATION_LEAKY_RELU: *x = v < zero ? v * a->alpha : v; return;
    case BOTTLEFIT_ACTIVATION_SIGMOID:
        t = -v;
        bf_exp16(&t);
        *x = 1.0f / (1.0f + t);
        return;
    case BOTTLEFIT_ACTIVATION_HARD_SIGMOID:
        t = a->alpha * v + a->beta;
        bf_clamp16(&t, 0.0f, 1.0f);
        *x = t;
        return;
    case BOTTLEFIT_ACTIVATION_HARD_SWISH:
        t = v * (1.0f / 6.0f) + 0.5f;
        bf_clamp16(&t, 0.0f, 1.0f);
        *x = v * t;
        return;
    case BOTTLEFIT_ACTIVATION_SILU:
        t = -v;
        bf_exp16(&t);
        *x = v / (1.0f + t);
        return;
    }
}

/* The same on one float (a row's tail): lane 0 of the vector form, so tails round alike. */
BF_INLINE float bf_activate1(float x, const bottlefit_activation *a) {
    if (a->kind == BOTTLEFIT_ACTIVATION_NONE) return x;
    bf_v16 v = x;
    bf_activate16(&v, a);
    return v[0];
}

#endif
