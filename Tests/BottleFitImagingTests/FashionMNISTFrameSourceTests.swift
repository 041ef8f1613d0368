import CBottleFitZlib
import Foundation
import Testing

import BottleFitImaging

@Suite struct FashionMNISTFrameSourceTests {
    /// Needs the Debian package dataset-fashion-mnist (scripts/setup installs it).
    @Test func readsTheTenThousandTestImagesWithTheirLabels() throws {
        var source = try FashionMNISTFrameSource()
        #expect(source.imageCount == 10_000 && source.imageWidth == 28 && source.imageHeight == 28)
        var perLabel = [Int](repeating: 0, count: 10)
        var count = 0
        while let frame = source.next() {
            #expect(frame.sequence == count)
            #expect(frame.image.width == 28 && frame.image.height == 28 && frame.image.channels == 1)
            let label = try #require(frame.label)
            try #require((0...9).contains(label))
            perLabel[label] += 1
            count += 1
        }
        #expect(count == 10_000)
        // The test split is balanced: 1,000 images of each class.
        #expect(perLabel == [Int](repeating: 1000, count: 10))
        // Spot checks against the files (read with Python's gzip): the first image is an
        // ankle boot whose pixels sum to 33,456.
        #expect(source.label(at: 0) == 9 && FashionMNISTFrameSource.classNames[9] == "Ankle boot")
        #expect(source.image(at: 0).pixels.reduce(0) { $0 + Int($1) } == 33_456)
    }

    @Test func loopsAndEncodesWhenAsked() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try writeRaw(folder, images: 3, labels: [4, 0, 9])
        var source = try FashionMNISTFrameSource(directory: folder.path, loops: true, jpegQuality: 95)
        let labels = (0..<7).compactMap { _ in source.next()?.label }
        #expect(labels == [4, 0, 9, 4, 0, 9, 4])
        let next = source.next()
        let frame = try #require(next)
        #expect(frame.sequence == 7 && frame.id == "fashion-mnist-test/1")
        #expect(try JPEGCodec.decode(try #require(frame.jpeg)).width == 2)
    }

    @Test func missingFilesNameTheDebianPackage() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let error = #expect(throws: ImagingError.self) { try FashionMNISTFrameSource(directory: folder.path) }
        guard case .datasetMissing(let path, let package)? = error else {
            Issue.record("expected datasetMissing, got \(String(describing: error))")
            return
        }
        #expect(package == "dataset-fashion-mnist")
        #expect(path.hasSuffix("t10k-images-idx3-ubyte.gz"))
        #expect(error?.description.contains("dataset-fashion-mnist") == true)
    }

    @Test func rejectsAWrongMagicNumberRawOrGzipped() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try writeRaw(folder, images: 2, labels: [1, 2])
        // An idx1 (labels) magic where idx3 (images) belongs.
        let wrong = IDXBytes.make(dimensions: [2, 2, 2], data: [UInt8](repeating: 0, count: 8), magic: [0, 0, 8, 1])
        try folder.write("t10k-images-idx3-ubyte", wrong)
        expectInvalid(folder, mentioning: "magic number")

        // The same bytes gzipped take precedence over the raw file and fail the same way.
        try writeGzip(folder.file("t10k-images-idx3-ubyte.gz"), wrong)
        expectInvalid(folder, mentioning: "magic number")
    }

    @Test func rejectsFilesWhoseSizeDisagreesWithTheirHeader() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try writeRaw(folder, images: 50, labels: [UInt8](repeating: 1, count: 50))
        let images = IDXBytes.make(dimensions: [2, 2, 2], data: [UInt8](repeating: 7, count: 8))
        try folder.write("t10k-images-idx3-ubyte", Array(images.dropLast()))
        expectInvalid(folder, mentioning: "file ends")
        try folder.write("t10k-images-idx3-ubyte", images + [0])
        expectInvalid(folder, mentioning: "more data")
        // A header claiming 2^20 images of 1024x1024 is refused before allocating.
        try folder.write("t10k-images-idx3-ubyte", IDXBytes.make(dimensions: [1 << 20, 1024, 1024], data: []))
        expectInvalid(folder, mentioning: "more than")
        // A gzip stream cut short.
        try folder.write("t10k-images-idx3-ubyte", images)
        let compressed = try gzipBytes(IDXBytes.make(dimensions: [50, 28, 28], data: [UInt8](repeating: 3, count: 50 * 784)), in: folder)
        try folder.write("t10k-images-idx3-ubyte.gz", Array(compressed.prefix(compressed.count / 2)))
        expectInvalid(folder, mentioning: "file ends")
        // A whole gzip stream whose CRC (the trailer's first 4 bytes) is wrong.
        var badCRC = compressed
        badCRC[badCRC.count - 8] ^= 0xFF
        try folder.write("t10k-images-idx3-ubyte.gz", badCRC)
        expectInvalid(folder, mentioning: "incorrect data check")
        try folder.write("t10k-images-idx3-ubyte.gz", compressed)
        #expect(try FashionMNISTFrameSource(directory: folder.path).imageCount == 50)
    }

    @Test func rejectsMismatchedOrOutOfRangeLabels() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try writeRaw(folder, images: 2, labels: [1, 2, 3])
        expectInvalid(folder, mentioning: "3 labels for 2 images")
        try writeRaw(folder, images: 2, labels: [1, 10])
        expectInvalid(folder, mentioning: "outside 0...9")
    }

    // MARK: - Helpers

    /// Uncompressed test-split files of `images` 2x2 images and the given labels.
    private func writeRaw(_ folder: TemporaryDirectory, images: Int, labels: [UInt8]) throws {
        let pixels = (0..<(images * 4)).map { UInt8($0 * 10 % 256) }
        try folder.write("t10k-images-idx3-ubyte", IDXBytes.make(dimensions: [images, 2, 2], data: pixels))
        try folder.write("t10k-labels-idx1-ubyte", IDXBytes.make(dimensions: [labels.count], data: labels))
    }

    private func expectInvalid(_ folder: TemporaryDirectory, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: ImagingError.self, sourceLocation: sourceLocation) {
            try FashionMNISTFrameSource(directory: folder.path)
        }
        guard case .invalidDataset(_, let reason)? = error else {
            Issue.record("expected invalidDataset, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(reason.contains(text), "\(reason)", sourceLocation: sourceLocation)
    }

    private func writeGzip(_ path: String, _ bytes: [UInt8]) throws {
        let file = try #require(gzopen(path, "wb"))
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        #expect(Int(written) == bytes.count)
        #expect(gzclose(file) == Z_OK)
    }

    private func gzipBytes(_ bytes: [UInt8], in folder: TemporaryDirectory) throws -> [UInt8] {
        let path = folder.file("scratch.gz")
        try writeGzip(path, bytes)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
