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
/// through OpenBLAS (or, with the context's GEMM `.packed`, the packed microkernel with
/// the 16 transformed weight matrices packed once), one per tile element, split over the
/// engine's threads. Weights are transformed once when the plan is made. Coefficients are 0, ±½, ±1, so rounding stays
/// within a few ulps of the direct convolution.
enum Winograd {
    /// Output tile edge for this convolution, or nil when Winograd does not apply.
    static func outputTile(_ s: ConvOperator.Shape, packed: Bool) -> Int? {
        let g = s.geometry
        guard s.groups == 1, g.stride == (1, 1), g.dilation == (1, 1), s.channels >= 4, s.outChannels >= 16,
            g.output.h >= 2, g.output.w >= 2
        else { return nil }
        // Few output channels on rows wide enough: the direct row path instead (RowConvolution.swift).
        if packed && ConvOperator.usesDirectRows(s, packed: packed) { return nil }
        if g.kernel == (2, 2) && g.output.h >= 3 && g.output.w >= 3 { return 3 }
        // For 3x3 kernels the transformed weights are 16/9 as large: worth it only when the
        // GEMMs have enough tile columns to amortise reading them. With weights packed once
        // (and prefetched) 49 columns are enough (ResNet's 14x14 layer3 at batch 1: 4.1 ->
        // 3.0 ms); 16 (7x7 at batch 1) are not. OpenBLAS, which packs them on every call,
        // needs 128.
        let enough = packed ? 32 : 128
        if g.kernel == (3, 3) && s.batch * tiles(s, tile: 2) >= enough { return 2 }
        return nil
    }

    static func tiles(_ s: ConvOperator.Shape, tile m: Int) -> Int {
        ((s.geometry.output.h + m - 1) / m) * ((s.geometry.output.w + m - 1) / m)
    }

    /// Workspace: transformed inputs and products, 16 x (C + M) x (batch · tiles) floats,
    /// plus each thread's packing scratch for the packed GEMM.
    static func workspaceBytes(_ s: ConvOperator.Shape, packed: Bool, threads: Int) -> Int {
        guard let m = outputTile(s, packed: packed) else { return 0 }
        let columns = s.batch * tiles(s, tile: m)
        let scratch =
            packed ? threads * PackedWeights.workspaceFloats(rows: s.outChannels, depth: s.channels, columns: columns, threads: 1) : 0
        return (16 * (s.channels + s.outChannels) * s.batch * tiles(s, tile: m) + scratch) * 4
    }
}

/// A convolution's weights transformed for Winograd: G g Gᵀ for every (m, c) as 16
/// matrices [M, C], and those packed for the microkernel when packed GEMM is on.
final class WinogradWeights {
    let transformed: AlignedBuffer
    let packed: [PackedWeights]

    init(
        _ weight: UnsafePointer<Float>, outChannels m: Int, channels c: Int, tile: Int, packed: Bool,
        instructionSet: KernelInstructionSet
    ) {
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
        self.packed = packed ? (0..<16).map { e in PackedWeights(u + e * m * c, lda: c, rows: m, depth: c, instructionSet: instructionSet) } : []
    }
}

final class WinogradConvKernel: Kernel {
    let s: ConvOperator.Shape
    let input, output, workspace: UnsafeMutablePointer<Float>
    let bias, residual: UnsafeMutablePointer<Float>?
    let activation: Activation
    /// Output tile edge: 3 for 2x2 kernels, 2 for 3x3 kernels.
    let tile: Int
    /// The transformed (and packed) weights, shared by the session's plans.
    let weights: WinogradWeights
    let tilesPerImage, tilesH, tilesW, columns: Int
    let plannedThreads: Int

    init(
        shape: ConvOperator.Shape, tile: Int, input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>, weights: WinogradWeights, threads: Int
    ) {
        plannedThreads = threads
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
        self.weights = weights
    }

    var transformed: AlignedBuffer { weights.transformed }
    var packed: [PackedWeights] { weights.packed }

