import BottleFitCore

func normalizeAxis(_ axis: Int, rank: Int, _ ctx: NodeContext, allowEnd: Bool = false) throws(EngineError) -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < (allowEnd ? rank + 1 : rank) else {
        throw .invalidModel("\(ctx.op) node '\(ctx.name)': axis \(axis) is out of range for rank \(rank)")
    }
    return a
}

/// Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference): the output is the
/// input's memory under another shape; the planner aliases it, so nothing is copied.
enum ReshapeOperator: Operator {
    static let attributes: Set<String> = ["allowzero", "axis", "axes", "seed", "ratio"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        switch ctx.op {
        case "Identity":
            return [x]
        case "Dropout":
            if ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty {
                throw ctx.unsupported("outputs", "mask (a BOOL tensor)")
            }
            if ctx.input(2) != nil {
                guard let t = ctx.constant(2) else {
                    throw .invalidModel("Dropout node '\(ctx.name)': training_mode must be a constant")
                }
                if t.doubles.contains(where: { $0 != 0 }) { throw ctx.unsupported("training_mode", "true") }
            }
            return [x]
        case "Flatten":
            let axis = try normalizeAxis(try ctx.int("axis", default: 1), rank: x.shape.count, ctx, allowEnd: true)
            return [ValueType(x.elementType, [x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])]
        case "Reshape":
            let target = try ctx.constantInts(1, what: "shape")
            let allowZero = try ctx.int("allowzero", default: 0) != 0
            var out = target
            var inferred: Int? = nil
            for (i, d) in target.enumerated() {
                if d == 0 && !allowZero {
                    guard i < x.shape.count else {
                        throw .shapeMismatch("Reshape node '\(ctx.name)': 0 at axis \(i) copies a dimension the input \(x.shape) lacks")
                    }
                    out[i] = x.shape[i]
                } else if d == -1 {
                    guard inferred == nil else { throw .invalidModel("Reshape node '\(ctx.name)': more than one -1 in \(target)") }
                    inferred = i
                } else if d < 0 {
                    throw .invalidModel("Reshape node '\(ctx.name)': invalid dimension \(d) in \(target)")
                }
            }
            if let i = inferred {
                let known = out.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
                guard known > 0, x.count % known == 0 else {
                    throw .shapeMismatch("Reshape node '\(ctx.name)': cannot reshape \(x.shape) to \(target)")
                }
                out[i] = x.count / known
            }
            guard out.reduce(1, *) == x.count else {
                throw .shapeMismatch("Reshape node '\(ctx.name)': cannot reshape \(x.shape) (\(x.count) elements) to \(target)")
            }
            return [ValueType(x.elementType, out)]
        case "Squeeze":
            var axes: [Int]?
            if ctx.opset >= 13 {
                axes = ctx.input(1) == nil ? nil : try ctx.constantInts(1, what: "axes")
            } else {
                axes = try ctx.ints("axes")
            }
            if let given = axes {
                var norm = Set<Int>()
                for a in given { norm.insert(try normalizeAxis(a, rank: x.shape.count, ctx)) }
                for a in norm where x.shape[a] != 1 {
                    throw .shapeMismatch("Squeeze node '\(ctx.name)': axis \(a) of \(x.shape) is not 1")
                }
                return [ValueType(x.elementType, x.shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element))]
            }
            return [ValueType(x.elementType, x.shape.filter { $0 != 1 })]
        default:  // Unsqueeze
            let given = ctx.opset >= 13 ? try ctx.constantInts(1, what: "axes") : (try ctx.ints("axes") ?? [])
            let rank = x.shape.count + given.count
            var norm = Set<Int>()
            for a in given { norm.insert(try normalizeAxis(a, rank: rank, ctx)) }
            guard norm.count == given.count else { throw .invalidModel("Unsqueeze node '\(ctx.name)': repeated axes \(given)") }
            var out: [Int] = []
            var it = x.shape.makeIterator()
            for i in 0..<rank { out.append(norm.contains(i) ? 1 : it.next()!) }
            return [ValueType(x.elementType, out)]
        }
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        CopyKernel(from: inputs[0]!.pointer, to: outputs[0].pointer, bytes: outputs[0].type.byteCount)
    }
}

/// Copies bytes unless source and destination are the same memory (an aliased reshape).
final class CopyKernel: Kernel {
    let from, to: UnsafeMutableRawPointer
    let bytes: Int

    init(from: UnsafeMutableRawPointer, to: UnsafeMutableRawPointer, bytes: Int) {
        self.from = from
        self.to = to
        self.bytes = bytes
    }

