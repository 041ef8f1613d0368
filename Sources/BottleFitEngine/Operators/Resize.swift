import BottleFitCore
import Foundation

/// ONNX Resize, float32, any rank: modes nearest (every nearest_mode) and linear (N-linear),
/// with the coordinate transformations half_pixel, pytorch_half_pixel, align_corners,
/// asymmetric and tf_half_pixel_for_nn. Scales or sizes must be known before inference.
/// Cubic, tf_crop_and_resize, antialias and aspect-ratio policies other than stretch are
/// refused by name. Opset 10's form (scales only, asymmetric) is read too.
enum ResizeOperator: Operator {
    static let attributes: Set<String> = [
        "mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
        "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy",
    ]

    /// For one axis: the two input indices each output index reads and the weight of the second.
    struct AxisMap {
        var lo: [Int]
        var hi: [Int]
        var weight: [Float]
    }

    static func plan(_ ctx: NodeContext, _ shape: [Int]) throws(EngineError) -> (out: [Int], maps: [AxisMap]) {
        let rank = shape.count
        let mode = try ctx.string("mode", default: "nearest")
        guard mode == "nearest" || mode == "linear" else { throw ctx.unsupported("mode", mode) }
        let transform = ctx.opset < 11 ? "asymmetric" : try ctx.string("coordinate_transformation_mode", default: "half_pixel")
        guard ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"].contains(transform) else {
            throw ctx.unsupported("coordinate_transformation_mode", transform)
        }
        let nearest = ctx.opset < 11 ? "simple" : try ctx.string("nearest_mode", default: "round_prefer_floor")
        guard ["simple", "round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(nearest) else {
            throw ctx.unsupported("nearest_mode", nearest)
        }
        if try ctx.int("antialias", default: 0) != 0 { throw ctx.unsupported("antialias", 1) }
        let policy = try ctx.string("keep_aspect_ratio_policy", default: "stretch")
        guard policy == "stretch" else { throw ctx.unsupported("keep_aspect_ratio_policy", policy) }

        var axes = Array(0..<rank)
        if let given = try ctx.ints("axes") {
            axes = []
            for a in given { axes.append(try normalizeAxis(a, rank: rank, ctx)) }
        }
        // Scales (per resized axis) and the output shape.
        var scales = [Float](repeating: 1, count: rank)
        var out = shape
        let scalesInput = ctx.opset < 11 ? 1 : 2
        let given = ctx.input(scalesInput).map { $0.count > 0 } ?? false
        if given {
            guard let t = ctx.constant(scalesInput), let v = t.floats, v.count == axes.count else {
                throw .invalidModel("Resize node '\(ctx.name)': scales must be \(axes.count) floats known before inference")
            }
            for (k, a) in axes.enumerated() {
                scales[a] = v[k]
                out[a] = Int((Float(shape[a]) * v[k]).rounded(.down))
            }
        } else {
            let sizes = try ctx.constantInts(3, what: "sizes")
            guard sizes.count == axes.count else { throw .invalidModel("Resize node '\(ctx.name)': \(sizes.count) sizes for \(axes.count) axes") }
            for (k, a) in axes.enumerated() {
                out[a] = sizes[k]
                scales[a] = Float(sizes[k]) / Float(shape[a])
            }
        }
        var maps: [AxisMap] = []
        for a in 0..<rank {
            let n = shape[a], m = out[a], scale = scales[a]
            var map = AxisMap(lo: [], hi: [], weight: [])
            for o in 0..<m {
                let x = Float(o)
                let original: Float = switch transform {
                case "half_pixel": (x + 0.5) / scale - 0.5
                case "pytorch_half_pixel": m > 1 ? (x + 0.5) / scale - 0.5 : 0
                // The resized length before flooring, as ONNX Runtime and the reference do.
                case "align_corners": m == 1 ? 0 : x * Float(n - 1) / (Float(n) * scale - 1)
                case "tf_half_pixel_for_nn": (x + 0.5) / scale
                default: x / scale
                }
                if mode == "nearest" {
                    var i: Float = switch nearest {
                    case "floor": original.rounded(.down)
                    case "ceil": original.rounded(.up)
                    case "round_prefer_ceil": original.rounded(.toNearestOrAwayFromZero)
                    case "simple": scale < 1 ? original.rounded(.up) : original.rounded(.down)
                    default:  // round_prefer_floor
                        original == original.rounded(.down) + 0.5 ? original.rounded(.down) : original.rounded()
                    }
                    i = Swift.min(Swift.max(i, 0), Float(n - 1))
                    map.lo.append(Int(i))
                    map.hi.append(Int(i))
                    map.weight.append(0)
                } else {
                    let c = Swift.min(Swift.max(original, 0), Float(n - 1))
                    let lo = Int(c.rounded(.down))
                    map.lo.append(lo)
                    map.hi.append(Swift.min(lo + 1, n - 1))
                    map.weight.append(c - Float(lo))
                }
            }
            maps.append(map)
        }
        return (out, maps)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.requireType(0, [.float32])
        return [ValueType(.float32, try plan(ctx, x.shape).out)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        return ResizeKernel(x: x.floats, y: outputs[0].floats, inShape: x.shape, outShape: outputs[0].shape, maps: try plan(ctx, x.shape).maps)
    }
}

final class ResizeKernel: Kernel {
    let x, y: UnsafeMutablePointer<Float>
    let outShape, inStrides: [Int]
    let maps: [ResizeOperator.AxisMap]
    var index: [Int]
    /// The input offsets and weights one output row combines (outer axes only).
    var terms: [(offset: Int, weight: Float)] = []

    init(x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, inShape: [Int], outShape: [Int], maps: [ResizeOperator.AxisMap]) {
        self.x = x
        self.y = y
        self.outShape = outShape
        var s = [Int](repeating: 1, count: inShape.count)
        for i in stride(from: inShape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * inShape[i + 1] }
        inStrides = s
        self.maps = maps
        index = [Int](repeating: 0, count: outShape.count)
        terms.reserveCapacity(1 << Swift.max(0, outShape.count - 1))
    }

    func execute(_ parallel: Parallel) {
        let count = outShape.reduce(1, *)
        let r = outShape.count
        guard count > 0, r > 0 else { if r == 0 { y[0] = x[0] }; return }
        for i in 0..<r { index[i] = 0 }
        let inner = outShape[r - 1], last = maps[r - 1]
        var dst = y
        var row = 0
        while row < count {
            terms.removeAll(keepingCapacity: true)
            terms.append((0, 1))
            for a in 0..<(r - 1) {
                let m = maps[a], o = index[a], w = m.weight[o]
                let n = terms.count
                for t in 0..<n {
                    let (off, tw) = terms[t]
                    terms[t] = (off + m.lo[o] * inStrides[a], tw * (1 - w))
                    if w != 0 { terms.append((off + m.hi[o] * inStrides[a], tw * w)) }
                }
            }
            for j in 0..<inner {
                let lo = last.lo[j], hi = last.hi[j], w = last.weight[j]
                var v: Float = 0
                for (off, tw) in terms {
                    let p = x + off
                    v += tw * (w == 0 ? p[lo] : p[lo] * (1 - w) + p[hi] * w)
                }
                dst[j] = v
            }
            dst += inner
            row += inner
            var axis = r - 2
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
