import BottleFitCore

/// ONNX MaxPool and AveragePool (1-D and 2-D; pads, auto_pad, strides, ceil_mode,
/// count_include_pad; dilations for MaxPool), NCHW float32.
enum PoolOperator: Operator {
    static let attributes: Set<String> = [
        "auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "storage_order", "strides",
    ]

    static func geometry(_ ctx: NodeContext) throws(EngineError) -> (SpatialGeometry, [Int]) {
        let x = try ctx.requireType(0, [.float32])
        guard x.shape.count >= 3 else { throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': input rank < 3") }
        if ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty {
            throw ctx.unsupported("outputs", "Indices (argmax output)")
        }
        if try ctx.int("storage_order", default: 0) != 0 { throw ctx.unsupported("storage_order", 1) }
        if ctx.op == "AveragePool", let d = try ctx.ints("dilations"), d.contains(where: { $0 != 1 }) {
            throw ctx.unsupported("dilations", d)
        }
        let ceil = try ctx.int("ceil_mode", default: 0) != 0
        let g = try SpatialGeometry.forward(ctx, spatial: Array(x.shape[2...]), kernelShape: nil, ceilMode: ceil)
        let spatial = x.shape.count == 3 ? [g.output.w] : g.outputSpatial
        return (g, [x.shape[0], x.shape[1]] + spatial)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        [ValueType(.float32, try geometry(ctx).1)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let (g, shape) = try geometry(ctx)
        return PoolKernel(
            max: ctx.op == "MaxPool", includePad: try ctx.int("count_include_pad", default: 0) != 0, geometry: g,
            planes: shape[0] * shape[1], x: inputs[0]!.floats, y: outputs[0].floats)
    }
}

final class PoolKernel: Kernel {
    let isMax: Bool
    let includePad: Bool
    let g: SpatialGeometry
    let planes: Int
    let x, y: UnsafeMutablePointer<Float>

    init(max: Bool, includePad: Bool, geometry: SpatialGeometry, planes: Int, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>) {
        self.isMax = max
        self.includePad = includePad
        self.g = geometry
        self.planes = planes
        self.x = x
        self.y = y
    }

    func execute(_ parallel: Parallel) {
        parallel.forEach(planes) { range in
            for p in range { pool(plane: p) }
        }
    }

    /// One plane, separably: the window's rows are combined into one row (vectorisable),
    /// then `PoolColumns` takes each output from that row. Window bounds are clipped once
    /// per row, never per element.
    private func pool(plane p: Int) {
        let (ih, iw) = g.input
        let (oh, ow) = g.output
        let src = x + p * ih * iw
        let dst = y + p * oh * ow
        let dh = g.dilation.h
        let columns = PoolColumns(geometry: g, isMax: isMax, includePad: includePad)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: iw + columns.scratchFloats) { rowBuffer in
            let row = rowBuffer.baseAddress!
            let scratch = row + iw
            for oy in 0..<oh {
                let y0 = oy * g.stride.h - g.padTop
                let inside = g.windowRows(outputRow: oy)
                let out = dst + oy * ow
                if inside.isEmpty {
                    for ox in 0..<ow { out[ox] = isMax ? -Float.infinity : 0 }
                    continue
                }
                row.update(from: src + (y0 + inside.lowerBound * dh) * iw, count: iw)
                for ki in inside.dropFirst() {
                    let line = src + (y0 + ki * dh) * iw
                    if isMax {
                        for i in 0..<iw { row[i] = larger(row[i], line[i]) }
                    } else {
                        for i in 0..<iw { row[i] += line[i] }
                    }
                }
                columns.finish(row: row, rowsInside: inside.count, y0: y0, out: out, scratch: scratch)
            }
        }
    }
}

/// The column half of 2-D pooling: one output row from the row that its windows' input
/// rows were combined into (their max, or their sum for AveragePool).
struct PoolColumns {
    let g: SpatialGeometry
    let isMax: Bool
    let includePad: Bool

    init(geometry: SpatialGeometry, isMax: Bool, includePad: Bool) {
        g = geometry
        self.isMax = isMax
        self.includePad = includePad
    }

    /// Floats of scratch `finish` needs: the row split into its column phases.
    var scratchFloats: Int { g.stride.w * ((g.input.w + g.stride.w - 1) / g.stride.w) }

