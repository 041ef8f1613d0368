import BottleFitCore
import CBottleFitKernels
import Foundation
import Testing

@testable import BottleFitEngine

/// The portable build of every C kernel the engine dispatches between (packed GEMM from packed
/// B, from rows read in place, three rows at once, with each fused activation; row
/// max-pooling; direct depthwise and grouped convolution; activations) and each vector build
/// this CPU runs (AVX-512, AVX2) run explicitly on the same inputs and must agree: within
/// float rounding where the vector builds fuse multiply and add (the portable one on x86-64
/// does not), the pooling exactly. Each kernel is also checked against plain loops. On a CPU
/// with neither (or on aarch64) the suite is skipped and says why; the portable build alone is
/// checked against plain loops by `PackedGEMMTests` and the operator tests everywhere.
@Suite(
    .enabled(
        if: KernelInstructionSet.avx512.isSupported || KernelInstructionSet.avx2.isSupported,
        "this CPU has neither AVX-512 nor AVX2: only the portable kernels run here"))
struct KernelAgreementTests {
    /// The vector instruction sets this CPU runs.
    static let vectorSets = [KernelInstructionSet.avx512, .avx2].filter(\.isSupported)

    /// The portable build of `body` and each vector build, on fresh outputs filled with NaN:
    /// (portable, [(vector set, its output)]).
    static func all(
        count: Int, _ body: (KernelInstructionSet, UnsafeMutablePointer<Float>) -> Void
    ) -> ([Float], [(KernelInstructionSet, [Float])]) {
        func run(_ isa: KernelInstructionSet) -> [Float] {
            var c = [Float](repeating: .nan, count: count)
            c.withUnsafeMutableBufferPointer { body(isa, $0.baseAddress!) }
            return c
        }
        return (run(.portable), vectorSets.map { ($0, run($0)) })
    }

    /// Every vector build of `body` within `relative` of the portable one; returns the portable output.
    @discardableResult
    static func expectAllAgree(
        count: Int, relative: Float, _ what: String, _ body: (KernelInstructionSet, UnsafeMutablePointer<Float>) -> Void
    ) -> [Float] {
        let (portable, vectors) = all(count: count, body)
        for (isa, v) in vectors { expectAgree(portable, v, relative: relative, "\(what) (\(isa))") }
        return portable
    }

    static func expectAgree(_ a: [Float], _ b: [Float], relative: Float, _ what: String) {
        var worst: Float = 0, scale: Float = 1
        for (x, y) in zip(a, b) {
            worst = max(worst, x.isNaN || y.isNaN ? .infinity : abs(x - y))
            scale = max(scale, abs(x))
        }
        #expect(a.count == b.count && worst <= relative * scale, "\(what): portable and vector builds differ by \(worst) (of \(scale))")
    }

    static func random(_ n: Int, _ rng: inout SeededGenerator) -> [Float] { (0..<n).map { _ in rng.nextNormal() } }

