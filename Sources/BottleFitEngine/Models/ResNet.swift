import BottleFitCore

/// Size of a ResNet built by `ModelFactory`: the standard ResNet-50 is the default.
/// Narrower widths give the same topology with fewer channels (used by fast tests).
public struct ResNetConfiguration: Sendable, Equatable {
    /// Bottleneck blocks per stage (ResNet-50: 3, 4, 6, 3).
    public var blocks: [Int] = [3, 4, 6, 3]
    /// Channels of the stem and of stage 1's inner convolutions (64 in ResNet-50).
    public var width: Int = 64
    public var classes: Int = 1000
    public var imageSize: Int = 224
    public var inputChannels: Int = 3

    public init(width: Int = 64, classes: Int = 1000, imageSize: Int = 224, inputChannels: Int = 3, blocks: [Int] = [3, 4, 6, 3]) {
        self.width = width
        self.classes = classes
        self.imageSize = imageSize
        self.inputChannels = inputChannels
        self.blocks = blocks
    }

    public static let resnet50 = ResNetConfiguration()
}

/// Builds the reference models: torchvision's ResNet-50 and BottleFit's ResNet-50.
public enum ModelFactory {
    /// The value name of the bottleneck in BottleFit models (the head's output, the tail's input).
    public static let bottleneckName = "bottleneck"

    /// torchvision-topology ResNet-50 (v1.5: stride on the 3x3 convolution), input `input`
    /// [batch, 3, 224, 224], output `logits` [batch, 1000].
    public static func resnet(_ config: ResNetConfiguration = .resnet50, seed: UInt64 = 0) -> Graph {
        var b = GraphBuilder(seed: seed)
        let w = config.width
        var x = b.conv("input", "conv1", in: config.inputChannels, out: w, kernel: 7, stride: 2, pad: 3)
        x = b.batchNorm(x, "bn1", channels: w)
        x = b.relu(x, "relu")
        x = b.maxPool(x, "maxpool", kernel: 3, stride: 2, pad: 1)
        var channels = w
        for stage in 0..<4 {
            (x, channels) = resnetStage(&b, x, stage: stage, in: channels, config: config)
        }
        let graph = classifier(&b, x, channels: channels, config: config, name: "resnet50")
        var g = graph
        g.metadata = ["bottlefit.architecture": "resnet50", "bottlefit.part": "full"]
        return g
    }

    /// BottleFit ResNet-50: the stem up to layer2 is replaced by an encoder ending in a
    /// C-channel bottleneck (C x 29 x 29 at 224 px, before any BN/ReLU) and a decoder that
    /// restores layer2's shape (512 x 28 x 28); layer3, layer4, pooling and fc are ResNet-50's.
    public static func bottleFitResNet(bottleneck c: Int, _ config: ResNetConfiguration = .resnet50, seed: UInt64 = 0) -> Graph {
        var b = GraphBuilder(seed: seed)
        let w = config.width
        // Encoder (head).
        var x = b.conv("input", "encoder.conv1", in: config.inputChannels, out: w, kernel: 7, stride: 2, pad: 3)
        x = b.batchNorm(x, "encoder.bn1", channels: w)
        x = b.relu(x, "encoder.relu1")
        x = b.maxPool(x, "encoder.maxpool", kernel: 3, stride: 2, pad: 1)
        x = b.batchNorm(x, "encoder.bn2", channels: w)
        x = b.relu(x, "encoder.relu2")
        x = b.conv(x, "encoder.conv2", in: w, out: c, kernel: 2, stride: 2, pad: 1, output: bottleneckName)
        // Decoder (start of the tail): ends with layer2's channels and spatial size.
        let d = 8 * w
        x = b.batchNorm(x, "decoder.bn1", channels: c)
        x = b.relu(x, "decoder.relu1")
        x = b.conv(x, "decoder.conv1", in: c, out: d, kernel: 2, stride: 1, pad: 1)
        x = b.batchNorm(x, "decoder.bn2", channels: d)
        x = b.relu(x, "decoder.relu2")
        x = b.conv(x, "decoder.conv2", in: d, out: d, kernel: 2, stride: 1, pad: 1)
        for i in 3...4 {
            x = b.batchNorm(x, "decoder.bn\(i)", channels: d)
            x = b.relu(x, "decoder.relu\(i)")
            x = b.conv(x, "decoder.conv\(i)", in: d, out: d, kernel: 2, stride: 1, pad: 0)
        }
        x = b.averagePool(x, "decoder.avgpool", kernel: 2, stride: 1, output: "layer2")
        var channels = d
        for stage in 2..<4 {
            (x, channels) = resnetStage(&b, x, stage: stage, in: channels, config: config)
        }
        var g = classifier(&b, x, channels: channels, config: config, name: "bottlefit_resnet50_c\(c)")
        g.metadata = [
            "bottlefit.architecture": "bottlefit-resnet50", "bottlefit.part": "full",
            "bottlefit.bottleneck": bottleneckName, "bottlefit.bottleneck_channels": String(c),
        ]
        return g
    }

    /// One ResNet stage of bottleneck blocks; returns the output name and channel count.
    static func resnetStage(
        _ b: inout GraphBuilder, _ input: String, stage: Int, in inChannels: Int, config: ResNetConfiguration
    ) -> (String, Int) {
        let inner = config.width << stage
        let out = inner * 4
        var x = input
        var channels = inChannels
        for i in 0..<config.blocks[stage] {
            let stride = (i == 0 && stage > 0) ? 2 : 1
            let p = "layer\(stage + 1).\(i)"
            var y = b.conv(x, "\(p).conv1", in: channels, out: inner, kernel: 1)
            y = b.batchNorm(y, "\(p).bn1", channels: inner)
            y = b.relu(y, "\(p).relu1")
            y = b.conv(y, "\(p).conv2", in: inner, out: inner, kernel: 3, stride: stride, pad: 1)
            y = b.batchNorm(y, "\(p).bn2", channels: inner)
            y = b.relu(y, "\(p).relu2")
            y = b.conv(y, "\(p).conv3", in: inner, out: out, kernel: 1)
            y = b.batchNorm(y, "\(p).bn3", channels: out)
            var shortcut = x
            if stride != 1 || channels != out {
                shortcut = b.conv(x, "\(p).downsample.0", in: channels, out: out, kernel: 1, stride: stride)
                shortcut = b.batchNorm(shortcut, "\(p).downsample.1", channels: out)
            }
            let sum = b.add("Add", [y, shortcut], name: "\(p).add", output: "\(p).add")
            let last = i == config.blocks[stage] - 1
            x = b.relu(sum, "\(p).relu", output: last ? "layer\(stage + 1)" : p)
            channels = out
        }
        return (x, channels)
    }

    static func classifier(_ b: inout GraphBuilder, _ x: String, channels: Int, config: ResNetConfiguration, name: String) -> Graph {
        var y = b.add("GlobalAveragePool", [x], name: "avgpool", output: "avgpool")
        y = b.add("Flatten", [y], name: "flatten", output: "flatten", attributes: ["axis": .int(1)])
        y = b.linear(y, "fc", in: channels, out: config.classes, output: "logits")
        return Graph(
            name: name, nodes: b.nodes,
            inputs: [ValueInfo(name: "input", shape: [.symbolic("batch"), .fixed(config.inputChannels), .fixed(config.imageSize), .fixed(config.imageSize)])],
            outputs: [ValueInfo(name: "logits", shape: [.symbolic("batch"), .fixed(config.classes)])],
            initializers: b.initializers, opsetVersion: 17)
    }
}
