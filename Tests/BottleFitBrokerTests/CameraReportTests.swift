import BottleFitTestSupport
import BottleFitBroker
import BottleFitMetrics
import BottleFitProtocol
import Testing

/// Camera latency reports: read from the frontend, kept for the report window, aggregated into STATS.
@Suite struct CameraReportTests {
    static func report(_ camera: String, n: Int, missed: Int = 0, p: (Double, Double, Double)? = nil) -> LatencyReport {
        LatencyReport(
            cameraID: camera, windowMilliseconds: 1000, completed: n, missed: missed,
            percentiles: p.map { LatencyPercentiles(p50: $0.0, p95: $0.1, p99: $0.2) })
    }

    /// A camera's HEARTBEAT carrying `report`, through the frontend classifier as the loop does it.
    @discardableResult
    static func send(_ h: inout SchedulerHarness, _ camera: String, _ report: LatencyReport?) -> [BrokerAction] {
        let body = try! HeartbeatMessage(latencyReport: report).encoded()
        return h.run { s, t in s.handle(FrontendInput.classify([SchedulerHarness.cameraRID(camera), [], body]), now: t) }
    }

    @Test func aReportingHeartbeatIsAHeartbeatAndAReport() {
        var h = SchedulerHarness()
        let report = Self.report("cam-a", n: 10, p: (20, 40, 60))
        let body = try! HeartbeatMessage(latencyReport: report).encoded()
        #expect(FrontendInput.classify([[7], [], body]) == .heartbeat(camera: [7], report: report))
        let actions = Self.send(&h, "cam-a", report)
        #expect(actions == [.reply(camera: SchedulerHarness.cameraRID("cam-a"), message: .heartbeat(HeartbeatMessage()))])
        #expect(h.counters.latencyReports == 1 && h.counters.received == 0)
        // A plain HEARTBEAT is no report.
        Self.send(&h, "cam-a", nil)
        #expect(h.counters.latencyReports == 1)
    }

    @Test func statsAggregateTheReportsOfTheWindow() throws {
        var h = SchedulerHarness()
        // No report yet: the broker still says it aggregates (zeros, no percentiles).
        let empty = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(empty == CameraLatencySummary(cameras: 0, completed: 0, missed: 0, percentiles: nil))

        Self.send(&h, "cam-a", Self.report("cam-a", n: 30, missed: 1, p: (10, 20, 30)))
        Self.send(&h, "cam-b", Self.report("cam-b", n: 10, p: (50, 100, 200)))
        Self.send(&h, "cam-c", Self.report("cam-c", n: 0, missed: 4))
        let first = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(first.cameras == 3 && first.completed == 40 && first.missed == 5)
        // Frame-weighted: p95 = (30 × 20 + 10 × 100) / 40 = 40.
        #expect(first.percentiles == LatencyPercentiles(p50: 20, p95: 40, p99: 72.5))

        // Two reports from one camera (two windows) count as one camera and add their frames.
        h.advance(500)
        Self.send(&h, "cam-a", Self.report("cam-a", n: 10, p: (10, 20, 30)))
        let second = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(second.cameras == 3 && second.completed == 50 && second.missed == 5)

        // The window forgets: 3 s after the first reports only the later one is left.
        h.advance(2_250)
        let later = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(later == CameraLatencySummary(cameras: 1, completed: 10, missed: 0, percentiles: LatencyPercentiles(p50: 10, p95: 20, p99: 30)))
        h.advance(1_000)
        let forgotten = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(forgotten.cameras == 0 && forgotten.percentiles == nil)
    }

    @Test func camerasOnOneConnectionAreToldApart() throws {
        var h = SchedulerHarness()
        // A load generator: several camera ids over one socket.
        for id in ["gen-1", "gen-2", "gen-3"] {
            let body = try HeartbeatMessage(latencyReport: Self.report(id, n: 5, p: (1, 2, 3))).encoded()
            h.run { s, t in s.handle(FrontendInput.classify([[9, 9], [], body]), now: t) }
        }
        let summary = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(summary.cameras == 3 && summary.completed == 15)
    }

    @Test func theRingKeepsTheMostRecentReports() throws {
        var policy = BrokerPolicy.testing
        policy.cameraReportCapacity = 4
        var h = SchedulerHarness(policy: policy)
        for i in 0..<10 { Self.send(&h, "cam-\(i)", Self.report("cam-\(i)", n: i + 1, p: (1, 2, 3))) }
        let summary = try #require(h.advance(250).published.last?.cameraLatency)
        #expect(summary.cameras == 4 && summary.completed == 7 + 8 + 9 + 10)
    }

    @Test func aBrokenReportIsABadRequestAndCountsNothing() {
        var h = SchedulerHarness()
        let broken = HeartbeatMessageBytes.withReport(n: 3, percentiles: false)
        h.run { s, t in s.handle(FrontendInput.classify([SchedulerHarness.cameraRID("cam-x"), [], broken]), now: t) }
        #expect(h.counters.dropped(.badRequest) == 1 && h.counters.latencyReports == 0)
        let errors = h.history.compactMap { action -> ErrorCode? in
            if case .reply(_, .error(let e)) = action { return e.code }
            return nil
        }
        #expect(errors == [.badRequest])
    }

