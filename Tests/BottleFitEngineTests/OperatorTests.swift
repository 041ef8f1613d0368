import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// The operators torchvision's exports need beyond ResNet (Pad, Slice, Split, reductions,
/// unary functions, LayerNormalization, Resize, …), each a one- or few-node model run by the
/// engine and by ONNX Runtime on the same file and input.
@Suite struct OperatorTests {
    static let tolerance = 1e-5

    /// A model reading float input `x` of `shape` and writing `y`, with the given nodes and constants.
    static func model(_ nodes: [Node], shape: [Int], constants: [String: Tensor] = [:], opset: Int = 13) -> Graph {
        Graph(
            name: "op", nodes: nodes, inputs: [ValueInfo(name: "x", shape: shape.map { .fixed($0) })],
            outputs: [ValueInfo(name: "y", shape: nil)], initializers: constants, opsetVersion: opset)
    }

    static func node(_ op: String, _ inputs: [String], _ attributes: [String: AttributeValue] = [:], outputs: [String] = ["y"]) -> Node {
        Node(name: "\(op.lowercased())_\(outputs[0])", opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    static func ints(_ v: [Int]) -> Tensor { Tensor(shape: [v.count], int64s: v.map { Int64($0) }) }

    /// Runs the graph in the engine (optimised) and in ONNX Runtime; returns the engine's output.
    @discardableResult
    static func check(_ graph: Graph, _ label: String, seed: UInt64 = 1, positive: Bool = false) throws -> Tensor {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("\(label).onnx")
        try ONNXExporter.write(graph, to: file)
        let shape = graph.inputs[0].shape!.map { $0.fixedValue! }
        var x = TestSupport.randomInput(shape, seed: seed)
        if positive { x = Tensor(shape: shape, floats: x.floats!.map { abs($0) + 0.1 }) }
        let ours = try InferenceSession(contentsOf: file, compute: ComputeContext(gemm: .openblas)).run(x)
        let reference = try TestSupport.onnxRuntime(model: file, input: x, in: dir)
        #expect(ours.shape == reference.shape, "\(label): shape \(ours.shape) vs \(reference.shape)")
        let err = TestSupport.relativeError(ours, reference)
        #expect(err <= tolerance, "\(label): max|Δ|/max|ref| = \(err)")
        return ours
    }

    @Test(arguments: ["constant", "reflect", "edge"])
    func pad(mode: String) throws {
        // Pads on H and W, one negative (a crop) in constant mode, as torch exports them (opset 13).
        let pads = mode == "constant" ? [0, 0, 2, 1, 0, 0, 1, -1] : [0, 0, 2, 1, 0, 0, 1, 3]
        var consts = ["pads": Self.ints(pads)]
        var inputs = ["x", "pads"]
        if mode == "constant" {
            consts["value"] = Tensor(shape: [], floats: [0.5])
            inputs.append("value")
        }
        try Self.check(Self.model([Self.node("Pad", inputs, ["mode": .string(mode)])], shape: [2, 3, 5, 6], constants: consts), "pad-\(mode)")
    }

    @Test func padOpset18Axes() throws {
        let g = Self.model(
            [Self.node("Pad", ["x", "pads", "", "axes"], ["mode": .string("reflect")])], shape: [1, 2, 4, 5],
            constants: ["pads": Self.ints([1, 2, 2, 1]), "axes": Self.ints([-1, 2])], opset: 18)
        try Self.check(g, "pad-axes")
    }

    @Test func sliceWithStepsAndNegativeBounds() throws {
        let g = Self.model(
            [Self.node("Slice", ["x", "starts", "ends", "axes", "steps"])], shape: [2, 8, 5, 6],
            constants: [
                "starts": Self.ints([1, -1, 0]), "ends": Self.ints([7, -100, 100]), "axes": Self.ints([1, 3, 2]),
                "steps": Self.ints([2, -2, 1]),
            ])
        try Self.check(g, "slice")
    }

    /// ShuffleNetV2's block: split the channels, shuffle them (Reshape → Transpose → Reshape).
    @Test func splitAndChannelShuffle() throws {
        let g = Self.model(
            [
                Self.node("Split", ["x", "split"], ["axis": .int(1)], outputs: ["a", "b", "c"]),
                Self.node("Concat", ["c", "a", "b"], ["axis": .int(1)], outputs: ["cat"]),
                Self.node("Reshape", ["cat", "s1"], outputs: ["r1"]),
                Self.node("Transpose", ["r1"], ["perm": .ints([0, 2, 1, 3, 4])], outputs: ["t"]),
                Self.node("Reshape", ["t", "s2"]),
            ], shape: [2, 8, 3, 4],
            constants: ["split": Self.ints([2, 4, 2]), "s1": Self.ints([2, 2, 4, 3, 4]), "s2": Self.ints([2, -1, 3, 4])])
        try Self.check(g, "split-shuffle")
    }

    /// Slices and transposes whose trailing axes are contiguous (ShuffleNet's channel halves, a
    /// crop of rows, NCHW → CNHW, axes of size 1) are block copies; each must still be exact.
    @Test func contiguousSlicesAndTransposes() throws {
        let halves = Self.model(
            [
                Self.node("Slice", ["x", "s0", "e0", "a1"], outputs: ["lo"]),
                Self.node("Slice", ["x", "s1", "e1", "a1"], outputs: ["hi"]),
                Self.node("Slice", ["x", "s2", "e2", "a2"], outputs: ["rows"]),
                Self.node("Transpose", ["rows"], ["perm": .ints([1, 0, 2, 3])], outputs: ["cnhw"]),
                Self.node("Transpose", ["cnhw"], ["perm": .ints([1, 0, 2, 3])], outputs: ["back"]),
                Self.node("Slice", ["back", "s3", "e3", "a1"], outputs: ["mid"]),
                Self.node("Concat", ["hi", "lo", "mid"], ["axis": .int(2)]),
            ], shape: [2, 32, 6, 5],
            constants: [
                "s0": Self.ints([0]), "e0": Self.ints([16]), "s1": Self.ints([16]), "e1": Self.ints([32]), "a1": Self.ints([1]),
                "s2": Self.ints([1, 0]), "e2": Self.ints([5, 32]), "a2": Self.ints([2, 1]), "s3": Self.ints([3]), "e3": Self.ints([19]),
            ])
        try Self.check(halves, "slice-runs")
        let ones = Self.model(
            [
                Self.node("Reshape", ["x", "s"], outputs: ["r"]),
                Self.node("Transpose", ["r"], ["perm": .ints([3, 0, 2, 1, 4])], outputs: ["t"]),
                Self.node("Reshape", ["t", "s2"]),
            ], shape: [1, 6, 4, 7], constants: ["s": Self.ints([1, 2, 3, 4, 7]), "s2": Self.ints([4, 3, 2, 7])])
        try Self.check(ones, "transpose-ones")
        // Pad on the channel axis: whole H·W runs, the padded channels filled with the constant.
        let channels = Self.model(
            [Self.node("Pad", ["x", "pads", "value"], ["mode": .string("constant")])], shape: [2, 3, 4, 5],
            constants: ["pads": Self.ints([0, 1, 0, 0, 0, 2, 0, 0]), "value": Tensor(shape: [], floats: [0.25])])
        try Self.check(channels, "pad-channels")
    }

    @Test(arguments: ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"])
    func reduce(op: String) throws {
        // Attribute axes (opset 13; ReduceSum takes an input there) and input axes (opset 18).
        for (axes, keep) in [([2, 3], 1), ([1, -1], 0), ([0, 2], 1)] {
            let asInput = op == "ReduceSum"
            let g13 = Self.model(
                [Self.node(op, asInput ? ["x", "axes"] : ["x"], asInput ? ["keepdims": .int(keep)] : ["axes": .ints(axes), "keepdims": .int(keep)])],
                shape: [2, 3, 4, 5], constants: asInput ? ["axes": Self.ints(axes)] : [:])
            try Self.check(g13, "\(op)-13-\(axes)")
            let g18 = Self.model(
                [Self.node(op, ["x", "axes"], ["keepdims": .int(keep)])], shape: [2, 3, 4, 5], constants: ["axes": Self.ints(axes)], opset: 18)
            try Self.check(g18, "\(op)-18-\(axes)")
        }
    }

    @Test(arguments: [
        "Tanh", "Exp", "Log", "Abs", "Neg", "Sqrt", "Erf", "Elu", "Selu", "Softplus", "Softsign", "Reciprocal", "Sigmoid",
        "HardSigmoid", "HardSwish", "Floor", "Ceil",
    ])
    func unary(op: String) throws {
        let positive = op == "Log" || op == "Sqrt" || op == "Reciprocal"
        try Self.check(Self.model([Self.node(op, ["x"])], shape: [2, 3, 7, 9], opset: 14), op, positive: positive)
    }

    /// Sigmoid and SiLU run a vectorised exponential: against double precision from −100 to 100.
    @Test func sigmoidAndSiLUOverWideRange() throws {
        let xs = (0..<4001).map { Float($0 - 2000) / 20 }
        for (op, exact) in [("Sigmoid", { (x: Double) in 1 / (1 + Foundation.exp(-x)) }), ("SiLU", { (x: Double) in x / (1 + Foundation.exp(-x)) })] {
            let nodes = op == "Sigmoid"
                ? [Self.node("Sigmoid", ["x"])]
                : [Self.node("Conv", ["x", "w"], outputs: ["c"]), Self.node("Sigmoid", ["c"], outputs: ["s"]), Self.node("Mul", ["c", "s"])]
            let g = Self.model(nodes, shape: [1, 1, 1, xs.count], constants: ["w": Tensor(shape: [1, 1, 1, 1], floats: [1])])
            let y = try InferenceSession(graph: g).run(Tensor(shape: [1, 1, 1, xs.count], floats: xs)).floats!
            for (x, v) in zip(xs, y) {
                let e = exact(Double(x))
                #expect(abs(Double(v) - e) <= 1e-6 * max(abs(e), 1e-3), "\(op)(\(x)) = \(v), expected \(e)")
            }
        }
    }

    @Test func eluSeluWithAttributes() throws {
        try Self.check(Self.model([Self.node("Elu", ["x"], ["alpha": .float(0.3)])], shape: [3, 17]), "elu-alpha")
        try Self.check(Self.model([Self.node("Selu", ["x"], ["alpha": .float(1.5), "gamma": .float(2)])], shape: [3, 17]), "selu-attrs")
        try Self.check(
            Self.model([Self.node("HardSigmoid", ["x"], ["alpha": .float(1.0 / 6), "beta": .float(0.5)])], shape: [3, 17]), "hardsigmoid-torch")
    }

    /// Element-wise binaries broadcast both ways (ONNX multidirectional broadcasting).
    @Test(arguments: ["Sub", "Div", "Pow", "Add", "Mul"])
    func binaryBroadcast(op: String) throws {
        var rng = SeededGenerator(seed: 9)
        for bShape in [[3, 1, 1], [1, 5], [4, 1, 3, 1, 1], []] {
            let n = bShape.reduce(1, *)
            let b = Tensor(shape: bShape, floats: (0..<n).map { _ in op == "Pow" ? Float(Int(rng.nextUnit() * 4)) : rng.nextUnit() + 0.5 })
            try Self.check(Self.model([Self.node(op, ["x", "b"])], shape: [2, 3, 4, 5], constants: ["b": b]), "\(op)-\(bShape)")
            // The constant first: the output takes the broadcast shape.
            try Self.check(Self.model([Self.node(op, ["b", "x"])], shape: [3, 4, 1], constants: ["b": b]), "\(op)-rev-\(bShape)", positive: op == "Pow")
        }
    }

    @Test func pRelu() throws {
        let slope = Tensor(shape: [3, 1, 1], floats: [0.1, -0.5, 2])
        try Self.check(Self.model([Self.node("PRelu", ["x", "slope"])], shape: [2, 3, 4, 5], constants: ["slope": slope]), "prelu")
    }

    @Test func logSoftmax() throws {
        try Self.check(Self.model([Self.node("LogSoftmax", ["x"], ["axis": .int(1)])], shape: [2, 10, 3]), "logsoftmax")
        try Self.check(Self.model([Self.node("LogSoftmax", ["x"])], shape: [4, 1000]), "logsoftmax-last")
    }

    /// LayerNormalization (opset 17) and the decomposed form torch writes at opset 13
    /// (ConvNeXt), with GELU as torch exports it (Div, Erf, Add, Mul, Mul).
    @Test func layerNormAndGELU() throws {
        var rng = SeededGenerator(seed: 4)
        let scale = Tensor(shape: [8], floats: (0..<8).map { _ in rng.nextUnit() + 0.5 })
        let bias = Tensor(shape: [8], floats: (0..<8).map { _ in rng.nextUnit() - 0.5 })
        let ln = Self.model(
            [Self.node("LayerNormalization", ["x", "scale", "bias"], ["epsilon": .float(1e-6)])], shape: [2, 5, 5, 8],
            constants: ["scale": scale, "bias": bias], opset: 17)
        try Self.check(ln, "layernorm")
        let two = Tensor(shape: [], floats: [2]), eps = Tensor(shape: [], floats: [1e-6])
        let root2 = Tensor(shape: [], floats: [1.4142135]), one = Tensor(shape: [], floats: [1]), half = Tensor(shape: [], floats: [0.5])
        let decomposed = Self.model(
            [
                Self.node("ReduceMean", ["x"], ["axes": .ints([-1])], outputs: ["mean"]),
                Self.node("Sub", ["x", "mean"], outputs: ["d"]),
                Self.node("Pow", ["d", "two"], outputs: ["sq"]),
                Self.node("ReduceMean", ["sq"], ["axes": .ints([-1])], outputs: ["var"]),
                Self.node("Add", ["var", "eps"], outputs: ["ve"]),
                Self.node("Sqrt", ["ve"], outputs: ["sd"]),
                Self.node("Div", ["d", "sd"], outputs: ["n"]),
                Self.node("Mul", ["n", "scale"], outputs: ["ns"]),
                Self.node("Add", ["ns", "bias"], outputs: ["ln"]),
                Self.node("Div", ["ln", "root2"], outputs: ["g1"]),
                Self.node("Erf", ["g1"], outputs: ["g2"]),
                Self.node("Add", ["g2", "one"], outputs: ["g3"]),
                Self.node("Mul", ["ln", "g3"], outputs: ["g4"]),
                Self.node("Mul", ["g4", "half"]),
            ], shape: [2, 5, 5, 8],
            constants: ["two": two, "eps": eps, "scale": scale, "bias": bias, "root2": root2, "one": one, "half": half])
        try Self.check(decomposed, "layernorm-decomposed-gelu")
    }

    @Test(arguments: ["nearest", "linear"])
    func resize(mode: String) throws {
        let transforms = mode == "nearest" ? ["asymmetric", "half_pixel", "align_corners"] : ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
        for transform in transforms {
            let attrs: [String: AttributeValue] = ["mode": .string(mode), "coordinate_transformation_mode": .string(transform)]
            // Upsampling by scales (×2, as torch's Upsample), and resizing to sizes (down in H, up in W).
            let up = Self.model(
                [Self.node("Resize", ["x", "", "scales"], attrs)], shape: [1, 2, 5, 6],
                constants: ["scales": Tensor(shape: [4], floats: [1, 1, 2, 2])])
            try Self.check(up, "resize-\(mode)-\(transform)-scales")
            let sized = Self.model(
                [Self.node("Resize", ["x", "", "", "sizes"], attrs)], shape: [1, 2, 9, 6], constants: ["sizes": Self.ints([1, 2, 4, 13])])
            try Self.check(sized, "resize-\(mode)-\(transform)-sizes")
        }
    }

    /// ConvNeXt's pointwise layers: NCHW → NHWC (Transpose), a Linear layer as MatMul of a rank-4
    /// activation by a 2-D weight (one GEMM over all rows), back to NCHW.
    @Test func transposeAndMatMulOverNHWC() throws {
        var rng = SeededGenerator(seed: 8)
        let w = Tensor(shape: [6, 10], floats: (0..<60).map { _ in rng.nextNormal() })
        let g = Self.model(
            [
                Self.node("Transpose", ["x"], ["perm": .ints([0, 2, 3, 1])], outputs: ["t"]),
                Self.node("MatMul", ["t", "w"], outputs: ["m"]),
                Self.node("Transpose", ["m"], ["perm": .ints([0, 3, 1, 2])]),
            ], shape: [2, 6, 5, 7], constants: ["w": w])
        try Self.check(g, "nhwc-linear")
    }

    /// Gather on constant indices (torch's x[:, idx]) of an activation.
    @Test func gatherConstantIndices() throws {
        let g = Self.model(
            [Self.node("Gather", ["x", "idx"], ["axis": .int(1)])], shape: [2, 6, 3],
            constants: ["idx": Tensor(shape: [2, 2], int64s: [5, 0, -1, 2])])
        try Self.check(g, "gather")
    }

    /// HardSwish and HardSigmoid fused into the convolution that produces their input.
    @Test func hardSwishFusedIntoConv() throws {
        var rng = SeededGenerator(seed: 5)
        let w = Tensor(shape: [8, 4, 3, 3], floats: (0..<288).map { _ in rng.nextNormal() * 0.3 })
        for act in ["HardSwish", "HardSigmoid"] {
            let g = Self.model(
                [Self.node("Conv", ["x", "w"], ["pads": .ints([1, 1, 1, 1])], outputs: ["c"]), Self.node(act, ["c"])],
                shape: [2, 4, 9, 9], constants: ["w": w], opset: 14)
            let session = try InferenceSession(graph: g)
            #expect(session.optimizedGraph.nodes.count == 1, "\(act) should be fused into the Conv")
            try Self.check(g, "conv-\(act)")
        }
    }

    /// EfficientNet's block: Conv → SiLU (Sigmoid, Mul; fused into the Conv) → squeeze-and-
    /// excitation (GlobalAveragePool → 1x1 Conv → Sigmoid → Mul broadcast over H·W).
    @Test func siluAndSqueezeExcitation() throws {
        var rng = SeededGenerator(seed: 6)
        let w = Tensor(shape: [8, 4, 3, 3], floats: (0..<288).map { _ in rng.nextNormal() * 0.3 })
        let se = Tensor(shape: [8, 8, 1, 1], floats: (0..<64).map { _ in rng.nextNormal() * 0.3 })
        let g = Self.model(
            [
                Self.node("Conv", ["x", "w"], ["pads": .ints([1, 1, 1, 1])], outputs: ["c"]),
                Self.node("Sigmoid", ["c"], outputs: ["s"]),
                Self.node("Mul", ["s", "c"], outputs: ["silu"]),
                Self.node("GlobalAveragePool", ["silu"], outputs: ["pool"]),
                Self.node("Conv", ["pool", "se"], outputs: ["e"]),
                Self.node("Sigmoid", ["e"], outputs: ["gate"]),
                Self.node("Mul", ["silu", "gate"]),
            ], shape: [2, 4, 9, 9], constants: ["w": w, "se": se])
        let session = try InferenceSession(graph: g)
        #expect(session.optimizedGraph.nodes.map(\.opType) == ["Conv", "GlobalAveragePool", "Conv", "Mul"])
        try Self.check(g, "silu-se")
    }

    /// HardSwish as torch writes it before opset 14 (x · HardSigmoid(x), alpha 1/6) fuses into
    /// the Conv; another alpha is left alone.
    @Test func decomposedHardSwishFuses() throws {
        var rng = SeededGenerator(seed: 7)
        let w = Tensor(shape: [6, 3, 3, 3], floats: (0..<162).map { _ in rng.nextNormal() * 0.5 })
        for (alpha, fused) in [(Float(1.0 / 6), true), (Float(0.2), false)] {
            let g = Self.model(
                [
                    Self.node("Conv", ["x", "w"], ["pads": .ints([1, 1, 1, 1])], outputs: ["c"]),
                    Self.node("HardSigmoid", ["c"], ["alpha": .float(alpha), "beta": .float(0.5)], outputs: ["h"]),
                    Self.node("Mul", ["c", "h"]),
                ], shape: [2, 3, 8, 8], constants: ["w": w])
            #expect(try InferenceSession(graph: g).optimizedGraph.nodes.count == (fused ? 1 : 3))
            try Self.check(g, "hardswish-decomposed-\(alpha)")
        }
    }

    /// Before opset 7: Add with broadcast = 1 and axis aligns B with A from that axis on; the
    /// legacy BatchNormalization and Gemm attributes load.
    @Test func legacyAttributes() throws {
        let b = Tensor(shape: [3, 4], floats: (0..<12).map { Float($0) })
        let add = Self.model(
            [Self.node("Add", ["x", "b"], ["broadcast": .int(1), "axis": .int(1)])], shape: [2, 3, 4, 5], constants: ["b": b], opset: 6)
        let x = TestSupport.randomInput([2, 3, 4, 5], seed: 3)
        let y = try InferenceSession(graph: add).run(x)
        let xv = x.floats!, yv = y.floats!
        #expect(y.shape == [2, 3, 4, 5])
        for n in 0..<2 {
            for c in 0..<3 {
                for h in 0..<4 {
                    for w in 0..<5 {
                        let i = ((n * 3 + c) * 4 + h) * 5 + w
                        #expect(yv[i] == xv[i] + Float(c * 4 + h))
                    }
                }
            }
        }
        let params = (0..<4).map { i in Tensor(shape: [3], floats: i == 3 ? [1, 2, 0.5] : [0.5, -1, 2]) }
        let bn = Self.model(
            [Self.node("BatchNormalization", ["x", "s", "b", "m", "v"], ["is_test": .int(1), "spatial": .int(1), "epsilon": .float(1e-5)])],
            shape: [2, 3, 4, 5], constants: ["s": params[0], "b": params[1], "m": params[2], "v": params[3]], opset: 6)
        let z = try InferenceSession(graph: bn).run(x).floats!
        for c in 0..<3 {
            let a = params[0].floats![c] / (params[3].floats![c] + 1e-5).squareRoot()
            let i = (1 * 3 + c) * 20 + 7
            #expect(abs(z[i] - ((xv[i] - params[2].floats![c]) * a + params[1].floats![c])) < 1e-5)
        }
        let gemm = Self.model(
            [Self.node("Gemm", ["x", "w", "c"], ["broadcast": .int(1), "transB": .int(1)])], shape: [2, 3],
            constants: ["w": Tensor(shape: [4, 3], floats: (0..<12).map { Float($0) }), "c": Tensor(shape: [4], floats: [1, 2, 3, 4])], opset: 6)
        #expect(try InferenceSession(graph: gemm).run(TestSupport.randomInput([2, 3], seed: 1)).shape == [2, 4])
    }

    /// A model with an operator the engine lacks fails at load with one line naming the
    /// operator and the node; so does an attribute value it does not implement.
    @Test func unsupportedFailsCleanly() throws {
        let g = Self.model([Self.node("Einsum", ["x"], ["equation": .string("ij->ji")])], shape: [2, 3])
        #expect {
            _ = try InferenceSession(graph: g)
        } throws: { error in
            let text = (error as? EngineError)?.description ?? ""
            return text.contains("Einsum") && text.contains("einsum_y") && !text.contains("\n")
        }
        let cubic = Self.model(
            [Self.node("Resize", ["x", "", "scales"], ["mode": .string("cubic")])], shape: [1, 1, 4, 4],
            constants: ["scales": Tensor(shape: [4], floats: [1, 1, 2, 2])])
        #expect {
            _ = try InferenceSession(graph: cubic).run(TestSupport.randomInput([1, 1, 4, 4], seed: 1))
        } throws: { error in
            let text = (error as? EngineError)?.description ?? ""
            return text.contains("mode=cubic") && text.contains("resize_y") && !text.contains("\n")
        }
    }
}
