import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

@Suite struct ModelTests {
    @Test func bottleFitResNet50MatchesThePaper() throws {
        let full = ModelFactory.bottleFitResNet(bottleneck: 12)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        let h = try ModelSummary(head)
        // Head parameters: 9,664 + 256·C.
        #expect(h.parameters == 9_664 + 256 * 12)
        #expect(h.bottleneck?.shape == [1, 12, 29, 29])
        #expect(h.bottleneck?.bytes == 10_092)
        #expect(abs(Double(h.macs) / 1e9 - 0.121) < 0.01)
        let t = try ModelSummary(tail)
        #expect(abs(Double(t.macs) / 1e9 - 5.13) < 0.05, "tail GMAC \(Double(t.macs) / 1e9)")
        #expect(tail.inputs[0].shape == [.symbolic("batch"), .fixed(12), .fixed(29), .fixed(29)])
        let r = try ModelSummary(ModelFactory.resnet())
        #expect(abs(Double(r.macs) / 1e9 - 4.09) < 0.05, "ResNet-50 GMAC \(Double(r.macs) / 1e9)")
        #expect(r.parameters == 25_557_032)
    }

    /// Fingerprints (nodes, names, attributes, metadata, exact weights) taken before the
    /// builders learned basic blocks and compact stems: the ImageNet models must not change.
    @Test func imageNetGraphsAreUnchanged() {
        let narrow = ResNetConfiguration(width: 8, classes: 10, imageSize: 96)
        #expect(GraphFingerprint.of(ModelFactory.resnet()) == 0x35b1_9234_2286_e0ed)
        #expect(GraphFingerprint.of(ModelFactory.bottleFitResNet(bottleneck: 12)) == 0xc566_4869_1b58_3455)
        #expect(GraphFingerprint.of(ModelFactory.resnet(narrow, seed: 5)) == 0x3e5e_a96e_03c3_3756)
        #expect(GraphFingerprint.of(ModelFactory.bottleFitResNet(bottleneck: 3, narrow, seed: 7)) == 0xb5cf_4fb6_bb85_1365)
    }

    @Test func decoderRestoresLayer2Shape() throws {
        let g = ModelFactory.bottleFitResNet(bottleneck: 3, ResNetConfiguration(width: 4, classes: 5))
        let (_, tail) = try ModelSplitter.split(g, at: "layer2")
        #expect(tail.inputs[0].shape == [.symbolic("batch"), .fixed(32), .fixed(28), .fixed(28)])
    }

    @Test func onnxRoundTripKeepsTheGraph() throws {
        let g = ModelFactory.bottleFitResNet(bottleneck: 4, ResNetConfiguration(width: 4, classes: 5), seed: 2)
        let back = try ONNXImporter.decode(try ONNXExporter.encode(g))
        #expect(back.nodes == g.nodes)
        #expect(back.initializers == g.initializers)
        #expect(back.inputs == g.inputs)
        #expect(back.outputs == g.outputs)
        #expect(back.metadata == g.metadata)
    }

    @Test func splitRefusesACutThatASkipConnectionCrosses() throws {
        let g = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5))
        do {
            _ = try ModelSplitter.split(g, at: "layer1.0.relu1")
            Issue.record("a cut inside a residual block was accepted")
        } catch {
            #expect(error.description.contains("also crossed by 'maxpool'"), "\(error)")
        }
        #expect(throws: EngineError.self) { try ModelSplitter.split(g, at: "no-such-tensor") }
        #expect(throws: EngineError.self) { try ModelSplitter.split(g, at: "input") }
        let (head, tail) = try ModelSplitter.split(g, at: "layer2")
        #expect(head.outputs.map(\.name) == ["layer2"])
        #expect(tail.inputs.map(\.name) == ["layer2"])
        #expect(Set(head.initializers.keys).isDisjoint(with: tail.initializers.keys))
    }

    @Test func seedsAreReproducible() {
        let a = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5), seed: 11)
        let b = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5), seed: 11)
        let c = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5), seed: 12)
        #expect(a == b)
        #expect(a.initializers != c.initializers)
    }
}

@Suite struct EngineErrorTests {
    func model(_ node: Node, inputs: [ValueInfo], outputs: [ValueInfo], initializers: [String: Tensor] = [:]) -> Graph {
        Graph(name: "t", nodes: [node], inputs: inputs, outputs: outputs, initializers: initializers)
    }

    @Test func unsupportedOperatorIsNamed() {
        let g = model(
            Node(name: "n1", opType: "Einsum", inputs: ["x"], outputs: ["y"]),
            inputs: [ValueInfo(name: "x", shape: [.fixed(2)])], outputs: [ValueInfo(name: "y", shape: nil)])
        #expect(throws: EngineError.unsupportedOperator("Einsum", node: "n1")) { try InferenceSession(graph: g) }
    }

    @Test func unsupportedAttributeIsNamed() {
        let g = model(
            Node(name: "n1", opType: "Relu", inputs: ["x"], outputs: ["y"], attributes: ["mystery": .int(1)]),
            inputs: [ValueInfo(name: "x", shape: [.fixed(2)])], outputs: [ValueInfo(name: "y", shape: nil)])
        do {
            _ = try InferenceSession(graph: g)
            Issue.record("unknown attribute accepted")
        } catch {
            #expect(error.description.contains("mystery"))
        }
    }

    @Test func wrongInputShapeIsAnError() throws {
        let g = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5, imageSize: 64))
        let session = try InferenceSession(graph: g)
        #expect(throws: EngineError.self) { try session.run(Tensor.zeros([1, 3, 32, 32])) }
        #expect(throws: EngineError.self) { try session.run(Tensor.zeros([1, 64, 64])) }
    }

    @Test func garbageIsNotAModel() {
        #expect(throws: EngineError.self) { try ONNXImporter.decode(Data([0xFF, 0x01, 0x02, 0x03, 0x99])) }
        #expect(throws: EngineError.self) { try ONNXImporter.decode(Data()) }
    }

    @Test func steadyStateReusesThePlan() throws {
        let g = ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5, imageSize: 64))
        let session = try InferenceSession(graph: g)
        let p1 = try session.plan(batch: 2)
        let p2 = try session.plan(batch: 2)
        #expect(p1 === p2)
        // Buffers are reused by liveness: far less than one buffer per value.
        #expect(p1.arenaBytes * 2 < p1.unsharedBytes, "arena \(p1.arenaBytes) of \(p1.unsharedBytes)")
        // Running the same plan again gives the same result from the same buffers.
        let x = TestSupport.randomInput([2, 3, 64, 64], seed: 1)
        try p1.setInput("input", x)
        p1.execute()
        let first = p1.output("logits")
        p1.execute()
        #expect(p1.output("logits") == first)
    }
}
