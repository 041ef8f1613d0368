import BottleFitImaging

/// Height and width of an image, in pixels.
public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    public var description: String { "\(height)x\(width)" }
}

/// A set of labelled images addressed by index, which `BatchLoader` reads from its worker
/// threads: `LabelledImages` (in memory) and `ImageFolder` (decoded on demand).
///
/// `image(at:)` may be called from several threads at once and must not depend on the
/// order of calls; a sample that cannot be produced throws, and the loader skips it.
public protocol LabelledImageSource: Sendable {
    /// Number of samples; valid indices are `0..<count`.
    var count: Int { get }
    /// Class names, indexed by label.
    var classNames: [String] { get }
    /// Channels of every image `image(at:)` returns (1 or 3).
    var channels: Int { get }
    /// The size of every image, or `nil` when sizes vary (decoded files).
    var imageSize: ImageSize? { get }
    /// The label of sample `index`, in `0..<classNames.count`.
    func label(at index: Int) -> Int32
    /// The image of sample `index`, interleaved 8-bit (see `Image`).
    func image(at index: Int) throws -> Image
}
