import Foundation
import Histogram

/// The JSON report of a run (`--report`), schema in docs/loadgen.md. Keys are written in snake_case.
/// `schemaVersion` changes whenever a key changes meaning or goes away; added keys keep it.
public struct LoadgenReport: Codable, Sendable {
    public static let currentSchemaVersion = 2

    public var schema = "bottlefit-loadgen-report"
    public var schemaVersion = LoadgenReport.currentSchemaVersion
    /// "emulated", "emulated (instant sink)", "emulated (emulated workers)", "real" (real cameras running
    /// their models, `RealFleet`) or "real (emulated workers)".
    public var fidelity: String
    public var startedAtMs: UInt64
    public var durationS: Double
    /// Wall time from the first arrival to the end of the drain.
    public var elapsedS: Double
    public var command: [String]
    public var totals: Totals
    public var latencyMs: [String: LatencySummary]
    public var schedulingErrorMs: LatencySummary
    public var groups: [GroupReport]
    public var timeseries: [Sample]
    public var stats: [StatsSample]
    public var directives: [DirectiveSample]
    /// Latency CDF per path: [latency ms, fraction of completions at or below it].
    public var cdf: [String: [[Double]]]
    public var thresholds: [ThresholdResult]
    /// CPU time the process used during the run, s (for loadgen self-cost).
    public var cpuS: Double
    /// The emulated tail workers of `--emulate-workers`, when there were any.
    public var emulatedWorkers: EmulatedWorkersReport? = nil
    /// Issue 10's fairness: per-camera edge share against the fleet's mean over sliding windows.
    public var fairness: Fairness? = nil
    /// Per camera: offered frames, edge answers and its edge share over the whole run.
    public var cameras: [CameraReport]? = nil
    /// The `SCHED_FIFO` priority the event loop ran at (`realtime_priority`); absent under the normal scheduler.
    public var realtimePriority: Int? = nil

    /// Each camera's edge share (edge answers / frames offered to it) in every `window_s` window that
    /// starts once the fleet has run `warmup_s`, divided by the mean share of the cameras that may use
    /// the edge; `min_ratio`/`max_ratio` are the extremes over all windows. Fair: within 0.5...2.
    public struct Fairness: Codable, Sendable {
        public var windowS: Double
        public var warmupS: Double
        /// Windows measured (none in a run shorter than warm-up + window, or while the edge served nothing).
        public var windows: Int
        public var minRatio: Double?
        public var maxRatio: Double?
        public var worstCamera: String?
        /// End of the window of the lowest ratio, s.
        public var worstAtS: Double?
        public var fair: Bool?
    }

    public struct CameraReport: Codable, Sendable {
        public var id: String
        public var group: String
        public var mode: String
        public var offered: Int
        public var edge: Int
        public var edgeShare: Double?
    }

    public struct EmulatedWorkersReport: Codable, Sendable {
        public var count: Int
        public var serviceMs: Double
        public var batchExtraMs: Double
        public var maxBatch: Int
        public var distribution: String
        /// Frames/s the pool serves at full batches with constant service.
        public var capacityPerS: Double
        public var served: Int
        public var expired: Int
    }

    public struct Totals: Codable, Sendable {
        public var offered: Int
        public var sent: Int
        public var completedEdge: Int
        public var completedLocal: Int
        public var completedFallback: Int
        public var dropped: [String: Int]
        public var droppedTotal: Int
        public var unaccounted: Int
        public var lateCompletions: Int
        /// Arrivals the loop handled more than 1 ms after their scheduled time.
        public var lateArrivals: Int
        public var uplinkLost: Int
        public var edgeErrors: [String: Int]
        public var ignoredReplies: Int
        public var undecodable: Int
        public var offeredPerS: Double
        public var completedPerS: Double
        /// Completed on the edge / completed anywhere.
        public var edgeFraction: Double
        public var localFraction: Double
        public var dropFraction: Double
        /// Changes of the cameras' edge state (healthy, congested, starting, dead, ...) per camera
        /// per minute of arrivals: issue 10's "mode changes per camera per minute".
        public var stateChangesPerCameraPerMinute: Double
        /// Mean of the broker's STATS `ut` (worker utilisation) over the run, when it sends it.
        public var edgeUtilisation: Double?
    }

