import BottleFitCore

/// ONNX Gemm: Y = alpha·A'·B' + beta·C (C broadcast to [M, N]), float32, via `cblas_sgemm`.
enum GemmOperator: Operator {
    /// `broadcast` (before opset 7) only allowed what multidirectional broadcasting of C does.
    static let attributes: Set<String> = ["alpha", "beta", "transA", "transB", "broadcast"]

    struct Shape { var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float }

    static func shape(_ ctx: NodeContext) throws(EngineError) -> Shape {
        let a = try ctx.requireType(0, [.float32])
        let b = try ctx.requireType(1, [.float32])
        guard a.shape.count == 2, b.shape.count == 2 else {
            throw .shapeMismatch("Gemm node '\(ctx.name)': A \(a.shape) and B \(b.shape) must be 2-D")
        }
        let ta = try ctx.int("transA", default: 0) != 0
        let tb = try ctx.int("transB", default: 0) != 0
        let m = ta ? a.shape[1] : a.shape[0]
        let k = ta ? a.shape[0] : a.shape[1]
        let kb = tb ? b.shape[1] : b.shape[0]
        let n = tb ? b.shape[0] : b.shape[1]
        guard k == kb else { throw .shapeMismatch("Gemm node '\(ctx.name)': inner dimensions differ (\(a.shape) x \(b.shape))") }
        if let c = ctx.input(2) {
            guard c.elementType == .float32, c.shape.count <= 2, broadcastShapes(c.shape, [m, n]) == [m, n] else {
                throw .shapeMismatch("Gemm node '\(ctx.name)': C \(c.shape) does not broadcast to [\(m), \(n)]")
            }
        }
        return Shape(
            m: m, n: n, k: k, transA: ta, transB: tb, alpha: try ctx.float("alpha", default: 1),
            beta: try ctx.float("beta", default: 1))
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let s = try shape(ctx)
        return [ValueType(.float32, [s.m, s.n])]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let s = try shape(ctx)
        var cStrides: (Int, Int) = (0, 0)
        if let c = inputs[2] {
            let st = broadcastStrides(c.shape, to: [s.m, s.n])
            cStrides = (st[0], st[1])
        }
        var packed: PackedWeights?
        if usesPackedWeights(s, ctx) {
            // Yᵀ = op(B)ᵀ·op(A)ᵀ: the constant op(B)ᵀ [N, K] is the packed operand.
            let b = inputs[1]!.floats
            packed = ctx.prepared("packed") { PackedWeights(b, lda: s.transB ? s.k : s.n, rows: s.n, depth: s.k, transposed: !s.transB, instructionSet: ctx.instructionSet) }
        }
        return GemmKernel(
            s, a: inputs[0]!.floats, b: inputs[1]!.floats, c: inputs[2]?.floats, cStrides: cStrides, y: outputs[0].floats,
            activation: Activation.fused(in: ctx.node), packed: packed, threads: ctx.threads,
            workspace: workspace.assumingMemoryBound(to: Float.self))
    }

    /// A constant B (a fully connected layer's weights) is packed once when the plan is made,
    /// except for a single row (a classifier at batch 1), which is a matrix-vector product:
    /// OpenBLAS's `sgemv` took MobileNetV2's 1280 -> 1000 classifier in 0.13-0.15 ms against
    /// the microkernel's 0.19-0.20 ms (AVX-512, Zen 4, 2 threads).
    static func usesPackedWeights(_ s: Shape, _ ctx: NodeContext) -> Bool {
        ctx.gemm == .packed && ctx.constant(1) != nil && s.k > 0 && s.m > 1 && s.n > 0
    }

    /// A packed constant B is read only while it is packed.
    static func inputsReadOnlyWhilePlanning(_ ctx: NodeContext) -> Set<Int> {
        guard let s = try? shape(ctx), usesPackedWeights(s, ctx) else { return [] }
        return [1]
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let s = try? shape(ctx), usesPackedWeights(s, ctx) else { return 0 }
        return (s.n * s.m + PackedWeights.workspaceFloats(rows: s.n, depth: s.k, columns: s.m, threads: ctx.threads)) * 4
    }
}

final class GemmKernel: Kernel {
    let s: GemmOperator.Shape
    let a, b, y: UnsafeMutablePointer<Float>
    let c: UnsafeMutablePointer<Float>?
    let cStrides: (Int, Int)
    let activation: Activation
    /// op(B)ᵀ packed for the microkernel, the threads the workspace was cut for, and the workspace.
    let packed: PackedWeights?
    let threads: Int
    let workspace: UnsafeMutablePointer<Float>

    init(
        _ s: GemmOperator.Shape, a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>,
        c: UnsafeMutablePointer<Float>?, cStrides: (Int, Int), y: UnsafeMutablePointer<Float>, activation: Activation,
        packed: PackedWeights?, threads: Int, workspace: UnsafeMutablePointer<Float>
    ) {
        self.packed = packed
        self.threads = threads
        self.workspace = workspace
        self.s = s
        self.a = a
        self.b = b
        self.c = c
        self.cStrides = cStrides
        self.y = y
        self.activation = activation
    }