    /// Output row `out` from `row` (input width), which combines `rowsInside` input rows of
    /// the windows that start at input row `y0` (negative inside the top padding).
    func finish(
        row: UnsafeMutablePointer<Float>, rowsInside: Int, y0: Int, out: UnsafeMutablePointer<Float>,
        scratch phases: UnsafeMutablePointer<Float>
    ) {
        let iw = g.input.w, ih = g.input.h
        let ow = g.output.w
        let kh = g.kernel.h, kw = g.kernel.w
        let dw = g.dilation.w
        let sw = g.stride.w
        let phaseWidth = (iw + sw - 1) / sw
        // Outputs whose window lies inside the row take the tight loop.
        let extent = (kw - 1) * dw + 1
        let oxLo = Swift.min(ow, (g.padLeft + sw - 1) / sw)
        let oxHi = Swift.max(oxLo, Swift.min(ow, iw + g.padLeft >= extent ? (iw + g.padLeft - extent) / sw + 1 : 0))
        let inv = 1 / Float(rowsInside * kw)
        let interiorAverage = !includePad || (g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0)
        if sw == 1 && (isMax || interiorAverage) && oxHi > oxLo {
            // Stride 1: the window's columns as whole shifted rows (vectorisable).
            let count = oxHi - oxLo
            let o = out + oxLo
            let b = row + oxLo - g.padLeft
            o.update(from: b, count: count)
            for kj in 1..<kw {
                let shifted = b + kj * dw
                if isMax {
                    for i in 0..<count { o[i] = larger(o[i], shifted[i]) }
                } else {
                    for i in 0..<count { o[i] += shifted[i] }
                }
            }
            if !isMax { for i in 0..<count { o[i] *= inv } }
        } else if sw > 1 && (isMax || interiorAverage) && oxHi > oxLo {
            // Strided: split the row into its column phases once, then every kernel
            // column is a contiguous run of one phase (vectorisable).
            if sw == 2 {
                deinterleave(row, pairs: iw / 2, even: phases, odd: phases + phaseWidth)
                if iw % 2 == 1 { phases[iw / 2] = row[iw - 1] }
            } else {
                for r in 0..<sw {
                    let dst = phases + r * phaseWidth
                    let count = (iw - r + sw - 1) / sw
                    for i in 0..<count { dst[i] = row[i * sw + r] }
                }
            }
            let count = oxHi - oxLo
            let o = out + oxLo
            for kj in 0..<kw {
                let t = oxLo * sw - g.padLeft + kj * dw  // row index of output oxLo's tap kj (≥ 0 inside)
                let src = phases + (t % sw) * phaseWidth + t / sw
                if kj == 0 {
                    o.update(from: src, count: count)
                } else if isMax {
                    for i in 0..<count { o[i] = larger(o[i], src[i]) }
                } else {
                    for i in 0..<count { o[i] += src[i] }
                }
            }
            if !isMax { for i in 0..<count { o[i] *= inv } }
        } else if isMax {
            for ox in oxLo..<oxHi {
                let b = row + ox * sw - g.padLeft
                var acc = b[0]
                for kj in 1..<kw { acc = larger(acc, b[kj * dw]) }
                out[ox] = acc
            }
        } else if interiorAverage {
            for ox in oxLo..<oxHi {
                let b = row + ox * sw - g.padLeft
                var acc = b[0]
                for kj in 1..<kw { acc += b[kj * dw] }
                out[ox] = acc * inv
            }
        }
        let interiorDone = isMax || interiorAverage
        // The outputs whose windows cross the padding (all of them if nothing above ran).
        let skip = interiorDone ? oxLo..<oxHi : 0..<0
        var ox = 0
        while ox < ow {
            defer { ox += 1 }
            if skip.contains(ox) {
                ox = skip.upperBound - 1
                continue
            }
            let x0 = ox * g.stride.w - g.padLeft
            var kjBegin = 0
            if x0 < 0 { kjBegin = (-x0 + dw - 1) / dw }
            let kjEnd = Swift.min(kw, x0 >= iw ? 0 : (iw - 1 - x0) / dw + 1)
            if isMax {
                var best = -Float.infinity
                var kj = kjBegin
                while kj < kjEnd { best = Swift.max(best, row[x0 + kj * dw]); kj += 1 }
                out[ox] = best
            } else {
                var sum: Float = 0
                var kj = kjBegin
                while kj < kjEnd { sum += row[x0 + kj]; kj += 1 }
                let count: Int
                if includePad {
                    // The window clipped to the padded input.
                    let hPadded = Swift.min(y0 + kh, ih + g.padBottom) - y0
                    let wPadded = Swift.min(x0 + kw, iw + g.padRight) - x0
                    count = hPadded * wPadded
                } else {
                    count = rowsInside * Swift.max(0, kjEnd - kjBegin)
                }
                out[ox] = count > 0 ? sum / Float(count) : 0
            }
        }
    }
}

/// ONNX GlobalAveragePool over all spatial dimensions (any rank ≥ 3), float32.
enum GlobalAveragePoolOperator: Operator {
    static let attributes: Set<String> = []

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        guard x.shape.count >= 3 else { throw .shapeMismatch("GlobalAveragePool node '\(ctx.name)': input rank < 3") }
        return [ValueType(.float32, [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2))]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        return GlobalAveragePoolKernel(x: x.floats, y: outputs[0].floats, planes: x.shape[0] * x.shape[1], area: x.shape[2...].reduce(1, *))
    }
}

final class GlobalAveragePoolKernel: Kernel {
    let x, y: UnsafeMutablePointer<Float>
    let planes, area: Int

    init(x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, planes: Int, area: Int) {
        self.x = x
        self.y = y
        self.planes = planes
        self.area = area
    }

    /// Planes split over the threads; each sum in 16 lanes (a single running sum is one
    /// dependent add per element: EfficientNet-B0's squeeze-and-excitation pools read 2.4 M).
    func execute(_ parallel: Parallel) {
        let inv = 1 / Float(area)
        let x = x, y = y, area = area
        parallel.forEach(planes, minimumPerThread: Swift.max(1, 16384 / Swift.max(1, area))) { range in
            for p in range {
                let src = x + p * area
                var lanes = SIMD16<Float>()
                var i = 0
                while i + 16 <= area {
                    lanes += UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self)
                    i += 16
                }
                var sum = lanes.sum()
                while i < area { sum += src[i]; i += 1 }
                y[p] = sum * inv
            }
        }
    }
}

/// a > b ? a : b — exactly x86's `maxps`, so the vectorised loops take one instruction per
/// vector (`Swift.max`'s tie and NaN rules need a compare and a blend). A NaN in the
/// window gives NaN or the other value depending on its position, as `maxps` does.
@inline(__always)
func larger(_ a: Float, _ b: Float) -> Float { a > b ? a : b }
