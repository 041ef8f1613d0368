import BottleFitCore
import BottleFitImaging
import CBottleFitZlib
import Foundation
import Testing

@testable import BottleFitDatasets

/// A fresh folder under the system temp directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("bottlefit-datasets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        let url = URL(fileURLWithPath: file(name))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    func makeFolder(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: file(name), withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum Fixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// An unsigned-byte IDX file: magic 00 00 08 <rank>, big-endian dimensions, data.
    static func idx(dimensions: [Int], data: [UInt8], magic: [UInt8]? = nil) -> [UInt8] {
        var bytes = magic ?? [0, 0, 8, UInt8(dimensions.count)]
        for d in dimensions {
            bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)]
        }
        return bytes + data
    }

    /// `bytes` gzip-compressed by zlib.
    static func gzip(_ bytes: [UInt8], in folder: TemporaryDirectory) throws -> [UInt8] {
        let path = folder.file("scratch-\(UUID().uuidString).gz")
        let file = try #require(gzopen(path, "wb"))
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        #expect(Int(written) == bytes.count)
        #expect(gzclose(file) == Z_OK)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A deterministic image whose pixels vary in x, y and channel, with seeded noise.
    static func image(width: Int, height: Int, channels: Int, seed: UInt64 = 1) -> Image {
        var random = SeededGenerator(seed: seed)
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let base = x * 180 / max(width, 1) + y * 50 / max(height, 1) + 20 * c
                    pixels.append(UInt8(clamping: base + Int(random.next() % 8)))
                }
            }
        }
        return try! Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A Python 3 with the standard library: $BOTTLEFIT_PYTHON, the repository's .venv, or python3 on PATH.
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["BOTTLEFIT_PYTHON"], !p.isEmpty { return p }
        let venv = packageRoot.appendingPathComponent(".venv/bin/python").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        return "/usr/bin/env"
    }

    struct ProcessFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a Python script with `arguments`; returns its standard output or throws with its standard error.
    static func runPython(_ script: String, _ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = (python == "/usr/bin/env" ? ["python3"] : []) + [script] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ProcessFailure(description: "python \(script) exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: outData, as: UTF8.self)
    }
}

/// A source of `count` 1x4x4 images whose first pixel is the index (mod 256) and whose
/// label is `index % classes`, for checking which sample ended where.
func indexedImages(count: Int, classes: Int = 10, height: Int = 4, width: Int = 4) throws -> LabelledImages {
    var pixels: [UInt8] = []
    for i in 0..<count {
        var image = [UInt8](repeating: UInt8(i % 251), count: height * width)
        image[0] = UInt8(i % 256)
        image[1] = UInt8(i / 256)
        pixels += image
    }
    return try LabelledImages(
        channels: 1, height: height, width: width, pixels: pixels, labels: (0..<count).map { Int32($0 % classes) },
        classNames: (0..<classes).map { "class \($0)" })
}
