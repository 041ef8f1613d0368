import BottleFitCore

/// ONNX ConvTranspose (1-D and 2-D, groups, dilations, pads, output_padding, output_shape,
/// auto_pad), NCHW float32: a GEMM with the transposed weights into a column buffer,
/// then col2im accumulation, then bias and fused activation.
enum ConvTransposeOperator: Operator {
    static let attributes: Set<String> = [
        "auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides",
    ]

    struct Shape {
        var batch: Int, channels: Int, outChannels: Int, groups: Int
        var kernel: (h: Int, w: Int), stride: (h: Int, w: Int), dilation: (h: Int, w: Int)
        var padTop: Int, padLeft: Int
        var input: (h: Int, w: Int), output: (h: Int, w: Int)
        var spatialRank: Int
    }

    static func shape(_ ctx: NodeContext) throws(EngineError) -> Shape {
        let x = try ctx.requireType(0, [.float32])
        let w = try ctx.requireType(1, [.float32])
        let d = x.shape.count - 2
        guard d == 1 || d == 2 else { throw ctx.unsupported("spatial rank", "\(d) (only 1-D and 2-D are supported)") }
        guard w.shape.count == x.shape.count else {
            throw .shapeMismatch("ConvTranspose node '\(ctx.name)': input \(x.shape) and weight \(w.shape) ranks differ")
        }
        let groups = try ctx.int("group", default: 1)
        let c = x.shape[1]
        guard groups > 0, c % groups == 0, w.shape[0] == c else {
            throw .shapeMismatch("ConvTranspose node '\(ctx.name)': \(c) input channels, weight \(w.shape), group \(groups)")
        }
        let m = w.shape[1] * groups
        if let b = ctx.input(2), b.shape != [m] {
            throw .shapeMismatch("ConvTranspose node '\(ctx.name)': bias \(b.shape) should be [\(m)]")
        }
        let k = try ctx.ints("kernel_shape") ?? Array(w.shape[2...])
        guard k == Array(w.shape[2...]) else {
            throw .invalidModel("ConvTranspose node '\(ctx.name)': kernel_shape \(k) disagrees with the weights")
        }
        let s = try ctx.ints("strides") ?? Array(repeating: 1, count: d)
        let dl = try ctx.ints("dilations") ?? Array(repeating: 1, count: d)
        let outPad = try ctx.ints("output_padding") ?? Array(repeating: 0, count: d)
        var pads = try ctx.ints("pads") ?? Array(repeating: 0, count: 2 * d)
        guard s.count == d, dl.count == d, outPad.count == d, pads.count == 2 * d else {
            throw .invalidModel("ConvTranspose node '\(ctx.name)': strides/dilations/output_padding/pads have the wrong length")
        }
        let spatial = Array(x.shape[2...])
        var out = [Int](repeating: 0, count: d)
        let autoPad = try ctx.string("auto_pad", default: "NOTSET")
        var outputShape = try ctx.ints("output_shape")
        if let os = outputShape, os.count == d + 2 { outputShape = Array(os[2...]) }
        if outputShape == nil && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            outputShape = (0..<d).map { spatial[$0] * s[$0] }
        }
        for i in 0..<d {
            let effective = (k[i] - 1) * dl[i] + 1
            if let os = outputShape {
                guard os.count == d else { throw .invalidModel("ConvTranspose node '\(ctx.name)': output_shape \(os) is not \(d)-D") }
                let total = s[i] * (spatial[i] - 1) + outPad[i] + effective - os[i]
                guard os[i] > 0 else { throw .shapeMismatch("ConvTranspose node '\(ctx.name)': output_shape \(os) is empty") }
                if total < 0 {
                    // A larger output_shape extends the end, as output_padding would.
                    pads[i] = 0
                    pads[i + d] = 0
                } else if autoPad == "SAME_UPPER" {
                    pads[i] = total / 2
                    pads[i + d] = total - total / 2
                } else {
                    pads[i] = total - total / 2
                    pads[i + d] = total / 2
                }
                out[i] = os[i]
            } else {
                if autoPad == "VALID" { pads[i] = 0; pads[i + d] = 0 }
                else if autoPad != "NOTSET" { throw ctx.unsupported("auto_pad", autoPad) }
                out[i] = s[i] * (spatial[i] - 1) + outPad[i] + effective - pads[i] - pads[i + d]
                guard out[i] > 0 else { throw .shapeMismatch("ConvTranspose node '\(ctx.name)': output would be empty") }
            }
        }
        if d == 1 {
            return Shape(
                batch: x.shape[0], channels: c, outChannels: m, groups: groups, kernel: (1, k[0]), stride: (1, s[0]),
                dilation: (1, dl[0]), padTop: 0, padLeft: pads[0], input: (1, spatial[0]), output: (1, out[0]), spatialRank: 1)
        }
        return Shape(
            batch: x.shape[0], channels: c, outChannels: m, groups: groups, kernel: (k[0], k[1]), stride: (s[0], s[1]),
            dilation: (dl[0], dl[1]), padTop: pads[0], padLeft: pads[1], input: (spatial[0], spatial[1]),
            output: (out[0], out[1]), spatialRank: 2)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let s = try shape(ctx)
        let spatial = s.spatialRank == 1 ? [s.output.w] : [s.output.h, s.output.w]
        return [ValueType(.float32, [s.batch, s.outChannels] + spatial)]
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let s = try? shape(ctx) else { return 0 }
        return s.outChannels / s.groups * s.kernel.h * s.kernel.w * s.input.h * s.input.w * 4
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        ConvTransposeKernel(
            shape: try shape(ctx), input: inputs[0]!.floats, weight: inputs[1]!.floats, bias: inputs[2]?.floats,
            output: outputs[0].floats, activation: Activation.fused(in: ctx.node),
            workspace: workspace.assumingMemoryBound(to: Float.self))
    }
}

