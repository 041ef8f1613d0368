import BottleFitCore
import BottleFitEngine
import Testing

/// The Fashion-MNIST family (teacher, BottleFit, autoencoder baseline) built from
/// `ResNetConfiguration.fashionMNIST`: shapes of every value, parameter counts, and
/// parameter names that copy between teacher and students.
@Suite struct FashionMNISTModelTests {
    static let config = ResNetConfiguration.fashionMNIST

    /// Runs the graph at `batch` with every node output made a graph output; returns each value's shape.
    static func valueShapes(_ graph: Graph, batch: Int) throws -> [String: [Int]] {
        var g = graph
        g.outputs = graph.nodes.flatMap(\.outputs).map { ValueInfo(name: $0, shape: nil) }
        let input = TestSupport.randomInput([batch, 1, 28, 28], seed: 1)
        let values = try InferenceSession(graph: g).run(["input": input])
        #expect(values.count == g.outputs.count)
        return values.mapValues(\.shape)
    }

    /// Every value of a one-block basic stage has the stage's output shape (its first
    /// convolution carries the stride).
    static func stageShape(_ name: String) -> [Int]? {
        let stages: [(String, [Int])] = [("layer1", [2, 16, 14, 14]), ("layer2", [2, 32, 7, 7]), ("layer3", [2, 64, 4, 4]), ("layer4", [2, 128, 2, 2])]
        return stages.first { name == $0.0 || name.hasPrefix("\($0.0).0.") || name == "\($0.0).0" }?.1
    }

    static let classifierShapes: [String: [Int]] = ["avgpool": [2, 128, 1, 1], "flatten": [2, 128], "logits": [2, 10]]

