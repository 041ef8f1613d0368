import BottleFitCore
import CBottleFitOpenBLAS

/// ONNX Conv (1-D and 2-D, groups, dilations, asymmetric pads, auto_pad), NCHW, float32.
///
/// Each group is one `cblas_sgemm`: weights [M/g, C/g·kh·kw] times the im2col matrix
/// [C/g·kh·kw, OH·OW]. Pointwise convolutions use the input as the matrix directly.
/// Depthwise convolutions run a direct loop. The epilogue adds the bias, an optional
/// fused residual (input 3, from Add fusion) and the fused activation in one pass.
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
        return [out]
    }

    static func usesBatchedColumns(_ s: Shape) -> Bool {
        s.batch > 1 && s.groups == 1 && s.geometry.outputArea < 1024
    }

    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int {
        guard let s = try? shape(ctx) else { return 0 }
        let k = s.channels / s.groups * s.geometry.kernelArea
        let depthwise = s.groups > 1 && s.groups == s.channels && s.groups == s.outChannels
        if depthwise { return 0 }
        if usesBatchedColumns(s) {
            return (k + s.outChannels) * s.batch * s.geometry.outputArea * 4
        }
        return s.geometry.isPointwise ? 0 : k * s.geometry.outputArea * 4
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let s = try shape(ctx)
        return ConvKernel(
            shape: s, input: inputs[0]!.floats, weight: inputs[1]!.floats, bias: inputs[2]?.floats,
            residual: inputs.count > 3 ? inputs[3]?.floats : nil, output: outputs[0].floats,
            activation: Activation.fused(in: ctx.node), workspace: workspace.assumingMemoryBound(to: Float.self))
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

    init(
        shape: ConvOperator.Shape, input: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
        bias: UnsafeMutablePointer<Float>?, residual: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>,
        activation: Activation, workspace: UnsafeMutablePointer<Float>
    ) {
        self.s = shape
        self.input = input
        self.weight = weight
        self.bias = bias
        self.residual = residual
        self.output = output
        self.activation = activation
        self.workspace = workspace
    }

    func execute() {
        let g = s.geometry
        let cg = s.channels / s.groups
        let mg = s.outChannels / s.groups
        let k = cg * g.kernelArea
        let outArea = g.outputArea
        let inArea = g.inputArea
        if s.groups > 1 && cg == 1 && mg == 1 {
            depthwise()
        } else if ConvOperator.usesBatchedColumns(s) {
            // All images side by side: one large GEMM [M, K] x [K, N*OHW].
            let columns = s.batch * outArea
            let cols = workspace
            let tmp = workspace + k * columns
            for n in 0..<s.batch {
                let x = input + n * s.channels * inArea
                if g.isPointwise {
                    for c in 0..<k { (cols + c * columns + n * outArea).update(from: x + c * inArea, count: outArea) }
                } else {
                    g.im2col(x, channels: cg, into: cols + n * outArea, ldc: columns)
                }
            }
            sgemm(m: s.outChannels, n: columns, k: k, a: weight, lda: k, b: cols, ldb: columns, c: tmp, ldc: columns)
            for n in 0..<s.batch {
                for m in 0..<s.outChannels {
                    let dst = output + (n * s.outChannels + m) * outArea
                    dst.update(from: tmp + m * columns + n * outArea, count: outArea)
                }
            }
        } else {
            for n in 0..<s.batch {
                for grp in 0..<s.groups {
                    let x = input + (n * s.channels + grp * cg) * inArea
                    let y = output + (n * s.outChannels + grp * mg) * outArea
                    let cols: UnsafeMutablePointer<Float>
                    if g.isPointwise {
                        cols = x
                    } else {
                        g.im2col(x, channels: cg, into: workspace, ldc: outArea)
                        cols = workspace
                    }
                    sgemm(m: mg, n: outArea, k: k, a: weight + grp * mg * k, lda: k, b: cols, ldb: outArea, c: y, ldc: outArea)
                }
            }
        }
        epilogue(output, channels: s.outChannels, area: outArea, batch: s.batch, bias: bias, residual: residual, activation: activation)
    }

    private func depthwise() {
        let g = s.geometry
        let (ih, iw) = g.input
        let (oh, ow) = g.output
        for n in 0..<s.batch {
            for c in 0..<s.channels {
                let x = input + (n * s.channels + c) * ih * iw
                let y = output + (n * s.channels + c) * oh * ow
                let w = weight + c * g.kernelArea
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc: Float = 0
                        for ki in 0..<g.kernel.h {
                            let iy = oy * g.stride.h - g.padTop + ki * g.dilation.h
                            if iy < 0 || iy >= ih { continue }
                            for kj in 0..<g.kernel.w {
                                let ix = ox * g.stride.w - g.padLeft + kj * g.dilation.w
                                if ix < 0 || ix >= iw { continue }
                                acc += x[iy * iw + ix] * w[ki * g.kernel.w + kj]
                            }
                        }
                        y[oy * ow + ox] = acc
                    }
                }
            }
        }
    }
}

/// Row-major C = A·B with `cblas_sgemm` (no transposes, alpha 1, beta 0).
@inline(__always)
func sgemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, transA: Bool = false, transB: Bool = false, alpha: Float = 1
) {
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// Adds a per-channel bias and an optional same-shaped residual, then applies the
/// activation, over an NC(area) tensor in one pass.
func epilogue(
    _ y: UnsafeMutablePointer<Float>, channels: Int, area: Int, batch: Int, bias: UnsafeMutablePointer<Float>?,
    residual: UnsafeMutablePointer<Float>?, activation: Activation
) {
    if bias == nil && residual == nil && activation == .none { return }
    for n in 0..<batch {
        for c in 0..<channels {
            let row = y + (n * channels + c) * area
            let b = bias?[c] ?? 0
            if let residual {
                let r = residual + (n * channels + c) * area
                for i in 0..<area { row[i] += b + r[i] }
            } else if b != 0 {
                for i in 0..<area { row[i] += b }
            }
            switch activation {
            case .none: break
            case .relu: for i in 0..<area { row[i] = Swift.max(row[i], 0) }
            default: activation.apply(row, area)
            }
        }
    }
}
