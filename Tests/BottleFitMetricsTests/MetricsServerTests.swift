import BottleFitCore
import BottleFitMetrics
import BottleFitMetricsServer
import Foundation
import Logging
import Synchronization
import Testing

/// A plain TCP client on 127.0.0.1: sends bytes, reads until the server closes (bounded in time).
enum RawHTTP {
    /// Connects to 127.0.0.1:`port`; the descriptor, or -1.
    static func connectTo(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { close(fd); return -1 }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Everything until EOF (or the 5 s receive timeout).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// One exchange: the status code, the headers (lowercased names) and the body.
    static func exchange(_ port: UInt16, _ request: [UInt8]) -> (status: Int, headers: [String: String], body: String)? {
        let fd = connectTo(port)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        send(fd, request)
        return parse(readAll(fd))
    }

    static func get(_ port: UInt16, _ path: String, method: String = "GET") -> (status: Int, headers: [String: String], body: String)? {
        exchange(port, Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8))
    }

    static func parse(_ bytes: [UInt8]) -> (status: Int, headers: [String: String], body: String)? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let code = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (code, headers, String(text[split.upperBound...]))
    }
}

@Suite(.serialized) struct MetricsServerTests {
    let logger = Logger(label: "metrics-test")

    func server(limits: MetricsServer.Limits = .init(), families: @escaping @Sendable () -> [MetricFamily] = { [] }) throws -> (MetricsServer, UInt16) {
        let server = MetricsServer(address: MetricsAddress("127.0.0.1:0")!, role: "test", logger: logger, limits: limits, metrics: families)
        let bound = try server.start()
        #expect(bound.host == "127.0.0.1" && bound.port != 0)
        return (server, bound.port)
    }

    @Test func servesTheExpositionFromASnapshotAtEachScrape() throws {
        let counter = Mutex(0)
        let (server, port) = try server { [.counter("t_things_total", "Things.", counter.withLock { $0 })] }
        defer { server.stop(); server.waitUntilStopped() }
        let first = try #require(RawHTTP.get(port, "/metrics"))
        #expect(first.status == 200)
        #expect(first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(first.headers["connection"] == "close")
        #expect(Int(first.headers["content-length"] ?? "") == first.body.utf8.count)
        let families = try ExpositionParser.parse(first.body)
        #expect(families.first { $0.name == "t_things_total" }?.samples.first?.value == 0)
        #expect(families.contains { $0.name == "bottlefit_build_info" && $0.samples.first?.labels["role"] == "test" })
        counter.withLock { $0 = 5 }
        let second = try ExpositionParser.parse(try #require(RawHTTP.get(port, "/metrics")).body)
        #expect(second.first { $0.name == "t_things_total" }?.samples.first?.value == 5)
        // The endpoint counts its own answers.
        let answered = second.first { $0.name == "bottlefit_metrics_http_requests_total" }?.samples.first { $0.labels["code"] == "200" }
        #expect((answered?.value ?? 0) >= 1)
    }

    @Test func healthFollowsTheRole() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        #expect(RawHTTP.get(port, "/healthz")?.status == 503)
        #expect(RawHTTP.get(port, "/healthz")?.body == "starting test\n")
        server.setHealth(.serving)
        #expect(RawHTTP.get(port, "/healthz")?.status == 200)
        #expect(RawHTTP.get(port, "/healthz")?.body == "ok test\n")
        server.setHealth(.stopping)
        let stopping = RawHTTP.get(port, "/healthz")
        #expect(stopping?.status == 503 && stopping?.body == "stopping test\n")
    }

