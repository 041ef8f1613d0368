import BottleFitDevice
import BottleFitMetrics
import BottleFitProtocol
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport

@Suite struct EdgeLatencyWindowTests {
    @Test func aWindowReportsItsFramesAndStartsAfresh() throws {
        var w = EdgeLatencyWindow(cameraID: "cam", now: 1_000)
        #expect(w.report(at: 1_500) == nil)  // nothing seen: no report
        for ms in [10.0, 20, 30, 40, 1000] { w.recordCompleted(latencyMilliseconds: ms) }
        w.recordMissed()
        #expect(w.frames == 6)
        let first = w.report(at: 2_500)
        let r = try #require(first)
        #expect(r.cameraID == "cam" && r.windowMilliseconds == 1_000 && r.completed == 5 && r.missed == 1)
        let p = try #require(r.percentiles)
        // Log-bucketed: within 4.4 % of the nearest-rank values (30, 1000, 1000).
        #expect(abs(p.p50 - 30) / 30 < 0.045 && p.p95 == 1000 && p.p99 == 1000)
        #expect(try HeartbeatMessage.decode(HeartbeatMessage(latencyReport: r).encoded()).latencyReport == r)
        // The next window is empty; misses alone make a report without percentiles.
        w.recordMissed()
        let second = w.report(at: 3_000)
        let misses = try #require(second)
        #expect(misses.completed == 0 && misses.missed == 1 && misses.percentiles == nil && misses.windowMilliseconds == 500)
        #expect(w.report(at: 3_001) == nil)
    }
}

/// A running camera's reports, as the broker sees them, and its `/metrics` families.
@Suite(.serialized, .blocking) struct LatencyReportingTests {
    let models = TestModels.shared
    static let logger = Logger(label: "bottlefit.device.test", factory: { _ in SwiftLogNoOpLogHandler() })

    func configuration(broker: String, reportEvery: UInt64 = 100) -> CameraConfiguration {
        CameraConfiguration(
            cameraID: "cam-report", mode: .split, brokerEndpoint: broker, modelName: "tiny-bottlefit",
            headModel: models.head, fullModel: models.full, framesPerSecond: 40, sloMilliseconds: 2000, maxInFlight: 4,
            heartbeatIntervalMilliseconds: 1000, liveness: 3, pollTimeoutMilliseconds: 10, latencyReportIntervalMilliseconds: reportEvery)
    }

    @Test func aBusyCameraReportsItsEdgeLatencyEveryInterval() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .delayed(milliseconds: 30))
        defer { edge.stop() }
        let camera = Camera(configuration: configuration(broker: edge.endpoint), source: LabelledFrames(count: 24), context: context, logger: Self.logger)
        try camera.start()
        let a = try #require(camera.wait()).accounting
        let reports = edge.reports(atLeast: a.latencyReportsSent)
        // 24 frames at 40 fps: 600 ms, so several reports although the camera never idled.
        #expect(reports.count >= 3, "\(reports)")
        #expect(a.latencyReportsSent == reports.count)
        let reported = reports.reduce(0) { $0 + $1.completed }
        #expect(reported <= a.completedEdge && reported >= a.completedEdge - 8, "\(reported) of \(a.completedEdge)")
        // Each frame sent is at most one of completed or missed (a loaded machine may miss some).
        #expect(reported + reports.reduce(0) { $0 + $1.missed } <= a.sent)
        #expect(reports.allSatisfy { $0.cameraID == "cam-report" && $0.windowMilliseconds >= 90 })
        // The fake answers after 30 ms: every latency at least that.
        #expect(reports.compactMap(\.percentiles).allSatisfy { $0.p50 >= 29 && $0.p50 <= $0.p95 && $0.p95 <= $0.p99 })
    }

    @Test func expiredAnswersAreReportedAsMisses() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .reject(.expired, retryAfter: nil, count: 3))
        defer { edge.stop() }
        let camera = Camera(configuration: configuration(broker: edge.endpoint), source: LabelledFrames(count: 30), context: context, logger: Self.logger)
        try camera.start()
        let a = try #require(camera.wait()).accounting
        let reports = edge.reports(atLeast: a.latencyReportsSent)
        let missed = reports.reduce(0) { $0 + $1.missed }
        // The EXPIRED answers are misses (timeouts on a loaded machine would add to them).
        #expect(missed >= 1, "\(reports)")
        #expect(missed + reports.reduce(0) { $0 + $1.completed } <= a.sent)
        #expect(a.completedEdge > 0)
    }

    @Test func reportsCanBeTurnedOff() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        let camera = Camera(configuration: configuration(broker: edge.endpoint, reportEvery: 0), source: LabelledFrames(count: 12), context: context, logger: Self.logger)
        try camera.start()
        let a = try #require(camera.wait()).accounting
        #expect(a.completedEdge == 12 && edge.received.reports.isEmpty && a.latencyReportsSent == 0)
        var bad = configuration(broker: edge.endpoint, reportEvery: 50)
        #expect(throws: CameraError.self) { try bad.validate() }
        bad.latencyReportIntervalMilliseconds = 100
        #expect(throws: Never.self) { try bad.validate() }
    }

    @Test func statusAndMetricsFollowTheCamera() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        let camera = Camera(configuration: configuration(broker: edge.endpoint), source: LabelledFrames(count: 16), context: context, logger: Self.logger)
        try camera.start()
        let summary = try #require(camera.wait())
        let status = camera.status
        #expect(status.accounting == summary.accounting)
        #expect(CameraStatus.edgeStates.contains(status.edgeState) && status.framesAtEdge == 0)
        let parsed = try ExpositionParser.parse(PrometheusText.render(camera.metricFamilies()))
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            parsed.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
        }
        let id = ["camera": "cam-report"]
        #expect(value("bottlefit_camera_frames_offered_total", id) == 16)
        #expect(value("bottlefit_camera_frames_completed_total", id.merging(["path": "edge"]) { a, _ in a }) == Double(summary.accounting.completedEdge))
        #expect(value("bottlefit_camera_frames_dropped_total", id.merging(["reason": "busy"]) { a, _ in a }) == 0)
        #expect(value("bottlefit_camera_latency_seconds_count", id.merging(["path": "edge"]) { a, _ in a }) == Double(summary.accounting.completedEdge))
        // Exactly the camera's state is 1.
        for state in CameraStatus.edgeStates {
            #expect(value("bottlefit_camera_edge_state", id.merging(["state": state]) { a, _ in a }) == (state == status.edgeState ? 1 : 0))
        }
        #expect(value("bottlefit_camera_frames_in_flight", id) == 0)
    }
}

extension FakeEdge {
    /// The reports received once there are `count` of them, or after 5 s: the fake's thread may
    /// still be reading the last messages a camera sent before it closed.
    func reports(atLeast count: Int) -> [LatencyReport] {
        let until = Date().addingTimeInterval(5)
        while received.reports.count < count, Date() < until { Thread.sleep(forTimeInterval: 0.01) }
        return received.reports
    }
}
