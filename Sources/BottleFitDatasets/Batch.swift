/// One batch of normalised images and their labels, as `BatchLoader` produces them.
public struct Batch: Sendable {
    /// `count` images, NCHW float32, normalised: `shape.reduce(1, *)` values.
    public let images: [Float]
    /// One label per image.
    public let labels: [Int32]
    /// Images in this batch: the batch size, fewer for the last batch of an epoch without
    /// drop-last, and fewer again for each sample of the batch that was skipped.
    public let count: Int
    /// `[count, channels, height, width]`.
    public let shape: [Int]
    /// The dataset index of each image, in batch order.
    public let indices: [Int]
    /// The batch's position in the epoch, 0-based (a batch whose every sample was skipped
    /// is never delivered, so numbers can have gaps).
    public let number: Int
}

/// A sample the loader could not produce, and why (the error's description).
public struct SkippedSample: Sendable, Equatable {
    /// The dataset index.
    public let index: Int
    public let reason: String
}
