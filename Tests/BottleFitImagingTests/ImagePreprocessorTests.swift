import BottleFitCore
import Foundation
import Testing

import BottleFitImaging

@Suite struct ImagePreprocessorTests {
    let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    @Test func knownPixelsGiveImageNetNormalisedFloatsInNCHW() throws {
        // 2x2 RGB: pure red, pure green / pure blue, mid grey.
        let image = try Image(width: 2, height: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128])
        let output = try ImagePreprocessor(channels: 3, height: 2, width: 2).process(image)
        #expect(output.count == 12)
        func expected(_ value: Float, _ c: Int) -> Float { (value / 255 - imageNetMean[c]) / imageNetStd[c] }
        let planes: [[Float]] = [[255, 0, 0, 128], [0, 255, 0, 128], [0, 0, 255, 128]]
        for c in 0..<3 {
            for i in 0..<4 {
                #expect(abs(output[c * 4 + i] - expected(planes[c][i], c)) < 1e-5, "channel \(c) pixel \(i)")
            }
        }
        // Hand-computed: (1 - 0.485) / 0.229 and (0 - 0.406) / 0.225.
        #expect(abs(output[0] - 2.2489083) < 1e-5)
        #expect(abs(output[8] - -1.8044444) < 1e-5)
    }

    @Test func unitRangeAndCustomStatistics() throws {
        let image = try Image(width: 2, height: 1, channels: 1, pixels: [0, 51])
        #expect(close(try ImagePreprocessor(channels: 1, height: 1, width: 2).process(image), [0, 0.2]))
        let custom = try ImagePreprocessor(channels: 1, height: 1, width: 2, normalization: .meanStd(mean: [0.5], std: [0.25]))
        let values = custom.process(image)
        #expect(abs(values[0] - -2) < 1e-6 && abs(values[1] - -1.2) < 1e-6)
    }

    @Test func greyAndColourConvert() throws {
        let grey = try Image(width: 1, height: 1, channels: 1, pixels: [102])
        let asRGB = try ImagePreprocessor(channels: 3, height: 1, width: 1, normalization: .unitRange).process(grey)
        #expect(close(asRGB, [0.4, 0.4, 0.4]))
        let colour = try Image(width: 1, height: 1, channels: 3, pixels: [200, 100, 50])
        let asGrey = try ImagePreprocessor(channels: 1, height: 1, width: 1).process(colour)
        #expect(abs(asGrey[0] - (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255) < 1e-6)
    }

    @Test func bilinearUpscaleUsesHalfPixelCentres() throws {
        // 1x2 -> 1x4: source coordinates -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let image = try Image(width: 2, height: 1, channels: 1, pixels: [0, 255])
        let output = try ImagePreprocessor(channels: 1, height: 1, width: 4).process(image)
        let expected: [Float] = [0, 0.25, 0.75, 1]
        #expect(close(output, expected))
    }

    @Test func resizingAConstantImageKeepsItConstant() throws {
        let image = try Image(width: 53, height: 37, channels: 3,
                              pixels: Array((0..<(53 * 37)).map { _ in [UInt8(10), 200, 90] }.joined()))
        let preprocessor = try ImagePreprocessor(channels: 3, height: 224, width: 224)
        let output = preprocessor.process(image)
        #expect(output.count == 3 * 224 * 224)
        for (c, value) in [Float(10), 200, 90].enumerated() {
            let want = (value / 255 - imageNetMean[c]) / imageNetStd[c]
            let plane = output[(c * 224 * 224)..<((c + 1) * 224 * 224)]
            #expect(plane.allSatisfy { abs($0 - want) < 1e-4 }, "channel \(c)")
        }
    }

    @Test func centreCropPicksTheCentre() throws {
        // 6 wide, 4 high, pixel value 10x + y: a 4x4 crop at scale 1 keeps columns 1...4.
        let pixels = (0..<4).flatMap { y in (0..<6).map { x in UInt8(10 * x + y) } }
        let image = try Image(width: 6, height: 4, channels: 1, pixels: pixels)
        let output = try ImagePreprocessor(channels: 1, height: 4, width: 4).process(image)
        let expected = (0..<4).flatMap { y in (1...4).map { x in Float(10 * x + y) / 255 } }
        #expect(zip(output, expected).allSatisfy { abs($0 - $1) < 1e-6 })

        // With the shorter side kept at 6, a 2x2 crop of a 6x6 image is rows and columns 2...3.
        let square = try Image(width: 6, height: 6, channels: 1, pixels: (0..<36).map { UInt8($0) })
        let centre = try ImagePreprocessor(channels: 1, height: 2, width: 2, resizeShorterSide: 6).process(square)
        #expect(centre.map { Int(($0 * 255).rounded()) } == [14, 15, 20, 21])
    }

    @Test(arguments: [(1, 3), (3, 3), (3, 1), (1, 1)])
    func matchesAStraightforwardReference(inputChannels: Int, outputChannels: Int) throws {
        var random = SeededGenerator(seed: UInt64(10 * inputChannels + outputChannels))
        for (w, h, outH, outW, side) in [(7, 5, 3, 4, 6), (5, 9, 4, 4, nil), (3, 3, 7, 5, nil), (12, 8, 4, 6, 5)] as [(Int, Int, Int, Int, Int?)] {
            let pixels = (0..<(w * h * inputChannels)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let image = try Image(width: w, height: h, channels: inputChannels, pixels: pixels)
            let normalization: ImagePreprocessor.Normalization =
                outputChannels == 3 ? .imageNet : .meanStd(mean: [0.3], std: [0.5])
            let preprocessor = try ImagePreprocessor(
                channels: outputChannels, height: outH, width: outW, resizeShorterSide: side, normalization: normalization)
            let output = preprocessor.process(image)
            let expected = reference(image, channels: outputChannels, height: outH, width: outW, side: side, normalization: normalization)
            for i in output.indices {
                #expect(abs(output[i] - expected[i]) < 1e-4, "\(w)x\(h) -> \(outW)x\(outH) element \(i)")
            }
        }
    }

    @Test func writesIntoACallerBufferAndSlicesOfABatch() throws {
        let preprocessor = try ImagePreprocessor(channels: 3, height: 8, width: 8)
        let images = try (0..<2).map { try TestImages.smooth(width: 20, height: 14, channels: 3, seed: UInt64($0)) }
        let n = preprocessor.elementCount
        var batch = [Float](repeating: .nan, count: 2 * n)
        batch.withUnsafeMutableBufferPointer { buffer in
            for (i, image) in images.enumerated() {
                preprocessor.process(image, into: UnsafeMutableBufferPointer(rebasing: buffer[(i * n)..<((i + 1) * n)]))
            }
        }
        #expect(Array(batch[0..<n]) == preprocessor.process(images[0]))
        #expect(Array(batch[n...]) == preprocessor.process(images[1]))
        #expect(preprocessor.tensor(images[0]).shape == [1, 3, 8, 8])
        #expect(ImagePreprocessor.imageNetEvaluation().shape(batch: 4) == [4, 3, 224, 224])
    }

    @Test func impossibleConfigurationsThrow() {
        #expect(throws: ImagingError.self) { try ImagePreprocessor(channels: 2) }
        #expect(throws: ImagingError.self) { try ImagePreprocessor(height: 0) }
        #expect(throws: ImagingError.self) { try ImagePreprocessor(resizeShorterSide: -1) }
        #expect(throws: ImagingError.self) { try ImagePreprocessor(channels: 1, normalization: .imageNet) }
        #expect(throws: ImagingError.self) { try ImagePreprocessor(channels: 1, normalization: .meanStd(mean: [0], std: [0])) }
    }

    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
    }

    /// The transform written out step by step: convert the whole image to float in the
    /// output's channels, resize it completely, crop, normalise.
    private func reference(
        _ image: Image, channels: Int, height: Int, width: Int, side: Int?, normalization: ImagePreprocessor.Normalization
    ) -> [Float] {
        let h = image.height, w = image.width
        func source(_ x: Int, _ y: Int, _ c: Int) -> Float {
            let p = (0..<image.channels).map { Float(image[x: x, y: y, channel: $0]) }
            if image.channels == channels { return p[c] }
            if image.channels == 1 { return p[0] }
            return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
        }
        var scale = max(Double(height) / Double(h), Double(width) / Double(w))
        if let side { scale = max(scale, Double(side) / Double(min(h, w))) }
        let rh = max(height, Int((Double(h) * scale).rounded())), rw = max(width, Int((Double(w) * scale).rounded()))
        var resized = [[[Float]]](repeating: [[Float]](repeating: [Float](repeating: 0, count: rw), count: rh), count: channels)
        for c in 0..<channels {
            for y in 0..<rh {
                for x in 0..<rw {
                    let sy = max(0, (Double(y) + 0.5) * Double(h) / Double(rh) - 0.5)
                    let sx = max(0, (Double(x) + 0.5) * Double(w) / Double(rw) - 0.5)
                    let y0 = min(Int(sy.rounded(.down)), h - 1), x0 = min(Int(sx.rounded(.down)), w - 1)
                    let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                    let fy = Float(sy - Double(y0)), fx = Float(sx - Double(x0))
                    let top = source(x0, y0, c) * (1 - fx) + source(x1, y0, c) * fx
                    let bottom = source(x0, y1, c) * (1 - fx) + source(x1, y1, c) * fx
                    resized[c][y][x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        let top = Int((Double(rh - height) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(rw - width) / 2).rounded(.toNearestOrEven))
        var output: [Float] = []
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    let unit = resized[c][top + y][left + x] / 255
                    switch normalization {
                    case .unitRange: output.append(unit)
                    case .meanStd(let mean, let std): output.append((unit - mean[c]) / std[c])
                    }
                }
            }
        }
        return output
    }
}
