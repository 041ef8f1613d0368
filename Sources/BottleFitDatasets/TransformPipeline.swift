import BottleFitCore
import BottleFitImaging

/// What `BatchLoader` does to each sample: image transforms in order, then `Normalize` into
/// the sample's slice of the batch (float CHW).
public struct TransformPipeline: Sendable {
    public let steps: [any ImageTransform]
    public let normalize: Normalize

    public init(_ steps: [any ImageTransform] = [], normalize: Normalize) {
        self.steps = steps
        self.normalize = normalize
    }

    /// Whether any step draws random numbers (an augmentation pipeline).
    public var isRandom: Bool { steps.contains { $0.isRandom } }

    /// The size of the output for inputs of `input` (`nil`: varies, and cannot be batched).
    public func outputSize(for input: ImageSize?) -> ImageSize? {
        steps.reduce(input) { $1.outputSize(for: $0) }
    }

    /// Runs the image steps on `image`, without normalising.
    public func transform(_ image: Image, using random: inout SeededGenerator) -> Image {
        var image = image
        for step in steps { image = step(image, using: &random) }
        return image
    }

    /// Runs the steps on `image` and normalises the result into `output`.
    public func apply(_ image: Image, using random: inout SeededGenerator, into output: UnsafeMutableBufferPointer<Float>) {
        normalize(transform(image, using: &random), into: output)
    }

    /// Fashion-MNIST training augmentation: `RandomCrop(28, padding: 4)`, `HorizontalFlip()`,
    /// the training set's mean and std.
    public static func fashionMNISTTraining() -> TransformPipeline {
        TransformPipeline([try! RandomCrop(size: 28, padding: 4), try! HorizontalFlip()], normalize: .fashionMNIST)
    }

    /// Fashion-MNIST evaluation: normalisation only.
    public static func fashionMNISTEvaluation() -> TransformPipeline {
        TransformPipeline(normalize: .fashionMNIST)
    }

    /// torchvision's ImageNet training recipe: `RandomResizedCrop(size)`, `HorizontalFlip()`,
    /// ImageNet mean and std.
    public static func imageNetTraining(size: Int = 224) throws(DatasetError) -> TransformPipeline {
        TransformPipeline([try RandomResizedCrop(size: size), try HorizontalFlip()], normalize: .imageNet)
    }

    /// torchvision's ImageNet evaluation: `Resize(resize)`, `CenterCrop(crop)`, ImageNet mean and std.
    public static func imageNetEvaluation(resize: Int = 256, crop: Int = 224) throws(DatasetError) -> TransformPipeline {
        TransformPipeline([try ResizeCenterCrop(resize: resize, crop: crop)], normalize: .imageNet)
    }
}
