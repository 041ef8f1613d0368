import BottleFitCore

/// Builds the reference models from one `ResNetConfiguration`: the teacher ResNet
/// (`resnet`), BottleFit's bottlenecked ResNet (`bottleFitResNet`) and the paper's
/// autoencoder baseline (`autoencoderResNet`). All three share the stem, stage and
/// classifier code below, so parameters after the cut (`layer3.*`, `layer4.*`, `fc.*`)
/// have the teacher's names and shapes and copy over by name.
public enum ModelFactory {
    /// The value name of the bottleneck in BottleFit models (the head's output, the tail's input).
    public static let bottleneckName = "bottleneck"

    /// The teacher: torchvision-topology ResNet (bottleneck blocks are v1.5, stride on the
    /// 3x3 convolution). Input `input` [batch, inputChannels, imageSize, imageSize], stage
    /// outputs `layer1`…`layer4`, output `logits` [batch, classes].
    public static func resnet(_ config: ResNetConfiguration = .resnet50, seed: UInt64 = 0) -> Graph {
        checked { () throws(EngineError) in try config.validate() }
        var b = GraphBuilder(seed: seed)
        var x = stem(&b, "input", config, prefix: "", relu: "relu")
        var channels = config.width
        for stage in 0..<4 {
            (x, channels) = resnetStage(&b, x, stage: stage, in: channels, config: config)
        }
        var g = classifier(&b, x, channels: channels, config: config, name: graphName(config.name))
        g.metadata = ["bottlefit.architecture": config.name, "bottlefit.part": "full"]
        return g
    }

    /// The stem: conv (7x7/2 or 3x3/s) → BN → ReLU [→ maxpool 3x3/2 for the ImageNet stem].
    /// Parameters `<prefix>conv1`, `<prefix>bn1`.
    static func stem(_ b: inout GraphBuilder, _ input: String, _ config: ResNetConfiguration, prefix: String, relu: String) -> String {
        stem(&b, input, config.stem, in: config.inputChannels, width: config.width, prefix: prefix, relu: relu)
    }

    /// `stem` for any network: `in` input channels, `width` output channels.
    static func stem(
        _ b: inout GraphBuilder, _ input: String, _ kind: ResNetConfiguration.Stem, in inputChannels: Int, width w: Int, prefix: String,
        relu: String
    ) -> String {
        var x: String
        switch kind {
        case .imageNet:
            x = b.conv(input, "\(prefix)conv1", in: inputChannels, out: w, kernel: 7, stride: 2, pad: 3)
        case .compact(let s):
            x = b.conv(input, "\(prefix)conv1", in: inputChannels, out: w, kernel: 3, stride: s, pad: 1)
        }
        x = b.batchNorm(x, "\(prefix)bn1", channels: w)
        x = b.relu(x, "\(prefix)\(relu)")
        if kind == .imageNet {
            x = b.maxPool(x, "\(prefix)maxpool", kernel: 3, stride: 2, pad: 1)
        }
        return x
    }

    /// One ResNet stage; returns the output name (`layer<stage + 1>`) and channel count.
    static func resnetStage(
        _ b: inout GraphBuilder, _ input: String, stage: Int, in inChannels: Int, config: ResNetConfiguration
    ) -> (String, Int) {
        let inner = config.width << stage
        let out = config.stageChannels(stage)
        var x = input
        var channels = inChannels
        for i in 0..<config.blocks[stage] {
            let stride = (i == 0 && stage > 0) ? 2 : 1
            let p = "layer\(stage + 1).\(i)"
            var y: String
            switch config.block {
            case .bottleneck:
                y = b.conv(x, "\(p).conv1", in: channels, out: inner, kernel: 1)
                y = b.batchNorm(y, "\(p).bn1", channels: inner)
                y = b.relu(y, "\(p).relu1")
                y = b.conv(y, "\(p).conv2", in: inner, out: inner, kernel: 3, stride: stride, pad: 1)
                y = b.batchNorm(y, "\(p).bn2", channels: inner)
                y = b.relu(y, "\(p).relu2")
                y = b.conv(y, "\(p).conv3", in: inner, out: out, kernel: 1)
                y = b.batchNorm(y, "\(p).bn3", channels: out)
            case .basic:
                y = b.conv(x, "\(p).conv1", in: channels, out: out, kernel: 3, stride: stride, pad: 1)
                y = b.batchNorm(y, "\(p).bn1", channels: out)
                y = b.relu(y, "\(p).relu1")
                y = b.conv(y, "\(p).conv2", in: out, out: out, kernel: 3, pad: 1)
                y = b.batchNorm(y, "\(p).bn2", channels: out)
            }
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

    /// Global average pool → flatten → fc, and the graph around all nodes built so far.
    static func classifier(_ b: inout GraphBuilder, _ x: String, channels: Int, config: ResNetConfiguration, name: String) -> Graph {
        var y = b.add("GlobalAveragePool", [x], name: "avgpool", output: "avgpool")
        y = b.add("Flatten", [y], name: "flatten", output: "flatten", attributes: ["axis": .int(1)])
        y = b.linear(y, "fc", in: channels, out: config.classes, output: "logits")
        return imageClassifierGraph(b, name: name, inputChannels: config.inputChannels, imageSize: config.imageSize, classes: config.classes)
    }

    /// The graph around all nodes built so far: input `input` [batch, channels, size, size],
    /// output `logits` [batch, classes], opset 17.
    static func imageClassifierGraph(_ b: GraphBuilder, name: String, inputChannels: Int, imageSize: Int, classes: Int) -> Graph {
        Graph(
            name: name, nodes: b.nodes,
            inputs: [ValueInfo(name: "input", shape: [.symbolic("batch"), .fixed(inputChannels), .fixed(imageSize), .fixed(imageSize)])],
            outputs: [ValueInfo(name: "logits", shape: [.symbolic("batch"), .fixed(classes)])],
            initializers: b.initializers, opsetVersion: 17)
    }

    /// "bottlefit-resnet-fmnist" → "bottlefit_resnet_fmnist" (graph names use underscores).
    static func graphName(_ architecture: String) -> String {
        String(architecture.map { $0 == "-" ? "_" : $0 })
    }

    /// Runs a configuration check; a failure is a programming error in the caller, so it
    /// traps with the check's message (call the throwing `check…` functions to handle it).
    static func checked(_ check: () throws(EngineError) -> Void) {
        do { try check() } catch { preconditionFailure(error.description) }
    }
}
