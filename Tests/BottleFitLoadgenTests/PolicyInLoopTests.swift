import BottleFitDevice
import BottleFitProtocol
import Testing
@testable import BottleFitLoadgen

/// The real camera policy inside the loop: directives and a full edge move frames between paths,
/// and every frame is still accounted for.
@Suite struct PolicyInLoopTests {
    @Test func aLocalDirectiveSendsTheTargetedCamerasLocal() throws {
        let plan = LoadgenPlan(groups: [group(cameras: 8, rate: 20)], durationSeconds: 3, connections: 2, sampleMilliseconds: 500)
        let clock = VirtualClock()
        let sink = InstantSinkTransport(connections: plan.connections, virtualClock: clock)
        let engine = try LoadgenEngine(plan: plan, transport: sink, clock: clock)
        // Every camera local for the whole run (valid well past its end).
        let directive = DirectiveMessage(
            sequence: 1, target: .fraction(1), mode: .local, reason: "test", validUntil: clock.now() / 1000 + 60_000)
        sink.inject(.directive(try directive.encoded()))
        let report = engine.run()
        #expect(report.directives.count == 1 && report.directives[0].obeyed == 8)
        #expect(report.totals.completedLocal == report.totals.offered)
        #expect(report.totals.completedEdge == 0 && report.totals.unaccounted == 0)
        #expect(report.timeseries.first!.obeyingLocal == 1)
    }

    @Test func aFullEdgeLowersTheCamerasShareAndFramesFallBack() throws {
        let plan = LoadgenPlan(groups: [group(cameras: 4, rate: 50)], durationSeconds: 4, connections: 1, sampleMilliseconds: 500)
        let clock = VirtualClock()
        let sink = InstantSinkTransport(connections: 1, virtualClock: clock)
        sink.busyEvery = 3
        let engine = try LoadgenEngine(plan: plan, transport: sink, clock: clock)
        let report = engine.run()
        let t = report.totals
        #expect(t.edgeErrors["BUSY"] ?? 0 > 0)
        // BUSY frames were computed locally (the camera has the whole model), not dropped.
        #expect(t.completedFallback == t.edgeErrors["BUSY"])
        #expect(t.completedLocal > 0)  // the share fell: some frames never went to the edge
        #expect(t.droppedTotal == 0 && t.unaccounted == 0)
        #expect(report.timeseries.contains { ($0.edgeShare ?? 1) < 1 })
        #expect(report.timeseries.contains { $0.edgeStates["congested", default: 0] > 0 })
    }
}