    @Test func answersEveryKindOfRequestWithTheRightStatus() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        server.setHealth(.serving)
        let head = try #require(RawHTTP.get(port, "/metrics", method: "HEAD"))
        #expect(head.status == 200 && head.body.isEmpty && Int(head.headers["content-length"] ?? "0")! > 0)
        #expect(RawHTTP.get(port, "/nope")?.status == 404)
        #expect(RawHTTP.get(port, "/metrics/")?.status == 404)
        let post = try #require(RawHTTP.get(port, "/metrics", method: "POST"))
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD")
        #expect(RawHTTP.get(port, "/metrics", method: "BREW")?.status == 501)
        #expect(RawHTTP.get(port, "/healthz?verbose=1")?.status == 200)
        #expect(RawHTTP.exchange(port, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))?.status == 400)
        #expect(RawHTTP.exchange(port, Array("GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n".utf8))?.status == 505)
        #expect(RawHTTP.exchange(port, Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))?.status == 200)
        // A body is never read, and the answer still arrives whole.
        let withBody = RawHTTP.exchange(port, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 5000))
        #expect(withBody?.status == 200)
        // Half-closed in the middle of the head: 400.
        let fd = RawHTTP.connectTo(port)
        RawHTTP.send(fd, Array("GET /metr".utf8))
        shutdown(fd, Int32(SHUT_WR))
        #expect(RawHTTP.parse(RawHTTP.readAll(fd))?.status == 400)
        close(fd)
        let big = Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX: ".utf8) + [UInt8](repeating: 120, count: 20_000) + Array("\r\n\r\n".utf8)
        #expect(RawHTTP.exchange(port, big)?.status == 431)
    }

    @Test func aSlowPeerIsAnsweredRequestTimeout() throws {
        var limits = MetricsServer.Limits()
        limits.headTimeout = 0.3
        let (server, port) = try server(limits: limits)
        defer { server.stop(); server.waitUntilStopped() }
        let fd = RawHTTP.connectTo(port)
        defer { close(fd) }
        RawHTTP.send(fd, Array("GET /metrics HTTP/1.1\r\n".utf8))
        let started = Date()
        let answer = RawHTTP.parse(RawHTTP.readAll(fd))
        #expect(answer?.status == 408)
        #expect(Date().timeIntervalSince(started) < 3)
        // And the endpoint still serves.
        #expect(RawHTTP.get(port, "/healthz")?.status == 503)
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
            let fd = RawHTTP.connectTo(port)
            try #require(fd >= 0, "the endpoint stopped accepting in round \(round)")
            RawHTTP.send(fd, bytes)
            if round % 5 == 0 { close(fd); continue }  // gone before the answer
            shutdown(fd, Int32(SHUT_WR))
            if let answer = RawHTTP.parse(RawHTTP.readAll(fd)) { statuses[answer.status, default: 0] += 1 }
            close(fd)
        }
        // More peers at once than it keeps: the extra ones get 503, and nothing breaks.
        let idle = (0..<12).map { _ in RawHTTP.connectTo(port) }
        Thread.sleep(forTimeInterval: 0.2)
        let extra = RawHTTP.get(port, "/metrics")
        for fd in idle { close(fd) }
        #expect(extra?.status == 503 || extra?.status == 200)
        #expect(statuses[400, default: 0] > 50, "\(statuses)")
        // Once the endpoint has seen the idle peers leave (bounded wait), it serves again.
        var after = try #require(RawHTTP.get(port, "/metrics"))
        let until = Date().addingTimeInterval(5)
        while after.status == 503, Date() < until {
            Thread.sleep(forTimeInterval: 0.05)
            after = try #require(RawHTTP.get(port, "/metrics"))
        }
        #expect(after.status == 200)
        let families = try ExpositionParser.parse(after.body)
        #expect(families.first { $0.name == "g" }?.samples.first?.value == 1)
    }

    @Test func stopClosesTheListenerPromptly() throws {
        let (server, port) = try server()
        let idle = RawHTTP.connectTo(port)  // a connection that never sends
        let started = Date()
        server.stop()
        server.waitUntilStopped()
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(RawHTTP.readAll(idle).isEmpty)  // closed under it
        close(idle)
        #expect(RawHTTP.connectTo(port) == -1)
    }

    @Test func aPortInUseIsAnError() throws {
        let (server, port) = try server()
        defer { server.stop(); server.waitUntilStopped() }
        let second = MetricsServer(address: MetricsAddress(host: "127.0.0.1", port: port), role: "x", logger: logger) { [] }
        #expect(throws: MetricsServerError.self) { try second.start() }
    }
}
