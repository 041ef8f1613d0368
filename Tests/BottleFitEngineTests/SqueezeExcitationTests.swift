import BottleFitCore
import Foundation
import Testing

@testable import BottleFitEngine

/// Squeeze-and-excitation as EfficientNet, MobileNetV3 and RegNet export it: expand Conv →
/// SiLU → depthwise Conv → SiLU → GlobalAveragePool → 1x1 Conv → SiLU → 1x1 Conv → Sigmoid
/// (or HardSigmoid) → Mul(x, gate) → projection 1x1 Conv → + residual. With packed weights the
/// Mul is fused into the projection (its input scale, applied while packing B) and no Mul step
/// is left; every compute context must give ONNX Runtime's output, at batch 1 and 3.
@Suite struct SqueezeExcitationTests {
    static func graph(batch: Int, hardSigmoid: Bool) -> Graph {
        var rng = SeededGenerator(seed: hardSigmoid ? 12 : 11)
        func weights(_ shape: [Int], _ scale: Float) -> Tensor {
            Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() * scale })
        }
        let c = 8, e = 24, s = 6
        // A typed constant: Swift 6.2 infers `1.0 / 6` inside the ternary as Double (6.3 takes Float).
        let alpha: Float = 1.0 / 6
        let gate =
            hardSigmoid
            ? Node(name: "gate", opType: "HardSigmoid", inputs: ["se2"], outputs: ["g"], attributes: ["alpha": .float(alpha)])
            : Node(name: "gate", opType: "Sigmoid", inputs: ["se2"], outputs: ["g"], attributes: [:])
        func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [String: AttributeValue] = [:]) -> Node {
            Node(name: output, opType: op, inputs: inputs, outputs: [output], attributes: attributes)
        }
        let nodes = [
            node("Conv", ["x", "w1", "b1"], "e"), node("Sigmoid", ["e"], "es"), node("Mul", ["e", "es"], "ea"),
            node("Conv", ["ea", "wd", "bd"], "d", ["group": .int(e), "pads": .ints([1, 1, 1, 1])]),
            node("Sigmoid", ["d"], "ds"), node("Mul", ["d", "ds"], "da"),
            node("GlobalAveragePool", ["da"], "p"), node("Conv", ["p", "ws1", "bs1"], "se1"), node("Relu", ["se1"], "se1r"),
            node("Conv", ["se1r", "ws2", "bs2"], "se2"), gate, node("Mul", ["da", "g"], "scaled"),
            node("Conv", ["scaled", "wp", "bp"], "proj"), node("Add", ["proj", "x"], "y"),
        ]
        return Graph(
            name: "se", nodes: nodes, inputs: [ValueInfo(name: "x", shape: [batch, c, 10, 10].map { .fixed($0) })],
            outputs: [ValueInfo(name: "y", shape: nil)],
            initializers: [
                "w1": weights([e, c, 1, 1], 0.4), "b1": weights([e], 0.1), "wd": weights([e, 1, 3, 3], 0.4), "bd": weights([e], 0.1),
                "ws1": weights([s, e, 1, 1], 0.4), "bs1": weights([s], 0.1), "ws2": weights([e, s, 1, 1], 0.6),
                "bs2": weights([e], 0.1), "wp": weights([c, e, 1, 1], 0.3), "bp": weights([c], 0.1),
            ])
    }

    @Test(arguments: [(1, false), (3, false), (1, true)])
    func matchesOnnxRuntime(_ config: (Int, Bool)) throws {
        let (batch, hard) = config
        let g = Self.graph(batch: batch, hardSigmoid: hard)
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("se.onnx")
        try ONNXExporter.write(g, to: file)
        let x = TestSupport.randomInput([batch, 8, 10, 10], seed: 5)
        let reference = try TestSupport.onnxRuntime(model: file, input: x, in: dir)
        try forEachComputeContext { compute in
            let session = try InferenceSession(contentsOf: file, compute: compute)
            let plan = try session.plan(batch: batch)
            let muls = plan.stepNames.filter { $0.hasPrefix("Mul ") }
            #expect(!compute.gemm.fusesChannelScales || muls.isEmpty, "\(compute): the gate's Mul should be fused unless OpenBLAS only, steps \(plan.stepNames)")
            let out = try session.run(x)
            let err = TestSupport.relativeError(out, reference)
            #expect(err <= 1e-5, "batch \(batch) hard \(hard) \(compute): max|Δ|/max|ref| = \(err)")
        }
    }
}
