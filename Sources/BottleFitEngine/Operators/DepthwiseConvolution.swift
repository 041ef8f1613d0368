/// Depthwise convolution (one input and one output channel per group: MobileNet, EfficientNet,
/// MNASNet, ShuffleNet, ConvNeXt), computed directly, one output row at a time: the row is
/// zeroed, each kernel tap adds its weight times the input row over the columns whose input
/// lies inside (so no per-element bounds checks; for stride 1 the inner loop is a contiguous,
/// vectorised multiply-add), and bias, residual and activation (BN is already folded into the
/// weights) are applied while the row is still in L1. No im2col, no GEMM per group.
///
/// `x` is one input plane (ih × iw), `y` the output plane, `w` the channel's kernel.
func depthwiseConvolutionPlane(
    x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, geometry g: SpatialGeometry,
    bias: Float, residual: UnsafeMutablePointer<Float>?, activation: Activation
) {
    let (ih, iw) = g.input
    let (oh, ow) = g.output
    let kh = g.kernel.h, kw = g.kernel.w, sh = g.stride.h, sw = g.stride.w, dh = g.dilation.h, dw = g.dilation.w
    let padTop = g.padTop, padLeft = g.padLeft
    for oy in 0..<oh {
        let row = y + oy * ow
        row.update(repeating: 0, count: ow)
        for ki in 0..<kh {
            let iy = oy * sh - padTop + ki * dh
            if iy < 0 || iy >= ih { continue }
            let xr = x + iy * iw
            for kj in 0..<kw {
                let wv = w[ki * kw + kj]
                // Input column of output column ox: ox·sw + offset; keep 0 ≤ it < iw.
                let offset = kj * dw - padLeft
                let first = offset >= 0 ? 0 : (-offset + sw - 1) / sw
                let lastInput = iw - 1 - offset
                let end = lastInput < 0 ? 0 : Swift.min(ow, lastInput / sw + 1)
                if first >= end { continue }
                if sw == 1 {
                    let src = xr + offset
                    for ox in first..<end { row[ox] += wv * src[ox] }
                } else if sw == 2 {
                    let src = xr + offset
                    for ox in first..<end { row[ox] += wv * src[2 * ox] }
                } else {
                    for ox in first..<end { row[ox] += wv * xr[ox * sw + offset] }
                }
            }
        }
        epilogueRow(row, area: ow, bias: bias, residual: residual.map { $0 + oy * ow }, activation: activation)
    }
}
