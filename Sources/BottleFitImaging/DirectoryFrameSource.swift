import BottleFitCore
import Foundation

/// Frames from the JPEG files of one folder, in file-name order, optionally looping.
///
/// The folder is listed once, at construction: every `*.jpg` and `*.jpeg` file (any
/// case; hidden files excluded, such as macOS's `._name.jpg` resource forks). A file
/// that cannot be read or decoded is skipped, never fatal: it leaves the rotation (so a
/// looping source does not decode it again every pass) and is recorded in
/// `skippedFiles` with the reason, for the caller to log. When every file has been
/// skipped the stream ends, looping or not.
public struct DirectoryFrameSource: FrameSource, Sendable {
    /// A file that was skipped, and why.
    public struct SkippedFile: Sendable, Equatable {
        public let name: String
        public let reason: String
    }

    /// 64 MiB: far above any camera JPEG, low enough that a stray video file is refused.
    public static let defaultMaxFileBytes = 64 << 20

    public let directory: String
    public let loops: Bool
    /// Channels to decode to (1 or 3); `nil` keeps each file's own.
    public let channels: Int?
    public let maxPixels: Int
    public let maxFileBytes: Int
    /// File names still in rotation, sorted.
    public private(set) var files: [String]
    /// Files skipped so far, in the order it happened.
    public private(set) var skippedFiles: [SkippedFile] = []
    /// How many files were skipped (each file counts once).
    public var skipped: Int { skippedFiles.count }

    private var position = 0
    private var sequence = 0

    /// Lists the folder. Throws when it does not exist, is not a folder, or holds no
    /// JPEG files; corrupt files are found only when `next()` reaches them.
    public init(
        directory: String, loops: Bool = false, channels: Int? = nil,
        maxPixels: Int = JPEGCodec.defaultMaxPixels, maxFileBytes: Int = defaultMaxFileBytes
    ) throws(ImagingError) {
        if let channels, channels != 1, channels != 3 {
            throw .invalidConfiguration("channels must be 1 or 3, not \(channels)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .directoryNotFound(directory)
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .fileUnreadable(path: directory, reason: FileBytes.reason(error))
        }
        let jpegs = names.filter { name in
            let lower = name.lowercased()
            return !name.hasPrefix(".") && (lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg"))
        }
        guard !jpegs.isEmpty else { throw .noImages(directory: directory) }
        self.directory = directory
        self.loops = loops
        self.channels = channels
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
        self.files = jpegs.sorted()
    }

    public mutating func next() -> Frame? {
        while !files.isEmpty {
            if position >= files.count {
                guard loops else { return nil }
                position = 0
            }
            let name = files[position]
            let path = (directory as NSString).appendingPathComponent(name)
            do throws(ImagingError) {
                let bytes = try FileBytes.imageFile(path, maxBytes: maxFileBytes)
                let image = try JPEGCodec.decode(bytes, channels: channels, maxPixels: maxPixels)
                position += 1
                defer { sequence += 1 }
                return Frame(sequence: sequence, id: name, image: image, jpeg: bytes)
            } catch {
                // Removing it moves the next file to `position`, so do not advance.
                files.remove(at: position)
                skippedFiles.append(SkippedFile(name: name, reason: error.description))
            }
        }
        return nil
    }
}
