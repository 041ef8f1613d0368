import BottleFitCore

extension ModelFactory {
    /// The teacher: torchvision-topology DenseNet (`features.conv0`, `norm0`, `relu0`, `pool0`,
    /// `denseblockN.denselayerM.{norm1, relu1, conv1, norm2, relu2, conv2}`, `transitionN.{norm,
    /// relu, conv, pool}`, `norm5`, then ReLU, global average pool and `classifier`). As
    /// torchvision's export, each dense layer reads the Concat of its block's input and all
    /// earlier layers' outputs. Values `denseblock1`…`denseblock4`, `transition1`…`transition3`,
    /// output `logits`. Convolutions are He-initialised with fan-in and the classifier's bias is
    /// 0, as torchvision initialises DenseNets.
    public static func denseNet(_ config: DenseNetConfiguration = .densenet169, seed: UInt64 = 0) -> Graph {
        checked { () throws(EngineError) in try config.validate() }
        var b = GraphBuilder(seed: seed)
        var x = b.conv("input", "features.conv0", in: config.inputChannels, out: config.initialFeatures, kernel: 7, stride: 2, pad: 3, fan: .input)
        x = b.batchNorm(x, "features.norm0", channels: config.initialFeatures)
        x = b.relu(x, "features.relu0")
        x = b.maxPool(x, "features.pool0", kernel: 3, stride: 2, pad: 1)
        for block in 0..<4 {
            x = denseBlock(&b, x, block: block, config: config)
            if block < 3 { x = transition(&b, x, block: block, config: config) }
        }
        let architecture = config.name
        var g = denseNetClassifier(&b, x, config: config, name: graphName(architecture))
        g.metadata = ["bottlefit.architecture": architecture, "bottlefit.part": "full"]
        return g
    }

    /// Dense block `block` (0-based); returns its output value, `denseblock<block + 1>`.
    static func denseBlock(_ b: inout GraphBuilder, _ input: String, block: Int, config: DenseNetConfiguration) -> String {
        let k = config.growthRate, inner = config.bottleneckWidth * k
        var features = [input]
        var channels = config.blockInputChannels(block)
        let p = "features.denseblock\(block + 1)"
        for m in 1...config.blocks[block] {
            let q = "\(p).denselayer\(m)"
            var y = features.count == 1 ? input : b.add("Concat", features, name: "\(q).concat", output: "\(q).concat", attributes: ["axis": .int(1)])
            y = b.batchNorm(y, "\(q).norm1", channels: channels)
            y = b.relu(y, "\(q).relu1")
            y = b.conv(y, "\(q).conv1", in: channels, out: inner, kernel: 1, fan: .input)
            y = b.batchNorm(y, "\(q).norm2", channels: inner)
            y = b.relu(y, "\(q).relu2")
            y = b.conv(y, "\(q).conv2", in: inner, out: k, kernel: 3, pad: 1, fan: .input)
            features.append(y)
            channels += k
        }
        return b.add("Concat", features, name: p, output: "denseblock\(block + 1)", attributes: ["axis": .int(1)])
    }

    /// Transition `block + 1` after dense block `block`: BN → ReLU → conv 1x1 halving the channels
    /// → avgpool 2x2/2; returns `transition<block + 1>`.
    static func transition(_ b: inout GraphBuilder, _ input: String, block: Int, config: DenseNetConfiguration) -> String {
        let p = "features.transition\(block + 1)"
        let c = config.blockOutputChannels(block)
        var x = b.batchNorm(input, "\(p).norm", channels: c)
        x = b.relu(x, "\(p).relu")
        x = b.conv(x, "\(p).conv", in: c, out: config.transitionChannels(block), kernel: 1, fan: .input)
        return b.averagePool(x, "\(p).pool", kernel: 2, stride: 2, output: "transition\(block + 1)")
    }

    /// `features.norm5` → ReLU → global average pool → flatten → `classifier`, and the graph.
    static func denseNetClassifier(_ b: inout GraphBuilder, _ x: String, config: DenseNetConfiguration, name: String) -> Graph {
        let channels = config.blockOutputChannels(3)
        var y = b.batchNorm(x, "features.norm5", channels: channels)
        y = b.relu(y, "relu")
        y = b.add("GlobalAveragePool", [y], name: "avgpool", output: "avgpool")
        y = b.add("Flatten", [y], name: "flatten", output: "flatten", attributes: ["axis": .int(1)])
        y = b.linear(y, "classifier", in: channels, out: config.classes, zeroBias: true, output: "logits")
        return imageClassifierGraph(b, name: name, inputChannels: config.inputChannels, imageSize: config.imageSize, classes: config.classes)
    }
}
