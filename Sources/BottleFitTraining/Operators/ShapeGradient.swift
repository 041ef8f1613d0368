import BottleFitEngine

/// Identity and inference-mode Dropout: the value and its gradient pass through.
struct IdentityGradient: TrainableOperator {
    init(_ node: Node) throws(TrainingError) {
        _ = try AttributeReader(node, allowed: node.opType == "Dropout" ? ["seed"] : [])
        guard node.outputs.count == 1 || node.outputs.dropFirst().allSatisfy(\.isEmpty) else {
            throw .unsupported("\(node.opType) '\(node.name)' with a mask output")
        }
        if node.opType == "Dropout", node.input(1) != nil || node.input(2) != nil {
            throw .unsupported("Dropout '\(node.name)' with a ratio or training_mode input (the training engine keeps Dropout as identity)")
        }
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        ForwardOutput(output: inputs[0])
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        [needs[0] ? dy : nil]
    }
}

/// Flatten: [d0, ..., dn] -> [d0·...·d(axis−1), d(axis)·...·dn].
struct FlattenGradient: TrainableOperator {
    let axis: Int

    init(_ node: Node) throws(TrainingError) {
        axis = try AttributeReader(node, allowed: ["axis"]).int("axis", 1)
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0]
        let a = axis < 0 ? axis + x.shape.count : axis
        guard a >= 0, a <= x.shape.count else { throw .shapeMismatch("Flatten axis \(axis) for input \(x.shape)") }
        let outer = x.shape[..<a].reduce(1, *)
        return ForwardOutput(output: x.reshaped([outer, x.count / max(1, outer)]))
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        [needs[0] ? dy.reshaped(inputs[0].shape) : nil]
    }
}

/// Concat along one axis; each input's gradient is its slice of the output gradient.
struct ConcatGradient: TrainableOperator {
    let axis: Int

    init(_ node: Node) throws(TrainingError) {
        let attributes = try AttributeReader(node, allowed: ["axis"])
        guard node.attributes["axis"] != nil else { throw .unsupported("Concat '\(node.name)' without an axis") }
        axis = try attributes.int("axis", 0)
    }

    /// (outer, inner) sizes around the axis, and each input's length along it.
    func layout(_ shapes: [[Int]]) throws(TrainingError) -> (outer: Int, inner: Int, lengths: [Int], shape: [Int]) {
        let rank = shapes[0].count
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw .shapeMismatch("Concat axis \(axis) for rank \(rank)") }
        for s in shapes where s.count != rank || s.enumerated().contains(where: { $0.offset != a && $0.element != shapes[0][$0.offset] }) {
            throw .shapeMismatch("Concat along axis \(a): shapes \(shapes) differ off that axis")
        }
        let lengths = shapes.map { $0[a] }
        var shape = shapes[0]
        shape[a] = lengths.reduce(0, +)
        return (shapes[0][..<a].reduce(1, *), shapes[0][(a + 1)...].reduce(1, *), lengths, shape)
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let (outer, inner, lengths, shape) = try layout(inputs.map(\.shape))
        let total = lengths.reduce(0, +)
        var y = Buffer(zeros: shape)
        var offset = 0
        for (k, x) in inputs.enumerated() {
            let chunk = lengths[k] * inner
            for o in 0..<outer {
                for j in 0..<chunk { y.data[(o * total + offset) * inner + j] = x.data[o * chunk + j] }
            }
            offset += lengths[k]
        }
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        let (outer, inner, lengths, _) = try! layout(inputs.map(\.shape))
        let total = lengths.reduce(0, +)
        var offset = 0
        var result: [Buffer?] = []
        for (k, x) in inputs.enumerated() {
            defer { offset += lengths[k] }
            guard needs[k] else { result.append(nil); continue }
            var g = Buffer(zeros: x.shape)
            let chunk = lengths[k] * inner
            for o in 0..<outer {
                for j in 0..<chunk { g.data[o * chunk + j] = dy.data[(o * total + offset) * inner + j] }
            }
            result.append(g)
        }
        return result
    }
}

