import BottleFitCore
import Foundation

/// Element types binary arithmetic is defined on (float32, and wrapping uint8/int64 for
/// integer tensors and shape arithmetic; integer division by zero gives 0, never a trap).
protocol ArithmeticElement {
    static func add(_ a: Self, _ b: Self) -> Self
    static func sub(_ a: Self, _ b: Self) -> Self
    static func mul(_ a: Self, _ b: Self) -> Self
    static func div(_ a: Self, _ b: Self) -> Self
    static func pow(_ a: Self, _ b: Self) -> Self
    static func prelu(_ a: Self, _ b: Self) -> Self
}

extension Float: ArithmeticElement {
    @inline(__always) static func add(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func sub(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func mul(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func div(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func pow(_ a: Float, _ b: Float) -> Float { powf(a, b) }
    @inline(__always) static func prelu(_ a: Float, _ b: Float) -> Float { a < 0 ? a * b : a }
}

extension UInt8: ArithmeticElement {
    @inline(__always) static func add(_ a: UInt8, _ b: UInt8) -> UInt8 { a &+ b }
    @inline(__always) static func sub(_ a: UInt8, _ b: UInt8) -> UInt8 { a &- b }
    @inline(__always) static func mul(_ a: UInt8, _ b: UInt8) -> UInt8 { a &* b }
    @inline(__always) static func div(_ a: UInt8, _ b: UInt8) -> UInt8 { b == 0 ? 0 : a / b }
    // Pow and PRelu are float-only (BinaryOperator.infer); these are never called.
    static func pow(_ a: UInt8, _ b: UInt8) -> UInt8 { 0 }
    static func prelu(_ a: UInt8, _ b: UInt8) -> UInt8 { a }
}

extension Int64: ArithmeticElement {
    @inline(__always) static func add(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
    @inline(__always) static func sub(_ a: Int64, _ b: Int64) -> Int64 { a &- b }
    @inline(__always) static func mul(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
    @inline(__always) static func div(_ a: Int64, _ b: Int64) -> Int64 {
        // Floor division would differ from ONNX's truncation; Int64.min / -1 would trap.
        b == 0 || (a == .min && b == -1) ? 0 : a / b
    }
    static func pow(_ a: Int64, _ b: Int64) -> Int64 { 0 }
    static func prelu(_ a: Int64, _ b: Int64) -> Int64 { a < 0 ? a &* b : a }
}

/// NumPy-style broadcast of two shapes.
func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let r = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

/// Element strides of `shape` read as `outShape` under broadcasting (0 on broadcast axes).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let r = outShape.count
    var strides = [Int](repeating: 0, count: r)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let o = i + (r - shape.count)
        strides[o] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// ONNX Add, Sub, Mul, Div (float32, uint8, int64), Pow and PRelu (float32) with
/// multidirectional broadcasting (PRelu's slope broadcasts to X), and the legacy form
/// before opset 7 (`broadcast` = 1 with `axis`: B's shape matches A's from `axis` on).
enum BinaryOperator: Operator {
    static let attributes: Set<String> = ["broadcast", "axis", "consumed_inputs"]

    /// B's shape as multidirectional broadcasting must see it.
    static func effectiveShapeB(_ ctx: NodeContext, a: [Int], b: [Int]) throws(EngineError) -> [Int] {
        guard ctx.opset < 7 else { return b }
        if try ctx.int("broadcast", default: 0) == 0 {
            guard a == b else { throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': shapes \(a) and \(b) differ and broadcast is 0") }
            return b
        }
        guard ctx.node.attributes["axis"] != nil else { return b }
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: a.count, ctx)
        guard axis + b.count <= a.count else {
            throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': \(b) does not fit \(a) from axis \(axis)")
        }
        return b + [Int](repeating: 1, count: a.count - axis - b.count)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let floatOnly = ctx.op == "Pow" || ctx.op == "PRelu"
        let allowed: Set<ElementType> = floatOnly ? [.float32] : [.float32, .uint8, .int64]
        let a = try ctx.requireType(0, allowed)
        let b = try ctx.requireType(1, allowed)
        guard a.elementType == b.elementType else {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': operand types differ (\(a.elementType.rawValue), \(b.elementType.rawValue))")
        }
        let bShape = try effectiveShapeB(ctx, a: a.shape, b: b.shape)
        guard let shape = broadcastShapes(a.shape, bShape), ctx.op != "PRelu" || shape == a.shape else {
            throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': cannot broadcast \(a.shape) with \(b.shape)")
        }
        return [ValueType(a.elementType, shape)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let a = inputs[0]!, y = outputs[0]
        var b = inputs[1]!
        b.type.shape = try effectiveShapeB(ctx, a: a.shape, b: b.shape)
        var op: BinaryKind = switch ctx.op {
        case "Add": .add
        case "Sub": .sub
        case "Mul": .mul
        case "Pow": .pow
        case "PRelu": .prelu
        default: .div
        }
        // x^2 (decomposed LayerNorm's variance) without powf.
        if op == .pow, let e = b.constant?.floats, e.count == 1, e[0] == 2 { op = .square }
        let act = Activation.fused(in: ctx.node)
        switch y.type.elementType {
        case .float32: return BinaryKernel<Float>(op, a, b, y, activation: act)
        case .uint8: return BinaryKernel<UInt8>(op, a, b, y, activation: .none)
        case .int64: return BinaryKernel<Int64>(op, a, b, y, activation: .none)
        }
    }
}

enum BinaryKind { case add, sub, mul, div, pow, prelu, square }

final class BinaryKernel<T: ArithmeticElement>: Kernel {
    let op: BinaryKind
    let a, b, y: UnsafeMutablePointer<T>
    let outShape: [Int]
    let stridesA, stridesB: [Int]
    let count: Int
    let activation: Activation
    var index: [Int]

    init(_ op: BinaryKind, _ a: Operand, _ b: Operand, _ y: Operand, activation: Activation) {
        self.op = op
        self.a = a.pointer.assumingMemoryBound(to: T.self)
        self.b = b.pointer.assumingMemoryBound(to: T.self)
        self.y = y.pointer.assumingMemoryBound(to: T.self)
        outShape = y.shape.isEmpty ? [1] : y.shape
        stridesA = broadcastStrides(a.shape, to: outShape)
        stridesB = broadcastStrides(b.shape, to: outShape)
        count = y.count
        self.activation = activation
        index = [Int](repeating: 0, count: outShape.count)
    }

    func execute() {
        switch op {
        case .add: run(T.add)
        case .sub: run(T.sub)
        case .mul: run(T.mul)
        case .div: run(T.div)
        case .pow: run(T.pow)
        case .prelu: run(T.prelu)
        case .square: run { a, _ in T.mul(a, a) }
        }
        if T.self == Float.self && activation != .none {
            activation.apply(UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), count)
        }
    }

    @inline(__always)
    private func run(_ f: (T, T) -> T) {
        guard count > 0 else { return }
        let r = outShape.count
        let inner = outShape[r - 1]
        let sa = stridesA[r - 1], sb = stridesB[r - 1]
        for i in 0..<r { index[i] = 0 }
        var offA = 0, offB = 0, offY = 0
        while offY < count {
            let pa = a + offA, pb = b + offB, py = y + offY
            if sa == 1 && sb == 1 {
                for i in 0..<inner { py[i] = f(pa[i], pb[i]) }
            } else if sa == 1 && sb == 0 {
                let v = pb[0]
                for i in 0..<inner { py[i] = f(pa[i], v) }
            } else if sa == 0 && sb == 1 {
                let v = pa[0]
                for i in 0..<inner { py[i] = f(v, pb[i]) }
            } else {
                for i in 0..<inner { py[i] = f(pa[i * sa], pb[i * sb]) }
            }
            offY += inner
            // Advance the outer index (odometer over all axes but the last).
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
            offA = 0
            offB = 0
            for i in 0..<(r - 1) {
                offA += index[i] * stridesA[i]
                offB += index[i] * stridesB[i]
            }
        }
    }
}
