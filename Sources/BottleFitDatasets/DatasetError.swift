/// What can go wrong laying out a dataset or configuring its transforms and loader.
///
/// Reading and decoding the files themselves fails with `ImagingError` (a missing
/// Fashion-MNIST file is `ImagingError.datasetMissing`, naming the apt package; a corrupt
/// JPEG is `ImagingError.corruptJPEG`), as everywhere else in BottleFit.
public enum DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An image-folder root that does not exist or is not a folder.
    case rootNotFound(String)
    /// An image-folder root without a single class folder.
    case noClassFolders(root: String)
    /// A class folder without a single *.jpg or *.jpeg file.
    case classWithoutImages(className: String, path: String)
    /// A folder that exists but could not be listed.
    case unreadableFolder(path: String, reason: String)
    /// Pixels or labels that do not match their stated shape or classes.
    case invalidData(String)
    /// A transform or loader configured with impossible values.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .rootNotFound(let path): "no image folder at \(path)"
        case .noClassFolders(let root): "\(root) has no class folders (expected root/<class>/*.jpg)"
        case .classWithoutImages(let className, let path):
            "class folder \(className) (\(path)) has no *.jpg or *.jpeg files"
        case .unreadableFolder(let path, let reason): "cannot list \(path): \(reason)"
        case .invalidData(let message): "invalid data: \(message)"
        case .invalidConfiguration(let message): "invalid configuration: \(message)"
        }
    }
}
