import BottleFitController
import BottleFitProtocol
import Testing

/// STATS with the given queue time and drop rate; the rest is plausible filler.
func stats(q95: Double, drops: Double = 0, depth: Int = 0, ts: UInt64 = 1_700_000_000_000) -> StatsMessage {
    StatsMessage(
        timestamp: ts, queueDepth: depth, queueTimeP50: q95 / 2, queueTimeP95: q95, queueTimeP99: q95 * 1.2,
        inFlight: 0, arrivalRate: 100, completionRate: 100, dropRate: drops, workers: [])
}

/// Drives a policy on a fake clock, one STATS every `interval`.
struct PolicyHarness {
    var policy: ControllerPolicy
    var now: Duration = .zero
    let interval: Duration = .milliseconds(250)
    var decisions: [ControllerDecision] = []

    init(_ settings: ControllerSettings = ControllerSettings()) {
        policy = ControllerPolicy(settings: settings, now: .zero)
    }

    /// Feeds `count` STATS of queue time `q95`, one per interval; returns the fractions after each.
    @discardableResult
    mutating func feed(q95: Double, drops: Double = 0, count: Int = 1) -> [Double] {
        var fractions: [Double] = []
        for _ in 0..<count {
            now += interval
            if let d = policy.tick(now: now) { decisions.append(d) }
            let d = policy.observe(stats(q95: q95, drops: drops), now: now)
            decisions.append(d)
            fractions.append(policy.fraction)
        }
        return fractions
    }

    /// Lets time pass without STATS, checking for silence every interval.
    @discardableResult
    mutating func silence(for duration: Duration) -> [ControllerDecision] {
        var found: [ControllerDecision] = []
        let end = now + duration
        while now < end {
            now += interval
            if let d = policy.tick(now: now) { found.append(d) }
        }
        decisions += found
        return found
    }

    var changes: [ControllerDecision] { decisions.filter(\.changed) }
}

@Suite("ControllerPolicy")
struct ControllerPolicyTests {
    @Test func sustainedOverloadRaisesInSteps() {
        var h = PolicyHarness()
        // 1 s overload window (4 STATS at 250 ms) before the first raise.
        let first = h.feed(q95: 200, count: 5)
        #expect(first == [0, 0, 0, 0, 0.25])
        // The dwell (3 s) keeps the next raise back even though overload persists.
        let next = h.feed(q95: 200, count: 12)
        #expect(next.last == 0.5)
        #expect(next.dropLast().allSatisfy { $0 == 0.25 })
        // Keeps stepping, 0.25 at a time, and stops at the whole fleet.
        h.feed(q95: 200, count: 60)
        #expect(h.policy.fraction == 1.0)
        #expect(h.changes.map(\.fraction) == [0.25, 0.5, 0.75, 1.0])
        #expect(h.changes.allSatisfy { $0.action == .raise && $0.reason.contains("overloaded") })
        #expect(h.decisions.last?.reason.contains("whole allowed fraction") == true)
    }

    @Test func aSingleSpikeDoesNotRaise() {
        var h = PolicyHarness()
        h.feed(q95: 10, count: 4)
        h.feed(q95: 5000, count: 1)
        h.feed(q95: 10, count: 4)
        // Two spikes closer than the window, separated by a normal STATS, do not add up.
        h.feed(q95: 5000, count: 3)
        h.feed(q95: 30, count: 1)
        h.feed(q95: 5000, count: 3)
        #expect(h.policy.fraction == 0)
        #expect(h.changes.isEmpty)
    }

    @Test func hysteresisKeepsASignalHoveringAtTheSLOFromOscillating() {
        var h = PolicyHarness()
        h.feed(q95: 200, count: 5)
        #expect(h.policy.fraction == 0.25)
        // Hover around the SLO (50 ms): sometimes just above, mostly just below, never below 25 ms.
        for i in 0..<200 {
            h.feed(q95: i % 3 == 0 ? 52 : 47)
        }
        #expect(h.policy.fraction == 0.25)
        #expect(h.changes.count == 1)
        #expect(h.decisions.last?.condition == .steady || h.decisions.last?.condition == .overloaded)
    }

