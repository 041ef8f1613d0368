import BottleFitCore
import Foundation

/// ONNX ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
/// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp over float32. Axes are an attribute before
/// opset 18 (before 13 for ReduceSum) and a constant input from then on; `keepdims` keeps
/// the reduced axes as 1, `noop_with_empty_axes` makes an empty axes list the identity.
enum ReduceOperator: Operator {
    static let attributes: Set<String> = ["axes", "keepdims", "noop_with_empty_axes"]

    enum Kind { case mean, sum, max, min, prod, l1, l2, sumSquare, logSum, logSumExp }

    static func kind(_ op: String) -> Kind {
        switch op {
        case "ReduceMean": .mean
        case "ReduceSum": .sum
        case "ReduceMax": .max
        case "ReduceMin": .min
        case "ReduceProd": .prod
        case "ReduceL1": .l1
        case "ReduceL2": .l2
        case "ReduceSumSquare": .sumSquare
        case "ReduceLogSum": .logSum
        default: .logSumExp
        }
    }

    /// The reduced axes, normalised and sorted (empty when the node is the identity).
    static func axes(_ ctx: NodeContext, rank: Int) throws(EngineError) -> [Int] {
        let axesAsInput = ctx.opset >= 18 || (ctx.op == "ReduceSum" && ctx.opset >= 13)
        var given: [Int]?
        if axesAsInput {
            if ctx.node.attributes["axes"] != nil { throw ctx.unsupported("axes", "an attribute at opset \(ctx.opset)") }
            if ctx.input(1) != nil { given = try ctx.constantInts(1, what: "axes") }
        } else {
            given = try ctx.ints("axes")
        }
        if given?.isEmpty ?? true {
            if try ctx.int("noop_with_empty_axes", default: 0) != 0 { return [] }
            return Array(0..<rank)
        }
        var set = Set<Int>()
        for a in given! { set.insert(try normalizeAxis(a, rank: rank, ctx)) }
        return set.sorted()
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        let axes = try axes(ctx, rank: x.shape.count)
        let keep = try ctx.int("keepdims", default: 1) != 0
        var out: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if !axes.contains(i) { out.append(d) } else if keep { out.append(1) }
        }
        return [ValueType(.float32, out)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let axes = try axes(ctx, rank: x.shape.count)
        var reducedShape = x.shape
        for a in axes { reducedShape[a] = 1 }
        return ReduceKernel(
            kind: kind(ctx.op), x: x.floats, y: outputs[0].floats, inShape: x.shape, outStrides: broadcastStrides(reducedShape, to: x.shape),
            outCount: outputs[0].count, reducedCount: axes.map { x.shape[$0] }.reduce(1, *))
    }
}

final class ReduceKernel: Kernel {
    let kind: ReduceOperator.Kind
    let x, y: UnsafeMutablePointer<Float>
    let inShape, outStrides: [Int]
    let outCount, reducedCount: Int
    var index: [Int]
    /// Σ exp(x − max) per output (ReduceLogSumExp only).
    var sums: [Float]

    init(
        kind: ReduceOperator.Kind, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, inShape: [Int], outStrides: [Int],
        outCount: Int, reducedCount: Int
    ) {
        self.kind = kind
        self.x = x
        self.y = y
        self.inShape = inShape
        self.outStrides = outStrides
        self.outCount = outCount
        self.reducedCount = reducedCount
        index = [Int](repeating: 0, count: inShape.count)
        sums = [Float](repeating: 0, count: kind == .logSumExp ? outCount : 0)
    }

    /// Visits every input element in order with the offset of the output it reduces into.
    @inline(__always)
    private func visit(_ body: (Float, Int) -> Void) {
        let count = inShape.reduce(1, *)
        guard count > 0 else { return }
        let r = inShape.count
        if r == 0 { body(x[0], 0); return }
        for i in 0..<r { index[i] = 0 }
        let inner = inShape[r - 1], innerStride = outStrides[r - 1]
        var out = 0
        var offset = 0
        while offset < count {
            for i in 0..<inner { body(x[offset + i], out + i * innerStride) }
            offset += inner
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                out += outStrides[axis]
                if index[axis] < inShape[axis] { break }
                out -= outStrides[axis] * inShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    func execute(_ parallel: Parallel) {
        let y = y
        let initial: Float = switch kind {
        case .max, .logSumExp: -.infinity
        case .min: .infinity
        case .prod: 1
        default: 0
        }
        y.update(repeating: initial, count: outCount)
        switch kind {
        case .mean, .sum, .logSum: visit { v, o in y[o] += v }
        case .max: visit { v, o in if v > y[o] || v.isNaN { y[o] = v } }
        case .min: visit { v, o in if v < y[o] || v.isNaN { y[o] = v } }
        case .prod: visit { v, o in y[o] *= v }
        case .l1: visit { v, o in y[o] += Swift.abs(v) }
        case .l2, .sumSquare: visit { v, o in y[o] += v * v }
        case .logSumExp:
            // The max first (kept in y), then Σ exp(x − max): no overflow.
            visit { v, o in if v > y[o] { y[o] = v } }
            sums.withUnsafeMutableBufferPointer { s in
                for i in 0..<outCount { s[i] = 0 }
                visit { v, o in s[o] += expf(v - y[o]) }
                for i in 0..<outCount { y[i] += logf(s[i]) }
            }
        }
        switch kind {
        case .mean:
            let scale = 1 / Float(reducedCount)
            for i in 0..<outCount { y[i] *= scale }
        case .l2: for i in 0..<outCount { y[i] = y[i].squareRoot() }
        case .logSum: for i in 0..<outCount { y[i] = logf(y[i]) }
        default: break
        }
    }
}
