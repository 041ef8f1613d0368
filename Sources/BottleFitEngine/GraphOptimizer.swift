import BottleFitCore

/// Load-time rewrites that do not depend on input shapes: pass-through removal,
/// BatchNormalization folded into the preceding Conv, average pooling moved in front of the
/// pointwise Conv it follows, activations fused into their producer, and removal of what
/// nothing uses. Shape-dependent rewrites (constant
/// folding of shape arithmetic, residual Add fused into Conv) happen when a plan is made.
public enum GraphOptimizer {
    public static func optimize(_ input: Graph) -> Graph {
        var g = input
        foldConstantNodes(&g)
        removePassThrough(&g)
        foldBatchNorm(&g)
        poolBeforePointwiseConv(&g)
        fuseSiLU(&g)
        fuseActivations(&g)
        removeUnused(&g)
        return g
    }

    static func graphOutputs(_ g: Graph) -> Set<String> { Set(g.outputs.map(\.name)) }

    static func rename(_ old: String, to new: String, in g: inout Graph) {
        for i in g.nodes.indices {
            for j in g.nodes[i].inputs.indices where g.nodes[i].inputs[j] == old { g.nodes[i].inputs[j] = new }
        }
    }

    /// Constant nodes become initializers, so that what reads them sees constants at load time
    /// (torch exports Clip's bounds for ReLU6 as Constant nodes; the Clip then fuses).
    static func foldConstantNodes(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        g.nodes.removeAll { n in
            guard n.opType == "Constant", n.outputs.count == 1, !outputs.contains(n.outputs[0]), g.initializers[n.outputs[0]] == nil,
                n.attributes.count == 1, let value = n.attributes.first?.value
            else { return false }
            let t: Tensor
            switch value {
            case .tensor(let v): t = v
            case .float(let v): t = Tensor(shape: [], floats: [v])
            case .floats(let v): t = Tensor(shape: [v.count], floats: v)
            case .int(let v): t = Tensor(shape: [], int64s: [Int64(v)])
            case .ints(let v): t = Tensor(shape: [v.count], int64s: v.map { Int64($0) })
            default: return false
            }
            g.initializers[n.outputs[0]] = t
            return true
        }
    }

    /// Identity, inference Dropout and zero Pad nodes disappear; their consumers read the
    /// input directly.
    static func removePassThrough(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        var i = 0
        while i < g.nodes.count {
            let n = g.nodes[i]
            let isPassThrough =
                (n.opType == "Identity" || (n.opType == "Dropout" && n.input(2) == nil && n.outputs.count == 1) || isZeroPad(n, g))
                && n.outputs.count == 1 && !outputs.contains(n.outputs[0]) && n.input(0) != nil
            if isPassThrough {
                g.nodes.remove(at: i)
                rename(n.outputs[0], to: n.inputs[0], in: &g)
            } else {
                i += 1
            }
        }
    }

    /// A Pad that adds nothing: constant pads (input 1, or the `pads` attribute before opset
    /// 11) all zero, whatever its mode. torch exports one in front of every AvgPool2d
    /// (DenseNet's transitions), where it would only copy the tensor and hide the pool's
    /// producer from `poolBeforePointwiseConv`.
    static func isZeroPad(_ n: Node, _ g: Graph) -> Bool {
        guard n.opType == "Pad" else { return false }
        if let name = n.input(1) {
            guard let pads = g.initializers[name]?.int64s, !pads.isEmpty else { return false }
            return pads.allSatisfy { $0 == 0 }
        }
        guard case .ints(let pads)? = n.attributes["pads"] else { return false }
        return pads.allSatisfy { $0 == 0 }
    }