/// Gemm: Y = alpha·A'·B' + beta·C, C broadcast to [M, N].
struct GemmGradient: TrainableOperator {
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float

    init(_ node: Node) throws(TrainingError) {
        let attributes = try AttributeReader(node, allowed: ["alpha", "beta", "transA", "transB"])
        transA = try attributes.int("transA", 0) != 0
        transB = try attributes.int("transB", 0) != 0
        alpha = try attributes.float("alpha", 1)
        beta = try attributes.float("beta", 1)
    }

    func dims(_ a: Buffer, _ b: Buffer) throws(TrainingError) -> (m: Int, n: Int, k: Int) {
        guard a.shape.count == 2, b.shape.count == 2 else { throw .shapeMismatch("Gemm: A \(a.shape), B \(b.shape) must be 2-D") }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else { throw .shapeMismatch("Gemm: inner dimensions of \(a.shape) and \(b.shape) differ") }
        return (m, n, k)
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let a = inputs[0], b = inputs[1]
        let (m, n, k) = try dims(a, b)
        var y = Buffer(zeros: [m, n])
        if inputs.count > 2 {
            let c = inputs[2]
            guard c.shape.count <= 2, broadcast(c.shape, [m, n]) == [m, n] else {
                throw .shapeMismatch("Gemm: C \(c.shape) does not broadcast to [\(m), \(n)]")
            }
            let index = BroadcastIndex(from: c.shape, to: [m, n])
            for i in 0..<(m * n) { y.data[i] = beta * c.data[index.source(i)] }
        }
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, ap.baseAddress!, lda: a.shape[1],
                          bp.baseAddress!, ldb: b.shape[1], beta: inputs.count > 2 ? 1 : 0, yp.baseAddress!, ldc: n)
                }
            }
        }
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        let a = inputs[0], b = inputs[1]
        let (m, n, k) = try! dims(a, b)
        var result: [Buffer?] = Array(repeating: nil, count: inputs.count)
        dy.data.withUnsafeBufferPointer { gp in
            if needs[0] {
                // dA' = alpha·dY·B'ᵀ; stored transposed when transA.
                var da = Buffer(zeros: a.shape)
                b.data.withUnsafeBufferPointer { bp in
                    da.data.withUnsafeMutableBufferPointer { dp in
                        if transA {
                            sgemm(transA: transB, transB: true, m: k, n: m, k: n, alpha: alpha, bp.baseAddress!, lda: b.shape[1], gp.baseAddress!, ldb: n, dp.baseAddress!, ldc: m)
                        } else {
                            sgemm(transA: false, transB: !transB, m: m, n: k, k: n, alpha: alpha, gp.baseAddress!, lda: n, bp.baseAddress!, ldb: b.shape[1], dp.baseAddress!, ldc: k)
                        }
                    }
                }
                result[0] = da
            }
            if needs[1] {
                // dB' = alpha·A'ᵀ·dY; stored transposed when transB.
                var db = Buffer(zeros: b.shape)
                a.data.withUnsafeBufferPointer { ap in
                    db.data.withUnsafeMutableBufferPointer { dp in
                        if transB {
                            sgemm(transA: true, transB: transA, m: n, n: k, k: m, alpha: alpha, gp.baseAddress!, lda: n, ap.baseAddress!, ldb: a.shape[1], dp.baseAddress!, ldc: k)
                        } else {
                            sgemm(transA: !transA, transB: false, m: k, n: n, k: m, alpha: alpha, ap.baseAddress!, lda: a.shape[1], gp.baseAddress!, ldb: n, dp.baseAddress!, ldc: n)
                        }
                    }
                }
                result[1] = db
            }
        }
        if inputs.count > 2, needs[2] {
            var dc = Buffer(zeros: inputs[2].shape)
            let index = BroadcastIndex(from: inputs[2].shape, to: [m, n])
            for i in 0..<(m * n) { dc.data[index.source(i)] += beta * dy.data[i] }
            result[2] = dc
        }
        return result
    }
}
