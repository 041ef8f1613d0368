import BottleFitCore
import CBottleFitOpenBLAS

/// ONNX Conv (1-D and 2-D, groups, dilations, asymmetric pads, auto_pad), NCHW, float32.
///
/// Each group is one `cblas_sgemm`: weights [M/g, C/g·kh·kw] times the im2col matrix
/// [C/g·kh·kw, OH·OW]. Pointwise convolutions use the input as the matrix directly.
/// Depthwise and narrow grouped convolutions run a direct kernel with the epilogue fused
/// (DepthwiseConvolution.swift). The epilogue adds the bias, an optional
/// fused residual (input 3, from Add fusion) and the fused activation in one pass.
/// With the compute context's GEMM `.packed` and constant weights (ungrouped), the weights are
/// packed once per session and the GEMMs run on the C microkernel (CBottleFitKernels) instead, with
/// bias, residual and the activation applied as each block of the output is finished. A
/// pointwise convolution on that path may also take a per-(image, channel) scale of its input
/// (input 4, [N, C, 1, 1], from the planner's squeeze-and-excitation fusion): each input row is
/// multiplied by it as B is packed, so the scaled input is never written out.
enum ConvOperator: Operator {
    static let attributes: Set<String> = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"]

    struct Shape {
        var batch: Int, channels: Int, outChannels: Int, groups: Int
        var geometry: SpatialGeometry
        var spatialRank: Int
    }

    static func shape(_ ctx: NodeContext) throws(EngineError) -> Shape {
        let x = try ctx.requireType(0, [.float32])
        let w = try ctx.requireType(1, [.float32])
        guard x.shape.count >= 3, w.shape.count == x.shape.count else {
            throw .shapeMismatch("Conv node '\(ctx.name)': input \(x.shape) and weight \(w.shape) ranks differ or are < 3")
        }
        let groups = try ctx.int("group", default: 1)
        let c = x.shape[1]
        let m = w.shape[0]
        guard groups > 0, c % groups == 0, m % groups == 0, w.shape[1] * groups == c else {
            throw .shapeMismatch("Conv node '\(ctx.name)': \(c) input channels, weight \(w.shape), group \(groups)")
        }
        if let b = ctx.input(2) {
            guard b.elementType == .float32, b.shape == [m] else {
                throw .shapeMismatch("Conv node '\(ctx.name)': bias \(b.shape) should be [\(m)]")
            }
        }
        let g = try SpatialGeometry.forward(ctx, spatial: Array(x.shape[2...]), kernelShape: Array(w.shape[2...]))
        return Shape(batch: x.shape[0], channels: c, outChannels: m, groups: groups, geometry: g, spatialRank: x.shape.count - 2)
    }

    static func outputType(_ s: Shape) -> ValueType {
        let spatial = s.spatialRank == 1 ? [s.geometry.output.w] : s.geometry.outputSpatial
        return ValueType(.float32, [s.batch, s.outChannels] + spatial)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let s = try shape(ctx)
        let out = outputType(s)
        if let r = ctx.input(3), r != out {
            throw .shapeMismatch("Conv node '\(ctx.name)': fused residual \(r) differs from output \(out)")
        }
        if let norm = try inputNormalization(ctx) {
            guard norm.scale.count == s.channels, norm.shift.count == s.channels, s.geometry.isPointwise, s.groups == 1 else {
                throw .shapeMismatch("Conv node '\(ctx.name)': fused input normalization of \(norm.scale.count) channels needs a pointwise convolution of \(s.channels)")
            }
        }
        if let scale = ctx.input(4) {
            guard scale.shape == [s.batch, s.channels, 1, 1], s.geometry.isPointwise, s.groups == 1 else {
                throw .shapeMismatch("Conv node '\(ctx.name)': fused input scale \(scale) needs a pointwise convolution of \(s.channels) channels")
            }
        }
        return [out]
    }

