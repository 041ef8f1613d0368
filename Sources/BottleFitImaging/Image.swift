/// An 8-bit image: `height` rows of `width` pixels, each `channels` interleaved samples
/// (1: greyscale; 3: R, G, B), row-major, no padding between rows.
///
/// This is what a camera produces and what `JPEGCodec` decodes to; `ImagePreprocessor`
/// turns it into the float NCHW tensor a model reads.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// 1 (greyscale) or 3 (RGB).
    public let channels: Int
    /// `height * width * channels` samples; sample `c` of pixel (x, y) is at
    /// `(y * width + x) * channels + c`.
    public let pixels: [UInt8]

    /// Checks that the shape is possible and that `pixels` holds exactly that many samples.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws(ImagingError) {
        guard width > 0, height > 0 else {
            throw .invalidImage("width and height must be positive, not \(width)x\(height)")
        }
        guard channels == 1 || channels == 3 else {
            throw .invalidImage("channels must be 1 or 3, not \(channels)")
        }
        let (area, overflow1) = width.multipliedReportingOverflow(by: height)
        let (count, overflow2) = area.multipliedReportingOverflow(by: channels)
        guard !overflow1, !overflow2, count == pixels.count else {
            throw .invalidImage("\(width)x\(height)x\(channels) does not match \(pixels.count) samples")
        }
        self.init(validatedWidth: width, height: height, channels: channels, pixels: pixels)
    }

    /// For callers that produced `pixels` with the right count themselves (decoder, sources,
    /// the dataset transforms of `BottleFitDatasets`).
    package init(validatedWidth width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        assert(width > 0 && height > 0 && (channels == 1 || channels == 3) && pixels.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Sample `channel` of the pixel at column `x`, row `y`.
    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 {
        pixels[(y * width + x) * channels + channel]
    }
}
