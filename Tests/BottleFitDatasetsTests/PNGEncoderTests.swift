import BottleFitCore
import Foundation
import Testing

@testable import BottleFitDatasets

@Suite struct PNGEncoderTests {
    /// Images chosen so that every filter type wins somewhere: noise (None), horizontal
    /// ramps (Sub), vertical stripes (Up), a smooth bowl (Average/Paeth), plus odd sizes.
    static func images() -> [(name: String, width: Int, height: Int, pixels: [UInt8])] {
        var random = SeededGenerator(seed: 11)
        var list: [(String, Int, Int, [UInt8])] = []
        list.append(("noise", 17, 9, (0..<(17 * 9)).map { _ in UInt8(truncatingIfNeeded: random.next()) }))
        list.append(("ramp", 40, 6, (0..<240).map { UInt8(($0 % 40) * 6) }))
        list.append(("stripes", 30, 12, (0..<360).map { i in UInt8((i % 30) * 97 % 251) }))
        list.append(("bowl", 33, 21, (0..<(33 * 21)).map { i in
            let x = Double(i % 33 - 16), y = Double(i / 33 - 10)
            return UInt8(min(255, (x * x + 2 * y * y) / 2))
        }))
        list.append(("diagonal", 25, 25, (0..<625).map { (i: Int) -> UInt8 in
            let value: Int = ((i % 25) * 7 + (i / 25) * 5) % 256
            return UInt8(value)
        }))
        list.append(("pixel", 1, 1, [200]))
        list.append(("column", 1, 30, (0..<30).map { UInt8($0 * 8) }))
        list.append(("flat", 64, 3, [UInt8](repeating: 0, count: 192)))
        return list
    }

    /// Decoded by Python's standard library (zlib, struct, CRC checks, unfiltering).
    @Test func pythonDecodesEveryImageToTheSamePixels() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var paths: [String] = []
        var expected: [String: (Int, Int, [UInt8])] = [:]
        for (name, width, height, pixels) in Self.images() {
            let png = PNGEncoder.encode(gray: pixels, width: width, height: height)
            // A zlib stream with the header of maximum compression (FLEVEL 3).
            #expect(png[41] == 0x78 && png[42] == 0xDA, "\(name): \(png[41]) \(png[42])")
            let path = folder.file("\(name).png")
            try folder.write("\(name).png", png)
            paths.append(path)
            expected[path] = (width, height, pixels)
        }
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/oracle/png_decode.py").path
        let output = try Fixtures.runPython(script, paths)
        let lines = output.split(separator: "\n")
        #expect(lines.count == paths.count)
        var filtersUsed = Set<Int>()
        for (path, line) in zip(paths, lines) {
            let fields = line.split(separator: " ").map { Int($0)! }
            let (width, height, pixels) = expected[path]!
            #expect(fields[0] == width && fields[1] == height, "\(path)")
            filtersUsed.formUnion(fields.dropFirst(2))
            let decoded = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".raw")))
            #expect(decoded == pixels, "\(path)")
        }
        #expect(filtersUsed == [0, 1, 2, 3, 4], "\(filtersUsed)")
    }

    @Test func filterChoiceIsTheMinimumSumOfAbsoluteDifferences() {
        // Row 0 of a ramp: Sub leaves 0, 6, 6, 6, ... (and None 0, 6, 12, ...).
        let ramp = (0..<40).map { UInt8($0 * 6) }
        let rows = PNGEncoder.filteredRows(ramp + ramp, width: 40, height: 2)
        #expect(rows[0] == 1 && Array(rows[1..<5]) == [0, 6, 6, 6])
        // Row 1 repeats row 0: Up leaves zeros.
        #expect(rows[41] == 2 && rows[42...].allSatisfy { $0 == 0 })
        #expect(PNGEncoder.paeth(10, 20, 15) == 15 && PNGEncoder.paeth(10, 20, 10) == 20 && PNGEncoder.paeth(10, 20, 20) == 10)
    }

    /// Mean PNG size of the Fashion-MNIST test images; printed for the record.
    @Test func meanPNGSizeOfTheFashionMNISTTestImages() throws {
        let test = try FashionMNIST.load(.test)
        let mean = PNGSize.mean(of: test)
        print("Fashion-MNIST test images: mean PNG size \(mean) bytes (raw 784 bytes)")
        // Every file carries 57 bytes of signature and chunk overhead; the images compress,
        // but not to nothing.
        #expect(mean > 57 + 100 && mean < 784)
        #expect(PNGSize.bytes(of: test, at: 0) == PNGEncoder.encode(gray: Array(test.pixels(at: 0)), width: 28, height: 28).count)
    }
}
