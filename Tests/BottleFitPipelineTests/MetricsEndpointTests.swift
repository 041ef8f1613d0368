import BottleFitCore
import BottleFitMetrics
import BottleFitTestSupport
import Foundation
import Testing

/// Scraping the roles' metrics endpoints (`RawHTTP` does the HTTP).
enum Scrape {
    /// Scrapes /metrics and checks it against the format; the families, or nil (recorded as an issue).
    static func metrics(port: UInt16, _ who: String, sourceLocation: SourceLocation = #_sourceLocation) -> Metrics? {
        guard let r = RawHTTP.get(port: port, "/metrics") else {
            Issue.record("\(who): no answer on /metrics", sourceLocation: sourceLocation)
            return nil
        }
        #expect(r.status == 200, "\(who): \(r.status) \(r.body)", sourceLocation: sourceLocation)
        #expect(r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", sourceLocation: sourceLocation)
        do {
            return Metrics(families: try ExpositionParser.parse(r.body))
        } catch {
            Issue.record("\(who): /metrics is not valid exposition format: \(error)\n\(r.body.prefix(3000))", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// The port a role logged ("metrics endpoint listening on http://127.0.0.1:PORT").
    static func port(of process: Running, timeout: Double = 60) -> UInt16? {
        guard process.waitForStderr("metrics endpoint listening on http://", timeout: timeout) != nil,
              let m = process.stderr.firstMatch(of: /metrics endpoint listening on http:\/\/127\.0\.0\.1:(\d+)/)
        else { return nil }
        return UInt16(m.output.1)
    }
}

/// A parsed scrape, looked up by sample name and labels.
struct Metrics {
    var families: [ExpositionParser.Family]

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families.lazy.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
    }

    func has(_ family: String) -> Bool { families.contains { $0.name == family } }
}

/// Every long-running role with `--metrics 127.0.0.1:0`: real processes scraped with a plain socket
/// client. Part of the serialized `PipelineTests`, so its four processes never run beside the
/// other scenarios' and skew their timing.
extension PipelineTests {
    @Test func everyRoleExportsCountersThatMoveAndStaysUpUnderGarbage() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let metrics = ["--metrics", "127.0.0.1:0"]
        let b = fleet.start("broker", ["broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"),
                                       "--stats", fleet.endpoint("stats"), "--heartbeat-ms", "\(Self.heartbeat)"] + metrics)
        let brokerPort = try #require(Scrape.port(of: b), "\(b.stderr)")
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = fleet.start("w1", ["worker", "--broker", fleet.endpoint("back"), "--id", "w1", "--model", "tiny=\(models.tail),\(models.full)",
                                   "--heartbeat-ms", "\(Self.heartbeat)"] + metrics)
        let workerPort = try #require(Scrape.port(of: w), "\(w.stderr)")
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let ctl = fleet.start("controller", ["controller", "--stats", fleet.endpoint("stats"), "--publish", fleet.endpoint("directives"),
                                             "--slo-ms", "1000", "--latency-slo-ms", "5000", "--min-reported-frames", "1"] + metrics)
        let controllerPort = try #require(Scrape.port(of: ctl), "\(ctl.stderr)")
        let cam = fleet.start("cam1", ["device", "--broker", fleet.endpoint("front"), "--id", "cam1", "--model", "tiny",
                                       "--head", models.head, "--full", models.full, "--rate", "20", "--slo-ms", "1000",
                                       "--heartbeat-ms", "\(Self.heartbeat)", "--directives", fleet.endpoint("directives"),
                                       "--latency-report-ms", "250"] + metrics)
        let cameraPort = try #require(Scrape.port(of: cam), "\(cam.stderr)")
        try #require(cam.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)")
        note("fleet running; metrics on \(brokerPort), \(workerPort), \(controllerPort), \(cameraPort)", since: t0)
        let ports = [("broker", brokerPort), ("worker", workerPort), ("controller", controllerPort), ("device", cameraPort)]

        // Every role is healthy once it serves; until then it says it is starting (bounded wait).
        for (role, port) in ports {
            var health = RawHTTP.get(port: port, "/healthz")
            let until = Date().addingTimeInterval(20)
            while health?.status == 503, Date() < until {
                #expect(health?.body == "starting \(role)\n", "\(role): \(String(describing: health))")
                Thread.sleep(forTimeInterval: 0.05)
                health = RawHTTP.get(port: port, "/healthz")
            }
            #expect(health?.status == 200 && health?.body == "ok \(role)\n", "\(role): \(String(describing: health))")
        }
        let first = ports.map { Scrape.metrics(port: $0.1, $0.0) }
        guard let b1 = first[0], let w1 = first[1], let d1 = first[3] else { return }
        // Scrape again until every role's counters have moved and the camera's reports have reached
        // the controller (bounded: a loaded machine is slow, not broken).
        var second = first
        let camID = ["camera": "cam1"]
        func moved(_ s: [Metrics?]) -> Bool {
            guard let b2 = s[0], let w2 = s[1], let c2 = s[2], let d2 = s[3] else { return false }
            return (b2.value("bottlefit_broker_frames_completed_total") ?? 0) > (b1.value("bottlefit_broker_frames_completed_total") ?? 0)
                && (w2.value("bottlefit_worker_frames_completed_total", ["worker": "w1"]) ?? 0)
                    > (w1.value("bottlefit_worker_frames_completed_total", ["worker": "w1"]) ?? 0)
                && (d2.value("bottlefit_camera_frames_offered_total", camID) ?? 0) > (d1.value("bottlefit_camera_frames_offered_total", camID) ?? 0)
                && (d2.value("bottlefit_camera_latency_reports_sent_total", camID) ?? 0) >= 2
                && (b2.value("bottlefit_broker_latency_reports_total") ?? 0) >= 2
                && (c2.value("bottlefit_controller_stats_received_total") ?? 0) > 4
                && c2.value("bottlefit_controller_signal_p95_seconds", ["signal": "camera_latency"]) != nil
                && b2.value("bottlefit_broker_reporting_cameras") == 1
        }
        let scrapeUntil = Date().addingTimeInterval(60)
        repeat {
            Thread.sleep(forTimeInterval: 0.5)
            second = ports.map { Scrape.metrics(port: $0.1, $0.0) }
        } while !moved(second) && Date() < scrapeUntil
        guard let b2 = second[0], let w2 = second[1], let c2 = second[2], let d2 = second[3] else { return }

        // Counters move between scrapes, and each role's own balance holds in what it exports.
        let offered1 = d1.value("bottlefit_camera_frames_offered_total", camID) ?? -1
        let offered2 = d2.value("bottlefit_camera_frames_offered_total", camID) ?? -1
        #expect(offered2 > offered1 && offered1 >= 0, "camera offered \(offered1) -> \(offered2)")
        let edge = d2.value("bottlefit_camera_frames_completed_total", camID.merging(["path": "edge"]) { a, _ in a }) ?? 0
        #expect(edge > 0)
        let reasons = d2.families.first { $0.name == "bottlefit_camera_frames_dropped_total" }?.samples ?? []
        #expect(reasons.count == 13, "every drop reason is listed (DropReason.all)")
        let settled = edge + (d2.value("bottlefit_camera_frames_completed_total", camID.merging(["path": "local"]) { a, _ in a }) ?? 0)
            + reasons.reduce(0) { $0 + $1.value } + (d2.value("bottlefit_camera_frames_in_flight", camID) ?? 0)
        #expect(settled == offered2, "offered = completed + dropped + in flight, as exported")
        #expect((d2.value("bottlefit_camera_latency_seconds_count", camID.merging(["path": "edge"]) { a, _ in a }) ?? 0) == edge)
        #expect((d2.value("bottlefit_camera_latency_reports_sent_total", camID) ?? 0) >= 2)
        #expect(moved(second), "the counters did not move within 60 s")

        let completed1 = b1.value("bottlefit_broker_frames_completed_total") ?? -1
        let completed2 = b2.value("bottlefit_broker_frames_completed_total") ?? -1
        #expect(completed2 > completed1 && completed1 >= 0, "broker completed \(completed1) -> \(completed2)")
        #expect((b2.value("bottlefit_broker_queue_time_seconds_count") ?? 0) > 0)
        #expect((b2.value("bottlefit_broker_latency_reports_total") ?? 0) >= 2)
        #expect(b2.value("bottlefit_broker_reporting_cameras") == 1)
        #expect(b2.has("bottlefit_broker_camera_latency_window_seconds"))
        #expect(b2.value("bottlefit_broker_workers") == 1)

        let wid = ["worker": "w1"]
        #expect((w2.value("bottlefit_worker_frames_completed_total", wid) ?? 0) > (w1.value("bottlefit_worker_frames_completed_total", wid) ?? 0))
        #expect((w2.value("bottlefit_worker_batch_compute_seconds_count", wid) ?? 0) > 0)

        #expect((c2.value("bottlefit_controller_stats_received_total") ?? 0) > 4)
        #expect(c2.value("bottlefit_controller_local_fraction") == 0)
        // The camera latency reached the controller through the broker's STATS.
        let cameraP95 = c2.value("bottlefit_controller_signal_p95_seconds", ["signal": "camera_latency"]) ?? -1
        #expect(cameraP95 > 0 && cameraP95 < 5, "camera p95 at the controller: \(cameraP95)")
        for (i, m) in second.enumerated() {
            #expect(m?.value("bottlefit_build_info", ["version": "0.1.0", "role": ports[i].0]) == 1)
        }
        note("scraped until the counters moved", since: t0)

        // Garbage on every endpoint: each answers what it can and keeps serving.
        var rng = SeededGenerator(seed: 0x6D65_7472)
        var answered: [Int: Int] = [:]
        let until = Date().addingTimeInterval(8)
        for round in 0..<160 where Date() < until {
            let (role, port) = ports[round % ports.count]
            let request = Self.httpGarbage(round: round, rng: &rng)
            if let r = RawHTTP.exchange(port: port, request, halfClose: true) { answered[r.status, default: 0] += 1 }
            if round % 40 == 39 {
                for (role, process) in zip(["broker", "worker", "controller", "device"], [b, w, ctl, cam]) {
                    try #require(process.isRunning, "\(role) died on HTTP garbage: \(process.stderr.suffix(2000))")
                }
            }
            _ = role
        }
        note("garbage answered: \(answered)", since: t0)
        #expect(answered[400, default: 0] > 20, "\(answered)")
        #expect(answered[404, default: 0] > 0 && answered[405, default: 0] > 0, "\(answered)")
        for (role, port) in ports {
            let after = Scrape.metrics(port: port, role)
            #expect(after != nil)
            let bad = after?.value("bottlefit_metrics_http_requests_total", ["code": "400"]) ?? 0
            #expect(bad > 0, "\(role) counted no bad request")
        }

        // SIGTERM: every role stops cleanly and its endpoint goes away.
        for (process, port) in [(cam, cameraPort), (ctl, controllerPort), (w, workerPort), (b, brokerPort)] {
            #expect(process.stop() == 0, "\(process.name): \(process.stderr.suffix(2000))")
            #expect(RawHTTP.get(port: port, "/healthz") == nil, "\(process.name) still answers after it stopped")
        }
        #expect(summary(b.stdout, prefix: "received=") != nil)
        checkCamera(cam, "cam1")
    }

    /// Requests a scraper would never send, and some it would, mixed.
    static func httpGarbage(round: Int, rng: inout SeededGenerator) -> [UInt8] {
        let random = (0..<Int(1 + rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        switch round % 10 {
        case 0: return random
        case 1: return random + Array("\r\n\r\n".utf8)
        case 2: return Array("GET /metrics HTTP/1.1\r\n".utf8) + random + Array("\r\n\r\n".utf8)
        case 3: return Array("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".utf8)
        case 4: return Array("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        case 5: return Array("GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".utf8)
        case 6: return Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX: ".utf8) + [UInt8](repeating: 0x41, count: 10_000) + Array("\r\n\r\n".utf8)
        case 7: return Array("\u{16}\u{03}\u{01}\u{02}\u{00}".utf8) + random  // a TLS hello
        case 8: return Array("GET /metrics HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n".utf8)
        default: return Array("GET /metrics\r\n\r\n".utf8)  // HTTP/0.9
        }
    }
}