    func execute(_ parallel: Parallel) {
        if let packed {
            executePacked(packed, parallel)
            return
        }
        var beta: Float = 0
        if let c, s.beta != 0 {
            for i in 0..<s.m {
                for j in 0..<s.n { y[i * s.n + j] = c[i * cStrides.0 + j * cStrides.1] }
            }
            beta = s.beta
        }
        if s.k == 0 {
            for i in 0..<(s.m * s.n) { y[i] *= beta }
        } else {
            sgemm(
                m: s.m, n: s.n, k: s.k, a: a, lda: s.transA ? s.m : s.k, b: b, ldb: s.transB ? s.k : s.n, c: y, ldc: s.n,
                beta: beta, transA: s.transA, transB: s.transB, alpha: s.alpha, parallel: parallel)
        }
        activation.apply(y, s.m * s.n)
    }

    /// Yᵀ [N, M] = op(B)ᵀ·op(A)ᵀ with the packed weights, then Y = alpha·Yᵀᵀ + beta·C.
    private func executePacked(_ packed: PackedWeights, _ parallel: Parallel) {
        let s = s, a = a
        let tmp = workspace
        let lda = s.transA ? s.m : s.k
        packed.run(columns: s.m, c: tmp, ldc: s.m, epilogue: .none, parts: threads, workspace: workspace + s.n * s.m, parallel: parallel) {
            rows, columns, dst, ldc in
            // dst[r, j] = op(A)[j, r]: op(A)ᵀ is A itself when transA, else a transposed read.
            for (i, r) in rows.enumerated() {
                let out = dst + i * ldc
                for (j, row) in columns.enumerated() { out[j] = s.transA ? a[r * lda + row] : a[row * lda + r] }
            }
        }
        let c = s.beta != 0 ? c : nil
        for i in 0..<s.m {
            let out = y + i * s.n
            for j in 0..<s.n {
                var v = s.alpha * tmp[j * s.m + i]
                if let c { v += s.beta * c[i * cStrides.0 + j * cStrides.1] }
                out[j] = v
            }
        }
        activation.apply(y, s.m * s.n)
    }
}

/// ONNX MatMul with NumPy semantics (1-D promotion, broadcast batch dimensions), float32.
enum MatMulOperator: Operator {
    static let attributes: Set<String> = []

    struct Shape { var m: Int, n: Int, k: Int, batch: [Int], aShape: [Int], bShape: [Int], out: [Int] }

    static func shape(_ ctx: NodeContext) throws(EngineError) -> Shape {
        let a = try ctx.requireType(0, [.float32]).shape
        let b = try ctx.requireType(1, [.float32]).shape
        guard !a.isEmpty, !b.isEmpty else { throw .shapeMismatch("MatMul node '\(ctx.name)': scalar operand") }
        let a2 = a.count == 1 ? [1, a[0]] : a
        let b2 = b.count == 1 ? [b[0], 1] : b
        let m = a2[a2.count - 2], k = a2[a2.count - 1]
        let kb = b2[b2.count - 2], n = b2[b2.count - 1]
        guard k == kb, let batch = broadcastShapes(Array(a2.dropLast(2)), Array(b2.dropLast(2))) else {
            throw .shapeMismatch("MatMul node '\(ctx.name)': cannot multiply \(a) by \(b)")
        }
        var out = batch
        if a.count > 1 { out.append(m) }
        if b.count > 1 { out.append(n) }
        return Shape(m: m, n: n, k: k, batch: batch, aShape: a2, bShape: b2, out: out)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        [ValueType(.float32, try shape(ctx).out)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        var s = try shape(ctx)
        if s.bShape.count == 2 && s.aShape.count > 2 {
            // One weight matrix for every batch item (a Linear layer over NHWC, as in ConvNeXt):
            // A's batch dimensions are rows of one GEMM.
            s.m *= s.batch.reduce(1, *)
            return MatMulKernel(s, a: inputs[0]!.floats, b: inputs[1]!.floats, y: outputs[0].floats, offsets: [(0, 0)])
        }
        // Offsets of each batch item's A and B matrices under broadcasting.
        let batchCount = s.batch.reduce(1, *)
        let sa = broadcastStrides(Array(s.aShape.dropLast(2)), to: s.batch)
        let sb = broadcastStrides(Array(s.bShape.dropLast(2)), to: s.batch)
        var offsets: [(Int, Int)] = []
        var index = [Int](repeating: 0, count: s.batch.count)
        for _ in 0..<batchCount {
            var oa = 0, ob = 0
            for i in 0..<index.count { oa += index[i] * sa[i]; ob += index[i] * sb[i] }
            offsets.append((oa * s.m * s.k, ob * s.k * s.n))
            var axis = index.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < s.batch[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return MatMulKernel(s, a: inputs[0]!.floats, b: inputs[1]!.floats, y: outputs[0].floats, offsets: offsets)
    }
}

final class MatMulKernel: Kernel {
    let s: MatMulOperator.Shape
    let a, b, y: UnsafeMutablePointer<Float>
    let offsets: [(Int, Int)]

    init(_ s: MatMulOperator.Shape, a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, offsets: [(Int, Int)]) {
        self.s = s
        self.a = a
        self.b = b
        self.y = y
        self.offsets = offsets
    }

    func execute(_ parallel: Parallel) {
        for (i, (oa, ob)) in offsets.enumerated() {
            let out = y + i * s.m * s.n
            if s.k == 0 { out.update(repeating: 0, count: s.m * s.n); continue }
            sgemm(m: s.m, n: s.n, k: s.k, a: a + oa, lda: s.k, b: b + ob, ldb: s.n, c: out, ldc: s.n, parallel: parallel)
        }
    }
}
