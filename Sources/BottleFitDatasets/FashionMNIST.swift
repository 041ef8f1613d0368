import BottleFitImaging

/// Fashion-MNIST (Zalando's 28x28 greyscale clothing images, ten classes) as in-memory
/// `LabelledImages`, read from the IDX files of the Debian package `dataset-fashion-mnist`.
///
/// The files are read and checked by the same code as `FashionMNISTFrameSource` (magic
/// number, dimensions, a size cap before allocating, gzip trailer, label range); a missing
/// file is `ImagingError.datasetMissing`, whose message names the package and the path.
public enum FashionMNIST {
    /// Which of the dataset's two splits to read.
    public enum Split: String, Sendable, CaseIterable {
        /// 60,000 images, `train-*`.
        case train
        /// 10,000 images, `t10k-*`.
        case test
    }

    /// Where `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = FashionMNISTFrameSource.defaultDirectory
    /// The Debian package that provides the files.
    public static let aptPackage = FashionMNISTFrameSource.aptPackage
    /// The ten classes, indexed by label.
    public static let classNames = FashionMNISTFrameSource.classNames

    /// Mean of the training images' pixels scaled to [0, 1] (all 47,040,000 of them).
    public static let mean: Float = 0.286_040_6
    /// Standard deviation of the same (population; the unbiased one agrees to 1e-8).
    public static let std: Float = 0.353_024_24
    /// Normalisation with the training set's statistics: `(x / 255 - mean) / std`.
    public static let normalization = ImagePreprocessor.Normalization.meanStd(mean: [mean], std: [std])

    /// Reads both files of `split` (`<prefix>-images-idx3-ubyte[.gz]` and
    /// `<prefix>-labels-idx1-ubyte[.gz]`) into memory: 47 MB for the training split.
    public static func load(_ split: Split, directory: String = defaultDirectory) throws -> LabelledImages {
        let files = try FashionMNISTFrameSource.readSplit(split == .train ? .train : .test, directory: directory)
        return try LabelledImages(
            channels: 1, height: files.height, width: files.width, pixels: files.pixels,
            labels: files.labels.map { Int32($0) }, classNames: classNames)
    }
}
