import BottleFitCore
import Synchronization

/// A convolution on the direct row path, the MaxPool that alone reads it, optionally the
/// BatchNormalization (with its fused activation) that alone reads the pool, and optionally
/// a second direct-row convolution that alone reads the result, run as one step: ResNet's
/// stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and the whole BottleFit head, which adds BN,
/// ReLU and the 2x2/2 bottleneck convolution.
///
/// Each thread takes a band of pooled rows. It splits the input rows the band reads into its
/// own column-phase buffer, computes the convolution rows their windows need into a ring
/// (a window's rows, plus two when rows are computed three at a time; all output channels:
/// 140 KiB for the stem, so it stays in L2), and pools each output row as soon as its
/// window's last row exists. The
/// convolution's output (3.2 MB for the stem) is never written to memory and read back,
/// which was half of what the max pool cost. A band's first window shares its top row with
/// the band above, so that row is computed by both threads (1 row in 56 for the stem).
///
/// With a second convolution (the "trailing" one, whose rows must not overlap: stride ≥
/// kernel height), pooled rows go straight into the zero-padded column-phase rows that
/// convolution reads, a buffer of one output row's window per thread (33 KiB for the head,
/// in L1), and each of its output rows is computed as soon as its window is complete. The
/// pooled tensor is never written out either, and the second convolution needs no pass of
/// its own to split its input. An output row whose window spans two threads' bands is
/// collected in a shared buffer and computed after the bands (one row per band boundary).
///
/// The planner makes these steps (`Planner.fusePooling`); they are never read from a file.
enum ConvPoolOperator: Operator {
    static let attributes: Set<String> = []

    /// Whether `conv` and the MaxPool `pool` reading its output can run as one step
    /// (the caller has checked that nothing else reads the convolution's output).
    static func canFuse(conv: NodeContext, pool: NodeContext) -> Bool {
        guard directRows(conv), pool.op == "MaxPool", pool.inputs.first??.shape.count == 4, pool.node.outputs.count == 1,
            let (g, _) = try? PoolOperator.geometry(pool), g.dilation == (1, 1), g.output.h > 0, g.output.w > 0
        else { return false }
        return true
    }

    /// Whether a BatchNormalization reading the pool can join: inference mode with constant parameters.
    static func canFuse(normalization bn: NodeContext) -> Bool {
        bn.op == "BatchNormalization" && bn.node.outputs.count == 1 && (1...4).allSatisfy { bn.constant($0)?.floats != nil }
            && (try? BatchNormOperator.infer(bn)) != nil
    }

    /// Whether a convolution reading the pool (or its BatchNormalization) can join: the direct
    /// row path, and output rows whose windows do not overlap.
    static func canFuse(trailing conv: NodeContext) -> Bool {
        guard directRows(conv), let s = try? ConvOperator.shape(conv) else { return false }
        return s.geometry.stride.h >= s.geometry.kernel.h
    }

    /// A 2-D convolution with constant weights, no fused residual, on the direct row path.
    static func directRows(_ conv: NodeContext) -> Bool {
        guard conv.op == "Conv", conv.node.inputs.count <= 3, conv.node.outputs.count == 1, conv.constant(1) != nil,
            conv.node.attributes["_in_scale"] == nil,
            let s = try? ConvOperator.shape(conv), s.spatialRank == 2
        else { return false }
        return ConvOperator.usesDirectRows(s, packed: ConvOperator.usesPackedWeights(s, conv, constantWeights: true))
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let l = try Layout(ctx)
        if let trailing = l.trailing { return [ConvOperator.outputType(trailing)] }
        return [ValueType(.float32, [l.conv.batch, l.conv.outChannels, l.pool.output.h, l.pool.output.w])]
    }

    /// What the fused nodes are, and how the workspace is cut for them (all sizes in floats,
    /// each a multiple of 16 so that every piece starts 64-byte aligned).
    struct Layout {
        let conv: ConvOperator.Shape
        let pool: SpatialGeometry
        let normalization: NodeContext?
        let trailingContext: NodeContext?
        let trailing: ConvOperator.Shape?
        /// The trailing convolution's padded rows for one output row.
        let trailingPhases: PaddedPhases?
        /// Threads the work is cut for, and the padded input rows the largest band reads.
        let parts: Int
        let inputRows: Int
        /// Whether convolution rows are computed three at a time (`RowConvKernel.takesThreeRows`),
        /// and the rows the ring holds: a window's, plus two computed ahead when they are.
        let threeRows: Bool
        let ringRows: Int
        /// Per thread: the ring of convolution rows, one combined row, pooling scratch, and with
        /// a trailing convolution, its padded-row buffer and one pooled row of every channel.
        let inputFloats: Int, ringFloats: Int, rowFloats: Int, scratchFloats: Int, bufferFloats: Int, pooledFloats: Int
        /// The vectorised row kernel's view of the pooling (used when `isSupported`).
        let rowKernel: MaxPoolRow.Geometry

