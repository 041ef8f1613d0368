import BottleFitCore

/// Size and shape of a DenseNet built by `ModelFactory`, in torchvision's layout:
/// DenseNet-169 is the default, `.densenet201` the deeper one. Every property is a `var`.
public struct DenseNetConfiguration: Sendable, Equatable {
    /// Dense layers per dense block, four blocks (DenseNet-169: 6, 12, 32, 32).
    public var blocks: [Int] = [6, 12, 32, 32]
    /// Channels each dense layer adds (k, 32 in torchvision's DenseNets).
    public var growthRate: Int = 32
    /// A dense layer's 1x1 convolution has `bottleneckWidth · growthRate` outputs (bn_size, 4).
    public var bottleneckWidth: Int = 4
    /// Channels of the stem (conv0), 64 = 2k in DenseNet-169/201.
    public var initialFeatures: Int = 64
    public var classes: Int = 1000
    /// Input height and width in pixels (square inputs).
    public var imageSize: Int = 224
    public var inputChannels: Int = 3
    /// The family name in `bottlefit.architecture` metadata (`bottlefit-<name>` for BottleFit).
    public var name: String = "densenet169"

    public init(
        blocks: [Int] = [6, 12, 32, 32], growthRate: Int = 32, bottleneckWidth: Int = 4, initialFeatures: Int? = nil, classes: Int = 1000,
        imageSize: Int = 224, inputChannels: Int = 3, name: String = "densenet169"
    ) {
        self.blocks = blocks
        self.growthRate = growthRate
        self.bottleneckWidth = bottleneckWidth
        self.initialFeatures = initialFeatures ?? 2 * growthRate
        self.classes = classes
        self.imageSize = imageSize
        self.inputChannels = inputChannels
        self.name = name
    }

    /// torchvision's DenseNet-169 (3x224x224, 1000 classes, 14,149,480 parameters).
    public static let densenet169 = DenseNetConfiguration()
    /// torchvision's DenseNet-201: blocks [6, 12, 48, 32] (20,013,928 parameters).
    public static let densenet201 = DenseNetConfiguration(blocks: [6, 12, 48, 32], name: "densenet201")

    /// Input channels of dense block `block` (0-based): the stem's, then half the previous
    /// block's output (each transition halves the channels, rounding down as torchvision).
    public func blockInputChannels(_ block: Int) -> Int {
        var c = initialFeatures
        for i in 0..<max(0, block) { c = (c + blocks[i] * growthRate) / 2 }
        return c
    }

    /// Output channels of dense block `block`: its input plus k per dense layer.
    public func blockOutputChannels(_ block: Int) -> Int { blockInputChannels(block) + blocks[block] * growthRate }

    /// Output channels of transition `block + 1` (after dense block `block`, blocks 0...2).
    public func transitionChannels(_ block: Int) -> Int { blockOutputChannels(block) / 2 }

    /// Height (= width) of the stem's output (conv 7x7/2 pad 3, maxpool 3x3/2 pad 1), dense block 1's input.
    public var stemOutputSize: Int {
        let conv = ResNetConfiguration.convOutput(imageSize, kernel: 7, stride: 2, pad: 3)
        return ResNetConfiguration.convOutput(conv, kernel: 3, stride: 2, pad: 1)
    }

    /// Height (= width) of dense block `block`'s output; each transition's avgpool 2x2/2 halves it.
    public func blockOutputSize(_ block: Int) -> Int {
        var n = stemOutputSize
        for _ in 0..<max(0, block) { n = ResNetConfiguration.convOutput(n, kernel: 2, stride: 2, pad: 0) }
        return n
    }

    /// Height (= width) of transition `block + 1`'s output.
    public func transitionOutputSize(_ block: Int) -> Int { blockOutputSize(block + 1) }

    /// Rejects configurations no DenseNet can be built from, saying which field is wrong.
    public func validate() throws(EngineError) {
        guard blocks.count == 4, blocks.allSatisfy({ $0 >= 1 }) else {
            throw .invalidModel("DenseNet '\(name)': blocks must be four counts of at least 1, got \(blocks)")
        }
        guard growthRate >= 1, bottleneckWidth >= 1, initialFeatures >= 1, classes >= 1, inputChannels >= 1 else {
            throw .invalidModel(
                "DenseNet '\(name)': growth rate (\(growthRate)), bn_size (\(bottleneckWidth)), initial features (\(initialFeatures)), "
                    + "classes (\(classes)) and input channels (\(inputChannels)) must be at least 1")
        }
        guard imageSize >= 1, stemOutputSize >= 1, blockOutputSize(3) >= 1 else {
            throw .invalidModel("DenseNet '\(name)': a \(imageSize) px input is too small for the stem and three transitions (at least 29 px)")
        }
    }
}