    static func expectShapes(_ shapes: [String: [Int]], _ explicit: [String: [Int]]) {
        for (name, shape) in shapes {
            guard let expected = explicit[name] ?? classifierShapes[name] ?? stageShape(name) else {
                Issue.record("value '\(name)' \(shape) has no expected shape")
                continue
            }
            #expect(shape == expected, "\(name)")
        }
        for name in explicit.keys { #expect(shapes[name] != nil, "no value '\(name)'") }
    }

    @Test func teacherValueShapes() throws {
        let shapes = try Self.valueShapes(ModelFactory.resnet(Self.config), batch: 2)
        Self.expectShapes(shapes, ["conv1": [2, 16, 14, 14], "bn1": [2, 16, 14, 14], "relu": [2, 16, 14, 14]])
        for (i, name) in ["layer1", "layer2", "layer3", "layer4"].enumerated() {
            #expect(shapes[name] == [2] + Self.config.stageShape(i))
        }
    }

    @Test func bottleFitValueShapes() throws {
        let shapes = try Self.valueShapes(ModelFactory.bottleFitResNet(bottleneck: 2, Self.config), batch: 2)
        let stem = [2, 16, 14, 14]
        Self.expectShapes(shapes, [
            "encoder.conv1": stem, "encoder.bn1": stem, "encoder.relu1": stem, "encoder.bn2": stem, "encoder.relu2": stem,
            "bottleneck": [2, 2, 8, 8], "decoder.bn1": [2, 2, 8, 8], "decoder.relu1": [2, 2, 8, 8],
            "decoder.conv1": [2, 32, 9, 9], "decoder.bn2": [2, 32, 9, 9], "decoder.relu2": [2, 32, 9, 9],
            "decoder.conv2": [2, 32, 10, 10], "decoder.bn3": [2, 32, 10, 10], "decoder.relu3": [2, 32, 10, 10],
            "decoder.conv3": [2, 32, 9, 9], "decoder.bn4": [2, 32, 9, 9], "decoder.relu4": [2, 32, 9, 9],
            "decoder.conv4": [2, 32, 8, 8], "layer2": [2, 32, 7, 7],
        ])
        #expect(shapes["layer1"] == nil)
    }

    @Test func autoencoderValueShapes() throws {
        let c = 3
        let shapes = try Self.valueShapes(ModelFactory.autoencoderResNet(bottleneck: c, Self.config), batch: 2)
        let e = "autoencoder.encoder", d = "autoencoder.decoder"
        Self.expectShapes(shapes, [
            "conv1": [2, 16, 14, 14], "bn1": [2, 16, 14, 14], "relu": [2, 16, 14, 14],
            "\(e).conv1": [2, 8, 6, 6], "\(e).bn1": [2, 8, 6, 6], "\(e).relu1": [2, 8, 6, 6],
            "\(e).conv2": [2, 4, 5, 5], "\(e).bn2": [2, 4, 5, 5], "\(e).relu2": [2, 4, 5, 5],
            "\(e).conv3": [2, 2, 4, 4], "\(e).bn3": [2, 2, 4, 4], "\(e).relu3": [2, 2, 4, 4],
            "bottleneck": [2, c, 3, 3], "\(d).bn1": [2, c, 3, 3], "\(d).relu1": [2, c, 3, 3],
            "\(d).deconv1": [2, 2, 4, 4], "\(d).bn2": [2, 2, 4, 4], "\(d).relu2": [2, 2, 4, 4],
            "\(d).deconv2": [2, 4, 5, 5], "\(d).bn3": [2, 4, 5, 5], "\(d).relu3": [2, 4, 5, 5],
            "\(d).deconv3": [2, 8, 6, 6], "\(d).bn4": [2, 8, 6, 6], "\(d).relu4": [2, 8, 6, 6],
            "layer2.reconstructed": [2, 32, 7, 7],
        ])
    }

    // Hand-written parameter formulas (batch-norm running statistics are buffers, not parameters).
    static func conv(_ k: Int, _ i: Int, _ o: Int) -> Int { k * k * i * o }
    static func bn(_ c: Int) -> Int { 2 * c }
    static func basicBlock(_ i: Int, _ o: Int) -> Int {
        conv(3, i, o) + bn(o) + conv(3, o, o) + bn(o) + (i != o ? conv(1, i, o) + bn(o) : 0)
    }
    static let stem = conv(3, 1, 16) + bn(16)  // 176
    static let afterLayer2 = basicBlock(32, 64) + basicBlock(64, 128) + (128 * 10 + 10)  // 289,162

    @Test func parameterCounts() throws {
        #expect(Self.stem == 176 && Self.afterLayer2 == 289_162)
        let teacher = Self.stem + Self.basicBlock(16, 16) + Self.basicBlock(16, 32) + Self.afterLayer2
        #expect(teacher == 308_538)
        #expect(try ModelSummary(ModelFactory.resnet(Self.config)).parameters == teacher)
        for c in [1, 2, 3, 4, 6] {
            let (head, tail) = try ModelSplitter.split(ModelFactory.bottleFitResNet(bottleneck: c, Self.config), at: "bottleneck")
            // Encoder: stem conv + BN, BN, conv 2x2 16→C = 208 + 64·C.
            let encoder = Self.stem + Self.bn(16) + Self.conv(2, 16, c)
            #expect(encoder == 208 + 64 * c)
            #expect(try ModelSummary(head).parameters == encoder)
            // Decoder: BN(C), conv 2x2 C→32, three × (BN(32), conv 2x2 32→32) = 12,480 + 130·C.
            let decoder = Self.bn(c) + Self.conv(2, c, 32) + 3 * (Self.bn(32) + Self.conv(2, 32, 32))
            #expect(decoder == 12_480 + 130 * c)
            #expect(try ModelSummary(tail).parameters == decoder + Self.afterLayer2)

            let (aeHead, aeTail) = try ModelSplitter.split(ModelFactory.autoencoderResNet(bottleneck: c, Self.config), at: "bottleneck")
            // Encoder 32→8→4→2→C with three BNs = 1,212 + 8·C after the teacher's first 19,376.
            let aeEncoder = Self.conv(2, 32, 8) + Self.bn(8) + Self.conv(2, 8, 4) + Self.bn(4) + Self.conv(2, 4, 2) + Self.bn(2) + Self.conv(2, 2, c)
            #expect(aeEncoder == 1_212 + 8 * c)
            #expect(try ModelSummary(aeHead).parameters == Self.stem + Self.basicBlock(16, 16) + Self.basicBlock(16, 32) + aeEncoder)
            // Decoder: BN(C), C→2, BN(2), 2→4, BN(4), 4→8, BN(8), 8→32 with a bias = 1,244 + 10·C.
            let aeDecoder = Self.bn(c) + Self.conv(2, c, 2) + Self.bn(2) + Self.conv(2, 2, 4) + Self.bn(4) + Self.conv(2, 4, 8) + Self.bn(8) + Self.conv(2, 8, 32) + 32
            #expect(aeDecoder == 1_244 + 10 * c)
            #expect(try ModelSummary(aeTail).parameters == aeDecoder + Self.afterLayer2)
        }
    }

    /// Every layer3/layer4/fc parameter of a student is the teacher's, by name and shape;
    /// the autoencoder model holds every teacher parameter.
    @Test(arguments: [ResNetConfiguration.fashionMNIST, ResNetConfiguration(width: 8, classes: 10, imageSize: 96)])
    func studentsShareTheTeachersNames(config: ResNetConfiguration) throws {
        let teacher = ModelFactory.resnet(config).initializers
        let shared = ["layer3.", "layer4.", "fc."]
        let teacherShared = teacher.keys.filter { k in shared.contains { k.hasPrefix($0) } }
        #expect(teacherShared.count > 10)
        let bottleFit = ModelFactory.bottleFitResNet(bottleneck: 2, config).initializers
        let ae = ModelFactory.autoencoderResNet(bottleneck: 2, config).initializers
        for name in teacherShared {
            #expect(bottleFit[name]?.shape == teacher[name]!.shape, "\(name)")
            #expect(ae[name]?.shape == teacher[name]!.shape, "\(name)")
        }
        for (name, t) in teacher { #expect(ae[name]?.shape == t.shape, "autoencoder model lacks \(name)") }
        for name in ae.keys where !name.hasPrefix("autoencoder.") { #expect(teacher[name] != nil, "\(name)") }
        // The encoder's stem has the teacher's stem shapes, so it can start from the teacher's weights.
        for p in ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"] {
            #expect(bottleFit["encoder.\(p)"]?.shape == teacher[p]!.shape, "\(p)")
        }
    }

    /// Parts can be frozen by prefix: every parameter belongs to exactly one part.
    @Test func parameterPrefixesNameTheParts() throws {
        let bottleFit = ModelFactory.bottleFitResNet(bottleneck: 2, Self.config)
        let parts = ["encoder.", "decoder.", "layer3.", "layer4.", "fc."]
        for name in bottleFit.initializers.keys { #expect(parts.filter { name.hasPrefix($0) }.count == 1, "\(name)") }
        let (head, tail) = try ModelSplitter.split(bottleFit, at: "bottleneck")
        #expect(head.initializers.keys.allSatisfy { $0.hasPrefix("encoder.") })
        #expect(tail.initializers.keys.allSatisfy { !$0.hasPrefix("encoder.") })
        let ae = ModelFactory.autoencoderResNet(bottleneck: 2, Self.config)
        let aeParts = ["conv1.", "bn1.", "layer1.", "layer2.", "autoencoder.encoder.", "autoencoder.decoder.", "layer3.", "layer4.", "fc."]
        for name in ae.initializers.keys { #expect(aeParts.filter { name.hasPrefix($0) }.count == 1, "\(name)") }
    }

    @Test func metadataNamesTheFamily() throws {
        #expect(ModelFactory.resnet(Self.config).metadata == ["bottlefit.architecture": "resnet-fmnist", "bottlefit.part": "full"])
        let bottleFit = ModelFactory.bottleFitResNet(bottleneck: 4, Self.config)
        #expect(bottleFit.name == "bottlefit_resnet_fmnist_c4")
        #expect(bottleFit.metadata["bottlefit.architecture"] == "bottlefit-resnet-fmnist")
        #expect(bottleFit.metadata["bottlefit.bottleneck_channels"] == "4")
        let ae = ModelFactory.autoencoderResNet(bottleneck: 4, Self.config)
        #expect(ae.metadata["bottlefit.architecture"] == "autoencoder-resnet-fmnist")
        #expect(ae.metadata["bottlefit.bottleneck"] == "bottleneck")
        // The bottleneck is reported for the head (its output), the tail (its input) and the full model.
        let (head, tail) = try ModelSplitter.split(ae, at: "bottleneck")
        for g in [head, tail, ae] {
            let s = try ModelSummary(g)
            #expect(s.bottleneck?.shape == [1, 4, 3, 3] && s.bottleneck?.bytes == 36, "\(g.name)")
        }
        #expect(try ModelSummary(ModelFactory.resnet(Self.config)).bottleneck == nil)
        #expect(ModelFactory.autoencoderResNet(bottleneck: 4).metadata["bottlefit.architecture"] == "autoencoder-resnet50")
    }

    @Test func decoderSizeCheckRejectsABadConfiguration() throws {
        // 30 px: the stem gives 15x15, layer2 8x8, but the bottleneck 8x8 decodes to 7x7.
        var bad = Self.config
        bad.imageSize = 30
        do {
            try ModelFactory.checkBottleFitResNet(bottleneck: 2, bad)
            Issue.record("a decoder that misses layer2's size was accepted")
        } catch {
            #expect(error.description.contains("2x8x8 bottleneck into 32x7x7"), "\(error)")
            #expect(error.description.contains("layer2 is 32x8x8"), "\(error)")
        }
        var imageNet = ResNetConfiguration.resnet50
        imageNet.imageSize = 100
        #expect(throws: EngineError.self) { try ModelFactory.checkBottleFitResNet(bottleneck: 12, imageNet) }
        for c in [1, 2, 3, 4, 6, 12] {
            try ModelFactory.checkBottleFitResNet(bottleneck: c, .resnet50)
            try ModelFactory.checkBottleFitResNet(bottleneck: c, Self.config)
            try ModelFactory.checkAutoencoderResNet(bottleneck: c, Self.config)
        }
        #expect(throws: EngineError.self) { try ModelFactory.checkBottleFitResNet(bottleneck: 0, Self.config) }
        var narrow = Self.config
        narrow.width = 4  // layer2 has 8 channels: L/16 would be 0
        #expect(throws: EngineError.self) { try ModelFactory.checkAutoencoderResNet(bottleneck: 2, narrow) }
        var blocks = Self.config
        blocks.blocks = [1, 1, 1]
        #expect(throws: EngineError.self) { try blocks.validate() }
    }

    @Test func builderTrapsOnABadConfiguration() async {
        await #expect(processExitsWith: .failure) {
            var bad = ResNetConfiguration.fashionMNIST
            bad.imageSize = 30
            _ = ModelFactory.bottleFitResNet(bottleneck: 2, bad)
        }
    }

    @Test func widthAndBlocksAreEasyToChange() throws {
        var wide = Self.config
        wide.width = 32
        wide.blocks = [2, 2, 2, 2]
        let shapes = try Self.valueShapes(ModelFactory.resnet(wide), batch: 1)
        #expect(shapes["layer2"] == [1, 64, 7, 7] && shapes["layer4"] == [1, 256, 2, 2])
        #expect(shapes["layer1.0"] == [1, 32, 14, 14] && shapes["layer2.0"] == [1, 64, 7, 7])
        let (head, _) = try ModelSplitter.split(ModelFactory.bottleFitResNet(bottleneck: 2, wide), at: "bottleneck")
        #expect(head.outputs[0].shape == [.symbolic("batch"), .fixed(2), .fixed(8), .fixed(8)])
    }
}
