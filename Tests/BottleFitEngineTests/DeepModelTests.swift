import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// DenseNet-169/201 and ResNet-152 and their BottleFit forms: full ImageNet sizes by shape
/// inference only (nothing runs), numerics on small configurations against ONNX Runtime.
@Suite struct DeepModelTests {
    /// Small enough to run in a debug build: growth rate 4 (8 stem channels), 64 px, 10 classes.
    static func smallDenseNet(_ base: DenseNetConfiguration) -> DenseNetConfiguration {
        var c = base
        c.growthRate = 4
        c.initialFeatures = 8
        c.imageSize = 64
        c.classes = 10
        return c
    }

    static let smallResNet152 = { () -> ResNetConfiguration in
        var c = ResNetConfiguration.resnet152
        c.width = 4
        c.imageSize = 64
        c.classes = 10
        return c
    }()

    /// Parameter counts and MACs of torchvision's models (sum of `p.numel()`; Conv and Linear
    /// multiply-accumulates of a 224 px image, counted with forward hooks in torchvision 0.14).
    @Test(arguments: [
        (DenseNetConfiguration.densenet169, 14_149_480, 3_359_843_328),
        (DenseNetConfiguration.densenet201, 20_013_928, 4_291_365_888),
    ])
    func denseNetTeachersMatchTorchvision(config: DenseNetConfiguration, parameters: Int, macs: Int) throws {
        let s = try ModelSummary(ModelFactory.denseNet(config))
        #expect(s.parameters == parameters)
        #expect(s.macs == macs)
        #expect(s.metadata["bottlefit.architecture"] == config.name)
    }

    @Test func resNet152MatchesTorchvision() throws {
        let s = try ModelSummary(ModelFactory.resnet(.resnet152))
        #expect(s.parameters == 60_192_808)
        #expect(s.macs == 11_513_626_624)
        #expect(s.metadata["bottlefit.architecture"] == "resnet152")
        let bottleFit = ModelFactory.bottleFitResNet(bottleneck: 12, .resnet152)
        #expect(bottleFit.metadata["bottlefit.architecture"] == "bottlefit-resnet152")
        let (head, tail) = try ModelSplitter.split(bottleFit, at: ModelFactory.bottleneckName)
        let h = try ModelSummary(head)
        #expect(h.parameters == 9_664 + 256 * 12)
        #expect(h.bottleneck?.shape == [1, 12, 29, 29])
        let (_, fromLayer2) = try ModelSplitter.split(bottleFit, at: "layer2")
        #expect(fromLayer2.inputs[0].shape == [.symbolic("batch"), .fixed(512), .fixed(28), .fixed(28)])
        #expect(tail.inputs[0].shape == [.symbolic("batch"), .fixed(12), .fixed(29), .fixed(29)])
    }

    /// The reference code's form at full size: head = the ResNet encoder (9,664 + 256·C
    /// parameters), bottleneck C x 29 x 29, decoder output 256 x 14 x 14 (transition2's shape),
    /// and every parameter after the decoder is the teacher's, by name and shape. The totals are
    /// those of torchdistill's `custom_densenet169/201(bottleneck_channel=12)` rebuilt in PyTorch.
    @Test(arguments: [(DenseNetConfiguration.densenet169, 14_857_408), (.densenet201, 20_721_856)])
    func bottleFitDenseNetShapes(config: DenseNetConfiguration, parameters: Int) throws {
        let full = ModelFactory.bottleFitDenseNet(bottleneck: 12, config)
        #expect(try ModelSummary(full).parameters == parameters)
        #expect(full.metadata["bottlefit.architecture"] == "bottlefit-\(config.name)")
        #expect(full.metadata["bottlefit.bottleneck"] == ModelFactory.bottleneckName)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        let h = try ModelSummary(head)
        #expect(head.outputs.map(\.name) == ["bottleneck"])
        #expect(h.parameters == 9_664 + 256 * 12)
        #expect(h.bottleneck?.shape == [1, 12, 29, 29])
        #expect(h.bottleneck?.bytes == 10_092)
        #expect(tail.inputs[0].shape == [.symbolic("batch"), .fixed(12), .fixed(29), .fixed(29)])
        let (_, afterDecoder) = try ModelSplitter.split(full, at: "transition2")
        #expect(afterDecoder.inputs[0].shape == [.symbolic("batch"), .fixed(256), .fixed(14), .fixed(14)])

        let teacher = ModelFactory.denseNet(config)
        let (_, teacherTail) = try ModelSplitter.split(teacher, at: "transition2")
        #expect(teacherTail.inputs == afterDecoder.inputs)
        let shapes = { (g: Graph) in g.initializers.mapValues(\.shape) }
        #expect(shapes(teacherTail) == shapes(afterDecoder))
        #expect(full.initializers.keys.allSatisfy { $0.hasPrefix("encoder.") || $0.hasPrefix("decoder.") || teacherTail.initializers[$0] != nil })
    }

