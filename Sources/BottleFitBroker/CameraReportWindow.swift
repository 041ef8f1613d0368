import BottleFitProtocol

/// The cameras' recent latency reports, for the camera figures of STATS (`lc`, `ln`, `lm`, `l50`…`l99`).
///
/// A ring of the last `capacity` reports, each stamped with when it arrived; STATS aggregate those
/// younger than the window. Each report covers its own frames (a camera's windows do not overlap),
/// so counts add up; percentiles do not merge exactly, so each aggregate percentile is the mean of
/// the reports' percentiles weighted by the frames each completed. That is exact when the cameras
/// see one distribution and an estimate otherwise (docs/broker.md).
struct CameraReportWindow: Sendable {
    struct Entry: Sendable {
        /// Which camera: its connection and its id (one connection may carry several cameras).
        var camera: [UInt8]
        var report: LatencyReport
    }

    private var entries: RecentRing<Entry>
    let window: Duration

    init(capacity: Int, window: Duration) {
        entries = RecentRing(capacity: capacity)
        self.window = window
    }

    mutating func record(_ report: LatencyReport, from connection: [UInt8], at now: Duration) {
        entries.record(Entry(camera: connection + [0] + Array(report.cameraID.utf8), report: report), at: now)
    }

    /// The aggregate of the reports within the window at `now`.
    func summary(at now: Duration) -> CameraLatencySummary {
        var cameras = Set<[UInt8]>()
        var completed = 0, missed = 0, local = 0, localWithPercentile = 0
        var weighted = (p50: 0.0, p95: 0.0, p99: 0.0), localWeighted = 0.0
        for entry in entries.values(within: window, at: now) {
            let r = entry.report
            cameras.insert(entry.camera)
            completed += r.completed
            missed += r.missed
            local += r.local
            if let q = r.localP95, r.local > 0 {
                localWeighted += q * Double(r.local)
                localWithPercentile += r.local
            }
            if let p = r.percentiles {
                let n = Double(r.completed)
                weighted.p50 += p.p50 * n
                weighted.p95 += p.p95 * n
                weighted.p99 += p.p99 * n
            }
        }
        let percentiles: LatencyPercentiles? = completed == 0 ? nil : {
            let n = Double(completed)
            // Rounding in the weighted means must not break l50 ≤ l95 ≤ l99.
            let p50 = weighted.p50 / n, p95 = max(p50, weighted.p95 / n), p99 = max(p95, weighted.p99 / n)
            return LatencyPercentiles(p50: p50, p95: p95, p99: p99)
        }()
        let localP95 = localWithPercentile == 0 ? nil : localWeighted / Double(localWithPercentile)
        return CameraLatencySummary(
            cameras: cameras.count, completed: completed, missed: missed, percentiles: percentiles, local: local, localP95: localP95)
    }

    /// Cameras by the mode their latest report within the window gave (`md`); nil when no report
    /// there carried one (older cameras), so STATS leave `cm` out.
    func modes(at now: Duration) -> StatsMessage.CameraModes? {
        var latest: [[UInt8]: String] = [:]
        for entry in entries.values(within: window, at: now) {
            if let mode = entry.report.mode { latest[entry.camera] = mode }  // oldest first: the last one wins
        }
        guard !latest.isEmpty else { return nil }
        var modes = StatsMessage.CameraModes()
        for mode in latest.values {
            switch mode {
            case "split": modes.split += 1
            case "local": modes.local += 1
            case "offload": modes.offload += 1
            default: break
            }
        }
        return modes
    }
}
