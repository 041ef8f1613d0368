
/// Direct convolution for strided convolutions with packed weights (ResNet's 7x7/2 stem,
/// the BottleFit head's 2x2/2 bottleneck, ResNet's strided 3x3 and 1x1 convolutions).
///
/// The input is copied once per image into a zero-padded buffer whose rows are split into
/// their `stride.w` column phases. Then, for output row oy and kernel tap (c, ky, kx), the
/// inputs the outputs ox..ox+47 need are one contiguous run of a phase row, so the
/// microkernel reads B straight from that buffer through a table of K row offsets: no
/// im2col matrix and no packing (which cost as much as the multiplications for the stem,
/// whose K = 147 is short). Outputs are written per row with the same epilogue as the GEMM.
struct PaddedPhases {
    /// Padded rows per channel, columns per phase row, phases (= stride.w).
    let rows: Int, width: Int, phases: Int

    /// The whole padded input, or only `rows` padded rows (one output row's window, for a
    /// kernel that fills the buffer row by row itself). `flat` (stride 1 only): rows exactly
    /// as wide as the padded input, so that consecutive output rows are one run of columns
    /// (`RowConvKernel.flatRows`); reads past a row's end then land in the next row.
    init(_ g: SpatialGeometry, rows: Int? = nil, flat: Bool = false) {
        phases = g.stride.w
        self.rows = rows ?? Swift.max(g.input.h + g.padTop + g.padBottom, (g.output.h - 1) * g.stride.h + g.kernel.h)
        let paddedWidth = g.input.w + g.padLeft + g.padRight
        if flat {
            width = Swift.max(paddedWidth, g.output.w + g.kernel.w - 1)
            return
        }
        // The last output vector reads up to the output width rounded up to 16.
        let widest = (g.output.w + 15) / 16 * 16 + (g.kernel.w - 1) / phases
        width = Swift.max((paddedWidth + phases - 1) / phases, widest) + 1
    }

    var floatsPerChannel: Int { rows * phases * width }

    /// Writes one input row (`count` floats of a channel) into padded row `row`, starting at
    /// padded column `padLeft`, split into the column phases.
    func scatter(_ src: UnsafePointer<Float>, count: Int, into buffer: UnsafeMutablePointer<Float>, channel c: Int, row: Int, padLeft: Int) {
        if phases == 2 {
            // Input column x is padded column x + padLeft: phase (x + padLeft) % 2.
            let first = buffer + offset(channel: c, row: row, column: padLeft)
            let second = buffer + offset(channel: c, row: row, column: padLeft + 1)
            deinterleave(src, pairs: count / 2, even: first, odd: second)
            if count % 2 == 1 { first[count / 2] = src[count - 1] }
            return
        }
        // Phase px holds padded columns px, px + phases, ...: a strided read, contiguous write.
        for px in 0..<phases {
            let first = ((px - padLeft) % phases + phases) % phases  // first input column in phase px
            guard first < count else { continue }
            let dst = buffer + offset(channel: c, row: row, column: first + padLeft)
            for j in 0..<(count - first + phases - 1) / phases { dst[j] = src[first + j * phases] }
        }
    }

    /// Float offset of padded input (c, row, column) in the buffer.
    func offset(channel c: Int, row: Int, column: Int) -> Int {
        ((c * rows + row) * phases + column % phases) * width + column / phases
    }
}

