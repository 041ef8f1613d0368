import ArgumentParser
import BottleFitDatasets
import BottleFitEngine
import BottleFitTraining
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Top-1 accuracy of an ONNX model on a labelled test set, through the inference engine.",
        discussion: """
            The model takes images and returns logits (a full model, as `bottlefit train` \
            writes). With --quantize-bottleneck the model is split at its bottleneck and every \
            image's bottleneck is quantized to uint8 (per tensor, asymmetric) and back, as a \
            camera sends it. With --json, exactly one JSON object: accuracy, samples, correct, \
            quantized_bottleneck, dataset.
            Example: bottlefit eval --model runs/bf2/full.onnx --dataset fashion-mnist --quantize-bottleneck --json
            """
    )

    @Option(help: "The ONNX model (image in, logits out).") var model: String
    @Option(help: "fashion-mnist (the test split) or image-folder (--eval-folder).") var dataset: String = "fashion-mnist"
    @Option(help: "Fashion-MNIST directory (Debian package dataset-fashion-mnist).") var dataDir: String = FashionMNIST.defaultDirectory
    @Option(help: "ImageFolder root (one folder of JPEGs per class), resized and centre-cropped to the model's input.") var evalFolder: String?
    @Option(help: "Only the first N test images.") var limit: Int?
    @Option(help: "Batch size.") var batch: Int = 250
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Quantize the bottleneck to uint8 per image between head and tail.") var quantizeBottleneck = false
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard ["fashion-mnist", "image-folder"].contains(dataset) else { throw ValidationError("--dataset must be fashion-mnist or image-folder") }
        if dataset == "image-folder" && evalFolder == nil { throw ValidationError("--dataset image-folder needs --eval-folder") }
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be 1...4096") }
        if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        let graph: Graph
        do { graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model)) } catch { throw CommandError("\(model): \(error)") }
        guard let dims = graph.inputs.first?.shape?.dropFirst().compactMap(\.fixedValue), dims.count == 3 else {
            throw CommandError("\(model): the input must be [batch, C, H, W] with fixed C, H, W")
        }
        // Class scores are one number per class; a head's bottleneck (C x H x W) is not, and its
        // "accuracy" would be the argmax of a feature map.
        if let out = graph.outputs.first?.shape?.dropFirst(), out.compactMap(\.fixedValue).filter({ $0 > 1 }).count > 1 {
            throw CommandError("\(model) outputs \(graph.outputs[0].shapeDescription), not class scores [batch, classes]: is it a head? (--model takes a full model, image in, logits out)")
        }
        let source: any LabelledImageSource
        let transform: TransformPipeline
        if dataset == "fashion-mnist" {
            guard dims == [1, 28, 28] else { throw CommandError("\(model) takes \(dims.map(String.init).joined(separator: "x")) images; Fashion-MNIST is 1x28x28") }
            let test = try FashionMNIST.load(.test, directory: dataDir)
            source = try test.prefix(limit ?? test.count)
            transform = .fashionMNISTEvaluation()
        } else {
            source = try ImageFolder(root: evalFolder!)
            transform = try .imageNetEvaluation(resize: dims[1] * 256 / 224, crop: dims[1])
        }
        let loader = try BatchLoader.evaluation(source: source, transform: transform, batchSize: batch)
        var remaining = dataset == "image-folder" ? (limit ?? Int.max) : Int.max
        let batches = AnyIterator<TrainingBatch> {
            guard remaining > 0, let b = loader.next() else { return nil }
            remaining -= b.count
            return TrainingBatch(images: Buffer(shape: b.shape, data: b.images), labels: b.labels)
        }
        let result = try ModelEvaluator.evaluate(graph, batches: batches, quantizeBottleneck: quantizeBottleneck, compute: threadOptions.makeComputeContext())
        if json {
            print(String(format: "{\"accuracy\": %.6f, \"samples\": %d, \"correct\": %d, \"quantized_bottleneck\": %@, \"dataset\": \"%@\"}",
                         result.accuracy, result.samples, result.correct, quantizeBottleneck ? "true" : "false", dataset))
        } else {
            print(String(format: "%@: top-1 accuracy %.2f%% (%d of %d)%@", model, 100 * result.accuracy, result.correct, result.samples,
                         quantizeBottleneck ? " with a uint8 bottleneck" : ""))
        }
    }
}
