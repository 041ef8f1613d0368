import BottleFitProtocol

/// What a camera saw of the edge since its last latency report: the end-to-end latency of the
/// frames that came back with a RESULT, and the frames that missed (docs/device.md).
///
/// A value, driven by the loop: `recordCompleted` for each RESULT, `recordMissed` for each edge
/// frame that timed out or came back EXPIRED, `recordLocal` for each frame computed locally, and
/// `report(at:)` when a report is due, which returns the report (nil if the window saw no frame
/// complete or miss) and starts the next window.
public struct EdgeLatencyWindow: Sendable {
    public let cameraID: String
    private var histogram = LatencyHistogram()
    private var missed = 0
    private var local = LatencyHistogram()
    private var startedAt: UInt64

    /// An empty window starting at `now` (Unix ms).
    public init(cameraID: String, now: UInt64) {
        self.cameraID = cameraID
        startedAt = now
    }

    /// Edge frames in the window so far (completed and missed).
    public var frames: Int { histogram.count + missed }

    public mutating func recordCompleted(latencyMilliseconds: Double) { histogram.record(milliseconds: latencyMilliseconds) }

    public mutating func recordMissed() { missed += 1 }

    /// A frame completed locally (by choice or as a fallback): the controller's view of how much
    /// of the fleet's work stays off the edge, and how fast.
    public mutating func recordLocal(latencyMilliseconds: Double) { local.record(milliseconds: latencyMilliseconds) }

    /// The report for the window ending at `now`, nil when it saw no edge frame; the next window starts at `now` either way.
    public mutating func report(at now: UInt64) -> LatencyReport? {
        defer {
            histogram = LatencyHistogram()
            missed = 0
            local = LatencyHistogram()
            startedAt = now
        }
        guard frames > 0 || local.count > 0 else { return nil }
        // A clock step can make a latency absurd; the protocol bounds percentiles at one day.
        func bounded(_ q: Double) -> Double { min(histogram.quantile(q) ?? 0, LatencyPercentiles.maxMilliseconds) }
        let percentiles = histogram.count == 0 ? nil : LatencyPercentiles(p50: bounded(0.5), p95: bounded(0.95), p99: bounded(0.99))
        return LatencyReport(
            cameraID: cameraID, windowMilliseconds: now > startedAt ? now - startedAt : 1,
            completed: min(histogram.count, LatencyReport.maxFrames), missed: min(missed, LatencyReport.maxFrames),
            percentiles: percentiles, local: min(local.count, LatencyReport.maxFrames),
            localP95: local.count == 0 ? nil : min(local.quantile(0.95) ?? 0, LatencyPercentiles.maxMilliseconds))
    }
}