    /// A BatchNormalization (and ReLU) fused in front by the planner: x·scale + shift per
    /// input channel, applied as B is packed (pointwise, packed only).
    struct InputNormalization {
        var scale: [Float], shift: [Float], relu: Bool
    }

    static func inputNormalization(_ ctx: NodeContext) throws(EngineError) -> InputNormalization? {
        guard let value = ctx.node.attributes["_in_scale"] else { return nil }
        guard case .floats(let scale) = value, case .floats(let shift)? = ctx.node.attributes["_in_shift"] else {
            throw .invalidModel("Conv node '\(ctx.name)': fused input normalization without its shift")
        }
        return InputNormalization(scale: scale, shift: shift, relu: ctx.node.attributes["_in_relu"] == .int(1))
    }

    static func usesBatchedColumns(_ s: Shape) -> Bool {
        s.batch > 1 && s.groups == 1 && s.geometry.outputArea < 256
    }

    /// Whether the GEMMs use weights packed ahead of time (see `ComputeContext.GEMM`).
    /// With `.mixed`: every convolution of a batch-1 plan; in larger batches only a convolution
    /// the planner fused a channel scale into, one that takes the direct row path (small
    /// weights, strided or with few output channels: no im2col and no packing of the input at
    /// all, where OpenBLAS would pack both per call), or a shallow pointwise one.
    static func usesPackedWeights(_ s: Shape, _ ctx: NodeContext, constantWeights: Bool) -> Bool {
        guard constantWeights && s.groups == 1 else { return false }
        switch ctx.gemm {
        case .packed: return true
        case .openblas: return false
        case .mixed: return ctx.gemm.packsAllConvolutions(batch: s.batch) || fusesInputPass(ctx) || usesDirectRows(s, packed: true) || isShallowPointwise(s)
        }
    }


    /// A pointwise convolution of few input channels (at most 24) over a wide map (at least
    /// 256 pixels): the expansions of MobileNet's and EfficientNet's first blocks (16 -> 96 at
    /// 112x112). With so little depth per output, OpenBLAS's packing of both operands per call
    /// and the separate epilogue cost more than the multiplications, and the packed
    /// microkernel, which reads the input as it stands and finishes each block in registers,
    /// is faster even on AVX2 (`ComputeContext.GEMM.mixed`).
    static func isShallowPointwise(_ s: Shape) -> Bool {
        s.groups == 1 && s.geometry.isPointwise && s.channels <= 24 && s.geometry.outputArea >= 256
    }

    /// Whether the planner may fuse an input pass into this convolution: pointwise, constant
    /// ungrouped weights, and a GEMM mode that fuses passes of that kind (a squeeze-and-excitation
    /// scale, or a batch normalization: `ComputeContext.GEMM`).
    static func acceptsInputPass(_ s: Shape, _ ctx: NodeContext, normalization: Bool) -> Bool {
        let fuses = normalization ? ctx.gemm.fusesNormalizations(batch: s.batch) : ctx.gemm.fusesChannelScales
        return fuses && ctx.constant(1) != nil
            && s.groups == 1 && s.geometry.isPointwise
    }

    /// Whether the planner fused a channel scale (input 4) or a batch normalization
    /// (`_in_scale`) into this convolution's input.
    static func fusesInputPass(_ ctx: NodeContext) -> Bool {
        ctx.node.inputs.count > 4 && !ctx.node.inputs[4].isEmpty || ctx.node.attributes["_in_scale"] != nil
    }

