#include "CBottleFitKernels.h"
#include "activation.h"

/* The instruction-set-free parts (packing); the microkernels and their drivers are in
   packed_gemm_body.h, compiled here once per instruction set. */

void bottlefit_pack_a(const float *a, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, int transposed, float *out) {
    ptrdiff_t blocks, size;
    bf_depth_blocks(k, &blocks, &size);
    ptrdiff_t p = bf_panels(m);
    float *dst = out;
    for (ptrdiff_t blk = 0; blk < blocks; blk++) {
        ptrdiff_t k0 = blk * size, k1 = bf_min(k, k0 + size);
        for (ptrdiff_t panel = 0; panel < p; panel++) {
            for (ptrdiff_t kk = k0; kk < k1; kk++) {
                for (ptrdiff_t r = 0; r < 8; r++) {
                    ptrdiff_t row = panel * 8 + r;
                    dst[r] = row >= m ? 0 : transposed ? a[kk * lda + row] : a[row * lda + kk];
                }
                dst += 8;
            }
        }
    }
}

void bottlefit_pack_b(
    const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, ptrdiff_t row_begin, ptrdiff_t row_end, float *packed) {
    for (ptrdiff_t q = 0; q < n;) {
        ptrdiff_t cols = bf_min(48, n - q);
        ptrdiff_t w = (cols + 15) / 16 * 16;
        float *panel = packed + q * k;
        for (ptrdiff_t kk = row_begin; kk < row_end; kk++) {
            __builtin_memcpy(panel + kk * w, b + kk * ldb + q, (size_t)cols * sizeof(float));
            for (ptrdiff_t j = cols; j < w; j++) panel[kk * w + j] = 0;
        }
        q += cols;
    }
}

int bottlefit_takes_three_rows(ptrdiff_t m, ptrdiff_t k, ptrdiff_t n) {
    ptrdiff_t blocks, size;
    bf_depth_blocks(k, &blocks, &size);
    return m % 8 == 0 && blocks == 1 && n % 16 == 0 && n % 48 != 0;
}

/* Where row k of a microkernel's B operand starts: packed panels (`stride` floats apart),
   rows of an input at base + offsets[k], or three vectors from three places at
   bases[i] + offsets[k] (48 columns of C taken from up to three output rows). The kind is a
   constant at every call, so each kernel is compiled once per kind. */
enum { BF_PACKED, BF_INDIRECT, BF_SPLIT };

typedef struct bf_rows {
    const float *base;
    ptrdiff_t stride;
    const ptrdiff_t *offsets;
    const float *bases[3];
} bf_rows;

#define BF_ALWAYS static inline __attribute__((always_inline))

BF_ALWAYS const float *bf_row(const bf_rows *b, int kind, ptrdiff_t k) {
    return kind == BF_PACKED ? b->base + k * b->stride : b->base + b->offsets[k];
}

/* The three 16-float vectors of row k the 8 x 48 kernel reads. */
BF_ALWAYS void bf_vectors(const bf_rows *b, int kind, ptrdiff_t k, const float **p) {
    if (kind == BF_SPLIT) {
        ptrdiff_t o = b->offsets[k];
        p[0] = b->bases[0] + o;
        p[1] = b->bases[1] + o;
        p[2] = b->bases[2] + o;
    } else {
        const float *r = bf_row(b, kind, k);
        p[0] = r;
        p[1] = r + 16;
        p[2] = r + 32;
    }
}

/* Where the 8 x 48 microkernel puts its block of C: the scratch tile (c == NULL; the caller
   then commits it), or, for a full block computed in one depth block, straight into C with
   the epilogue applied in registers. `offsets` place a row's three vectors (in floats from
   its start; apart for three output rows). */
typedef struct bf_sink {
    float *tile;
    float *c;
    ptrdiff_t ldc;
    bottlefit_epilogue epilogue;
    ptrdiff_t offsets[3];
} bf_sink;

/* AVX2 and portable (BF_WIDE 0): each 8 x 48 block as 4-row strips of 8-float vectors, which
   fit 16 YMM registers; OpenBLAS stays the default GEMM there except for the convolutions
   ComputeContext.GEMM.mixed runs packed (a fused channel scale, the direct row path). */
#define BF_BODY "packed_gemm_body.h"
#include "builds.h"

/* Each entry point runs the build asked for when the CPU has it, else the portable one. */
void bottlefit_packed_gemm(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end,
    const float *packed_b, ptrdiff_t n, float *c, ptrdiff_t ldc, bottlefit_epilogue epilogue, float *tile) {
    BF_DISPATCH(isa, multiply, (packed_a, m, k, panel_begin, panel_end, packed_b, n, c, ldc, &epilogue, tile));
}

void bottlefit_packed_gemm_indirect(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end,
    const float *base, const ptrdiff_t *offsets, ptrdiff_t n, float *c, ptrdiff_t ldc, bottlefit_epilogue epilogue,
    float *tile) {
    BF_DISPATCH(isa, multiply_indirect, (packed_a, m, k, panel_begin, panel_end, base, offsets, n, c, ldc, &epilogue, tile));
}

void bottlefit_packed_gemm_indirect_rows(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, const float *const *bases,
    const ptrdiff_t *offsets, ptrdiff_t n, float *const *c, ptrdiff_t ldc, bottlefit_epilogue epilogue, float *tile) {
    BF_DISPATCH(isa, multiply_indirect_rows, (packed_a, m, k, bases, offsets, n, c, ldc, &epilogue, tile));
}