    /// Conv → BatchNormalization with constant parameters becomes one Conv with
    /// W' = W·γ/√(σ²+ε) and b' = (b − μ)·γ/√(σ²+ε) + β.
    static func foldBatchNorm(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        var consumers = g.consumers()
        var producers = g.producers()
        var removed = Set<Int>()
        for (bi, bn) in g.nodes.enumerated() where bn.opType == "BatchNormalization" {
            guard bn.outputs.count == 1, let x = bn.input(0), let ci = producers[x], g.nodes[ci].opType == "Conv",
                consumers[x]?.count == 1, !outputs.contains(x),
                (bn.attributes["training_mode"].map { $0 == .int(0) } ?? true)
            else { continue }
            let conv = g.nodes[ci]
            guard let wName = conv.input(1), let w = g.initializers[wName]?.floats,
                let gamma = g.initializers[bn.inputs[1]]?.floats, let beta = g.initializers[bn.inputs[2]]?.floats,
                let mean = g.initializers[bn.inputs[3]]?.floats, let variance = g.initializers[bn.inputs[4]]?.floats
            else { continue }
            let m = gamma.count
            guard m > 0, w.count % m == 0, g.initializers[wName]!.shape.first == m else { continue }
            var bias = [Float](repeating: 0, count: m)
            if let bName = conv.input(2) {
                guard let b = g.initializers[bName]?.floats, b.count == m else { continue }
                bias = b
            }
            var eps: Float = 1e-5
            if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
            let per = w.count / m
            var newW = w
            var newB = bias
            for c in 0..<m {
                let a = gamma[c] / (variance[c] + eps).squareRoot()
                for j in 0..<per { newW[c * per + j] *= a }
                newB[c] = (bias[c] - mean[c]) * a + beta[c]
            }
            let base = conv.name.isEmpty ? conv.outputs[0] : conv.name
            let wNew = uniqueName("\(base).folded_weight", in: g)
            g.initializers[wNew] = Tensor(shape: g.initializers[wName]!.shape, floats: newW)
            let bNew = uniqueName("\(base).folded_bias", in: g)
            g.initializers[bNew] = Tensor(shape: [m], floats: newB)
            g.nodes[ci].inputs = [conv.inputs[0], wNew, bNew]
            g.nodes[ci].outputs = [bn.outputs[0]]
            removed.insert(bi)
            producers[bn.outputs[0]] = ci
            consumers[x] = nil
        }
        g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// A pointwise Conv (1x1 kernel, stride 1, no padding) whose output only an unpadded
    /// AveragePool (or a GlobalAveragePool) reads becomes the pool followed by the Conv: both
    /// are linear per pixel, so averaging the inputs and then convolving gives the same values
    /// (up to rounding), on a quarter of the pixels for a 2x2 pool. DenseNet's transitions are
    /// BatchNormalization → ReLU → 1x1 Conv → 2x2 AveragePool: their Convs do 4x fewer
    /// multiplications (DenseNet-169: 17% of the time at batch 1 was in them). Runs before
    /// activations are fused, so the Conv's output is its own.
    static func poolBeforePointwiseConv(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        let consumers = g.consumers()
        let producers = g.producers()
        for pi in g.nodes.indices {
            let pool = g.nodes[pi]
            guard pool.opType == "AveragePool" || pool.opType == "GlobalAveragePool", pool.outputs.count == 1,
                pool.inputs.count == 1, let y = pool.input(0), let ci = producers[y], consumers[y] == [pi], !outputs.contains(y),
                isPlainPointwiseConv(g.nodes[ci], g), pool.opType == "GlobalAveragePool" || isUnpadded(pool)
            else { continue }
            let conv = g.nodes[ci]
            let pooled = uniqueValueName("\(y).pooled", in: g)
            var movedPool = pool
            movedPool.inputs = [conv.inputs[0]]
            movedPool.outputs = [pooled]
            var movedConv = conv
            movedConv.inputs[0] = pooled
            movedConv.outputs = pool.outputs
            // The pool reads only what the Conv read, so it can take the Conv's place; the Conv
            // reads the pool's output and takes the pool's.
            g.nodes[ci] = movedPool
            g.nodes[pi] = movedConv
        }
    }

    /// A Conv with a constant 1x1 kernel over a 2-d map, stride 1, no padding, no dilation and
    /// nothing fused into it.
    static func isPlainPointwiseConv(_ n: Node, _ g: Graph) -> Bool {
        guard n.opType == "Conv", n.outputs.count == 1, n.input(0) != nil, let w = n.input(1).flatMap({ g.initializers[$0] }),
            w.shape.count == 4, w.shape[2] == 1, w.shape[3] == 1, !n.attributes.keys.contains(where: { $0.hasPrefix("_") })
        else { return false }
        func all(_ key: String, _ value: Int) -> Bool {
            guard let a = n.attributes[key] else { return true }
            guard case .ints(let v) = a else { return false }
            return v.allSatisfy { $0 == value }
        }
        let autoPad = n.attributes["auto_pad"]
        let noAutoPad = autoPad == nil || autoPad == .string("NOTSET") || autoPad == .string("VALID")
        return all("strides", 1) && all("pads", 0) && all("dilations", 1) && noAutoPad
    }

    /// An AveragePool of a 2-d window with no padding (explicit or automatic), no ceil mode and
    /// no dilation: every output averages whole windows of real inputs.
    static func isUnpadded(_ pool: Node) -> Bool {
        guard case .ints(let kernel)? = pool.attributes["kernel_shape"], kernel.count == 2 else { return false }
        if let pads = pool.attributes["pads"] {
            guard case .ints(let p) = pads, p.allSatisfy({ $0 == 0 }) else { return false }
        }
        if let dilations = pool.attributes["dilations"] {
            guard case .ints(let d) = dilations, d.allSatisfy({ $0 == 1 }) else { return false }
        }
        let autoPad = pool.attributes["auto_pad"]
        let ceil = pool.attributes["ceil_mode"]
        return (autoPad == nil || autoPad == .string("NOTSET") || autoPad == .string("VALID")) && (ceil == nil || ceil == .int(0))
    }

    /// A value name no node produces or reads and no initializer or graph input has.
    static func uniqueValueName(_ base: String, in g: Graph) -> String {
        var used = Set(g.initializers.keys).union(g.inputs.map(\.name)).union(g.outputs.map(\.name))
        for n in g.nodes { used.formUnion(n.outputs); used.formUnion(n.inputs) }
        var name = base
        var i = 1
        while used.contains(name) { name = "\(base)_\(i)"; i += 1 }
        return name
    }

    /// x · Sigmoid(x) (SiLU, as torch exports it: EfficientNet) and x · HardSigmoid(x) with
    /// alpha 1/6, beta 1/2 (HardSwish, as torch exports it before opset 14: MobileNetV3) are
    /// applied in the epilogue of the node producing x when x is read by nothing else.
    static func fuseSiLU(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        let consumers = g.consumers()
        let producers = g.producers()
        var removed = Set<Int>()
        for (mi, mul) in g.nodes.enumerated() where mul.opType == "Mul" && mul.inputs.count == 2 {
            for (xs, ss) in [(0, 1), (1, 0)] {
                let x = mul.inputs[xs], sig = mul.inputs[ss]
                guard let si = producers[sig], let act = gatedActivation(g.nodes[si]), g.nodes[si].inputs == [x],
                    consumers[sig]?.count == 1, !outputs.contains(sig), !outputs.contains(x),
                    let pi = producers[x], fusibleProducers.contains(g.nodes[pi].opType), g.nodes[pi].attributes["_act"] == nil,
                    g.nodes[pi].outputs.count == 1, Set(consumers[x] ?? []) == [si, mi], !removed.contains(pi)
                else { continue }
                for (k, v) in act.fusedAttributes { g.nodes[pi].attributes[k] = v }
                g.nodes[pi].outputs = mul.outputs
                removed.formUnion([si, mi])
                break
            }
        }
        g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The activation x · gate(x) computes, for the gates that make a known one.
    static func gatedActivation(_ gate: Node) -> Activation? {
        switch Activation.of(gate, constants: []) {
        case .sigmoid?: return .silu
        case .hardSigmoid(let a, let b)? where abs(a - 1 / 6) < 1e-6 && b == 0.5: return .hardSwish
        default: return nil
        }
    }

    static let fusibleProducers: Set<String> = ["Conv", "ConvTranspose", "Gemm", "Add", "BatchNormalization"]

    /// An activation whose input has a single consumer is applied in its producer's epilogue.
    static func fuseActivations(_ g: inout Graph) {
        let outputs = graphOutputs(g)
        let consumers = g.consumers()
        let producers = g.producers()
        var removed = Set<Int>()
        for (ai, node) in g.nodes.enumerated() {
            guard ["Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip"].contains(node.opType), let x = node.input(0),
                let pi = producers[x], fusibleProducers.contains(g.nodes[pi].opType), g.nodes[pi].attributes["_act"] == nil,
                g.nodes[pi].outputs.count == 1, consumers[x]?.count == 1, !outputs.contains(x)
            else { continue }
            let constants = node.inputs.map { g.initializers[$0] }
            guard let act = Activation.of(node, constants: constants) else { continue }
            for (k, v) in act.fusedAttributes { g.nodes[pi].attributes[k] = v }
            g.nodes[pi].outputs = node.outputs
            removed.insert(ai)
        }
        g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Drops nodes none of whose outputs are used, and initializers nothing reads.
    static func removeUnused(_ g: inout Graph) {
        var needed = graphOutputs(g)
        var keep = [Bool](repeating: false, count: g.nodes.count)
        for i in stride(from: g.nodes.count - 1, through: 0, by: -1) {
            if g.nodes[i].outputs.contains(where: { needed.contains($0) }) {
                keep[i] = true
                for name in g.nodes[i].inputs where !name.isEmpty { needed.insert(name) }
            }
        }
        g.nodes = g.nodes.enumerated().filter { keep[$0.offset] }.map(\.element)
        g.initializers = g.initializers.filter { needed.contains($0.key) }
    }

    static func uniqueName(_ base: String, in g: Graph) -> String {
        var name = base
        var i = 1
        while g.initializers[name] != nil { name = "\(base)_\(i)"; i += 1 }
        return name
    }
}
