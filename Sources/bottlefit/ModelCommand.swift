import ArgumentParser
import BottleFitCore
import BottleFitEngine
import Foundation

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Create, split and describe ONNX models.",
        subcommands: [CreateModelCommand.self, SplitModelCommand.self, ModelInfoCommand.self]
    )
}

enum Architecture: String, ExpressibleByArgument, CaseIterable {
    case bottlefitResNet50 = "bottlefit-resnet50"
    case resnet50 = "resnet50"
}

enum ModelPart: String, ExpressibleByArgument, CaseIterable {
    case head, tail, full
}

struct CreateModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Build a reference model with seeded He-initialised weights and save it as ONNX.",
        discussion: """
            bottlefit-resnet50: BottleFit's ResNet-50. The head (encoder) ends in a C x 29 x 29 \
            bottleneck (value 'bottleneck', before any BN/ReLU); the tail is the decoder back to \
            layer2's 512 x 28 x 28, then ResNet-50's layer3, layer4, pooling and a 1000-class fc.
            resnet50: torchvision's ResNet-50 topology, the unsplit reference.
            --width, --classes and --image-size build narrower or smaller versions of the same \
            topology (tests use them); the defaults give the standard models.
            Examples:
              bottlefit model create bottlefit-resnet50 --bottleneck 12 --part head --out head.onnx
              bottlefit model create resnet50 --out resnet50.onnx --seed 7
            """
    )

    @Argument(help: "Architecture: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")).")
    var architecture: Architecture
    @Option(help: "Bottleneck channels C (bottlefit-resnet50 only).") var bottleneck: Int?
    @Option(help: "Which part to write: head, tail or full (bottlefit-resnet50 only).") var part: ModelPart = .full
    @Option(help: "Output .onnx file.") var out: String
    @Option(help: "Seed of the weight initialisation.") var seed: UInt64 = 0
    @Option(help: "Base width (ResNet-50: 64).") var width: Int = 64
    @Option(help: "Number of classes.") var classes: Int = 1000
    @Option(help: "Input image size in pixels (square).") var imageSize: Int = 224

    func validate() throws {
        switch architecture {
        case .bottlefitResNet50:
            guard let c = bottleneck else { throw ValidationError("bottlefit-resnet50 needs --bottleneck C") }
            guard (1...4096).contains(c) else { throw ValidationError("--bottleneck must be between 1 and 4096") }
        case .resnet50:
            guard bottleneck == nil else { throw ValidationError("--bottleneck applies to bottlefit-resnet50 only") }
            guard part == .full else { throw ValidationError("--part applies to bottlefit-resnet50 only; split resnet50 with `bottlefit model split`") }
        }
        guard (1...1024).contains(width) else { throw ValidationError("--width must be between 1 and 1024") }
        guard classes >= 1 else { throw ValidationError("--classes must be at least 1") }
        guard imageSize >= 32 else { throw ValidationError("--image-size must be at least 32") }
    }

    func run() throws {
        let config = ResNetConfiguration(width: width, classes: classes, imageSize: imageSize)
        let graph: Graph
        switch architecture {
        case .resnet50:
            graph = ModelFactory.resnet(config, seed: seed)
        case .bottlefitResNet50:
            let full = ModelFactory.bottleFitResNet(bottleneck: bottleneck!, config, seed: seed)
            switch part {
            case .full: graph = full
            case .head: graph = try ModelSplitter.split(full, at: ModelFactory.bottleneckName).head
            case .tail: graph = try ModelSplitter.split(full, at: ModelFactory.bottleneckName).tail
            }
        }
        try ONNXExporter.write(graph, to: URL(fileURLWithPath: out))
        let summary = try ModelSummary(graph)
        print("wrote \(out): \(graph.nodes.count) nodes, \(summary.parameters) parameters, \(String(format: "%.3f", Double(summary.macs) / 1e9)) GMAC")
    }
}

struct SplitModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Split an ONNX model at a named tensor into a head and a tail.",
        discussion: """
            The head computes TENSOR from the model's inputs; the tail computes the model's outputs \
            from TENSOR. A cut that any other tensor also crosses (a skip connection around it) is \
            refused with the tensors that cross it.
            Example: bottlefit model split resnet50.onnx --at layer2 --head head.onnx --tail tail.onnx
            """
    )

    @Argument(help: "The ONNX model to split.") var model: String
    @Option(help: "Name of the tensor to cut at.") var at: String
    @Option(help: "Output file for the head.") var head: String
    @Option(help: "Output file for the tail.") var tail: String

    func run() throws {
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        let (h, t) = try ModelSplitter.split(graph, at: at)
        try ONNXExporter.write(h, to: URL(fileURLWithPath: head))
        try ONNXExporter.write(t, to: URL(fileURLWithPath: tail))
        print("wrote \(head) (\(h.nodes.count) nodes) and \(tail) (\(t.nodes.count) nodes); cut '\(at)' is \(h.outputs[0].shapeDescription)")
    }
}

struct ModelInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model: inputs, outputs, parameters, MACs, and a head's bottleneck payload.",
        discussion: """
            MACs are multiply-accumulates of one image (batch 1). Parameters exclude batch-norm \
            running statistics. For a head (a model written by `model create --part head` or \
            `model split`) the bottleneck's shape and its uint8 payload in bytes are shown.
            Example: bottlefit model info head.onnx
            """
    )

    @Argument(help: "The ONNX model.") var model: String

    func run() throws {
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        _ = try InferenceSession(graph: graph, optimize: false)
        let s = try ModelSummary(graph)
        print("model: \(model)")
        if let a = s.metadata["bottlefit.architecture"] { print("architecture: \(a) (\(s.metadata["bottlefit.part"] ?? "full"))") }
        print("opset: \(graph.opsetVersion), nodes: \(graph.nodes.count)")
        for v in s.inputs { print("input:  \(v.name) \(v.elementType.rawValue)[\(v.shapeDescription)]") }
        for v in s.outputs { print("output: \(v.name) \(v.elementType.rawValue)[\(v.shapeDescription)]") }
        print("parameters: \(s.parameters)")
        print("MACs: \(s.macs) (" + String(format: "%.3f", Double(s.macs) / 1e9) + " GMAC per image)")
        if let b = s.bottleneck {
            let raw = s.inputs.first.flatMap { try? InferenceSession.concreteShape($0, batch: 1) }?.reduce(1, *) ?? 0
            print("bottleneck: \(b.shape.shapeDescription), uint8 payload \(b.bytes) bytes per image")
            if raw > 0 {
                print(String(format: "  vs raw uint8 input %d bytes: %.1f%% smaller", raw, 100 * (1 - Double(b.bytes) / Double(raw))))
            }
        }
    }
}