    func execute(_ parallel: Parallel) {
        if from != to { to.copyMemory(from: from, byteCount: bytes) }
    }
}

/// ONNX Concat along one axis, any element type.
enum ConcatOperator: Operator {
    static let attributes: Set<String> = ["axis"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let first = try ctx.required(0)
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: first.shape.count, ctx)
        var out = first.shape
        out[axis] = 0
        for i in 0..<ctx.inputs.count {
            let t = try ctx.required(i)
            guard t.elementType == first.elementType, t.shape.count == first.shape.count,
                (0..<t.shape.count).allSatisfy({ $0 == axis || t.shape[$0] == first.shape[$0] })
            else {
                throw .shapeMismatch("Concat node '\(ctx.name)': input \(i) \(t) does not match \(first) outside axis \(axis)")
            }
            out[axis] += t.shape[axis]
        }
        return [ValueType(first.elementType, out)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let y = outputs[0]
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: y.shape.count, ctx)
        let element = y.type.elementType.byteSize
        let outer = y.shape[..<axis].reduce(1, *)
        let inner = y.shape[(axis + 1)...].reduce(1, *) * element
        let parts = inputs[0..<ctx.node.inputs.count].map { ($0!.pointer, $0!.shape[axis] * inner) }
        return ConcatKernel(parts: parts, output: y.pointer, outer: outer)
    }
}

final class ConcatKernel: Kernel {
    let parts: [(UnsafeMutableRawPointer, Int)]
    let output: UnsafeMutableRawPointer
    let outer: Int

    init(parts: [(UnsafeMutableRawPointer, Int)], output: UnsafeMutableRawPointer, outer: Int) {
        self.parts = parts
        self.output = output
        self.outer = outer
    }

    func execute(_ parallel: Parallel) {
        let block = parts.reduce(0) { $0 + $1.1 }
        let total = outer * block
        // Large concatenations (DenseNet's, up to megabytes per layer) are copied by every
        // thread, each a contiguous range of the output.
        let threads = total >= 256 * 1024 ? parallel.threads : 1
        let parts = parts, output = output, outer = outer
        parallel.forEach(threads) { range in
            for t in range {
                let begin = total * t / threads, end = total * (t + 1) / threads
                var at = 0
                for o in 0..<outer {
                    for (src, bytes) in parts {
                        let lo = Swift.max(at, begin), hi = Swift.min(at + bytes, end)
                        if lo < hi { (output + lo).copyMemory(from: src + o * bytes + (lo - at), byteCount: hi - lo) }
                        at += bytes
                    }
                }
            }
        }
    }
}

/// ONNX Transpose with any permutation, any element type.
enum TransposeOperator: Operator {
    static let attributes: Set<String> = ["perm"]

    static func permutation(_ ctx: NodeContext, rank: Int) throws(EngineError) -> [Int] {
        let perm = try ctx.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw .invalidModel("Transpose node '\(ctx.name)': perm \(perm) is not a permutation of 0..<\(rank)")
        }
        return perm
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        let perm = try permutation(ctx, rank: x.shape.count)
        return [ValueType(x.elementType, perm.map { x.shape[$0] })]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let perm = try permutation(ctx, rank: x.shape.count)
        var inStrides = [Int](repeating: 1, count: x.shape.count)
        for i in stride(from: x.shape.count - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        return TransposeKernel(
            x: x.pointer, y: outputs[0].pointer, outShape: outputs[0].shape, strides: perm.map { inStrides[$0] },
            element: x.type.elementType.byteSize)
    }
}

final class TransposeKernel: Kernel {
    let x, y: UnsafeMutableRawPointer
    /// The output's axes after merging neighbours that stay neighbours in the input and
    /// dropping axes of size 1 (ShuffleNet's channel shuffle [1, 2, 58, 28, 28] → [58, 2, 784]).
    let outShape, strides: [Int]
    let element: Int
    var index: [Int]

    init(x: UnsafeMutableRawPointer, y: UnsafeMutableRawPointer, outShape: [Int], strides: [Int], element: Int) {
        (self.outShape, self.strides) = Self.coalesce(outShape, strides)
        self.x = x
        self.y = y
        self.element = element
        index = [Int](repeating: 0, count: self.outShape.count)
    }

    /// Output axes (with the input stride each one walks) merged where axis a + 1 continues
    /// axis a in the input, with axes of size 1 left out: the same walk in fewer, longer steps.
    static func coalesce(_ shape: [Int], _ strides: [Int]) -> ([Int], [Int]) {
        var outShape: [Int] = [], outStrides: [Int] = []
        for (n, st) in zip(shape, strides) where n != 1 {
            if let last = outShape.last, outStrides.last! == st * n {
                outShape[outShape.count - 1] = last * n
                outStrides[outStrides.count - 1] = st
            } else {
                outShape.append(n)
                outStrides.append(st)
            }
        }
        return (outShape, outStrides)
    }

