import CBottleFitKernels

/// Depthwise convolution (one input and one output channel per group: MobileNet, EfficientNet,
/// MNASNet, ShuffleNet, ConvNeXt), computed directly, one output row at a time: the row is
/// zeroed, each kernel tap adds its weight times the input row over the columns whose input
/// lies inside (so no per-element bounds checks; for stride 1 the inner loop is a contiguous,
/// vectorised multiply-add), and bias, residual and activation (BN is already folded into the
/// weights) are applied while the row is still in L1. No im2col, no GEMM per group.
///
/// `x` is one input plane (ih × iw), `y` the output plane, `w` the channel's kernel. The taps
/// run in C (`bottlefit_depthwise_row`, built per instruction set like the other kernels: in
/// Swift compiled for the baseline they were a third slower than with the old AVX2 flag).
func depthwiseConvolutionPlane(
    x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, geometry g: SpatialGeometry,
    bias: Float, residual: UnsafeMutablePointer<Float>?, activation: Activation, instructionSet: KernelInstructionSet
) {
    var geometry = bottlefit_depthwise_geometry(
        input_height: g.input.h, input_width: g.input.w, output_width: g.output.w, kernel_height: g.kernel.h,
        kernel_width: g.kernel.w, stride_height: g.stride.h, stride_width: g.stride.w, dilation_height: g.dilation.h,
        dilation_width: g.dilation.w, pad_top: g.padTop, pad_left: g.padLeft)
    let ow = g.output.w
    for oy in 0..<g.output.h {
        let row = y + oy * ow
        bottlefit_depthwise_row(instructionSet.c, x, row, w, &geometry, oy)
        epilogueRow(row, area: ow, bias: bias, residual: residual.map { $0 + oy * ow }, activation: activation)
    }
}
