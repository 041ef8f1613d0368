import BottleFitCore
import BottleFitImaging

/// Photo-like frames for offload payloads (source `textured`): noise whose amplitude spectrum falls
/// with frequency as natural images' does, so a frame's JPEG is about as large as a photograph's at
/// the same size and quality (tests/TexturedFramesTests checks it is over 12 KB at 224x224, quality 90). The `synthetic` frames (a square on a plain background)
/// compress to a few KB, which would flatter offloading.
enum TexturedFrames {
    /// A `side` x `side` RGB frame: octaves of bilinear value noise, each half the cell size and 0.7 times
    /// the amplitude of the one before, a shared luminance field plus weaker per-channel colour.
    static func image(side: Int, seed: UInt64) throws(ImagingError) -> Image {
        var rng = SeededGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var field = [Float](repeating: 0, count: side * side * 3)
        var cell = Float(side) / 2
        var amplitude: Float = 1
        while cell >= 1 {
            let n = Int((Float(side) / cell).rounded(.up)) + 2
            let luminance = (0..<(n * n)).map { _ in rng.nextUnit() * 2 - 1 }
            let colour = (0..<(n * n * 3)).map { _ in rng.nextUnit() * 2 - 1 }
            for y in 0..<side {
                let gy = Float(y) / cell, y0 = Int(gy), fy = gy - Float(y0)
                for x in 0..<side {
                    let gx = Float(x) / cell, x0 = Int(gx), fx = gx - Float(x0)
                    func at(_ grid: [Float], _ stride: Int, _ offset: Int) -> Float {
                        let a = grid[(y0 * n + x0) * stride + offset], b = grid[(y0 * n + x0 + 1) * stride + offset]
                        let c = grid[((y0 + 1) * n + x0) * stride + offset], d = grid[((y0 + 1) * n + x0 + 1) * stride + offset]
                        return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
                    }
                    let l = at(luminance, 1, 0)
                    for ch in 0..<3 { field[(y * side + x) * 3 + ch] += amplitude * (l + 0.3 * at(colour, 3, ch)) }
                }
            }
            cell /= 2
            amplitude *= 0.7  // 1/f^0.5 per octave: natural images keep more fine detail than 1/f noise
        }
        let mean = field.reduce(0, +) / Float(field.count)
        let deviation = (field.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(field.count)).squareRoot()
        let scale = deviation > 0 ? 50 / deviation : 0
        let pixels = field.map { UInt8(max(0, min(255, 128 + ($0 - mean) * scale)).rounded()) }
        return try Image(width: side, height: side, channels: 3, pixels: pixels)
    }
}
