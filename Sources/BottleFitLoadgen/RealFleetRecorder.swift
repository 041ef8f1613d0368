import BottleFitDevice
import BottleFitProtocol

/// Turns the real cameras' statuses (every `sample_ms`) and summaries into the load generator's report:
/// the same schema as the emulated fleet, with `fidelity: real`. Latency comes from each camera's own
/// `FrameAccounting` (from the scheduled time, open loop); the fallback frames are part of `local`
/// there, so `latency_ms.fallback` is absent and `completed_fallback` counts them; per-interval
/// percentiles, the scheduling error and energy are not measured at this level.
struct RealFleetRecorder {
    let plan: LoadgenPlan
    let start: UInt64
    private var last: [FrameAccounting]
    private var lastAt: UInt64
    private var samples: [LoadgenReport.Sample] = []
    private var stats: [LoadgenReport.StatsSample] = []
    private var directives: [LoadgenReport.DirectiveSample] = []
    private var fairness: FairnessWindows
    private var undecodable = 0
    /// Each camera's edge-state changes so far (from its status).
    private var stateChanges: [Int]

    init(plan: LoadgenPlan, start: UInt64, cameras: Int) {
        self.plan = plan
        self.start = start
        last = Array(repeating: FrameAccounting(), count: cameras)
        lastAt = start
        stateChanges = Array(repeating: 0, count: cameras)
        fairness = FairnessWindows(sampleSeconds: Double(plan.sampleMilliseconds) / 1000)
    }

    private func seconds(_ t: UInt64) -> Double { (Double(t) - Double(start)) / 1e6 }

    mutating func record(_ inbound: LoadgenInbound, now: UInt64, statuses: [CameraStatus]) {
        switch inbound {
        case .reply: break
        case .directive(let bytes):
            guard let d = try? DirectiveMessage.decode(bytes) else { undecodable += 1; return }
            let (fraction, ids): (Double?, Int?) = switch d.target {
            case .fraction(let f): (f, nil)
            case .cameras(let list): (nil, list.count)
            }
            directives.append(LoadgenReport.DirectiveSample(
                t: seconds(now), sequence: d.sequence, mode: d.mode.rawValue, fraction: fraction, cameras: ids, edgeShare: d.edgeShare,
                reason: d.reason, obeyed: statuses.filter(\.obeyingLocalDirective).count))
        case .stats(let bytes):
            guard let s = try? StatsMessage.decode(bytes) else { undecodable += 1; return }
            stats.append(LoadgenReport.StatsSample(
                t: seconds(now), queueDepth: s.queueDepth, q50: s.queueTimeP50, q95: s.queueTimeP95, q99: s.queueTimeP99,
                inFlight: s.inFlight, arrivalsPerS: s.arrivalRate, completionsPerS: s.completionRate, dropsPerS: s.dropRate,
                workers: s.workers.count, utilisation: s.utilisation))
        }
    }

    /// One time-series point from the cameras' cumulative counters.
    mutating func sample(now: UInt64, statuses: [CameraStatus], modes: [CameraMode]) -> LoadgenReport.Sample {
        let span = max(1e-3, Double(now &- lastAt) / 1e6)
        lastAt = now
        var offered = 0, edge = 0, local = 0, fallback = 0, dropped = 0
        var states: [String: Int] = [:]
        var obeying = 0, edgeCameras = 0, shares = 0.0
        for (i, s) in statuses.enumerated() {
            let a = s.accounting, b = last[i]
            offered += a.offered - b.offered
            edge += a.completedEdge - b.completedEdge
            fallback += a.fellBack - b.fellBack
            local += (a.completedLocal - a.fellBack) - (b.completedLocal - b.fellBack)
            dropped += a.droppedTotal - b.droppedTotal
            if modes[i] != .local {
                states[s.edgeState, default: 0] += 1
                shares += s.edgeShare
                edgeCameras += 1
            }
            if s.obeyingLocalDirective { obeying += 1 }
        }
        last = statuses.map(\.accounting)
        stateChanges = statuses.map(\.stateChanges)
        let window = fairness.sample(
            t: seconds(now), offered: statuses.map(\.accounting.offered), edge: statuses.map(\.accounting.completedEdge),
            eligible: modes.map { $0 != .local })
        let completed = edge + local + fallback
        let sample = LoadgenReport.Sample(
            t: seconds(now), offeredPerS: Double(offered) / span, completedPerS: Double(completed) / span, edgePerS: Double(edge) / span,
            localPerS: Double(local) / span, fallbackPerS: Double(fallback) / span, droppedPerS: Double(dropped) / span,
            p50: nil, p90: nil, p99: nil, max: nil, edgeP99: nil,
            localFraction: completed > 0 ? Double(local + fallback) / Double(completed) : nil,
            obeyingLocal: statuses.isEmpty ? 0 : Double(obeying) / Double(statuses.count),
            edgeShare: edgeCameras > 0 ? shares / Double(edgeCameras) : nil, edgeStates: states, schedulingP99: nil,
            fairnessMin: window?.min, fairnessMax: window?.max)
        samples.append(sample)
        return sample
    }

