/// Max pooling of one output row for every channel, from rows that are already in cache (the
/// engine's fused convolution and pooling step), with an optional per-channel affine and
/// ReLU after it (a BatchNormalization that follows the pool). AVX-512 only, like all of
/// this module.
///
/// Per channel: the window's input rows are combined into one row (`SIMD16` max), which is
/// written between -inf margins so that every output takes the same branch-free path; then
/// each block of 16 outputs takes its `kernelWidth` taps as vectors (for stride 2, the even
/// or odd half of 32 loaded floats). One call does a whole output row of all channels, so
/// none of the set-up is paid per channel.
public enum MaxPoolRow {
    public struct Geometry {
        public var inputWidth: Int, outputWidth: Int
        public var kernelWidth: Int, stride: Int, padLeft: Int

        public init(inputWidth: Int, outputWidth: Int, kernelWidth: Int, stride: Int, padLeft: Int) {
            self.inputWidth = inputWidth
            self.outputWidth = outputWidth
            self.kernelWidth = kernelWidth
            self.stride = stride
            self.padLeft = padLeft
        }

        /// Strides this kernel takes (others go through the engine's generic pooling).
        public var isSupported: Bool { (stride == 1 || stride == 2) && kernelWidth >= 1 && padLeft >= 0 && padLeft < kernelWidth }

        /// Floats of the margined row: what the last block of outputs reads.
        public var scratchFloats: Int { (outputWidth + 15) / 16 * 16 * stride + kernelWidth + 32 }
    }

    /// Output row of channels 0..<channels: channel j combines the rows at
    /// `input + j·inputChannelStride + rowOffsets[i]` for i in 0..<rowCount and writes
    /// `output + j·outputChannelStride` (outputWidth floats), then y = max(y·scale[j] + shift[j], 0)
    /// when `scale` is given (without the max unless `relu`). `scratch` holds `scratchFloats`;
    /// `rowCount` is at least 1.
    public static func run(
        _ g: Geometry, channels: Int, input: UnsafePointer<Float>, inputChannelStride: Int, rowOffsets: UnsafePointer<Int>,
        rowCount: Int, output: UnsafeMutablePointer<Float>, outputChannelStride: Int,
        scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, relu: Bool, scratch: UnsafeMutablePointer<Float>
    ) {
        let iw = g.inputWidth, pw = g.outputWidth, kw = g.kernelWidth, sw = g.stride
        let row = scratch + g.padLeft
        // Margins: -inf left of the row and right of it up to what the last output reads.
        scratch.update(repeating: -.infinity, count: g.padLeft)
        (row + iw).update(repeating: -.infinity, count: g.scratchFloats - g.padLeft - iw)
        // Plain loops over unit-stride or stride-2 (interleaved) data: the compiler turns them
        // into vmaxps on ZMM registers, which explicit SIMD16 code here did not.
        for j in 0..<channels {
            let base = input + j * inputChannelStride
            // The window's rows combined.
            let first = base + rowOffsets[0]
            if rowCount == 3 {
                // Whole vectors, then the rest (the compiler's loop left 16 of 112 to 4-wide steps).
                let second = base + rowOffsets[1], third = base + rowOffsets[2]
                var x = 0
                while x + 16 <= iw {
                    let v = larger(larger(load16(first + x), load16(second + x)), load16(third + x))
                    UnsafeMutableRawPointer(row + x).storeBytes(of: v, as: SIMD16<Float>.self)
                    x += 16
                }
                while x < iw {
                    row[x] = larger(larger(first[x], second[x]), third[x])
                    x += 1
                }
            } else {
                for x in 0..<iw { row[x] = first[x] }
                for i in 1..<max(1, rowCount) {
                    let line = base + rowOffsets[i]
                    for x in 0..<iw { row[x] = larger(row[x], line[x]) }
                }
            }
            // The columns: output ox reads margined positions ox·stride + kx; then the affine.
            let out = output + j * outputChannelStride
            let a = scale?[j] ?? 1, b = shift?[j] ?? 0
            if sw == 2 && kw == 3 {
                // ResNet's 3x3/2 pool: one pass. Blocks of 8 outputs: 16 floats split into their
                // even (tap 0) and odd (tap 1) halves, and the even half 2 floats on (tap 2).
                var ox = 0
                while ox + 8 <= pw {
                    let p = scratch + 2 * ox
                    let here = load16(p), next = load16(p + 2)
                    var m = larger(larger(here.evenHalf, here.oddHalf), next.evenHalf)
                    if scale != nil {
                        m = m * SIMD8(repeating: a) + SIMD8(repeating: b)
                        if relu { m = larger(m, SIMD8()) }
                    }
                    UnsafeMutableRawPointer(out + ox).storeBytes(of: m, as: SIMD8<Float>.self)
                    ox += 8
                }
                if ox == pw { continue }
                if scale == nil {
                    for ox in ox..<pw { out[ox] = larger(larger(scratch[2 * ox], scratch[2 * ox + 1]), scratch[2 * ox + 2]) }
                } else if relu {
                    for ox in ox..<pw {
                        let m = larger(larger(scratch[2 * ox], scratch[2 * ox + 1]), scratch[2 * ox + 2])
                        out[ox] = larger(m * a + b, 0)
                    }
                } else {
                    for ox in ox..<pw { out[ox] = larger(larger(scratch[2 * ox], scratch[2 * ox + 1]), scratch[2 * ox + 2]) * a + b }
                }
                continue
            }
            for ox in 0..<pw { out[ox] = scratch[ox * sw] }
            for kx in 1..<max(1, kw) {
                let p = scratch + kx
                if sw == 1 {
                    for ox in 0..<pw { out[ox] = larger(out[ox], p[ox]) }
                } else {
                    for ox in 0..<pw { out[ox] = larger(out[ox], p[2 * ox]) }
                }
            }
            if scale != nil {
                if relu {
                    for ox in 0..<pw { out[ox] = larger(out[ox] * a + b, 0) }
                } else {
                    for ox in 0..<pw { out[ox] = out[ox] * a + b }
                }
            }
        }
    }

    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

    /// Lane-wise a > b ? a : b.
    @inline(__always)
    static func larger(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { b.replacing(with: a, where: a .> b) }

    @inline(__always)
    static func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { b.replacing(with: a, where: a .> b) }

    /// a > b ? a : b, as the engine's pooling does (one `maxps`).
    @inline(__always)
    static func larger(_ a: Float, _ b: Float) -> Float { a > b ? a : b }
}