    /// Constant weights that are packed or Winograd-transformed are read only then.
    static func inputsReadOnlyWhilePlanning(_ ctx: NodeContext) -> Set<Int> {
        guard ctx.constant(1) != nil, let s = try? shape(ctx) else { return [] }
        let packed = usesPackedWeights(s, ctx, constantWeights: true)
        return packed || Winograd.outputTile(s, packed: packed) != nil ? [1] : []
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let s = try? shape(ctx) else { return 0 }
        if let scratch = directGroupScratchFloats(s) { return ctx.threads * scratch * 4 }
        let constantWeights = ctx.constant(1) != nil
        if constantWeights && Winograd.outputTile(s, packed: usesPackedWeights(s, ctx, constantWeights: true)) != nil {
            return Winograd.workspaceBytes(s, packed: usesPackedWeights(s, ctx, constantWeights: true), threads: ctx.threads)
        }
        let packed = usesPackedWeights(s, ctx, constantWeights: constantWeights)
        if usesDirectRows(s, packed: packed) { return directRowsWorkspaceFloats(s, threads: ctx.threads) * 4 }
        if packed { return packedWorkspaceFloats(s, threads: ctx.threads) * 4 }
        let k = s.channels / s.groups * s.geometry.kernelArea
        if usesBatchedColumns(s) { return (k + s.outChannels) * s.batch * s.geometry.outputArea * 4 }
        return s.geometry.isPointwise ? 0 : ctx.threads * k * columnBlock(s) * 4
    }

    /// With packed weights: B is packed straight from the input (no im2col matrix); the
    /// batched path adds a [M, N·OHW] output to copy from.
    static func packedWorkspaceFloats(_ s: Shape, threads: Int) -> Int {
        let k = s.channels * s.geometry.kernelArea
        let columns = usesBatchedColumns(s) ? s.batch * s.geometry.outputArea : s.geometry.outputArea
        let gemm = PackedWeights.workspaceFloats(rows: s.outChannels, depth: k, columns: columns, threads: threads)
        return gemm + (usesBatchedColumns(s) ? s.outChannels * columns : 0) + phaseFloats(s)
    }

    /// Strided convolutions read the input split into column phases (one image at a time).
    static func phaseFloats(_ s: Shape) -> Int {
        usesBatchedColumns(s) || s.geometry.stride.w == 1 || s.geometry.dilation.w != 1 ? 0 : s.geometry.phaseFloats(channels: s.channels)
    }

    /// Fewest output pixels per thread for `executePointwiseBlocks`; narrower maps are one
    /// GEMM split by rows and one epilogue pass, all in cache anyway.
    static let pointwiseMinimumColumns = 256

    /// Output pixels per block of `executePointwiseBlocks`: the block's input and output
    /// columns about 384 KiB, within a 512 KiB L2, a multiple of 16, 64 to 2048 wide.
    static func pointwiseBlock(_ s: Shape) -> Int {
        let fit = (96 << 10) / Swift.max(1, s.channels + s.outChannels) / 16 * 16
        return Swift.min(2048, Swift.max(64, fit))
    }

