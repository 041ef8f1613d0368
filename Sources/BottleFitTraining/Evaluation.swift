import BottleFitCore
import BottleFitEngine

/// Accuracy of a model on labelled batches, through the inference engine (the path the
/// deployed head and tail take), optionally with the bottleneck quantized to uint8 per
/// image as a camera sends it.
public enum ModelEvaluator {
    public struct Result: Sendable, Equatable, Codable {
        public var accuracy: Double
        public var samples: Int
        public var correct: Int
    }

    /// The bottleneck value of a BottleFit-style model: its metadata, else a value named
    /// `bottleneck`.
    public static func bottleneckName(_ graph: Graph) -> String? {
        if let name = graph.metadata["bottlefit.bottleneck"] { return name }
        return graph.nodes.contains { $0.outputs.contains(ModelFactory.bottleneckName) } ? ModelFactory.bottleneckName : nil
    }

    /// Evaluates `graph` (a full model: image in, logits out) on every batch.
    /// With `quantizeBottleneck`, the model is split at its bottleneck and each image's
    /// bottleneck goes through uint8 quantization (per tensor, asymmetric) in between.
    public static func evaluate(
        _ graph: Graph, batches: AnyIterator<TrainingBatch>, quantizeBottleneck: Bool, compute: ComputeContext = .singleThreaded
    ) throws -> Result {
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw TrainingError.invalidArgument("evaluation needs a model with one input and one output (logits); this one has \(graph.inputs.count) and \(graph.outputs.count)")
        }
        let input = graph.inputs[0].name
        var head: InferenceSession?, tail: InferenceSession, cut = ""
        if quantizeBottleneck {
            guard let name = bottleneckName(graph) else {
                throw TrainingError.invalidArgument("the model has no bottleneck (metadata bottlefit.bottleneck or a value named 'bottleneck') to quantize")
            }
            let parts = try ModelSplitter.split(graph, at: name)
            head = try InferenceSession(graph: parts.head, compute: compute)
            tail = try InferenceSession(graph: parts.tail, compute: compute)
            cut = name
        } else {
            tail = try InferenceSession(graph: graph, compute: compute)
        }
        let quantizer = BottleneckQuantizer()
        var correct = 0, seen = 0
        while let batch = batches.next() {
            var logits: Tensor
            if let head {
                let z = try head.run([input: batch.images.tensor])[cut]!
                var values = z.floats!
                let per = values.count / max(1, z.shape[0])
                var bytes = [UInt8](repeating: 0, count: per)
                for n in 0..<z.shape[0] {
                    try values.withUnsafeMutableBufferPointer { v in
                        let slice = UnsafeMutableBufferPointer(rebasing: v[n * per..<(n + 1) * per])
                        let p = try bytes.withUnsafeMutableBufferPointer { b in try quantizer.quantize(UnsafeBufferPointer(slice), into: b) }
                        for i in 0..<per { slice[i] = p.scale * (Float(bytes[i]) - Float(p.zeroPoint)) }
                    }
                }
                logits = try tail.run([cut: Tensor(shape: z.shape, floats: values)])[graph.outputs[0].name]!
            } else {
                logits = try tail.run([input: batch.images.tensor])[graph.outputs[0].name]!
            }
            correct += Loss.correct(try Buffer(logits), labels: batch.labels)
            seen += batch.labels.count
        }
        guard seen > 0 else { throw TrainingError.invalidArgument("the evaluation set is empty") }
        return Result(accuracy: Double(correct) / Double(seen), samples: seen, correct: correct)
    }
}
