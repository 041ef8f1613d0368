import BottleFitCore
import CBottleFitKernels
import Foundation

/// A pointwise activation, standalone or fused into the epilogue of its producer.
enum Activation: Equatable {
    case none
    case relu
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)
    case sigmoid
    /// max(0, min(1, alpha·x + beta)) (ONNX HardSigmoid; PyTorch's is alpha 1/6, beta 1/2).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x · max(0, min(1, x/6 + 1/2)) (ONNX HardSwish, MobileNetV3).
    case hardSwish
    /// x · sigmoid(x) (SiLU/Swish: exported as Sigmoid and Mul, fused by `GraphOptimizer`).
    case silu

    /// Applies the activation in place to `count` floats.
    func apply(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .none: return
        case .relu:
            for i in 0..<count { p[i] = Swift.max(p[i], 0) }
        case .leakyRelu(let a):
            for i in 0..<count { let v = p[i]; p[i] = v < 0 ? v * a : v }
        case .clip(let lo, let hi):
            for i in 0..<count { p[i] = Swift.min(Swift.max(p[i], lo), hi) }
        case .sigmoid:
            // 1 / (1 + e^-x); e^-x is clamped (vectorExp), so it never overflows to inf.
            var i = 0
            while i + 8 <= count {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(p + i).storeBytes(of: 1 / (1 + vectorExp(-v)), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count {
                let v = p[i]
                // Split by sign so exp never overflows.
                if v >= 0 { p[i] = 1 / (1 + expf(-v)) } else { let e = expf(v); p[i] = e / (1 + e) }
                i += 1
            }
        case .hardSigmoid(let a, let b):
            for i in 0..<count { p[i] = Swift.min(Swift.max(a * p[i] + b, 0), 1) }
        case .hardSwish:
            for i in 0..<count { let v = p[i]; p[i] = v * Swift.min(Swift.max(v * (1 / 6) + 0.5, 0), 1) }
        case .silu:
            // x / (1 + e^-x): for very negative x, e^-x is huge and the result −0, as x·sigmoid(x).
            var i = 0
            while i + 8 <= count {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(p + i).storeBytes(of: v / (1 + vectorExp(-v)), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { let v = p[i]; p[i] = v / (1 + expf(-v)); i += 1 }
        }
    }

    /// Applies the activation in place to `count` floats with the C kernel for `isa`
    /// (`bottlefit_activate`): the same values as `apply(_:_:)` up to rounding, at the
    /// instruction set's width (the Swift loops are compiled for the baseline).
    func apply(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ isa: KernelInstructionSet) {
        if self == .none { return }
        bottlefit_activate(isa.c, p, count, c)
    }

    /// The C kernels' description of this activation.
    var c: bottlefit_activation {
        func make(_ kind: bottlefit_activation_kind, _ alpha: Float = 0, _ beta: Float = 0) -> bottlefit_activation {
            bottlefit_activation(kind: Int32(kind.rawValue), alpha: alpha, beta: beta)
        }
        switch self {
        case .none: return make(BOTTLEFIT_ACTIVATION_NONE)
        case .relu: return make(BOTTLEFIT_ACTIVATION_RELU)
        case .leakyRelu(let a): return make(BOTTLEFIT_ACTIVATION_LEAKY_RELU, a)
        case .clip(let lo, let hi): return make(BOTTLEFIT_ACTIVATION_CLIP, lo, hi)
        case .sigmoid: return make(BOTTLEFIT_ACTIVATION_SIGMOID)
        case .hardSigmoid(let a, let b): return make(BOTTLEFIT_ACTIVATION_HARD_SIGMOID, a, b)
        case .hardSwish: return make(BOTTLEFIT_ACTIVATION_HARD_SWISH)
        case .silu: return make(BOTTLEFIT_ACTIVATION_SILU)
        }
    }

    /// The activation fused into a node (attributes `_act`, `_alpha`, `_min`, `_max`).
    static func fused(in node: Node) -> Activation {
        guard case .string(let kind)? = node.attributes["_act"] else { return .none }
        func f(_ k: String, _ d: Float) -> Float {
            if case .float(let v)? = node.attributes[k] { return v }
            return d
        }
        switch kind {
        case "Relu": return .relu
        case "LeakyRelu": return .leakyRelu(alpha: f("_alpha", 0.01))
        case "Clip": return .clip(min: f("_min", -.infinity), max: f("_max", .infinity))
        case "Sigmoid": return .sigmoid
        case "HardSigmoid": return .hardSigmoid(alpha: f("_alpha", 0.2), beta: f("_beta", 0.5))
        case "HardSwish": return .hardSwish
        case "SiLU": return .silu
        default: return .none
        }
    }

    /// Attributes that record this activation on the node it is fused into.
    var fusedAttributes: [String: AttributeValue] {
        switch self {
        case .none: [:]
        case .relu: ["_act": .string("Relu")]
        case .leakyRelu(let a): ["_act": .string("LeakyRelu"), "_alpha": .float(a)]
        case .clip(let lo, let hi): ["_act": .string("Clip"), "_min": .float(lo), "_max": .float(hi)]
        case .sigmoid: ["_act": .string("Sigmoid")]
        case .hardSigmoid(let a, let b): ["_act": .string("HardSigmoid"), "_alpha": .float(a), "_beta": .float(b)]
        case .hardSwish: ["_act": .string("HardSwish")]
        case .silu: ["_act": .string("SiLU")]
        }
    }

    /// The activation a standalone node computes, if its parameters are constant.
    static func of(_ node: Node, constants: [Tensor?]) -> Activation? {
        switch node.opType {
        case "Relu": return .relu
        case "Sigmoid": return .sigmoid
        case "HardSwish": return .hardSwish
        case "HardSigmoid":
            var alpha: Float = 0.2, beta: Float = 0.5
            if case .float(let a)? = node.attributes["alpha"] { alpha = a }
            if case .float(let b)? = node.attributes["beta"] { beta = b }
            return .hardSigmoid(alpha: alpha, beta: beta)
        case "LeakyRelu":
            if case .float(let a)? = node.attributes["alpha"] { return .leakyRelu(alpha: a) }
            return .leakyRelu(alpha: 0.01)
        case "Clip":
            var lo = -Float.infinity
            var hi = Float.infinity
            if case .float(let v)? = node.attributes["min"] { lo = v }
            if case .float(let v)? = node.attributes["max"] { hi = v }
            if node.input(1) != nil {
                guard constants.count > 1, let t = constants[1], let v = t.floats, v.count == 1 else { return nil }
                lo = v[0]
            }
            if node.input(2) != nil {
                guard constants.count > 2, let t = constants[2], let v = t.floats, v.count == 1 else { return nil }
                hi = v[0]
            }
            return .clip(min: lo, max: hi)
        default: return nil
        }
    }
}

/// Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish and Clip as standalone nodes (float32).
enum ActivationOperator: Operator {
    static let attributes: Set<String> = ["alpha", "beta", "min", "max"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        if ctx.op == "Clip" {
            for i in 1...2 where ctx.input(i) != nil {
                let t = try ctx.requireType(i, [.float32])
                guard t.count == 1 else { throw .shapeMismatch("Clip node '\(ctx.name)': input \(i) must be a scalar, got \(t.shape)") }
            }
        }
        return [x]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        if ctx.op == "Clip", let act = Activation.of(ctx.node, constants: ctx.constants), case .clip(let lo, let hi) = act {
            // Bounds that are not constants are read when the kernel runs.
            return ClipKernel(
                input: inputs[0]!.floats, output: outputs[0].floats, count: outputs[0].count, min: lo, max: hi,
                minPointer: ctx.constant(1) == nil ? inputs[1]?.floats : nil, maxPointer: ctx.constant(2) == nil ? inputs[2]?.floats : nil)
        }
        if ctx.op == "Clip" {
            return ClipKernel(
                input: inputs[0]!.floats, output: outputs[0].floats, count: outputs[0].count, min: -.infinity, max: .infinity,
                minPointer: inputs[1]?.floats, maxPointer: inputs[2]?.floats)
        }
        guard let act = Activation.of(ctx.node, constants: ctx.constants) else {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': parameters must be constant scalars")
        }
        return ActivationKernel(
            activation: act, input: inputs[0]!.floats, output: outputs[0].floats, count: outputs[0].count,
            instructionSet: ctx.instructionSet)
    }
}

final class ActivationKernel: Kernel {
    let activation: Activation
    let input: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let count: Int
    let instructionSet: KernelInstructionSet

    init(
        activation: Activation, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int,
        instructionSet: KernelInstructionSet
    ) {
        self.activation = activation
        self.input = input
        self.output = output
        self.count = count
        self.instructionSet = instructionSet
    }

    func execute(_ parallel: Parallel) {
        let input = input, output = output, activation = activation, isa = instructionSet
        parallel.forEach(count, minimumPerThread: 16384) { range in
            let src = input + range.lowerBound, dst = output + range.lowerBound
            if src != dst { dst.update(from: src, count: range.count) }
            activation.apply(dst, range.count, isa)
        }
    }
}

/// Clip whose bounds may be graph inputs, read on every run.
final class ClipKernel: Kernel {
    let input, output: UnsafeMutablePointer<Float>
    let count: Int
    let lo, hi: Float
    let minPointer, maxPointer: UnsafeMutablePointer<Float>?

    init(
        input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int, min: Float, max: Float,
        minPointer: UnsafeMutablePointer<Float>?, maxPointer: UnsafeMutablePointer<Float>?
    ) {
        self.input = input
        self.output = output
        self.count = count
        self.lo = min
        self.hi = max
        self.minPointer = minPointer
        self.maxPointer = maxPointer
    }

    func execute(_ parallel: Parallel) {
        if input != output { output.update(from: input, count: count) }
        Activation.clip(min: minPointer?.pointee ?? lo, max: maxPointer?.pointee ?? hi).apply(output, count)
    }
}
/// e^x for eight floats at once (Cephes' expf: range reduction by ln 2, degree-5 polynomial,
/// about 1 ulp), so Sigmoid and SiLU epilogues vectorise instead of calling libm per element.
/// Inputs are clamped to [−87.3, 88] (e^x stays a finite, normal float; nearer the ends it is
/// 0 or huge to the precision Sigmoid and SiLU need).
@inline(__always)
func vectorExp(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let x = v.clamped(lowerBound: SIMD8(repeating: -87.33654), upperBound: SIMD8(repeating: 88))
    let n = (x * 1.44269504088896341).rounded(.toNearestOrEven)
    var r = x - n * 0.693359375
    r = r + n * 2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let y = p * (r * r) + r + 1
    let e = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
    return y * unsafeBitCast(e, to: SIMD8<Float>.self)
}
