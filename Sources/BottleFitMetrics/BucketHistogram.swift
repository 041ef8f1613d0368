/// A histogram with fixed upper bounds, as Prometheus histograms are exposed: constant memory,
/// no allocation per sample, counts since the process started.
///
/// A value `v` goes in the first bucket whose bound is `>= v` (Prometheus's `le`), or only in the
/// implicit `+Inf` bucket above the last bound. Values are in the unit the family names
/// (seconds for every BottleFit latency, as Prometheus's naming rules ask).
public struct BucketHistogram: Sendable, Equatable {
    /// The bounds, strictly increasing and finite.
    public let upperBounds: [Double]
    /// Per bucket (not cumulative), one per bound; values above the last bound are only in `count`.
    public private(set) var bucketCounts: [Int]
    public private(set) var count = 0
    public private(set) var sum = 0.0

    /// Latency bounds from 1 ms to 10 s, in seconds: the range of a frame's life in the pipeline.
    public static let latencySeconds: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    public init(upperBounds: [Double] = BucketHistogram.latencySeconds) {
        precondition(!upperBounds.isEmpty && upperBounds.allSatisfy(\.isFinite), "bounds must be finite")
        precondition(zip(upperBounds, upperBounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must increase")
        self.upperBounds = upperBounds
        bucketCounts = Array(repeating: 0, count: upperBounds.count)
    }

    /// Records one value; NaN counts as 0 and negative values as 0 (a latency cannot be negative).
    public mutating func record(_ value: Double) {
        let v = value.isNaN ? 0 : max(0, value)
        count += 1
        if v.isFinite { sum += v }
        if let i = upperBounds.firstIndex(where: { v <= $0 }) { bucketCounts[i] += 1 }
    }

    /// Adds another histogram with the same bounds.
    public mutating func merge(_ other: BucketHistogram) {
        precondition(other.upperBounds == upperBounds, "merging histograms with different bounds")
        for i in bucketCounts.indices { bucketCounts[i] += other.bucketCounts[i] }
        count += other.count
        sum += other.sum
    }
}
