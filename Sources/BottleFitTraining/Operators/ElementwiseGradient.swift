import BottleFitEngine

/// Relu: y = max(x, 0); the gradient passes where the output is positive.
struct ReluGradient: TrainableOperator {
    init(_ node: Node) throws(TrainingError) { _ = try AttributeReader(node, allowed: []) }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        var y = inputs[0]
        y.data.withUnsafeMutableBufferPointer { p in
            TrainingThreads.forEach(p.count, minimumPerPart: 65536) { range in
                for i in range { p[i] = p[i] > 0 ? p[i] : 0 }
            }
        }
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        guard needs[0] else { return [nil] }
        var dx = dy
        dx.data.withUnsafeMutableBufferPointer { g in
            output.data.withUnsafeBufferPointer { y in
                TrainingThreads.forEach(g.count, minimumPerPart: 65536) { range in
                    for i in range { g[i] = y[i] > 0 ? g[i] : 0 }
                }
            }
        }
        return [dx]
    }
}

/// Add with NumPy broadcasting; each input's gradient is the output gradient summed over
/// the axes that input was broadcast along.
struct AddGradient: TrainableOperator {
    init(_ node: Node) throws(TrainingError) { _ = try AttributeReader(node, allowed: []) }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let a = inputs[0], b = inputs[1]
        if a.shape == b.shape {
            var y = a
            y.accumulate(b)
            return ForwardOutput(output: y)
        }
        guard let shape = broadcast(a.shape, b.shape) else {
            throw .shapeMismatch("Add: \(a.shape) and \(b.shape) do not broadcast")
        }
        var y = Buffer(zeros: shape)
        let ia = BroadcastIndex(from: a.shape, to: shape), ib = BroadcastIndex(from: b.shape, to: shape)
        for i in 0..<y.count { y.data[i] = a.data[ia.source(i)] + b.data[ib.source(i)] }
        return ForwardOutput(output: y)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        (0..<2).map { k in
            guard needs[k] else { return nil }
            if inputs[k].shape == dy.shape { return dy }
            var g = Buffer(zeros: inputs[k].shape)
            let index = BroadcastIndex(from: inputs[k].shape, to: dy.shape)
            for i in 0..<dy.count { g.data[index.source(i)] += dy.data[i] }
            return g
        }
    }
}

/// The broadcast shape of two shapes (NumPy rules), or nil.
func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    let pa = Array(repeating: 1, count: rank - a.count) + a
    let pb = Array(repeating: 1, count: rank - b.count) + b
    var out: [Int] = []
    for (x, y) in zip(pa, pb) {
        guard x == y || x == 1 || y == 1 else { return nil }
        out.append(x == 1 ? y : x)
    }
    return out
}

/// Maps a flat index of the broadcast output to the flat index of one input.
struct BroadcastIndex {
    let outShape: [Int]
    let strides: [Int]  // the input's strides, 0 along broadcast axes, aligned to outShape

    init(from input: [Int], to output: [Int]) {
        outShape = output
        let padded = Array(repeating: 1, count: output.count - input.count) + input
        var s = Array(repeating: 0, count: output.count)
        var step = 1
        for axis in stride(from: output.count - 1, through: 0, by: -1) {
            s[axis] = padded[axis] == 1 ? 0 : step
            step *= padded[axis]
        }
        strides = s
    }

    func source(_ flat: Int) -> Int {
        var rest = flat, index = 0
        for axis in stride(from: outShape.count - 1, through: 0, by: -1) {
            index += (rest % outShape[axis]) * strides[axis]
            rest /= outShape[axis]
        }
        return index
    }
}
