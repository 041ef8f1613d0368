import BottleFitCore

extension ModelFactory {
    /// BottleFit's ResNet: the teacher's stem up to layer2 is replaced by an encoder ending in
    /// a C-channel bottleneck (value `bottleneck`, before any BN/ReLU) and a decoder that
    /// restores layer2's shape (value `layer2`); layer3, layer4, pooling and fc are the
    /// teacher's, with the teacher's parameter names.
    ///
    /// Encoder (`encoder.*`): the teacher's stem conv → BN → ReLU [→ its maxpool] → BN → ReLU
    /// → conv 2x2/2 pad 1 → C. Decoder (`decoder.*`): BN(C) → ReLU → conv 2x2/1 pad 1 C→D →
    /// BN → ReLU → conv 2x2/1 pad 1 D→D → [BN → ReLU → conv 2x2/1 D→D] x2 → avgpool 2x2/1,
    /// where D is layer2's channel count. ResNet-50 at 224 px: bottleneck C x 29 x 29, layer2
    /// 512 x 28 x 28; `.fashionMNIST`: C x 8 x 8 and 32 x 7 x 7.
    ///
    /// Traps when the decoder cannot restore layer2's size for `config`; check first with
    /// `checkBottleFitResNet(bottleneck:_:)` to get the reason as an error.
    public static func bottleFitResNet(bottleneck c: Int, _ config: ResNetConfiguration = .resnet50, seed: UInt64 = 0) -> Graph {
        checked { () throws(EngineError) in try checkBottleFitResNet(bottleneck: c, config) }
        var b = GraphBuilder(seed: seed)
        // Encoder (head).
        var x = bottleFitEncoder(&b, config.stem, in: config.inputChannels, width: config.width, bottleneck: c)
        // Decoder (start of the tail): ends with layer2's channels and spatial size.
        let d = config.stageChannels(1)
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
        let architecture = "bottlefit-\(config.name)"
        var g = classifier(&b, x, channels: channels, config: config, name: "\(graphName(architecture))_c\(c)")
        g.metadata = [
            "bottlefit.architecture": architecture, "bottlefit.part": "full",
            "bottlefit.bottleneck": bottleneckName, "bottlefit.bottleneck_channels": String(c),
        ]
        return g
    }

    /// BottleFit's encoder, the whole head, shared by the ResNet and DenseNet forms: the
    /// teacher's stem conv → BN → ReLU [→ its maxpool] (`encoder.conv1`, `encoder.bn1`, of
    /// `width` channels) → BN → ReLU → conv 2x2/2 pad 1 → C channels, named `bottleneck`.
    static func bottleFitEncoder(
        _ b: inout GraphBuilder, _ kind: ResNetConfiguration.Stem, in inputChannels: Int, width w: Int, bottleneck c: Int
    ) -> String {
        var x = stem(&b, "input", kind, in: inputChannels, width: w, prefix: "encoder.", relu: "relu1")
        x = b.batchNorm(x, "encoder.bn2", channels: w)
        x = b.relu(x, "encoder.relu2")
        return b.conv(x, "encoder.conv2", in: w, out: c, kernel: 2, stride: 2, pad: 1, output: bottleneckName)
    }

    /// Spatial size (height = width) of the BottleFit bottleneck for `config`.
    public static func bottleFitBottleneckSize(_ config: ResNetConfiguration) -> Int {
        ResNetConfiguration.convOutput(config.stemOutputSize, kernel: 2, stride: 2, pad: 1)
    }

    /// Throws, naming the sizes that disagree, unless `bottleFitResNet(bottleneck: c, config)`
    /// can be built: a valid configuration, C ≥ 1, and a decoder output of layer2's size.
    public static func checkBottleFitResNet(bottleneck c: Int, _ config: ResNetConfiguration) throws(EngineError) {
        try config.validate()
        // conv 2x2 pad 1 twice (+1 each), conv 2x2 pad 0 twice (−1 each), avgpool 2x2/1 (−1).
        try checkBottleFitDecoder(
            config.name, imageSize: config.imageSize, bottleneck: c, stemSize: config.stemOutputSize, pads: [1, 1, 0, 0], poolStride: 1,
            restores: "layer2", channels: config.stageChannels(1), size: config.stageOutputSize(1),
            hint: "; the stem's output (\(config.stemOutputSize)x\(config.stemOutputSize)) must have an even size")
    }

    /// Throws, naming the sizes, unless BottleFit's decoder — conv 2x2/1 with each of `pads`,
    /// then avgpool 2x2/`poolStride` — maps the bottleneck (conv 2x2/2 pad 1 of a `stemSize`
    /// stem output) to the teacher value `restores`, `channels` x `size` x `size`.
    static func checkBottleFitDecoder(
        _ name: String, imageSize: Int, bottleneck c: Int, stemSize: Int, pads: [Int], poolStride: Int, restores value: String,
        channels: Int, size: Int, hint: String = ""
    ) throws(EngineError) {
        guard c >= 1 else { throw .invalidModel("BottleFit \(name): the bottleneck needs at least 1 channel, got \(c)") }
        let z = ResNetConfiguration.convOutput(stemSize, kernel: 2, stride: 2, pad: 1)
        var n = z
        for pad in pads { n = ResNetConfiguration.convOutput(n, kernel: 2, stride: 1, pad: pad) }
        n = ResNetConfiguration.convOutput(n, kernel: 2, stride: poolStride, pad: 0)
        guard n == size else {
            throw .invalidModel(
                "BottleFit \(name) at \(imageSize) px: the decoder turns the \(c)x\(z)x\(z) bottleneck into "
                    + "\(channels)x\(n)x\(n), but the teacher's \(value) is \(channels)x\(size)x\(size)\(hint)")
        }
    }
}
