import BottleFitController
import BottleFitProtocol
import Testing

/// STATS with a utilisation and the cameras' local share: the inputs that tell an idle edge
/// with cameras computing locally from a full one.
func loadStats(q95: Double = 5, utilisation: Double?, edge: Int = 100, local: Int = 0, localP95: Double? = nil, drops: Double = 0) -> StatsMessage {
    var s = stats(q95: q95, drops: drops)
    s.utilisation = utilisation
    s.cameraLatency = CameraLatencySummary(
        cameras: 4, completed: edge, missed: 0,
        percentiles: edge == 0 ? nil : LatencyPercentiles(p50: 40, p95: 60, p99: 80), local: local, localP95: localP95)
    return s
}

@Suite("ControllerPolicy with utilisation and local share")
struct UtilisationPolicyTests {
    /// The failure: every frame local, an idle edge, and the controller calling it
    /// healthy. Now it is a named condition, explained with the figures.
    @Test func allLocalOnAnIdleEdgeIsUnderusedNotHealthy() {
        var h = PolicyHarness()
        h.feed(count: 4) { loadStats(utilisation: 0.02, edge: 1, local: 120, localP95: 4200) }
        let last = try! #require(h.decisions.last)
        #expect(last.condition == .underused)
        #expect(last.reason.contains("edge has room: 2% busy"))
        #expect(last.reason.contains("99% of frames run locally"))
        #expect(last.reason.contains("local p95 4200 ms"))
    }

    @Test func anUnderusedEdgeGetsFramesBackFromADirective() {
        var h = PolicyHarness()
        h.feed(count: 5) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        #expect(h.policy.fraction == 0.25)
        // Latency low, edge half idle, frames local: released in steps, dwell apart.
        h.feed(count: 60) { loadStats(utilisation: 0.5, edge: 75, local: 25) }
        #expect(h.policy.fraction == 0)
        #expect(h.changes.dropFirst().allSatisfy { $0.action == .lower && $0.condition == .underused })
    }

    @Test func aFullFastEdgeHoldsTheFraction() {
        var h = PolicyHarness()
        h.feed(count: 5) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        #expect(h.policy.fraction == 0.25)
        // Latency low and the workers busy above the target: the aim. No release that would
        // only push the edge back over its objective.
        h.feed(count: 80) { loadStats(utilisation: 0.93, edge: 75, local: 25) }
        #expect(h.policy.fraction == 0.25)
        #expect(h.decisions.last?.condition == .steady)
        #expect(h.decisions.last?.reason.contains("edge busy and within its objectives") == true)
    }

    @Test func fewDropsDoNotBlockRecovery() {
        var h = PolicyHarness()
        h.feed(count: 5) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        // 1 drop/s against 100 arrivals/s: probes meeting the odd BUSY.
        h.feed(count: 60) { loadStats(utilisation: 0.5, edge: 75, local: 25, drops: 1) }
        #expect(h.policy.fraction == 0)
        var g = PolicyHarness()
        g.feed(count: 5) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        g.feed(count: 60) { loadStats(utilisation: 0.5, edge: 75, local: 25, drops: 10) }
        #expect(g.policy.fraction == 0.25)
    }
}

@Suite("ControllerPolicy with local latency")
struct LocalLatencyPolicyTests {
    /// Overloaded, but the frames already local are slower than the objective: a raise would only
    /// move frames to a slower place, so the controller holds and says why.
    @Test func slowLocalComputeHoldsTheRaise() {
        var h = PolicyHarness()
        h.feed(count: 12) { loadStats(q95: 500, utilisation: 1, edge: 80, local: 20, localP95: 900) }
        #expect(h.policy.fraction == 0)
        #expect(h.decisions.last?.reason.contains("frames computed locally already take p95 900 ms") == true)
        // Slow locally, but the edge is slower still (cameras behind their own schedule): no reason to hold.
        var k = PolicyHarness()
        k.feed(count: 12) {
            var s = loadStats(q95: 500, utilisation: 1, edge: 80, local: 20, localP95: 900)
            s.cameraLatency?.percentiles = LatencyPercentiles(p50: 500, p95: 1200, p99: 1500)
            return s
        }
        #expect(k.policy.fraction > 0)
        // Fast local compute: the raise goes ahead.
        var g = PolicyHarness()
        g.feed(count: 12) { loadStats(q95: 500, utilisation: 1, edge: 80, local: 20, localP95: 30) }
        #expect(g.policy.fraction > 0)
    }
}

@Suite("ControllerPolicy: latency without load")
struct LatencyWithoutLoadTests {
    /// With utilisation known, misses are the cameras' own congestion signal: no raise on them,
    /// but they keep the edge from counting as healthy.
    @Test func missesAreLeftToTheCamerasWhenUtilisationIsKnown() {
        var h = PolicyHarness()
        h.feed(count: 12) {
            var s = loadStats(q95: 5, utilisation: 0.95, edge: 50, local: 10)
            s.cameraLatency?.missed = 50
            return s
        }
        #expect(h.policy.fraction == 0)
        #expect(h.decisions.last?.condition == .steady)
        #expect(h.decisions.last?.reason.contains("cameras missed 50 edge frames") == true)
    }

