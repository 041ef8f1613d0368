import BottleFitCore

/// Winograd F(3x3, 2x2) for 2x2, stride-1 convolutions (BottleFit's decoder is made of them).
///
/// Each 3x3 output tile comes from a 4x4 input tile with 16 multiplications per
/// (input, output) channel pair instead of 36: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with the
/// interpolation points 0, ±1, ∞ (the dual of the well-known F(2,3)):
///   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0; 1 1; 1 -1; 0 -1],
///   Aᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1].
/// The elementwise products over channels are 16 GEMMs [M, C]·[C, tiles] through OpenBLAS,
/// one per tile element, split over the engine's threads. Weights are transformed once
/// when the plan is made. Transform coefficients are 0, ±½, ±1, so rounding error stays
/// within a few ulps of the direct convolution.
enum WinogradF3x2 {
    /// True when the convolution has the shape this kernel handles.
    static func applies(_ s: ConvOperator.Shape) -> Bool {
        let g = s.geometry
        return s.groups == 1 && g.kernel == (2, 2) && g.stride == (1, 1) && g.dilation == (1, 1) && s.channels >= 4
            && s.outChannels >= 16 && g.output.h >= 3 && g.output.w >= 3
    }

    static func tiles(_ s: ConvOperator.Shape) -> Int {
        ((s.geometry.output.h + 2) / 3) * ((s.geometry.output.w + 2) / 3)
    }

    /// Workspace: transformed inputs and products, 16 x (C + M) x (batch · tiles) floats.
    static func workspaceBytes(_ s: ConvOperator.Shape) -> Int {
        16 * (s.channels + s.outChannels) * s.batch * tiles(s) * 4
    }
}

final class WinogradConvKernel: Kernel {
    let s: ConvOperator.Shape
    let input, output, workspace: UnsafeMutablePointer<Float>
    let bias, residual: UnsafeMutablePointer<Float>?
    let activation: Activation
    /// G g Gᵀ for every (m, c), as 16 matrices [M, C].
    let transformed: AlignedBuffer
    let tilesPerImage, tilesH, tilesW, columns: Int

    init(
        shape: ConvOperator.Shape, input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>
    ) {
        s = shape
        self.input = input
        self.output = output
        self.workspace = workspace
        self.bias = bias
        self.residual = residual
        self.activation = activation
        tilesH = (shape.geometry.output.h + 2) / 3
        tilesW = (shape.geometry.output.w + 2) / 3
        tilesPerImage = tilesH * tilesW
        columns = tilesPerImage * shape.batch
        let m = shape.outChannels, c = shape.channels
        transformed = AlignedBuffer(byteCount: 16 * m * c * 4)
        let u = transformed.pointer.assumingMemoryBound(to: Float.self)
        for mi in 0..<m {
            for ci in 0..<c {
                let g = weight + (mi * c + ci) * 4  // [g00 g01; g10 g11]
                // G g: rows (g0, g0+g1, g0-g1, -g1) applied to each column, then the same on rows.
                var t = [Float](repeating: 0, count: 8)  // 4x2
                for col in 0..<2 {
                    let a = g[col], b = g[2 + col]
                    t[0 * 2 + col] = a
                    t[1 * 2 + col] = a + b
                    t[2 * 2 + col] = a - b
                    t[3 * 2 + col] = -b
                }
                for r in 0..<4 {
                    let a = t[r * 2], b = t[r * 2 + 1]
                    let row = [a, a + b, a - b, -b]
                    for e in 0..<4 { u[((r * 4 + e) * m + mi) * c + ci] = row[e] }
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

    /// Bᵀ d B for every tile of one (image, channel) plane.
    private func transformInput(plane p: Int, into v: UnsafeMutablePointer<Float>) {
        let g = s.geometry
        let (ih, iw) = g.input
        let n = p / s.channels, ci = p % s.channels
        let src = input + p * ih * iw
        let stride = s.channels * columns
        for ty in 0..<tilesH {
            for tx in 0..<tilesW {
                let y0 = ty * 3 - g.padTop, x0 = tx * 3 - g.padLeft
                var d = (
                    SIMD4<Float>(repeating: 0), SIMD4<Float>(repeating: 0), SIMD4<Float>(repeating: 0), SIMD4<Float>(repeating: 0)
                )
                func load(_ r: Int) -> SIMD4<Float> {
                    let y = y0 + r
                    if y < 0 || y >= ih { return SIMD4<Float>(repeating: 0) }
                    let line = src + y * iw
                    if x0 >= 0 && x0 + 4 <= iw { return SIMD4<Float>(line[x0], line[x0 + 1], line[x0 + 2], line[x0 + 3]) }
                    var out = SIMD4<Float>(repeating: 0)
                    for i in 0..<4 where x0 + i >= 0 && x0 + i < iw { out[i] = line[x0 + i] }
                    return out
                }
                d = (load(0), load(1), load(2), load(3))
                // Bᵀ d (rows), then the same on columns.
                let r0 = d.0 - d.2, r1 = d.1 + d.2, r2 = d.2 - d.1, r3 = d.1 - d.3
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
                // Aᵀ M: three rows; then A on each row.
                let t0 = m0 + 0.5 * (m1 + m2)
                let t1 = 0.5 * (m1 - m2)
                let t2 = 0.5 * (m1 + m2) + m3
                let y0 = ty * 3, x0 = tx * 3
                @inline(__always) func emit(_ i: Int, _ t: SIMD4<Float>) {
                    let y = y0 + i
                    guard y < oh else { return }
                    let line = dst + y * ow + x0
                    let a = t[0] + 0.5 * (t[1] + t[2]) + b
                    let c = 0.5 * (t[1] - t[2]) + b
                    let e = 0.5 * (t[1] + t[2]) + t[3] + b
                    if x0 + 3 <= ow {
                        line[0] = a
                        line[1] = c
                        line[2] = e
                    } else {
                        line[0] = a
                        if x0 + 1 < ow { line[1] = c }
                    }
                }
                emit(0, t0)
                emit(1, t1)
                emit(2, t2)
            }
        }
        if residual != nil || activation != .none {
            epilogueRow(dst, area: oh * ow, bias: 0, residual: residual.map { $0 + p * oh * ow }, activation: activation)
        }
    }
}