    @Test(arguments: [(8, 512, 48), (11, 37, 97), (12, 256, 29), (130, 1100, 241), (3, 1, 1), (64, 600, 49)])
    func packedGEMM(_ dims: (Int, Int, Int)) {
        let (m, k, n) = dims
        var rng = SeededGenerator(seed: UInt64(m * 1000 + n))
        let a = Self.random(m * k, &rng), b = Self.random(k * n, &rng), bias = Self.random(m, &rng), residual = Self.random(m * n, &rng)
        let packedA = UnsafeMutablePointer<Float>.allocate(capacity: PackedGEMM.packedCount(rows: m, depth: k))
        let packedB = UnsafeMutablePointer<Float>.allocate(capacity: PackedGEMM.packedBCount(depth: k, columns: n))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: PackedGEMM.tileCount)
        defer { packedA.deallocate(); packedB.deallocate(); tile.deallocate() }
        a.withUnsafeBufferPointer { PackedGEMM.packA($0.baseAddress!, lda: k, rows: m, depth: k, into: packedA) }
        b.withUnsafeBufferPointer { PackedGEMM.packB($0.baseAddress!, ldb: n, depth: k, columns: n, rows: 0..<k, into: packedB) }
        let activations: [Activation] = [.none, .relu, .silu, .clip(min: 0, max: 6), .hardSwish, .sigmoid]
        for (index, activation) in activations.enumerated() {
            let fused = index > 0
            let portable = bias.withUnsafeBufferPointer { bp in
                residual.withUnsafeBufferPointer { rp in
                    Self.expectAllAgree(count: m * n, relative: 2e-5, "\(m)x\(k)x\(n) epilogue \(activation)") { isa, c in
                        let e = PackedGEMM.Epilogue(
                            bias: fused ? bp.baseAddress : nil, residual: fused ? rp.baseAddress : nil, residualStride: n,
                            activation: activation)
                        PackedGEMM.multiply(
                            isa, packedA: packedA, rows: m, depth: k, panels: 0..<PackedGEMM.panels(rows: m), packedB: packedB,
                            columns: n, c: c, ldc: n, epilogue: e, tile: tile)
                    }
                }
            }
            // And against plain loops (first and last element).
            for (i, j) in [(0, 0), (m - 1, n - 1)] {
                var sum: Double = 0
                for kk in 0..<k { sum += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                if fused { sum += Double(bias[i]) + Double(residual[i * n + j]) }
                let expected = Self.reference(activation, sum)
                #expect(
                    abs(Double(portable[i * n + j]) - expected) <= 1e-4 * max(1, abs(expected)),
                    "\(m)x\(k)x\(n) \(activation) (\(i), \(j)): \(portable[i * n + j]) vs \(expected)")
            }
        }
    }

    /// An activation in double precision, from its definition.
    static func reference(_ activation: Activation, _ x: Double) -> Double {
        let sigmoid = 1 / (1 + exp(-x))
        switch activation {
        case .none: return x
        case .relu: return max(x, 0)
        case .leakyRelu(let a): return x < 0 ? Double(a) * x : x
        case .clip(let lo, let hi): return min(max(x, Double(lo)), Double(hi))
        case .sigmoid: return sigmoid
        case .hardSigmoid(let a, let b): return min(max(Double(a) * x + Double(b), 0), 1)
        case .hardSwish: return x * min(max(x / 6 + 0.5, 0), 1)
        case .silu: return x * sigmoid
        }
    }

    /// `bottlefit_activate` for every kind, over a range that reaches e^x's clamps, against the
    /// definitions and the engine's Swift loops.
    @Test(arguments: [
        Activation.relu, .leakyRelu(alpha: 0.1), .clip(min: 0, max: 6), .sigmoid, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .silu,
    ])
    func activations(_ activation: Activation) {
        let xs: [Float] = (0..<1003).map { Float($0 - 501) * 0.07 } + [-120, 95, 0, -0.0]
        let portable = Self.expectAllAgree(count: xs.count, relative: 1e-6, "\(activation)") { isa, y in
            y.update(from: xs, count: xs.count)
            activation.apply(y, xs.count, isa)
        }
        var swift = xs
        swift.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, xs.count) }
        for (i, x) in xs.enumerated() {
            let expected = Self.reference(activation, Double(x))
            #expect(abs(Double(portable[i]) - expected) <= 1e-6 * max(1, abs(expected)), "\(activation)(\(x)) = \(portable[i]), not \(expected)")
            #expect(abs(portable[i] - swift[i]) <= 1e-6 * max(1, abs(swift[i])), "\(activation)(\(x)): C \(portable[i]), Swift \(swift[i])")
        }
    }

    /// B's rows read in place (`multiplyIndirect`) and three output rows at once
    /// (`multiplyIndirectRows`): a 3x3 convolution over padded rows, as the stem's direct path.
    @Test(arguments: [(16, 112), (24, 56), (8, 35)])
    func indirectRows(_ dims: (Int, Int)) {
        let (m, width) = dims
        let channels = 5, k = channels * 9
        let rowFloats = width + 2 + 32
        var rng = SeededGenerator(seed: UInt64(m + width))
        // Three padded input rows per channel, for each of five output rows (7 rows in all).
        let input = Self.random(channels * 7 * rowFloats, &rng), a = Self.random(m * k, &rng), bias = Self.random(m, &rng)
        // offsets[(c·3 + ky)·3 + kx] = c·7·rowFloats + ky·rowFloats + kx
        var offsets: [Int] = []
        for c in 0..<channels { for ky in 0..<3 { for kx in 0..<3 { offsets.append(c * 7 * rowFloats + ky * rowFloats + kx) } } }
        let packedA = UnsafeMutablePointer<Float>.allocate(capacity: PackedGEMM.packedCount(rows: m, depth: k))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: PackedGEMM.tileCount)
        defer { packedA.deallocate(); tile.deallocate() }
        a.withUnsafeBufferPointer { PackedGEMM.packA($0.baseAddress!, lda: k, rows: m, depth: k, into: packedA) }
        let epilogueBias = bias
        input.withUnsafeBufferPointer { ip in
            offsets.withUnsafeBufferPointer { op in
                epilogueBias.withUnsafeBufferPointer { bp in
                    let e = PackedGEMM.Epilogue(bias: bp.baseAddress, relu: true)
                    // One row at a time.
                    let p1 = Self.expectAllAgree(count: m * width, relative: 2e-5, "indirect \(m)x\(k)x\(width)") { isa, c in
                        PackedGEMM.multiplyIndirect(
                            isa, packedA: packedA, rows: m, depth: k, panels: 0..<PackedGEMM.panels(rows: m), base: ip.baseAddress!,
                            offsets: op.baseAddress!, columns: width, c: c, ldc: width, epilogue: e, tile: tile)
                    }
                    // Three rows, starting one and two padded rows further down.
                    guard PackedGEMM.takesThreeRows(rows: m, depth: k, columns: width) else { return }
                    let p3 = Self.expectAllAgree(count: 3 * m * width, relative: 2e-5, "three rows \(m)x\(k)x\(width)") { isa, c in
                        let bases: [UnsafePointer<Float>] = (0..<3).map { ip.baseAddress! + $0 * rowFloats }
                        let outs: [UnsafeMutablePointer<Float>] = (0..<3).map { c + $0 * m * width }
                        bases.withUnsafeBufferPointer { bb in
                            outs.withUnsafeBufferPointer { ob in
                                PackedGEMM.multiplyIndirectRows(
                                    isa, packedA: packedA, rows: m, depth: k, bases: bb.baseAddress!, offsets: op.baseAddress!,
                                    columns: width, c: ob.baseAddress!, ldc: width, epilogue: e, tile: tile)
                            }
                        }
                    }
                    // The first of the three is the single row above.
                    Self.expectAgree(Array(p3[0..<m * width]), p1, relative: 2e-5, "three rows' first against one row")
                }
            }
        }
    }

    /// Every stride, kernel width, padding and row count the fused step passes, with and
    /// without the affine and ReLU after the pool.
    @Test(arguments: [(112, 3, 2, 1), (56, 3, 1, 1), (57, 2, 2, 0), (30, 5, 2, 2), (17, 1, 1, 0), (113, 3, 2, 1)])
    func maxPoolRow(_ dims: (Int, Int, Int, Int)) {
        let (iw, kw, sw, pad) = dims
        let ow = (iw + 2 * pad - kw) / sw + 1
        let g = MaxPoolRow.Geometry(inputWidth: iw, outputWidth: ow, kernelWidth: kw, stride: sw, padLeft: pad)
        #expect(g.isSupported)
        let channels = 6, rows = 3
        var rng = SeededGenerator(seed: UInt64(iw * 10 + kw))
        let input = Self.random(channels * rows * iw, &rng), scale = Self.random(channels, &rng), shift = Self.random(channels, &rng)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: g.scratchFloats)
        defer { scratch.deallocate() }
        for rowCount in 1...rows {
            for affine in [false, true] {
                let offsets = (0..<rowCount).map { $0 * iw }
                let (portable, vectors) = input.withUnsafeBufferPointer { ip in
                    scale.withUnsafeBufferPointer { sp in
                        shift.withUnsafeBufferPointer { hp in
                            offsets.withUnsafeBufferPointer { op in
                                Self.all(count: channels * ow) { isa, out in
                                    MaxPoolRow.run(
                                        isa, g, channels: channels, input: ip.baseAddress!, inputChannelStride: rows * iw,
                                        rowOffsets: op.baseAddress!, rowCount: rowCount, output: out, outputChannelStride: ow,
                                        scale: affine ? sp.baseAddress : nil, shift: affine ? hp.baseAddress : nil, relu: affine,
                                        scratch: scratch)
                                }
                            }
                        }
                    }
                }
                for (isa, v) in vectors { #expect(portable == v, "\(dims) rows \(rowCount) affine \(affine): portable and \(isa) differ") }
                // And both are max pooling: the first output of channel 0 against a plain loop.
                var expected = -Float.infinity
                for r in 0..<rowCount { for x in max(0, -pad)..<min(iw, kw - pad) { expected = max(expected, input[r * iw + x]) } }
                if affine { expected = max(expected * scale[0] + shift[0], 0) }
                #expect(portable[0] == expected, "\(dims) rows \(rowCount) affine \(affine): \(portable[0]) instead of \(expected)")
            }
        }
    }

    /// Direct depthwise and grouped convolution: strides 1, 2 and 3, padding, dilation,
    /// kernels 3, 5 and 7, widths that are not a multiple of the vector (and narrow maps read
    /// without a padded copy), 1 to 16 channels per group, with bias, residual and SiLU,
    /// against the definition at every output.
    @Test(arguments: [
        [56, 56, 3, 1, 1, 1, 1, 1], [112, 112, 3, 2, 1, 1, 1, 1], [29, 29, 5, 2, 2, 1, 1, 1], [30, 30, 3, 3, 0, 1, 1, 1],
        [33, 33, 3, 1, 2, 2, 1, 1], [7, 7, 5, 1, 2, 1, 1, 1], [13, 13, 7, 1, 3, 1, 1, 1], [28, 28, 3, 2, 1, 1, 8, 8],
        [14, 14, 3, 1, 1, 1, 8, 8], [9, 11, 3, 1, 1, 1, 3, 5], [20, 17, 3, 2, 1, 1, 4, 12], [10, 10, 3, 1, 1, 1, 16, 16],
        [12, 12, 3, 1, 1, 1, 1, 2], [14, 14, 3, 1, 1, 1, 1, 1], [28, 28, 3, 2, 1, 1, 1, 1], [5, 70, 3, 1, 1, 1, 1, 1],
        [3, 40, 5, 1, 2, 1, 1, 1], [15, 15, 3, 1, 1, 1, 2, 1], [11, 36, 3, 2, 1, 1, 1, 1],
        // Depthwise, stride 1, at most 16 columns (the chunk kernels' narrow rows: one chunk
        // wider than the row, or two that overlap): 16 whole lanes, 19 rows, dilation, no
        // padding, a 1x1 and a 2x9 map (every row's taps above or below it), 5x5; and an odd
        // 113x113 map at stride 2.
        [16, 16, 3, 1, 1, 1, 1, 1], [19, 16, 3, 1, 1, 1, 1, 1], [12, 12, 3, 1, 2, 2, 1, 1], [16, 18, 3, 1, 0, 1, 1, 1],
        [1, 1, 3, 1, 1, 1, 1, 1], [2, 9, 5, 1, 2, 1, 1, 1], [7, 13, 5, 1, 2, 1, 1, 1], [113, 113, 3, 2, 1, 1, 1, 1],
        // Depthwise, stride 1 or 2, any width (the AVX2 and AVX-512 builds read the input plane
        // in chunks of 8 columns, masked where a tap leaves the row, blocks of 4, 2 and 1 output
        // channels):
        // stride 2 with dilation, no padding, 7x7 taps, rows of 8, 9, 17 and 33 outputs;
        // stride 1 rows of 8 and 23; groups of 8 in and 7 out, 32 in and 3 out.
        [9, 33, 3, 2, 1, 1, 1, 1], [6, 17, 7, 2, 3, 1, 1, 1], [10, 24, 3, 2, 0, 2, 1, 1], [5, 16, 3, 2, 1, 1, 1, 1],
        [4, 67, 5, 2, 2, 1, 1, 1], [11, 8, 3, 1, 1, 1, 1, 1], [6, 23, 3, 1, 2, 2, 1, 1], [7, 7, 3, 1, 1, 1, 8, 7],
        [6, 19, 3, 2, 1, 2, 32, 3],
        // 5x5 depthwise (`dw5_block`: stride 1 in blocks of 8 rows and the rest, stride 2 in
        // blocks of 4): 14 rows (8 + 6) and 7 (4 + 3) as in MobileNetV3 and EfficientNet, a
        // 56x56 map at stride 2, padding 1 and 0.
        [14, 14, 5, 1, 2, 1, 1, 1], [56, 56, 5, 2, 2, 1, 1, 1], [17, 30, 5, 2, 1, 1, 1, 1], [12, 20, 5, 1, 0, 1, 1, 1],
    ])
    func groupConvolution(_ c: [Int]) {
        // With a residual and without: 3x3 and 5x5 depthwise layers without one take their own
        // kernels in the vector builds (`dw3_block`, `dw3s2_block`, `dw5_block`).
        groupConvolution(c, withResidual: true)
        groupConvolution(c, withResidual: false)
    }

    func groupConvolution(_ c: [Int], withResidual: Bool) {
        let (ih, iw, k, stride, pad, dilation, cg, mg) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        let oh = (ih + 2 * pad - dilation * (k - 1) - 1) / stride + 1, ow = (iw + 2 * pad - dilation * (k - 1) - 1) / stride + 1
        var rng = SeededGenerator(seed: UInt64(ih * 7 + k * 3 + cg))
        let x = Self.random(cg * ih * iw, &rng), w = Self.random(mg * cg * k * k, &rng)
        let bias = Self.random(mg, &rng), residualValues = Self.random(mg * oh * ow, &rng)
        var g = bottlefit_depthwise_geometry(
            input_height: ih, input_width: iw, output_width: ow, kernel_height: k, kernel_width: k, stride_height: stride,
            stride_width: stride, dilation_height: dilation, dilation_width: dilation, pad_top: pad, pad_left: pad)
        let scratchFloats = bottlefit_group_conv_scratch(&g, cg, oh)
        #expect(scratchFloats > 0)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratchFloats))
        defer { scratch.deallocate() }
        let portable = Self.expectAllAgree(count: mg * oh * ow, relative: 1e-5, "group convolution \(c) residual \(withResidual)") { isa, y in
            if withResidual {
                _ = bottlefit_group_conv(isa.c, x, cg, mg, w, bias, residualValues, y, &g, oh, Activation.silu.c, scratch)
            } else {
                _ = bottlefit_group_conv(isa.c, x, cg, mg, w, bias, nil, y, &g, oh, Activation.silu.c, scratch)
            }
        }
        var worst: Double = 0
        for m in 0..<mg {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(bias[m]) + (withResidual ? Double(residualValues[(m * oh + oy) * ow + ox]) : 0)
                    for ci in 0..<cg {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = oy * stride - pad + ky * dilation, ix = ox * stride - pad + kx * dilation
                                guard iy >= 0 && iy < ih && ix >= 0 && ix < iw else { continue }
                                sum += Double(w[((m * cg + ci) * k + ky) * k + kx]) * Double(x[(ci * ih + iy) * iw + ix])
                            }
                        }
                    }
                    let expected = Self.reference(.silu, sum)
                    worst = max(worst, abs(Double(portable[(m * oh + oy) * ow + ox]) - expected) / max(1, abs(expected)))
                }
            }
        }
        #expect(worst <= 1e-5, "group convolution \(c) residual \(withResidual): \(worst) from the definition")
    }
}
