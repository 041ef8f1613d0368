import BottleFitCore

/// Winograd convolution on 4x4 input tiles for stride-1 convolutions:
/// F(3x3, 2x2) for 2x2 kernels (BottleFit's decoder is made of them) and F(2x2, 3x3) for
/// 3x3 kernels (ResNet's middle convolutions, used when there are enough tiles to fill a GEMM).
///
/// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with interpolation points 0, ±1, ∞ and the same input
/// transform for both: Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
///   F(2x2, 3x3): G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 -1 -1] (Lavin & Gray).
///   F(3x3, 2x2), its dual: G = [1 0; 1 1; 1 -1; 0 -1], Aᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1].
/// A 2x2 kernel needs 16 multiplications per 9 outputs instead of 36; a 3x3 kernel 16 per 4
/// instead of 36. The products summed over input channels are 16 GEMMs [M, C]·[C, tiles]
/// through OpenBLAS, one per tile element, split over the engine's threads. Weights are
/// transformed once when the plan is made. Coefficients are 0, ±½, ±1, so rounding stays
/// within a few ulps of the direct convolution.
enum Winograd {
    /// Output tile edge for this convolution, or nil when Winograd does not apply.
    static func outputTile(_ s: ConvOperator.Shape) -> Int? {
        let g = s.geometry
        guard s.groups == 1, g.stride == (1, 1), g.dilation == (1, 1), s.channels >= 4, s.outChannels >= 16,
            g.output.h >= 2, g.output.w >= 2
        else { return nil }
        if g.kernel == (2, 2) && g.output.h >= 3 && g.output.w >= 3 { return 3 }
        // For 3x3 kernels the transformed weights are 16/9 as large: worth it only when the
        // GEMMs have enough tile columns to amortise reading them.
        if g.kernel == (3, 3) && s.batch * tiles(s, tile: 2) >= 128 { return 2 }
        return nil
    }

    static func tiles(_ s: ConvOperator.Shape, tile m: Int) -> Int {
        ((s.geometry.output.h + m - 1) / m) * ((s.geometry.output.w + m - 1) / m)
    }

    /// Workspace: transformed inputs and products, 16 x (C + M) x (batch · tiles) floats.
    static func workspaceBytes(_ s: ConvOperator.Shape) -> Int {
        guard let m = outputTile(s) else { return 0 }
        return 16 * (s.channels + s.outChannels) * s.batch * tiles(s, tile: m) * 4
    }
}

final class WinogradConvKernel: Kernel {
    let s: ConvOperator.Shape
    let input, output, workspace: UnsafeMutablePointer<Float>
    let bias, residual: UnsafeMutablePointer<Float>?
    let activation: Activation
    /// Output tile edge: 3 for 2x2 kernels, 2 for 3x3 kernels.
    let tile: Int
    /// G g Gᵀ for every (m, c), as 16 matrices [M, C].
    let transformed: AlignedBuffer
    let tilesPerImage, tilesH, tilesW, columns: Int

    init(
        shape: ConvOperator.Shape, tile: Int, input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>
    ) {
        s = shape
        self.tile = tile
        self.input = input
        self.output = output
        self.workspace = workspace
        self.bias = bias
        self.residual = residual
        self.activation = activation
        tilesH = (shape.geometry.output.h + tile - 1) / tile
        tilesW = (shape.geometry.output.w + tile - 1) / tile
        tilesPerImage = tilesH * tilesW
        columns = tilesPerImage * shape.batch
        let m = shape.outChannels, c = shape.channels
        transformed = AlignedBuffer(byteCount: 16 * m * c * 4)
        let u = transformed.pointer.assumingMemoryBound(to: Float.self)
        let r = 5 - tile  // kernel edge
        // G as 4 x r rows.
        let gm: [Float] = r == 2 ? [1, 0, 1, 1, 1, -1, 0, -1] : [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1]
        var t = [Float](repeating: 0, count: 4 * r)
        for mi in 0..<m {
            for ci in 0..<c {
                let g = weight + (mi * c + ci) * r * r
                // t = G g (4 x r), then u = t Gᵀ (4 x 4).
                for i in 0..<4 {
                    for j in 0..<r {
                        var acc: Float = 0
                        for k in 0..<r { acc += gm[i * r + k] * g[k * r + j] }
                        t[i * r + j] = acc
                    }
                }
                for i in 0..<4 {
                    for j in 0..<4 {
                        var acc: Float = 0
                        for k in 0..<r { acc += t[i * r + k] * gm[j * r + k] }
                        u[((i * 4 + j) * m + mi) * c + ci] = acc
                    }
                }
            }
        }
    }