        var perThread: Int { inputFloats + ringFloats + rowFloats + scratchFloats + bufferFloats + pooledFloats }

        init(_ ctx: NodeContext) throws(EngineError) {
            conv = try ConvOperator.shape(ctx)
            guard let poolContext = ctx.fused.first(where: { $0.op == "MaxPool" }) else {
                throw .invalidModel("fused Conv node '\(ctx.name)' has no pooling")
            }
            pool = try PoolOperator.geometry(poolContext).0
            normalization = ctx.fused.first { $0.op == "BatchNormalization" }
            trailingContext = ctx.fused.first { $0.op == "Conv" }
            trailing = try trailingContext.map { c throws(EngineError) in try ConvOperator.shape(c) }
            trailingPhases = trailing.map { PaddedPhases($0.geometry, rows: $0.geometry.kernel.h) }
            func rounded(_ n: Int) -> Int { (n + 15) / 16 * 16 }
            parts = Swift.max(1, ctx.threads)
            var widest = 0
            for t in 0..<parts { widest = Swift.max(widest, Self.paddedRows(conv, pool, band: Self.band(pool, t, of: parts)).count) }
            inputRows = widest
            inputFloats = rounded(conv.channels * PaddedPhases(conv.geometry, rows: widest).floatsPerChannel)
            let k = conv.channels * conv.geometry.kernelArea
            threeRows = PackedGEMM.takesThreeRows(rows: conv.outChannels, depth: k, columns: conv.geometry.output.w)
            ringRows = pool.kernel.h + (threeRows ? 2 : 0)
            ringFloats = rounded(conv.outChannels * ringRows * conv.geometry.output.w)
            rowFloats = rounded(conv.geometry.output.w)
            rowKernel = MaxPoolRow.Geometry(
                inputWidth: pool.input.w, outputWidth: pool.output.w, kernelWidth: pool.kernel.w, stride: pool.stride.w,
                padLeft: pool.padLeft)
            scratchFloats = rounded(
                Swift.max(PoolColumns(geometry: pool, isMax: true, includePad: false).scratchFloats, rowKernel.scratchFloats))
            if let trailing, let phases = trailingPhases {
                bufferFloats = rounded(trailing.channels * phases.floatsPerChannel)
            } else {
                bufferFloats = 0
            }
            pooledFloats = trailing == nil ? 0 : rounded(conv.outChannels * pool.output.w)
        }

        /// Pooled rows band t of `parts`.
        static func band(_ pool: SpatialGeometry, _ t: Int, of parts: Int) -> Range<Int> {
            pool.output.h * t / parts..<pool.output.h * (t + 1) / parts
        }

        func band(_ t: Int) -> Range<Int> { Self.band(pool, t, of: parts) }

        /// The convolution rows the windows of pooled rows `band` read.
        static func convolutionRows(_ pool: SpatialGeometry, band: Range<Int>) -> Range<Int> {
            var first = Int.max, last = Int.min
            for py in band {
                let inside = pool.windowRows(outputRow: py)
                guard !inside.isEmpty else { continue }
                let y0 = py * pool.stride.h - pool.padTop
                first = Swift.min(first, y0 + inside.lowerBound)
                last = Swift.max(last, y0 + inside.upperBound - 1)
            }
            return first <= last ? first..<last + 1 : 0..<0
        }

        /// The padded input rows a band's convolution rows read.
        static func paddedRows(_ conv: ConvOperator.Shape, _ pool: SpatialGeometry, band: Range<Int>) -> Range<Int> {
            let rows = convolutionRows(pool, band: band)
            guard !rows.isEmpty else { return 0..<0 }
            let g = conv.geometry
            return rows.lowerBound * g.stride.h..<(rows.upperBound - 1) * g.stride.h + g.kernel.h
        }

        /// The pooled rows a trailing output row reads (its window clipped to the pooled tensor).
        func pooledRows(ofTrailingRow oy: Int) -> Range<Int> {
            let g = trailing!.geometry
            let first = oy * g.stride.h - g.padTop
            return Swift.max(0, first)..<Swift.max(0, Swift.min(pool.output.h, first + g.kernel.h))
        }

