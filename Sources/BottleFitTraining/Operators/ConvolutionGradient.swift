import BottleFitEngine

/// Conv (2-D, stride, asymmetric pads, dilation, groups, optional bias) with its gradients.
///
/// Forward, per group g: Y_g [M/g, N·P] = W_g [M/g, K] · col_g [K, N·P] with one
/// `cblas_sgemm` over the whole batch (K = C/g·kh·kw, P = output positions).
/// Backward: dW_g = dY_g · col_gᵀ, dcol_g = W_gᵀ · dY_g folded back by `col2im`.
struct ConvolutionGradient: TrainableOperator {
    let name: String
    let window: Window2D
    let groups: Int
    /// `kernel_shape` when the node states it (otherwise the weight's shape decides).
    let declaredKernel: [Int]?

    init(_ node: Node) throws(TrainingError) {
        let attributes = try AttributeReader(node, allowed: ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        name = node.name
        groups = try attributes.int("group", 1)
        guard groups >= 1 else { throw .unsupported("group=\(groups) (node '\(node.name)')") }
        declaredKernel = node.attributes["kernel_shape"] == nil ? nil : try attributes.ints("kernel_shape", [])
        window = try Window2D(attributes, kernel: declaredKernel ?? [1, 1])
    }

    func geometry(_ x: Buffer, _ w: Buffer) throws(TrainingError) -> WindowGeometry {
        let (_, c, h, wd) = try nchw(x, "Conv '\(name)' input")
        guard w.shape.count == 4, w.shape[1] * groups == c, w.shape[0] % groups == 0 else {
            throw .shapeMismatch("Conv '\(name)': weight \(w.shape) does not fit input \(x.shape) with \(groups) groups")
        }
        guard declaredKernel == nil || [w.shape[2], w.shape[3]] == declaredKernel! else {
            throw .shapeMismatch("Conv '\(name)': weight \(w.shape) disagrees with kernel_shape \(window.kernel)")
        }
        let kh = w.shape[2], kw = w.shape[3]
        let oh = WindowGeometry.outputLength(h, kernel: kh, stride: window.strides[0], padBegin: window.pads[0], padEnd: window.pads[2], dilation: window.dilations[0])
        let ow = WindowGeometry.outputLength(wd, kernel: kw, stride: window.strides[1], padBegin: window.pads[1], padEnd: window.pads[3], dilation: window.dilations[1])
        guard oh > 0, ow > 0 else { throw .shapeMismatch("Conv '\(name)': input \(x.shape) is smaller than the kernel") }
        return WindowGeometry(
            channels: c / groups, height: h, width: wd, kernelH: kh, kernelW: kw,
            strideH: window.strides[0], strideW: window.strides[1], padTop: window.pads[0], padLeft: window.pads[1],
            dilationH: window.dilations[0], dilationW: window.dilations[1], outHeight: oh, outWidth: ow)
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0], w = inputs[1]
        let g = try geometry(x, w)
        let n = x.shape[0], c = x.shape[1], m = w.shape[0]
        let mg = m / groups, k = g.channels * g.kernelH * g.kernelW, np = n * g.positions
        if inputs.count > 2 {
            guard inputs[2].count == m else { throw .shapeMismatch("Conv '\(name)': bias \(inputs[2].shape) for \(m) output channels") }
        }
        var col = uninitializedFloats(groups * k * np)
        var ycm = uninitializedFloats(m * np)
        x.data.withUnsafeBufferPointer { xp in
            col.withUnsafeMutableBufferPointer { cp in
                for gi in 0..<groups {
                    im2col(xp.baseAddress!, batch: n, totalChannels: c, firstChannel: gi * g.channels, channels: g.channels, g, into: cp.baseAddress! + gi * k * np)
                }
            }
        }
        w.data.withUnsafeBufferPointer { wp in
            col.withUnsafeBufferPointer { cp in
                ycm.withUnsafeMutableBufferPointer { yp in
                    for gi in 0..<groups {
                        sgemm(m: mg, n: np, k: k, wp.baseAddress! + gi * mg * k, lda: k, cp.baseAddress! + gi * k * np, ldb: np,
                              yp.baseAddress! + gi * mg * np, ldc: np)
                    }
                }
            }
        }
        var y = Buffer(zeros: [n, m, g.outHeight, g.outWidth])
        ycm.withUnsafeBufferPointer { src in
            y.data.withUnsafeMutableBufferPointer { dst in
                channelMajorToBatch(src.baseAddress!, batch: n, channels: m, positions: g.positions, into: dst.baseAddress!)
            }
        }
        if inputs.count > 2 { addChannelBias(&y, inputs[2]) }
        saved.buffers = [Buffer(shape: [col.count], data: col)]
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        let x = inputs[0], w = inputs[1]
        let g = try! geometry(x, w)
        let n = x.shape[0], c = x.shape[1], m = w.shape[0]
        let mg = m / groups, k = g.channels * g.kernelH * g.kernelW, np = n * g.positions
        var dycm = uninitializedFloats(m * np)
        dy.data.withUnsafeBufferPointer { src in
            dycm.withUnsafeMutableBufferPointer { dst in
                batchToChannelMajor(src.baseAddress!, batch: n, channels: m, positions: g.positions, into: dst.baseAddress!)
            }
        }
        var result: [Buffer?] = Array(repeating: nil, count: inputs.count)
        if needs[1] {
            var dw = Buffer(zeros: w.shape)
            dycm.withUnsafeBufferPointer { dp in
                saved.buffers[0].data.withUnsafeBufferPointer { cp in
                    dw.data.withUnsafeMutableBufferPointer { wp in
                        for gi in 0..<groups {
                            sgemm(transB: true, m: mg, n: k, k: np, dp.baseAddress! + gi * mg * np, lda: np,
                                  cp.baseAddress! + gi * k * np, ldb: np, wp.baseAddress! + gi * mg * k, ldc: k)
                        }
                    }
                }
            }
            result[1] = dw
        }
        if inputs.count > 2, needs[2] {
            var db = Buffer(zeros: [m])
            for ch in 0..<m {
                var s: Float = 0
                for i in 0..<np { s += dycm[ch * np + i] }
                db.data[ch] = s
            }
            result[2] = db
        }
        if needs[0] {
            var dcol = uninitializedFloats(groups * k * np)
            w.data.withUnsafeBufferPointer { wp in
                dycm.withUnsafeBufferPointer { dp in
                    dcol.withUnsafeMutableBufferPointer { cp in
                        for gi in 0..<groups {
                            sgemm(transA: true, m: k, n: np, k: mg, wp.baseAddress! + gi * mg * k, lda: k,
                                  dp.baseAddress! + gi * mg * np, ldb: np, cp.baseAddress! + gi * k * np, ldc: np)
                        }
                    }
                }
            }
            var dx = Buffer(zeros: x.shape)
            dcol.withUnsafeBufferPointer { cp in
                dx.data.withUnsafeMutableBufferPointer { xp in
                    for gi in 0..<groups {
                        col2im(cp.baseAddress! + gi * k * np, batch: n, totalChannels: c, firstChannel: gi * g.channels, channels: g.channels, g, into: xp.baseAddress!)
                    }
                }
            }
            result[0] = dx
        }
        return result
    }
}

