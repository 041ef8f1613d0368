import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import Foundation
import Testing

/// A small BottleFit ResNet, split at the bottleneck and written as ONNX to a temp directory,
/// with in-process references: head, tail and full sessions the tests compute expectations with.
final class WorkerTestModels: @unchecked Sendable {
    // @unchecked: the sessions are used only under `lock`, one caller at a time.
    static let shared: WorkerTestModels = {
        do { return try WorkerTestModels() } catch { fatalError("cannot build the test models: \(error)") }
    }()

    static let modelName = "tiny-bottlefit"
    let directory: URL
    let tailURL: URL
    let fullURL: URL
    /// The bottleneck shape without the batch, from the graph (not assumed).
    let bottleneckShape: [Int]
    let imageSize = 64
    let classes = 10
    private let head: InferenceSession
    private let tail: InferenceSession
    private let full: InferenceSession
    private let lock = NSLock()

    private init() throws {
        let graph = ModelFactory.bottleFitResNet(bottleneck: 4, ResNetConfiguration(width: 4, classes: 10, imageSize: 64))
        let (headGraph, tailGraph) = try ModelSplitter.split(graph, at: ModelFactory.bottleneckName)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-worker-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        tailURL = directory.appendingPathComponent("tail.onnx")
        fullURL = directory.appendingPathComponent("full.onnx")
        try ONNXExporter.write(tailGraph, to: tailURL)
        try ONNXExporter.write(graph, to: fullURL)
        head = try InferenceSession(graph: headGraph)
        tail = try InferenceSession(contentsOf: tailURL)
        full = try InferenceSession(contentsOf: fullURL)
        bottleneckShape = try InferenceSession.concreteShape(tail.optimizedGraph.inputs[0], batch: 1).dropFirst().map { $0 }
    }

    /// A deterministic image-like input [1, 3, 64, 64].
    func image(seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        let n = 3 * imageSize * imageSize
        return Tensor(shape: [1, 3, imageSize, imageSize], floats: (0..<n).map { _ in g.nextNormal() })
    }

    /// The camera side: head, then quantization, as a device would send it.
    func bottleneck(seed: UInt64) throws -> QuantizedTensor {
        let b = try lock.withLock { try head.run(image(seed: seed)) }
        var q = try BottleneckQuantizer().quantize(b)
        q.shape = Array(q.shape.dropFirst())  // FRAME "sh" has no batch dimension
        return q
    }

    /// Softmax of the tail on the dequantized bottleneck: what the worker should report.
    func referenceProbabilities(_ q: QuantizedTensor) throws -> [Float] {
        let x = BottleneckQuantizer().dequantize(q).reshaped([1] + q.shape)
        return softmax(try lock.withLock { try tail.run(x) }.floats!)
    }

    /// Softmax of the full model on a preprocessed image.
    func referenceProbabilities(image: Tensor) throws -> [Float] {
        softmax(try lock.withLock { try full.run(image) }.floats!)
    }

    private func softmax(_ logits: [Float]) -> [Float] {
        let m = logits.max()!
        let e = logits.map { exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    /// A JPEG of a deterministic 80x72 picture (larger than the model input, so it is resized).
    func jpeg(seed: UInt64) throws -> [UInt8] {
        var g = SeededGenerator(seed: seed)
        let (w, h) = (80, 72)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let noise = Int(g.next() % 32)
                pixels[(y * w + x) * 3 + 0] = UInt8((x * 3 + noise) % 256)
                pixels[(y * w + x) * 3 + 1] = UInt8((y * 3 + noise) % 256)
                pixels[(y * w + x) * 3 + 2] = UInt8((x + y + noise) % 256)
            }
        }
        return try JPEGCodec.encode(Image(width: w, height: h, channels: 3, pixels: pixels), quality: 90)
    }
}

/// Checks that a RESULT's top-k is the top-k of `reference` (up to near-ties) with its probabilities.
func expectTopK(_ indices: [Int], _ scores: [Float], matches reference: [Float], k: Int,
                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(indices.count == min(k, reference.count), sourceLocation: sourceLocation)
    #expect(scores.count == indices.count, sourceLocation: sourceLocation)
    for (i, s) in zip(indices, scores) {
        #expect(abs(reference[i] - s) < 1e-4, "class \(i): \(s) vs \(reference[i])", sourceLocation: sourceLocation)
    }
    #expect(scores == scores.sorted(by: >), sourceLocation: sourceLocation)
    guard let lowest = scores.min() else { return }
    for j in Set(reference.indices).subtracting(indices) {
        #expect(reference[j] <= lowest + 1e-4, "class \(j) (\(reference[j])) should be in the top-k", sourceLocation: sourceLocation)
    }
}
