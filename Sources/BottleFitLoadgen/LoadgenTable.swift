import Foundation

/// The terminal summary of a report, and the live progress line.
public enum LoadgenTable {
    static func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

    public static func progressLine(_ p: LoadgenProgress) -> String {
        let p99 = p.p99SoFar.map { f($0) + " ms" } ?? "-"
        let local = p.localFraction.map { f($0 * 100) + "%" } ?? "-"
        return "\(p.draining ? "drain " : "")\(f(p.elapsedSeconds))s  offered \(f(p.offeredPerSecond))/s  completed \(f(p.completedPerSecond))/s"
            + "  p99 \(p99)  local \(local)  errors \(p.errors)  dropped \(p.dropped)"
    }

    public static func render(_ r: LoadgenReport) -> String {
        var out: [String] = []
        let t = r.totals
        out.append("bottlefit loadgen (\(r.fidelity)): \(f(r.durationS)) s of arrivals, \(f(r.elapsedS)) s with the drain, \(r.groups.reduce(0) { $0 + $1.cameras }) cameras")
        out.append("frames   offered \(t.offered)  sent \(t.sent)  edge \(t.completedEdge)  local \(t.completedLocal)  fallback \(t.completedFallback)  dropped \(t.droppedTotal)  unaccounted \(t.unaccounted)")
        if !t.dropped.isEmpty {
            out.append("dropped  " + t.dropped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
        }
        out.append("rates    offered \(f(t.offeredPerS))/s  completed \(f(t.completedPerS))/s  edge fraction \(f(t.edgeFraction * 100))%  late completions \(t.lateCompletions)  edge-state changes \(f(t.stateChangesPerCameraPerMinute, 2))/camera/min")
        if let fair = r.fairness {
            out.append(fairnessLine(fair, cameras: r.cameras ?? []))
        }
        out.append("")
        let header = ["latency ms", "count", "p50", "p90", "p99", "p99.9", "max"]
        var rows: [[String]] = []
        for key in ["all", "edge", "local", "fallback"] {
            guard let s = r.latencyMs[key] else { continue }
            rows.append([key, "\(s.count)", f(s.p50), f(s.p90), f(s.p99), f(s.p999), f(s.max)])
        }
        for g in r.groups where r.groups.count > 1 {
            if let s = g.latencyMs["all"] { rows.append(["group \(g.name)", "\(s.count)", f(s.p50), f(s.p90), f(s.p99), f(s.p999), f(s.max)]) }
        }
        let s = r.schedulingErrorMs
        rows.append(["scheduling error", "\(s.count)", f(s.p50, 3), f(s.p90, 3), f(s.p99, 3), f(s.p999, 3), f(s.max, 3)])
        out.append(contentsOf: table([header] + rows))
        out.append("")
        var groupRows = [["group", "cameras", "device", "uplink", "head ms", "full ms", "payload B", "J/frame", "edge top-1"]]
        for g in r.groups {
            let payload = g.modes.keys.contains("offload") ? "\(g.bottleneckBytes)/\(g.jpegBytes)" : "\(g.bottleneckBytes)"
            groupRows.append([g.name, "\(g.cameras)", g.device, g.uplink, f(g.headMs), f(g.fullMs), payload,
                              g.energy.joulesPerFrame.map { f($0, 3) } ?? "-",
                              g.edgeAccuracy.map { f($0 * 100) + "% of \(g.labelledEdge)" } ?? "-"])
        }
        out.append(contentsOf: table(groupRows))
        if let w = r.emulatedWorkers {
            out.append("")
            out.append("emulated workers  \(w.count) x \(f(w.serviceMs)) ms (\(w.distribution)), max batch \(w.maxBatch): capacity \(f(w.capacityPerS))/s, served \(w.served), expired \(w.expired)")
        }
        if let last = r.stats.last {
            out.append("")
            out.append("broker (last STATS)  queue \(last.queueDepth)  queue time p99 \(f(last.q99)) ms  in flight \(last.inFlight)  workers \(last.workers)")
            let phases = LoadgenReport.workerPhases(r.stats)
            if phases.count > 1 {
                out.append("workers (STATS)  " + phases.map { p in
                    "\(p.workers) from \(f(p.from)) s" + (p.completionsPerS.map { " (\(f($0)) completed/s)" } ?? "")
                }.joined(separator: ", "))
            }
        }
        if !r.directives.isEmpty {
            out.append("directives  \(r.directives.count) received, last: s=\(r.directives.last!.sequence) \(r.directives.last!.mode)")
        }
        if !r.thresholds.isEmpty {
            out.append("")
            for th in r.thresholds {
                out.append("\(th.passed ? "ok  " : "FAIL") \(th.expression)  (\(th.value.map { f($0, 3) } ?? "no data"))")
            }
        }
        return out.joined(separator: "\n")
    }

    /// Issue 10's fairness in one line: the extremes of per-camera edge share / fleet mean, and the
    /// cameras' whole-run shares.
    static func fairnessLine(_ fair: LoadgenReport.Fairness, cameras: [LoadgenReport.CameraReport]) -> String {
        let shares = cameras.compactMap { $0.mode == "local" ? nil : $0.edgeShare }
        let whole = shares.isEmpty ? "" : "  whole run: edge share per camera \(f((shares.min() ?? 0) * 100))...\(f((shares.max() ?? 0) * 100))%"
        guard fair.windows > 0, let lo = fair.minRatio, let hi = fair.maxRatio else {
            return "fairness no \(f(fair.windowS, 0)) s window after \(f(fair.warmupS, 0)) s (run too short, or the edge served nothing)" + whole
        }
        let verdict = fair.fair == true ? "fair" : "UNFAIR"
        return "fairness edge share / fleet mean over \(fair.windows) windows of \(f(fair.windowS, 0)) s: min \(f(lo, 2)) max \(f(hi, 2)) (\(verdict): 0.5...2)"
            + (fair.worstCamera.map { "  worst \($0) at \(f(fair.worstAtS ?? 0)) s" } ?? "") + whole
    }

    static func table(_ rows: [[String]]) -> [String] {
        guard let first = rows.first else { return [] }
        let widths = (0..<first.count).map { c in rows.map { $0.count > c ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }
}
