import BottleFitCore
import Testing

import BottleFitImaging

@Suite struct JPEGCodecTests {
    @Test(arguments: [1, 3], [false, true])
    func roundTripStaysWithinJPEGTolerance(channels: Int, progressive: Bool) throws {
        let image = try TestImages.smooth(width: 67, height: 45, channels: channels)
        let jpeg = try JPEGCodec.encode(image, quality: 90, progressive: progressive)
        #expect(jpeg.starts(with: [0xFF, 0xD8]) && jpeg.suffix(2) == [0xFF, 0xD9])
        let header = try JPEGCodec.readHeader(jpeg)
        #expect(header == JPEGCodec.Header(width: 67, height: 45, channels: channels))
        let decoded = try JPEGCodec.decode(jpeg)
        #expect(decoded.width == 67 && decoded.height == 45 && decoded.channels == channels)
        // Quality 90 on smooth content: about one grey level (4:2:0 chroma adds some for colour).
        let error = TestImages.meanAbsoluteError(image, decoded)
        #expect(error < 2.5, "mean absolute error \(error)")
    }

    @Test func decodeConvertsBetweenGreyAndColour() throws {
        let colour = try TestImages.smooth(width: 16, height: 16, channels: 3)
        let grey = try JPEGCodec.decode(try JPEGCodec.encode(colour, quality: 95), channels: 1)
        #expect(grey.channels == 1 && grey.pixels.count == 256)
        // libjpeg's grey output is the luma (BT.601) of the colour image.
        var lumaError = 0.0
        for i in 0..<256 {
            let p = colour.pixels[(3 * i)..<(3 * i + 3)].map(Double.init)
            lumaError += abs(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] - Double(grey.pixels[i]))
        }
        #expect(lumaError / 256 < 2.5)

        let rgb = try JPEGCodec.decode(try JPEGCodec.encode(grey, quality: 95), channels: 3)
        #expect(rgb.channels == 3)
        for i in 0..<256 {
            #expect(rgb.pixels[3 * i] == rgb.pixels[3 * i + 1] && rgb.pixels[3 * i] == rgb.pixels[3 * i + 2])
        }
    }

    @Test(arguments: [(3, false), (1, false), (3, true)])
    func everyTruncationThrows(channels: Int, progressive: Bool) throws {
        let jpeg = try TestImages.jpeg(channels: channels, progressive: progressive)
        #expect(try JPEGCodec.decode(jpeg).width == 32)
        for length in 0..<jpeg.count {
            let prefix = Array(jpeg.prefix(length))
            // A truncated file must fail, not come back with a grey lower half.
            #expect(throws: ImagingError.self, "prefix of \(length) of \(jpeg.count) bytes") {
                try JPEGCodec.decode(prefix)
            }
        }
    }

    @Test func truncationIsReportedAsPrematureEnd() throws {
        let jpeg = try TestImages.jpeg()
        let error = #expect(throws: ImagingError.self) { try JPEGCodec.decode(Array(jpeg.prefix(jpeg.count * 2 / 3))) }
        guard case .corruptJPEG(let message)? = error else {
            Issue.record("expected corruptJPEG, got \(String(describing: error))")
            return
        }
        #expect(message.lowercased().contains("premature end"), "\(message)")
        // Even when tolerating corrupt data, truncation fails.
        #expect(throws: ImagingError.self) {
            try JPEGCodec.decode(Array(jpeg.prefix(jpeg.count - 1)), toleratingCorruptData: true)
        }
    }

    @Test func randomGarbageThrows() throws {
        var random = SeededGenerator(seed: 42)
        for _ in 0..<300 {
            let count = Int.random(in: 0...4096, using: &random)
            let garbage = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(throws: ImagingError.self) { try JPEGCodec.decode(garbage) }
            // Garbage behind a start-of-image marker gets further into libjpeg.
            #expect(throws: ImagingError.self) { try JPEGCodec.decode([0xFF, 0xD8, 0xFF] + garbage) }
        }
        #expect(throws: ImagingError.self) { try JPEGCodec.decode([]) }
        #expect(throws: ImagingError.self) { try JPEGCodec.readHeader([0xFF, 0xD8]) }
    }

    @Test func mutatedFilesNeverCrash() throws {
        // Random byte changes anywhere (header, tables, scan data): each decode either
        // throws an ImagingError or returns an image of a consistent shape.
        let jpeg = try TestImages.jpeg(width: 48, height: 40)
        var random = SeededGenerator(seed: 7)
        var failures = 0
        for _ in 0..<500 {
            var mutant = jpeg
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                mutant[Int.random(in: 0..<mutant.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            do {
                let image = try JPEGCodec.decode(mutant, maxPixels: 1 << 20)
                #expect(image.pixels.count == image.width * image.height * image.channels)
            } catch {
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    @Test func corruptScanDataFailsUnlessTolerated() throws {
        let jpeg = try TestImages.jpeg()
        // Junk between the scan data and the EOI marker: libjpeg warns ("extraneous
        // bytes before marker") and would otherwise return the image as if nothing happened.
        let damaged = Array(jpeg.dropLast(2)) + [UInt8](repeating: 0x55, count: 64) + [0xFF, 0xD9]
        let error = #expect(throws: ImagingError.self) { try JPEGCodec.decode(damaged) }
        #expect(error?.description.contains("extraneous") == true, "\(String(describing: error))")
        let tolerated = try JPEGCodec.decode(damaged, toleratingCorruptData: true)
        #expect(tolerated == (try JPEGCodec.decode(jpeg)))
    }

    @Test func oversizedImagesAreRefusedBeforeDecoding() throws {
        var jpeg = try TestImages.jpeg()
        #expect(throws: ImagingError.imageTooLarge(width: 32, height: 24, maxPixels: 700)) {
            try JPEGCodec.decode(jpeg, maxPixels: 700)
        }
        // Forge the frame header (SOF0: FFC0, length, precision, height, width) to
        // 60000x60000 (libjpeg itself refuses sides over 65500).
        let sof = try #require(jpeg.indices.first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        for i in stride(from: sof + 5, to: sof + 9, by: 2) { (jpeg[i], jpeg[i + 1]) = (0xEA, 0x60) }
        #expect(throws: ImagingError.imageTooLarge(width: 60000, height: 60000, maxPixels: JPEGCodec.defaultMaxPixels)) {
            try JPEGCodec.decode(jpeg)
        }
    }

    @Test func invalidArgumentsThrow() throws {
        let image = try TestImages.smooth(width: 8, height: 8, channels: 3)
        #expect(throws: ImagingError.self) { try JPEGCodec.encode(image, quality: 0) }
        #expect(throws: ImagingError.self) { try JPEGCodec.encode(image, quality: 101) }
        #expect(throws: ImagingError.self) { try JPEGCodec.decode(try TestImages.jpeg(), channels: 2) }
        #expect(throws: ImagingError.self) { try Image(width: 2, height: 2, channels: 3, pixels: [1, 2, 3]) }
        #expect(throws: ImagingError.self) { try Image(width: 1, height: 1, channels: 4, pixels: [1, 2, 3, 4]) }
        #expect(throws: ImagingError.self) { try Image(width: Int.max, height: 2, channels: 3, pixels: []) }
    }
}
