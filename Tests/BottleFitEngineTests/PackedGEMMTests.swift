import BottleFitCore
import Testing

@testable import BottleFitEngine

/// The packed-weight GEMM against a plain triple loop: every last-panel width (1 to 48
/// columns past the full panels), partial row panels, one and several depth blocks, the
/// epilogue (bias, residual, ReLU), and each way `run` splits work over threads.
@Suite struct PackedGEMMTests {
    struct Dims: CustomStringConvertible {
        var m, k, n: Int
        var description: String { "\(m)x\(k)x\(n)" }
    }

    static func reference(
        _ d: Dims, a: [Float], b: [Float], bias: [Float]?, residual: [Float]?, relu: Bool
    ) -> [Float] {
        var c = [Float](repeating: 0, count: d.m * d.n)
        for i in 0..<d.m {
            for j in 0..<d.n {
                var acc = Double(bias?[i] ?? 0)
                for p in 0..<d.k { acc += Double(a[i * d.k + p]) * Double(b[p * d.n + j]) }
                var v = Float(acc) + (residual?[i * d.n + j] ?? 0)
                if relu { v = max(v, 0) }
                c[i * d.n + j] = v
            }
        }
        return c
    }

    /// The instruction sets this CPU runs.
    static let instructionSets = KernelInstructionSet.allCases.filter(\.isSupported)

    static func check(_ d: Dims, threads: Int, epilogue: Bool, seed: UInt64) {
        for isa in instructionSets { check(d, threads: threads, epilogue: epilogue, seed: seed, isa: isa) }
    }

    static func check(_ d: Dims, threads: Int, epilogue: Bool, seed: UInt64, isa: KernelInstructionSet) {
        var rng = SeededGenerator(seed: seed)
        let a = (0..<d.m * d.k).map { _ in rng.nextNormal() }
        let b = (0..<d.k * d.n).map { _ in rng.nextNormal() }
        let bias = epilogue ? (0..<d.m).map { _ in rng.nextNormal() } : nil
        let residual = epilogue ? (0..<d.m * d.n).map { _ in rng.nextNormal() } : nil
        let expected = reference(d, a: a, b: b, bias: bias, residual: residual, relu: epilogue)
        let compute = ComputeContext(threads: threads)
        let packed = a.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, lda: d.k, rows: d.m, depth: d.k, instructionSet: isa) }
        var c = [Float](repeating: .nan, count: d.m * d.n)
        let space = PackedWeights.workspaceFloats(rows: d.m, depth: d.k, columns: d.n, threads: threads)
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: space)
        defer { workspace.deallocate() }
        b.withUnsafeBufferPointer { bp in
            (bias ?? []).withUnsafeBufferPointer { biasp in
                (residual ?? []).withUnsafeBufferPointer { rp in
                    let e = PackedGEMM.Epilogue(
                        bias: epilogue ? biasp.baseAddress : nil, residual: epilogue ? rp.baseAddress : nil, residualStride: d.n,
                        relu: epilogue)
                    c.withUnsafeMutableBufferPointer { cp in
                        packed.run(
                            columns: d.n, c: cp.baseAddress!, ldc: d.n, epilogue: e, parts: threads, workspace: workspace,
                            parallel: compute.parallel
                        ) {
                            rows, columns, dst, ldc in
                            for (i, r) in rows.enumerated() {
                                (dst + i * ldc).update(from: bp.baseAddress! + r * d.n + columns.lowerBound, count: columns.count)
                            }
                        }
                    }
                }
            }
        }
        var worst: Float = 0, scale: Float = 1
        for i in 0..<c.count {
            worst = max(worst, abs(c[i] - expected[i]))
            if c[i].isNaN { worst = .infinity }
            scale = max(scale, abs(expected[i]))
        }
        #expect(worst <= 2e-5 * scale, "\(d) \(isa) threads \(threads) epilogue \(epilogue): max error \(worst) of \(scale)")
    }

    @Test func everyLastPanelWidth() {
        for n in 1...97 { Self.check(Dims(m: 11, k: 37, n: n), threads: 1, epilogue: n % 2 == 0, seed: UInt64(n)) }
    }

    @Test(arguments: [
        Dims(m: 8, k: 512, n: 48), Dims(m: 9, k: 513, n: 49), Dims(m: 16, k: 1100, n: 300), Dims(m: 64, k: 600, n: 49), Dims(m: 3, k: 513, n: 1000),
        Dims(m: 40, k: 300, n: 100), Dims(m: 1, k: 1, n: 1), Dims(m: 130, k: 70, n: 1200),
        // Last panels of 4 rows (the 4-row kernels), 16 to 48 columns wide.
        Dims(m: 12, k: 256, n: 29), Dims(m: 4, k: 600, n: 96), Dims(m: 20, k: 33, n: 113),
    ])
    func shapesAndThreadSplits(_ d: Dims) {
        for threads in [1, 2, 3] {
            for epilogue in [false, true] { Self.check(d, threads: threads, epilogue: epilogue, seed: UInt64(d.m * d.k + d.n)) }
        }
    }
}