    @Test func recoveryIsStagedAndSmallerThanTheRaise() {
        var h = PolicyHarness()
        h.feed(q95: 200, count: 5)
        h.feed(q95: 200, count: 12)
        #expect(h.policy.fraction == 0.5)
        let raisesDone = h.changes.count
        // Healthy: 2 s healthy window, 3 s dwell since the last change; then -0.1 per step.
        let fractions = h.feed(q95: 5, count: 120)
        let steps = Array(h.changes.dropFirst(raisesDone))
        #expect(steps.map(\.fraction) == [0.4, 0.3, 0.2, 0.1, 0])
        #expect(steps.allSatisfy { $0.action == .lower && $0.reason.contains("healthy") })
        #expect(fractions.last == 0)
        // No two changes closer than the dwell: at least 12 STATS between steps.
        var previous: Double = 0.5
        var run = 0
        var runs: [Int] = []
        for f in fractions {
            run += 1
            if f != previous { runs.append(run); run = 0; previous = f }
        }
        #expect(runs.allSatisfy { $0 >= 12 })
    }

    @Test func recoveryStopsWhenTheEdgeStopsBeingHealthy() {
        var h = PolicyHarness()
        h.feed(q95: 200, count: 5)
        h.feed(q95: 200, count: 12)
        h.feed(q95: 5, count: 13)
        #expect(h.policy.fraction == 0.4)
        // Queue time between the thresholds: hold, and the healthy streak is forgotten.
        h.feed(q95: 40, count: 40)
        #expect(h.policy.fraction == 0.4)
        // Low queue time with drops is not healthy either.
        h.feed(q95: 5, drops: 3, count: 40)
        #expect(h.policy.fraction == 0.4)
        #expect(h.decisions.last?.reason.contains("dropped") == true)
    }

    @Test func silenceHoldsTheFraction() {
        var h = PolicyHarness()
        h.feed(q95: 200, count: 5)
        #expect(h.policy.fraction == 0.25)
        // Silence during overload: no raise, however long.
        let silent = h.silence(for: .seconds(30))
        #expect(silent.count == 1)
        #expect(silent.first?.condition == .silent && silent.first?.action == .hold)
        #expect(silent.first?.reason.contains("silent") == true)
        #expect(h.policy.fraction == 0.25 && h.policy.condition == .silent)
        // STATS again: the overload streak starts afresh instead of counting the silence.
        h.feed(q95: 200, count: 1)
        #expect(h.decisions.last?.reason.contains("heard again") == true)
        #expect(h.policy.fraction == 0.25)
        h.feed(q95: 200, count: 4)
        #expect(h.policy.fraction == 0.5)
        // Silence after health: no recovery either.
        h.silence(for: .seconds(30))
        #expect(h.policy.fraction == 0.5)
    }

    @Test func aBrokerNeverHeardIsSilent() {
        var policy = ControllerPolicy(now: .seconds(10))
        #expect(policy.tick(now: .seconds(10) + .milliseconds(500)) == nil)
        let d = policy.tick(now: .seconds(11))
        #expect(d?.condition == .silent && d?.reason.contains("never heard") == true)
        #expect(policy.tick(now: .seconds(12)) == nil)  // logged once
        #expect(policy.fraction == 0)
    }

    @Test func anIdleEdgeGetsItsCamerasBack() {
        var h = PolicyHarness()
        h.feed(q95: 500, count: 80)
        #expect(h.policy.fraction == 1.0)
        // Every camera local: nothing arrives, queue time drops to 0, no drops. Recover fully.
        h.feed(q95: 0, count: 400)
        #expect(h.policy.fraction == 0)
        #expect(h.changes.filter { $0.action == .lower }.count == 10)
    }

    @Test func aFallingQueueTimeHoldsTheNextRaise() {
        var h = PolicyHarness()
        h.feed(q95: 400, count: 5)
        #expect(h.policy.fraction == 0.25)
        // The broker's percentile window still drains old waits: q95 falls, still above the SLO.
        var q: Double = 400
        for _ in 0..<16 {
            q *= 0.9
            h.feed(q95: q)
        }
        #expect(h.policy.fraction == 0.25)
        #expect(h.decisions.contains { $0.reason.contains("improving") })
        // Once it plateaus above the SLO, the next step comes.
        h.feed(q95: q, count: 8)
        #expect(h.policy.fraction == 0.5)
    }

    @Test func settingsProblemsAreReported() {
        var s = ControllerSettings()
        #expect(s.problems.isEmpty)
        s.lowerFactor = 1.0
        s.lowerStep = 0.5
        s.sloMilliseconds = 0
        let problems = s.problems
        #expect(problems.count == 3)
        #expect(problems.contains { $0.contains("hysteresis") })
        #expect(problems.contains { $0.contains("lower step") })
    }
}