    func execute(_ parallel: Parallel) {
        let c = s.channels, m = s.outChannels
        let v = workspace  // 16 x [C, columns]
        let products = workspace + 16 * c * columns  // 16 x [M, columns]
        parallel.forEach(s.batch * c) { planes in
            for p in planes { transformInput(plane: p, into: v) }
        }
        let u = transformed.pointer.assumingMemoryBound(to: Float.self)
        let cols = columns
        if !packed.isEmpty {
            let parts = plannedThreads
            let scratch = products + 16 * m * cols
            let stride = PackedWeights.workspaceFloats(rows: m, depth: c, columns: cols, threads: 1)
            let packed = packed
            parallel.forEach(parts) { threads in
                for t in threads {
                    for e in 16 * t / parts..<16 * (t + 1) / parts {
                        let b = v + e * c * cols
                        packed[e].runSerially(columns: cols, c: products + e * m * cols, ldc: cols, workspace: scratch + t * stride) {
                            rows, columns, dst, ldc in
                            for (i, r) in rows.enumerated() { (dst + i * ldc).update(from: b + r * cols + columns.lowerBound, count: columns.count) }
                        }
                    }
                }
            }
        } else {
        parallel.forEach(16) { elements in
            for e in elements {
                sgemm(
                    m: m, n: cols, k: c, a: u + e * m * c, lda: c, b: v + e * c * cols, ldb: cols, c: products + e * m * cols,
                    ldc: cols, parallel: .serial)
            }
        }
        }
        parallel.forEach(s.batch * m) { planes in
            for p in planes { transformOutput(plane: p, from: products) }
        }
    }

