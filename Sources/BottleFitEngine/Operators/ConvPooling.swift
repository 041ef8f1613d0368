import BottleFitCore
import BottleFitKernels

/// A convolution on the direct row path, the MaxPool that alone reads it, and optionally the
/// BatchNormalization (with its fused activation) that alone reads the pool, run as one step:
/// ResNet's stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and the BottleFit head, which adds a
/// BN and ReLU after the pool.
///
/// Each thread takes a band of pooled rows. It computes the convolution rows their windows
/// need into a ring of `kernel.h` rows (all output channels: 86 KiB for the stem, so it
/// stays in L2), and pools each output row as soon as its window's last row exists. The
/// convolution's output (3.2 MB for the stem) is never written to memory and read back,
/// which was half of what the max pool cost. A band's first window shares its top row with
/// the band above, so that row is computed by both threads (1 row in 56 for the stem).
///
/// The planner makes these steps (`Planner.fusePooling`); they are never read from a file.
enum ConvPoolOperator: Operator {
    static let attributes: Set<String> = []

    /// Whether `conv` and the MaxPool `pool` reading its output can run as one step
    /// (the caller has checked that nothing else reads the convolution's output).
    static func canFuse(conv: NodeContext, pool: NodeContext) -> Bool {
        guard conv.op == "Conv", pool.op == "MaxPool", conv.node.inputs.count <= 3, conv.constant(1) != nil,
            let s = try? ConvOperator.shape(conv), s.spatialRank == 2,
            ConvOperator.usesDirectRows(s, packed: ConvOperator.usesPackedWeights(s, conv, constantWeights: true)),
            pool.inputs.first??.shape.count == 4, pool.node.outputs.count == 1,
            let (g, _) = try? PoolOperator.geometry(pool), g.dilation == (1, 1), g.output.h > 0, g.output.w > 0
        else { return false }
        return true
    }

    /// Whether a BatchNormalization reading the pool can join: inference mode with constant parameters.
    static func canFuse(normalization bn: NodeContext) -> Bool {
        bn.op == "BatchNormalization" && bn.node.outputs.count == 1 && (1...4).allSatisfy { bn.constant($0)?.floats != nil }
            && (try? BatchNormOperator.infer(bn)) != nil
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        guard let pool = ctx.fused.first else { throw .invalidModel("fused Conv node '\(ctx.name)' has no pooling") }
        return try PoolOperator.infer(pool)
    }

    struct Layout {
        let conv: ConvOperator.Shape
        let pool: SpatialGeometry
        /// Floats per thread: the ring of convolution rows, one combined row, pooling scratch.
        let ringFloats: Int, rowFloats: Int, scratchFloats: Int
        /// The vectorised row kernel's view of the pooling (used when `isSupported`).
        let rowKernel: MaxPoolRow.Geometry
        var perThread: Int { ringFloats + rowFloats + scratchFloats }

        init(_ ctx: NodeContext) throws(EngineError) {
            conv = try ConvOperator.shape(ctx)
            pool = try PoolOperator.geometry(ctx.fused[0]).0
            func rounded(_ n: Int) -> Int { (n + 15) / 16 * 16 }
            ringFloats = rounded(conv.outChannels * pool.kernel.h * conv.geometry.output.w)
            rowFloats = rounded(conv.geometry.output.w)
            rowKernel = MaxPoolRow.Geometry(
                inputWidth: pool.input.w, outputWidth: pool.output.w, kernelWidth: pool.kernel.w, stride: pool.stride.w,
                padLeft: pool.padLeft)
            scratchFloats = rounded(
                Swift.max(PoolColumns(geometry: pool, isMax: true, includePad: false).scratchFloats, rowKernel.scratchFloats))
        }
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let l = try? Layout(ctx) else { return 0 }
        return (ConvOperator.directRowsWorkspaceFloats(l.conv, threads: ctx.threads) + ctx.threads * l.perThread) * 4
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let l = try Layout(ctx)
        let weight = inputs[1]!.floats
        let k = l.conv.channels * l.conv.geometry.kernelArea
        let packed = ctx.prepared("packed") { PackedWeights(weight, lda: k, rows: l.conv.outChannels, depth: k) }
        let floats = workspace.assumingMemoryBound(to: Float.self)
        let rows = RowConvKernel(
            shape: l.conv, input: inputs[0]!.floats, packed: packed, bias: inputs[2]?.floats, residual: nil,
            output: outputs[0].floats, activation: Activation.fused(in: ctx.node), workspace: floats, threads: ctx.threads)
        var affine: (scale: [Float], shift: [Float], activation: Activation)? = nil
        if ctx.fused.count > 1 {
            let bn = ctx.fused[1]
            let gamma = bn.constant(1)!.floats!, beta = bn.constant(2)!.floats!
            let mean = bn.constant(3)!.floats!, variance = bn.constant(4)!.floats!
            let epsilon = try bn.float("epsilon", default: 1e-5)
            // The same arithmetic as BatchNormKernel: y = x·a + (β − μ·a), a = γ/√(σ²+ε).
            let scale = (0..<gamma.count).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
            let shift = (0..<gamma.count).map { beta[$0] - mean[$0] * scale[$0] }
            affine = (scale, shift, Activation.fused(in: bn.node))
        }
        return ConvPoolKernel(
            rows: rows, layout: l, output: outputs[0].floats, affine: affine,
            workspace: floats + ConvOperator.directRowsWorkspaceFloats(l.conv, threads: ctx.threads), threads: ctx.threads)
    }
}