extension ConvOperator {
    /// Whether a convolution takes the direct row path: packed weights, ungrouped, undilated,
    /// strided (a stride-1 im2col is a plain copy anyway) or an unstrided spatial kernel with
    /// at most 32 output channels (any width), output rows that fill at least 85%
    /// of the 16-float vectors they take (28 of 32, 112 of 112; not 7 of 16), and weights
    /// small enough to stay in L2 (at most 256 KiB), because every output row reads all of
    /// them: ResNet's layer3.0 downsample (2 MiB of weights, 14 rows) took 2.3 ms this way
    /// against 0.5 ms through im2col and packed columns.
    static func usesDirectRows(_ s: Shape, packed: Bool) -> Bool {
        let g = s.geometry
        // Unstrided: only spatial kernels with few output channels (DenseNet's 3x3 → 32), whose
        // Winograd transforms and im2col copies cost more than the few multiplications they
        // feed (DenseNet-169's 56x56 layers: 2.6 → 1.8 ms each).
        // These take it on narrow maps too (7 of 16 lanes): there im2col copies runs of 7
        // floats, and took twice the multiplications' time (DenseNet-169's 7x7 layers).
        let narrowSpatial = g.kernelArea > 1 && s.outChannels <= 32 && g.stride == (1, 1)
        let ow = g.output.w
        let weightBytes = s.outChannels * s.channels * g.kernelArea * 4
        return packed && s.groups == 1 && g.dilation == (1, 1) && (g.stride.w > 1 || narrowSpatial) && !usesBatchedColumns(s) && ow > 0 && g.output.h > 0
            && (ow * 100 >= (ow + 15) / 16 * 16 * 85 || narrowSpatial) && weightBytes <= 256 * 1024
    }

    static func directRowsWorkspaceFloats(_ s: Shape, threads: Int) -> Int {
        // Enough for either layout: the kernel runs flat only without a residual.
        let tiles = threads * PackedGEMM.tileCount
        let rowByRow = s.channels * PaddedPhases(s.geometry).floatsPerChannel + tiles
        guard let flat = FlatRows(s) else { return rowByRow }
        return Swift.max(rowByRow, s.channels * flat.phases.floatsPerChannel + FlatRows.slack + tiles + threads * flat.outputFloats)
    }
}

/// How a stride-1 direct convolution runs several output rows as one GEMM: with rows of the
/// padded input exactly `phases.width` (Wp) floats apart, output (oy, ox) reads tap (c, ky, kx)
/// at padded (c, oy + ky, ox + kx), which is flat position oy·Wp + ox plus the tap's offset,
/// so `rows` output rows are one run of (rows − 1)·Wp + ow columns of B, read in place.
/// The Wp − ow columns between two rows are computed and dropped (the run goes to a
/// scratch block, and each row is copied out). Per row the GEMM took whole 16-float vectors
/// instead: DenseNet's 3x3 → 32 layers on 7x7 maps computed 16 columns for 7, on 28x28 maps
/// 32 for 28, and 56 = 48 + 8 ran an 8-column block as 16.
struct FlatRows {
    let phases: PaddedPhases
    /// Output rows per GEMM: about 240 columns (five blocks of 48), at most the map's height.
    let rows: Int
    /// Columns of one GEMM of `rows` rows, and the scratch floats it writes (all channels).
    let columns: Int
    let outputFloats: Int
    /// Floats after the padded input that the last run may read (its width rounded up to 16).
    static let slack = 64

    /// Nil unless the convolution is unstrided and undilated (the direct row path's other
    /// convolutions keep their rows apart).
    init?(_ s: ConvOperator.Shape) {
        let g = s.geometry
        guard g.stride == (1, 1), g.dilation == (1, 1), g.output.h > 0, g.output.w > 0 else { return nil }
        phases = PaddedPhases(g, flat: true)
        rows = Swift.max(1, Swift.min(g.output.h, 240 / phases.width))
        columns = (rows - 1) * phases.width + g.output.w
        outputFloats = s.outChannels * columns
    }
}

final class RowConvKernel: Kernel {
    let s: ConvOperator.Shape
    let input, output, workspace: UnsafeMutablePointer<Float>
    let bias, residual: UnsafeMutablePointer<Float>?
    let activation: Activation
    let packed: PackedWeights
    let phases: PaddedPhases
    /// Offset of B's row k = (c, ky, kx) from the row base of an output row.
    let offsets: [Int]
    /// One microkernel tile per planned thread.
    let tiles: UnsafeMutablePointer<Float>
    let plannedThreads: Int
    /// Several output rows per GEMM (stride 1, no residual, the whole input padded here).
    let flat: FlatRows?