    @Test func denseNetGeometryAndChecks() throws {
        let c = DenseNetConfiguration.densenet169
        #expect((0..<4).map(c.blockOutputChannels) == [256, 512, 1280, 1664])
        #expect((0..<3).map(c.transitionChannels) == [128, 256, 640])
        #expect((0..<4).map(c.blockOutputSize) == [56, 28, 14, 7])
        #expect(DenseNetConfiguration.densenet201.blockOutputChannels(3) == 1920)
        #expect(ModelFactory.bottleFitBottleneckSize(c) == 29)
        var tiny = c
        tiny.imageSize = 28
        #expect(throws: EngineError.self) { try tiny.validate() }
        tiny.imageSize = 29
        try ModelFactory.checkBottleFitDenseNet(bottleneck: 1, tiny)
        #expect(throws: EngineError.self) { try ModelFactory.checkBottleFitDenseNet(bottleneck: 0, c) }
        var shallow = c
        shallow.blocks = [6, 12, 32]
        #expect(throws: EngineError.self) { try shallow.validate() }
        // Every size the configuration accepts, the decoder lands on transition2.
        for size in 29...80 {
            var s = c
            s.imageSize = size
            try ModelFactory.checkBottleFitDenseNet(bottleneck: 2, s)
        }
    }

    @Test(arguments: [DenseNetConfiguration.densenet169, .densenet201])
    func denseNetsAgreeWithOnnxRuntime(base: DenseNetConfiguration) throws {
        let config = Self.smallDenseNet(base)
        let teacher = ParityTests.randomizeBatchNorms(ModelFactory.denseNet(config, seed: 21), seed: 22)
        try ParityTests().checkAgainstOnnxRuntime(teacher, inputShape: [1, 3, 64, 64], label: config.name)
        let full = ParityTests.randomizeBatchNorms(ModelFactory.bottleFitDenseNet(bottleneck: 3, config, seed: 23), seed: 24)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        try ParityTests().checkAgainstOnnxRuntime(full, inputShape: [1, 3, 64, 64], label: "bottlefit-\(config.name)")
        try ParityTests().checkAgainstOnnxRuntime(head, inputShape: [1, 3, 64, 64], label: "bottlefit-\(config.name)-head")
        try ParityTests().checkAgainstOnnxRuntime(tail, inputShape: [1, 3, 9, 9], label: "bottlefit-\(config.name)-tail")
        // Head then tail is the full model.
        let x = TestSupport.randomInput([2, 3, 64, 64], seed: 25)
        let z = try InferenceSession(graph: head).run(x)
        #expect(z.shape == [2, 3, 9, 9])
        let y = try InferenceSession(graph: tail).run(z)
        #expect(TestSupport.relativeError(y, try InferenceSession(graph: full).run(x)) < 1e-5)
    }

    @Test func resNet152AgreesWithOnnxRuntime() throws {
        let config = Self.smallResNet152
        let full = ParityTests.randomizeBatchNorms(ModelFactory.bottleFitResNet(bottleneck: 2, config, seed: 31), seed: 32)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        try ParityTests().checkAgainstOnnxRuntime(full, inputShape: [1, 3, 64, 64], label: "bottlefit-resnet152")
        try ParityTests().checkAgainstOnnxRuntime(tail, inputShape: [1, 2, 9, 9], label: "bottlefit-resnet152-tail")
        let teacher = ParityTests.randomizeBatchNorms(ModelFactory.resnet(config, seed: 33), seed: 34)
        try ParityTests().checkAgainstOnnxRuntime(teacher, inputShape: [1, 3, 64, 64], label: "resnet152")
        let x = TestSupport.randomInput([2, 3, 64, 64], seed: 35)
        let y = try InferenceSession(graph: tail).run(try InferenceSession(graph: head).run(x))
        #expect(TestSupport.relativeError(y, try InferenceSession(graph: full).run(x)) < 1e-5)
    }

    @Test func seedsAreReproducible() {
        let config = Self.smallDenseNet(.densenet169)
        #expect(ModelFactory.bottleFitDenseNet(bottleneck: 2, config, seed: 4) == ModelFactory.bottleFitDenseNet(bottleneck: 2, config, seed: 4))
        #expect(ModelFactory.denseNet(config, seed: 4).initializers != ModelFactory.denseNet(config, seed: 5).initializers)
    }
}
