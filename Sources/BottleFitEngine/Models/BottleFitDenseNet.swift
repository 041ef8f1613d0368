import BottleFitCore

extension ModelFactory {
    /// BottleFit's DenseNet (`custom_densenet169/201` of the reference code): the teacher's
    /// features up to and including transition2 are replaced by BottleFit's encoder, ending in a
    /// C-channel bottleneck (value `bottleneck`, before any BN/ReLU), and a decoder that
    /// restores transition2's shape (value `transition2`); denseblock3, transition3,
    /// denseblock4, norm5 and the classifier are the teacher's, with the teacher's names.
    ///
    /// Encoder (`encoder.*`): the same as `bottleFitResNet`'s, of `initialFeatures` channels:
    /// conv 7x7/2 → BN → ReLU → maxpool 3x3/2 → BN → ReLU → conv 2x2/2 pad 1 → C. Decoder
    /// (`decoder.*`): BN(C) → ReLU → conv 2x2/1 pad 1 C→D → BN → ReLU → conv 2x2/1 pad 1 D→D →
    /// BN → ReLU → conv 2x2/1 D→T → [BN → ReLU → conv 2x2/1 T→T] x2 → avgpool 2x2/2, where D is
    /// denseblock2's channel count and T transition2's (512 and 256 for k = 32). DenseNet-169
    /// and -201 at 224 px: bottleneck C x 29 x 29, transition2 256 x 14 x 14.
    ///
    /// Traps when `config` is invalid; check first with `checkBottleFitDenseNet(bottleneck:_:)`.
    public static func bottleFitDenseNet(bottleneck c: Int, _ config: DenseNetConfiguration = .densenet169, seed: UInt64 = 0) -> Graph {
        checked { () throws(EngineError) in try checkBottleFitDenseNet(bottleneck: c, config) }
        var b = GraphBuilder(seed: seed)
        var x = bottleFitEncoder(&b, .imageNet, in: config.inputChannels, width: config.initialFeatures, bottleneck: c)
        let d = config.blockOutputChannels(1), t = config.transitionChannels(1)
        let steps = [(c, d, 1), (d, d, 1), (d, t, 0), (t, t, 0), (t, t, 0)]
        for (i, (from, to, pad)) in steps.enumerated() {
            x = b.batchNorm(x, "decoder.bn\(i + 1)", channels: from)
            x = b.relu(x, "decoder.relu\(i + 1)")
            x = b.conv(x, "decoder.conv\(i + 1)", in: from, out: to, kernel: 2, stride: 1, pad: pad)
        }
        x = b.averagePool(x, "decoder.avgpool", kernel: 2, stride: 2, output: "transition2")
        x = denseBlock(&b, x, block: 2, config: config)
        x = transition(&b, x, block: 2, config: config)
        x = denseBlock(&b, x, block: 3, config: config)
        let architecture = "bottlefit-\(config.name)"
        var g = denseNetClassifier(&b, x, config: config, name: "\(graphName(architecture))_c\(c)")
        g.metadata = [
            "bottlefit.architecture": architecture, "bottlefit.part": "full",
            "bottlefit.bottleneck": bottleneckName, "bottlefit.bottleneck_channels": String(c),
        ]
        return g
    }

    /// Spatial size (height = width) of the BottleFit DenseNet's bottleneck for `config`.
    public static func bottleFitBottleneckSize(_ config: DenseNetConfiguration) -> Int {
        ResNetConfiguration.convOutput(config.stemOutputSize, kernel: 2, stride: 2, pad: 1)
    }

    /// Throws, naming the sizes that disagree, unless `bottleFitDenseNet(bottleneck: c, config)`
    /// can be built: a valid configuration, C ≥ 1, and a decoder output of transition2's size.
    public static func checkBottleFitDenseNet(bottleneck c: Int, _ config: DenseNetConfiguration) throws(EngineError) {
        try config.validate()
        try checkBottleFitDecoder(
            config.name, imageSize: config.imageSize, bottleneck: c, stemSize: config.stemOutputSize, pads: [1, 1, 0, 0, 0], poolStride: 2,
            restores: "transition2", channels: config.transitionChannels(1), size: config.transitionOutputSize(1))
    }
}