/// ONNX Gemm with a constant B (a fully connected layer) through OpenBLAS and through the
/// packed weights: every transA/transB combination, C broadcast from a row, alpha and beta;
/// one row of A (a classifier at batch 1: OpenBLAS's matrix-vector product) and three, and
/// wide enough (153 columns) for two threads to split the columns.
@Suite(.serialized) struct ConstantGemmTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)], [1, 3])
    func matchesPlainLoops(_ trans: (Bool, Bool), m: Int) throws {
        let (transA, transB) = trans
        let k = 70, n = 153
        let alpha: Float = 0.5, beta: Float = 2
        var rng = SeededGenerator(seed: 7)
        let a = (0..<m * k).map { _ in rng.nextNormal() }
        let b = (0..<k * n).map { _ in rng.nextNormal() }
        let c = (0..<n).map { _ in rng.nextNormal() }
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    acc += Double(av) * Double(bv)
                }
                expected[i * n + j] = alpha * Float(acc) + beta * c[j]
            }
        }
        let graph = Graph(
            name: "gemm",
            nodes: [
                Node(
                    name: "fc", opType: "Gemm", inputs: ["a", "b", "c"], outputs: ["y"],
                    attributes: [
                        "alpha": .float(alpha), "beta": .float(beta), "transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0),
                    ])
            ],
            inputs: [ValueInfo(name: "a", shape: (transA ? [k, m] : [m, k]).map { .fixed($0) })],
            outputs: [ValueInfo(name: "y", shape: nil)],
            initializers: [
                "b": Tensor(shape: transB ? [n, k] : [k, n], floats: b), "c": Tensor(shape: [n], floats: c),
            ])
        try forEachComputeContext { compute in
            let session = try InferenceSession(graph: graph, compute: compute)
            let got = try session.run(["a": Tensor(shape: transA ? [k, m] : [m, k], floats: a)])["y"]!.floats!
            let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(got.count == expected.count && worst <= 1e-4, "\(compute) trans \(trans) m \(m): max error \(worst)")
        }
    }
}

/// A worker plans every batch size it sees: the packed weights are made once per session.
@Suite struct PreparedWeightsTests {
    /// A 1x1 convolution 16 -> 24 channels, no bias, over 20x20 maps of any batch.
    static func pointwise(_ w: [Float]) -> Graph {
        Graph(
            name: "pointwise",
            nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["kernel_shape": .ints([1, 1])])],
            inputs: [ValueInfo(name: "x", shape: [.symbolic("batch"), .fixed(16), .fixed(20), .fixed(20)])],
            outputs: [ValueInfo(name: "y", shape: nil)],
            initializers: ["w": Tensor(shape: [24, 16, 1, 1], floats: w)])
    }

    @Test func plansOfOneSessionSharePackedWeights() throws {
        var rng = SeededGenerator(seed: 5)
        let w = (0..<24 * 16).map { _ in rng.nextNormal() }
        let graph = Self.pointwise(w)
        let session = try InferenceSession(graph: graph, compute: ComputeContext(gemm: .packed))
        for batch in 1...4 { _ = try session.plan(batch: batch) }
        #expect(session.preparedWeights.count == 1)
        let x = (0..<3 * 16 * 400).map { _ in rng.nextNormal() }
        let y = try session.run(["x": Tensor(shape: [3, 16, 20, 20], floats: x)])["y"]!.floats!
        var worst: Float = 0
        for n in 0..<3 {
            for m in 0..<24 {
                for p in 0..<400 {
                    var acc: Float = 0
                    for c in 0..<16 { acc += w[m * 16 + c] * x[(n * 16 + c) * 400 + p] }
                    worst = max(worst, abs(acc - y[(n * 24 + m) * 400 + p]))
                }
            }
        }
        #expect(worst < 1e-4)
    }

    /// Weights a kernel packs are not kept in plain form by the plan (it packs them from the
    /// tensor in place); those OpenBLAS reads at run time are. The results are right either
    /// way, also from a second plan of the same session. (16 input channels over 20x20 is a
    /// shallow pointwise convolution, which `mixed` packs too.)
    @Test func packedWeightsAreNotKeptPlain() throws {
        var rng = SeededGenerator(seed: 8)
        let w = (0..<24 * 16).map { _ in rng.nextNormal() }
        let graph = Self.pointwise(w)
        let x = (0..<2 * 16 * 400).map { _ in rng.nextNormal() }
        let expected = directConvolution(
            x, batch: 2, channels: 16, size: 20, weights: w, bias: [Float](repeating: 0, count: 24), outChannels: 24, kernel: 1,
            stride: 1, pad: 0)
        try forEachComputeContext(threadCounts: [1]) { compute in
            let session = try InferenceSession(graph: graph, compute: compute)
            let first = try session.plan(batch: 1)
            #expect(first.constantBytes == (compute.gemm == .openblas ? w.count * 4 : 0), "\(compute): \(first.constantBytes) bytes kept")
            let second = try session.plan(batch: 2)
            try second.setInput("x", Tensor(shape: [2, 16, 20, 20], floats: x))
            second.execute()
            expectClose(second.output("y")!.floats!, expected, "\(compute)")
        }
    }
}