    @Test func aWorkerReportIsIgnored() {
        var h = SchedulerHarness()
        h.ready("w", credit: 1)
        let body = try! HeartbeatMessage(latencyReport: Self.report("w", n: 1, p: (1, 1, 1))).encoded()
        h.run { s, t in s.handle(BackendInput.classify([SchedulerHarness.workerRID("w"), [], body]), now: t) }
        #expect(h.counters.latencyReports == 0 && h.counters.discardedTotal == 0)
    }

    @Test func queueTimesFillTheMetricsHistogram() throws {
        var h = SchedulerHarness()
        h.ready("w", credit: 0)
        h.frame("cam-a", 1)
        h.advance(30)
        h.credit("w", 1)  // dispatched after 30 ms in the queue
        h.frame("cam-a", 2, deadlineIn: 10)
        h.advance(20)  // expired after 20 ms: counted too
        let histogram = h.counters.queueTime
        #expect(histogram.count == 2)
        #expect(abs(histogram.sum - 0.05) < 1e-9)
        let text = PrometheusText.render(h.counters.metricFamilies(latestStats: h.advance(250).published.last))
        let families = try ExpositionParser.parse(text)
        let names = Set(families.map(\.name))
        #expect(names.isSuperset(of: ["bottlefit_broker_requests_received_total", "bottlefit_broker_queue_time_seconds",
                                      "bottlefit_broker_requests_dropped_total", "bottlefit_broker_reporting_cameras"]))
        let expired = families.first { $0.name == "bottlefit_broker_requests_dropped_total" }?.samples.first { $0.labels["reason"] == "expired" }
        #expect(expired?.value == 1)
    }

    /// STATS `cm`: each camera counted once, by the mode of its latest report in the window.
    @Test func statsCountCamerasByTheirLatestMode() throws {
        var h = SchedulerHarness()
        func report(_ camera: String, _ mode: String?) -> LatencyReport {
            var r = Self.report(camera, n: 0, missed: 1)
            r.mode = mode
            return r
        }
        #expect(h.advance(250).published.last?.cameraModes == nil)
        Self.send(&h, "cam-old", report("cam-old", nil))  // a camera that sends no mode
        #expect(h.advance(250).published.last?.cameraModes == nil)
        Self.send(&h, "cam-a", report("cam-a", "split"))
        Self.send(&h, "cam-b", report("cam-b", "offload"))
        Self.send(&h, "cam-c", report("cam-c", "warp"))  // valid, counted in no mode
        #expect(h.advance(250).published.last?.cameraModes == StatsMessage.CameraModes(split: 1, local: 0, offload: 1))
        Self.send(&h, "cam-a", report("cam-a", "local"))  // the latest report wins
        #expect(h.advance(250).published.last?.cameraModes == StatsMessage.CameraModes(split: 0, local: 1, offload: 1))
        h.advance(3_000)  // the window forgets
        #expect(h.advance(250).published.last?.cameraModes == nil)
    }

    /// STATS `wk[].ba`/`bx`: the batch sizes of a worker's RESULTs in the last interval only.
    @Test func statsCarryEachWorkersBatchSizesOfTheInterval() throws {
        var h = SchedulerHarness()
        h.ready("x", credit: 4)
        h.ready("y", credit: 4)
        for s in 0..<4 { h.frame("a", UInt64(s)) }
        let byWorker = Dictionary(grouping: h.history.dispatches, by: { $0.worker })
        for (i, d) in (byWorker["x"] ?? []).enumerated() { h.answer("x", d.frame, batch: i == 0 ? 3 : 1) }
        let stats = try #require(h.advance(250).published.last)
        let x = try #require(stats.workers.first { $0.id == "x" })
        #expect(x.batches == StatsMessage.BatchSizes(mean: 2, max: 3))
        #expect(stats.workers.first { $0.id == "y" }?.batches == nil)  // y answered nothing
        #expect(try StatsMessage.decode(stats.encoded()) == stats)
        // The next interval starts afresh.
        #expect(try #require(h.advance(250).published.last).workers.allSatisfy { $0.batches == nil })
    }
}

/// Hand-made HEARTBEAT bodies the encoder refuses to write.
enum HeartbeatMessageBytes {
    /// A report with `n` completed frames, with or without percentiles.
    static func withReport(n: UInt64, percentiles: Bool) -> [UInt8] {
        var report: [(String, MP)] = [("c", .str("cam-x")), ("wm", .uint(1000)), ("n", .uint(n)), ("mi", .uint(0))]
        if percentiles { report += [("l50", .raw([0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0])), ("l95", .uint(1)), ("l99", .uint(1))] }
        return MP.map([("v", .uint(1)), ("t", .str("heartbeat")), ("lr", .map(report))]).bytes
    }
}

