import BottleFitCore
import BottleFitEngine
import Testing

@testable import BottleFitTraining

/// Finite-difference checks: every operator's analytic gradients against central
/// differences of L = Σ r ⊙ y for a fixed random r.
struct GradientCheck {
    var rng = SeededGenerator(seed: 7)

    mutating func random(_ shape: [Int], scale: Float = 1) -> Buffer {
        Buffer(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() * scale })
    }

    /// Values that stay away from 0 by at least `gap` (for ReLU's kink) and are pairwise
    /// distinct by at least `gap` (for MaxPool's argmax).
    mutating func distinct(_ shape: [Int], gap: Float = 0.02) -> Buffer {
        let n = shape.reduce(1, *)
        var values: [Float] = (0..<n).map { i in
            let offset = i - n / 2
            let half: Float = offset >= 0 ? gap / 2 : -gap / 2   // one statement is too much for Swift 6.2's type checker
            return Float(offset) * gap + half
        }
        values.shuffle(using: &rng)
        return Buffer(shape: shape, data: values)
    }

    /// A one-node graph whose inputs are all initializers (so every one is a parameter that
    /// receives a gradient); `frozen` names keep their values and get none.
    static func graph(_ node: Node, inputs: [String: Buffer]) -> Graph {
        Graph(
            name: "check", nodes: [node], inputs: [], outputs: [ValueInfo(name: node.outputs[0], shape: nil)],
            initializers: inputs.mapValues(\.tensor))
    }

    /// Compares analytic and numeric gradients of every trainable input; returns the worst
    /// violation of |a − n| ≤ atol + rtol·|n| (≤ 1 passes).
    mutating func check(
        _ node: Node, inputs: [String: Buffer], frozen: [String] = [], epsilon: Float = 1e-2,
        atol: Float = 2e-3, rtol: Float = 2e-2, maxElements: Int = 60, training: Bool = true
    ) throws -> Float {
        let model = try TrainingGraph(Self.graph(node, inputs: inputs))
        model.freeze(prefixes: frozen)
        let out = node.outputs[0]
        let first = try model.forward([:], outputs: [out], training: training)
        let y = first[out]!
        let r = random(y.shape)
        let grads = try model.backward(first, seeds: [out: r])
        var worst: Float = 0
        func loss() throws -> Double {
            let pass = try model.forward([:], outputs: [out], training: training)
            return zip(pass[out]!.data, r.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in inputs.keys.sorted() where model.trainable.contains(name) {
            let analytic = try #require(grads[name], "no gradient for \(name)")
            let base = model.parameters[name]!
            let stride = max(1, base.count / maxElements)
            for i in Swift.stride(from: 0, to: base.count, by: stride) {
                var plus = base, minus = base
                plus.data[i] += epsilon
                minus.data[i] -= epsilon
                try model.setParameter(name, plus)
                let lp = try loss()
                try model.setParameter(name, minus)
                let lm = try loss()
                try model.setParameter(name, base)
                let numeric = Float((lp - lm) / Double(2 * epsilon))
                let a = analytic.data[i]
                worst = max(worst, abs(a - numeric) / (atol + rtol * abs(numeric)))
            }
        }
        return worst
    }
}

@Suite struct OperatorGradientTests {
    @Test func convolutionWithStridePaddingAndBias() throws {
        var c = GradientCheck()
        let node = Node(
            name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
            attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 1]), "pads": .ints([1, 0, 2, 1])])
        let worst = try c.check(node, inputs: ["x": c.random([2, 3, 6, 5]), "w": c.random([4, 3, 3, 3]), "b": c.random([4])])
        #expect(worst <= 1)
    }

    @Test func groupedAndDilatedConvolution() throws {
        var c = GradientCheck()
        let node = Node(
            name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
            attributes: ["group": .int(2), "dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])])
        let worst = try c.check(node, inputs: ["x": c.random([2, 4, 5, 5]), "w": c.random([6, 2, 3, 3])])
        #expect(worst <= 1)
    }

    @Test func depthwiseConvolution() throws {
        var c = GradientCheck()
        let node = Node(name: "dw", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["group": .int(3), "strides": .ints([2, 2])])
        let worst = try c.check(node, inputs: ["x": c.random([2, 3, 5, 5]), "w": c.random([3, 1, 2, 2])])
        #expect(worst <= 1)
    }

    @Test func convTransposeWithStrideAndOutputPadding() throws {
        var c = GradientCheck()
        let node = Node(
            name: "deconv", opType: "ConvTranspose", inputs: ["x", "w", "b"], outputs: ["y"],
            attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 0]), "output_padding": .ints([1, 1])])
        let worst = try c.check(node, inputs: ["x": c.random([2, 3, 3, 4]), "w": c.random([3, 2, 3, 3]), "b": c.random([2])])
        #expect(worst <= 1)
    }

    @Test func groupedConvTranspose() throws {
        var c = GradientCheck()
        let node = Node(name: "deconv", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"], attributes: ["group": .int(2)])
        let worst = try c.check(node, inputs: ["x": c.random([2, 4, 3, 3]), "w": c.random([4, 3, 2, 2])])
        #expect(worst <= 1)
    }

    @Test func batchNormalizationTrainingMode() throws {
        var c = GradientCheck()
        let node = Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "g", "b", "m", "v"], outputs: ["y"], attributes: ["epsilon": .float(1e-5)])
        let x = c.random([4, 3, 3, 3], scale: 2)
        let worst = try c.check(
            node, inputs: ["x": x, "g": c.random([3]), "b": c.random([3]), "m": Buffer(zeros: [3]), "v": Buffer(shape: [3], data: [1, 1, 1])],
            epsilon: 1e-2, rtol: 3e-2)
        #expect(worst <= 1)
    }

    @Test func batchNormalizationFrozenRunsOnRunningStatistics() throws {
        var c = GradientCheck()
        let node = Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "g", "b", "m", "v"], outputs: ["y"])
        let worst = try c.check(
            node, inputs: ["x": c.random([2, 3, 2, 2]), "g": c.random([3]), "b": c.random([3]), "m": c.random([3]), "v": Buffer(shape: [3], data: [0.5, 1, 2])],
            frozen: ["g", "b"])
        #expect(worst <= 1)
    }

    @Test func relu() throws {
        var c = GradientCheck()
        let worst = try c.check(Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["y"]), inputs: ["x": c.distinct([2, 3, 4, 4], gap: 0.05)], epsilon: 1e-2)
        #expect(worst <= 1)
    }

    @Test func maxPoolWithPaddingAndCeilMode() throws {
        var c = GradientCheck()
        let node = Node(
            name: "mp", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
            attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1)])
        let worst = try c.check(node, inputs: ["x": c.distinct([2, 2, 6, 6], gap: 0.05)], epsilon: 1e-2)
        #expect(worst <= 1)
    }

    @Test func averagePoolBothPadCountings() throws {
        for include in [0, 1] {
            var c = GradientCheck()
            let node = Node(
                name: "ap", opType: "AveragePool", inputs: ["x"], outputs: ["y"],
                attributes: ["kernel_shape": .ints([3, 2]), "strides": .ints([2, 1]), "pads": .ints([1, 0, 1, 1]), "count_include_pad": .int(include)])
            let worst = try c.check(node, inputs: ["x": c.random([2, 2, 5, 4])])
            #expect(worst <= 1)
        }
    }

    @Test func globalAveragePool() throws {
        var c = GradientCheck()
        let worst = try c.check(Node(name: "g", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["y"]), inputs: ["x": c.random([3, 4, 3, 2])])
        #expect(worst <= 1)
    }

    @Test func addSameShapeAndBroadcast() throws {
        var c = GradientCheck()
        let node = Node(name: "add", opType: "Add", inputs: ["a", "b"], outputs: ["y"])
        #expect(try c.check(node, inputs: ["a": c.random([2, 3, 2, 2]), "b": c.random([2, 3, 2, 2])]) <= 1)
        #expect(try c.check(node, inputs: ["a": c.random([2, 3, 2, 2]), "b": c.random([3, 1, 1])]) <= 1)
    }

    @Test func concatAlongChannels() throws {
        var c = GradientCheck()
        let node = Node(name: "cat", opType: "Concat", inputs: ["a", "b"], outputs: ["y"], attributes: ["axis": .int(1)])
        #expect(try c.check(node, inputs: ["a": c.random([2, 3, 2, 2]), "b": c.random([2, 1, 2, 2])]) <= 1)
    }

    @Test func flatten() throws {
        var c = GradientCheck()
        let node = Node(name: "f", opType: "Flatten", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(1)])
        #expect(try c.check(node, inputs: ["x": c.random([2, 3, 2, 2])]) <= 1)
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmEveryTransposition(transA: Bool, transB: Bool) throws {
        var c = GradientCheck()
        let node = Node(
            name: "fc", opType: "Gemm", inputs: ["a", "b", "c"], outputs: ["y"],
            attributes: ["transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0), "alpha": .float(0.7), "beta": .float(1.3)])
        let a = c.random(transA ? [4, 3] : [3, 4]), b = c.random(transB ? [5, 4] : [4, 5])
        #expect(try c.check(node, inputs: ["a": a, "b": b, "c": c.random([5])]) <= 1)
    }
}