final class ConvTransposeKernel: Kernel {
    let s: ConvTransposeOperator.Shape
    let input, weight, output, workspace: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let activation: Activation

    init(
        shape: ConvTransposeOperator.Shape, input: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>, activation: Activation,
        workspace: UnsafeMutablePointer<Float>
    ) {
        self.s = shape
        self.input = input
        self.weight = weight
        self.bias = bias
        self.output = output
        self.activation = activation
        self.workspace = workspace
    }

    func execute(_ parallel: Parallel) {
        let cg = s.channels / s.groups
        let mg = s.outChannels / s.groups
        let kArea = s.kernel.h * s.kernel.w
        let rows = mg * kArea
        let inArea = s.input.h * s.input.w
        let outArea = s.output.h * s.output.w
        output.update(repeating: 0, count: s.batch * s.outChannels * outArea)
        for n in 0..<s.batch {
            for g in 0..<s.groups {
                let x = input + (n * s.channels + g * cg) * inArea
                // Weights of this group are [cg, mg*kh*kw]; columns = W^T [rows, cg] x X [cg, inArea].
                sgemm(
                    m: rows, n: inArea, k: cg, a: weight + g * cg * rows, lda: rows, b: x, ldb: inArea,
                    c: workspace, ldc: inArea, transA: true, parallel: parallel)
                let y = output + (n * s.outChannels + g * mg) * outArea
                for m in 0..<mg {
                    for ki in 0..<s.kernel.h {
                        for kj in 0..<s.kernel.w {
                            let col = workspace + ((m * s.kernel.h + ki) * s.kernel.w + kj) * inArea
                            let plane = y + m * outArea
                            for iy in 0..<s.input.h {
                                let oy = iy * s.stride.h - s.padTop + ki * s.dilation.h
                                if oy < 0 || oy >= s.output.h { continue }
                                for ix in 0..<s.input.w {
                                    let ox = ix * s.stride.w - s.padLeft + kj * s.dilation.w
                                    if ox < 0 || ox >= s.output.w { continue }
                                    plane[oy * s.output.w + ox] += col[iy * s.input.w + ix]
                                }
                            }
                        }
                    }
                }
            }
        }
        epilogue(output, channels: s.outChannels, area: outArea, batch: s.batch, bias: bias, residual: nil, activation: activation,
            parallel: parallel)
    }
}
