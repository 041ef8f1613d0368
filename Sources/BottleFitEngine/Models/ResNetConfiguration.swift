import BottleFitCore

/// Size and shape of a ResNet built by `ModelFactory`: ResNet-50 for ImageNet is the default,
/// `.fashionMNIST` a small basic-block ResNet for 1x28x28 images. Every property is a `var`,
/// so a variant is a copy with one field changed (`var c = .fashionMNIST; c.width = 32`).
public struct ResNetConfiguration: Sendable, Equatable {
    /// The residual block of every stage.
    public enum Block: Sendable, Equatable {
        /// 1x1 → 3x3 → 1x1 convolutions, output channels 4 · inner (ResNet-50, v1.5: stride on the 3x3).
        case bottleneck
        /// Two 3x3 convolutions, output channels = inner (ResNet-18/34).
        case basic

        /// Output channels of a block per inner channel.
        public var expansion: Int {
            switch self {
            case .bottleneck: 4
            case .basic: 1
            }
        }
    }

    /// The layers before layer1.
    public enum Stem: Sendable, Equatable {
        /// conv 7x7/2 pad 3 → BN → ReLU → maxpool 3x3/2 pad 1 (a quarter of the input size).
        case imageNet
        /// conv 3x3/stride pad 1 → BN → ReLU, no pooling (for small images).
        case compact(stride: Int)
    }

    /// Blocks per stage, four stages (ResNet-50: 3, 4, 6, 3).
    public var blocks: [Int] = [3, 4, 6, 3]
    /// Channels of the stem and of stage 1's inner convolutions (64 in ResNet-50); stage k
    /// has `width << k` inner channels.
    public var width: Int = 64
    public var classes: Int = 1000
    /// Input height and width in pixels (square inputs).
    public var imageSize: Int = 224
    public var inputChannels: Int = 3
    public var block: Block = .bottleneck
    public var stem: Stem = .imageNet
    /// The family name in `bottlefit.architecture` metadata: the teacher is `name`, the
    /// BottleFit model `bottlefit-<name>`, the autoencoder baseline `autoencoder-<name>`.
    public var name: String

    /// Without a `name`, bottleneck blocks with the ImageNet stem are "resnet50" (at any width,
    /// as the narrow test models always were) and anything else is "resnet".
    public init(
        width: Int = 64, classes: Int = 1000, imageSize: Int = 224, inputChannels: Int = 3, blocks: [Int] = [3, 4, 6, 3],
        block: Block = .bottleneck, stem: Stem = .imageNet, name: String? = nil
    ) {
        self.width = width
        self.classes = classes
        self.imageSize = imageSize
        self.inputChannels = inputChannels
        self.blocks = blocks
        self.block = block
        self.stem = stem
        self.name = name ?? (block == .bottleneck && stem == .imageNet && blocks == [3, 4, 6, 3] ? "resnet50" : "resnet")
    }

    /// torchvision's ResNet-50 for 3x224x224 ImageNet images, 1000 classes.
    public static let resnet50 = ResNetConfiguration()

    /// torchvision's ResNet-152: bottleneck blocks [3, 8, 36, 3], otherwise as `.resnet50`.
    public static let resnet152 = ResNetConfiguration(blocks: [3, 8, 36, 3], name: "resnet152")

    /// A ResNet for Fashion-MNIST (1x28x28, 10 classes): basic blocks [1, 1, 1, 1], width 16,
    /// compact stem stride 2. Stage outputs: layer1 16x14x14, layer2 32x7x7, layer3 64x4x4,
    /// layer4 128x2x2; 308,538 parameters.
    public static let fashionMNIST = ResNetConfiguration(
        width: 16, classes: 10, imageSize: 28, inputChannels: 1, blocks: [1, 1, 1, 1], block: .basic,
        stem: .compact(stride: 2), name: "resnet-fmnist")

    /// Output channels of stage `stage` (0-based: layer1 is stage 0).
    public func stageChannels(_ stage: Int) -> Int { (width << stage) * block.expansion }

    /// Height (= width) of the stem's output, the input of layer1.
    public var stemOutputSize: Int {
        switch stem {
        case .imageNet:
            let conv = Self.convOutput(imageSize, kernel: 7, stride: 2, pad: 3)
            return Self.convOutput(conv, kernel: 3, stride: 2, pad: 1)
        case .compact(let s):
            return Self.convOutput(imageSize, kernel: 3, stride: s, pad: 1)
        }
    }

    /// Height (= width) of stage `stage`'s output: stages after the first halve it with a
    /// stride-2 3x3 convolution (pad 1).
    public func stageOutputSize(_ stage: Int) -> Int {
        var n = stemOutputSize
        for _ in 0..<max(0, stage) { n = Self.convOutput(n, kernel: 3, stride: 2, pad: 1) }
        return n
    }

    /// [channels, height, width] of stage `stage`'s output at batch 1, without the batch.
    public func stageShape(_ stage: Int) -> [Int] {
        let n = stageOutputSize(stage)
        return [stageChannels(stage), n, n]
    }

    /// Spatial size after a convolution or pooling window (floor division, as ONNX without
    /// ceil_mode); 0 when the window does not fit in the padded input.
    public static func convOutput(_ n: Int, kernel k: Int, stride s: Int, pad p: Int) -> Int {
        n + 2 * p < k ? 0 : (n + 2 * p - k) / s + 1
    }

    /// Rejects configurations no ResNet can be built from, saying which field is wrong.
    public func validate() throws(EngineError) {
        guard blocks.count == 4, blocks.allSatisfy({ $0 >= 1 }) else {
            throw .invalidModel("ResNet '\(name)': blocks must be four counts of at least 1, got \(blocks)")
        }
        guard width >= 1, classes >= 1, inputChannels >= 1 else {
            throw .invalidModel("ResNet '\(name)': width (\(width)), classes (\(classes)) and input channels (\(inputChannels)) must be at least 1")
        }
        if case .compact(let s) = stem, s < 1 {
            throw .invalidModel("ResNet '\(name)': the compact stem's stride must be at least 1, got \(s)")
        }
        guard imageSize >= 1, stageOutputSize(3) >= 1, stemOutputSize >= 1 else {
            throw .invalidModel("ResNet '\(name)': a \(imageSize) px input is too small for the stem and four stages")
        }
    }
}
