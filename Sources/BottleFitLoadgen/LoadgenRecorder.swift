import BottleFitDevice
import Histogram

/// Where a completed frame was computed, as the report splits it.
public enum LoadgenPath: String, Sendable, CaseIterable, Codable {
    /// A RESULT from the edge.
    case edge
    /// Computed on the camera by its own choice or a directive.
    case local
    /// Computed on the camera after the edge failed it (BUSY, timeout, ...).
    case fallback
}

/// Latencies in µs, 3 significant digits, up to one hour (larger values are clamped there).
typealias LatencyHistogramHDR = Histogram<UInt64>

func makeHistogram() -> LatencyHistogramHDR {
    LatencyHistogramHDR(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

extension Histogram where Count == UInt64 {
    mutating func recordClamped(_ value: UInt64) {
        _ = record(Swift.min(value, highestTrackableValue))
    }
}

/// Every count and histogram of a run. Offered frames and outcomes are counted independently, so
/// `unaccounted = offered − completed − dropped` is a real check, not an identity.
final class LoadgenRecorder {
    struct GroupCounters {
        var offered = 0
        var sent = 0
        var completed: [LoadgenPath: Int] = [:]
        var late = 0
        var dropped: [String: Int] = [:]
        var edgeErrors: [String: Int] = [:]
        var uplinkLost = 0
        /// Edge RESULTs for labelled frames, and those whose top-1 matched the label.
        var labelledEdge = 0
        var correctEdge = 0
        var all = makeHistogram()
        var byPath: [LoadgenPath: LatencyHistogramHDR] = [:]

        var completedTotal: Int { completed.values.reduce(0, +) }
        var droppedTotal: Int { dropped.values.reduce(0, +) }
    }

    /// One point of the time series, covering the interval that ends at `t`.
    struct Interval {
        var offered = 0
        var completed: [LoadgenPath: Int] = [:]
        var dropped = 0
        var latency = makeHistogram()
        var edgeLatency = makeHistogram()
        var schedulingError = makeHistogram()
    }

    private(set) var groups: [GroupCounters]
    private(set) var overall = makeHistogram()
    private(set) var byPath: [LoadgenPath: LatencyHistogramHDR] = [:]
    /// Send time − scheduled time of every arrival the loop handled (its own lateness).
    private(set) var schedulingError = makeHistogram()
    /// Arrivals handled more than 1 ms after their scheduled time.
    private(set) var lateArrivals = 0
    private(set) var ignoredReplies = 0
    private(set) var undecodable = 0
    var interval = Interval()

    init(groups: Int) {
        self.groups = Array(repeating: GroupCounters(), count: groups)
    }

    func recordArrivalLateness(_ microseconds: UInt64) {
        schedulingError.recordClamped(microseconds)
        interval.schedulingError.recordClamped(microseconds)
        if microseconds > 1000 { lateArrivals += 1 }
    }

    func recordOffered(group: Int) {
        groups[group].offered += 1
        interval.offered += 1
    }

    func recordSent(group: Int) { groups[group].sent += 1 }
    func recordEdgeAccuracy(group: Int, correct: Bool) {
        groups[group].labelledEdge += 1
        if correct { groups[group].correctEdge += 1 }
    }
    func recordUplinkLoss(group: Int) { groups[group].uplinkLost += 1 }
    func recordIgnoredReply() { ignoredReplies += 1 }
    func recordUndecodable() { undecodable += 1 }
    func recordEdgeError(group: Int, code: String) {
        groups[group].edgeErrors[code, default: 0] += 1
        edgeErrorTotal += 1
    }
    /// ERROR answers from the edge so far (the progress line's "errors").
    private(set) var edgeErrorTotal = 0

    func recordCompleted(group: Int, path: LoadgenPath, latencyMicroseconds: UInt64, late: Bool) {
        groups[group].completed[path, default: 0] += 1
        if late { groups[group].late += 1 }
        groups[group].all.recordClamped(latencyMicroseconds)
        groups[group].byPath[path, default: makeHistogram()].recordClamped(latencyMicroseconds)
        overall.recordClamped(latencyMicroseconds)
        byPath[path, default: makeHistogram()].recordClamped(latencyMicroseconds)
        interval.completed[path, default: 0] += 1
        interval.latency.recordClamped(latencyMicroseconds)
        if path == .edge { interval.edgeLatency.recordClamped(latencyMicroseconds) }
    }

    func recordDropped(group: Int, reason: DropReason) {
        groups[group].dropped[reason.rawValue, default: 0] += 1
        interval.dropped += 1
    }

    /// Ends the current interval and returns it.
    func takeInterval() -> Interval {
        defer { interval = Interval() }
        return interval
    }

    var offered: Int { groups.reduce(0) { $0 + $1.offered } }
    var completedTotal: Int { groups.reduce(0) { $0 + $1.completedTotal } }
    var droppedTotal: Int { groups.reduce(0) { $0 + $1.droppedTotal } }
    func completed(_ path: LoadgenPath) -> Int { groups.reduce(0) { $0 + ($1.completed[path] ?? 0) } }
    var unaccounted: Int { offered - completedTotal - droppedTotal }
}
