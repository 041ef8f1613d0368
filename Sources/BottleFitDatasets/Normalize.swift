import BottleFitImaging

/// torchvision's `ToTensor()` then `Normalize(mean, std)`: an 8-bit interleaved image to
/// float CHW, `(sample / 255 - mean[c]) / std[c]`, folded into one multiply-add per sample.
///
/// The output has `channels` planes whatever the input has: a greyscale image is repeated
/// into three, a colour image becomes BT.601 luma for one (as `ImagePreprocessor` does).
public struct Normalize: Sendable {
    /// Output channels, 1 or 3.
    public let channels: Int
    public let normalization: ImagePreprocessor.Normalization
    private let scale: [Float]
    private let offset: [Float]

    /// ImageNet's statistics for three channels.
    public static let imageNet = try! Normalize(channels: 3, normalization: .imageNet)
    /// Fashion-MNIST's training-set statistics for one channel.
    public static let fashionMNIST = try! Normalize(channels: 1, normalization: FashionMNIST.normalization)

    /// - Parameter normalization: defaults to ImageNet's for 3 channels and to [0, 1]
    ///   (`.unitRange`) for 1, as `ImagePreprocessor` does.
    public init(channels: Int = 3, normalization: ImagePreprocessor.Normalization? = nil) throws(DatasetError) {
        guard channels == 1 || channels == 3 else {
            throw .invalidConfiguration("normalisation channels must be 1 or 3, not \(channels)")
        }
        let normalization = normalization ?? (channels == 3 ? .imageNet : .unitRange)
        do throws(ImagingError) {
            (scale, offset) = try normalization.affine(channels: channels)
        } catch {
            guard case .invalidConfiguration(let message) = error else { throw .invalidConfiguration(error.description) }
            throw .invalidConfiguration(message)
        }
        self.channels = channels
        self.normalization = normalization
    }

    /// Writes `image` as `channels` planes of height x width floats into `output`.
    ///
    /// - Precondition: `output.count == channels * image.height * image.width`.
    public func callAsFunction(_ image: Image, into output: UnsafeMutableBufferPointer<Float>) {
        let plane = image.height * image.width
        precondition(output.count == channels * plane, "output holds \(output.count) floats, not \(channels)x\(image.height)x\(image.width)")
        let inC = image.channels
        image.pixels.withUnsafeBufferPointer { pixels in
            switch (inC, channels) {
            case (1, _), (3, 3):
                for c in 0..<channels {
                    let s = scale[c], o = offset[c], from = inC == 1 ? 0 : c
                    for p in 0..<plane { output[c * plane + p] = Float(pixels[p * inC + from]) * s + o }
                }
            default:
                let s = scale[0], o = offset[0]
                for p in 0..<plane {
                    let luma = 0.299 * Float(pixels[3 * p]) + 0.587 * Float(pixels[3 * p + 1]) + 0.114 * Float(pixels[3 * p + 2])
                    output[p] = luma * s + o
                }
            }
        }
    }

    /// The normalised image as a new array.
    public func callAsFunction(_ image: Image) -> [Float] {
        let count = channels * image.height * image.width
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            self(image, into: buffer)
            initialized = count
        }
    }
}