/// ConvTranspose (2-D, stride, pads, dilation, groups, output_padding, optional bias) and
/// its gradients: the forward pass is a convolution's input gradient and vice versa.
struct ConvTransposeGradient: TrainableOperator {
    let name: String
    let window: Window2D
    let groups: Int
    let outputPadding: [Int]
    let declaredKernel: [Int]?

    init(_ node: Node) throws(TrainingError) {
        let attributes = try AttributeReader(
            node, allowed: ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "output_padding"])
        name = node.name
        groups = try attributes.int("group", 1)
        guard groups >= 1 else { throw .unsupported("group=\(groups) (node '\(node.name)')") }
        declaredKernel = node.attributes["kernel_shape"] == nil ? nil : try attributes.ints("kernel_shape", [])
        window = try Window2D(attributes, kernel: declaredKernel ?? [1, 1])
        outputPadding = try attributes.ints("output_padding", [0, 0])
        guard outputPadding.count == 2, outputPadding.allSatisfy({ $0 >= 0 }) else {
            throw .unsupported("output_padding \(outputPadding) (node '\(node.name)')")
        }
    }

    /// The convolution geometry that maps the output image back onto the input positions.
    func geometry(_ x: Buffer, _ w: Buffer) throws(TrainingError) -> (WindowGeometry, outChannels: Int) {
        let (_, c, h, wd) = try nchw(x, "ConvTranspose '\(name)' input")
        guard w.shape.count == 4, w.shape[0] == c, c % groups == 0 else {
            throw .shapeMismatch("ConvTranspose '\(name)': weight \(w.shape) does not fit input \(x.shape) with \(groups) groups")
        }
        guard declaredKernel == nil || [w.shape[2], w.shape[3]] == declaredKernel! else {
            throw .shapeMismatch("ConvTranspose '\(name)': weight \(w.shape) disagrees with kernel_shape \(declaredKernel!)")
        }
        let kh = w.shape[2], kw = w.shape[3]
        let oh = (h - 1) * window.strides[0] - window.pads[0] - window.pads[2] + window.dilations[0] * (kh - 1) + 1 + outputPadding[0]
        let ow = (wd - 1) * window.strides[1] - window.pads[1] - window.pads[3] + window.dilations[1] * (kw - 1) + 1 + outputPadding[1]
        guard oh > 0, ow > 0 else { throw .shapeMismatch("ConvTranspose '\(name)': output would be \(oh)x\(ow)") }
        let g = WindowGeometry(
            channels: w.shape[1], height: oh, width: ow, kernelH: kh, kernelW: kw,
            strideH: window.strides[0], strideW: window.strides[1], padTop: window.pads[0], padLeft: window.pads[1],
            dilationH: window.dilations[0], dilationW: window.dilations[1], outHeight: h, outWidth: wd)
        return (g, w.shape[1] * groups)
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0], w = inputs[1]
        let (g, cout) = try geometry(x, w)
        let n = x.shape[0], cin = x.shape[1], cing = cin / groups
        let kout = g.channels * g.kernelH * g.kernelW, np = n * g.positions
        if inputs.count > 2 {
            guard inputs[2].count == cout else { throw .shapeMismatch("ConvTranspose '\(name)': bias \(inputs[2].shape) for \(cout) channels") }
        }
        var xcm = uninitializedFloats(cin * np)
        x.data.withUnsafeBufferPointer { src in
            xcm.withUnsafeMutableBufferPointer { dst in
                batchToChannelMajor(src.baseAddress!, batch: n, channels: cin, positions: g.positions, into: dst.baseAddress!)
            }
        }
        var col = uninitializedFloats(kout * np)
        var y = Buffer(zeros: [n, cout, g.height, g.width])
        w.data.withUnsafeBufferPointer { wp in
            xcm.withUnsafeBufferPointer { xp in
                col.withUnsafeMutableBufferPointer { cp in
                    y.data.withUnsafeMutableBufferPointer { yp in
                        for gi in 0..<groups {
                            sgemm(transA: true, m: kout, n: np, k: cing, wp.baseAddress! + gi * cing * kout, lda: kout,
                                  xp.baseAddress! + gi * cing * np, ldb: np, cp.baseAddress!, ldc: np)
                            col2im(cp.baseAddress!, batch: n, totalChannels: cout, firstChannel: gi * g.channels, channels: g.channels, g, into: yp.baseAddress!)
                        }
                    }
                }
            }
        }
        if inputs.count > 2 { addChannelBias(&y, inputs[2]) }
        saved.buffers = [Buffer(shape: [xcm.count], data: xcm)]
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        let x = inputs[0], w = inputs[1]
        let (g, cout) = try! geometry(x, w)
        let n = x.shape[0], cin = x.shape[1], cing = cin / groups
        let kout = g.channels * g.kernelH * g.kernelW, np = n * g.positions
        var result: [Buffer?] = Array(repeating: nil, count: inputs.count)
        var dw = needs[1] ? Buffer(zeros: w.shape) : nil
        var dxcm = needs[0] ? uninitializedFloats(cin * np) : []
        var dcol = uninitializedFloats(kout * np)
        for gi in 0..<groups where needs[0] || needs[1] {
            dy.data.withUnsafeBufferPointer { yp in
                dcol.withUnsafeMutableBufferPointer { cp in
                    im2col(yp.baseAddress!, batch: n, totalChannels: cout, firstChannel: gi * g.channels, channels: g.channels, g, into: cp.baseAddress!)
                }
            }
            w.data.withUnsafeBufferPointer { wp in
                dcol.withUnsafeBufferPointer { cp in
                    if needs[0] {
                        dxcm.withUnsafeMutableBufferPointer { dp in
                            sgemm(m: cing, n: np, k: kout, wp.baseAddress! + gi * cing * kout, lda: kout, cp.baseAddress!, ldb: np,
                                  dp.baseAddress! + gi * cing * np, ldc: np)
                        }
                    }
                    if dw != nil {
                        saved.buffers[0].data.withUnsafeBufferPointer { xp in
                            dw!.data.withUnsafeMutableBufferPointer { dwp in
                                sgemm(transB: true, m: cing, n: kout, k: np, xp.baseAddress! + gi * cing * np, lda: np,
                                      cp.baseAddress!, ldb: np, dwp.baseAddress! + gi * cing * kout, ldc: kout)
                            }
                        }
                    }
                }
            }
        }
        result[1] = dw
        if inputs.count > 2, needs[2] { result[2] = channelSums(dy) }
        if needs[0] {
            var dx = Buffer(zeros: x.shape)
            dxcm.withUnsafeBufferPointer { src in
                dx.data.withUnsafeMutableBufferPointer { dst in
                    channelMajorToBatch(src.baseAddress!, batch: n, channels: cin, positions: g.positions, into: dst.baseAddress!)
                }
            }
            result[0] = dx
        }
        return result
    }
}

/// y[n, c, ...] += bias[c].
func addChannelBias(_ y: inout Buffer, _ bias: Buffer) {
    let n = y.shape[0], c = y.shape[1], p = y.count / max(1, n * c)
    y.data.withUnsafeMutableBufferPointer { yp in
        for i in 0..<n {
            for ch in 0..<c {
                let b = bias.data[ch]
                let base = (i * c + ch) * p
                for j in 0..<p { yp[base + j] += b }
            }
        }
    }
}

/// Σ over batch and positions, per channel, of an NC... buffer.
func channelSums(_ y: Buffer) -> Buffer {
    let n = y.shape[0], c = y.shape[1], p = y.count / max(1, n * c)
    var s = [Float](repeating: 0, count: c)
    y.data.withUnsafeBufferPointer { yp in
        for i in 0..<n {
            for ch in 0..<c {
                var acc: Float = 0
                let base = (i * c + ch) * p
                for j in 0..<p { acc += yp[base + j] }
                s[ch] += acc
            }
        }
    }
    return Buffer(shape: [c], data: s)
}

/// A float array whose every element the caller writes before reading (im2col, a GEMM with
/// beta 0, a layout transpose): skips zeroing megabytes per step.
@inline(__always)
func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