        /// Trailing output rows no single band holds all the pooled rows of (a window across
        /// a band boundary, or one all in padding): their windows are collected in shared buffers.
        var sharedRows: [Int] {
            guard let trailing else { return [] }
            return (0..<trailing.geometry.output.h).filter { oy in
                let needed = pooledRows(ofTrailingRow: oy)
                return needed.isEmpty
                    || !(0..<parts).contains { t in
                        let b = band(t)
                        return b.contains(needed.lowerBound) && b.contains(needed.upperBound - 1)
                    }
            }
        }

        /// The workspace: every thread's part, then the tiles of both convolutions, then the
        /// shared buffers.
        var workspaceFloats: Int {
            parts * perThread + parts * PackedGEMM.tileCount
                + (trailing == nil ? 0 : parts * PackedGEMM.tileCount + sharedRows.count * bufferFloats)
        }
    }

    /// The first convolution's weights are read only while they are packed (the others'
    /// are constants of their nodes, not inputs of the step).
    static func inputsReadOnlyWhilePlanning(_ ctx: NodeContext) -> Set<Int> { [1] }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let l = try? Layout(ctx) else { return 0 }
        return l.workspaceFloats * 4
    }

    static func packedWeights(_ ctx: NodeContext, _ s: ConvOperator.Shape, _ weight: UnsafePointer<Float>) -> PackedWeights {
        let k = s.channels * s.geometry.kernelArea
        return ctx.prepared("packed") { PackedWeights(weight, lda: k, rows: s.outChannels, depth: k, instructionSet: ctx.instructionSet) }
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let l = try Layout(ctx)
        let floats = workspace.assumingMemoryBound(to: Float.self)
        let tiles = floats + l.parts * l.perThread
        let rows = RowConvKernel(
            shape: l.conv, input: inputs[0]!.floats, packed: packedWeights(ctx, l.conv, UnsafePointer(inputs[1]!.floats)), bias: inputs[2]?.floats,
            residual: nil, output: outputs[0].floats, activation: Activation.fused(in: ctx.node), workspace: tiles,
            threads: ctx.threads, bufferRows: l.inputRows)
        var affine: ConvPoolKernel.Affine? = nil
        if let bn = l.normalization {
            let gamma = bn.constant(1)!.floats!, beta = bn.constant(2)!.floats!
            let mean = bn.constant(3)!.floats!, variance = bn.constant(4)!.floats!
            let epsilon = try bn.float("epsilon", default: 1e-5)
            // The same arithmetic as BatchNormKernel: y = x·a + (β − μ·a), a = γ/√(σ²+ε).
            let scale = (0..<gamma.count).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
            let shift = (0..<gamma.count).map { beta[$0] - mean[$0] * scale[$0] }
            affine = ConvPoolKernel.Affine(scale: scale, shift: shift, activation: Activation.fused(in: bn.node))
        }
        var trailing: RowConvKernel? = nil
        if let t = l.trailing, let tc = l.trailingContext {
            // Its weights and bias are constants of the trailing node, not inputs of this step.
            guard let weight = tc.constant(1)?.floats else { throw .invalidModel("fused Conv node '\(tc.name)' lost its weights") }
            let packed = weight.withUnsafeBufferPointer { packedWeights(tc, t, $0.baseAddress!) }
            let bias = tc.constant(2)?.floats
            let buffers = KeptFloats(bias ?? [])
            trailing = RowConvKernel(
                shape: t, input: outputs[0].floats, packed: packed, bias: bias == nil ? nil : buffers.pointer, residual: nil,
                output: outputs[0].floats,
                activation: Activation.fused(in: tc.node), workspace: tiles + l.parts * PackedGEMM.tileCount, threads: ctx.threads,
                bufferRows: t.geometry.kernel.h)
            return ConvPoolKernel(
                rows: rows, layout: l, output: outputs[0].floats, affine: affine, trailing: trailing, kept: buffers, workspace: floats)
        }
        return ConvPoolKernel(rows: rows, layout: l, output: outputs[0].floats, affine: affine, trailing: nil, kept: nil, workspace: floats)
    }
}

/// Floats a kernel keeps for as long as it lives (a fused node's constants).
final class KeptFloats {
    let pointer: UnsafeMutablePointer<Float>

    init(_ values: [Float]) {
        pointer = .allocate(capacity: Swift.max(1, values.count))
        pointer.initialize(from: values, count: values.count)
    }

    deinit { pointer.deallocate() }
}

