import BottleFitCore

extension ModelFactory {
    /// The paper's autoencoder baseline: the unmodified teacher (`resnet(config)`, same
    /// parameter names) with an autoencoder inserted after layer2, whose bottleneck is the
    /// split point. L is layer2's channel count (512 in ResNet-50, 32 in `.fashionMNIST`).
    ///
    /// Encoder (`autoencoder.encoder.*`): conv 2x2/1 no pad L → L/4 → L/8 → L/16 → C, each
    /// followed by BN → ReLU except the last, whose output is `bottleneck` (before any BN/ReLU,
    /// as BottleFit's). Decoder (`autoencoder.decoder.*`), the mirror image: BN(C) → ReLU →
    /// ConvTranspose 2x2/1 C → L/16 → BN → ReLU → … → L/4 → L, output `layer2.reconstructed`
    /// of layer2's shape, which feeds layer3. Each 2x2 step shrinks (encoder) or grows
    /// (decoder) the map by one pixel: ResNet-50 C x 24 x 24, `.fashionMNIST` C x 3 x 3. The
    /// decoder's last ConvTranspose has a bias (no BN follows it); every other convolution
    /// is followed by a BN and has none.
    ///
    /// Traps when layer2 is too small or too narrow; `checkAutoencoderResNet` says why.
    public static func autoencoderResNet(bottleneck c: Int, _ config: ResNetConfiguration = .resnet50, seed: UInt64 = 0) -> Graph {
        checked { () throws(EngineError) in try checkAutoencoderResNet(bottleneck: c, config) }
        var b = GraphBuilder(seed: seed)
        var x = stem(&b, "input", config, prefix: "", relu: "relu")
        var channels = config.width
        for stage in 0..<2 {
            (x, channels) = resnetStage(&b, x, stage: stage, in: channels, config: config)
        }
        let widths = autoencoderChannels(bottleneck: c, config)
        for i in 1...4 {
            let p = "autoencoder.encoder"
            x = b.conv(x, "\(p).conv\(i)", in: widths[i - 1], out: widths[i], kernel: 2, output: i == 4 ? bottleneckName : nil)
            if i < 4 {
                x = b.batchNorm(x, "\(p).bn\(i)", channels: widths[i])
                x = b.relu(x, "\(p).relu\(i)")
            }
        }
        let mirrored = Array(widths.reversed())
        for i in 1...4 {
            let p = "autoencoder.decoder"
            x = b.batchNorm(x, "\(p).bn\(i)", channels: mirrored[i - 1])
            x = b.relu(x, "\(p).relu\(i)")
            x = b.convTranspose(
                x, "\(p).deconv\(i)", in: mirrored[i - 1], out: mirrored[i], kernel: 2, bias: i == 4,
                output: i == 4 ? "layer2.reconstructed" : nil)
        }
        for stage in 2..<4 {
            (x, channels) = resnetStage(&b, x, stage: stage, in: channels, config: config)
        }
        let architecture = "autoencoder-\(config.name)"
        var g = classifier(&b, x, channels: channels, config: config, name: "\(graphName(architecture))_c\(c)")
        g.metadata = [
            "bottlefit.architecture": architecture, "bottlefit.part": "full",
            "bottlefit.bottleneck": bottleneckName, "bottlefit.bottleneck_channels": String(c),
        ]
        return g
    }

    /// Channels along the autoencoder's encoder: [L, L/4, L/8, L/16, C].
    public static func autoencoderChannels(bottleneck c: Int, _ config: ResNetConfiguration) -> [Int] {
        let l = config.stageChannels(1)
        return [l, l / 4, l / 8, l / 16, c]
    }

    /// Throws, naming what is too small, unless `autoencoderResNet(bottleneck: c, config)` can be built.
    public static func checkAutoencoderResNet(bottleneck c: Int, _ config: ResNetConfiguration) throws(EngineError) {
        try config.validate()
        guard c >= 1 else { throw .invalidModel("autoencoder \(config.name): the bottleneck needs at least 1 channel, got \(c)") }
        let l = config.stageChannels(1)
        guard l >= 16 else {
            throw .invalidModel("autoencoder \(config.name): layer2 has \(l) channels; the encoder's L/16 needs at least 16")
        }
        let n = config.stageOutputSize(1)
        guard n >= 5 else {
            throw .invalidModel("autoencoder \(config.name): layer2 is \(n)x\(n); four 2x2 convolutions need at least 5x5")
        }
    }
}
