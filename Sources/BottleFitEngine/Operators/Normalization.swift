import BottleFitCore
import Foundation

/// ONNX BatchNormalization in inference mode (running statistics), any rank ≥ 2, float32.
/// In a planned model it is usually folded into the preceding Conv and never runs.
/// Legacy attributes (before opset 7) are read: `is_test` and `consumed_inputs` change nothing
/// for inference with one output; `spatial` must be 1.
enum BatchNormOperator: Operator {
    static let attributes: Set<String> = ["epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        guard x.shape.count >= 2 else { throw .shapeMismatch("BatchNormalization node '\(ctx.name)': input rank < 2") }
        if try ctx.int("training_mode", default: 0) != 0 {
            throw ctx.unsupported("training_mode", 1)
        }
        if try ctx.int("spatial", default: 1) != 1 { throw ctx.unsupported("spatial", 0) }
        guard ctx.node.outputs.filter({ !$0.isEmpty }).count == 1 else {
            throw ctx.unsupported("outputs", "running mean/var outputs (training mode)")
        }
        for i in 1...4 {
            let p = try ctx.requireType(i, [.float32])
            guard p.shape == [x.shape[1]] else {
                throw .shapeMismatch("BatchNormalization node '\(ctx.name)': parameter \(i) is \(p.shape), expected [\(x.shape[1])]")
            }
        }
        return [x]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        return BatchNormKernel(
            x: x.floats, scale: inputs[1]!.floats, bias: inputs[2]!.floats, mean: inputs[3]!.floats,
            variance: inputs[4]!.floats, y: outputs[0].floats, batch: x.shape[0], channels: x.shape[1],
            area: x.shape[2...].reduce(1, *), epsilon: try ctx.float("epsilon", default: 1e-5),
            activation: Activation.fused(in: ctx.node))
    }
}

final class BatchNormKernel: Kernel {
    let x, scale, bias, mean, variance, y: UnsafeMutablePointer<Float>
    let batch, channels, area: Int
    let epsilon: Float
    let activation: Activation

    init(
        x: UnsafeMutablePointer<Float>, scale: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, area: Int, epsilon: Float, activation: Activation
    ) {
        self.x = x
        self.scale = scale
        self.bias = bias
        self.mean = mean
        self.variance = variance
        self.y = y
        self.batch = batch
        self.channels = channels
        self.area = area
        self.epsilon = epsilon
        self.activation = activation
    }

    /// y = x·a + b per channel (a = scale/√(var+ε), b = bias − mean·a), planes split over the
    /// engine's threads, ReLU in the same pass.
    func execute(_ parallel: Parallel) {
        let x = x, y = y, scale = scale, bias = bias, mean = mean, variance = variance
        let channels = channels, area = area, epsilon = epsilon, activation = activation
        parallel.forEach(batch * channels, minimumPerThread: 4) { planes in
            for p in planes {
                let c = p % channels
                let a = scale[c] / (variance[c] + epsilon).squareRoot()
                let b = bias[c] - mean[c] * a
                let src = x + p * area
                let dst = y + p * area
                if activation == .relu {
                    for i in 0..<area { dst[i] = larger(src[i] * a + b, 0) }
                } else {
                    for i in 0..<area { dst[i] = src[i] * a + b }
                    activation.apply(dst, area)
                }
            }
        }
    }
}

/// ONNX LayerNormalization (opset 17), float32: over the axes from `axis` on,
/// y = (x − mean)/√(var + ε)·scale + bias, scale and bias broadcast to those axes. The
/// optional Mean and InvStdDev outputs have x's shape with those axes set to 1.
enum LayerNormOperator: Operator {
    static let attributes: Set<String> = ["axis", "epsilon", "stash_type"]