final class ConvPoolKernel: Kernel {
    let rows: RowConvKernel
    let layout: ConvPoolOperator.Layout
    let output: UnsafeMutablePointer<Float>
    let affine: (scale: [Float], shift: [Float], activation: Activation)?
    let workspace: UnsafeMutablePointer<Float>
    let plannedThreads: Int

    init(
        rows: RowConvKernel, layout: ConvPoolOperator.Layout, output: UnsafeMutablePointer<Float>,
        affine: (scale: [Float], shift: [Float], activation: Activation)?, workspace: UnsafeMutablePointer<Float>, threads: Int
    ) {
        self.rows = rows
        self.layout = layout
        self.output = output
        self.affine = affine
        self.workspace = workspace
        plannedThreads = threads
    }

    func execute() {
        let parts = plannedThreads
        let ph = layout.pool.output.h
        for n in 0..<layout.conv.batch {
            rows.splitPhases(image: n)
            Parallel.forEach(parts) { threads in
                for t in threads { self.band(ph * t / parts..<ph * (t + 1) / parts, image: n, thread: t) }
            }
        }
    }

    /// Pooled rows `band` of image n, on planned thread t's scratch.
    private func band(_ band: Range<Int>, image n: Int, thread t: Int) {
        guard !band.isEmpty else { return }
        let g = layout.pool
        let m = layout.conv.outChannels
        let ow = g.input.w, kh = g.kernel.h
        let (ph, pw) = g.output
        let ring = workspace + t * layout.perThread
        let row = ring + layout.ringFloats
        let scratch = row + layout.rowFloats
        let columns = PoolColumns(geometry: g, isMax: true, includePad: false)
        let vectorised = layout.rowKernel
        // The kernel applies the affine and a ReLU itself; other activations run after it.
        let activationAfter = affine.map { $0.activation == .relu ? .none : $0.activation } ?? .none
        let scale = affine?.scale ?? [], shift = affine?.shift ?? []
        withUnsafeTemporaryAllocation(of: Int.self, capacity: kh) { slots in
            // Convolution row r lives in ring slot r % kh: channel j's copy at ring + (j·kh + slot)·ow.
            var computed = Int.min  // the last convolution row in the ring
            for py in band {
                let y0 = py * g.stride.h - g.padTop
                let inside = g.windowRows(outputRow: py)
                for r in (y0 + inside.lowerBound)..<(y0 + inside.upperBound) where r > computed {
                    rows.row(r, image: n, into: ring + (r % kh) * ow, ldc: kh * ow, thread: t)
                    computed = r
                }
                for (i, ki) in inside.enumerated() { slots[i] = ((y0 + ki) % kh) * ow }
                let out = output + (n * m * ph + py) * pw
                if vectorised.isSupported && !inside.isEmpty {
                    scale.withUnsafeBufferPointer { a in
                        shift.withUnsafeBufferPointer { b in
                            MaxPoolRow.run(
                                vectorised, channels: m, input: ring, inputChannelStride: kh * ow,
                                rowOffsets: UnsafePointer(slots.baseAddress!), rowCount: inside.count, output: out,
                                // An empty array's buffer may still have an address: no affine is nil.
                                outputChannelStride: ph * pw, scale: affine == nil ? nil : a.baseAddress,
                                shift: affine == nil ? nil : b.baseAddress,
                                relu: affine?.activation == .relu, scratch: scratch)
                        }
                    }
                    if activationAfter != .none {
                        for j in 0..<m { activationAfter.apply(out + j * ph * pw, pw) }
                    }
                    continue
                }
                for j in 0..<m {
                    let out = out + j * ph * pw
                    if inside.isEmpty {
                        out.update(repeating: -.infinity, count: pw)
                    } else {
                        let lines = ring + j * kh * ow
                        row.update(from: lines + slots[0], count: ow)
                        for i in 1..<inside.count {
                            let line = lines + slots[i]
                            for x in 0..<ow { row[x] = larger(row[x], line[x]) }
                        }
                        columns.finish(row: row, rowsInside: inside.count, y0: y0, out: out, scratch: scratch)
                    }
                    if let affine {
                        let a = affine.scale[j], b = affine.shift[j]
                        for x in 0..<pw { out[x] = out[x] * a + b }
                        affine.activation.apply(out, pw)
                    }
                }
            }
        }
    }
}
