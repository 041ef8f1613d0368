import BottleFitController
import BottleFitMetrics
import BottleFitProtocol
import Testing

/// STATS with a quiet queue and the given camera figures.
func cameraStats(p95: Double?, completed: Int = 100, missed: Int = 0, cameras: Int = 4, q95: Double = 1, drops: Double = 0) -> StatsMessage {
    var s = stats(q95: q95, drops: drops)
    s.cameraLatency = CameraLatencySummary(
        cameras: cameras, completed: completed, missed: missed,
        percentiles: p95.map { LatencyPercentiles(p50: $0 / 2, p95: $0, p99: $0 * 1.1) })
    return s
}

extension PolicyHarness {
    /// Feeds `count` STATS built by `make`, one per interval; returns the fractions after each.
    @discardableResult
    mutating func feed(count: Int, _ make: () -> StatsMessage) -> [Double] {
        var fractions: [Double] = []
        for _ in 0..<count {
            now += interval
            if let d = policy.tick(now: now) { decisions.append(d) }
            decisions.append(policy.observe(make(), now: now))
            fractions.append(policy.fraction)
        }
        return fractions
    }
}

/// The camera-reported latency as a signal of its own: the queue stays quiet in every test here.
@Suite("ControllerPolicy with camera latency")
struct CameraLatencyPolicyTests {
    @Test func cameraLatencyAloneRaisesWithTheSameWindowAndDwell() {
        var h = PolicyHarness()  // latency SLO 250 ms, queue SLO 50 ms; q95 is 1 ms throughout
        let first = h.feed(count: 5) { cameraStats(p95: 400) }
        #expect(first == [0, 0, 0, 0, 0.25])
        let raise = h.changes[0]
        #expect(raise.signals == [.cameraLatency] && raise.condition == .overloaded)
        #expect(raise.reason.contains("camera latency over its objective") && raise.reason.contains("camera p95 400 ms"))
        #expect(raise.reason.contains("queue p95 1 ms"))
        // The dwell holds the next step for 3 s, as for queue time.
        let next = h.feed(count: 12) { cameraStats(p95: 400) }
        #expect(next.dropLast().allSatisfy { $0 == 0.25 } && next.last == 0.5)
        #expect(h.changes.allSatisfy { $0.signals == [.cameraLatency] })
    }

    @Test func aSpikeOrAHoverChangesNothing() {
        var h = PolicyHarness()
        // One report window over the objective, then normal: no raise.
        h.feed(count: 2) { cameraStats(p95: 400) }
        h.feed(count: 20) { cameraStats(p95: 100) }
        // Hovering around the objective (250 ms) after that: in the band or briefly over, never 1 s.
        var high = false
        h.feed(count: 40) {
            high.toggle()
            return cameraStats(p95: high ? 260 : 240)
        }
        #expect(h.policy.fraction == 0 && h.changes.isEmpty)
        #expect(h.decisions.last?.condition == .steady)
    }

    @Test func recoveryIsStagedAndNeedsLowCameraLatency() {
        var h = PolicyHarness()
        h.feed(count: 17) { cameraStats(p95: 400) }
        #expect(h.policy.fraction == 0.5)
        // Between half the objective and the objective: steady, nothing released.
        h.feed(count: 40) { cameraStats(p95: 200) }
        #expect(h.policy.fraction == 0.5)
        // Below half the objective (125 ms) with nothing missed: staged release, 0.1 a step, the dwell apart.
        h.feed(count: 200) { cameraStats(p95: 80) }
        #expect(h.policy.fraction == 0)
        let lowers = h.changes.filter { $0.action == .lower }
        #expect(lowers.map(\.fraction) == [0.4, 0.3, 0.2, 0.1, 0])
        #expect(lowers.allSatisfy { $0.signals.isEmpty && $0.reason.contains("camera p95 80 ms") })
    }

