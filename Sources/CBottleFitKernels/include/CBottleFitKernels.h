#ifndef BOTTLEFIT_KERNELS_H
#define BOTTLEFIT_KERNELS_H

/* The engine's hot kernels in C, each compiled once per instruction set and selected at run
   time (the pattern swift-crypto inherits from BoringSSL: per-function code for a CPU
   feature, a CPUID check, a portable path everywhere else). Nothing in the package is
   compiled for a particular CPU; the AVX-512 and AVX2 versions carry a per-function `target`
   attribute and exist only on x86-64, and every entry point takes the instruction set to
   use, so the caller (the engine's compute context) decides, not a global.

   Packed GEMM: C[M, N] = A[M, K] · B[K, N], row-major. A (a layer's weights) is packed once
   into panels of 8 rows, blocked along K (`bottlefit_depth_blocks`): for each depth block,
   for each panel, [kc][8] floats. B (activations, im2col columns or Winograd tiles) is packed
   per call into panels of 48 columns (the last rounded up to 16, 32 or 48), [K][width]; or it
   is read in place as rows at `base + offsets[k]` (a direct convolution). The AVX-512
   microkernel keeps an 8 x 48 block of C in 24 ZMM accumulators; the portable one is the
   same code on the compiler's generic vectors (SSE2 on any x86-64, NEON on aarch64). */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction sets the kernels are compiled for. */
typedef enum bottlefit_isa {
    /* Generic vector code for the architecture's baseline (x86-64 SSE2, aarch64 NEON). */
    BOTTLEFIT_ISA_PORTABLE = 0,
    /* AVX-512 F, BW, DQ, VL and FMA (Skylake-SP and newer); x86-64 only. */
    BOTTLEFIT_ISA_AVX512 = 1,
    /* AVX2 and FMA (Haswell, Zen and newer); x86-64 only. The same sources as the others:
       a 16-float vector takes two YMM registers. */
    BOTTLEFIT_ISA_AVX2 = 2,
} bottlefit_isa;

/* Whether this CPU, and the operating system (which must save the ZMM state), runs `isa`.
   Checked once with CPUID and XGETBV, then cached. */
int bottlefit_isa_supported(bottlefit_isa isa);

/* The fastest instruction set this CPU runs. */
bottlefit_isa bottlefit_isa_best(void);

/* `isa` if this CPU runs it, else the portable build: what every entry point runs. */
bottlefit_isa bottlefit_isa_runnable(bottlefit_isa isa);

/* Rows of A per panel, columns of B per full panel, the depth-block bound and the columns of
   B per L2 block. */
enum {
    BOTTLEFIT_PANEL_ROWS = 8,
    BOTTLEFIT_PANEL_COLUMNS = 48,
    BOTTLEFIT_MAXIMUM_DEPTH = 512,
    BOTTLEFIT_BLOCK_COLUMNS = 240,
    /* Floats of C tile every thread that multiplies needs. */
    BOTTLEFIT_TILE_FLOATS = 8 * 48,
};

/* A pointwise activation: what the engine fuses into the step producing its input. */
typedef enum bottlefit_activation_kind {
    BOTTLEFIT_ACTIVATION_NONE = 0,
    BOTTLEFIT_ACTIVATION_RELU = 1,
    /* min(max(x, alpha), beta) (ReLU6: 0, 6). */
    BOTTLEFIT_ACTIVATION_CLIP = 2,
    /* x < 0 ? alpha·x : x. */
    BOTTLEFIT_ACTIVATION_LEAKY_RELU = 3,
    BOTTLEFIT_ACTIVATION_SIGMOID = 4,
    /* max(0, min(1, alpha·x + beta)). */
    BOTTLEFIT_ACTIVATION_HARD_SIGMOID = 5,
    /* x · max(0, min(1, x/6 + 1/2)). */
    BOTTLEFIT_ACTIVATION_HARD_SWISH = 6,
    /* x · sigmoid(x), computed as x / (1 + e^-x). */
    BOTTLEFIT_ACTIVATION_SILU = 7,
} bottlefit_activation_kind;

typedef struct bottlefit_activation {
    int kind;
    float alpha, beta;
} bottlefit_activation;

/* Applies `activation` to `count` floats in place. Sigmoid and SiLU use a vector e^x
   (Cephes' expf, about 1 ulp), the same in every build up to fused multiply-adds. */
void bottlefit_activate(bottlefit_isa isa, float *x, ptrdiff_t count, bottlefit_activation activation);

/* What happens to a finished block of C: + bias[row], + residual[row, column], ReLU, then
   the activation (whose kind is NONE when only ReLU or nothing is wanted). */
typedef struct bottlefit_epilogue {
    const float *bias;
    const float *residual;
    ptrdiff_t residual_stride;
    int relu;
    bottlefit_activation activation;
} bottlefit_epilogue;

/* Packs row-major A (M x K, row stride lda) into `out` (panels(M)·8·K floats): for each depth
   block, for each panel of 8 rows, [kc][8]; rows past M are zero. With `transposed`, element
   (row, k) is read from a[k·lda + row]. */