    static func axis(_ ctx: NodeContext, rank: Int) throws(EngineError) -> Int {
        try normalizeAxis(try ctx.int("axis", default: -1), rank: rank, ctx)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        let axis = try axis(ctx, rank: x.shape.count)
        if try ctx.int("stash_type", default: 1) != 1 { throw ctx.unsupported("stash_type", try ctx.int("stash_type", default: 1)) }
        let normalized = Array(x.shape[axis...])
        for i in [1, 2] where ctx.input(i) != nil {
            let p = try ctx.requireType(i, [.float32])
            guard broadcastShapes(p.shape, normalized) == normalized else {
                throw .shapeMismatch("LayerNormalization node '\(ctx.name)': input \(i) \(p.shape) does not broadcast to \(normalized)")
            }
        }
        let stats = ValueType(.float32, Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.shape.count - axis))
        return [x, stats, stats].prefix(Swift.max(1, ctx.node.outputs.count)).map { $0 }
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let x = ctx.input(0), let axis = try? axis(ctx, rank: x.shape.count) else { return 0 }
        return 2 * x.shape[axis...].reduce(1, *) * 4
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let axis = try axis(ctx, rank: x.shape.count)
        let normalized = Array(x.shape[axis...])
        let length = normalized.reduce(1, *)
        // Scale and bias expanded to the normalised length once, in the workspace.
        let w = workspace.assumingMemoryBound(to: Float.self)
        func expand(_ p: Operand?, into dst: UnsafeMutablePointer<Float>, default value: Float) {
            guard let p else { dst.update(repeating: value, count: length); return }
            let strides = broadcastStrides(p.shape, to: normalized)
            for i in 0..<length {
                var rest = i, offset = 0
                for a in stride(from: normalized.count - 1, through: 0, by: -1) {
                    offset += (rest % normalized[a]) * strides[a]
                    rest /= normalized[a]
                }
                dst[i] = p.floats[offset]
            }
        }
        return LayerNormKernel(
            x: x.floats, y: outputs[0].floats, mean: ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty ? outputs[1].floats : nil,
            invStdDev: ctx.node.outputs.count > 2 && !ctx.node.outputs[2].isEmpty ? outputs[2].floats : nil,
            rows: x.shape[..<axis].reduce(1, *), length: length, epsilon: try ctx.float("epsilon", default: 1e-5),
            prepare: { expand(inputs[1], into: w, default: 1); expand(inputs[2], into: w + length, default: 0) }, scale: w, bias: w + length)
    }
}

final class LayerNormKernel: Kernel {
    let x, y, scale, bias: UnsafeMutablePointer<Float>
    let mean, invStdDev: UnsafeMutablePointer<Float>?
    let rows, length: Int
    let epsilon: Float
    /// Expands scale and bias into the (shared) workspace: run before every use.
    let prepare: () -> Void

    init(
        x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
        invStdDev: UnsafeMutablePointer<Float>?, rows: Int, length: Int, epsilon: Float, prepare: @escaping () -> Void,
        scale: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>
    ) {
        self.x = x
        self.y = y
        self.mean = mean
        self.invStdDev = invStdDev
        self.rows = rows
        self.length = length
        self.epsilon = epsilon
        self.prepare = prepare
        self.scale = scale
        self.bias = bias
    }

    func execute(_ parallel: Parallel) {
        prepare()
        let x = x, y = y, scale = scale, bias = bias, mean = mean, invStdDev = invStdDev, n = length, epsilon = epsilon
        parallel.forEach(rows, minimumPerThread: Swift.max(1, 4096 / Swift.max(n, 1))) { range in
            for r in range {
                let src = x + r * n, dst = y + r * n
                var sum: Float = 0
                for i in 0..<n { sum += src[i] }
                let mu = sum / Float(n)
                var sq: Float = 0
                for i in 0..<n { let d = src[i] - mu; sq += d * d }
                let inv = 1 / (sq / Float(n) + epsilon).squareRoot()
                for i in 0..<n { dst[i] = (src[i] - mu) * inv * scale[i] + bias[i] }
                mean?[r] = mu
                invStdDev?[r] = inv
            }
        }
    }
}
