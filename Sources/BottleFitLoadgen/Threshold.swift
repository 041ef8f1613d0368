/// A pass/fail check on a run's report, as k6 thresholds are: `METRIC OP VALUE[UNIT]`, e.g.
/// `p99<200ms`, `unaccounted==0`, `edge_fraction>0.9`, `drop_fraction<=1%` (docs/loadgen.md lists the metrics).
public struct Threshold: Sendable, Equatable, CustomStringConvertible {
    public enum Comparison: String, Sendable, CaseIterable {
        case lessOrEqual = "<=", greaterOrEqual = ">=", equal = "==", notEqual = "!=", less = "<", greater = ">"

        func holds(_ a: Double, _ b: Double) -> Bool {
            switch self {
            case .less: a < b
            case .lessOrEqual: a <= b
            case .greater: a > b
            case .greaterOrEqual: a >= b
            case .equal: a == b
            case .notEqual: a != b
            }
        }
    }

    public var metric: String
    public var comparison: Comparison
    /// In the metric's unit: ms for latencies, a fraction (0...1) for fractions, frames/s for rates.
    public var value: Double
    public var expression: String

    public var description: String { expression }

    /// Metrics a threshold may name, with what they mean (shown in errors and --help).
    public static let metrics: [(name: String, meaning: String)] = [
        ("p50, p90, p99, p999, max, mean", "latency of every completed frame, ms"),
        ("edge_p50 ... edge_max, local_*, fallback_*", "latency per path, ms"),
        ("sched_p99, sched_max", "the load generator's own scheduling error, ms"),
        ("offered, completed, completed_edge, completed_local, completed_fallback, dropped, unaccounted", "frame counts"),
        ("dropped_REASON", "drops for one reason, e.g. dropped_busy"),
        ("edge_fraction, local_fraction, drop_fraction", "fractions (0...1, or with %)"),
        ("throughput, offered_rate", "completed and offered frames per second"),
        ("mode_changes", "cameras' edge-state changes per camera per minute"),
        ("edge_utilisation", "mean worker utilisation from the broker's STATS (ut), 0...1"),
        ("energy_per_frame", "camera energy per completed frame over all groups, J"),
        ("fairness_min, fairness_max", "lowest and highest per-camera edge share / fleet mean over 10 s windows after 10 s (issue 10: fair within 0.5...2)"),
    ]

    public init(parsing text: String) throws(LoadgenError) {
        let trimmed = text.filter { !$0.isWhitespace }
        // Two-character operators first, so `<=` is not read as `<`.
        let ordered: [Comparison] = [.lessOrEqual, .greaterOrEqual, .equal, .notEqual, .less, .greater]
        guard let (comparison, range) = ordered.lazy.compactMap({ c in trimmed.range(of: c.rawValue).map { (c, $0) } }).first else {
            throw LoadgenError("threshold \(text): expected METRIC OP VALUE, e.g. p99<200ms (OP one of < <= > >= == !=)")
        }
        let metric = String(trimmed[..<range.lowerBound]).lowercased()
        var valueText = String(trimmed[range.upperBound...]).lowercased()
        guard !metric.isEmpty, !valueText.isEmpty else {
            throw LoadgenError("threshold \(text): expected METRIC OP VALUE, e.g. p99<200ms")
        }
        var scale = 1.0
        for (unit, factor) in [("ms", 1.0), ("us", 0.001), ("s", 1000.0), ("%", 0.01)] where valueText.hasSuffix(unit) {
            valueText.removeLast(unit.count)
            scale = factor
            break
        }
        guard let number = Double(valueText), number.isFinite else {
            throw LoadgenError("threshold \(text): \(valueText) is not a number (units: ms, us, s, %)")
        }
        self.metric = metric
        self.comparison = comparison
        value = number * scale
        expression = text
        guard Self.lookup(metric, in: nil) != .unknown else {
            throw LoadgenError("threshold \(text): unknown metric \(metric); known: " + Self.metrics.map(\.name).joined(separator: "; "))
        }
    }

