import BottleFitCore

/// Window geometry of a 1-D or 2-D sliding-window operator (Conv, ConvTranspose, pooling),
/// with ONNX's `auto_pad`, explicit (possibly asymmetric) `pads`, `strides`, `dilations`.
/// 1-D is handled as 2-D with height 1.
struct SpatialGeometry: Equatable {
    var kernel: (h: Int, w: Int)
    var stride: (h: Int, w: Int)
    var dilation: (h: Int, w: Int)
    /// Padding at the start and end of each axis.
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    var input: (h: Int, w: Int)
    var output: (h: Int, w: Int)

    static func == (a: Self, b: Self) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.dilation == b.dilation && a.padTop == b.padTop
            && a.padLeft == b.padLeft && a.padBottom == b.padBottom && a.padRight == b.padRight
            && a.input == b.input && a.output == b.output
    }

    /// Reads the attributes of a windowed node whose input has spatial size `spatial` (1 or 2 dims).
    /// `kernelShape` is the kernel's spatial size when known from the weights.
    static func forward(
        _ ctx: NodeContext, spatial: [Int], kernelShape: [Int]?, ceilMode: Bool = false
    ) throws(EngineError) -> SpatialGeometry {
        let d = spatial.count
        guard d == 1 || d == 2 else {
            throw ctx.unsupported("spatial rank", "\(d) (only 1-D and 2-D are supported)")
        }
        let k = try ctx.ints("kernel_shape") ?? kernelShape
        guard let k, k.count == d, k.allSatisfy({ $0 > 0 }) else {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': kernel_shape missing or not \(d)-D")
        }
        if let ks = kernelShape, ks != k {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': kernel_shape \(k) disagrees with the weights \(ks)")
        }
        let s = try ctx.ints("strides") ?? Array(repeating: 1, count: d)
        let dl = try ctx.ints("dilations") ?? Array(repeating: 1, count: d)
        guard s.count == d, dl.count == d, s.allSatisfy({ $0 > 0 }), dl.allSatisfy({ $0 > 0 }) else {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': strides/dilations must be \(d) positive values")
        }
        var pads = try ctx.ints("pads") ?? Array(repeating: 0, count: 2 * d)
        guard pads.count == 2 * d, pads.allSatisfy({ $0 >= 0 }) else {
            throw .invalidModel("\(ctx.op) node '\(ctx.name)': pads must be \(2 * d) non-negative values")
        }
        let autoPad = try ctx.string("auto_pad", default: "NOTSET")
        var out = [Int](repeating: 0, count: d)
        for i in 0..<d {
            let effective = (k[i] - 1) * dl[i] + 1
            switch autoPad {
            case "NOTSET":
                let span = spatial[i] + pads[i] + pads[i + d] - effective
                guard span >= 0 else {
                    throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': window \(effective) larger than padded input \(spatial[i] + pads[i] + pads[i + d])")
                }
                if ceilMode {
                    var o = (span + s[i] - 1) / s[i] + 1
                    // The last window must start inside the input or its leading padding.
                    if (o - 1) * s[i] >= spatial[i] + pads[i] { o -= 1 }
                    out[i] = o
                } else {
                    out[i] = span / s[i] + 1
                }
            case "VALID":
                pads[i] = 0
                pads[i + d] = 0
                guard spatial[i] >= effective else {
                    throw .shapeMismatch("\(ctx.op) node '\(ctx.name)': window \(effective) larger than input \(spatial[i])")
                }
                out[i] = (spatial[i] - effective) / s[i] + 1
            case "SAME_UPPER", "SAME_LOWER":
                out[i] = (spatial[i] + s[i] - 1) / s[i]
                let total = Swift.max(0, (out[i] - 1) * s[i] + effective - spatial[i])
                let small = total / 2
                if autoPad == "SAME_UPPER" {
                    pads[i] = small
                    pads[i + d] = total - small
                } else {
                    pads[i] = total - small
                    pads[i + d] = small
                }
            default:
                throw ctx.unsupported("auto_pad", autoPad)
            }
        }
        if d == 1 {
            return SpatialGeometry(
                kernel: (1, k[0]), stride: (1, s[0]), dilation: (1, dl[0]), padTop: 0, padLeft: pads[0],
                padBottom: 0, padRight: pads[1], input: (1, spatial[0]), output: (1, out[0]))
        }
        return SpatialGeometry(
            kernel: (k[0], k[1]), stride: (s[0], s[1]), dilation: (dl[0], dl[1]), padTop: pads[0], padLeft: pads[1],
            padBottom: pads[2], padRight: pads[3], input: (spatial[0], spatial[1]), output: (out[0], out[1]))
    }

    var outputSpatial: [Int] { [output.h, output.w] }
    var inputArea: Int { input.h * input.w }
    var outputArea: Int { output.h * output.w }
    var kernelArea: Int { kernel.h * kernel.w }

    /// True when the window is 1x1 with unit stride and no padding: the input is its own im2col.
    var isPointwise: Bool {
        kernel == (1, 1) && stride == (1, 1) && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }

    /// The kernel rows of output row `oy`'s window that fall inside the input (input row
    /// oy·stride − padTop + ki·dilation for ki in the range); empty when all are padding.
    func windowRows(outputRow oy: Int) -> Range<Int> {
        let y0 = oy * stride.h - padTop
        let dh = dilation.h
        let begin = y0 < 0 ? (-y0 + dh - 1) / dh : 0
        let end = Swift.min(kernel.h, y0 >= input.h ? 0 : (input.h - 1 - y0) / dh + 1)
        return begin < end ? begin..<end : begin..<begin
    }

    /// Expands one image's `channels` planes into columns: row (c, kh, kw), column (oh, ow),
    /// written with row stride `ldc` (the column count may exceed this image's area when
    /// several images share one matrix).
    func im2col(
        _ src: UnsafePointer<Float>, channels: Int, into dst: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let (ih, iw) = input
        let (oh, ow) = output
        var row = 0
        for c in 0..<channels {
            let plane = src + c * ih * iw
            for ki in 0..<kernel.h {
                for kj in 0..<kernel.w {
                    let rowPtr = dst + row * ldc
                    row += 1
                    let xOffset = kj * dilation.w - padLeft
                    // Valid output columns: 0 <= ow*sw + xOffset < iw.
                    var owBegin = 0
                    if xOffset < 0 { owBegin = (-xOffset + stride.w - 1) / stride.w }
                    var owEnd = iw - xOffset <= 0 ? 0 : (iw - xOffset - 1) / stride.w + 1
                    owEnd = Swift.min(owEnd, ow)
                    owBegin = Swift.min(owBegin, owEnd)
                    for y in 0..<oh {
                        let inY = y * stride.h - padTop + ki * dilation.h
                        let out = rowPtr + y * ow
                        if inY < 0 || inY >= ih {
                            out.update(repeating: 0, count: ow)
                            continue
                        }
                        let line = plane + inY * iw + xOffset
                        if owBegin > 0 { out.update(repeating: 0, count: owBegin) }
                        if stride.w == 1 {
                            (out + owBegin).update(from: line + owBegin, count: owEnd - owBegin)
                        } else {
                            var x = owBegin
                            while x < owEnd {
                                out[x] = line[x * stride.w]
                                x += 1
                            }
                        }
                        if owEnd < ow { (out + owEnd).update(repeating: 0, count: ow - owEnd) }
                    }
                }
            }
        }
    }

    /// Floats `splitColumnPhases` writes for `channels` planes.
    func phaseFloats(channels: Int) -> Int { channels * input.h * stride.w * ((input.w + stride.w - 1) / stride.w) }

    /// Splits every input row of planes `planes` into its `stride.w` column phases
    /// ([c][y][phase][x / stride.w]), so that im2col of a strided convolution copies
    /// contiguous runs instead of gathering every stride-th element.
    func splitColumnPhases(_ src: UnsafePointer<Float>, planes: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let (ih, iw) = input
        let sw = stride.w
        let width = (iw + sw - 1) / sw
        for c in planes {
            for y in 0..<ih {
                let line = src + (c * ih + y) * iw
                let out = dst + (c * ih + y) * sw * width
                if sw == 2 {
                    let pairs = iw / 2
                    deinterleave(line, pairs: pairs, even: out, odd: out + width)
                    if iw % 2 == 1 { out[pairs] = line[iw - 1] }
                } else {
                    for x in 0..<iw { out[(x % sw) * width + x / sw] = line[x] }
                }
            }
        }
    }

    /// im2col for output pixels `columns` (flattened oh·ow) only: row r of `dst` (stride
    /// `ldc`) holds rows `rows` of the full matrix restricted to those pixels. Blocks of
    /// columns keep the matrix in cache between this fill and the GEMM that reads it.
    /// With `phases` (the input split by `splitColumnPhases`), strided rows are contiguous
    /// copies from the phase instead of a gather.
    func im2col(
        _ src: UnsafePointer<Float>, rows: Range<Int>, columns: Range<Int>, into dst: UnsafeMutablePointer<Float>, ldc: Int,
        phases: UnsafePointer<Float>? = nil
    ) {
        let phaseWidth = (input.w + stride.w - 1) / stride.w
        let (ih, iw) = input
        let ow = output.w
        let area = kernel.h * kernel.w
        for row in rows {
            let c = row / area
            let ki = (row % area) / kernel.w
            let kj = row % kernel.w
            let plane = src + c * ih * iw
            let out = dst + (row - rows.lowerBound) * ldc - columns.lowerBound
            let xOffset = kj * dilation.w - padLeft
            var owBegin = 0
            if xOffset < 0 { owBegin = (-xOffset + stride.w - 1) / stride.w }
            let owEnd = Swift.min(iw - xOffset <= 0 ? 0 : (iw - xOffset - 1) / stride.w + 1, ow)
            owBegin = Swift.min(owBegin, owEnd)
            var p = columns.lowerBound
            while p < columns.upperBound {
                let y = p / ow
                let x0 = p - y * ow
                let x1 = Swift.min(ow, x0 + columns.upperBound - p)
                let inY = y * stride.h - padTop + ki * dilation.h
                let seg = out + y * ow
                if inY < 0 || inY >= ih {
                    (seg + x0).update(repeating: 0, count: x1 - x0)
                } else {
                    let line = plane + inY * iw + xOffset
                    let a = Swift.max(x0, owBegin), b = Swift.min(x1, owEnd)
                    if a > x0 { (seg + x0).update(repeating: 0, count: Swift.min(a, x1) - x0) }
                    if b > a {
                        if stride.w == 1 {
                            (seg + a).update(from: line + a, count: b - a)
                        } else if let phases {
                            // Input column x·sw + xOffset is column x + (xOffset - px)/sw of phase px.
                            let px = ((xOffset % stride.w) + stride.w) % stride.w
                            let phaseRow = phases + ((c * ih + inY) * stride.w + px) * phaseWidth + (xOffset - px) / stride.w
                            (seg + a).update(from: phaseRow + a, count: b - a)
                        } else {
                            var x = a
                            while x < b { seg[x] = line[x * stride.w]; x += 1 }
                        }
                    }
                    let tail = Swift.max(b, a, x0)
                    if tail < x1 { (seg + tail).update(repeating: 0, count: x1 - tail) }
                }
                p += x1 - x0
            }
        }
    }
}

/// even[i] = src[2i] and odd[i] = src[2i + 1] for i < pairs: a strided row split into its
/// two column phases, 16 floats at a time.
@inline(__always)
func deinterleave(_ src: UnsafePointer<Float>, pairs: Int, even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= pairs {
        let v = UnsafeRawPointer(src + 2 * i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(even + i).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(odd + i).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
        i += 8
    }
    while i < pairs {
        even[i] = src[2 * i]
        odd[i] = src[2 * i + 1]
        i += 1
    }
}
