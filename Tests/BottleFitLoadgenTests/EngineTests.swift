import Foundation
import BottleFitDevice
import Testing
@testable import BottleFitLoadgen

@Suite struct EngineTests {
    @Test func everyScheduledFrameIsOfferedAndAnsweredByAnInstantSink() throws {
        let plan = LoadgenPlan(groups: [group(cameras: 10, rate: 50)], durationSeconds: 4, connections: 3)
        let (report, sink) = try runVirtual(plan)
        let t = report.totals
        #expect(t.offered == 2000)  // 10 cameras x 50/s x 4 s, constant arrivals
        #expect(t.completedEdge == 2000 && t.droppedTotal == 0 && t.unaccounted == 0)
        #expect(sink.framesReceived == 2000)
        // On a virtual clock the loop is never late, and an instant edge answers within the head's 2 ms.
        #expect(report.schedulingErrorMs.max == 0)
        #expect(report.latencyMs["edge"]!.max < 2.1)
        #expect(report.timeseries.count >= 4)
    }

    /// Open loop: an edge that never answers does not slow the schedule down; every frame is still
    /// offered on time, and the ones the edge swallowed are settled by the camera (fallback or drop).
    @Test func aStalledEdgeDoesNotSlowTheSchedule() throws {
        let plan = LoadgenPlan(groups: [group(cameras: 10, rate: 50, maxInFlight: 2)], durationSeconds: 4, connections: 2)
        let (healthy, _) = try runVirtual(plan)
        let (stalled, sink) = try runVirtual(plan, stalled: true)
        #expect(stalled.totals.offered == healthy.totals.offered)
        #expect(stalled.schedulingErrorMs.max == 0)
        #expect(stalled.totals.completedEdge == 0)
        #expect(stalled.totals.unaccounted == 0)
        #expect(sink.framesReceived > 0)
        // Frames the edge swallowed ended locally (fallback) or dropped, never vanished.
        #expect(stalled.totals.completedFallback + stalled.totals.completedLocal + stalled.totals.droppedTotal == stalled.totals.offered)
        // Latency counts from the scheduled time: waiting out the reply timeout shows up in it.
        #expect(stalled.latencyMs["fallback"]!.p50 > 20)
    }

    @Test func localCamerasAreBusyAndFramesBehindThemWait() throws {
        // 20 ms per frame locally at 100 frames/s: the camera is 2x overloaded; the queue, and so
        // latency from the scheduled time, grows through the run.
        let plan = LoadgenPlan(groups: [group(cameras: 1, rate: 100, modes: [(.local, 1)])], durationSeconds: 2, drainMilliseconds: 60_000)
        let (report, _) = try runVirtual(plan)
        #expect(report.totals.offered == 200)
        #expect(report.totals.completedLocal == 200 && report.totals.unaccounted == 0)
        #expect(report.latencyMs["local"]!.max > 1500)  // the last frame waited for ~100 frames x 20 ms - 2 s
        #expect(report.latencyMs["local"]!.p50 > 500)
    }

    @Test func theInvariantHoldsForMixedModesLossAndACutDrain() throws {
        let lossy = UplinkProfile(name: "lossy", bitsPerSecond: 5e6, delayMilliseconds: 20, jitterMilliseconds: 10, loss: 0.2)
        let plan = LoadgenPlan(
            groups: [
                group("a", cameras: 6, rate: 30, modes: [(.split, 0.5), (.offload, 0.25), (.local, 0.25)], uplink: lossy, slo: 150),
                group("b", cameras: 3, rate: 10, uplink: lossy, maxInFlight: 1, shape: .burst(onRate: 40, onSeconds: 0.5, offRate: 0, offSeconds: 0.5)),
            ],
            durationSeconds: 3, drainMilliseconds: 10, connections: 4)
        let (report, _) = try runVirtual(plan)
        let t = report.totals
        #expect(t.offered > 0)
        #expect(t.unaccounted == 0)
        #expect(t.offered == t.completedEdge + t.completedLocal + t.completedFallback + t.droppedTotal)
        #expect(t.uplinkLost > 0)
        #expect(report.groups[0].modes == ["split": 3, "offload": 2, "local": 1] || report.groups[0].modes.values.reduce(0, +) == 6)
        #expect(report.groups[0].jpegBytes > 0)
    }

    @Test func payloadSizeShowsInLatencyThroughTheUplink() throws {
        let link = UplinkProfile(name: "20mbit", bitsPerSecond: 20e6, bucketBytes: 1500, delayMilliseconds: 5)
        let split = LoadgenPlan(groups: [group(cameras: 1, rate: 5, uplink: link)], durationSeconds: 2)
        let offload = LoadgenPlan(groups: [group(cameras: 1, rate: 5, modes: [(.offload, 1)], uplink: link)], durationSeconds: 2)
        let (a, _) = try runVirtual(split)
        let (b, _) = try runVirtual(offload)
        // split: 2 ms head + (10,092 - 1,500) B at 2.5 B/us + 5 ms up + 5 ms down ~ 15.4 ms.
        #expect(abs(a.latencyMs["edge"]!.p50 - 15.4) < 0.3)
        // offload: 1 ms encode + its JPEG's serialisation + 10 ms: more than split whenever the JPEG is larger.
        let jpeg = Double(b.groups[0].jpegBytes)
        if jpeg > 10_092 { #expect(b.latencyMs["edge"]!.p50 > a.latencyMs["edge"]!.p50 - 1) }
        #expect(b.latencyMs["edge"]!.p50 >= 11)
    }
}

@Suite struct PayloadTests {
    @Test func offloadPayloadsComeFromAJPEGDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lg-jpegs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let made = try LoadgenEngine.jpegs(group(modes: [(.offload, 1)]), seed: 3)
        try Data(made[0]).write(to: dir.appendingPathComponent("a.jpg"))
        try Data("not a jpeg".utf8).write(to: dir.appendingPathComponent("b.jpg"))
        var g = group(cameras: 1, rate: 10, modes: [(.offload, 1)])
        g.jpegDirectory = dir.path
        #expect(try LoadgenEngine.jpegs(g, seed: 0) == [made[0]])  // the broken file is skipped
        let (report, _) = try runVirtual(LoadgenPlan(groups: [g], durationSeconds: 1))
        #expect(report.groups[0].jpegBytes == made[0].count && report.totals.completedEdge == 10)
        g.jpegDirectory = dir.appendingPathComponent("missing").path
        #expect(throws: LoadgenError.self) { try LoadgenEngine.jpegs(g, seed: 0) }
    }
}

@Suite struct LabelledPayloadTests {
    static let datasetPresent = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")

    @Test(.enabled(if: datasetPresent, "needs Debian's dataset-fashion-mnist (scripts/setup installs it)"))
    func fashionMNISTFramesCarryTheirLabelsAndTheEdgeIsScored() throws {
        var g = group(cameras: 2, rate: 10, modes: [(.offload, 1)])
        g.fashionMNIST = true
        g.images = 20
        let (files, labels) = try LoadgenEngine.fashionMNIST(g)
        #expect(files.count == 20 && labels.count == 20)
        let (report, _) = try runVirtual(LoadgenPlan(groups: [g], durationSeconds: 2))
        let r = report.groups[0]
        #expect(r.labelledEdge == report.totals.completedEdge && r.labelledEdge == 40)
        // The sink answers class 1 to everything: accuracy is the share of label 1 among the images sent.
        let ones = Double(labels.filter { $0 == 1 }.count) / 20
        #expect(abs((r.edgeAccuracy ?? -1) - ones) < 1e-9)
    }
}
