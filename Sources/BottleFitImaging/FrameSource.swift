/// One camera frame: its place in the stream, its pixels, and what it came from.
public struct Frame: Sendable, Equatable {
    /// 0, 1, 2, ... in the order the source delivered frames (keeps counting across loops).
    public let sequence: Int
    /// Where the frame came from, for logs: a file name, "fashion-mnist-test/42", "synthetic/7".
    public let id: String
    public let image: Image
    /// The JPEG the image was decoded from (or encoded to), which offload mode sends as
    /// is; `nil` for a source of raw pixels not asked to encode.
    public let jpeg: [UInt8]?
    /// The ground-truth class, when the source knows it (datasets), for accuracy studies.
    public let label: Int?

    public init(sequence: Int, id: String, image: Image, jpeg: [UInt8]? = nil, label: Int? = nil) {
        self.sequence = sequence
        self.id = id
        self.image = image
        self.jpeg = jpeg
        self.label = label
    }
}

/// A stream of camera frames, pulled one at a time by the loop that owns the source.
///
/// `next()` is synchronous and may block on file reads and JPEG decoding, so a camera
/// loop calls it from its own thread rather than from Swift's cooperative pool. A source
/// never fails mid-stream: input it cannot use is skipped and accounted for by the source
/// (see `DirectoryFrameSource.skipped`); `nil` means the stream has ended.
public protocol FrameSource {
    /// The next frame, or `nil` when there are no more.
    mutating func next() -> Frame?
}

/// Sources that generate raw pixels can also hand out a JPEG of each frame, for offload
/// mode and for measuring what sending images costs.
enum FrameJPEG {
    /// Checks a requested quality at construction, so `next()` has nothing left to fail on.
    static func validate(_ quality: Int?) throws(ImagingError) {
        if let quality, !(1...100).contains(quality) {
            throw .invalidConfiguration("JPEG quality must be in 1...100, not \(quality)")
        }
    }

    /// The image's JPEG at `quality`, or `nil` when none was asked for. An `Image` is
    /// always encodable once the quality is valid, so a failure here (out of memory) is
    /// reported as a missing JPEG rather than a lost frame.
    static func encode(_ image: Image, quality: Int?) -> [UInt8]? {
        guard let quality else { return nil }
        return try? JPEGCodec.encode(image, quality: quality)
    }
}
