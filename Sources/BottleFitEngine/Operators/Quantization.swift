import BottleFitCore

/// ONNX QuantizeLinear (float32 → uint8) and DequantizeLinear (uint8 → float32), per tensor
/// or per axis, round half to even and saturate, as the operator specification says.
enum QuantizeOperator: Operator {
    static let attributes: Set<String> = ["axis", "saturate", "block_size"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let quantize = ctx.op == "QuantizeLinear"
        let x = try ctx.requireType(0, quantize ? [.float32] : [.uint8])
        let scale = try ctx.requireType(1, [.float32])
        if let zp = ctx.input(2), zp.elementType != .uint8 {
            throw .unsupportedDataType(zp.elementType.rawValue, context: "zero point of \(ctx.op) node '\(ctx.name)' (only uint8)")
        }
        if try ctx.int("block_size", default: 0) != 0 { throw ctx.unsupported("block_size", "blocked quantization") }
        if scale.count != 1 {
            let axis = try normalizeAxis(try ctx.int("axis", default: 1), rank: x.shape.count, ctx)
            guard scale.shape == [x.shape[axis]] else {
                throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': scale \(scale.shape) does not match axis \(axis) of \(x.shape)")
            }
        }
        if let zp = ctx.input(2), zp.shape.reduce(1, *) != scale.count {
            throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': zero point \(zp.shape) does not match scale \(scale.shape)")
        }
        return [ValueType(quantize ? .uint8 : .float32, x.shape)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!, scale = inputs[1]!
        var inner = x.count, channels = 1, outer = 1
        if scale.count != 1 {
            let axis = try normalizeAxis(try ctx.int("axis", default: 1), rank: x.shape.count, ctx)
            channels = x.shape[axis]
            inner = x.shape[(axis + 1)...].reduce(1, *)
            outer = x.shape[..<axis].reduce(1, *)
        }
        return QuantizeKernel(
            quantize: ctx.op == "QuantizeLinear", x: x.pointer, scale: scale.floats, zeroPoint: inputs[2]?.bytes,
            y: outputs[0].pointer, outer: outer, channels: channels, inner: inner)
    }
}

final class QuantizeKernel: Kernel {
    let quantize: Bool
    let x, y: UnsafeMutableRawPointer
    let scale: UnsafeMutablePointer<Float>
    let zeroPoint: UnsafeMutablePointer<UInt8>?
    let outer, channels, inner: Int

    init(
        quantize: Bool, x: UnsafeMutableRawPointer, scale: UnsafeMutablePointer<Float>, zeroPoint: UnsafeMutablePointer<UInt8>?,
        y: UnsafeMutableRawPointer, outer: Int, channels: Int, inner: Int
    ) {
        self.quantize = quantize
        self.x = x
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.y = y
        self.outer = outer
        self.channels = channels
        self.inner = inner
    }

    func execute(_ parallel: Parallel) {
        let xf = x.assumingMemoryBound(to: Float.self), xq = x.assumingMemoryBound(to: UInt8.self)
        let yf = y.assumingMemoryBound(to: Float.self), yq = y.assumingMemoryBound(to: UInt8.self)
        for o in 0..<outer {
            for c in 0..<channels {
                let s = scale[c]
                let zp = Float(zeroPoint?[c] ?? 0)
                let base = (o * channels + c) * inner
                if quantize {
                    for i in 0..<inner {
                        let q = (xf[base + i] / s).rounded(.toNearestOrEven) + zp
                        yq[base + i] = q.isNaN ? 0 : UInt8(Swift.min(Swift.max(q, 0), 255))
                    }
                } else {
                    for i in 0..<inner { yf[base + i] = (Float(xq[base + i]) - zp) * s }
                }
            }
        }
    }
}
