import BottleFitCore

/// ONNX Pad: constant, reflect and edge modes, any rank and element type. Pads (and the
/// constant, and opset 18's axes) are attributes before opset 11 and constant inputs from
/// then on; negative pads crop.
enum PadOperator: Operator {
    static let attributes: Set<String> = ["mode", "pads", "value"]

    enum Mode { case constant, reflect, edge }

    struct Layout {
        var mode: Mode
        var begin: [Int]
        var end: [Int]
        var value: Double
    }

    static func layout(_ ctx: NodeContext, _ x: ValueType) throws(EngineError) -> Layout {
        let rank = x.shape.count
        let mode: Mode = switch try ctx.string("mode", default: "constant") {
        case "constant": .constant
        case "reflect": .reflect
        case "edge": .edge
        case let other: throw ctx.unsupported("mode", other)
        }
        var pads: [Int]
        var value = 0.0
        if ctx.opset < 11 {
            pads = try ctx.ints("pads") ?? []
            value = Double(try ctx.float("value", default: 0))
        } else {
            pads = try ctx.constantInts(1, what: "pads")
            if ctx.input(2) != nil {
                guard let t = ctx.constant(2) else {
                    throw .invalidModel("Pad node '\(ctx.name)': constant_value (input 2) must be known before inference")
                }
                value = t.doubles.first ?? 0
            }
        }
        var begin = [Int](repeating: 0, count: rank), end = begin
        var axes = Array(0..<rank)
        if ctx.input(3) != nil {
            axes = []
            for a in try ctx.constantInts(3, what: "axes") { axes.append(try normalizeAxis(a, rank: rank, ctx)) }
        }
        guard pads.count == 2 * axes.count else {
            throw .invalidModel("Pad node '\(ctx.name)': \(pads.count) pads for \(axes.count) axes")
        }
        for (i, a) in axes.enumerated() {
            begin[a] = pads[i]
            end[a] = pads[i + axes.count]
        }
        for a in 0..<rank where mode != .constant && (begin[a] != 0 || end[a] != 0) {
            // Reflect needs two elements, edge one, on every padded axis.
            if x.shape[a] < (mode == .reflect ? 2 : 1) {
                throw .shapeMismatch("Pad node '\(ctx.name)': axis \(a) of \(x.shape) is too short to pad by \(begin[a]), \(end[a]) in this mode")
            }
        }
        return Layout(mode: mode, begin: begin, end: end, value: value)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        let l = try layout(ctx, x)
        var out = x.shape
        for a in out.indices {
            out[a] += l.begin[a] + l.end[a]
            guard out[a] >= 0 else { throw .shapeMismatch("Pad node '\(ctx.name)': axis \(a) would be negative") }
        }
        return [ValueType(x.elementType, out)]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!, y = outputs[0]
        let l = try layout(ctx, x.type)
        // For every axis, the input index each output index reads (−1: the constant).
        let maps = (0..<x.shape.count).map { a in
            (0..<y.shape[a]).map { o -> Int in
                let n = x.shape[a]
                var i = o - l.begin[a]
                if l.begin[a] == 0 && l.end[a] == 0 { return i }
                switch l.mode {
                case .constant: return i >= 0 && i < n ? i : -1
                case .edge: return Swift.min(Swift.max(i, 0), n - 1)
                case .reflect:
                    let period = 2 * (n - 1)
                    i = ((i % period) + period) % period
                    return i < n ? i : period - i
                }
            }
        }
        let element = x.type.elementType.byteSize
        var fill = [UInt8](repeating: 0, count: element)
        switch x.type.elementType {
        case .float32: withUnsafeBytes(of: Float(l.value)) { fill = Array($0) }
        case .int64: withUnsafeBytes(of: Int64(l.value)) { fill = Array($0) }
        case .uint8: fill = [UInt8(clamping: Int(l.value))]
        }
        return GatherMapKernel(x: x.pointer, y: y.pointer, inShape: x.shape, outShape: y.shape, maps: maps, element: element, fill: fill)
    }
}

/// Copies an output whose every element reads one input element chosen per axis (or a fill
/// value where a map says −1): Pad and Slice.
final class GatherMapKernel: Kernel {
    let x, y: UnsafeMutableRawPointer
    let outShape: [Int]
    let inStrides: [Int]
    let maps: [[Int]]
    let element: Int
    let fill: [UInt8]
    var index: [Int]
    /// The output's trailing axes from `runAxis` on read one contiguous run of the input:
    /// `runLength` elements from input element `runStart` (relative to the outer axes'
    /// offset). A Slice of whole channels is one such run per image.
    let runAxis: Int
    let runLength: Int
    let runStart: Int

