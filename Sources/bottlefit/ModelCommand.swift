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

/// The model families `model create` builds; the names with a depth (`-resnet50`,
/// `-resnet152`, `-densenet169`, `-densenet201`) are torchvision's ImageNet models.
enum Architecture: String, ExpressibleByArgument, CaseIterable {
    case bottlefitResNet50 = "bottlefit-resnet50"
    case resnet50 = "resnet50"
    case bottlefitResNet152 = "bottlefit-resnet152"
    case resnet152 = "resnet152"
    case bottlefitDenseNet169 = "bottlefit-densenet169"
    case densenet169 = "densenet169"
    case bottlefitDenseNet201 = "bottlefit-densenet201"
    case densenet201 = "densenet201"
    case bottlefitResNet = "bottlefit-resnet"
    case resnet = "resnet"
    case autoencoderResNet = "autoencoder-resnet"

    /// BottleFit and autoencoder models have a bottleneck (and so a head and a tail).
    var hasBottleneck: Bool { rawValue.hasPrefix("bottlefit-") || self == .autoencoderResNet }

    /// The DenseNet teacher this architecture is or is built from.
    var denseNet: DenseNetConfiguration? {
        switch self {
        case .densenet169, .bottlefitDenseNet169: .densenet169
        case .densenet201, .bottlefitDenseNet201: .densenet201
        default: nil
        }
    }

    /// The ImageNet ResNet whose depth the name fixes (--blocks is refused for ResNet-152).
    var namedResNet: ResNetConfiguration? {
        switch self {
        case .resnet50, .bottlefitResNet50: .resnet50
        case .resnet152, .bottlefitResNet152: .resnet152
        default: nil
        }
    }
}

/// Starting configurations of `model create`, refined by --width, --blocks, --classes, --image-size.
enum ModelPreset: String, ExpressibleByArgument, CaseIterable {
    case imagenet
    case fashionMNIST = "fashion-mnist"

    var configuration: ResNetConfiguration {
        switch self {
        case .imagenet: .resnet50
        case .fashionMNIST: .fashionMNIST
        }
    }
}

enum ModelPart: String, ExpressibleByArgument, CaseIterable {
    case head, tail, full
}

