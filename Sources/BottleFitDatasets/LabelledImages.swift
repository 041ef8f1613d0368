import BottleFitImaging

/// An in-memory labelled image set: `count` images of `channels` x `height` x `width`
/// 8-bit samples, stored one after the other, each in CHW order (all of channel 0's rows,
/// then channel 1's, ...), with one label per image.
///
/// For greyscale images CHW and the interleaved layout of `Image` are the same bytes.
public struct LabelledImages: LabelledImageSource, Sendable {
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    /// `count * channels * height * width` samples, image after image, CHW within each.
    public let pixels: [UInt8]
    /// One label per image, in `0..<classNames.count`.
    public let labels: [Int32]
    /// Class names, indexed by label.
    public let classNames: [String]

    /// Checks the shape against the number of pixels and every label against the classes.
    public init(
        channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [Int32], classNames: [String]
    ) throws(DatasetError) {
        guard channels == 1 || channels == 3 else {
            throw .invalidData("channels must be 1 or 3, not \(channels)")
        }
        guard height > 0, width > 0, height <= 1 << 16, width <= 1 << 16 else {
            throw .invalidData("image size must be in 1...65536, not \(height)x\(width)")
        }
        let perImage = channels * height * width
        guard pixels.count == labels.count * perImage else {
            throw .invalidData("\(pixels.count) pixels for \(labels.count) images of \(channels)x\(height)x\(width)")
        }
        guard !classNames.isEmpty else { throw .invalidData("no class names") }
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classNames.count }) {
            throw .invalidData("label \(labels[bad]) of image \(bad) is outside 0..<\(classNames.count)")
        }
        self.count = labels.count
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
    }

    /// Samples one image occupies: channels * height * width.
    public var elementCount: Int { channels * height * width }

    public var imageSize: ImageSize? { ImageSize(height: height, width: width) }

    public func label(at index: Int) -> Int32 { labels[index] }

    /// The CHW samples of image `index`.
    public func pixels(at index: Int) -> ArraySlice<UInt8> {
        precondition((0..<count).contains(index), "image \(index) is outside 0..<\(count)")
        return pixels[(index * elementCount)..<((index + 1) * elementCount)]
    }

    /// Image `index` as an interleaved `Image` (for 3 channels, CHW becomes HWC).
    public func image(at index: Int) -> Image {
        let chw = pixels(at: index)
        if channels == 1 {
            return Image(validatedWidth: width, height: height, channels: 1, pixels: Array(chw))
        }
        let plane = height * width
        let base = chw.startIndex
        let interleaved = [UInt8](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            for p in 0..<plane {
                for c in 0..<channels { buffer[p * channels + c] = chw[base + c * plane + p] }
            }
            initialized = elementCount
        }
        return Image(validatedWidth: width, height: height, channels: channels, pixels: interleaved)
    }
}

extension LabelledImages {
    /// The first `n` images (all of them when `n` is at least the count), for quick runs.
    public func prefix(_ n: Int) throws(DatasetError) -> LabelledImages {
        guard n < count else { return self }
        guard n > 0 else { throw .invalidConfiguration("a dataset limit must be positive, not \(n)") }
        return try LabelledImages(
            channels: channels, height: height, width: width, pixels: Array(pixels[0..<(n * elementCount)]),
            labels: Array(labels[0..<n]), classNames: classNames)
    }
}
