import CBottleFitKernels

/// Max pooling of one output row for every channel, from rows that are already in cache (the
/// engine's fused convolution and pooling step), with an optional per-channel affine and ReLU
/// after it (a BatchNormalization that follows the pool): the Swift face of
/// `bottlefit_max_pool_row` in `CBottleFitKernels`.
enum MaxPoolRow {
    struct Geometry {
        var c: bottlefit_max_pool_row_geometry

        init(inputWidth: Int, outputWidth: Int, kernelWidth: Int, stride: Int, padLeft: Int) {
            c = bottlefit_max_pool_row_geometry(
                input_width: inputWidth, output_width: outputWidth, kernel_width: kernelWidth, stride: stride, pad_left: padLeft)
        }

        /// Strides this kernel takes (others go through the engine's generic pooling).
        var isSupported: Bool { bottlefit_max_pool_row_supported(c) != 0 }

        /// Floats of the margined row: what the last block of outputs reads.
        var scratchFloats: Int { bottlefit_max_pool_row_scratch(c) }
    }

    /// Output row of channels 0..<channels: channel j combines the rows at
    /// `input + j·inputChannelStride + rowOffsets[i]` for i in 0..<rowCount and writes
    /// `output + j·outputChannelStride`, then y = y·scale[j] + shift[j] when `scale` is given,
    /// and max(y, 0) after it when `relu`. `scratch` holds `scratchFloats`; `rowCount` ≥ 1.
    static func run(
        _ isa: KernelInstructionSet, _ g: Geometry, channels: Int, input: UnsafePointer<Float>, inputChannelStride: Int,
        rowOffsets: UnsafePointer<Int>, rowCount: Int, output: UnsafeMutablePointer<Float>, outputChannelStride: Int,
        scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, relu: Bool, scratch: UnsafeMutablePointer<Float>
    ) {
        bottlefit_max_pool_row(
            isa.c, g.c, channels, input, inputChannelStride, rowOffsets, rowCount, output, outputChannelStride, scale, shift,
            relu ? 1 : 0, scratch)
    }
}
