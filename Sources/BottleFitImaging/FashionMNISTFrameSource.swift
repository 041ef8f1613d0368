import Foundation

/// Frames from Fashion-MNIST (Zalando's 28x28 greyscale clothing images, ten classes)
/// with their labels, as installed by the Debian package `dataset-fashion-mnist`.
///
/// Both files of a split are read, checked and held in memory at construction (7.8 MB
/// for the 10,000 test images), so `next()` only slices. The folder is a parameter: the
/// Debian location is the default, tests point it at files they write. Each file may be
/// gzip-compressed (`name.gz`, as Debian ships them) or not (`name`).
public struct FashionMNISTFrameSource: FrameSource, Sendable {
    /// Which of the dataset's two splits to read.
    public enum Split: String, Sendable, CaseIterable {
        /// 10,000 images, `t10k-*`.
        case test
        /// 60,000 images, `train-*`.
        case train

        var filePrefix: String { self == .test ? "t10k" : "train" }
    }

    /// Where `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// The Debian package that provides the files, named in the error when they are missing.
    public static let aptPackage = "dataset-fashion-mnist"
    /// The ten classes, indexed by label.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    public let directory: String
    public let split: Split
    public let loops: Bool
    /// When set, each frame also carries its JPEG at this quality (for offload mode).
    public let jpegQuality: Int?
    /// Number of images in the split.
    public let imageCount: Int
    public let imageHeight: Int
    public let imageWidth: Int

    private let pixels: [UInt8]
    private let labels: [UInt8]
    private var position = 0
    private var sequence = 0

    /// Reads and validates the split's image and label files.
    ///
    /// Throws `datasetMissing` (naming the apt package) when a file is absent, and
    /// `invalidDataset` for a wrong magic number, impossible dimensions, counts that
    /// disagree between the two files, a short file, or a label outside 0...9.
    public init(
        directory: String = defaultDirectory, split: Split = .test, loops: Bool = false, jpegQuality: Int? = nil
    ) throws(ImagingError) {
        try FrameJPEG.validate(jpegQuality)
        let files = try Self.readSplit(split, directory: directory)
        self.directory = directory
        self.split = split
        self.loops = loops
        self.jpegQuality = jpegQuality
        self.imageCount = files.count
        self.imageHeight = files.height
        self.imageWidth = files.width
        self.pixels = files.pixels
        self.labels = files.labels
    }

    /// Both files of a split, read and checked: what the frame source and
    /// `BottleFitDatasets.FashionMNIST` hold in memory. The errors are those of `init`.
    package static func readSplit(
        _ split: Split, directory: String
    ) throws(ImagingError) -> (count: Int, height: Int, width: Int, pixels: [UInt8], labels: [UInt8]) {
        let imagesPath = try locate("\(split.filePrefix)-images-idx3-ubyte", in: directory)
        let labelsPath = try locate("\(split.filePrefix)-labels-idx1-ubyte", in: directory)
        // Up to 1M images of up to 1024x1024: generous for MNIST-like sets, and the
        // byte cap in IDXFile still applies.
        let images = try IDXFile.read(path: imagesPath, rank: 3, maxDimension: 1 << 20)
        guard images.dimensions[1] <= 1024, images.dimensions[2] <= 1024 else {
            throw .invalidDataset(path: imagesPath, reason: "images of \(images.dimensions[1])x\(images.dimensions[2]) are not MNIST-like")
        }
        let labels = try IDXFile.read(path: labelsPath, rank: 1, maxDimension: 1 << 20)
        guard labels.dimensions[0] == images.dimensions[0] else {
            throw .invalidDataset(path: labelsPath, reason: "\(labels.dimensions[0]) labels for \(images.dimensions[0]) images")
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classNames.count }) {
            throw .invalidDataset(path: labelsPath, reason: "label \(labels.bytes[bad]) of image \(bad) is outside 0...9")
        }
        return (images.dimensions[0], images.dimensions[1], images.dimensions[2], images.bytes, labels.bytes)
    }

    public mutating func next() -> Frame? {
        if position >= imageCount {
            guard loops else { return nil }
            position = 0
        }
        let image = image(at: position)
        defer {
            position += 1
            sequence += 1
        }
        return Frame(sequence: sequence, id: "fashion-mnist-\(split.rawValue)/\(position)", image: image,
                     jpeg: FrameJPEG.encode(image, quality: jpegQuality), label: Int(labels[position]))
    }

    /// Image `index` of the split (0-based, file order), greyscale.
    public func image(at index: Int) -> Image {
        precondition((0..<imageCount).contains(index), "image \(index) is outside 0..<\(imageCount)")
        let size = imageHeight * imageWidth
        return Image(validatedWidth: imageWidth, height: imageHeight, channels: 1,
                     pixels: Array(pixels[(index * size)..<((index + 1) * size)]))
    }

    /// The label of image `index`.
    public func label(at index: Int) -> Int {
        Int(labels[index])
    }

    /// `name.gz` if present, else `name`, else a `datasetMissing` error for `name.gz`.
    private static func locate(_ name: String, in directory: String) throws(ImagingError) -> String {
        let base = (directory as NSString).appendingPathComponent(name)
        for candidate in [base + ".gz", base] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw .datasetMissing(path: base + ".gz", aptPackage: aptPackage)
    }
}