    /// Output pixels per im2col block: about 1 MiB of columns (one L2), at least 256 wide.
    static func columnBlock(_ s: Shape) -> Int {
        let k = s.channels / s.groups * s.geometry.kernelArea
        let fit = Swift.max(256, (1 << 20) / Swift.max(1, k * 4) / 64 * 64)
        return Swift.min(s.geometry.outputArea, fit)
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let s = try shape(ctx)
        let constantWeights = inputs[1]?.constant != nil
        let packed = usesPackedWeights(s, ctx, constantWeights: constantWeights)
        let weight = inputs[1]!.floats
        let k = s.channels / s.groups * s.geometry.kernelArea
        // Prepared weights are made once per session and shared by its plans.
        func packedWeights() -> PackedWeights {
            ctx.prepared("packed") { PackedWeights(weight, lda: k, rows: s.outChannels, depth: k, instructionSet: ctx.instructionSet) }
        }
        if constantWeights, let tile = Winograd.outputTile(s, packed: packed) {
            let weights = ctx.prepared("winograd\(tile)\(packed ? "-packed" : "")") {
                WinogradWeights(
                    weight, outChannels: s.outChannels, channels: s.channels, tile: tile, packed: packed,
                    instructionSet: ctx.instructionSet)
            }
            return WinogradConvKernel(
                shape: s, tile: tile, input: inputs[0]!.floats, weight: weight, bias: inputs[2]?.floats,
                residual: inputs.count > 3 ? inputs[3]?.floats : nil, output: outputs[0].floats,
                activation: Activation.fused(in: ctx.node), workspace: workspace.assumingMemoryBound(to: Float.self),
                weights: weights, threads: ctx.threads)
        }
        if usesDirectRows(s, packed: packed) {
            return RowConvKernel(
                shape: s, input: inputs[0]!.floats, packed: packedWeights(), bias: inputs[2]?.floats,
                residual: inputs.count > 3 ? inputs[3]?.floats : nil, output: outputs[0].floats,
                activation: Activation.fused(in: ctx.node), workspace: workspace.assumingMemoryBound(to: Float.self),
                threads: ctx.threads)
        }
        let scale = inputs.count > 4 ? inputs[4]?.floats : nil
        let norm = try inputNormalization(ctx)
        if (scale != nil || norm != nil) && !packed {
            throw .invalidModel("Conv node '\(ctx.name)': a fused input scale needs constant weights and the packed GEMM")
        }
        if scale != nil && norm != nil {
            throw .invalidModel("Conv node '\(ctx.name)': a fused input scale and a fused normalization together")
        }
        return ConvKernel(
            shape: s, input: inputs[0]!.floats, weight: weight, bias: inputs[2]?.floats,
            residual: inputs.count > 3 ? inputs[3]?.floats : nil, output: outputs[0].floats,
            activation: Activation.fused(in: ctx.node), workspace: workspace.assumingMemoryBound(to: Float.self),
            packed: packed ? packedWeights() : nil, threads: ctx.threads, instructionSet: ctx.instructionSet, scale: scale,
            normalization: norm)
    }
}

final class ConvKernel: Kernel {
    let s: ConvOperator.Shape
    let input: UnsafeMutablePointer<Float>
    let weight: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let residual: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let activation: Activation
    let workspace: UnsafeMutablePointer<Float>
    /// Threads the workspace was sized for.
    let plannedThreads: Int
    /// The weights packed for the C microkernel.
    let packed: PackedWeights?
    /// The instruction set of the direct group kernel and activations (the session's).
    let instructionSet: KernelInstructionSet
    /// Per-(image, channel) scale of the input ([N, C]), applied as B is packed (pointwise, packed only).
    let scale: UnsafeMutablePointer<Float>?
    /// Per-channel x·a + b (then ReLU) of the input, applied as B is packed (pointwise, packed only).
    let normalization: ConvOperator.InputNormalization?

    init(
        shape: ConvOperator.Shape, input: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>, packed: PackedWeights?, threads: Int,
        instructionSet: KernelInstructionSet, scale: UnsafeMutablePointer<Float>? = nil,
        normalization: ConvOperator.InputNormalization? = nil
    ) {
        self.scale = scale
        self.normalization = normalization
        self.packed = packed
        self.instructionSet = instructionSet
        self.s = shape
        self.input = input
        self.weight = weight
        self.bias = bias
        self.residual = residual
        self.output = output
        self.activation = activation
        self.workspace = workspace
        plannedThreads = threads
    }

