import BottleFitImaging
import Testing

@Suite struct PreprocessorMetadataTests {
    @Test func normalisationRoundTripsThroughModelMetadata() throws {
        let n = ImagePreprocessor.Normalization.meanStd(mean: [0.2860406], std: [0.35302424])
        #expect(try ImagePreprocessor.Normalization.fromMetadata(n.metadata) == n)
        #expect(try ImagePreprocessor.Normalization.fromMetadata(ImagePreprocessor.Normalization.imageNet.metadata) == .imageNet)
        #expect(try ImagePreprocessor.Normalization.fromMetadata([:]) == nil)
    }

    @Test func malformedOrPartialMetadataIsAnError() {
        #expect(throws: ImagingError.self) { try ImagePreprocessor.Normalization.fromMetadata(["bottlefit.input_mean": "0.5"]) }
        #expect(throws: ImagingError.self) {
            try ImagePreprocessor.Normalization.fromMetadata(["bottlefit.input_mean": "x", "bottlefit.input_std": "1"])
        }
    }

    @Test func statedNormalisationIsWhatThePreprocessorApplies() throws {
        let stated = try ImagePreprocessor.Normalization.fromMetadata(["bottlefit.input_mean": "0.5", "bottlefit.input_std": "0.25"])
        let p = try ImagePreprocessor(channels: 1, height: 2, width: 2, normalization: stated)
        let image = try Image(width: 2, height: 2, channels: 1, pixels: [0, 255, 51, 204])
        let out = p.process(image)
        // (v/255 − 0.5) / 0.25
        #expect(zip(out, [-2, 2, -1.2, 1.2]).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}
