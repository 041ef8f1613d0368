import BottleFitCore
import Foundation
import Testing

@testable import BottleFitEngine

/// DenseNet's pre-activation layers as torchvision exports them: Concat → BatchNormalization →
/// ReLU → 1x1 Conv, and a transition's BatchNormalization → ReLU → 1x1 Conv → AveragePool. With
/// packed weights the normalization (and its ReLU) is applied while the Conv packs its input and
/// no BatchNormalization step is left, except where the normalized tensor has another reader;
/// every compute context must give ONNX Runtime's output, at batch 1 and 2.
@Suite struct InputNormalizationTests {
    static func graph(batch: Int, size: Int) -> Graph {
        var rng = SeededGenerator(seed: UInt64(20 + size))
        func weights(_ shape: [Int], _ scale: Float, offset: Float = 0) -> Tensor {
            Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() * scale + offset })
        }
        func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [String: AttributeValue] = [:]) -> Node {
            Node(name: output, opType: op, inputs: inputs, outputs: [output], attributes: attributes)
        }
        func bn(_ prefix: String, _ c: Int) -> [String: Tensor] {
            [
                "\(prefix)g": weights([c], 0.3, offset: 1), "\(prefix)b": weights([c], 0.2),
                "\(prefix)m": weights([c], 0.2), "\(prefix)v": Tensor(shape: [c], floats: (0..<c).map { _ in abs(rng.nextNormal()) + 0.5 }),
            ]
        }
        let c = 12, k = 8, grown = c + k
        let nodes = [
            // A layer: BN → ReLU → 1x1 Conv (fused), then a 3x3 Conv growing the features.
            node("BatchNormalization", ["x", "n1g", "n1b", "n1m", "n1v"], "n1"), node("Relu", ["n1"], "r1"),
            node("Conv", ["r1", "w1", "b1"], "c1"), node("Relu", ["c1"], "c1r"),
            node("Conv", ["c1r", "w2"], "new", ["pads": .ints([1, 1, 1, 1])]),
            node("Concat", ["x", "new"], "cat", ["axis": .int(1)]),
            // A BatchNormalization without ReLU, fused too.
            node("BatchNormalization", ["cat", "n2g", "n2b", "n2m", "n2v"], "n2"),
            node("Conv", ["n2", "w3", "b3"], "c3"),
            // One whose output the Conv reads twice (input and fused residual): it stays a step.
            node("BatchNormalization", ["cat", "n3g", "n3b", "n3m", "n3v"], "n3"), node("Relu", ["n3"], "r3"),
            node("Conv", ["r3", "w4"], "c4"), node("Add", ["c4", "r3"], "sum"),
            node("Concat", ["c3", "sum"], "out", ["axis": .int(1)]),
            node("AveragePool", ["out"], "y", ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
        ]
        var initializers: [String: Tensor] = [
            "w1": weights([16, c, 1, 1], 0.3), "b1": weights([16], 0.1), "w2": weights([k, 16, 3, 3], 0.2),
            "w3": weights([10, grown, 1, 1], 0.3), "b3": weights([10], 0.1), "w4": weights([grown, grown, 1, 1], 0.3),
        ]
        for (prefix, channels) in [("n1", c), ("n2", grown), ("n3", grown)] { initializers.merge(bn(prefix, channels)) { a, _ in a } }
        return Graph(
            name: "dense", nodes: nodes, inputs: [ValueInfo(name: "x", shape: [batch, c, size, size].map { .fixed($0) })],
            outputs: [ValueInfo(name: "y", shape: nil)], initializers: initializers)
    }

    @Test(arguments: [(1, 14), (2, 8), (1, 20)])
    func matchesOnnxRuntime(_ config: (Int, Int)) throws {
        let (batch, size) = config
        let g = Self.graph(batch: batch, size: size)
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("dense.onnx")
        try ONNXExporter.write(g, to: file)
        let x = TestSupport.randomInput([batch, 12, size, size], seed: 9)
        let reference = try TestSupport.onnxRuntime(model: file, input: x, in: dir)
        try forEachComputeContext { compute in
            let session = try InferenceSession(contentsOf: file, compute: compute)
            let plan = try session.plan(batch: batch)
            let norms = plan.stepNames.filter { $0.hasPrefix("BatchNormalization ") }
            #expect(
                norms.count == (compute.gemm.fusesNormalizations(batch: batch) ? 1 : 3),
                "\(compute): BatchNormalization steps \(norms) (two of three should be fused when every convolution runs packed), steps \(plan.stepNames)")
            let out = try session.run(x)
            let err = TestSupport.relativeError(out, reference)
            #expect(err <= 1e-5, "batch \(batch) size \(size) \(compute): max|Δ|/max|ref| = \(err)")
        }
    }
}
