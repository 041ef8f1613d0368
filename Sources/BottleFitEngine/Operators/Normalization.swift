import BottleFitCore
import Foundation

/// ONNX BatchNormalization in inference mode (running statistics), any rank ≥ 2, float32.
/// In a planned model it is usually folded into the preceding Conv and never runs.
enum BatchNormOperator: Operator {
    static let attributes: Set<String> = ["epsilon", "momentum", "training_mode", "spatial"]

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
    func execute() {
        let x = x, y = y, scale = scale, bias = bias, mean = mean, variance = variance
        let channels = channels, area = area, epsilon = epsilon, activation = activation
        Parallel.forEach(batch * channels, minimumPerThread: 4) { planes in
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