    func execute(_ parallel: Parallel) {
        if let packed {
            executePacked(packed, parallel)
            return
        }
        let g = s.geometry
        let cg = s.channels / s.groups
        let mg = s.outChannels / s.groups
        let k = cg * g.kernelArea
        let outArea = g.outputArea
        let inArea = g.inputArea
        if let scratch = ConvOperator.directGroupScratchFloats(s) {
            // Bias, residual and activation are applied as each block is stored.
            executeDirectGroups(scratchFloats: scratch, parallel)
            return
        } else if s.groups > 1 {
            // Grouped (RegNet, ResNeXt): each thread takes whole (image, group) items, with its
            // im2col blocks in its own workspace and single-threaded GEMMs, so there is no
            // fork-join per group (RegNetY-400MF has up to 55 groups per convolution).
            let parts = Swift.min(plannedThreads, parallel.threads)
            let items = s.batch * s.groups
            let block = ConvOperator.columnBlock(s)
            let ws = workspace, input = input, output = output, weight = weight
            let channels = s.channels, outChannels = s.outChannels, groups = s.groups
            parallel.forEach(parts) { threads in
                for t in threads {
                    let mine = ws + t * k * block
                    for item in (items * t / parts)..<(items * (t + 1) / parts) {
                        let n = item / groups, grp = item % groups
                        let x = input + (n * channels + grp * cg) * inArea
                        let y = output + (n * outChannels + grp * mg) * outArea
                        let w = weight + grp * mg * k
                        if g.isPointwise {
                            sgemm(m: mg, n: outArea, k: k, a: w, lda: k, b: x, ldb: outArea, c: y, ldc: outArea, parallel: .serial)
                            continue
                        }
                        var p0 = 0
                        while p0 < outArea {
                            let columns = p0..<Swift.min(outArea, p0 + block)
                            g.im2col(x, rows: 0..<k, columns: columns, into: mine, ldc: columns.count)
                            sgemm(
                                m: mg, n: columns.count, k: k, a: w, lda: k, b: mine, ldb: columns.count, c: y + p0, ldc: outArea,
                                parallel: .serial)
                            p0 = columns.upperBound
                        }
                    }
                }
            }
        } else if ConvOperator.usesBatchedColumns(s) {
            // All images side by side: one large GEMM [M, K] x [K, N*OHW].
            let columns = s.batch * outArea
            let cols = workspace
            let tmp = workspace + k * columns
            parallel.forEach(k, minimumPerThread: 8) { rows in
                for n in 0..<s.batch {
                    let x = input + n * s.channels * inArea
                    if g.isPointwise {
                        for c in rows { (cols + c * columns + n * outArea).update(from: x + c * inArea, count: outArea) }
                    } else {
                        g.im2col(x, rows: rows, columns: 0..<outArea, into: cols + rows.lowerBound * columns + n * outArea, ldc: columns)
                    }
                }
            }
            sgemm(m: s.outChannels, n: columns, k: k, a: weight, lda: k, b: cols, ldb: columns, c: tmp, ldc: columns, parallel: parallel)
            scatterImages(from: tmp, columns: columns, parallel)
            return
        } else if g.isPointwise && outArea >= Swift.min(plannedThreads, parallel.threads) * ConvOperator.pointwiseMinimumColumns {
            // Bias, residual and activation are applied block by block, while in cache.
            executePointwiseBlocks(parallel)
            return
        } else {
            let block = ConvOperator.columnBlock(s)
            let parts = Swift.min(plannedThreads, parallel.threads)
            for n in 0..<s.batch {
                for grp in 0..<s.groups {
                    let x = input + (n * s.channels + grp * cg) * inArea
                    let y = output + (n * s.outChannels + grp * mg) * outArea
                    let w = weight + grp * mg * k
                    if g.isPointwise {
                        sgemm(m: mg, n: outArea, k: k, a: w, lda: k, b: x, ldb: outArea, c: y, ldc: outArea, parallel: parallel)
                    } else if outArea >= parts * block {
                        // Each thread fills and multiplies its own column blocks, in its own cache.
                        let ws = workspace
                        parallel.forEach(parts) { threads in
                            for t in threads {
                                let mine = ws + t * k * block
                                var p0 = outArea * t / parts
                                let end = outArea * (t + 1) / parts
                                while p0 < end {
                                    let columns = p0..<Swift.min(end, p0 + block)
                                    g.im2col(x, rows: 0..<k, columns: columns, into: mine, ldc: columns.count)
                                    sgemm(
                                        m: mg, n: columns.count, k: k, a: w, lda: k, b: mine, ldb: columns.count, c: y + p0,
                                        ldc: outArea, parallel: .serial)
                                    p0 = columns.upperBound
                                }
                            }
                        }
                    } else {
                        let ws = workspace
                        parallel.forEach(k, minimumPerThread: 8) { rows in
                            g.im2col(x, rows: rows, columns: 0..<outArea, into: ws + rows.lowerBound * outArea, ldc: outArea)
                        }
                        sgemm(m: mg, n: outArea, k: k, a: w, lda: k, b: workspace, ldb: outArea, c: y, ldc: outArea, parallel: parallel)
                    }
                }
            }
        }
        epilogue(
            output, channels: s.outChannels, area: outArea, batch: s.batch, bias: bias, residual: residual, activation: activation,
            instructionSet: instructionSet, parallel: parallel)
    }

