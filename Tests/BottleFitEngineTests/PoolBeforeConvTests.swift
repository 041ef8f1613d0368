import BottleFitCore
import Foundation
import Testing

@testable import BottleFitEngine

/// A 1x1 Conv followed by an average pool runs as the pool and then the Conv (on fewer
/// pixels) where that gives the same values: the Conv is plain (stride 1, unpadded, nothing
/// fused) and its output is read only by an unpadded AveragePool or a GlobalAveragePool.
/// Every case must give ONNX Runtime's output, rewritten or not.
@Suite struct PoolBeforeConvTests {
    /// x → BatchNormalization → ReLU → Conv → pool → y, the Conv and pool as given; with
    /// `extraReader`, a GlobalAveragePool also reads the Conv's output (into a second output);
    /// with `zeroPad`, a Pad of zeros sits between the Conv and the pool.
    static func graph(
        convAttributes: [String: AttributeValue] = [:], kernel: Int = 1, pool: String = "AveragePool",
        poolAttributes: [String: AttributeValue] = ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])],
        extraReader: Bool = false, zeroPad: Bool = false
    ) -> Graph {
        var rng = SeededGenerator(seed: 77)
        func weights(_ shape: [Int], _ scale: Float, offset: Float = 0) -> Tensor {
            Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() * scale + offset })
        }
        let c = 12, m = 10
        var nodes = [
            Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "g", "b", "mean", "var"], outputs: ["n"]),
            Node(name: "relu", opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "conv", opType: "Conv", inputs: ["r", "w", "bias"], outputs: ["c"], attributes: convAttributes),
            Node(name: "pool", opType: pool, inputs: [zeroPad ? "p" : "c"], outputs: ["y"], attributes: pool == "AveragePool" ? poolAttributes : [:]),
        ]
        if zeroPad { nodes.insert(Node(name: "pad", opType: "Pad", inputs: ["c", "pads"], outputs: ["p"]), at: 3) }
        var outputs = [ValueInfo(name: "y", shape: nil)]
        if extraReader {
            nodes.append(Node(name: "gap", opType: "GlobalAveragePool", inputs: ["c"], outputs: ["z"]))
            outputs.append(ValueInfo(name: "z", shape: nil))
        }
        var initializers: [String: Tensor] = [
            "g": weights([c], 0.3, offset: 1), "b": weights([c], 0.2), "mean": weights([c], 0.2),
            "var": Tensor(shape: [c], floats: (0..<c).map { _ in abs(rng.nextNormal()) + 0.5 }),
            "w": weights([m, c, kernel, kernel], 0.3), "bias": weights([m], 0.5),
        ]
        if zeroPad { initializers["pads"] = Tensor(shape: [8], int64s: [Int64](repeating: 0, count: 8)) }
        return Graph(
            name: "pool-conv", nodes: nodes, inputs: [ValueInfo(name: "x", shape: [.symbolic("N"), .fixed(c), .fixed(14), .fixed(14)])],
            outputs: outputs, initializers: initializers)
    }

    /// The node types in order after load-time optimisation.
    static func optimizedOrder(_ g: Graph) -> [String] { GraphOptimizer.optimize(g).nodes.map(\.opType) }

    static let cases: [(String, Graph, rewritten: Bool)] = [
        ("2x2/2 average pool", graph(), true),
        ("3x3/2 average pool", graph(poolAttributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])]), true),
        ("global average pool", graph(pool: "GlobalAveragePool"), true),
        ("behind a zero Pad (torch's AvgPool2d export)", graph(zeroPad: true), true),
        ("explicit zero pads and strides", graph(convAttributes: ["pads": .ints([0, 0, 0, 0]), "strides": .ints([1, 1])]), true),
        ("padded Conv", graph(convAttributes: ["pads": .ints([1, 1, 1, 1])]), false),
        ("strided Conv", graph(convAttributes: ["strides": .ints([2, 2])]), false),
        ("3x3 Conv", graph(kernel: 3), false),
        (
            "pool counting its padding",
            graph(poolAttributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "count_include_pad": .int(1)]),
            false
        ),
        ("ceil mode", graph(poolAttributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]), false),
        ("Conv output read twice", graph(extraReader: true), false),
    ]

    @Test func rewritesOnlyWhereTheValuesAreTheSame() {
        for (name, g, rewritten) in Self.cases {
            let order = Self.optimizedOrder(g)
            let pool = order.firstIndex { $0.hasSuffix("AveragePool") }, conv = order.firstIndex(of: "Conv")
            #expect(pool != nil && conv != nil, "\(name): \(order)")
            if let pool, let conv { #expect((pool < conv) == rewritten, "\(name): \(order)") }
        }
    }

    @Test(arguments: [1, 2])
    func matchesOnnxRuntime(_ batch: Int) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (index, (name, g, _)) in Self.cases.enumerated() where g.outputs.count == 1 {
            let file = dir.appendingPathComponent("case\(index).onnx")
            try ONNXExporter.write(g, to: file)
            let x = TestSupport.randomInput([batch, 12, 14, 14], seed: UInt64(30 + index))
            let reference = try TestSupport.onnxRuntime(model: file, input: x, in: dir)
            try forEachComputeContext(threadCounts: [1]) { compute in
                let session = try InferenceSession(contentsOf: file, compute: compute)
                let err = TestSupport.relativeError(try session.run(x), reference)
                #expect(err <= 1e-5, "\(name), batch \(batch), \(compute): max|Δ|/max|ref| = \(err)")
            }
        }
    }
}
