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

    func execute() {
        let (ih, iw) = g.input
        let (oh, ow) = g.output
        for p in 0..<planes {
            let src = x + p * ih * iw
            let dst = y + p * oh * ow
            for oy in 0..<oh {
                let y0 = oy * g.stride.h - g.padTop
                for ox in 0..<ow {
                    let x0 = ox * g.stride.w - g.padLeft
                    if isMax {
                        var best = -Float.infinity
                        for ki in 0..<g.kernel.h {
                            let iy = y0 + ki * g.dilation.h
                            if iy < 0 || iy >= ih { continue }
                            for kj in 0..<g.kernel.w {
                                let ix = x0 + kj * g.dilation.w
                                if ix < 0 || ix >= iw { continue }
                                best = Swift.max(best, src[iy * iw + ix])
                            }
                        }
                        dst[oy * ow + ox] = best
                    } else {
                        // The window clipped to the padded input (count_include_pad) or to the input.
                        let yEndPadded = Swift.min(y0 + g.kernel.h, ih + g.padBottom)
                        let xEndPadded = Swift.min(x0 + g.kernel.w, iw + g.padRight)
                        let ys = Swift.max(y0, 0), ye = Swift.min(yEndPadded, ih)
                        let xs = Swift.max(x0, 0), xe = Swift.min(xEndPadded, iw)
                        var sum: Float = 0
                        var iy = ys
                        while iy < ye {
                            var ix = xs
                            while ix < xe { sum += src[iy * iw + ix]; ix += 1 }
                            iy += 1
                        }
                        let count = includePad ? (yEndPadded - y0) * (xEndPadded - x0) : (ye - ys) * (xe - xs)
                        dst[oy * ow + ox] = count > 0 ? sum / Float(count) : 0
                    }
                }
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

    func execute() {
        let inv = 1 / Float(area)
        for p in 0..<planes {
            let src = x + p * area
            var sum: Float = 0
            for i in 0..<area { sum += src[i] }
            y[p] = sum * inv
        }
    }
}
