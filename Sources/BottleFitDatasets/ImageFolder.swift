import BottleFitCore
import BottleFitImaging
import Foundation

/// Labelled JPEG files in ImageNet's layout, `root/<class>/**/*.jpg`, decoded on demand.
///
/// As torchvision's `ImageFolder`: every folder directly under `root` is a class, classes
/// sorted by name give the labels 0, 1, ..., and every `*.jpg`/`*.jpeg` file (any case)
/// below a class folder, at any depth, is a sample of that class; samples are ordered by
/// class, then by path. Hidden files and folders are left out, and so are other file types.
/// The folders are listed once, at construction; nothing is decoded until `image(at:)`.
public struct ImageFolder: LabelledImageSource, Sendable {
    /// 64 MiB: far above any photograph, low enough that a stray video file is refused unread.
    public static let defaultMaxFileBytes = 64 << 20

    public let root: String
    /// Class folder names, sorted; the label of a class is its index here.
    public let classNames: [String]
    /// Every sample's path relative to `root` (`<class>/<name>.jpg`), in sample order.
    public let files: [String]
    /// Channels every image is decoded to (libjpeg converts: grey is repeated, colour becomes luma).
    public let channels: Int
    public let maxPixels: Int
    public let maxFileBytes: Int
    private let labels: [Int32]

    public var count: Int { files.count }
    /// Decoded files have their own sizes.
    public var imageSize: ImageSize? { nil }

    /// Lists the class folders and their JPEG files.
    ///
    /// Throws `rootNotFound` when `root` is missing or not a folder, `noClassFolders` when it
    /// has no subfolder, and `classWithoutImages` for a class folder without a JPEG file
    /// (torchvision refuses the same: a class that can never be sampled is a layout mistake).
    public init(
        root: String, channels: Int = 3, maxPixels: Int = JPEGCodec.defaultMaxPixels,
        maxFileBytes: Int = defaultMaxFileBytes
    ) throws(DatasetError) {
        guard channels == 1 || channels == 3 else {
            throw .invalidConfiguration("channels must be 1 or 3, not \(channels)")
        }
        guard Self.isDirectory(root) else { throw .rootNotFound(root) }
        let classNames = try Self.list(root).filter { name in
            !name.hasPrefix(".") && Self.isDirectory((root as NSString).appendingPathComponent(name))
        }.sorted()
        guard !classNames.isEmpty else { throw .noClassFolders(root: root) }

        var files: [String] = []
        var labels: [Int32] = []
        for (label, name) in classNames.enumerated() {
            let folder = (root as NSString).appendingPathComponent(name)
            let images: [String]
            do {
                images = try FileManager.default.subpathsOfDirectory(atPath: folder).filter(Self.isJPEGPath).sorted()
            } catch {
                throw .unreadableFolder(path: folder, reason: FileBytes.reason(error))
            }
            guard !images.isEmpty else { throw .classWithoutImages(className: name, path: folder) }
            files += images.map { (name as NSString).appendingPathComponent($0) }
            labels += repeatElement(Int32(label), count: images.count)
        }
        self.root = root
        self.classNames = classNames
        self.files = files
        self.labels = labels
        self.channels = channels
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
    }

    public func label(at index: Int) -> Int32 { labels[index] }

    /// The full path of sample `index`.
    public func path(at index: Int) -> String {
        (root as NSString).appendingPathComponent(files[index])
    }

    /// Reads and decodes sample `index` with libjpeg. A file that cannot be read, is not
    /// a JPEG, is truncated or damaged, or is larger than the limits throws `ImagingError`.
    public func image(at index: Int) throws -> Image {
        try decode(index)
    }

    /// `image(at:)` with its error type spelled out.
    public func decode(_ index: Int) throws(ImagingError) -> Image {
        let bytes = try FileBytes.imageFile(path(at: index), maxBytes: maxFileBytes)
        return try JPEGCodec.decode(bytes, channels: channels, maxPixels: maxPixels)
    }

    /// `*.jpg` or `*.jpeg` in any case, with no hidden component (`.git/`, `._x.jpg`).
    private static func isJPEGPath(_ path: String) -> Bool {
        let lower = path.lowercased()
        guard lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") else { return false }
        return !path.split(separator: "/").contains { $0.hasPrefix(".") }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func list(_ path: String) throws(DatasetError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .unreadableFolder(path: path, reason: FileBytes.reason(error))
        }
    }
}
