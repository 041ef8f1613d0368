import BottleFitCore
import BottleFitImaging
import Foundation
import Testing

@testable import BottleFitDatasets

@Suite struct ImageFolderTests {
    /// root/<class>/*.jpg for three classes, of several sizes and both channel counts, with
    /// one truncated JPEG, an upper-case extension, a nested folder and files to be ignored.
    static func makeTree(_ folder: TemporaryDirectory) throws {
        func jpeg(_ width: Int, _ height: Int, channels: Int = 3, seed: UInt64) throws -> [UInt8] {
            try JPEGCodec.encode(Fixtures.image(width: width, height: height, channels: channels, seed: seed), quality: 90)
        }
        try folder.write("dog/b.jpg", try jpeg(40, 30, seed: 1))
        try folder.write("dog/a.JPEG", try jpeg(20, 50, channels: 1, seed: 2))
        try folder.write("dog/notes.txt", Array("not an image".utf8))
        try folder.write("dog/.hidden.jpg", try jpeg(8, 8, seed: 3))
        try folder.write("cat/x.jpeg", try jpeg(64, 48, seed: 4))
        try folder.write("cat/nested/y.jpg", try jpeg(33, 33, seed: 5))
        let whole = try jpeg(32, 32, seed: 6)
        try folder.write("cat/z-broken.jpg", Array(whole.prefix(whole.count / 2)))
        try folder.write("emu/e.jpg", try jpeg(24, 36, seed: 7))
        try folder.write("README.txt", Array("a file next to the classes".utf8))
        try folder.makeFolder(".git/objects")
    }

    @Test func listsClassesSortedAndFilesByClassThenPath() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try Self.makeTree(folder)
        let images = try ImageFolder(root: folder.path)
        #expect(images.classNames == ["cat", "dog", "emu"])
        #expect(images.files == ["cat/nested/y.jpg", "cat/x.jpeg", "cat/z-broken.jpg", "dog/a.JPEG", "dog/b.jpg", "emu/e.jpg"])
        #expect((0..<images.count).map { images.label(at: $0) } == [0, 0, 0, 1, 1, 2])
        #expect(images.count == 6 && images.channels == 3 && images.imageSize == nil)

        let x = try images.image(at: 1)
        #expect(x.width == 64 && x.height == 48 && x.channels == 3)
        // A greyscale file is decoded to three channels; with channels: 1, colour becomes grey.
        let a = try images.image(at: 3)
        #expect(a.width == 20 && a.height == 50 && a.channels == 3)
        #expect(try ImageFolder(root: folder.path, channels: 1).image(at: 1).channels == 1)
    }

    @Test func aCorruptFileIsAnErrorNotACrash() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try Self.makeTree(folder)
        let images = try ImageFolder(root: folder.path)
        let error = #expect(throws: ImagingError.self) { try images.image(at: 2) }
        guard case .corruptJPEG? = error else {
            Issue.record("expected corruptJPEG, got \(String(describing: error))")
            return
        }
        // The file vanishing after the listing is an error too.
        try FileManager.default.removeItem(atPath: images.path(at: 5))
        #expect(throws: ImagingError.self) { try images.image(at: 5) }
    }

    @Test func badLayoutsAreClearErrors() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let missing = folder.file("nowhere")
        #expect(throws: DatasetError.rootNotFound(missing)) { try ImageFolder(root: missing) }
        try folder.write("plain-file", [1, 2, 3])
        #expect(throws: DatasetError.rootNotFound(folder.file("plain-file"))) { try ImageFolder(root: folder.file("plain-file")) }

        try folder.makeFolder("empty")
        #expect(throws: DatasetError.noClassFolders(root: folder.file("empty"))) { try ImageFolder(root: folder.file("empty")) }

        try folder.write("tree/cat/a.jpg", try JPEGCodec.encode(Fixtures.image(width: 8, height: 8, channels: 3)))
        try folder.makeFolder("tree/dog")
        try folder.write("tree/dog/readme.txt", [65])
        let error = #expect(throws: DatasetError.self) { try ImageFolder(root: folder.file("tree")) }
        #expect(error == .classWithoutImages(className: "dog", path: folder.file("tree/dog")))
        #expect(error?.description.contains("dog") == true)
        #expect(throws: DatasetError.self) { try ImageFolder(root: folder.file("tree/cat"), channels: 2) }
    }

    /// The loader decodes on the fly, skips the corrupt file once per epoch and counts it.
    @Test func theLoaderSkipsAndCountsTheCorruptFile() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try Self.makeTree(folder)
        let images = try ImageFolder(root: folder.path)
        let loader = try BatchLoader(
            source: images, transform: try TransformPipeline.imageNetTraining(size: 16), batchSize: 4, seed: 9, workers: 2)
        let batches = Array(loader)
        #expect(batches.map(\.count).reduce(0, +) == 5)
        #expect(Set(batches.flatMap(\.indices)) == [0, 1, 3, 4, 5])
        #expect(loader.skipped == 1 && loader.skippedSamples.first?.index == 2)
        #expect(loader.skippedSamples.first?.reason.contains("corrupt JPEG") == true)
        for batch in batches {
            #expect(batch.shape == [batch.count, 3, 16, 16] && batch.images.count == batch.count * 768)
            #expect(batch.labels == batch.indices.map { images.label(at: $0) })
        }

        let evaluation = try BatchLoader.evaluation(
            source: images, transform: try TransformPipeline.imageNetEvaluation(resize: 20, crop: 16), batchSize: 4)
        let evaluated = Array(evaluation)
        #expect(evaluated.map(\.indices) == [[0, 1, 3], [4, 5]])
        #expect(evaluation.skipped == 1)

        // Without a crop the sizes vary and cannot be batched: refused before any work.
        #expect(throws: DatasetError.self) {
            try BatchLoader(source: images, transform: TransformPipeline([try HorizontalFlip()], normalize: .imageNet), batchSize: 2)
        }
    }
}