void bottlefit_pack_a(const float *a, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, int transposed, float *out);

/* Packs rows [row_begin, row_end) of B (K x n, row stride ldb): panel q (columns 48q..<48q+w)
   is [K][w] starting at 48q·K. Threads may pack disjoint row ranges of one B at once. */
void bottlefit_pack_b(
    const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, ptrdiff_t row_begin, ptrdiff_t row_end, float *packed);

/* Rows of panels [panel_begin, panel_end) of C = A·B for columns 0..<n, then the epilogue.
   `c` is row 0, column 0 of C (row stride ldc); the residual is indexed like C; `tile` holds
   BOTTLEFIT_TILE_FLOATS. */
void bottlefit_packed_gemm(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end,
    const float *packed_b, ptrdiff_t n, float *c, ptrdiff_t ldc, bottlefit_epilogue epilogue, float *tile);

/* The same with row k of B at base + offsets[k], running on contiguously (readable up to n
   rounded up to 16): a direct convolution over one output row. */
void bottlefit_packed_gemm_indirect(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, ptrdiff_t panel_begin, ptrdiff_t panel_end,
    const float *base, const ptrdiff_t *offsets, ptrdiff_t n, float *c, ptrdiff_t ldc, bottlefit_epilogue epilogue,
    float *tile);

/* Whether `bottlefit_packed_gemm_indirect_rows` takes these dimensions: rows in whole panels,
   one depth block, and rows of whole vectors that do not already fill 48-wide blocks. */
int bottlefit_takes_three_rows(ptrdiff_t m, ptrdiff_t k, ptrdiff_t n);

/* `bottlefit_packed_gemm_indirect` for three output rows at once (no residual): row i reads B
   at bases[i] and writes C at c[i] (all with ldc); their 3·n/16 vectors go through the 8 x 48
   kernel three at a time, wherever a row ends. */
void bottlefit_packed_gemm_indirect_rows(
    bottlefit_isa isa, const float *packed_a, ptrdiff_t m, ptrdiff_t k, const float *const *bases,
    const ptrdiff_t *offsets, ptrdiff_t n, float *const *c, ptrdiff_t ldc, bottlefit_epilogue epilogue, float *tile);

/* One output row of max pooling, for every channel. */
typedef struct bottlefit_max_pool_row_geometry {
    ptrdiff_t input_width, output_width, kernel_width, stride, pad_left;
} bottlefit_max_pool_row_geometry;

/* Whether `bottlefit_max_pool_row` takes this geometry (stride 1 or 2, pad < kernel). */
int bottlefit_max_pool_row_supported(bottlefit_max_pool_row_geometry g);

/* Floats of scratch `bottlefit_max_pool_row` needs. */
ptrdiff_t bottlefit_max_pool_row_scratch(bottlefit_max_pool_row_geometry g);

/* Output row of channels 0..<channels: channel j combines the rows at
   input + j·input_channel_stride + row_offsets[i] for i in 0..<row_count (at least 1) and
   writes output + j·output_channel_stride (output_width floats), then y = y·scale[j] + shift[j]
   when `scale` is given, and max(y, 0) after it when `relu`. */
void bottlefit_max_pool_row(
    bottlefit_isa isa, bottlefit_max_pool_row_geometry g, ptrdiff_t channels, const float *input,
    ptrdiff_t input_channel_stride, const ptrdiff_t *row_offsets, ptrdiff_t row_count, float *output,
    ptrdiff_t output_channel_stride, const float *scale, const float *shift, int relu, float *scratch);

/* A depthwise or grouped convolution's plane geometry (one input plane to one output plane). */
typedef struct bottlefit_depthwise_geometry {
    ptrdiff_t input_height, input_width, output_width;
    ptrdiff_t kernel_height, kernel_width, stride_height, stride_width;
    ptrdiff_t dilation_height, dilation_width, pad_top, pad_left;
} bottlefit_depthwise_geometry;

/* Floats of scratch `bottlefit_group_conv` needs for cg input channels (the group's padded
   input), or -1 when it does not take the geometry (kernels wider than 16). */
ptrdiff_t bottlefit_group_conv_scratch(const bottlefit_depthwise_geometry *g, ptrdiff_t cg, ptrdiff_t output_height);

/* One group of a convolution, directly: cg input planes at `x` (input_height x input_width
   each) to mg output planes at `y` (output_height x output_width each), weights [mg][cg][kh][kw]
   at `w`, + bias[m] (when not NULL), + the residual's planes (same layout as y, when not
   NULL), then the activation. `scratch` holds `bottlefit_group_conv_scratch` floats. Returns 0
   (and does nothing) for a geometry `bottlefit_group_conv_scratch` refuses. */
int bottlefit_group_conv(
    bottlefit_isa isa, const float *x, ptrdiff_t cg, ptrdiff_t mg, const float *w, const float *bias,
    const float *residual, float *y, const bottlefit_depthwise_geometry *g, ptrdiff_t output_height,
    bottlefit_activation activation, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
