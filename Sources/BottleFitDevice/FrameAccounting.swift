import BottleFitMetrics

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a completed frame was computed.
public enum CompletionPath: String, Sendable, CaseIterable {
    /// The edge answered with a RESULT (split or offload).
    case edge
    /// The camera ran the whole model.
    case local
}

/// Every counter of one camera, in one place.
///
/// Invariant (docs/architecture.md): every frame offered ends as exactly one of completed on
/// the edge, completed locally, or dropped with a reason, so
/// `offered == completedEdge + completedLocal + dropped + inFlight`, and `inFlight` is 0 once
/// the camera has drained. The counters are only changed through the `record` methods, which
/// keep it true; `inFlight` is derived, never counted separately.
public struct FrameAccounting: Sendable, Equatable {
    /// Frames taken from the source (including inputs the source skipped).
    public private(set) var offered = 0
    /// FRAME messages handed to the socket (split and offload). A frame sent and then
    /// computed locally after a failure counts here and in `completedLocal`.
    public private(set) var sent = 0
    public private(set) var completedEdge = 0
    public private(set) var completedLocal = 0
    /// Frames completed locally after the edge failed them (BUSY, timeout, ...): part of `completedLocal`.
    public private(set) var fellBack = 0
    /// Frames completed (anywhere) after their deadline: part of the completed counts.
    public private(set) var late = 0
    /// Drops by reason.
    public private(set) var dropped: [DropReason: Int] = [:]
    /// Frames whose label was known, and those whose top-1 matched it, per path.
    public private(set) var labelled: [CompletionPath: Int] = [:]
    public private(set) var correct: [CompletionPath: Int] = [:]
    /// End-to-end latency of completed frames, per path, in milliseconds.
    public private(set) var latency: [CompletionPath: LatencyHistogram] = [:]
    /// The same latencies in the fixed buckets of `/metrics`, in seconds.
    public private(set) var latencyBuckets: [CompletionPath: BucketHistogram] = [:]
    /// Replies for frames already settled (late, duplicate) or never sent: ignored, but counted.
    public private(set) var ignoredReplies = 0
    /// Messages from the broker that could not be decoded (not attributable to a frame).
    public private(set) var undecodableMessages = 0
    /// Directives this camera obeyed.
    public private(set) var directivesObeyed = 0
    /// Latency reports handed to the socket (HEARTBEATs carrying `lr`).
    public private(set) var latencyReportsSent = 0

    public init() {}

    /// Frames dropped for any reason.
    public var droppedTotal: Int { dropped.values.reduce(0, +) }
    /// Frames offered and not yet settled.
    public var inFlight: Int { offered - completedEdge - completedLocal - droppedTotal }
    /// Whether the invariant holds with nothing in flight.
    public var isSettled: Bool { inFlight == 0 }

    /// A frame was taken from the source.
    public mutating func recordOffered() { offered += 1 }

    /// The source skipped `count` inputs: each is an offered frame, dropped at once.
    public mutating func recordSourceSkipped(_ count: Int) {
        guard count > 0 else { return }
        offered += count
        dropped[.sourceSkipped, default: 0] += count
    }

    /// A FRAME left for the edge.
    public mutating func recordSent() { sent += 1 }

    /// A frame completed with a top-1 class.
    public mutating func recordCompleted(
        on path: CompletionPath, latencyMilliseconds: Double, top1: Int?, label: Int?, late isLate: Bool, fellBack didFallBack: Bool = false
    ) {
        precondition(inFlight > 0, "a frame completed that was never offered")
        switch path {
        case .edge: completedEdge += 1
        case .local: completedLocal += 1
        }
        if didFallBack { fellBack += 1 }
        if isLate { late += 1 }
        latency[path, default: LatencyHistogram()].record(milliseconds: latencyMilliseconds)
        latencyBuckets[path, default: BucketHistogram()].record(latencyMilliseconds / 1000)
        if let label {
            labelled[path, default: 0] += 1
            if top1 == label { correct[path, default: 0] += 1 }
        }
    }

    /// A frame ended without a result.
    public mutating func recordDropped(_ reason: DropReason) {
        precondition(inFlight > 0, "a frame dropped that was never offered")
        dropped[reason, default: 0] += 1
    }

    public mutating func recordIgnoredReply() { ignoredReplies += 1 }
    public mutating func recordUndecodableMessage() { undecodableMessages += 1 }
    public mutating func recordDirectiveObeyed() { directivesObeyed += 1 }
    public mutating func recordLatencyReportSent() { latencyReportsSent += 1 }

    /// Top-1 accuracy on a path, when any labelled frame completed there.
    public func accuracy(_ path: CompletionPath) -> Double? {
        guard let n = labelled[path], n > 0 else { return nil }
        return Double(correct[path] ?? 0) / Double(n)
    }

    /// Adds another camera's counts (a fleet total in the load generator).
    public mutating func merge(_ other: FrameAccounting) {
        offered += other.offered
        sent += other.sent
        completedEdge += other.completedEdge
        completedLocal += other.completedLocal
        fellBack += other.fellBack
        late += other.late
        dropped.merge(other.dropped, uniquingKeysWith: +)
        labelled.merge(other.labelled, uniquingKeysWith: +)
        correct.merge(other.correct, uniquingKeysWith: +)
        for (path, histogram) in other.latency { latency[path, default: LatencyHistogram()].merge(histogram) }
        for (path, histogram) in other.latencyBuckets { latencyBuckets[path, default: BucketHistogram()].merge(histogram) }
        ignoredReplies += other.ignoredReplies
        undecodableMessages += other.undecodableMessages
        directivesObeyed += other.directivesObeyed
        latencyReportsSent += other.latencyReportsSent
    }
}

/// A latency histogram with fixed log-spaced buckets: constant memory, no allocation per
/// sample, percentiles within about 4.4% (16 buckets per doubling), from 1 µs to about 12 days.
public struct LatencyHistogram: Sendable, Equatable {
    static let bucketsPerDoubling = 16.0
    static let bucketCount = 16 * 40
    private var buckets: [Int]
    public private(set) var count = 0
    public private(set) var sumMilliseconds = 0.0
    public private(set) var minMilliseconds = Double.infinity
    public private(set) var maxMilliseconds = 0.0

    public init() { buckets = Array(repeating: 0, count: Self.bucketCount) }

    public mutating func record(milliseconds: Double) {
        let ms = milliseconds.isFinite ? max(0, milliseconds) : 0
        buckets[Self.bucket(ms)] += 1
        count += 1
        sumMilliseconds += ms
        minMilliseconds = min(minMilliseconds, ms)
        maxMilliseconds = max(maxMilliseconds, ms)
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for i in buckets.indices { buckets[i] += other.buckets[i] }
        count += other.count
        sumMilliseconds += other.sumMilliseconds
        minMilliseconds = min(minMilliseconds, other.minMilliseconds)
        maxMilliseconds = max(maxMilliseconds, other.maxMilliseconds)
    }

    public var meanMilliseconds: Double? { count > 0 ? sumMilliseconds / Double(count) : nil }

    /// The `q`-quantile (0...1): the upper edge of its bucket, clamped to the observed range.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= rank {
                let upper = 0.001 * exp2(Double(i + 1) / Self.bucketsPerDoubling)
                return min(max(upper, minMilliseconds), maxMilliseconds)
            }
        }
        return maxMilliseconds
    }

    static func bucket(_ ms: Double) -> Int {
        let micros = ms * 1000
        guard micros > 1 else { return 0 }
        return min(bucketCount - 1, Int(log2(micros) * bucketsPerDoubling))
    }
}