    /// Ungrouped pointwise convolution through OpenBLAS on wide maps: each thread takes its
    /// share of each image's columns in blocks whose output fits in L2
    /// (`ConvOperator.pointwiseBlock`), one single-threaded GEMM per block, and applies bias,
    /// residual and activation to the block at once. A GEMM over the whole map and then one
    /// epilogue pass wrote the output to memory and read it back: MobileNetV2's 16 -> 96
    /// convolution on 112x112 took 2.05 ms at one thread, against ONNX Runtime's 1.07 ms.
    private func executePointwiseBlocks(_ parallel: Parallel) {
        let outArea = s.geometry.outputArea, m = s.outChannels, k = s.channels
        let parts = Swift.min(plannedThreads, parallel.threads)
        let block = ConvOperator.pointwiseBlock(s)
        let input = input, output = output, weight = weight, bias = bias, residual = residual
        let activation = activation, isa = instructionSet, batch = s.batch
        parallel.forEach(parts) { threads in
            for t in threads {
                for n in 0..<batch {
                    let x = input + n * k * outArea, y = output + n * m * outArea
                    var p0 = outArea * t / parts
                    let end = outArea * (t + 1) / parts
                    while p0 < end {
                        let columns = Swift.min(end - p0, block)
                        sgemm(
                            m: m, n: columns, k: k, a: weight, lda: k, b: x + p0, ldb: outArea, c: y + p0, ldc: outArea,
                            parallel: .serial)
                        if bias != nil || residual != nil || activation != .none {
                            for c in 0..<m {
                                let at = c * outArea + p0
                                epilogueRow(
                                    y + at, area: columns, bias: bias?[c] ?? 0, residual: residual.map { $0 + n * m * outArea + at },
                                    activation: activation, instructionSet: isa)
                            }
                        }
                        p0 += columns
                    }
                }
            }
        }
    }