    /// `workspace` holds the padded input and then the tiles (`directRowsWorkspaceFloats`).
    /// With `bufferRows`, the caller keeps padded rows in buffers of its own (`PaddedPhases`
    /// with that many rows), passes them to `row(_:image:into:ldc:thread:base:)`, and
    /// `workspace` holds only the tiles.
    init(
        shape: ConvOperator.Shape, input: UnsafeMutablePointer<Float>, packed: PackedWeights,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>, threads: Int, bufferRows: Int? = nil
    ) {
        s = shape
        self.input = input
        self.output = output
        self.workspace = workspace
        self.bias = bias
        self.residual = residual
        self.activation = activation
        plannedThreads = threads
        let g = shape.geometry
        let k = shape.channels * g.kernelArea
        self.packed = packed
        flat = bufferRows == nil && residual == nil ? FlatRows(shape) : nil
        let p = flat?.phases ?? PaddedPhases(g, rows: bufferRows)
        phases = p
        tiles = bufferRows == nil ? workspace + shape.channels * p.floatsPerChannel + (flat == nil ? 0 : FlatRows.slack) : workspace
        var table: [Int] = []
        table.reserveCapacity(k)
        for c in 0..<shape.channels {
            for ky in 0..<g.kernel.h {
                for kx in 0..<g.kernel.w { table.append(p.offset(channel: c, row: ky, column: kx)) }
            }
        }
        offsets = table
    }

    func execute(_ parallel: Parallel) {
        let (oh, ow) = s.geometry.output
        let outArea = s.geometry.outputArea
        let parts = plannedThreads
        if let flat {
            (workspace + s.channels * phases.floatsPerChannel).update(repeating: 0, count: FlatRows.slack)
            for n in 0..<s.batch {
                splitPhases(image: n, parallel)
                parallel.forEach(parts) { threads in
                    for t in threads {
                        var oy = oh * t / parts
                        let end = oh * (t + 1) / parts
                        while oy < end {
                            let count = Swift.min(flat.rows, end - oy)
                            flatRows(oy, count: count, image: n, flat: flat, thread: t)
                            oy += count
                        }
                    }
                }
            }
            return
        }
        for n in 0..<s.batch {
            splitPhases(image: n, parallel)
            parallel.forEach(parts) { threads in
                for t in threads {
                    for oy in oh * t / parts..<oh * (t + 1) / parts {
                        row(oy, image: n, into: output + n * s.outChannels * outArea + oy * ow, ldc: outArea, thread: t)
                    }
                }
            }
        }
    }

    /// Copies image n into the zero-padded column-phase buffer. The work is split by padded
    /// rows, not channels (the stem has 3 channels for 2 threads), and each row's padding is
    /// zeroed just before its data is written, while the row is in L1.
    func splitPhases(image n: Int, _ parallel: Parallel) {
        let g = s.geometry
        let (ih, iw) = g.input
        let p = phases
        let buffer = workspace
        let x = input + n * s.channels * ih * iw
        let rowFloats = p.phases * p.width
        parallel.forEach(s.channels * p.rows, minimumPerThread: 16) { rows in
            for i in rows {
                let c = i / p.rows, r = i % p.rows
                let dst = buffer + p.offset(channel: c, row: r, column: 0)
                dst.update(repeating: 0, count: rowFloats)
                let y = r - g.padTop
                guard y >= 0 && y < ih else { continue }
                p.scatter(x + (c * ih + y) * iw, count: iw, into: buffer, channel: c, row: r, padLeft: g.padLeft)
            }
        }
    }

    /// Copies padded rows `paddedRows` of image n (all channels) into `buffer`, a
    /// `PaddedPhases` of `phases.rows` rows (this kernel made with `bufferRows`), its row 0
    /// being padded row `paddedRows.lowerBound`: one thread's share, serially.
    func splitPhases(image n: Int, paddedRows: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let g = s.geometry
        let (ih, iw) = g.input
        let p = phases
        let x = input + n * s.channels * ih * iw
        let rowFloats = p.phases * p.width
        for c in 0..<s.channels {
            for r in paddedRows {
                let local = r - paddedRows.lowerBound
                let dst = buffer + p.offset(channel: c, row: local, column: 0)
                dst.update(repeating: 0, count: rowFloats)
                let y = r - g.padTop
                guard y >= 0 && y < ih else { continue }
                p.scatter(x + (c * ih + y) * iw, count: iw, into: buffer, channel: c, row: local, padLeft: g.padLeft)
            }
        }
    }

