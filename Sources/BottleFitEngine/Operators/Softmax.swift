import BottleFitCore
import Foundation

/// ONNX Softmax and LogSoftmax, float32. Opset ≥ 13 normalises along `axis` (default -1); earlier opsets
/// flatten to 2-D at `axis` (default 1) and normalise each row.
enum SoftmaxOperator: Operator {
    static let attributes: Set<String> = ["axis"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        _ = try normalizeAxis(try ctx.int("axis", default: ctx.opset >= 13 ? -1 : 1), rank: Swift.max(x.shape.count, 1), ctx)
        return [x]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let shape = x.shape.isEmpty ? [1] : x.shape
        let axis = try normalizeAxis(try ctx.int("axis", default: ctx.opset >= 13 ? -1 : 1), rank: shape.count, ctx)
        let outer = shape[..<axis].reduce(1, *)
        if ctx.opset >= 13 {
            return SoftmaxKernel(
                x: x.floats, y: outputs[0].floats, outer: outer, length: shape[axis], inner: shape[(axis + 1)...].reduce(1, *),
                log: ctx.op == "LogSoftmax")
        }
        return SoftmaxKernel(
            x: x.floats, y: outputs[0].floats, outer: outer, length: shape[axis...].reduce(1, *), inner: 1, log: ctx.op == "LogSoftmax")
    }
}

final class SoftmaxKernel: Kernel {
    let x, y: UnsafeMutablePointer<Float>
    let outer, length, inner: Int
    /// LogSoftmax: x − max − log Σ exp(x − max).
    let log: Bool

    init(x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, length: Int, inner: Int, log: Bool = false) {
        self.log = log
        self.x = x
        self.y = y
        self.outer = outer
        self.length = length
        self.inner = inner
    }

    func execute(_ parallel: Parallel) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var m = -Float.infinity
                for j in 0..<length { m = Swift.max(m, x[base + j * inner]) }
                var sum: Float = 0
                if log {
                    for j in 0..<length { sum += expf(x[base + j * inner] - m) }
                    let shift = m + logf(sum)
                    for j in 0..<length { y[base + j * inner] = x[base + j * inner] - shift }
                    continue
                }
                for j in 0..<length {
                    let e = expf(x[base + j * inner] - m)
                    y[base + j * inner] = e
                    sum += e
                }
                let inv = 1 / sum
                for j in 0..<length { y[base + j * inner] *= inv }
            }
        }
    }
}
