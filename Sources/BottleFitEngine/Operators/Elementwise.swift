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

/// A binary function as a type, so that the loops below are specialised and inlined per
/// function (a function value passed in was called per element: 25 ns each).
protocol BinaryFunction {
    static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T
}
enum AddFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.add(a, b) } }
enum SubFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.sub(a, b) } }
enum MulFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.mul(a, b) } }
enum DivFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.div(a, b) } }
enum PowFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.pow(a, b) } }
enum PReluFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.prelu(a, b) } }
enum SquareFunction: BinaryFunction { @inline(__always) static func apply<T: ArithmeticElement>(_ a: T, _ b: T) -> T { T.mul(a, a) } }

/// Element-wise binary over broadcast operands. Axes are coalesced at plan time (a same-shape
/// operation is one row; a per-channel operand over NCHW is rows of H·W with one value each),
/// and rows are split over the engine's threads.
final class BinaryKernel<T: ArithmeticElement>: Kernel {
    let op: BinaryKind
    let a, b, y: UnsafeMutablePointer<T>
    /// Coalesced output shape (rank ≥ 1) and the operands' strides on it.
    let outShape: [Int]
    let stridesA, stridesB: [Int]
    let count: Int
    let activation: Activation

    init(_ op: BinaryKind, _ a: Operand, _ b: Operand, _ y: Operand, activation: Activation) {
        self.op = op
        self.a = a.pointer.assumingMemoryBound(to: T.self)
        self.b = b.pointer.assumingMemoryBound(to: T.self)
        self.y = y.pointer.assumingMemoryBound(to: T.self)
        let shape = y.shape.isEmpty ? [1] : y.shape
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        // Merge axis i into the one after it when both operands (and the output) step through
        // them as through one axis; axes of size 1 vanish.
        var dims: [(n: Int, a: Int, b: Int)] = []
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if let last = dims.first, sa[i] == last.a * last.n, sb[i] == last.b * last.n {
                dims[0] = (last.n * shape[i], last.a, last.b)
            } else {
                dims.insert((shape[i], sa[i], sb[i]), at: 0)
            }
        }
        if dims.isEmpty { dims = [(1, 0, 0)] }
        outShape = dims.map(\.n)
        stridesA = dims.map(\.a)
        stridesB = dims.map(\.b)
        count = y.count
        self.activation = activation
    }

    /// A generic class's methods are compiled for a generic `T` (they are called through its
    /// vtable), and so is any generic method they call, since its signature holds `T` too:
    /// every element was a witness-table call (ConvNeXt-T's bias Add over 56x56x384 took 15.8
    /// ms, 13 ns an element). So each element type goes from here to free functions with
    /// concrete types, which the compiler specialises and vectorises.
    func execute(_ parallel: Parallel) {
        let s = BinaryRows(outShape: outShape, stridesA: stridesA, stridesB: stridesB, count: count, activation: activation)
        let a = UnsafeMutableRawPointer(a), b = UnsafeMutableRawPointer(b), y = UnsafeMutableRawPointer(y)
        if T.self == Float.self {
            binaryRun(Float.self, op, a, b, y, s, parallel)
        } else if T.self == Int64.self {
            binaryRun(Int64.self, op, a, b, y, s, parallel)
        } else {
            binaryRun(UInt8.self, op, a, b, y, s, parallel)
        }
    }
}

/// One `BinaryKernel` over elements of type E.
private func binaryRun<E: ArithmeticElement>(
    _: E.Type, _ op: BinaryKind, _ a: UnsafeMutableRawPointer, _ b: UnsafeMutableRawPointer, _ y: UnsafeMutableRawPointer,
    _ s: BinaryRows, _ parallel: Parallel
) {
    let a = a.assumingMemoryBound(to: E.self), b = b.assumingMemoryBound(to: E.self), y = y.assumingMemoryBound(to: E.self)
    switch op {
    case .add: binaryRows(AddFunction.self, a, b, y, s, parallel)
    case .sub: binaryRows(SubFunction.self, a, b, y, s, parallel)
    case .mul: binaryRows(MulFunction.self, a, b, y, s, parallel)
    case .div: binaryRows(DivFunction.self, a, b, y, s, parallel)
    case .pow: binaryRows(PowFunction.self, a, b, y, s, parallel)
    case .prelu: binaryRows(PReluFunction.self, a, b, y, s, parallel)
    case .square: binaryRows(SquareFunction.self, a, b, y, s, parallel)
    }
}

/// The coalesced geometry of a `BinaryKernel`.
struct BinaryRows {
    let outShape: [Int]
    let stridesA, stridesB: [Int]
    let count: Int
    let activation: Activation
}

/// y = F(a, b) over the coalesced rows, split over the threads; inlined into each caller so
/// that it is specialised for concrete F and T.
@inline(__always)
private func binaryRows<F: BinaryFunction, T: ArithmeticElement>(
    _: F.Type, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ s: BinaryRows,
    _ parallel: Parallel
) {
    let count = s.count, outShape = s.outShape, stridesA = s.stridesA, stridesB = s.stridesB, activation = s.activation
    guard count > 0 else { return }
    let r = outShape.count
    let inner = outShape[r - 1]
    let sa = stridesA[r - 1], sb = stridesB[r - 1]
    let rows = count / inner
    parallel.forEach(rows, minimumPerThread: Swift.max(1, 32768 / inner)) { range in
        for row in range {
            // Offsets of this row: its index over the outer axes, last axis fastest.
            var offA = 0, offB = 0, rest = row
            for axis in stride(from: r - 2, through: 0, by: -1) {
                let i = rest % outShape[axis]
                rest /= outShape[axis]
                offA += i * stridesA[axis]
                offB += i * stridesB[axis]
            }
            let pa = a + offA, pb = b + offB, py = y + row * inner
            if sa == 1 && sb == 1 {
                for i in 0..<inner { py[i] = F.apply(pa[i], pb[i]) }
            } else if sa == 1 && sb == 0 {
                let v = pb[0]
                for i in 0..<inner { py[i] = F.apply(pa[i], v) }
            } else if sa == 0 && sb == 1 {
                let v = pa[0]
                for i in 0..<inner { py[i] = F.apply(v, pb[i]) }
            } else {
                for i in 0..<inner { py[i] = F.apply(pa[i * sa], pb[i * sb]) }
            }
            if T.self == Float.self && activation != .none {
                activation.apply(UnsafeMutableRawPointer(py).assumingMemoryBound(to: Float.self), inner)
            }
        }
    }
}