/// The fused step's kernel (see `ConvPoolOperator`).
final class ConvPoolKernel: Kernel {
    /// A per-channel y = x·scale + shift, then an activation (a fused BatchNormalization).
    struct Affine {
        let scale: [Float], shift: [Float]
        let activation: Activation
    }

    let rows: RowConvKernel
    let layout: ConvPoolOperator.Layout
    /// The pooled tensor, or the trailing convolution's output.
    let output: UnsafeMutablePointer<Float>
    let affine: Affine?
    let trailing: RowConvKernel?
    let kept: KeptFloats?
    let workspace: UnsafeMutablePointer<Float>
    /// Trailing rows whose windows are collected in `shared` (slot i holds sharedRows[i]);
    /// `sharedSlot[oy]` is row oy's slot or -1.
    let sharedRows: [Int]
    let sharedSlot: [Int]
    let shared: UnsafeMutablePointer<Float>
    /// Per shared row: pooled rows written into its window so far, and how many it has. The
    /// thread that writes the last one computes the row, so nobody waits for anybody; a row
    /// with none (its window all padding) is computed after the bands.
    let written: [AtomicCount]
    let expected: [Int]

    final class AtomicCount: Sendable {
        let value = Atomic<Int>(0)
    }

    init(
        rows: RowConvKernel, layout: ConvPoolOperator.Layout, output: UnsafeMutablePointer<Float>, affine: Affine?,
        trailing: RowConvKernel?, kept: KeptFloats?, workspace: UnsafeMutablePointer<Float>
    ) {
        self.rows = rows
        self.layout = layout
        self.output = output
        self.affine = affine
        self.trailing = trailing
        self.kept = kept
        self.workspace = workspace
        sharedRows = layout.sharedRows
        var slots = [Int](repeating: -1, count: trailing?.s.geometry.output.h ?? 0)
        for (i, oy) in sharedRows.enumerated() { slots[oy] = i }
        sharedSlot = slots
        shared = workspace + layout.parts * layout.perThread + 2 * layout.parts * PackedGEMM.tileCount
        written = sharedRows.map { _ in AtomicCount() }
        expected = sharedRows.map { layout.pooledRows(ofTrailingRow: $0).count }
    }

    func execute(_ parallel: Parallel) {
        let parts = layout.parts
        for n in 0..<layout.conv.batch {
            shared.update(repeating: 0, count: sharedRows.count * layout.bufferFloats)
            for w in written { w.value.store(0, ordering: .relaxed) }
            parallel.forEach(parts) { threads in
                for t in threads { self.run(band: t, image: n) }
            }
            for (i, oy) in sharedRows.enumerated() where expected[i] == 0 { computeTrailing(oy, image: n, window: i, thread: 0) }
        }
    }

    /// Trailing output row oy of image n from shared window i.
    private func computeTrailing(_ oy: Int, image n: Int, window i: Int, thread t: Int) {
        guard let trailing else { return }
        let g = trailing.s.geometry
        let out = output + n * trailing.s.outChannels * g.outputArea + oy * g.output.w
        trailing.row(oy, image: n, into: out, ldc: g.outputArea, thread: t, base: shared + i * layout.bufferFloats)
    }