    func execute() {
        let c = s.channels, m = s.outChannels
        let v = workspace  // 16 x [C, columns]
        let products = workspace + 16 * c * columns  // 16 x [M, columns]
        Parallel.forEach(s.batch * c) { planes in
            for p in planes { transformInput(plane: p, into: v) }
        }
        let u = transformed.pointer.assumingMemoryBound(to: Float.self)
        let cols = columns
        Parallel.forEach(16) { elements in
            for e in elements {
                sgemm(
                    m: m, n: cols, k: c, a: u + e * m * c, lda: c, b: v + e * c * cols, ldb: cols, c: products + e * m * cols,
                    ldc: cols, parallel: false)
            }
        }
        Parallel.forEach(s.batch * m) { planes in
            for p in planes { transformOutput(plane: p, from: products) }
        }
    }

    /// Bᵀ d B for every 4x4 tile of one (image, channel) plane.
    private func transformInput(plane p: Int, into v: UnsafeMutablePointer<Float>) {
        let g = s.geometry
        let (ih, iw) = g.input
        let n = p / s.channels, ci = p % s.channels
        let src = input + p * ih * iw
        let stride = s.channels * columns
        for ty in 0..<tilesH {
            for tx in 0..<tilesW {
                let y0 = ty * tile - g.padTop, x0 = tx * tile - g.padLeft
                @inline(__always) func load(_ r: Int) -> SIMD4<Float> {
                    let y = y0 + r
                    if y < 0 || y >= ih { return SIMD4<Float>(repeating: 0) }
                    let line = src + y * iw
                    if x0 >= 0 && x0 + 4 <= iw { return SIMD4<Float>(line[x0], line[x0 + 1], line[x0 + 2], line[x0 + 3]) }
                    var out = SIMD4<Float>(repeating: 0)
                    for i in 0..<4 where x0 + i >= 0 && x0 + i < iw { out[i] = line[x0 + i] }
                    return out
                }
                let d0 = load(0), d1 = load(1), d2 = load(2), d3 = load(3)
                // Bᵀ d (rows), then the same on columns.
                let r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1, r3 = d1 - d3
                let col = n * tilesPerImage + ty * tilesW + tx
                let base = v + ci * columns + col
                @inline(__always) func store(_ r: Int, _ row: SIMD4<Float>) {
                    let o = base + r * 4 * stride
                    o[0] = row[0] - row[2]
                    o[stride] = row[1] + row[2]
                    o[2 * stride] = row[2] - row[1]
                    o[3 * stride] = row[1] - row[3]
                }
                store(0, r0)
                store(1, r1)
                store(2, r2)
                store(3, r3)
            }
        }
    }

    /// Aᵀ M A for every tile of one (image, output channel) plane, then bias, residual, activation.
    private func transformOutput(plane p: Int, from products: UnsafeMutablePointer<Float>) {
        let (oh, ow) = s.geometry.output
        let n = p / s.outChannels, mi = p % s.outChannels
        let dst = output + p * oh * ow
        let stride = s.outChannels * columns
        let b = bias?[mi] ?? 0
        for ty in 0..<tilesH {
            for tx in 0..<tilesW {
                let col = n * tilesPerImage + ty * tilesW + tx
                let base = products + mi * columns + col
                @inline(__always) func row(_ r: Int) -> SIMD4<Float> {
                    let o = base + r * 4 * stride
                    return SIMD4<Float>(o[0], o[stride], o[2 * stride], o[3 * stride])
                }
                let m0 = row(0), m1 = row(1), m2 = row(2), m3 = row(3)
                let y0 = ty * tile, x0 = tx * tile
                if tile == 3 {
                    // Aᵀ M: three rows; then A on each row.
                    @inline(__always) func emit(_ i: Int, _ t: SIMD4<Float>) {
                        let y = y0 + i
                        guard y < oh else { return }
                        let line = dst + y * ow + x0
                        line[0] = t[0] + 0.5 * (t[1] + t[2]) + b
                        if x0 + 1 < ow { line[1] = 0.5 * (t[1] - t[2]) + b }
                        if x0 + 2 < ow { line[2] = 0.5 * (t[1] + t[2]) + t[3] + b }
                    }
                    emit(0, m0 + 0.5 * (m1 + m2))
                    emit(1, 0.5 * (m1 - m2))
                    emit(2, 0.5 * (m1 + m2) + m3)
                } else {
                    @inline(__always) func emit(_ i: Int, _ t: SIMD4<Float>) {
                        let y = y0 + i
                        guard y < oh else { return }
                        let line = dst + y * ow + x0
                        line[0] = t[0] + t[1] + t[2] + b
                        if x0 + 1 < ow { line[1] = t[1] - t[2] - t[3] + b }
                    }
                    emit(0, m0 + m1 + m2)
                    emit(1, m1 - m2 - m3)
                }
            }
        }
        if residual != nil || activation != .none {
            epilogueRow(dst, area: oh * ow, bias: 0, residual: residual.map { $0 + p * oh * ow }, activation: activation)
        }
    }
}