    init(x: UnsafeMutableRawPointer, y: UnsafeMutableRawPointer, inShape: [Int], outShape: [Int], maps: [[Int]], element: Int, fill: [UInt8]) {
        self.x = x
        self.y = y
        self.outShape = outShape
        var s = [Int](repeating: 1, count: inShape.count)
        for i in stride(from: inShape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * inShape[i + 1] }
        inStrides = s
        self.maps = maps
        self.element = element
        self.fill = fill
        index = [Int](repeating: 0, count: outShape.count)
        // Whole axes from the end, then at most one axis that reads a consecutive range.
        var axis = inShape.count, length = 1, start = 0
        while axis > 0 {
            let m = maps[axis - 1]
            guard let first = m.first, first >= 0, m.last! - first == m.count - 1,
                zip(m, m.dropFirst()).allSatisfy({ $0 + 1 == $1 })
            else { break }
            axis -= 1
            length *= m.count
            start = first * s[axis]
            if m.count != inShape[axis] { break }
        }
        runAxis = axis
        runLength = length
        runStart = start
    }

    func execute(_ parallel: Parallel) {
        let count = outShape.reduce(1, *)
        guard count > 0 else { return }
        let r = outShape.count
        if r == 0 { y.copyMemory(from: x, byteCount: element); return }
        if runAxis < r && runLength >= 16 {
            copyRuns(parallel)
            return
        }
        for i in 0..<r { index[i] = 0 }
        let inner = outShape[r - 1]
        let last = maps[r - 1]
        var dst = y
        var row = 0
        while row < count {
            // The row's input offset, or none when an outer axis reads the fill value.
            var base = 0
            var filled = false
            for a in 0..<(r - 1) {
                let i = maps[a][index[a]]
                if i < 0 { filled = true; break }
                base += i * inStrides[a]
            }
            if element == 4 {
                let d = dst.assumingMemoryBound(to: UInt32.self)
                let s = x.assumingMemoryBound(to: UInt32.self) + base
                let f = fill.withUnsafeBytes { $0.load(as: UInt32.self) }
                for j in 0..<inner {
                    let i = last[j]
                    d[j] = filled || i < 0 ? f : s[i]
                }
            } else {
                for j in 0..<inner {
                    let i = last[j]
                    let d = dst + j * element
                    if filled || i < 0 {
                        fill.withUnsafeBytes { d.copyMemory(from: $0.baseAddress!, byteCount: element) }
                    } else {
                        d.copyMemory(from: x + (base + i) * element, byteCount: element)
                    }
                }
            }
            dst += inner * element
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

extension GatherMapKernel {
    /// One block copy (or fill) per index of the axes before `runAxis`, split over the threads.
    fileprivate func copyRuns(_ parallel: Parallel) {
        let outer = outShape[..<runAxis].reduce(1, *)
        let bytes = runLength * element
        let x = x, y = y, element = element, outShape = outShape, maps = maps, inStrides = inStrides, fill = fill
        let runAxis = runAxis, runStart = runStart
        parallel.forEach(outer, minimumPerThread: Swift.max(1, 16384 / Swift.max(bytes, 1))) { range in
            for o in range {
                var rest = o, base = runStart, filled = false
                for axis in stride(from: runAxis - 1, through: 0, by: -1) {
                    let i = maps[axis][rest % outShape[axis]]
                    rest /= outShape[axis]
                    if i < 0 { filled = true; break }
                    base += i * inStrides[axis]
                }
                let dst = y + o * bytes
                if !filled {
                    dst.copyMemory(from: x + base * element, byteCount: bytes)
                } else {
                    fill.withUnsafeBytes { f in
                        for j in 0..<runLength { (dst + j * element).copyMemory(from: f.baseAddress!, byteCount: element) }
                    }
                }
            }
        }
    }
}

/// ONNX Slice with constant starts, ends, axes and steps (inputs from opset 10, attributes
/// before), any element type; out-of-range bounds clamp as the operator defines.
enum SliceOperator: Operator {
    static let attributes: Set<String> = ["starts", "ends", "axes"]

    /// Per axis, the input indices the output reads.
    static func maps(_ ctx: NodeContext, _ shape: [Int]) throws(EngineError) -> [[Int]] {
        let rank = shape.count
        let starts, ends: [Int]
        var axes: [Int]?, steps: [Int]?
        if ctx.opset < 10 {
            guard let s = try ctx.ints("starts"), let e = try ctx.ints("ends") else {
                throw .invalidModel("Slice node '\(ctx.name)' needs starts and ends")
            }
            starts = s
            ends = e
            axes = try ctx.ints("axes")
        } else {
            starts = try ctx.constantInts(1, what: "starts")
            ends = try ctx.constantInts(2, what: "ends")
            if ctx.input(3) != nil { axes = try ctx.constantInts(3, what: "axes") }
            if ctx.input(4) != nil { steps = try ctx.constantInts(4, what: "steps") }
        }
        let axisList = axes ?? Array(0..<starts.count)
        guard starts.count == ends.count, axisList.count == starts.count, (steps?.count ?? starts.count) == starts.count else {
            throw .invalidModel("Slice node '\(ctx.name)': starts, ends, axes and steps differ in length")
        }
        var maps = shape.map { Array(0..<$0) }
        var seen = Set<Int>()
        for (k, given) in axisList.enumerated() {
            let a = try normalizeAxis(given, rank: rank, ctx)
            guard seen.insert(a).inserted else { throw .invalidModel("Slice node '\(ctx.name)': axis \(a) repeated") }
            let n = shape[a]
            let step = steps?[k] ?? 1
            guard step != 0 else { throw .invalidModel("Slice node '\(ctx.name)': step 0") }
            var s = starts[k] < 0 ? starts[k] + n : starts[k]
            var e = ends[k] < 0 ? ends[k] + n : ends[k]
            if step > 0 {
                s = Swift.min(Swift.max(s, 0), n)
                e = Swift.min(Swift.max(e, 0), n)
                maps[a] = s < e ? Array(stride(from: s, to: e, by: step)) : []
            } else {
                s = Swift.min(Swift.max(s, 0), n - 1)
                e = Swift.min(Swift.max(e, -1), n - 1)
                maps[a] = s > e ? Array(stride(from: s, to: e, by: step)) : []
            }
        }
        return maps
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        return [ValueType(x.elementType, try maps(ctx, x.shape).map(\.count))]
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        return GatherMapKernel(
            x: x.pointer, y: outputs[0].pointer, inShape: x.shape, outShape: outputs[0].shape, maps: try maps(ctx, x.shape),
            element: x.type.elementType.byteSize, fill: [UInt8](repeating: 0, count: x.type.elementType.byteSize))
    }
}

/// ONNX Split along one axis into parts given by `split` (an input from opset 13, an
/// attribute before), by opset 18's `num_outputs`, or into equal parts; any element type.
enum SplitOperator: Operator {
    static let attributes: Set<String> = ["axis", "split", "num_outputs"]

    static func sizes(_ ctx: NodeContext, _ x: ValueType) throws(EngineError) -> (axis: Int, sizes: [Int]) {
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: x.shape.count, ctx)
        let n = x.shape[axis]
        let parts = ctx.node.outputs.count
        var sizes: [Int]
        if ctx.opset >= 13, ctx.input(1) != nil {
            sizes = try ctx.constantInts(1, what: "split")
        } else if ctx.opset < 13, let s = try ctx.ints("split") {
            sizes = s
        } else if ctx.node.attributes["num_outputs"] != nil {
            // Opset 18: ceil(n / k) each, the last one smaller.
            let k = try ctx.int("num_outputs", default: parts)
            let size = (n + k - 1) / Swift.max(k, 1)
            sizes = (0..<k).map { Swift.max(0, Swift.min(size, n - $0 * size)) }
        } else {
            guard parts > 0, n % parts == 0 else {
                throw .shapeMismatch("Split node '\(ctx.name)': axis of size \(n) does not split into \(parts) equal parts")
            }
            sizes = [Int](repeating: n / parts, count: parts)
        }
        guard sizes.count == parts, sizes.reduce(0, +) == n, sizes.allSatisfy({ $0 >= 0 }) else {
            throw .shapeMismatch("Split node '\(ctx.name)': parts \(sizes) do not split an axis of \(n) into \(parts) outputs")
        }
        return (axis, sizes)
    }

    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType] {
        let x = try ctx.required(0)
        let (axis, sizes) = try sizes(ctx, x)
        return sizes.map { s in
            var shape = x.shape
            shape[axis] = s
            return ValueType(x.elementType, shape)
        }
    }

    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    {
        let x = inputs[0]!
        let (axis, sizes) = try sizes(ctx, x.type)
        let inner = x.shape[(axis + 1)...].reduce(1, *) * x.type.elementType.byteSize
        return SplitKernel(
            x: x.pointer, parts: zip(ctx.node.outputs, zip(outputs, sizes)).map { ($0.isEmpty ? nil : $1.0.pointer, $1.1 * inner) },
            outer: x.shape[..<axis].reduce(1, *))
    }
}

/// Concat's inverse: each outer block of the input is cut into the parts in turn.
final class SplitKernel: Kernel {
    let x: UnsafeMutableRawPointer
    /// Each output (nil when unused: skipped) and its bytes per outer block.
    let parts: [(UnsafeMutableRawPointer?, Int)]
    let outer: Int

    init(x: UnsafeMutableRawPointer, parts: [(UnsafeMutableRawPointer?, Int)], outer: Int) {
        self.x = x
        self.parts = parts
        self.outer = outer
    }

    func execute(_ parallel: Parallel) {
        var src = x
        for o in 0..<outer {
            for (dst, bytes) in parts {
                dst.map { ($0 + o * bytes).copyMemory(from: src, byteCount: bytes) }
                src += bytes
            }
        }
    }
}
