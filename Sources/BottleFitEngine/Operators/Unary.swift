import BottleFitCore
import Foundation

/// Element-wise functions of one float32 tensor: Tanh, Exp, Log, Abs, Neg, Sqrt,
/// Reciprocal, Floor, Ceil, Erf (exported GELU), Elu, Selu, Celu, Softplus, Softsign,
/// ThresholdedRelu. Activations that fuse into a producer's epilogue (Relu, Sigmoid,
/// HardSwish, …) are in `Activation.swift`.
enum UnaryOperator: Operator {
    static let attributes: Set<String> = ["alpha", "gamma"]

    /// The function of a node, with its attributes read.
    enum Function: Equatable {
        case tanh, exp, log, abs, neg, sqrt, reciprocal, floor, ceil, erf, softplus, softsign
        case elu(alpha: Float)
        case selu(alpha: Float, gamma: Float)
        case celu(alpha: Float)
        case thresholdedRelu(alpha: Float)
    }

    static let kinds: Set<String> = [
        "Tanh", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Floor", "Ceil", "Erf", "Elu", "Selu", "Celu",
        "Softplus", "Softsign", "ThresholdedRelu",
    ]

    static func function(_ ctx: NodeContext) throws(EngineError) -> Function {
        switch ctx.op {
        case "Tanh": .tanh
        case "Exp": .exp
        case "Log": .log
        case "Abs": .abs
        case "Neg": .neg
        case "Sqrt": .sqrt
        case "Reciprocal": .reciprocal
        case "Floor": .floor
        case "Ceil": .ceil
        case "Erf": .erf
        case "Softplus": .softplus
        case "Softsign": .softsign
        case "Elu": .elu(alpha: try ctx.float("alpha", default: 1))
        case "Celu": .celu(alpha: try ctx.float("alpha", default: 1))
        case "ThresholdedRelu": .thresholdedRelu(alpha: try ctx.float("alpha", default: 1))
        default:
            .selu(alpha: try ctx.float("alpha", default: 1.67326319217681884765625),
                gamma: try ctx.float("gamma", default: 1.05070102214813232421875))
        }
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        _ = try function(ctx)
        return [x]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        UnaryKernel(try function(ctx), x: inputs[0]!.floats, y: outputs[0].floats, count: outputs[0].count)
    }
}

final class UnaryKernel: Kernel {
    let function: UnaryOperator.Function
    let x, y: UnsafeMutablePointer<Float>
    let count: Int

    init(_ function: UnaryOperator.Function, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        self.function = function
        self.x = x
        self.y = y
        self.count = count
    }

    func execute(_ parallel: Parallel) {
        let x = x, y = y, function = function
        parallel.forEach(count, minimumPerThread: 16384) { range in
            UnaryKernel.apply(function, x + range.lowerBound, y + range.lowerBound, range.count)
        }
    }

    static func apply(_ f: UnaryOperator.Function, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        switch f {
        case .tanh: for i in 0..<n { y[i] = tanhf(x[i]) }
        case .exp: for i in 0..<n { y[i] = expf(x[i]) }
        case .log: for i in 0..<n { y[i] = logf(x[i]) }
        case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
        case .neg: for i in 0..<n { y[i] = -x[i] }
        case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
        case .reciprocal: for i in 0..<n { y[i] = 1 / x[i] }
        case .floor: for i in 0..<n { y[i] = x[i].rounded(.down) }
        case .ceil: for i in 0..<n { y[i] = x[i].rounded(.up) }
        case .erf: for i in 0..<n { y[i] = erff(x[i]) }
        case .softplus:
            // log(1 + e^x) without overflow: x + log1p(e^-x) for positive x.
            for i in 0..<n { let v = x[i]; y[i] = v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)) }
        case .softsign: for i in 0..<n { y[i] = x[i] / (1 + Swift.abs(x[i])) }
        case .elu(let a): for i in 0..<n { let v = x[i]; y[i] = v < 0 ? a * expm1f(v) : v }
        case .selu(let a, let g): for i in 0..<n { let v = x[i]; y[i] = g * (v <= 0 ? a * expm1f(v) : v) }
        case .celu(let a):
            for i in 0..<n { let v = x[i]; y[i] = Swift.max(0, v) + Swift.min(0, a * expm1f(v / a)) }
        case .thresholdedRelu(let a): for i in 0..<n { y[i] = x[i] > a ? x[i] : 0 }
        }
    }
}
