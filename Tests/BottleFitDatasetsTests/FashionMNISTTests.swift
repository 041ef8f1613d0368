import BottleFitImaging
import Foundation
import Testing

@testable import BottleFitDatasets

@Suite struct FashionMNISTTests {
    /// Needs the Debian package dataset-fashion-mnist (scripts/setup installs it).
    @Test func loadsBothSplitsWithTheirCountsAndLabels() throws {
        let test = try FashionMNIST.load(.test)
        #expect(test.count == 10_000 && test.channels == 1 && test.height == 28 && test.width == 28)
        #expect(test.pixels.count == 10_000 * 784 && test.labels.count == 10_000)
        #expect(test.classNames.count == 10 && test.classNames[9] == "Ankle boot")
        // Balanced: 1,000 of each class; the first image is an ankle boot whose pixels sum to 33,456.
        var perLabel = [Int](repeating: 0, count: 10)
        for label in test.labels { perLabel[Int(label)] += 1 }
        #expect(perLabel == [Int](repeating: 1000, count: 10))
        #expect(test.labels[0] == 9 && test.pixels(at: 0).reduce(0) { $0 + Int($1) } == 33_456)

        let train = try FashionMNIST.load(.train)
        #expect(train.count == 60_000 && train.height == 28 && train.width == 28)
        #expect(Set(train.labels) == Set(0...9))
        var trainPerLabel = [Int](repeating: 0, count: 10)
        for label in train.labels { trainPerLabel[Int(label)] += 1 }
        #expect(trainPerLabel == [Int](repeating: 6000, count: 10))
    }

    /// The normalisation constants are the statistics of the training pixels scaled to [0, 1].
    @Test func meanAndStdAreThoseOfTheTrainingSet() throws {
        let train = try FashionMNIST.load(.train)
        var histogram = [Int](repeating: 0, count: 256)
        train.pixels.withUnsafeBufferPointer { pixels in
            for p in pixels { histogram[Int(p)] += 1 }
        }
        let n = Double(train.pixels.count)
        let mean = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset) * Double($1.element) } / n / 255
        let meanSquare = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.offset) * Double($1.element) } / n / 65025
        let std = (meanSquare - mean * mean).squareRoot()
        #expect(abs(Double(FashionMNIST.mean) - mean) < 1e-6, "mean \(mean)")
        #expect(abs(Double(FashionMNIST.std) - std) < 1e-6, "std \(std)")
    }

    @Test func missingFilesNameTheDebianPackageAndThePath() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        for split in FashionMNIST.Split.allCases {
            let error = #expect(throws: ImagingError.self) { try FashionMNIST.load(split, directory: folder.path) }
            let text = error?.description ?? ""
            #expect(text.contains("dataset-fashion-mnist"), "\(text)")
            #expect(text.contains(folder.file(split == .train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz")), "\(text)")
        }
        // The images there but the labels missing: the message names the labels file.
        try folder.write("t10k-images-idx3-ubyte", Fixtures.idx(dimensions: [1, 2, 2], data: [1, 2, 3, 4]))
        let error = #expect(throws: ImagingError.self) { try FashionMNIST.load(.test, directory: folder.path) }
        #expect(error?.description.contains("t10k-labels-idx1-ubyte.gz") == true)
    }

    @Test func readsSmallRawAndGzippedFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let pixels = (0..<(3 * 4 * 5)).map { UInt8($0) }
        try folder.write("train-images-idx3-ubyte.gz", try Fixtures.gzip(Fixtures.idx(dimensions: [3, 4, 5], data: pixels), in: folder))
        try folder.write("train-labels-idx1-ubyte", Fixtures.idx(dimensions: [3], data: [7, 0, 9]))
        let set = try FashionMNIST.load(.train, directory: folder.path)
        #expect(set.count == 3 && set.height == 4 && set.width == 5 && set.labels == [7, 0, 9])
        #expect(set.pixels == pixels)
        #expect(Array(set.pixels(at: 1)) == Array(pixels[20..<40]))
        #expect(set.image(at: 2).pixels == Array(pixels[40..<60]) && set.image(at: 2).width == 5)
    }

    @Test func rejectsTruncatedCorruptAndMalformedFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try folder.write("t10k-labels-idx1-ubyte", Fixtures.idx(dimensions: [20], data: [UInt8](repeating: 3, count: 20)))
        let images = Fixtures.idx(dimensions: [20, 28, 28], data: (0..<(20 * 784)).map { UInt8($0 % 253) })
        let compressed = try Fixtures.gzip(images, in: folder)

        // Every cut of the gzip stream, a few bytes apart, is an error and never a crash.
        for cut in stride(from: 0, to: compressed.count, by: max(1, compressed.count / 40)) {
            try folder.write("t10k-images-idx3-ubyte.gz", Array(compressed.prefix(cut)))
            expectInvalid(folder)
        }
        var badCRC = compressed
        badCRC[badCRC.count - 8] ^= 0xFF
        try folder.write("t10k-images-idx3-ubyte.gz", badCRC)
        expectInvalid(folder, mentioning: "incorrect data check")
        var garbled = compressed
        for i in stride(from: 20, to: garbled.count - 8, by: 7) { garbled[i] ^= 0x5A }
        try folder.write("t10k-images-idx3-ubyte.gz", garbled)
        expectInvalid(folder)
        try folder.write("t10k-images-idx3-ubyte.gz", Array("not gzip, not IDX either".utf8))
        expectInvalid(folder, mentioning: "magic number")

        try folder.write("t10k-images-idx3-ubyte.gz", compressed)
        #expect(try FashionMNIST.load(.test, directory: folder.path).count == 20)
        // Label and image counts that disagree, and a label outside the ten classes.
        try folder.write("t10k-labels-idx1-ubyte", Fixtures.idx(dimensions: [19], data: [UInt8](repeating: 3, count: 19)))
        expectInvalid(folder, mentioning: "19 labels for 20 images")
        try folder.write("t10k-labels-idx1-ubyte", Fixtures.idx(dimensions: [20], data: [UInt8](repeating: 10, count: 20)))
        expectInvalid(folder, mentioning: "outside 0...9")
        // A header declaring far more data than allowed is refused before allocating.
        try folder.write("t10k-labels-idx1-ubyte", Fixtures.idx(dimensions: [20], data: [UInt8](repeating: 3, count: 20)))
        try folder.write("t10k-images-idx3-ubyte.gz", try Fixtures.gzip(Fixtures.idx(dimensions: [1 << 20, 1024, 1024], data: []), in: folder))
        expectInvalid(folder, mentioning: "more than")
    }

    private func expectInvalid(_ folder: TemporaryDirectory, mentioning text: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: ImagingError.self, sourceLocation: sourceLocation) {
            try FashionMNIST.load(.test, directory: folder.path)
        }
        guard case .invalidDataset(_, let reason)? = error else {
            Issue.record("expected invalidDataset, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        if let text { #expect(reason.contains(text), "\(reason)", sourceLocation: sourceLocation) }
    }
}
