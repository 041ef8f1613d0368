import BottleFitJPEGCodec

/// JPEG decoding and encoding through libjpeg (libjpeg-turbo on Debian), safe on any input.
///
/// The C target `BottleFitJPEGCodec` installs an error manager and does the `setjmp`
/// (Swift cannot), so every libjpeg failure arrives here as an `ImagingError`. Decoding
/// reads the header first and refuses images over `maxPixels` before allocating, then
/// decodes straight into the one array the image keeps. Any corrupt-data warning fails
/// the decode by default: a truncated camera frame would otherwise come back with a grey
/// lower half and be classified as if it were whole.
///
/// These calls block for as long as libjpeg works (milliseconds for a camera frame):
/// call them from a frame loop's own thread, not from Swift's cooperative pool.
public enum JPEGCodec {
    /// 2^25 pixels (33.5 megapixels): an 8K UHD frame (7680x4320) fits, a bogus header
    /// claiming 65535x65535 does not.
    public static let defaultMaxPixels = 1 << 25

    /// The shape of a JPEG image, read without decoding it.
    public struct Header: Sendable, Equatable {
        public var width: Int
        public var height: Int
        /// 1 for a greyscale JPEG, 3 for colour.
        public var channels: Int

        public init(width: Int, height: Int, channels: Int) {
            self.width = width
            self.height = height
            self.channels = channels
        }
    }

    /// Reads width, height and channel count. The corresponding C function is
    /// `bfjpeg_read_header` (`jpeg_read_header` on a memory source).
    public static func readHeader(_ bytes: [UInt8], maxPixels: Int = defaultMaxPixels) throws(ImagingError) -> Header {
        var header = bfjpeg_header()
        let (status, message) = withMessageBuffer { message, capacity in
            bytes.withUnsafeBufferPointer { data in
                bfjpeg_read_header(data.baseAddress, data.count, UInt64(max(0, maxPixels)), &header, message, capacity)
            }
        }
        if status != BFJPEG_OK { throw error(status, message, header, maxPixels) }
        return Header(width: Int(header.width), height: Int(header.height), channels: Int(header.components))
    }

    /// Decodes a JPEG held in memory. The corresponding C function is `bfjpeg_decode`.
    ///
    /// - Parameters:
    ///   - channels: 1 or 3 to have libjpeg convert (colour to grey takes the luma; grey
    ///     to RGB repeats it); `nil` keeps the file's own channel count.
    ///   - maxPixels: images with more pixels are refused before anything is allocated.
    ///   - toleratingCorruptData: when true, only truncation fails; other damage (a bad
    ///     Huffman code, say) is patched over by libjpeg and the image returned.
    public static func decode(
        _ bytes: [UInt8], channels: Int? = nil, maxPixels: Int = defaultMaxPixels, toleratingCorruptData: Bool = false
    ) throws(ImagingError) -> Image {
        if let channels, channels != 1, channels != 3 {
            throw .invalidConfiguration("channels must be 1 or 3, not \(channels)")
        }
        let header = try readHeader(bytes, maxPixels: maxPixels)
        let outputChannels = channels ?? header.channels
        // readHeader enforced maxPixels, and JPEG dimensions are at most 65535: no overflow.
        let count = header.width * header.height * outputChannels
        var decoded = bfjpeg_header()
        var status = BFJPEG_OK
        var message = ""
        let flags = toleratingCorruptData ? Int32(BFJPEG_TOLERATE_CORRUPT_DATA) : 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            (status, message) = withMessageBuffer { messageBuffer, capacity in
                bytes.withUnsafeBufferPointer { data in
                    bfjpeg_decode(
                        data.baseAddress, data.count, UInt64(max(0, maxPixels)), Int32(outputChannels), flags,
                        buffer.baseAddress, count, &decoded, messageBuffer, capacity)
                }
            }
            initialized = status == BFJPEG_OK ? count : 0
        }
        if status != BFJPEG_OK { throw error(status, message, decoded, maxPixels) }
        guard Int(decoded.width) == header.width, Int(decoded.height) == header.height else {
            throw .corruptJPEG("header changed between reads")  // cannot happen: same bytes
        }
        return Image(validatedWidth: header.width, height: header.height, channels: outputChannels, pixels: pixels)
    }

    /// Encodes an image as a baseline (or progressive) JFIF. The corresponding C function
    /// is `bfjpeg_encode`.
    ///
    /// - Parameter quality: libjpeg's 1...100 scale; 90 keeps the mean absolute error of
    ///   natural images around one grey level.
    public static func encode(_ image: Image, quality: Int = 90, progressive: Bool = false) throws(ImagingError) -> [UInt8] {
        guard (1...100).contains(quality) else {
            throw .invalidConfiguration("JPEG quality must be in 1...100, not \(quality)")
        }
        // JPEG cannot store larger dimensions; checked here so the Int32 conversion is safe.
        guard image.width <= 65500, image.height <= 65500 else {
            throw .invalidImage("JPEG dimensions are at most 65500, not \(image.width)x\(image.height)")
        }
        var jpeg: UnsafeMutablePointer<UInt8>?
        var size = 0
        let (status, message) = withMessageBuffer { messageBuffer, capacity in
            image.pixels.withUnsafeBufferPointer { pixels in
                bfjpeg_encode(
                    pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                    Int32(quality), progressive ? 1 : 0, &jpeg, &size, messageBuffer, capacity)
            }
        }
        defer { bfjpeg_free(jpeg) }
        guard status == BFJPEG_OK, let jpeg else { throw error(status, message, bfjpeg_header(), 0) }
        return Array(UnsafeBufferPointer(start: jpeg, count: size))
    }

    /// Runs `body` with a stack buffer for the C side's message and returns its text.
    private static func withMessageBuffer(
        _ body: (UnsafeMutablePointer<CChar>, Int) -> bfjpeg_status
    ) -> (bfjpeg_status, String) {
        let capacity = Int(BFJPEG_MESSAGE_CAPACITY)
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
            let base = buffer.baseAddress!
            base.initialize(repeating: 0, count: capacity)
            let status = body(base, capacity)
            base[capacity - 1] = 0  // the C side terminates it; this makes sure
            return (status, String(cString: base))
        }
    }

    private static func error(
        _ status: bfjpeg_status, _ message: String, _ header: bfjpeg_header, _ maxPixels: Int
    ) -> ImagingError {
        switch status {
        case BFJPEG_TOO_LARGE:
            .imageTooLarge(width: Int(header.width), height: Int(header.height), maxPixels: maxPixels)
        case BFJPEG_UNSUPPORTED: .unsupportedJPEG(message)
        case BFJPEG_INVALID_ARGUMENT: .invalidImage(message)
        case BFJPEG_OUT_OF_MEMORY: .outOfMemory(message)
        default: .corruptJPEG(message.isEmpty ? "libjpeg status \(status.rawValue)" : message)
        }
    }
}