    func report(
        summaries: [CameraSummary?], cameras: [(configuration: CameraConfiguration, group: Int)], elapsed: UInt64, cpu: UInt64,
        command: [String]
    ) -> LoadgenReport {
        var total = FrameAccounting()
        var perGroup = Array(repeating: FrameAccounting(), count: plan.groups.count)
        var cameraReports: [LoadgenReport.CameraReport] = []
        for (i, summary) in summaries.enumerated() {
            let a = summary?.accounting ?? last[i]
            total.merge(a)
            perGroup[cameras[i].group].merge(a)
            cameraReports.append(LoadgenReport.CameraReport(
                id: cameras[i].configuration.cameraID, group: plan.groups[cameras[i].group].name, mode: cameras[i].configuration.mode.rawValue,
                offered: a.offered, edge: a.completedEdge, edgeShare: a.offered > 0 ? Double(a.completedEdge) / Double(a.offered) : nil))
        }
        func summary(_ h: LatencyHistogram?) -> LoadgenReport.LatencySummary? {
            guard let h, h.count > 0 else { return nil }
            return LoadgenReport.LatencySummary(
                count: UInt64(h.count), p50: h.quantile(0.5) ?? 0, p90: h.quantile(0.9) ?? 0, p99: h.quantile(0.99) ?? 0,
                p999: h.quantile(0.999) ?? 0, max: h.maxMilliseconds, mean: h.meanMilliseconds ?? 0)
        }
        func cdf(_ h: LatencyHistogram?) -> [[Double]] {
            guard let h, h.count > 0 else { return [] }
            return (1...100).compactMap { q in h.quantile(Double(q) / 100).map { [$0, Double(q) / 100] } }
        }
        func latencies(_ a: FrameAccounting) -> [String: LoadgenReport.LatencySummary] {
            var all = LatencyHistogram()
            for h in a.latency.values { all.merge(h) }
            var out: [String: LoadgenReport.LatencySummary] = [:]
            out["all"] = summary(all) ?? LoadgenReport.LatencySummary(count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0)
            for path in CompletionPath.allCases { out[path.rawValue] = summary(a.latency[path]) }
            return out
        }
        var allHistogram = LatencyHistogram()
        for h in total.latency.values { allHistogram.merge(h) }
        var cdfs: [String: [[Double]]] = ["all": cdf(allHistogram)]
        for path in CompletionPath.allCases where total.latency[path] != nil { cdfs[path.rawValue] = cdf(total.latency[path]) }
        func drops(_ a: FrameAccounting) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: a.dropped.map { ($0.key.rawValue, $0.value) })
        }
        let seconds = plan.durationSeconds
        let completed = total.completedEdge + total.completedLocal
        let groups = plan.groups.enumerated().map { g, group in
            let a = perGroup[g]
            var modes: [String: Int] = [:]
            for c in cameras where c.group == g { modes[c.configuration.mode.rawValue, default: 0] += 1 }
            return LoadgenReport.GroupReport(
                name: group.name, cameras: group.cameras, modes: modes, model: group.modelName, device: "real (this machine)",
                uplink: "real (sockets)", offered: a.offered, sent: a.sent,
                completed: ["edge": a.completedEdge, "local": a.completedLocal - a.fellBack, "fallback": a.fellBack],
                dropped: drops(a), late: a.late, latencyMs: latencies(a),
                energy: LoadgenReport.Energy(computeJ: 0, radioJ: 0, idleJ: 0, joulesPerFrame: nil),
                labelledEdge: a.labelled[.edge] ?? 0,
                edgeAccuracy: (a.labelled[.edge] ?? 0) > 0 ? Double(a.correct[.edge] ?? 0) / Double(a.labelled[.edge]!) : nil,
                headMs: 0, fullMs: 0, jpegEncodeMs: 0, bottleneckBytes: group.model.bottleneckBytes, jpegBytes: 0)
        }
        let totals = LoadgenReport.Totals(
            offered: total.offered, sent: total.sent, completedEdge: total.completedEdge, completedLocal: total.completedLocal - total.fellBack,
            completedFallback: total.fellBack, dropped: drops(total), droppedTotal: total.droppedTotal,
            unaccounted: total.offered - completed - total.droppedTotal, lateCompletions: total.late, lateArrivals: 0, uplinkLost: 0,
            edgeErrors: [:], ignoredReplies: total.ignoredReplies, undecodable: total.undecodableMessages + undecodable,
            offeredPerS: Double(total.offered) / seconds, completedPerS: Double(completed) / seconds,
            edgeFraction: completed > 0 ? Double(total.completedEdge) / Double(completed) : 0,
            localFraction: completed > 0 ? Double(total.completedLocal) / Double(completed) : 0,
            dropFraction: total.offered > 0 ? Double(total.droppedTotal) / Double(total.offered) : 0,
            stateChangesPerCameraPerMinute: stateChanges.isEmpty ? 0
                : Double(stateChanges.reduce(0, +)) / Double(stateChanges.count) / (seconds / 60),
            edgeUtilisation: {
                let u = stats.compactMap(\.utilisation)
                return u.isEmpty ? nil : u.reduce(0, +) / Double(u.count)
            }())
        let f = fairness
        return LoadgenReport(
            fidelity: "real", startedAtMs: start / 1000, durationS: seconds, elapsedS: Double(elapsed) / 1e6, command: command,
            totals: totals, latencyMs: latencies(total),
            schedulingErrorMs: LoadgenReport.LatencySummary(count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0),
            groups: groups, timeseries: samples, stats: stats, directives: directives, cdf: cdfs, thresholds: [],
            cpuS: Double(cpu) / 1e6,
            fairness: LoadgenReport.Fairness(
                windowS: f.windowSeconds, warmupS: f.warmupSeconds, windows: f.windows, minRatio: f.minRatio, maxRatio: f.maxRatio,
                worstCamera: f.worst.map { cameras[$0.camera].configuration.cameraID }, worstAtS: f.worst?.t,
                fair: f.windows > 0 ? (f.minRatio ?? 0) >= 0.5 && (f.maxRatio ?? .infinity) <= 2 : nil),
            cameras: cameraReports)
    }
}
