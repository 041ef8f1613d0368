import BottleFitCore
import BottleFitImaging

/// Everything one epoch's batches depend on, fixed before the first is built: the source,
/// the transforms, the sample order, the batch size and the seeds. Batch `b` is a function
/// of this plan and `b` alone, so it does not matter which thread builds it, or when.
struct EpochPlan: Sendable {
    let source: any LabelledImageSource
    let transform: TransformPipeline
    let order: [Int]
    let batchSize: Int
    /// Samples delivered this epoch: all, or a multiple of the batch size with drop-last.
    let sampleCount: Int
    let seed: UInt64
    let epoch: Int
    /// C, H, W of one sample after the transforms.
    let sampleShape: [Int]
    /// Batches this epoch.
    let batchCount: Int

    var elementCount: Int { sampleShape.reduce(1, *) }

    /// Builds batch `number`; `isCancelled` is polled between samples so a stop is prompt.
    /// Returns nil for the batch when every sample of it was skipped.
    func build(_ number: Int, isCancelled: () -> Bool) -> (batch: Batch?, skipped: [SkippedSample]) {
        let positions = (number * batchSize)..<min((number + 1) * batchSize, sampleCount)
        let elements = elementCount
        let expected = ImageSize(height: sampleShape[1], width: sampleShape[2])
        var images = [Float](repeating: 0, count: positions.count * elements)
        var labels: [Int32] = []
        var indices: [Int] = []
        var skipped: [SkippedSample] = []
        labels.reserveCapacity(positions.count)
        indices.reserveCapacity(positions.count)
        images.withUnsafeMutableBufferPointer { buffer in
            for position in positions {
                if isCancelled() { return }
                let index = order[position]
                do {
                    var random = DataRandomness.generator(seed: seed, epoch: epoch, sample: index)
                    let image = transform.transform(try source.image(at: index), using: &random)
                    // Only a source that misstates its image size can get here; skip, never crash.
                    guard image.height == expected.height, image.width == expected.width else {
                        skipped.append(SkippedSample(index: index, reason: "transformed to \(image.height)x\(image.width), not \(expected)"))
                        continue
                    }
                    let slot = labels.count * elements
                    transform.normalize(image, into: UnsafeMutableBufferPointer(rebasing: buffer[slot..<(slot + elements)]))
                    labels.append(source.label(at: index))
                    indices.append(index)
                } catch {
                    skipped.append(SkippedSample(index: index, reason: "\(error)"))
                }
            }
        }
        guard !labels.isEmpty else { return (nil, skipped) }
        if labels.count < positions.count { images.removeLast((positions.count - labels.count) * elements) }
        let batch = Batch(
            images: images, labels: labels, count: labels.count, shape: [labels.count] + sampleShape,
            indices: indices, number: number)
        return (batch, skipped)
    }
}