    /// Whether `rows(_:image:into:ldc:thread:bases:)` can do three output rows at once.
    var takesThreeRows: Bool {
        residual == nil && PackedGEMM.takesThreeRows(rows: s.outChannels, depth: packed.depth, columns: s.geometry.output.w)
    }

    /// Output rows oy, oy + 1 and oy + 2 (`takesThreeRows`), reading padded rows from
    /// `bases[i]` and writing channel j of row oy + i to `c[i] + j·ldc`.
    func rows(
        _ oy: Int, image n: Int, into c: UnsafePointer<UnsafeMutablePointer<Float>>, ldc: Int, thread: Int,
        bases: UnsafePointer<UnsafePointer<Float>>
    ) {
        let ow = s.geometry.output.w
        let epilogue = PackedGEMM.Epilogue(bias: bias.map { UnsafePointer($0) }, activation: activation)
        offsets.withUnsafeBufferPointer { table in
            PackedGEMM.multiplyIndirectRows(
                packed.instructionSet,
                packedA: packed.pointer, rows: s.outChannels, depth: packed.depth, bases: bases, offsets: table.baseAddress!,
                columns: ow, c: c, ldc: ldc, epilogue: epilogue, tile: tiles + thread * PackedGEMM.tileCount)
        }
    }

    /// Output rows oy..<oy + count of image n (after `splitPhases(image: n)`), all output
    /// channels, as one GEMM over the flat run of columns (`FlatRows`) into this thread's
    /// scratch, then each row's `ow` columns copied out.
    func flatRows(_ oy: Int, count: Int, image n: Int, flat: FlatRows, thread: Int) {
        let g = s.geometry
        let ow = g.output.w, outArea = g.outputArea, m = s.outChannels
        let wp = phases.width
        let columns = (count - 1) * wp + ow
        let scratch = tiles + plannedThreads * PackedGEMM.tileCount + thread * flat.outputFloats
        let epilogue = PackedGEMM.Epilogue(bias: bias.map { UnsafePointer($0) }, activation: activation)
        offsets.withUnsafeBufferPointer { table in
            PackedGEMM.multiplyIndirect(
                packed.instructionSet,
                packedA: packed.pointer, rows: m, depth: packed.depth, panels: 0..<PackedGEMM.panels(rows: m),
                base: UnsafePointer(workspace + oy * wp), offsets: table.baseAddress!, columns: columns, c: scratch, ldc: columns,
                epilogue: epilogue, tile: tiles + thread * PackedGEMM.tileCount)
        }
        let out = output + n * m * outArea + oy * ow
        for j in 0..<m {
            for r in 0..<count { (out + j * outArea + r * ow).update(from: scratch + j * columns + r * wp, count: ow) }
        }
    }

    /// Output row oy of image n (after `splitPhases(image: n)`), all output channels, with
    /// bias, residual and activation: channel j's row goes to c + j·ldc. `thread` picks the
    /// tile scratch, one per planned thread. `base`, if given, is where the row's padded
    /// input rows start instead (a buffer of `bufferRows` rows).
    func row(
        _ oy: Int, image n: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, thread: Int, base: UnsafePointer<Float>? = nil
    ) {
        let g = s.geometry
        let ow = g.output.w
        let m = s.outChannels
        let outArea = g.outputArea
        let rowStride = g.stride.h * phases.phases * phases.width
        let epilogue = PackedGEMM.Epilogue(
            bias: bias.map { UnsafePointer($0) }, residual: residual.map { UnsafePointer($0 + n * m * outArea + oy * ow) },
            residualStride: outArea, activation: activation)
        offsets.withUnsafeBufferPointer { table in
            PackedGEMM.multiplyIndirect(
                packed.instructionSet,
                packedA: packed.pointer, rows: m, depth: packed.depth, panels: 0..<PackedGEMM.panels(rows: m),
                base: base ?? UnsafePointer(workspace + oy * rowStride), offsets: table.baseAddress!, columns: ow, c: c, ldc: ldc,
                epilogue: epilogue, tile: tiles + thread * PackedGEMM.tileCount)
        }
    }
}