struct CreateModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Build a reference model with seeded He-initialised weights and save it as ONNX.",
        discussion: """
            Presets (--preset, default imagenet; the ResNet architectures only):
              imagenet       ResNet-50: bottleneck blocks [3,4,6,3], width 64, 7x7/2 stem + maxpool, \
            3x224x224 input, 1000 classes.
              fashion-mnist  basic blocks [1,1,1,1], width 16, 3x3/2 stem, 1x28x28 input, 10 classes \
            (layer1 16x14x14, layer2 32x7x7, layer3 64x4x4, layer4 128x2x2).
            Architectures:
              resnet              the teacher (torchvision names: conv1, bn1, layer1..layer4, fc).
              bottlefit-resnet    BottleFit: the teacher's stem becomes an encoder ending in a \
            C-channel bottleneck (value 'bottleneck', before any BN/ReLU; C x 29 x 29 for imagenet, \
            C x 8 x 8 for fashion-mnist) and a decoder back to layer2's shape, then the teacher's \
            layer3, layer4, pooling and fc with the teacher's parameter names.
              autoencoder-resnet  the paper's baseline: the teacher with an autoencoder after layer2 \
            (2x2 convs L -> L/4 -> L/8 -> L/16 -> C, mirrored with ConvTranspose; bottleneck C x 24 x 24 \
            for imagenet, C x 3 x 3 for fashion-mnist).
              resnet50, bottlefit-resnet50    the same as resnet and bottlefit-resnet with --preset imagenet.
              resnet152, bottlefit-resnet152  ResNet-152 (blocks [3,8,36,3]) and its BottleFit form, \
            built as the ResNet-50 ones (bottleneck C x 29 x 29, decoder to layer2's 512 x 28 x 28).
              densenet169, densenet201  torchvision's DenseNets (features.conv0/norm0/relu0/pool0, \
            denseblock1..4 of 6,12,32,32 or 6,12,48,32 dense layers, transition1..3, norm5, classifier; \
            growth rate k 32, bn_size 4, 2k stem channels).
              bottlefit-densenet169, bottlefit-densenet201  BottleFit as the paper's reference code \
            (torchdistill's custom_densenet169/201): the teacher's features through transition2 become the same encoder \
            as bottlefit-resnet (bottleneck C x 29 x 29 at 224 px) and a decoder (2x2 convs C -> 16k -> \
            16k -> 8k -> 8k -> 8k, avgpool 2x2/2) to transition2's 8k x 14 x 14 (256 x 14 x 14); then the \
            teacher's denseblock3, transition3, denseblock4, norm5 and classifier.
            --bottleneck C is required for bottlefit-* and autoencoder-*; --part writes their head \
            (input -> bottleneck), tail (bottleneck -> logits) or the full model. --width, --blocks \
            (not for resnet152), --classes and --image-size override the preset for the ResNets; \
            --growth-rate, --classes and --image-size the DenseNets (at least 29 px); the tests use \
            narrower models.
            Examples:
              bottlefit model create bottlefit-resnet50 --bottleneck 12 --part head --out head.onnx
              bottlefit model create bottlefit-resnet --preset fashion-mnist --bottleneck 2 --part tail --out tail.onnx
              bottlefit model create resnet --preset fashion-mnist --width 32 --blocks 2,2,2,2 --out teacher.onnx
              bottlefit model create autoencoder-resnet --preset fashion-mnist --bottleneck 2 --out ae.onnx
              bottlefit model create bottlefit-densenet201 --bottleneck 12 --part tail --out dn201-tail.onnx
              bottlefit model create resnet50 --out resnet50.onnx --seed 7
            """
    )

    @Argument(help: "Architecture: \(Architecture.allCases.map(\.rawValue).joined(separator: ", ")).")
    var architecture: Architecture
    @Option(help: "Configuration to start from: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")) (ResNets only).")
    var preset: ModelPreset = .imagenet
    @Option(help: "Bottleneck channels C (bottlefit-* and autoencoder-resnet only).") var bottleneck: Int?
    @Option(help: "Which part to write: head, tail or full (bottlefit-* and autoencoder-resnet only).") var part: ModelPart = .full
    @Option(help: "Output .onnx file.") var out: String
    @Option(help: "Seed of the weight initialisation.") var seed: UInt64 = 0
    @Option(help: "Base width of a ResNet (default: the preset's, 64 for imagenet, 16 for fashion-mnist).") var width: Int?
    @Option(help: "Blocks per ResNet stage, four comma-separated counts (default: the preset's, e.g. 3,4,6,3).") var blocks: String?
    @Option(help: "Growth rate k of a DenseNet (default 32); the stem has 2k channels.") var growthRate: Int?
    @Option(help: "Number of classes (default: the preset's).") var classes: Int?
    @Option(help: "Input image size in pixels, square (default: the preset's).") var imageSize: Int?

    /// The preset (or the named ImageNet ResNet) with the command line's overrides.
    func resnetConfiguration() throws -> ResNetConfiguration {
        var config = architecture.namedResNet ?? preset.configuration
        if let width { config.width = width }
        if let classes { config.classes = classes }
        if let imageSize { config.imageSize = imageSize }
        if let blocks {
            let counts = blocks.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            let values = counts.compactMap { $0 }
            guard counts.count == 4, values.count == 4, values.allSatisfy({ (1...64).contains($0) }) else {
                throw ValidationError("--blocks must be four comma-separated counts between 1 and 64, such as 1,1,1,1")
            }
            config.blocks = values
        }
        return config
    }

    /// The named DenseNet with the command line's overrides (--growth-rate k also sets 2k stem channels).
    func denseNetConfiguration(_ base: DenseNetConfiguration) -> DenseNetConfiguration {
        var config = base
        if let growthRate {
            config.growthRate = growthRate
            config.initialFeatures = 2 * growthRate
        }
        if let classes { config.classes = classes }
        if let imageSize { config.imageSize = imageSize }
        return config
    }

    func validate() throws {
        let name = architecture.rawValue
        if preset != .imagenet {
            if architecture == .resnet50 || architecture == .bottlefitResNet50 {
                throw ValidationError("\(name) is the ImageNet ResNet-50; use \(name.dropLast(2)) --preset \(preset.rawValue)")
            }
            if architecture.denseNet != nil || architecture.namedResNet != nil {
                throw ValidationError("\(name) is an ImageNet model and takes no --preset; size it with --image-size and --classes")
            }
        }
        if architecture.hasBottleneck {
            guard let c = bottleneck else { throw ValidationError("\(name) needs --bottleneck C") }
            guard (1...4096).contains(c) else { throw ValidationError("--bottleneck must be between 1 and 4096") }
        } else {
            guard bottleneck == nil else { throw ValidationError("--bottleneck applies to bottlefit-* and autoencoder-resnet only") }
            guard part == .full else { throw ValidationError("--part applies to bottlefit-* and autoencoder-resnet only; split \(name) with `bottlefit model split`") }
        }
        if architecture.denseNet != nil {
            guard width == nil, blocks == nil else {
                throw ValidationError("--width and --blocks apply to the ResNets; \(name) has its dense blocks and takes --growth-rate")
            }
        } else {
            guard growthRate == nil else { throw ValidationError("--growth-rate applies to densenet169, densenet201 and their bottlefit- forms only") }
            if architecture.namedResNet == .resnet152, blocks != nil {
                throw ValidationError("\(name) has blocks 3,8,36,3; use \(architecture.hasBottleneck ? "bottlefit-resnet" : "resnet") --blocks for other depths")
            }
        }
        if let width { guard (1...1024).contains(width) else { throw ValidationError("--width must be between 1 and 1024") } }
        if let growthRate { guard (1...256).contains(growthRate) else { throw ValidationError("--growth-rate must be between 1 and 256") } }
        if let classes { guard (1...100_000).contains(classes) else { throw ValidationError("--classes must be between 1 and 100000") } }
        if let imageSize { guard (8...4096).contains(imageSize) else { throw ValidationError("--image-size must be between 8 and 4096") } }
        // The builders' own checks (e.g. the decoder must restore layer2's size), as messages.
        let resnet = architecture.denseNet == nil ? try resnetConfiguration() : nil
        do {
            if let base = architecture.denseNet {
                let config = denseNetConfiguration(base)
                if architecture.hasBottleneck {
                    try ModelFactory.checkBottleFitDenseNet(bottleneck: bottleneck!, config)
                } else {
                    try config.validate()
                }
                return
            }
            guard let config = resnet else { return }
            switch architecture {
            case .bottlefitResNet, .bottlefitResNet50, .bottlefitResNet152: try ModelFactory.checkBottleFitResNet(bottleneck: bottleneck!, config)
            case .autoencoderResNet: try ModelFactory.checkAutoencoderResNet(bottleneck: bottleneck!, config)
            default: try config.validate()
            }
        } catch {
            if case .invalidModel(let message) = error { throw ValidationError(message) }
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let full: Graph
        if let base = architecture.denseNet {
            let config = denseNetConfiguration(base)
            full = architecture.hasBottleneck
                ? ModelFactory.bottleFitDenseNet(bottleneck: bottleneck!, config, seed: seed) : ModelFactory.denseNet(config, seed: seed)
        } else {
            let config = try resnetConfiguration()
            switch architecture {
            case .bottlefitResNet, .bottlefitResNet50, .bottlefitResNet152:
                full = ModelFactory.bottleFitResNet(bottleneck: bottleneck!, config, seed: seed)
            case .autoencoderResNet:
                full = ModelFactory.autoencoderResNet(bottleneck: bottleneck!, config, seed: seed)
            default:
                full = ModelFactory.resnet(config, seed: seed)
            }
        }
        let graph: Graph
        switch part {
        case .full: graph = full
        case .head: graph = try ModelSplitter.split(full, at: ModelFactory.bottleneckName).head
        case .tail: graph = try ModelSplitter.split(full, at: ModelFactory.bottleneckName).tail
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

    func validate() throws {
        let paths = [model, head, tail].map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }
        guard paths[1] != paths[2] else { throw ValidationError("--head and --tail are the same file (\(head)); the tail would overwrite the head") }
        guard !paths[1...].contains(paths[0]) else { throw ValidationError("--head or --tail is the model being split (\(model)); write the parts elsewhere") }
    }

    func run() throws {
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        let (h, t) = try ModelSplitter.split(graph, at: at)
        // Both parts are written to temporary files beside their destinations and renamed into
        // place only when both are complete: a failure leaves neither part behind, nor half a file.
        let fm = FileManager.default
        var written: [(temporary: String, path: String)] = []
        defer { for w in written { try? fm.removeItem(atPath: w.temporary) } }
        for (graph, path) in [(h, head), (t, tail)] {
            let temporary = path + ".partial-\(getpid())"
            written.append((temporary, path))
            try ONNXExporter.write(graph, to: URL(fileURLWithPath: temporary))
        }
        for w in written {
            guard rename(w.temporary, w.path) == 0 else {
                throw ValidationError("cannot move \(w.temporary) to \(w.path): \(String(cString: strerror(errno)))")
            }
        }
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
            `model split`) the bottleneck's shape and its uint8 payload in bytes are shown, with \
            the saving against the raw uint8 input; for a full BottleFit or autoencoder model \
            and for a tail, the bottleneck that the `bottlefit.bottleneck` metadata names.
            With --json, one JSON object: parameters, macs, architecture, part, and \
            bottleneck_shape and bottleneck_bytes when there is a bottleneck.
            Example: bottlefit model info head.onnx
            """
    )

    @Argument(help: "The ONNX model.") var model: String
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        _ = try InferenceSession(graph: graph, optimize: false)
        let s = try ModelSummary(graph)
        if json {
            var fields = [
                "\"parameters\": \(s.parameters)", "\"macs\": \(s.macs)",
                "\"architecture\": \"\(s.metadata["bottlefit.architecture"] ?? "")\"", "\"part\": \"\(s.metadata["bottlefit.part"] ?? "full")\"",
            ]
            if let b = s.bottleneck {
                fields += ["\"bottleneck_shape\": [\(b.shape.map(String.init).joined(separator: ", "))]", "\"bottleneck_bytes\": \(b.bytes)"]
            }
            print("{" + fields.joined(separator: ", ") + "}")
            return
        }
        print("model: \(model)")
        if let a = s.metadata["bottlefit.architecture"] { print("architecture: \(a) (\(s.metadata["bottlefit.part"] ?? "full"))") }
        print("opset: \(graph.opsetVersion), nodes: \(graph.nodes.count)")
        for v in s.inputs { print("input:  \(v.name) \(v.elementType.rawValue)[\(v.shapeDescription)]") }
        for v in s.outputs { print("output: \(v.name) \(v.elementType.rawValue)[\(v.shapeDescription)]") }
        print("parameters: \(s.parameters)")
        print("MACs: \(s.macs) (" + String(format: "%.3f", Double(s.macs) / 1e9) + " GMAC per image)")
        if let b = s.bottleneck {
            let raw = s.inputs.first.flatMap { try? InferenceSession.concreteShape($0, batch: 1) }?.reduce(1, *) ?? 0
            let isInput = s.inputs.contains { $0.name == s.metadata["bottlefit.bottleneck"] }
            print("bottleneck: \(b.shape.shapeDescription), uint8 payload \(b.bytes) bytes per image" + (isInput ? " (this tail's input)" : ""))
            if raw > 0, !isInput {
                print(String(format: "  vs raw uint8 input %d bytes: %.1f%% smaller", raw, 100 * (1 - Double(b.bytes) / Double(raw))))
            }
        }
    }
}