    /// Pooled rows of band t of image n, on planned thread t's scratch: the convolution rows
    /// they need, then each pooled row, into the output or into the trailing convolution's
    /// padded rows (and its output rows as their windows complete).
    private func run(band t: Int, image n: Int) {
        let rowsOfBand = layout.band(t)
        guard !rowsOfBand.isEmpty else { return }
        // This band's padded input rows, split into column phases in its own buffer.
        let input = workspace + t * layout.perThread
        let inputRows = ConvPoolOperator.Layout.paddedRows(layout.conv, layout.pool, band: rowsOfBand)
        rows.splitPhases(image: n, paddedRows: inputRows, into: input)
        let inputRowFloats = rows.phases.phases * rows.phases.width
        let convStride = layout.conv.geometry.stride.h
        let g = layout.pool
        let m = layout.conv.outChannels
        let ow = g.input.w, kh = layout.ringRows
        let (ph, pw) = g.output
        let ring = input + layout.inputFloats
        let row = ring + layout.ringFloats
        let scratch = row + layout.rowFloats
        let buffer = scratch + layout.scratchFloats
        let pooled = buffer + layout.bufferFloats
        let columns = PoolColumns(geometry: g, isMax: true, includePad: false)
        let vectorised = layout.rowKernel
        // The kernel applies the affine and a ReLU itself; other activations run after it.
        let activationAfter = affine.map { $0.activation == .relu ? .none : $0.activation } ?? .none
        let scale = affine?.scale ?? [], shift = affine?.shift ?? []
        let tg = trailing?.s.geometry
        withUnsafeTemporaryAllocation(of: Int.self, capacity: kh) { slots in
            // Convolution row r lives in ring slot r % kh: channel j's copy at ring + (j·kh + slot)·ow.
            let convolutionRows = ConvPoolOperator.Layout.convolutionRows(g, band: rowsOfBand)
            var computed = convolutionRows.lowerBound - 1  // the last convolution row in the ring
            func base(_ r: Int) -> UnsafePointer<Float> {
                UnsafePointer(input + (r * convStride - inputRows.lowerBound) * inputRowFloats)
            }
            var filling = -1  // the trailing output row whose window `buffer` holds
            for py in rowsOfBand {
                // Where this pooled row goes: the output, or row ky of a trailing row's window.
                var target = output + (n * m * ph + py) * pw
                var targetStride = ph * pw
                var trailingRow = 0, ky = 0
                if let tg {
                    trailingRow = (py + tg.padTop) / tg.stride.h
                    ky = (py + tg.padTop) % tg.stride.h
                    // Pooled rows no trailing window reads (stride > kernel height) are skipped.
                    guard ky < tg.kernel.h && trailingRow < tg.output.h else { continue }
                    target = pooled
                    targetStride = pw
                }
                let y0 = py * g.stride.h - g.padTop
                let inside = g.windowRows(outputRow: py)
                while !inside.isEmpty && computed < y0 + inside.upperBound - 1 {
                    let r = computed + 1
                    if layout.threeRows && r + 2 < convolutionRows.upperBound {
                        // Ahead by up to two rows: the ring has room for them.
                        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 3) { bases in
                            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 3) { outs in
                                for i in 0..<3 {
                                    bases[i] = base(r + i)
                                    outs[i] = ring + ((r + i) % kh) * ow
                                }
                                rows.rows(
                                    r, image: n, into: UnsafePointer(outs.baseAddress!), ldc: kh * ow, thread: t,
                                    bases: UnsafePointer(bases.baseAddress!))
                            }
                        }
                        computed = r + 2
                    } else {
                        rows.row(r, image: n, into: ring + (r % kh) * ow, ldc: kh * ow, thread: t, base: base(r))
                        computed = r
                    }
                }
                for (i, ki) in inside.enumerated() { slots[i] = ((y0 + ki) % kh) * ow }
                if vectorised.isSupported && !inside.isEmpty {
                    scale.withUnsafeBufferPointer { a in
                        shift.withUnsafeBufferPointer { b in
                            MaxPoolRow.run(
                                rows.packed.instructionSet, vectorised, channels: m, input: ring, inputChannelStride: kh * ow,
                                rowOffsets: UnsafePointer(slots.baseAddress!), rowCount: inside.count, output: target,
                                // An empty array's buffer may still have an address: no affine is nil.
                                outputChannelStride: targetStride, scale: affine == nil ? nil : a.baseAddress,
                                shift: affine == nil ? nil : b.baseAddress, relu: affine?.activation == .relu, scratch: scratch)
                        }
                    }
                    if activationAfter != .none {
                        for j in 0..<m { activationAfter.apply(target + j * targetStride, pw) }
                    }
                } else {
                    for j in 0..<m {
                        let out = target + j * targetStride
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
                guard let trailing, let tg, let phases = layout.trailingPhases else { continue }
                // Into the trailing convolution's padded rows: this thread's buffer, or the
                // shared one of a row whose window spans two bands.
                let slot = sharedSlot[trailingRow]
                let owned = slot < 0
                let window = owned ? buffer : shared + slot * layout.bufferFloats
                if owned && filling != trailingRow {
                    buffer.update(repeating: 0, count: layout.bufferFloats)
                    filling = trailingRow
                }
                for j in 0..<m {
                    phases.scatter(pooled + j * pw, count: pw, into: window, channel: j, row: ky, padLeft: tg.padLeft)
                }
                if owned && py == layout.pooledRows(ofTrailingRow: trailingRow).upperBound - 1 {
                    let out = output + n * trailing.s.outChannels * tg.outputArea + trailingRow * tg.output.w
                    trailing.row(trailingRow, image: n, into: out, ldc: tg.outputArea, thread: t, base: window)
                } else if !owned && written[slot].value.add(1, ordering: .acquiringAndReleasing).newValue == expected[slot] {
                    computeTrailing(trailingRow, image: n, window: slot, thread: t)
                }
            }
        }
    }
}