    /// Ungrouped convolution with packed weights: B is packed straight from the input
    /// (pointwise) or its im2col rows, and each finished block of the output gets bias,
    /// residual and ReLU in the microkernel's epilogue.
    private func executePacked(_ packed: PackedWeights, _ parallel: Parallel) {
        let g = s.geometry
        let m = s.outChannels
        let outArea = g.outputArea
        let inArea = g.inputArea
        let channels = s.channels
        let input = input, scale = scale, normalization = normalization
        /// Rows `rows`, output pixels `columns` of image n's B.
        func fill(_ n: Int, _ rows: Range<Int>, _ columns: Range<Int>, _ dst: UnsafeMutablePointer<Float>, _ ldc: Int) {
            let x = input + n * channels * inArea
            if g.isPointwise, let normalization {
                for (i, r) in rows.enumerated() {
                    let d = dst + i * ldc, src = x + r * inArea + columns.lowerBound
                    let a = normalization.scale[r], b = normalization.shift[r]
                    if normalization.relu {
                        for j in 0..<columns.count { d[j] = larger(src[j] * a + b, 0) }
                    } else {
                        for j in 0..<columns.count { d[j] = src[j] * a + b }
                    }
                }
            } else if g.isPointwise, let scale {
                let factors = scale + n * channels
                for (i, r) in rows.enumerated() {
                    let d = dst + i * ldc, src = x + r * inArea + columns.lowerBound, f = factors[r]
                    for j in 0..<columns.count { d[j] = src[j] * f }
                }
            } else if g.isPointwise {
                for (i, r) in rows.enumerated() {
                    (dst + i * ldc).update(from: x + r * inArea + columns.lowerBound, count: columns.count)
                }
            } else {
                g.im2col(x, rows: rows, columns: columns, into: dst, ldc: ldc)
            }
        }
        if ConvOperator.usesBatchedColumns(s) {
            // All images side by side: one GEMM [M, K]·[K, N·OHW] into a buffer, then a copy per image.
            let columns = s.batch * outArea
            let tmp = workspace
            let gemmSpace = workspace + m * columns
            packed.run(columns: columns, c: tmp, ldc: columns, epilogue: .none, parts: plannedThreads, workspace: gemmSpace, parallel: parallel) {
                rows, cols, dst, ldc in
                var j = cols.lowerBound
                while j < cols.upperBound {
                    let image = j / outArea
                    let end = Swift.min(cols.upperBound, (image + 1) * outArea)
                    fill(image, rows, j - image * outArea..<end - image * outArea, dst + (j - cols.lowerBound), ldc)
                    j = end
                }
            }
            scatterImages(from: tmp, columns: columns, parallel)
            return
        }
        let phaseCount = ConvOperator.phaseFloats(s)
        let phases = phaseCount > 0 ? workspace : nil
        let gemmSpace = workspace + phaseCount
        for n in 0..<s.batch {
            let x = input + n * channels * inArea
            if let phases {
                parallel.forEach(channels) { planes in g.splitColumnPhases(x, planes: planes, into: phases) }
            }
            let epilogue = PackedGEMM.Epilogue(
                bias: bias.map { UnsafePointer($0) }, residual: residual.map { UnsafePointer($0 + n * m * outArea) },
                residualStride: outArea, activation: activation)
            packed.run(
                columns: outArea, c: output + n * m * outArea, ldc: outArea, epilogue: epilogue, parts: plannedThreads,
                workspace: gemmSpace, parallel: parallel
            ) { rows, columns, dst, ldc in
                if let phases {
                    g.im2col(x, rows: rows, columns: columns, into: dst, ldc: ldc, phases: phases)
                } else {
                    fill(n, rows, columns, dst, ldc)
                }
            }
        }
    }

    /// Copies a batched GEMM output [M, N·OHW] to NCHW with bias, residual and activation.
    private func scatterImages(from tmp: UnsafeMutablePointer<Float>, columns: Int, _ parallel: Parallel) {
        let outArea = s.geometry.outputArea
        let out = output, bias = bias, residual = residual, activation = activation, m = s.outChannels, isa = instructionSet
        parallel.forEach(s.batch * m, minimumPerThread: 4) { range in
            for i in range {
                let n = i / m, c = i % m
                let dst = out + i * outArea
                dst.update(from: tmp + c * columns + n * outArea, count: outArea)
                epilogueRow(
                    dst, area: outArea, bias: bias?[c] ?? 0, residual: residual.map { $0 + i * outArea }, activation: activation,
                    instructionSet: isa)
            }
        }
    }
}

