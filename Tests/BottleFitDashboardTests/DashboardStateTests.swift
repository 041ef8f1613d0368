import BottleFitBroker
import BottleFitController
import BottleFitCore
import BottleFitDashboard
import BottleFitMetricsServer
import BottleFitProtocol
import BottleFitTestSupport
import Foundation
import Logging
import Testing
import ZeroMQ

let quietLogger = Logger(label: "bottlefit.dashboard.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// `/api/state` from a real controller reading a real broker's STATS: a worker answering in batches
/// of 3 and two cameras reporting their modes. (The route serving it over HTTP is checked in
/// `MetricsServerTests` and by `scripts/check-dashboard`; a second in-process server here would
/// share Swift's cooperative pool with the blocking clients of those tests.)
@Suite(.serialized, .blocking) struct DashboardStateTests {
    /// A broker (STATS every 50 ms) and a controller on inproc.
    func startFleet(_ context: ZMQContext) throws -> (Broker, Controller) {
        let name = "bf-dash-\(UUID().uuidString.prefix(8))"
        var policy = BrokerPolicy()
        policy.statsInterval = .milliseconds(50)
        var brokerConfiguration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back",
            statsEndpoint: "inproc://\(name)-stats", policy: policy)
        brokerConfiguration.linger = 0
        let broker = Broker(configuration: brokerConfiguration, context: context, logger: quietLogger)
        let endpoints = try broker.start()
        var configuration = ControllerConfiguration(statsEndpoint: endpoints.stats, directiveEndpoint: "inproc://\(name)-directives")
        configuration.linger = 0
        let controller = Controller(configuration: configuration, context: context, logger: quietLogger)
        try controller.start()
        return (broker, controller)
    }

    /// What `GET /api/state` answers: the dashboard route's body, parsed.
    func state(_ controller: Controller) throws -> [String: Any] {
        let route = try #require(ControllerDashboard.routes(controller).first { $0.path == "/api/state" })
        #expect(route.contentType == "application/json")
        return try #require(try JSONSerialization.jsonObject(with: Data(route.body().utf8)) as? [String: Any])
    }

    @Test func beforeAnySTATSTheStateSaysSo() throws {
        let context = try ZMQContext()
        // A controller whose broker does not exist: no STATS ever arrive.
        var configuration = ControllerConfiguration(statsEndpoint: "inproc://bf-dash-nobroker", directiveEndpoint: "inproc://bf-dash-nobroker-d")
        configuration.linger = 0
        let controller = Controller(configuration: configuration, context: context, logger: quietLogger)
        try controller.start()
        defer { controller.stop(); controller.waitUntilStopped() }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(controller.dashboardState().json().utf8)) as? [String: Any])
        #expect(json["version"] as? Int == 1)
        #expect(json["stats_received"] as? Int == 0)
        #expect(json["stats_age_milliseconds"] is NSNull)
        #expect(json["latest"] is NSNull)
        #expect(json["cameras_by_mode"] is NSNull)
        #expect((json["workers"] as? [Any])?.isEmpty == true)
        let history = try #require(json["history"] as? [String: Any])
        #expect((history["t"] as? [Any])?.isEmpty == true)
        #expect(json["condition"] as? String == "unknown")
    }

    @Test func theStateCarriesWorkersBatchesCamerasByModeAndHistory() throws {
        let context = try ZMQContext()
        let (broker, controller) = try startFleet(context)
        defer {
            controller.stop(); controller.waitUntilStopped()
            broker.stop(); broker.waitUntilStopped()
        }
        let worker = try ZMQSocket(context, type: .dealer, linger: 0)
        defer { try? worker.close() }
        try worker.connect(broker.configuration.backendEndpoint)
        try worker.send([[], ReadyMessage(workerID: "w-dash", models: ["m"], credit: 8).encoded()])
        let cameras = try ["cam-split", "cam-local"].map { _ in try ZMQSocket(context, type: .dealer, linger: 0) }
        defer { for c in cameras { try? c.close() } }
        for c in cameras { try c.connect(broker.configuration.frontendEndpoint) }

        var sequence: UInt64 = 0
        var seen: [String: Any]?
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            // The split camera sends frames; the worker answers each in a "batch of 3" and returns credit.
            sequence += 1
            let due = UInt64(Date().timeIntervalSince1970 * 1000) + 5000
            let frame = FrameMessage(
                cameraID: "cam-split", sequence: sequence, model: "m",
                payload: .bottleneck(QuantizedTensor(shape: [1, 2, 2], data: [1, 2, 3, 4], parameters: QuantizationParameters(scale: 0.5, zeroPoint: 128))),
                deadline: due, sentAt: due - 5000)
            _ = try cameras[0].trySend([[], frame.encoded()])
            while let parts = try worker.tryReceive() {
                guard parts.count == 4, let f = try? FrameMessage.decode(parts[3]) else { continue }
                let result = ResultMessage(
                    cameraID: f.cameraID, sequence: f.sequence, classIndices: [1], scores: [1], queuedMilliseconds: 0.1,
                    computeMilliseconds: 1, batchSize: 3, workerID: "w-dash")
                try worker.send([[], parts[1], [], result.encoded()])
                try worker.send([[], CreditMessage(credits: 1).encoded()])
            }
            for (camera, (id, mode)) in zip(cameras, [("cam-split", "split"), ("cam-local", "local")]) {
                let report = LatencyReport(
                    cameraID: id, windowMilliseconds: 50, completed: mode == "split" ? 5 : 0, missed: 0,
                    percentiles: mode == "split" ? LatencyPercentiles(p50: 10, p95: 20, p99: 30) : nil,
                    local: mode == "local" ? 5 : 0, mode: mode)
                _ = try camera.trySend([[], HeartbeatMessage(latencyReport: report).encoded()])
                while (try camera.tryReceive()) != nil {}
            }
            let json = try state(controller)
            let workers = json["workers"] as? [[String: Any]] ?? []
            let modes = json["cameras_by_mode"] as? [String: Any]
            let history = json["history"] as? [String: Any]
            if workers.first?["batch_max"] as? Int == 3, modes?["split"] as? Int == 1, modes?["local"] as? Int == 1,
               (history?["t"] as? [Any])?.count ?? 0 >= 2 {
                seen = json
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let json = try #require(seen, "the dashboard state never showed the worker's batches and both cameras' modes")
        #expect(Set(json.keys) == [
            "version", "role", "now_milliseconds", "stats_endpoint", "stats_received", "stats_age_milliseconds", "condition",
            "local_fraction", "edge_floor", "last_decision", "latest", "workers", "cameras_by_mode", "history",
        ])
        #expect(json["role"] as? String == "controller")
        #expect((json["stats_received"] as? Int ?? 0) >= 2)
        let worker0 = try #require((json["workers"] as? [[String: Any]])?.first)
        #expect(Set(worker0.keys) == ["id", "credit", "in_flight", "batch_mean", "batch_max"])
        #expect(worker0["id"] as? String == "w-dash")
        #expect(worker0["batch_mean"] as? Double == 3)
        #expect((0...8).contains(worker0["credit"] as? Int ?? -1))
        let latest = try #require(json["latest"] as? [String: Any])
        #expect(Set(latest.keys) == [
            "timestamp", "queue_depth", "queue_time_p50", "queue_time_p95", "queue_time_p99", "in_flight", "arrival_rate",
            "throughput", "drop_rate", "utilisation", "cameras_reporting", "edge_p50", "edge_p95", "edge_p99", "local_share",
            "miss_ratio",
        ])
        #expect(latest["cameras_reporting"] as? Int == 2)
        let modes = try #require(json["cameras_by_mode"] as? [String: Any])
        #expect(modes["offload"] as? Int == 0)
        let history = try #require(json["history"] as? [String: Any])
        #expect(Set(history.keys) == ["t", "queue_depth", "queue_time_p95", "throughput", "edge_p99", "local_share", "local_fraction"])
        let t = try #require(history["t"] as? [UInt64])
        #expect(zip(t, t.dropFirst()).allSatisfy { $0 / 1000 < $1 / 1000 }, "one sample per second, in order: \(t)")
        for column in history.values { #expect((column as? [Any])?.count == t.count) }
    }
}

@Suite struct DashboardHistoryTests {
    func stats(_ ms: UInt64, depth: Int) -> StatsMessage {
        StatsMessage(
            timestamp: ms, queueDepth: depth, queueTimeP50: 1, queueTimeP95: 2, queueTimeP99: 3, inFlight: 0, arrivalRate: 10,
            completionRate: 9, dropRate: 0, workers: [])
    }

    @Test func keepsOneSamplePerSecondAndAtMostItsCapacity() {
        var history = DashboardHistory(capacity: 3)
        history.record(stats(1_000, depth: 1), localFraction: 0)
        history.record(stats(1_400, depth: 2), localFraction: 0)  // same second: replaces
        #expect(history.samples.map(\.queueDepth) == [2])
        history.record(stats(900, depth: 9), localFraction: 0)  // older than the last: ignored
        #expect(history.samples.map(\.queueDepth) == [2])
        for (i, ms) in [2_000, 3_000, 4_000].enumerated() { history.record(stats(UInt64(ms), depth: 3 + i), localFraction: 0.25) }
        #expect(history.samples.map(\.queueDepth) == [3, 4, 5])
        #expect(history.samples.allSatisfy { $0.edgeP99 == nil && $0.localShare == nil && $0.localFraction == 0.25 })
    }
}
