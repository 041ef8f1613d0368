import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// The engine against ONNX Runtime on the same ONNX files and inputs, on narrow versions of
/// the BottleFit ResNet-50 and ResNet-50 topologies (scripts/check-parity does full size)
/// and on the Fashion-MNIST family at its real size.
@Suite struct ParityTests {
    static let narrow = ResNetConfiguration(width: 8, classes: 10, imageSize: 224)
    static let tolerance = 1e-4

    /// Randomises every batch-norm's statistics so folding them into convolutions matters.
    static func randomizeBatchNorms(_ graph: Graph, seed: UInt64) -> Graph {
        var g = graph
        var rng = SeededGenerator(seed: seed)
        for n in g.nodes where n.opType == "BatchNormalization" {
            for (i, (lo, hi)) in [(0.5, 1.5), (-0.2, 0.2), (-0.2, 0.2), (0.5, 2.0)].enumerated() {
                let name = n.inputs[i + 1]
                let c = g.initializers[name]!.count
                g.initializers[name] = Tensor(shape: [c], floats: (0..<c).map { _ in Float(lo) + rng.nextUnit() * Float(hi - lo) })
            }
        }
        return g
    }

    func checkAgainstOnnxRuntime(_ graph: Graph, inputShape: [Int], label: String) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("\(label).onnx")
        try ONNXExporter.write(graph, to: file)
        let session = try InferenceSession(contentsOf: file)
        for batch in [1, 4] {
            var shape = inputShape
            shape[0] = batch
            let x = TestSupport.randomInput(shape, seed: UInt64(batch))
            let ours = try session.run(x)
            let reference = try TestSupport.onnxRuntime(model: file, input: x, in: dir)
            #expect(ours.shape == reference.shape)
            let err = TestSupport.relativeError(ours, reference)
            #expect(err <= Self.tolerance, "\(label) batch \(batch): max|Δ|/max|ref| = \(err)")
        }
    }

    @Test func bottleFitHeadTailAndFull() throws {
        let full = Self.randomizeBatchNorms(ModelFactory.bottleFitResNet(bottleneck: 12, Self.narrow, seed: 3), seed: 4)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        try checkAgainstOnnxRuntime(head, inputShape: [1, 3, 224, 224], label: "head")
        try checkAgainstOnnxRuntime(tail, inputShape: [1, 12, 29, 29], label: "tail")
        try checkAgainstOnnxRuntime(full, inputShape: [1, 3, 224, 224], label: "full")
    }

    @Test func resnet50() throws {
        let config = ResNetConfiguration(width: 8, classes: 10, imageSize: 96)
        let g = Self.randomizeBatchNorms(ModelFactory.resnet(config, seed: 5), seed: 6)
        try checkAgainstOnnxRuntime(g, inputShape: [1, 3, 96, 96], label: "resnet50")
    }

    /// The Fashion-MNIST teacher, BottleFit model and autoencoder baseline (full, head and tail).
    @Test func fashionMNISTModels() throws {
        let config = ResNetConfiguration.fashionMNIST
        let teacher = Self.randomizeBatchNorms(ModelFactory.resnet(config, seed: 11), seed: 12)
        try checkAgainstOnnxRuntime(teacher, inputShape: [1, 1, 28, 28], label: "resnet-fmnist")
        let bottleFit = Self.randomizeBatchNorms(ModelFactory.bottleFitResNet(bottleneck: 2, config, seed: 13), seed: 14)
        let (head, tail) = try ModelSplitter.split(bottleFit, at: ModelFactory.bottleneckName)
        try checkAgainstOnnxRuntime(bottleFit, inputShape: [1, 1, 28, 28], label: "bottlefit-fmnist")
        try checkAgainstOnnxRuntime(head, inputShape: [1, 1, 28, 28], label: "bottlefit-fmnist-head")
        try checkAgainstOnnxRuntime(tail, inputShape: [1, 2, 8, 8], label: "bottlefit-fmnist-tail")
        let ae = Self.randomizeBatchNorms(ModelFactory.autoencoderResNet(bottleneck: 3, config, seed: 15), seed: 16)
        let (aeHead, aeTail) = try ModelSplitter.split(ae, at: ModelFactory.bottleneckName)
        try checkAgainstOnnxRuntime(ae, inputShape: [1, 1, 28, 28], label: "autoencoder-fmnist")
        try checkAgainstOnnxRuntime(aeHead, inputShape: [1, 1, 28, 28], label: "autoencoder-fmnist-head")
        try checkAgainstOnnxRuntime(aeTail, inputShape: [1, 3, 3, 3], label: "autoencoder-fmnist-tail")
    }

    /// The autoencoder baseline on a narrow ResNet-50: ConvTranspose on larger maps.
    @Test func autoencoderResNet50Tail() throws {
        let config = ResNetConfiguration(width: 8, classes: 10, imageSize: 96)
        let ae = Self.randomizeBatchNorms(ModelFactory.autoencoderResNet(bottleneck: 5, config, seed: 17), seed: 18)
        let (_, tail) = try ModelSplitter.split(ae, at: ModelFactory.bottleneckName)
        try checkAgainstOnnxRuntime(tail, inputShape: [1, 5, 8, 8], label: "autoencoder-resnet50-tail")
    }

    @Test func headThenTailEqualsFull() throws {
        let full = Self.randomizeBatchNorms(ModelFactory.bottleFitResNet(bottleneck: 6, Self.narrow, seed: 8), seed: 9)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        let x = TestSupport.randomInput([2, 3, 224, 224], seed: 10)
        let z = try InferenceSession(graph: head).run(x)
        #expect(z.shape == [2, 6, 29, 29])
        let y = try InferenceSession(graph: tail).run(z)
        let reference = try InferenceSession(graph: full).run(x)
        #expect(TestSupport.relativeError(y, reference) < 1e-5)
        // Unoptimised execution (no folding, no fusion) agrees with the optimised plan.
        let plain = try InferenceSession(graph: full, optimize: false).run(x)
        #expect(TestSupport.relativeError(plain, reference) < 1e-4)
    }
}
