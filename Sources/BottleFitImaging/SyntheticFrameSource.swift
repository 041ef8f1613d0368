import BottleFitCore

/// Deterministic generated frames for load tests: a drifting diagonal gradient, a square
/// moving across it, and a little noise, all fixed by `seed` and the frame number.
///
/// Frame `n` depends only on the seed, the size and `n`, so two sources with the same
/// seed produce identical streams on any machine (the noise comes from
/// `SeededGenerator`), and different seeds give the simulated cameras of a fleet
/// different pictures. Consecutive frames differ, as a camera's would.
public struct SyntheticFrameSource: FrameSource, Sendable {
    public let width: Int
    public let height: Int
    /// 1 (greyscale) or 3 (RGB).
    public let channels: Int
    public let seed: UInt64
    /// Frames to deliver; `nil` for an endless stream.
    public let count: Int?
    /// When set, each frame also carries its JPEG at this quality (for offload mode).
    public let jpegQuality: Int?

    private var index = 0
    // Per-seed look: gradient slopes, square colour, side, start and velocity.
    private let slopeX: [Int]
    private let slopeY: [Int]
    private let squareColour: [UInt8]
    private let side: Int
    private let start: (x: Int, y: Int)
    private let velocity: (x: Int, y: Int)

    public init(
        width: Int, height: Int, channels: Int = 3, seed: UInt64 = 0, count: Int? = nil, jpegQuality: Int? = nil
    ) throws(ImagingError) {
        guard width > 0, height > 0, width <= 65500, height <= 65500 else {
            throw .invalidConfiguration("synthetic frames must be 1...65500 pixels a side, not \(width)x\(height)")
        }
        guard channels == 1 || channels == 3 else {
            throw .invalidConfiguration("channels must be 1 or 3, not \(channels)")
        }
        if let count, count < 0 { throw .invalidConfiguration("frame count must not be negative, not \(count)") }
        try FrameJPEG.validate(jpegQuality)
        self.width = width
        self.height = height
        self.channels = channels
        self.seed = seed
        self.count = count
        self.jpegQuality = jpegQuality

        var random = SeededGenerator(seed: seed)
        slopeX = (0..<3).map { _ in Int.random(in: 64...255, using: &random) }
        slopeY = (0..<3).map { _ in Int.random(in: 0...191, using: &random) }
        squareColour = (0..<3).map { _ in UInt8.random(in: 0...255, using: &random) }
        side = max(1, min(width, height) / 4)
        start = (Int.random(in: 0..<width, using: &random), Int.random(in: 0..<height, using: &random))
        // At least one pixel a frame in x, so every frame moves.
        velocity = (Int.random(in: 1...4, using: &random), Int.random(in: -3...3, using: &random))
    }

    public mutating func next() -> Frame? {
        if let count, index >= count { return nil }
        let image = image(at: index)
        defer { index += 1 }
        return Frame(sequence: index, id: "synthetic-\(seed)/\(index)", image: image,
                     jpeg: FrameJPEG.encode(image, quality: jpegQuality))
    }

    /// Frame number `frame` of this stream, without advancing it.
    public func image(at frame: Int) -> Image {
        // The noise of each frame has its own generator, so frame n never depends on
        // how many frames were generated before it.
        var noise = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: frame) &* 0x9E37_79B9_7F4A_7C15))
        let extent = max(width, height)
        // Wrapping arithmetic: an endless stream must not trap at some huge frame number.
        let drift = frame &* 3
        let squareX = mod(start.x &+ velocity.x &* frame, width)
        let squareY = mod(start.y &+ velocity.y &* frame, height)
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * channels) { buffer, initialized in
            var i = 0
            for y in 0..<height {
                let insideY = mod(y - squareY, height) < side
                for x in 0..<width {
                    let inside = insideY && mod(x - squareX, width) < side
                    let jitter = noise.next()
                    for c in 0..<channels {
                        let value: Int
                        if inside {
                            value = Int(squareColour[c])
                        } else {
                            value = (x * slopeX[c] + y * slopeY[c]) / extent &+ drift &* (c + 1)
                        }
                        // Noise in -4...3 per sample, from one random word per pixel.
                        let n = Int((jitter >> (8 * UInt64(c))) & 7) - 4
                        buffer[i] = UInt8(clamping: (value & 255) + n)
                        i += 1
                    }
                }
            }
            initialized = i
        }
        return Image(validatedWidth: width, height: height, channels: channels, pixels: pixels)
    }

    private func mod(_ a: Int, _ m: Int) -> Int {
        let r = a % m
        return r < 0 ? r + m : r
    }
}