    /// Late edge frames with idle workers and a short queue: the frames' budgets are too short for
    /// the edge, not the edge too busy; sending frames local would not make it faster, so no raise.
    @Test func latencyOnAnIdleEdgeIsNotLoad() {
        var h = PolicyHarness()
        h.feed(count: 12) {
            var s = loadStats(q95: 5, utilisation: 0.3, edge: 50, local: 10)
            s.cameraLatency?.percentiles = LatencyPercentiles(p50: 300, p95: 900, p99: 1000)
            return s
        }
        #expect(h.policy.fraction == 0)
        #expect(h.decisions.last?.reason.contains("only 30% busy with a short queue: that is not load") == true)
    }

    /// An idle edge gets half the fraction back at once, not a tenth at a time.
    @Test func anIdleEdgeGetsFramesBackInProportion() {
        var settings = ControllerSettings()
        settings.raiseStep = 1
        var h = PolicyHarness(settings)
        h.feed(count: 5) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        #expect(h.policy.fraction == 1)
        h.feed(count: 12) { loadStats(utilisation: 0, edge: 10, local: 90) }
        #expect(h.policy.fraction == 0.5)
    }
}

/// The edge floor (DIRECTIVE `ef`): an edge with room while the cameras' own congestion control
/// keeps frames local (issue 10's step back to 0.5x: 36 % busy, 40 % of frames local).
@Suite("ControllerPolicy edge floor")
struct EdgeFloorTests {
    /// Room and local work with no fraction sent local: the floor rises a step per dwell, even
    /// with the broker expiring frames (the cameras compute those in time), up to every frame.
    @Test func roomWithFramesLocalRaisesTheFloorToTheWholeShare() {
        var h = PolicyHarness()
        h.feed(count: 4) { loadStats(utilisation: 0.36, edge: 60, local: 40, drops: 1.5) }
        #expect(h.policy.edgeFloor == 0, "one window is not a trend")
        h.feed(count: 80) { loadStats(utilisation: 0.36, edge: 60, local: 40, drops: 1.5) }
        #expect(h.policy.edgeFloor == 1 && h.policy.fraction == 0)
        let steps = h.changes.map(\.edgeFloor)
        #expect(steps == [1], "\(steps)")  // 60 % sent at 36 % busy: 1.4x what fills the edge to 85 %, so all
        #expect(h.changes.allSatisfy { $0.action == .lower && $0.condition == .underused && $0.reason.contains("every camera sends at least") })
    }

    /// Overload lifts the floor at once; a busy edge lowers it a step at a time; an edge at
    /// the target keeps it (no flapping around the target).
    @Test func overloadLiftsTheFloorAndABusyEdgeLowersIt() {
        var h = PolicyHarness()
        h.feed(count: 60) { loadStats(utilisation: 0.36, edge: 60, local: 40) }
        #expect(h.policy.edgeFloor == 1)
        h.feed(count: 40) { loadStats(utilisation: 0.88, edge: 95, local: 5) }
        #expect(h.policy.edgeFloor == 1, "within the hysteresis above the target: kept")
        h.feed(count: 4) { loadStats(utilisation: 0.95, edge: 95, local: 5) }
        #expect(h.policy.edgeFloor < 1 && h.policy.edgeFloor > 0)
        let before = h.changes.count
        h.feed(count: 1) { loadStats(q95: 500, utilisation: 1, edge: 100) }
        #expect(h.policy.edgeFloor == 0 && h.policy.fraction == 0)
        #expect(h.changes.count == before + 1 && h.changes.last?.action == .raise)
        #expect(h.changes.last?.reason.contains("the edge floor is lifted") == true)
    }

    /// The floor asks only for what would fill the edge to the target, and none when that is
    /// about what the cameras send already (an edge at 80 % under a 2x load, half the frames local).
    @Test func theFloorFillsTheEdgeToItsTargetAndNoFurther() {
        var h = PolicyHarness()
        h.feed(count: 80) { loadStats(utilisation: 0.6, edge: 70, local: 30) }
        #expect(h.policy.edgeFloor == 0.95, "0.7 x 0.85 / 0.6 = 0.99, on the 0.05 grid below")
        var g = PolicyHarness()
        g.feed(count: 80) { loadStats(utilisation: 0.8, edge: 43, local: 57) }
        #expect(g.policy.edgeFloor == 0 && g.changes.isEmpty, "0.43 x 0.85 / 0.8 = 0.46: no room a floor would fill")
    }

    /// A floor step of 0 turns the floor off: the old behaviour, holding.
    @Test func aFloorStepOfZeroNeverSetsAFloor() {
        var settings = ControllerSettings()
        settings.floorStep = 0
        var h = PolicyHarness(settings)
        h.feed(count: 80) { loadStats(utilisation: 0.36, edge: 60, local: 40) }
        #expect(h.policy.edgeFloor == 0 && h.changes.isEmpty)
    }
}
