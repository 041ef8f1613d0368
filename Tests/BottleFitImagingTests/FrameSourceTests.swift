import Foundation
import Testing

import BottleFitImaging

@Suite struct DirectoryFrameSourceTests {
    /// a.jpg and c.JPEG are good; b.jpg is truncated; d.jpg is a PNG under a JPEG name;
    /// notes.txt and .hidden.jpg are not considered at all.
    private func makeFolder() throws -> (TemporaryDirectory, good: [[UInt8]]) {
        let folder = try TemporaryDirectory()
        let a = try TestImages.jpeg(width: 20, height: 10)
        let c = try TestImages.jpeg(width: 12, height: 16, channels: 1)
        try folder.write("a.jpg", a)
        try folder.write("b.jpg", Array(a.prefix(a.count / 2)))
        try folder.write("c.JPEG", c)
        try folder.write("d.jpg", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])
        try folder.write("notes.txt", Array("not an image".utf8))
        try folder.write(".hidden.jpg", [1, 2, 3])
        return (folder, [a, c])
    }

    @Test func deliversGoodFramesAndCountsSkippedOnes() throws {
        let (folder, good) = try makeFolder()
        defer { folder.remove() }
        var source = try DirectoryFrameSource(directory: folder.path)
        #expect(source.files == ["a.jpg", "b.jpg", "c.JPEG", "d.jpg"])
        var frames: [Frame] = []
        while let frame = source.next() { frames.append(frame) }
        #expect(frames.map(\.id) == ["a.jpg", "c.JPEG"])
        #expect(frames.map(\.sequence) == [0, 1])
        #expect(frames.map(\.jpeg) == good)
        #expect(frames[0].image.width == 20 && frames[0].image.channels == 3)
        #expect(frames[1].image.height == 16 && frames[1].image.channels == 1)
        #expect(frames.allSatisfy { $0.label == nil })
        #expect(source.skipped == 2)
        #expect(source.skippedFiles.map(\.name) == ["b.jpg", "d.jpg"])
        #expect(source.skippedFiles[0].reason.contains("corrupt JPEG"), "\(source.skippedFiles[0].reason)")
        #expect(source.next() == nil)
    }

    @Test func loopsOverGoodFilesAndSkipsABadOneOnce() throws {
        let (folder, _) = try makeFolder()
        defer { folder.remove() }
        var source = try DirectoryFrameSource(directory: folder.path, loops: true, channels: 3)
        var ids: [String] = []
        for _ in 0..<5 { ids.append(source.next()?.id ?? "none") }
        #expect(ids == ["a.jpg", "c.JPEG", "a.jpg", "c.JPEG", "a.jpg"])
        #expect(source.skipped == 2)
        #expect(source.files == ["a.jpg", "c.JPEG"])
        // The greyscale file was converted as asked.
        #expect(source.next()?.image.channels == 3)
    }

    @Test func aFolderOfOnlyCorruptFilesEndsEvenWhenLooping() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try folder.write("x.jpg", [0xFF, 0xD8, 0xFF])
        try folder.write("y.jpeg", [])
        var source = try DirectoryFrameSource(directory: folder.path, loops: true)
        #expect(source.next() == nil)
        #expect(source.skipped == 2)
    }

    @Test func missingOrEmptyFoldersAreClearErrors() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        #expect(throws: ImagingError.noImages(directory: folder.path)) { try DirectoryFrameSource(directory: folder.path) }
        try folder.write("readme.txt", [])
        #expect(throws: ImagingError.noImages(directory: folder.path)) { try DirectoryFrameSource(directory: folder.path) }
        let missing = folder.file("nope")
        #expect(throws: ImagingError.directoryNotFound(missing)) { try DirectoryFrameSource(directory: missing) }
        #expect(throws: ImagingError.directoryNotFound(folder.file("readme.txt"))) {
            try DirectoryFrameSource(directory: folder.file("readme.txt"))
        }
    }

    @Test func oversizedFilesAreSkipped() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try folder.write("big.jpg", try TestImages.jpeg())
        var source = try DirectoryFrameSource(directory: folder.path, maxFileBytes: 100)
        #expect(source.next() == nil)
        #expect(source.skippedFiles.first?.reason.contains("more than the limit") == true)
    }
}

@Suite struct SyntheticFrameSourceTests {
    @Test func isDeterministicPerSeedAndMoves() throws {
        var a = try SyntheticFrameSource(width: 40, height: 30, seed: 5, count: 4)
        var b = try SyntheticFrameSource(width: 40, height: 30, seed: 5, count: 4)
        var c = try SyntheticFrameSource(width: 40, height: 30, seed: 6, count: 4)
        let framesA = Array(sequence(state: a) { $0.next() })
        #expect(framesA.count == 4)
        #expect(framesA.map(\.sequence) == [0, 1, 2, 3])
        for frame in framesA {
            #expect(frame.image == b.next()?.image)
            #expect(frame.image != c.next()?.image)
            #expect(frame.image.width == 40 && frame.image.height == 30 && frame.image.channels == 3)
            #expect(frame.jpeg == nil)
        }
        #expect(framesA[0].image != framesA[1].image)
        // Frame n depends only on the seed and n.
        #expect(a.image(at: 3) == framesA[3].image)
        _ = a.next()
        #expect(b.next() == nil)
    }

    @Test func carriesAJPEGWhenAsked() throws {
        var source = try SyntheticFrameSource(width: 64, height: 48, channels: 1, seed: 1, jpegQuality: 90)
        let next = source.next()
        let frame = try #require(next)
        let decoded = try JPEGCodec.decode(try #require(frame.jpeg))
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.channels == 1)
        #expect(throws: ImagingError.self) { try SyntheticFrameSource(width: 8, height: 8, jpegQuality: 0) }
        #expect(throws: ImagingError.self) { try SyntheticFrameSource(width: 0, height: 8) }
    }
}
