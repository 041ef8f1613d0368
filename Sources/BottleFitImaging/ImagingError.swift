import BottleFitCore

/// Everything that can go wrong reading, decoding, encoding or preprocessing an image.
///
/// Corrupt input always ends here, never in a crash: frame sources skip a file that
/// throws one of these and keep its `description` for the log.
public enum ImagingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libjpeg rejected the data, or it ended early ("premature end of data").
    case corruptJPEG(String)
    /// A valid JPEG this codec does not decode (CMYK/YCCK, 12-bit samples).
    case unsupportedJPEG(String)
    /// The image has more pixels than the caller allows; nothing was allocated for it.
    case imageTooLarge(width: Int, height: Int, maxPixels: Int)
    /// Pixel data that does not match its stated shape, or encoder arguments out of range.
    case invalidImage(String)
    /// A preprocessor or frame source configured with impossible values.
    case invalidConfiguration(String)
    /// libjpeg or zlib could not allocate memory.
    case outOfMemory(String)
    /// A frame directory that does not exist or is not a directory.
    case directoryNotFound(String)
    /// A frame directory without a single *.jpg or *.jpeg file.
    case noImages(directory: String)
    /// A file that exists but could not be read (permissions, too large, vanished).
    case fileUnreadable(path: String, reason: String)
    /// A dataset file that is not there; `aptPackage` is the Debian package that installs it.
    case datasetMissing(path: String, aptPackage: String)
    /// A dataset file whose contents are not what its format promises.
    case invalidDataset(path: String, reason: String)

    public var description: String {
        switch self {
        case .corruptJPEG(let message): "corrupt JPEG: \(message)"
        case .unsupportedJPEG(let message): "unsupported JPEG: \(message)"
        case .imageTooLarge(let width, let height, let maxPixels):
            "image is \(width)x\(height), more than the limit of \(maxPixels) pixels"
        case .invalidImage(let message): "invalid image: \(message)"
        case .invalidConfiguration(let message): "invalid configuration: \(message)"
        case .outOfMemory(let message): "out of memory: \(message)"
        case .directoryNotFound(let path): "no directory at \(path)"
        case .noImages(let directory): "no *.jpg or *.jpeg files in \(directory)"
        case .fileUnreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .datasetMissing(let path, let aptPackage):
            "dataset file \(path) is missing: install the Debian package \(aptPackage) (scripts/setup does)"
        case .invalidDataset(let path, let reason): "\(path) is not a valid dataset file: \(reason)"
        }
    }
}

extension FileBytes {
    /// The bytes of an image file, a read failure as `ImagingError.fileUnreadable`.
    package static func imageFile(_ path: String, maxBytes: Int) throws(ImagingError) -> [UInt8] {
        do { return try contents(of: path, maxBytes: maxBytes) } catch { throw .fileUnreadable(path: error.path, reason: error.reason) }
    }
}