/// Row-major C = alpha·op(A)·op(B) + beta·C with `cblas_sgemm`. With `parallel`, the engine's
/// threads each compute a slice of C (columns when C is wide, rows otherwise), each slice a
/// single-threaded OpenBLAS call.
func sgemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, transA: Bool = false, transB: Bool = false, alpha: Float = 1,
    parallel: Parallel
) {
    let threads = parallel.threads
    if threads > 1 && n >= 2 * 64 && n >= m / 2 {
        // Column slices, 16-aligned so each keeps whole micro-tiles.
        parallel.forEach((n + 15) / 16) { tiles in
            let n0 = tiles.lowerBound * 16, n1 = Swift.min(n, tiles.upperBound * 16)
            guard n1 > n0 else { return }
            blasMultiply(
                m: m, n: n1 - n0, k: k, a: a, lda: lda, b: transB ? b + n0 * ldb : b + n0, ldb: ldb, c: c + n0, ldc: ldc,
                beta: beta, transA: transA, transB: transB, alpha: alpha)
        }
    } else if threads > 1 && m >= 2 * 16 {
        parallel.forEach((m + 15) / 16) { tiles in
            let m0 = tiles.lowerBound * 16, m1 = Swift.min(m, tiles.upperBound * 16)
            guard m1 > m0 else { return }
            blasMultiply(
                m: m1 - m0, n: n, k: k, a: transA ? a + m0 : a + m0 * lda, lda: lda, b: b, ldb: ldb, c: c + m0 * ldc, ldc: ldc,
                beta: beta, transA: transA, transB: transB, alpha: alpha)
        }
    } else {
        blasMultiply(
            m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, beta: beta, transA: transA, transB: transB,
            alpha: alpha)
    }
}

/// One OpenBLAS call for `sgemm`: a single row of C (a classifier at batch 1) is a
/// matrix-vector product, `cblas_sgemv`. OpenBLAS 0.3.21 (Debian 12) runs `cblas_sgemm` with
/// M = 1 as a GEMM and packs all of B each call: MobileNetV2's 1280 -> 1000 classifier took
/// 1.12 ms at one thread that way, against ONNX Runtime's 0.45 ms.
private func blasMultiply(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float, transA: Bool, transB: Bool, alpha: Float
) {
    if m == 1 && k > 0 && n > 0 {
        // op(A) is one row: A's first row, or its first column when transposed (stride lda).
        // C = op(B)ᵀ·x: B is [n, k] when transposed, else [k, n] read transposed.
        cblas_sgemv(
            CblasRowMajor, transB ? CblasNoTrans : CblasTrans, blasint(transB ? n : k), blasint(transB ? k : n), alpha, b,
            blasint(ldb), a, blasint(transA ? lda : 1), beta, c, 1)
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// Adds a per-channel bias and an optional same-shaped residual, then applies the
/// activation, over an NC(area) tensor in one pass, split over the engine's threads.
func epilogue(
    _ y: UnsafeMutablePointer<Float>, channels: Int, area: Int, batch: Int, bias: UnsafeMutablePointer<Float>?,
    residual: UnsafeMutablePointer<Float>?, activation: Activation, instructionSet: KernelInstructionSet? = nil, parallel: Parallel
) {
    if bias == nil && residual == nil && activation == .none { return }
    parallel.forEach(batch * channels, minimumPerThread: 4) { rows in
        for i in rows {
            epilogueRow(
                y + i * area, area: area, bias: bias?[i % channels] ?? 0, residual: residual.map { $0 + i * area },
                activation: activation, instructionSet: instructionSet)
        }
    }
}

/// One row's epilogue; with `instructionSet`, an activation other than ReLU runs in C
/// (`bottlefit_activate`) instead of the Swift loops compiled for the baseline.
@inline(__always)
func epilogueRow(
    _ row: UnsafeMutablePointer<Float>, area: Int, bias b: Float, residual: UnsafeMutablePointer<Float>?, activation: Activation,
    instructionSet: KernelInstructionSet? = nil
) {
    if let r = residual {
        if activation == .relu {
            for i in 0..<area { row[i] = Swift.max(row[i] + b + r[i], 0) }
            return
        }
        for i in 0..<area { row[i] += b + r[i] }
    } else if activation == .relu {
        for i in 0..<area { row[i] = Swift.max(row[i] + b, 0) }
        return
    } else if b != 0 {
        for i in 0..<area { row[i] += b }
    }
    if activation == .none { return }
    if let instructionSet { activation.apply(row, area, instructionSet) } else { activation.apply(row, area) }
}
