import BottleFitCore
import BottleFitMetrics
import BottleFitMetricsServer
import BottleFitTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@Suite(.serialized, .blocking) struct MetricsServerTests {
    let logger = Logger(label: "metrics-test")

    func server(
        limits: MetricsServer.Limits = .init(), routes: [ReadOnlyRoute] = [], families: @escaping @Sendable () -> [MetricFamily] = { [] }
    ) throws -> (MetricsServer, UInt16) {
        let server = MetricsServer(
            address: MetricsAddress("127.0.0.1:0")!, role: "test", logger: logger, limits: limits, routes: routes, metrics: families)
        let bound = try server.start()
        #expect(bound.host == "127.0.0.1" && bound.port != 0)
        return (server, bound.port)
    }

    @Test func servesTheExpositionFromASnapshotAtEachScrape() throws {
        let counter = Mutex(0)
        let (server, port) = try server { [.counter("t_things_total", "Things.", counter.withLock { $0 })] }
        defer { server.stop(); server.waitUntilStopped() }
        let first = try #require(RawHTTP.get(port: port, "/metrics"))
        #expect(first.status == 200)
        #expect(first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(first.headers["connection"] == "close")
        #expect(Int(first.headers["content-length"] ?? "") == first.body.utf8.count)
        let families = try ExpositionParser.parse(first.body)
        #expect(families.first { $0.name == "t_things_total" }?.samples.first?.value == 0)
        #expect(families.contains { $0.name == "bottlefit_build_info" && $0.samples.first?.labels["role"] == "test" })
        counter.withLock { $0 = 5 }
        let second = try ExpositionParser.parse(try #require(RawHTTP.get(port: port, "/metrics")).body)
        #expect(second.first { $0.name == "t_things_total" }?.samples.first?.value == 5)
        // The endpoint counts its own answers.
        let answered = second.first { $0.name == "bottlefit_metrics_http_requests_total" }?.samples.first { $0.labels["code"] == "200" }
        #expect((answered?.value ?? 0) >= 1)
    }

    @Test func healthFollowsTheRole() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        #expect(RawHTTP.get(port: port, "/healthz")?.status == 503)
        #expect(RawHTTP.get(port: port, "/healthz")?.body == "starting test\n")
        server.setHealth(.serving)
        #expect(RawHTTP.get(port: port, "/healthz")?.status == 200)
        #expect(RawHTTP.get(port: port, "/healthz")?.body == "ok test\n")
        server.setHealth(.stopping)
        let stopping = RawHTTP.get(port: port, "/healthz")
        #expect(stopping?.status == 503 && stopping?.body == "stopping test\n")
    }

    @Test func answersEveryKindOfRequestWithTheRightStatus() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        server.setHealth(.serving)
        let head = try #require(RawHTTP.get(port: port, "/metrics", method: "HEAD"))
        #expect(head.status == 200 && head.body.isEmpty && Int(head.headers["content-length"] ?? "0")! > 0)
        #expect(RawHTTP.get(port: port, "/nope")?.status == 404)
        #expect(RawHTTP.get(port: port, "/metrics/")?.status == 404)
        let post = try #require(RawHTTP.get(port: port, "/metrics", method: "POST"))
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
        #expect(RawHTTP.get(port: port, "/metrics", method: "BREW")?.status == 501)
        #expect(RawHTTP.get(port: port, "/healthz?verbose=1")?.status == 200)
        #expect(RawHTTP.exchange(port: port, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))?.status == 400)
        #expect(RawHTTP.exchange(port: port, Array("GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n".utf8))?.status == 505)
        #expect(RawHTTP.exchange(port: port, Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))?.status == 200)
        // A body is never read, and the answer still arrives whole.
        let withBody = RawHTTP.exchange(port: port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 5000))
        #expect(withBody?.status == 200)
        // Half-closed in the middle of the head: 400.
        let fd = RawHTTP.connect(port: port)
        RawHTTP.send(fd, Array("GET /metr".utf8))
        shutdown(fd, Int32(SHUT_WR))
        #expect(RawHTTP.parse(RawHTTP.readAll(fd))?.status == 400)
        close(fd)
        let big = Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX: ".utf8) + [UInt8](repeating: 120, count: 20_000) + Array("\r\n\r\n".utf8)
        #expect(RawHTTP.exchange(port: port, big)?.status == 431)
    }

    @Test func aSlowPeerIsAnsweredRequestTimeout() throws {
        var limits = MetricsServer.Limits()
        limits.headTimeout = 0.3
        let (server, port) = try server(limits: limits)
        defer { server.stop(); server.waitUntilStopped() }
        let fd = RawHTTP.connect(port: port)
        defer { close(fd) }
        RawHTTP.send(fd, Array("GET /metrics HTTP/1.1\r\n".utf8))
        let started = Date()
        let answer = RawHTTP.parse(RawHTTP.readAll(fd))
        #expect(answer?.status == 408)
        #expect(Date().timeIntervalSince(started) < 3)
        // And the endpoint still serves.
        #expect(RawHTTP.get(port: port, "/healthz")?.status == 503)
    }

    @Test func garbageFromManyPeersNeverStopsIt() throws {
        var limits = MetricsServer.Limits()
        limits.headTimeout = 0.5
        limits.maxConnections = 8
        let (server, port) = try server(limits: limits) { [.gauge("g", "G.", 1)] }
        defer { server.stop(); server.waitUntilStopped() }
        server.setHealth(.serving)
        var rng = SeededGenerator(seed: 0x6761_7262)
        var statuses: [Int: Int] = [:]
        let deadline = Date().addingTimeInterval(20)
        for round in 0..<300 where Date() < deadline {
            var bytes = (0..<Int(1 + rng.next() % 600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            switch round % 4 {
            case 0: bytes = Array("GET /metrics HTTP/1.1\r\n".utf8) + bytes + Array("\r\n\r\n".utf8)
            case 1: bytes += Array("\r\n\r\n".utf8)
            case 2: bytes = Array("GET /\(String(decoding: bytes.prefix(20), as: UTF8.self)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            default: break
            }
            let fd = RawHTTP.connect(port: port)
            try #require(fd >= 0, "the endpoint stopped accepting in round \(round)")
            RawHTTP.send(fd, bytes)
            if round % 5 == 0 { close(fd); continue }  // gone before the answer
            shutdown(fd, Int32(SHUT_WR))
            if let answer = RawHTTP.parse(RawHTTP.readAll(fd)) { statuses[answer.status, default: 0] += 1 }
            close(fd)
        }
        // More peers at once than it keeps: the extra ones get 503, and nothing breaks.
        let idle = (0..<12).map { _ in RawHTTP.connect(port: port) }
        Thread.sleep(forTimeInterval: 0.2)
        let extra = RawHTTP.get(port: port, "/metrics")
        for fd in idle { close(fd) }
        #expect(extra?.status == 503 || extra?.status == 200)
        #expect(statuses[400, default: 0] > 50, "\(statuses)")
        // Once the endpoint has seen the idle peers leave (bounded wait), it serves again.
        var after = try #require(RawHTTP.get(port: port, "/metrics"))
        let until = Date().addingTimeInterval(5)
        while after.status == 503, Date() < until {
            Thread.sleep(forTimeInterval: 0.05)
            after = try #require(RawHTTP.get(port: port, "/metrics"))
        }
        #expect(after.status == 200)
        let families = try ExpositionParser.parse(after.body)
        #expect(families.first { $0.name == "g" }?.samples.first?.value == 1)
    }

    @Test func stopClosesTheListenerPromptly() throws {
        let (server, port) = try server()
        let idle = RawHTTP.connect(port: port)  // a connection that never sends
        let started = Date()
        server.stop()
        server.waitUntilStopped()
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(RawHTTP.readAll(idle).isEmpty)  // closed under it
        close(idle)
        #expect(RawHTTP.connect(port: port) == -1)
    }

    @Test func aPortInUseIsAnError() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        let second = MetricsServer(address: MetricsAddress(host: "127.0.0.1", port: port), role: "x", logger: logger) { [] }
        #expect(throws: MetricsServerError.self) { try second.start() }
    }

    /// What the hand-written parser refused before the endpoint moved to swift-nio's decoder; each
    /// is still answered with a status, never a bare close (llhttp names a bad version 505 and an
    /// unknown method 501 where the old parser said 400).
    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),   // two Hosts
        ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 505),  // llhttp: not a version
        ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 501),  // llhttp: not a method it knows
        ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),             // space before the colon
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\n\n", 501),  // a TLS hello: llhttp reads no method it knows
        ("GET /metrics\r\n\r\n", 505),                               // HTTP/0.9
    ])
    func answersMalformedHeads(text: String, code: Int) throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        #expect(RawHTTP.exchange(port: port, Array(text.utf8))?.status == code, "\(text.debugDescription)")
    }

    @Test func tooManyHeaderLinesAre431() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        let lines = (0..<80).map { "X-\($0): y\r\n" }.joined()
        #expect(RawHTTP.exchange(port: port, Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\(lines)\r\n".utf8))?.status == 431)
    }

    @Test func onlyTheFirstOfPipelinedRequestsIsAnswered() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        let two = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let fd = RawHTTP.connect(port: port)
        defer { close(fd) }
        RawHTTP.send(fd, two)
        let text = String(decoding: RawHTTP.readAll(fd), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 503"))
        #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(text)")
    }

    @Test func servesTheRolesOwnPagesReadOnly() throws {
        let hits = Mutex(0)
        let route = ReadOnlyRoute(path: "/api/state", contentType: "application/json", headers: [("Cache-Control", "no-store")]) {
            hits.withLock { $0 += 1 }
            return #"{"ok":true}"#
        }
        let (server, port) = try server(routes: [route])
        defer { server.stop(); server.waitUntilStopped() }
        let answer = try #require(RawHTTP.get(port: port, "/api/state?t=1"))
        #expect(answer.status == 200 && answer.body == #"{"ok":true}"#)
        #expect(answer.headers["content-type"] == "application/json" && answer.headers["cache-control"] == "no-store")
        let head = try #require(RawHTTP.get(port: port, "/api/state", method: "HEAD"))
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == "11")
        let post = try #require(RawHTTP.get(port: port, "/api/state", method: "POST"))
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
        #expect(hits.withLock { $0 } == 2)  // GET and HEAD; never for a refused method
        let missing = try #require(RawHTTP.get(port: port, "/api"))
        #expect(missing.status == 404 && missing.body.contains("/api/state"))
        // The pages do not change /metrics or /healthz.
        #expect(RawHTTP.get(port: port, "/metrics")?.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(RawHTTP.get(port: port, "/healthz")?.body == "starting test\n")
    }
}
