import BottleFitCore
import Foundation
import BottleFitImaging

/// A fresh folder under the system temp directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("bottlefit-imaging-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum TestImages {
    /// A smooth image (gradients and a soft disc) with a little seeded noise: the kind
    /// of content JPEG reproduces to within a grey level or two.
    static func smooth(width: Int, height: Int, channels: Int, seed: UInt64 = 1) throws -> Image {
        var random = SeededGenerator(seed: seed)
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * channels)
        let cx = Float(width) / 2, cy = Float(height) / 2, radius = Float(min(width, height)) / 3
        for y in 0..<height {
            for x in 0..<width {
                let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                let disc = max(0, min(1, (radius - d) / 4))  // 4-pixel soft edge
                for c in 0..<channels {
                    let gradient = Float(x * 160 / width + y * 60 / height + 20 * c)
                    let noise = random.nextUnit() * 2 - 1
                    pixels.append(UInt8(clamping: Int((gradient * (1 - disc) + Float(200 - 60 * c) * disc + noise).rounded())))
                }
            }
        }
        return try Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Mean absolute difference of two same-shaped images, in grey levels.
    static func meanAbsoluteError(_ a: Image, _ b: Image) -> Double {
        precondition(a.pixels.count == b.pixels.count)
        let total = zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        return Double(total) / Double(a.pixels.count)
    }

    /// A valid JPEG of a small smooth image.
    static func jpeg(width: Int = 32, height: Int = 24, channels: Int = 3, quality: Int = 85, progressive: Bool = false) throws -> [UInt8] {
        try JPEGCodec.encode(try smooth(width: width, height: height, channels: channels), quality: quality, progressive: progressive)
    }
}

enum IDXBytes {
    /// An unsigned-byte IDX file: magic 00 00 08 <rank>, big-endian dimensions, data.
    static func make(dimensions: [Int], data: [UInt8], magic: [UInt8]? = nil) -> [UInt8] {
        var bytes = magic ?? [0, 0, 8, UInt8(dimensions.count)]
        for d in dimensions {
            bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)]
        }
        return bytes + data
    }
}