    @Test func missedFramesCountAsLatencyOverTheObjective() {
        var h = PolicyHarness()
        // p95 of the completed frames looks fine, but 10 % of the edge frames missed.
        h.feed(count: 5) { cameraStats(p95: 90, completed: 90, missed: 10) }
        #expect(h.policy.fraction == 0.25)
        #expect(h.changes.first?.signals == [.cameraMisses])
        #expect(h.changes.first?.reason.contains("10 missed = 10%") == true)
        // Every edge frame missed: no percentiles at all, still overload.
        var g = PolicyHarness()
        g.feed(count: 5) { cameraStats(p95: nil, completed: 0, missed: 30) }
        #expect(g.policy.fraction == 0.25 && g.changes.first?.signals == [.cameraMisses])
        // A few misses (at most 5 %) are not overload, but they block recovery like drops do.
        var f = PolicyHarness()
        f.feed(count: 17) { cameraStats(p95: 400) }
        f.feed(count: 60) { cameraStats(p95: 50, completed: 99, missed: 1) }
        #expect(f.policy.fraction == 0.5)
        #expect(f.decisions.last?.condition == .steady)
    }

    @Test func bothSignalsAreNamedWhenBothAreOver() {
        var h = PolicyHarness()
        h.feed(count: 5) { cameraStats(p95: 400, q95: 120) }
        #expect(h.changes.first?.signals == [.queueTime, .cameraLatency])
        #expect(h.changes.first?.reason.contains("queue time and camera latency over their objectives") == true)
    }

    @Test func tooFewReportedFramesAreAddedUpOverTime() {
        var settings = ControllerSettings()
        settings.minimumReportedFrames = 20
        // 12 frames in one window are not judged alone...
        var h = PolicyHarness(settings)
        h.feed(count: 2) { cameraStats(p95: 900, completed: 12, missed: 0) }
        #expect(h.decisions.last?.reason.contains("fewer than 20, latency not judged") == true)
        // ...but windows 3 s apart are disjoint, and added up they count enough: overload.
        h.feed(count: 16) { cameraStats(p95: 900, completed: 12, missed: 0) }
        #expect(h.policy.fraction == 0.25)
        #expect(h.changes.first?.signals == [.cameraLatency])
    }

    @Test func statsFromABrokerWithoutReportsDriveOnQueueTimeAlone() {
        var h = PolicyHarness()
        h.feed(q95: 200, count: 5)  // no camera fields at all (an older broker)
        #expect(h.policy.fraction == 0.25 && h.changes.first?.signals == [.queueTime])
        h.feed(q95: 1, count: 200)
        #expect(h.policy.fraction == 0)
    }

    @Test func improvementIsJudgedOnTheWorstSignal() {
        var h = PolicyHarness()
        h.feed(count: 5) { cameraStats(p95: 2000) }
        #expect(h.policy.fraction == 0.25)
        // Camera latency falling fast after the step, still over the objective: the controller
        // waits for it to settle.
        var p: Double = 2000
        for _ in 0..<16 {
            p *= 0.9
            h.feed(count: 1) { cameraStats(p95: p) }
        }
        #expect(h.policy.fraction == 0.25)
        #expect(h.decisions.contains { $0.reason.contains("improving") })
        h.feed(count: 8) { cameraStats(p95: p) }
        #expect(h.policy.fraction == 0.5)
    }

    @Test func latencySettingsAreChecked() {
        var s = ControllerSettings()
        s.latencySloMilliseconds = -1
        s.minimumReportedFrames = 0
        #expect(s.problems.count == 2)
    }

    @Test func countersExportTheSignals() throws {
        var counters = ControllerCounters()
        counters.raises = 2
        counters.raisesBySignal = [.cameraLatency: 2, .queueTime: 1]
        let families = counters.metricFamilies(
            fraction: 0.5, condition: .overloaded, latestStats: cameraStats(p95: 400, missed: 5), settings: ControllerSettings())
        let parsed = try ExpositionParser.parse(PrometheusText.render(families))
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            parsed.first { $0.name == name }?.samples.first { $0.labels == labels }?.value
        }
        #expect(value("bottlefit_controller_local_fraction") == 0.5)
        #expect(value("bottlefit_controller_raises_by_signal_total", ["signal": "camera_latency"]) == 2)
        #expect(value("bottlefit_controller_raises_by_signal_total", ["signal": "camera_misses"]) == 0)
        #expect(value("bottlefit_controller_condition", ["condition": "overloaded"]) == 1)
        #expect(value("bottlefit_controller_signal_p95_seconds", ["signal": "camera_latency"]) == 0.4)
        #expect(value("bottlefit_controller_objective_seconds", ["signal": "camera_latency"]) == 0.25)
    }
}
