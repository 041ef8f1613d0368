import BottleFitEngine

/// MaxPool and AveragePool (2-D, pads, strides, dilations for MaxPool, ceil_mode,
/// count_include_pad) with gradients. MaxPool routes each output's gradient to the first
/// maximum of its window, as PyTorch and ONNX Runtime do.
struct PoolGradient: TrainableOperator {
    enum Kind { case max, average }
    let name: String
    let kind: Kind
    let window: Window2D
    let ceilMode: Bool
    let countIncludePad: Bool

    init(_ node: Node, kind: Kind) throws(TrainingError) {
        let allowed: Set<String> = kind == .max
            ? ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides", "storage_order"]
            : ["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"]
        let attributes = try AttributeReader(node, allowed: allowed)
        guard node.outputs.count == 1 else { throw .unsupported("\(node.opType) '\(node.name)' with an Indices output") }
        guard try attributes.int("storage_order", 0) == 0 else { throw .unsupported("storage_order=1 (node '\(node.name)')") }
        name = node.name
        self.kind = kind
        window = try Window2D(attributes, kernel: try attributes.ints("kernel_shape", []))
        ceilMode = try attributes.int("ceil_mode", 0) != 0
        countIncludePad = try attributes.int("count_include_pad", 0) != 0
    }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        func length(_ input: Int, _ axis: Int) -> Int {
            var out = WindowGeometry.outputLength(
                input, kernel: window.kernel[axis], stride: window.strides[axis], padBegin: window.pads[axis],
                padEnd: window.pads[axis + 2], dilation: window.dilations[axis], ceil: ceilMode)
            // A window that would start inside the end padding only is dropped (ONNX, PyTorch).
            if ceilMode, out > 0, (out - 1) * window.strides[axis] >= input + window.pads[axis] { out -= 1 }
            return out
        }
        return (length(h, 0), length(w, 1))
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0]
        let (n, c, h, w) = try nchw(x, "\(name) input")
        let (oh, ow) = outputSize(h, w)
        guard oh > 0, ow > 0 else { throw .shapeMismatch("pool '\(name)': input \(x.shape) is smaller than the window") }
        var y = Buffer(zeros: [n, c, oh, ow])
        var argmax = kind == .max ? [Int32](repeating: -1, count: y.count) : []
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (dh, dw) = (window.dilations[0], window.dilations[1])
        let (pt, pl) = (window.pads[0], window.pads[1])
        let (pb, pr) = (window.pads[2], window.pads[3])
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                argmax.withUnsafeMutableBufferPointer { ap in
                    TrainingThreads.forEach(n * c) { range in
                        for plane in range {
                            let src = plane * h * w, dst = plane * oh * ow
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    let y0 = oy * sh - pt, x0 = ox * sw - pl
                                    if kind == .max {
                                        var best = -Float.infinity, bestIndex: Int32 = -1
                                        for ky in 0..<kh {
                                            let iy = y0 + ky * dh
                                            if iy < 0 || iy >= h { continue }
                                            for kx in 0..<kw {
                                                let ix = x0 + kx * dw
                                                if ix < 0 || ix >= w { continue }
                                                let v = xp[src + iy * w + ix]
                                                if v > best || bestIndex < 0 { best = v; bestIndex = Int32(iy * w + ix) }
                                            }
                                        }
                                        yp[dst + oy * ow + ox] = best
                                        ap[dst + oy * ow + ox] = bestIndex
                                    } else {
                                        var s: Float = 0
                                        for iy in max(y0, 0)..<min(y0 + kh, h) {
                                            for ix in max(x0, 0)..<min(x0 + kw, w) { s += xp[src + iy * w + ix] }
                                        }
                                        yp[dst + oy * ow + ox] = s / Float(divisor(y0, x0, h, w, kh, kw, pb, pr))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        saved.indices = argmax
        return ForwardOutput(output: y)
    }

    /// The element count an average divides by: the window clipped to the input, or to
    /// the padded input when `count_include_pad` is set.
    func divisor(_ y0: Int, _ x0: Int, _ h: Int, _ w: Int, _ kh: Int, _ kw: Int, _ pb: Int, _ pr: Int) -> Int {
        if countIncludePad {
            let rows = min(y0 + kh, h + pb) - y0, cols = min(x0 + kw, w + pr) - x0
            return max(1, rows * cols)
        }
        let rows = min(y0 + kh, h) - max(y0, 0), cols = min(x0 + kw, w) - max(x0, 0)
        return max(1, rows * cols)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        guard needs[0] else { return [nil] }
        let x = inputs[0]
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (output.shape[2], output.shape[3])
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (pt, pl, pb, pr) = (window.pads[0], window.pads[1], window.pads[2], window.pads[3])
        var dx = Buffer(zeros: x.shape)
        dy.data.withUnsafeBufferPointer { gp in
            dx.data.withUnsafeMutableBufferPointer { xp in
                saved.indices.withUnsafeBufferPointer { ap in
                    TrainingThreads.forEach(n * c) { range in
                        for plane in range {
                            let src = plane * oh * ow, dst = plane * h * w
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    let g = gp[src + oy * ow + ox]
                                    if kind == .max {
                                        let index = Int(ap[src + oy * ow + ox])
                                        if index >= 0 { xp[dst + index] += g }
                                    } else {
                                        let y0 = oy * sh - pt, x0 = ox * sw - pl
                                        let share = g / Float(divisor(y0, x0, h, w, kh, kw, pb, pr))
                                        for iy in max(y0, 0)..<min(y0 + kh, h) {
                                            for ix in max(x0, 0)..<min(x0 + kw, w) { xp[dst + iy * w + ix] += share }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [dx]
    }
}

/// GlobalAveragePool: [N, C, H, W] -> [N, C, 1, 1].
struct GlobalAveragePoolGradient: TrainableOperator {
    init(_ node: Node) throws(TrainingError) { _ = try AttributeReader(node, allowed: []) }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0]
        guard x.shape.count >= 3 else { throw .shapeMismatch("GlobalAveragePool input \(x.shape)") }
        let n = x.shape[0], c = x.shape[1], p = x.count / max(1, n * c)
        var y = Buffer(zeros: [n, c] + Array(repeating: 1, count: x.shape.count - 2))
        for plane in 0..<(n * c) {
            var s: Float = 0
            for j in 0..<p { s += x.data[plane * p + j] }
            y.data[plane] = s / Float(p)
        }
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        guard needs[0] else { return [nil] }
        let x = inputs[0]
        let n = x.shape[0], c = x.shape[1], p = x.count / max(1, n * c)
        var dx = Buffer(zeros: x.shape)
        for plane in 0..<(n * c) {
            let g = dy.data[plane] / Float(p)
            for j in 0..<p { dx.data[plane * p + j] = g }
        }
        return [dx]
    }
}