    enum Lookup: Equatable {
        case unknown
        case missing
        case value(Double)
    }

    /// The metric's value in `report` (`nil` report: only checks that the name is known).
    static func lookup(_ metric: String, in report: LoadgenReport?) -> Lookup {
        func latency(_ path: String, _ stat: String) -> Lookup {
            guard ["p50", "p90", "p99", "p999", "max", "mean"].contains(stat) else { return .unknown }
            guard let report else { return .missing }
            guard let s = path == "sched" ? report.schedulingErrorMs : report.latencyMs[path], s.count > 0 else { return .missing }
            switch stat {
            case "p50": return .value(s.p50)
            case "p90": return .value(s.p90)
            case "p99": return .value(s.p99)
            case "p999": return .value(s.p999)
            case "max": return .value(s.max)
            default: return .value(s.mean)
            }
        }
        let parts = metric.split(separator: "_", maxSplits: 1).map(String.init)
        if parts.count == 1, ["p50", "p90", "p99", "p999", "max", "mean"].contains(metric) { return latency("all", metric) }
        if parts.count == 2, ["edge", "local", "fallback", "sched"].contains(parts[0]),
           ["p50", "p90", "p99", "p999", "max", "mean"].contains(parts[1]) {
            return latency(parts[0], parts[1])
        }
        if metric.hasPrefix("dropped_") {
            guard let report else { return .missing }
            return .value(Double(report.totals.dropped[String(metric.dropFirst(8))] ?? 0))
        }
        let known = ["offered", "completed", "completed_edge", "completed_local", "completed_fallback", "dropped", "unaccounted",
                     "edge_fraction", "local_fraction", "drop_fraction", "throughput", "offered_rate", "energy_per_frame",
                     "mode_changes", "edge_utilisation", "fairness_min", "fairness_max"]
        guard known.contains(metric) else { return .unknown }
        guard let t = report?.totals else { return .missing }
        switch metric {
        case "offered": return .value(Double(t.offered))
        case "completed": return .value(Double(t.completedEdge + t.completedLocal + t.completedFallback))
        case "completed_edge": return .value(Double(t.completedEdge))
        case "completed_local": return .value(Double(t.completedLocal))
        case "completed_fallback": return .value(Double(t.completedFallback))
        case "dropped": return .value(Double(t.droppedTotal))
        case "unaccounted": return .value(Double(t.unaccounted))
        case "edge_fraction": return .value(t.edgeFraction)
        case "local_fraction": return .value(t.localFraction)
        case "drop_fraction": return .value(t.dropFraction)
        case "throughput": return .value(t.completedPerS)
        case "offered_rate": return .value(t.offeredPerS)
        case "mode_changes": return .value(t.stateChangesPerCameraPerMinute)
        case "edge_utilisation": return t.edgeUtilisation.map { .value($0) } ?? .missing
        case "fairness_min": return report?.fairness?.minRatio.map { .value($0) } ?? .missing
        case "fairness_max": return report?.fairness?.maxRatio.map { .value($0) } ?? .missing
        default:
            let groups = report!.groups
            let joules = groups.reduce(0.0) { $0 + $1.energy.computeJ + $1.energy.radioJ + $1.energy.idleJ }
            let frames = groups.reduce(0) { $0 + $1.completed.values.reduce(0, +) }
            return frames > 0 ? .value(joules / Double(frames)) : .missing
        }
    }

    /// Checks the threshold; a metric with no data (no edge completion for `edge_p99`) fails.
    public func evaluate(_ report: LoadgenReport) -> LoadgenReport.ThresholdResult {
        switch Self.lookup(metric, in: report) {
        case .value(let v): LoadgenReport.ThresholdResult(expression: expression, value: v, passed: comparison.holds(v, value))
        case .missing, .unknown: LoadgenReport.ThresholdResult(expression: expression, value: nil, passed: false)
        }
    }
}
