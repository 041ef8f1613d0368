import BottleFitCore
import BottleFitMetricsServer
import Testing

@Suite struct HTTPRequestHeadTests {
    func parse(_ text: String, maxBytes: Int = 8192) -> HTTPRequestHead.Parse {
        HTTPRequestHead.parse(Array(text.utf8), maxBytes: maxBytes)
    }

    func status(_ text: String) -> Int? {
        if case .invalid(let status, _) = parse(text) { return status.code }
        return nil
    }

    @Test func readsAGet() throws {
        guard case .complete(let head) = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a:9100\r\nAccept:  text/plain \r\n\r\n") else {
            Issue.record("not complete")
            return
        }
        #expect(head.method == "GET" && head.path == "/metrics" && head.target == "/metrics?x=1" && head.minorVersion == 1)
        #expect(head.header("accept") == "text/plain")
        #expect(head.header("HOST") == "a:9100")
    }

    @Test func acceptsWhatRFC9112Allows() {
        // Bare LF line ends, empty lines before the request line, HTTP/1.0 without Host, absolute form.
        if case .complete(let h) = parse("\r\n\nGET /healthz HTTP/1.0\n\n") { #expect(h.path == "/healthz") } else { Issue.record("LF") }
        if case .complete(let h) = parse("GET http://x:1/metrics?a HTTP/1.1\r\nHost: x:1\r\n\r\n") { #expect(h.path == "/metrics") } else { Issue.record("absolute") }
        if case .complete(let h) = parse("GET http://x:1 HTTP/1.1\r\nHost: x:1\r\n\r\n") { #expect(h.path == "/") } else { Issue.record("authority only") }
        if case .complete = parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n") {} else { Issue.record("equal lengths") }
    }

    @Test func waitsForTheEndOfTheHead() {
        #expect(parse("") == .incomplete)
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\n\r") == .incomplete)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", 400),                        // no Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),   // two Hosts
        ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),             // two spaces
        ("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
        ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /mé HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),             // space before the colon
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),   // obs-fold
        ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\n\n", 400),  // a TLS hello is not HTTP
    ])
    func refusesMalformedHeads(text: String, code: Int) {
        #expect(status(text) == code, "\(text.debugDescription)")
    }

    @Test func limitsTheHead() {
        let long = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "y", count: 9000) + "\r\n\r\n"
        #expect(status(long) == 431)
        // Still incomplete but already over the limit: refused without waiting for the rest.
        #expect(status(String(long.prefix(8500))) == 431)
        let many = "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 65) + "\r\n"
        #expect(status(many) == 431)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SeededGenerator(seed: 0x4854_5450)
        var outcomes = [String: Int]()
        for round in 0..<20_000 {
            var bytes = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if round % 2 == 0 { bytes = Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8) + bytes + Array("\r\n\r\n".utf8) }
            switch HTTPRequestHead.parse(bytes, maxBytes: 128) {
            case .incomplete: outcomes["incomplete", default: 0] += 1
            case .complete: outcomes["complete", default: 0] += 1
            case .invalid(let s, _): outcomes["\(s.code)", default: 0] += 1
            }
        }
        #expect(outcomes["400", default: 0] > 1000)
    }

    @Test func addresses() {
        #expect(MetricsAddress("127.0.0.1:0") == MetricsAddress(host: "127.0.0.1", port: 0))
        #expect(MetricsAddress("[::1]:9100") == MetricsAddress(host: "::1", port: 9100))
        #expect(MetricsAddress("localhost:65535")?.port == 65535)
        #expect(MetricsAddress(host: "::1", port: 1).description == "[::1]:1")
        for bad in ["9100", ":9100", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:9100", "a b:1", "h:１"] {
            #expect(MetricsAddress(bad) == nil, "\(bad)")
            #expect(MetricsAddress.problem(bad) != nil, "\(bad)")
        }
    }
}