    /// Bᵀ d B for every 4x4 tile of one (image, channel) plane, a row of tiles at a time:
    /// first d B within each of the 4 input rows (for all tiles of the row), then Bᵀ across
    /// rows as contiguous loops over the tiles, written as 16 contiguous runs.
    private func transformInput(plane p: Int, into v: UnsafeMutablePointer<Float>) {
        let g = s.geometry
        let (ih, iw) = g.input
        let n = p / s.channels, ci = p % s.channels
        let src = input + p * ih * iw
        let stride = s.channels * columns
        let tw = tilesW
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * tw) { buffer in
            let tmp = buffer.baseAddress!  // [row r][column j][tile]
            for ty in 0..<tilesH {
                let y0 = ty * tile - g.padTop
                for r in 0..<4 {
                    let y = y0 + r
                    let t0 = tmp + (r * 4) * tw, t1 = t0 + tw, t2 = t1 + tw, t3 = t2 + tw
                    if y < 0 || y >= ih {
                        (t0).update(repeating: 0, count: 4 * tw)
                        continue
                    }
                    let line = src + y * iw
                    // Tiles whose 4 columns are all inside the row take the unchecked loop.
                    let xFirst = g.padLeft
                    let txLo = Swift.min(tw, (xFirst + tile - 1) / tile)
                    let txHi = Swift.max(txLo, Swift.min(tw, iw - 4 + xFirst >= 0 ? (iw - 4 + xFirst) / tile + 1 : 0))
                    for tx in 0..<tw where tx < txLo || tx >= txHi {
                        let x0 = tx * tile - xFirst
                        @inline(__always) func at(_ i: Int) -> Float {
                            let x = x0 + i
                            return x >= 0 && x < iw ? line[x] : 0
                        }
                        let d0 = at(0), d1 = at(1), d2 = at(2), d3 = at(3)
                        t0[tx] = d0 - d2
                        t1[tx] = d1 + d2
                        t2[tx] = d2 - d1
                        t3[tx] = d1 - d3
                    }
                    let base = line - xFirst
                    for tx in txLo..<txHi {
                        let q = base + tx * tile
                        let d0 = q[0], d1 = q[1], d2 = q[2], d3 = q[3]
                        t0[tx] = d0 - d2
                        t1[tx] = d1 + d2
                        t2[tx] = d2 - d1
                        t3[tx] = d1 - d3
                    }
                }
                let col = n * tilesPerImage + ty * tw
                let out = v + ci * columns + col
                for j in 0..<4 {
                    let r0 = tmp + j * tw, r1 = tmp + (4 + j) * tw, r2 = tmp + (8 + j) * tw, r3 = tmp + (12 + j) * tw
                    let o0 = out + j * stride, o1 = out + (4 + j) * stride
                    let o2 = out + (8 + j) * stride, o3 = out + (12 + j) * stride
                    for tx in 0..<tw {
                        o0[tx] = r0[tx] - r2[tx]
                        o1[tx] = r1[tx] + r2[tx]
                        o2[tx] = r2[tx] - r1[tx]
                        o3[tx] = r1[tx] - r3[tx]
                    }
                }
            }
        }
    }

    /// Aᵀ M A for every tile of one (image, output channel) plane, a row of tiles at a time
    /// (contiguous loops over the tiles), then bias, residual and activation.
    private func transformOutput(plane p: Int, from products: UnsafeMutablePointer<Float>) {
        let (oh, ow) = s.geometry.output
        let n = p / s.outChannels, mi = p % s.outChannels
        let dst = output + p * oh * ow
        let stride = s.outChannels * columns
        let b = bias?[mi] ?? 0
        let tw = tilesW
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * tw) { buffer in
            let tmp = buffer.baseAddress!  // [output row k][column j][tile]
            for ty in 0..<tilesH {
                let base = products + mi * columns + n * tilesPerImage + ty * tw
                for j in 0..<4 {
                    let m0 = base + j * stride, m1 = base + (4 + j) * stride
                    let m2 = base + (8 + j) * stride, m3 = base + (12 + j) * stride
                    let s0 = tmp + j * tw, s1 = tmp + (4 + j) * tw, s2 = tmp + (8 + j) * tw
                    if tile == 3 {
                        for tx in 0..<tw {
                            let sum = 0.5 * (m1[tx] + m2[tx])
                            s0[tx] = m0[tx] + sum
                            s1[tx] = 0.5 * (m1[tx] - m2[tx])
                            s2[tx] = sum + m3[tx]
                        }
                    } else {
                        for tx in 0..<tw {
                            s0[tx] = m0[tx] + m1[tx] + m2[tx]
                            s1[tx] = m1[tx] - m2[tx] - m3[tx]
                        }
                    }
                }
                for k in 0..<tile {
                    let y = ty * tile + k
                    if y >= oh { break }
                    let row = dst + y * ow
                    let c0 = tmp + (k * 4) * tw, c1 = c0 + tw, c2 = c1 + tw, c3 = c2 + tw
                    // Tiles that fit inside the row, then the clipped last one.
                    let full = ow / tile
                    if tile == 3 {
                        for tx in 0..<full {
                            let sum = 0.5 * (c1[tx] + c2[tx])
                            let o = row + tx * 3
                            o[0] = c0[tx] + sum + b
                            o[1] = 0.5 * (c1[tx] - c2[tx]) + b
                            o[2] = sum + c3[tx] + b
                        }
                    } else {
                        for tx in 0..<full {
                            let o = row + tx * 2
                            o[0] = c0[tx] + c1[tx] + c2[tx] + b
                            o[1] = c1[tx] - c2[tx] - c3[tx] + b
                        }
                    }
                    if full < tw {
                        let tx = full
                        let sum = 0.5 * (c1[tx] + c2[tx])
                        let values: (Float, Float, Float) =
                            tile == 3
                            ? (c0[tx] + sum, 0.5 * (c1[tx] - c2[tx]), sum + c3[tx])
                            : (c0[tx] + c1[tx] + c2[tx], c1[tx] - c2[tx] - c3[tx], 0)
                        let x0 = tx * tile
                        if x0 < ow { row[x0] = values.0 + b }
                        if x0 + 1 < ow { row[x0 + 1] = values.1 + b }
                        if x0 + 2 < ow && tile == 3 { row[x0 + 2] = values.2 + b }
                    }
                }
            }
        }
        if residual != nil || activation != .none {
            epilogueRow(dst, area: oh * ow, bias: 0, residual: residual.map { $0 + p * oh * ow }, activation: activation)
        }
    }
}
