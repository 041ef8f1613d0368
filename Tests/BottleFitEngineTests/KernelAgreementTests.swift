import BottleFitCore
import CBottleFitKernels
import Testing

@testable import BottleFitEngine

/// The portable and the AVX-512 builds of every C kernel the engine dispatches between (packed
/// GEMM from packed B, from rows read in place, three rows at once; row max-pooling) run
/// explicitly on the same inputs and must agree: the GEMMs within float rounding (the AVX-512
/// build fuses multiply and add, the portable one on x86-64 does not), the pooling exactly.
/// On a CPU without AVX-512 (or on aarch64) the suite is skipped and says why; the portable
/// build alone is checked against plain loops by `PackedGEMMTests` everywhere.
@Suite(.enabled(if: KernelInstructionSet.avx512.isSupported, "this CPU has no AVX-512: only the portable kernels run here"))
struct KernelAgreementTests {
    /// Both builds of `body` on fresh outputs filled with NaN, returning (portable, avx512).
    static func both(count: Int, _ body: (KernelInstructionSet, UnsafeMutablePointer<Float>) -> Void) -> ([Float], [Float]) {
        var out: [[Float]] = []
        for isa in [KernelInstructionSet.portable, .avx512] {
            var c = [Float](repeating: .nan, count: count)
            c.withUnsafeMutableBufferPointer { body(isa, $0.baseAddress!) }
            out.append(c)
        }
        return (out[0], out[1])
    }

    static func expectAgree(_ a: [Float], _ b: [Float], relative: Float, _ what: String) {
        var worst: Float = 0, scale: Float = 1
        for (x, y) in zip(a, b) {
            worst = max(worst, x.isNaN || y.isNaN ? .infinity : abs(x - y))
            scale = max(scale, abs(x))
        }
        #expect(a.count == b.count && worst <= relative * scale, "\(what): portable and AVX-512 differ by \(worst) (of \(scale))")
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
        for relu in [false, true] {
            let (portable, avx512) = bias.withUnsafeBufferPointer { bp in
                residual.withUnsafeBufferPointer { rp in
                    Self.both(count: m * n) { isa, c in
                        let e = PackedGEMM.Epilogue(
                            bias: relu ? bp.baseAddress : nil, residual: relu ? rp.baseAddress : nil, residualStride: n, relu: relu)
                        PackedGEMM.multiply(
                            isa, packedA: packedA, rows: m, depth: k, panels: 0..<PackedGEMM.panels(rows: m), packedB: packedB,
                            columns: n, c: c, ldc: n, epilogue: e, tile: tile)
                    }
                }
            }
            Self.expectAgree(portable, avx512, relative: 2e-5, "\(m)x\(k)x\(n) epilogue \(relu)")
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
                    let (p1, a1) = Self.both(count: m * width) { isa, c in
                        PackedGEMM.multiplyIndirect(
                            isa, packedA: packedA, rows: m, depth: k, panels: 0..<PackedGEMM.panels(rows: m), base: ip.baseAddress!,
                            offsets: op.baseAddress!, columns: width, c: c, ldc: width, epilogue: e, tile: tile)
                    }
                    Self.expectAgree(p1, a1, relative: 2e-5, "indirect \(m)x\(k)x\(width)")
                    // Three rows, starting one and two padded rows further down.
                    guard PackedGEMM.takesThreeRows(rows: m, depth: k, columns: width) else { return }
                    let (p3, a3) = Self.both(count: 3 * m * width) { isa, c in
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
                    Self.expectAgree(p3, a3, relative: 2e-5, "three rows \(m)x\(k)x\(width)")
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
                let (portable, avx512) = input.withUnsafeBufferPointer { ip in
                    scale.withUnsafeBufferPointer { sp in
                        shift.withUnsafeBufferPointer { hp in
                            offsets.withUnsafeBufferPointer { op in
                                Self.both(count: channels * ow) { isa, out in
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
                #expect(portable == avx512, "\(dims) rows \(rowCount) affine \(affine): the builds differ")
                // And both are max pooling: the first output of channel 0 against a plain loop.
                var expected = -Float.infinity
                for r in 0..<rowCount { for x in max(0, -pad)..<min(iw, kw - pad) { expected = max(expected, input[r * iw + x]) } }
                if affine { expected = max(expected * scale[0] + shift[0], 0) }
                #expect(portable[0] == expected, "\(dims) rows \(rowCount) affine \(affine): \(portable[0]) instead of \(expected)")
            }
        }
    }

    /// Depthwise rows: strides 1, 2 and 3, padding, dilation, kernels 3 and 5, widths that are
    /// not a multiple of the vector.
    @Test(arguments: [(56, 3, 1, 1, 1), (112, 3, 2, 1, 1), (29, 5, 2, 2, 1), (30, 3, 3, 0, 1), (33, 3, 1, 2, 2), (7, 5, 1, 2, 1)])
    func depthwiseRows(_ dims: (Int, Int, Int, Int, Int)) {
        let (size, kernel, stride, pad, dilation) = dims
        let out = (size + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1
        var rng = SeededGenerator(seed: UInt64(size * 7 + kernel))
        let x = Self.random(size * size, &rng), w = Self.random(kernel * kernel, &rng)
        var g = bottlefit_depthwise_geometry(
            input_height: size, input_width: size, output_width: out, kernel_height: kernel, kernel_width: kernel,
            stride_height: stride, stride_width: stride, dilation_height: dilation, dilation_width: dilation, pad_top: pad,
            pad_left: pad)
        let (portable, avx512) = Self.both(count: out * out) { isa, y in
            for oy in 0..<out { bottlefit_depthwise_row(isa.c, x, y + oy * out, w, &g, oy) }
        }
        Self.expectAgree(portable, avx512, relative: 1e-5, "depthwise \(dims)")
        // Output (1, 1) against the definition.
        guard out > 1 else { return }
        var expected: Float = 0
        for ki in 0..<kernel {
            for kj in 0..<kernel {
                let iy = stride - pad + ki * dilation, ix = stride - pad + kj * dilation
                if iy >= 0 && iy < size && ix >= 0 && ix < size { expected += w[ki * kernel + kj] * x[iy * size + ix] }
            }
        }
        #expect(abs(portable[out + 1] - expected) <= 1e-5 * max(1, abs(expected)), "depthwise \(dims): \(portable[out + 1]) vs \(expected)")
    }
}