    func execute(_ parallel: Parallel) {
        let count = outShape.reduce(1, *)
        guard count > 0 else { return }
        let r = outShape.count
        if r == 0 { y.copyMemory(from: x, byteCount: element); return }
        if strides[r - 1] == 1 {
            // The last axis is contiguous on both sides: one copy per row.
            copyRows(parallel)
            return
        }
        for i in 0..<r { index[i] = 0 }
        if element == 4 {
            run(x.assumingMemoryBound(to: UInt32.self), y.assumingMemoryBound(to: UInt32.self), count)
            return
        }
        var src = 0
        for o in 0..<count {
            (y + o * element).copyMemory(from: x + src * element, byteCount: element)
            var axis = r - 1
            while axis >= 0 {
                index[axis] += 1
                src += strides[axis]
                if index[axis] < outShape[axis] { break }
                src -= strides[axis] * outShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Rows of the last axis, each a block copy, split over the threads.
    private func copyRows(_ parallel: Parallel) {
        let r = outShape.count
        let inner = outShape[r - 1]
        let rows = outShape.reduce(1, *) / inner
        let bytes = inner * element
        let x = x, y = y, element = element, outShape = outShape, strides = strides
        parallel.forEach(rows, minimumPerThread: Swift.max(1, 16384 / Swift.max(bytes, 1))) { range in
            for row in range {
                // The input offset of this row: its index digit by digit.
                var rest = row, src = 0
                for axis in stride(from: r - 2, through: 0, by: -1) {
                    src += rest % outShape[axis] * strides[axis]
                    rest /= outShape[axis]
                }
                (y + row * bytes).copyMemory(from: x + src * element, byteCount: bytes)
            }
        }
    }

    /// The same walk for 4-byte elements (float32): a load and a store instead of a copy
    /// call per element; the last axis runs as a strided loop.
    private func run<T>(_ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int) {
        let r = outShape.count
        let inner = outShape[r - 1], innerStride = strides[r - 1]
        var src = 0
        var o = 0
        while o < count {
            for j in 0..<inner { y[o + j] = x[src + j * innerStride] }
            o += inner
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                src += strides[axis]
                if index[axis] < outShape[axis] { break }
                src -= strides[axis] * outShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// ONNX Shape (with start/end): always known at plan time, so it folds to a constant.
enum ShapeOperator: Operator {
    static let attributes: Set<String> = ["start", "end"]

    static func range(_ ctx: NodeContext, rank: Int) throws(EngineError) -> Range<Int> {
        func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(try ctx.int("start", default: 0))
        let end = clamp(try ctx.int("end", default: rank))
        return start..<Swift.max(start, end)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        return [ValueType(.int64, [try range(ctx, rank: x.shape.count).count])]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let shape = inputs[0]!.shape
        let values = try range(ctx, rank: shape.count).map { Int64(shape[$0]) }
        return FillKernel(values: values, output: outputs[0].int64s)
    }
}

final class FillKernel<T>: Kernel {
    let values: [T]
    let output: UnsafeMutablePointer<T>

    init(values: [T], output: UnsafeMutablePointer<T>) {
        self.values = values
        self.output = output
    }

    func execute(_ parallel: Parallel) {
        for (i, v) in values.enumerated() { output[i] = v }
    }
}

/// ONNX Constant (value, value_float(s), value_int(s)).
enum ConstantOperator: Operator {
    static let attributes: Set<String> = ["value", "value_float", "value_floats", "value_int", "value_ints"]

    static func value(_ ctx: NodeContext) throws(EngineError) -> Tensor {
        switch (ctx.node.attributes["value"], ctx.node.attributes["value_float"], ctx.node.attributes["value_floats"],
            ctx.node.attributes["value_int"], ctx.node.attributes["value_ints"])
        {
        case (.tensor(let t)?, nil, nil, nil, nil): return t
        case (nil, .float(let v)?, nil, nil, nil): return Tensor(shape: [], floats: [v])
        case (nil, nil, .floats(let v)?, nil, nil): return Tensor(shape: [v.count], floats: v)
        case (nil, nil, nil, .int(let v)?, nil): return Tensor(shape: [], int64s: [Int64(v)])
        case (nil, nil, nil, nil, .ints(let v)?): return Tensor(shape: [v.count], int64s: v.map { Int64($0) })
        default: throw .invalidModel("Constant node '\(ctx.name)' needs exactly one supported value attribute")
        }
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let t = try value(ctx)
        return [ValueType(t.elementType, t.shape)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let t = try value(ctx)
        switch t.storage {
        case .float32(let v): return FillKernel(values: v, output: outputs[0].floats)
        case .uint8(let v): return FillKernel(values: v, output: outputs[0].bytes)
        case .int64(let v): return FillKernel(values: v, output: outputs[0].int64s)
        }
    }
}

/// ONNX Gather along one axis with int64 indices (negative indices count from the end).
enum GatherOperator: Operator {
    static let attributes: Set<String> = ["axis"]

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        let idx = try ctx.requireType(1, [.int64])
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: x.shape.count, ctx)
        if let t = ctx.constant(1), let v = t.int64s {
            for i in v where i < -Int64(x.shape[axis]) || i >= Int64(x.shape[axis]) {
                throw .invalidModel("Gather node '\(ctx.name)': index \(i) out of range for axis of size \(x.shape[axis])")
            }
        }
        return [ValueType(x.elementType, Array(x.shape[..<axis]) + idx.shape + Array(x.shape[(axis + 1)...]))]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: x.shape.count, ctx)
        let element = x.type.elementType.byteSize
        return GatherKernel(
            x: x.pointer, indices: inputs[1]!.int64s, indexCount: inputs[1]!.count, y: outputs[0].pointer,
            outer: x.shape[..<axis].reduce(1, *), axisSize: x.shape[axis],
            innerBytes: x.shape[(axis + 1)...].reduce(1, *) * element)
    }
}

final class GatherKernel: Kernel {
    let x, y: UnsafeMutableRawPointer
    let indices: UnsafeMutablePointer<Int64>
    let indexCount, outer, axisSize, innerBytes: Int

    init(
        x: UnsafeMutableRawPointer, indices: UnsafeMutablePointer<Int64>, indexCount: Int, y: UnsafeMutableRawPointer,
        outer: Int, axisSize: Int, innerBytes: Int
    ) {
        self.x = x
        self.indices = indices
        self.indexCount = indexCount
        self.y = y
        self.outer = outer
        self.axisSize = axisSize
        self.innerBytes = innerBytes
    }

    func execute(_ parallel: Parallel) {
        var dst = y
        for o in 0..<outer {
            for j in 0..<indexCount {
                var i = Int(indices[j])
                if i < 0 { i += axisSize }
                // A runtime index out of range yields zeros rather than reading outside the tensor.
                if i < 0 || i >= axisSize {
                    dst.initializeMemory(as: UInt8.self, repeating: 0, count: innerBytes)
                } else {
                    dst.copyMemory(from: x + (o * axisSize + i) * innerBytes, byteCount: innerBytes)
                }
                dst += innerBytes
            }
        }
    }
}

/// ONNX Cast between float32, uint8 and int64 (float to integer truncates toward zero,
/// saturating for uint8 as the conformance suites expect of ONNX Runtime).
enum CastOperator: Operator {
    static let attributes: Set<String> = ["to", "saturate"]

    static func target(_ ctx: NodeContext) throws(EngineError) -> ElementType {
        try ONNXImporter.elementType(try ctx.int("to", default: 0), context: "Cast node '\(ctx.name)'")
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32, .uint8, .int64])
        return [ValueType(try target(ctx), x.shape)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        CastKernel(x: inputs[0]!, y: outputs[0])
    }
}

final class CastKernel: Kernel {
    let x, y: Operand

    init(x: Operand, y: Operand) {
        self.x = x
        self.y = y
    }

    func execute(_ parallel: Parallel) {
        let n = x.count
        func value(_ i: Int) -> Double {
            switch x.type.elementType {
            case .float32: Double(x.floats[i])
            case .uint8: Double(x.bytes[i])
            case .int64: Double(x.int64s[i])
            }
        }
        for i in 0..<n {
            switch y.type.elementType {
            case .float32:
                y.floats[i] = x.type.elementType == .int64 ? Float(x.int64s[i]) : Float(value(i))
            case .uint8:
                let v = value(i)
                y.bytes[i] = v.isNaN ? 0 : UInt8(Swift.min(Swift.max(v.rounded(.towardZero), 0), 255))
            case .int64:
                if x.type.elementType == .int64 { y.int64s[i] = x.int64s[i]; continue }
                let v = value(i)
                y.int64s[i] = v.isFinite && abs(v) < 9.2e18 ? Int64(v.rounded(.towardZero)) : 0
            }
        }
    }
}