    public struct LatencySummary: Codable, Sendable {
        public var count: UInt64
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double
    }

    public struct Energy: Codable, Sendable {
        public var computeJ: Double
        public var radioJ: Double
        public var idleJ: Double
        /// (compute + radio + idle) / frames completed.
        public var joulesPerFrame: Double?
    }

    public struct GroupReport: Codable, Sendable {
        public var name: String
        public var cameras: Int
        public var modes: [String: Int]
        public var model: String
        public var device: String
        public var uplink: String
        public var offered: Int
        public var sent: Int
        public var completed: [String: Int]
        public var dropped: [String: Int]
        public var late: Int
        public var latencyMs: [String: LatencySummary]
        public var energy: Energy
        /// Edge RESULTs for labelled frames (source fashion-mnist, offload) and their top-1 accuracy.
        public var labelledEdge: Int
        public var edgeAccuracy: Double?
        /// Per frame: head, whole model, JPEG encode (ms), and payload bytes, as emulated.
        public var headMs: Double
        public var fullMs: Double
        public var jpegEncodeMs: Double
        public var bottleneckBytes: Int
        public var jpegBytes: Int
    }

    public struct Sample: Codable, Sendable {
        /// Seconds since the start, at the end of the interval.
        public var t: Double
        public var offeredPerS: Double
        public var completedPerS: Double
        public var edgePerS: Double
        public var localPerS: Double
        public var fallbackPerS: Double
        public var droppedPerS: Double
        public var p50: Double?
        public var p90: Double?
        public var p99: Double?
        public var max: Double?
        public var edgeP99: Double?
        /// Local + fallback completions / completions in the interval.
        public var localFraction: Double?
        /// Cameras obeying a `local` directive / cameras.
        public var obeyingLocal: Double
        /// Mean share of frames the cameras' policies send to the edge (split/offload cameras).
        public var edgeShare: Double?
        public var edgeStates: [String: Int]
        public var schedulingP99: Double?
        /// Lowest and highest per-camera edge share / fleet mean of the fairness window ending here.
        public var fairnessMin: Double? = nil
        public var fairnessMax: Double? = nil
    }

    public struct StatsSample: Codable, Sendable {
        public var t: Double
        public var queueDepth: Int
        public var q50: Double
        public var q95: Double
        public var q99: Double
        public var inFlight: Int
        public var arrivalsPerS: Double
        public var completionsPerS: Double
        public var dropsPerS: Double
        public var workers: Int
        /// STATS `ut`: the workers' utilisation, when the broker sends it.
        public var utilisation: Double?
    }

    public struct DirectiveSample: Codable, Sendable {
        public var t: Double
        public var sequence: UInt64
        public var mode: String
        public var fraction: Double?
        public var cameras: Int?
        /// DIRECTIVE `es`: the edge share cap, if any.
        public var edgeShare: Double?
        public var reason: String
        /// Cameras of this run that obeyed it.
        public var obeyed: Int
    }

    public struct ThresholdResult: Codable, Sendable {
        public var expression: String
        public var value: Double?
        public var passed: Bool
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> LoadgenReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(LoadgenReport.self, from: data)
    }
}

extension LoadgenReport.LatencySummary {
    /// From a histogram of µs, in ms.
    init(_ h: Histogram<UInt64>) {
        func ms(_ v: UInt64) -> Double { Double(v) / 1000 }
        count = h.totalCount
        guard h.totalCount > 0 else {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        p50 = ms(h.valueAtPercentile(50))
        p90 = ms(h.valueAtPercentile(90))
        p99 = ms(h.valueAtPercentile(99))
        p999 = ms(h.valueAtPercentile(99.9))
        max = ms(h.max)
        mean = h.mean / 1000
    }
}

/// [latency ms, cumulative fraction] points of a histogram, at most ~200 of them.
func cdfPoints(_ h: Histogram<UInt64>) -> [[Double]] {
    guard h.totalCount > 0 else { return [] }
    var points: [[Double]] = []
    for step in h.percentiles(ticksPerHalfDistance: 5) {
        points.append([Double(step.value) / 1000, step.percentileLevelIteratedTo / 100])
        if points.count >= 200 || step.percentileLevelIteratedTo >= 100 { break }
    }
    return points
}