/// Runs `body` with a compute context for each GEMM and kernel instruction set this CPU has
/// (OpenBLAS; the packed weights on the portable kernels; also on the AVX-512 and AVX2 ones
/// where the CPU has them; mixed on the best kernels)
/// and each engine thread count (1 and 2 unless told). Each session gets its context
/// explicitly: suites run side by side and share nothing.
func forEachComputeContext(threadCounts: [Int] = [1, 2], _ body: (ComputeContext) throws -> Void) rethrows {
    var kinds: [(ComputeContext.GEMM, KernelInstructionSet)] = [(.openblas, .portable), (.packed, .portable)]
    for isa in [KernelInstructionSet.avx512, .avx2] where isa.isSupported { kinds.append((.packed, isa)) }
    kinds.append((.mixed, .best))
    for (gemm, isa) in kinds {
        for threads in threadCounts {
            try body(ComputeContext(threads: threads, gemm: gemm, instructionSet: isa))
        }
    }
}

/// Expects `got` to have `expected`'s length and to differ from it by at most 1e-5 of its
/// largest magnitude (or 1e-5 when that is below 1).
func expectClose(_ got: [Float], _ expected: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == expected.count, "\(what): \(got.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    var worst: Float = 0
    var scale: Float = 0
    for i in 0..<min(got.count, expected.count) {
        worst = max(worst, abs(got[i] - expected[i]))
        scale = max(scale, abs(expected[i]))
    }
    #expect(worst <= 1e-5 * max(scale, 1), "\(what): max error \(worst) of \(scale)", sourceLocation: sourceLocation)
}

/// A square-kernel convolution (stride, symmetric pads, groups) plus bias, written out in
/// loops with Double sums: x is batch · channels · size², w is outChannels · channels/groups ·
/// kernel², the result batch · outChannels · outSize² with outSize = (size + 2·pad − kernel)/stride + 1.
func directConvolution(
    _ x: [Float], batch: Int, channels: Int, size: Int, weights w: [Float], bias b: [Float], outChannels: Int, kernel: Int,
    stride: Int, pad: Int, groups: Int = 1
) -> [Float] {
    let outSize = (size + 2 * pad - kernel) / stride + 1
    var y = [Float](repeating: 0, count: batch * outChannels * outSize * outSize)
    let cg = channels / groups, mg = outChannels / groups
    for n in 0..<batch {
        for m in 0..<outChannels {
            let g = m / mg
            for oy in 0..<outSize {
                for ox in 0..<outSize {
                    var acc = Double(b[m])
                    for ci in 0..<cg {
                        for ki in 0..<kernel {
                            for kj in 0..<kernel {
                                let iy = oy * stride - pad + ki, ix = ox * stride - pad + kj
                                guard iy >= 0, iy < size, ix >= 0, ix < size else { continue }
                                acc += Double(x[((n * channels + g * cg + ci) * size + iy) * size + ix])
                                    * Double(w[((m * cg + ci) * kernel + ki) * kernel + kj])
                            }
                        }
                    }
                    y[((n * outChannels + m) * outSize + oy) * outSize + ox] = Float(acc)
                }
            }
        }
    }
    return y
}
