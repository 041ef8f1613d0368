import BottleFitLogging
import Foundation
import Logging
import Synchronization
import Testing

/// Lines a handler wrote, kept for the test.
final class CapturedLines: Sendable {
    private let lines = Mutex<[String]>([])
    var sink: LogLineSink { LogLineSink { [self] line in lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }
}

func object(_ line: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
}

@Suite struct JSONLogHandlerTests {
    static let fixed = LogTimestamp(millisecondsSinceEpoch: 1_764_775_580_123)

    func logger(_ captured: CapturedLines, role: String = "broker") -> Logger {
        var logger = Logger(label: "bottlefit.test") { label in
            JSONLogHandler(label: label, role: role, sink: captured.sink, metadataProvider: nil, clock: { Self.fixed })
        }
        logger.logLevel = .debug
        return logger
    }

    @Test func everyKeyIsPresentInTheDocumentedOrder() throws {
        let captured = CapturedLines()
        logger(captured).info("broker serving")
        let line = try #require(captured.all.first)
        #expect(line == #"{"ts":"2025-12-03T15:26:20.123Z","level":"info","role":"broker","label":"bottlefit.test","source":"BottleFitLoggingTests","msg":"broker serving","metadata":{}}"#)
        let o = try object(line)
        #expect(Set(o.keys) == ["ts", "level", "role", "label", "source", "msg", "metadata"])
    }

    @Test func stringsAreEscaped() throws {
        let captured = CapturedLines()
        let tricky = "quote \" backslash \\ newline \n tab \t return \r bell \u{07} nul \u{00} del \u{7F} e\u{301} 日本 🙂 \u{2028}"
        logger(captured).warning("\(tricky)", metadata: ["k\"ey\n": "\(tricky)"])
        let line = try #require(captured.all.first)
        #expect(!line.contains("\n") && !line.contains("\t") && !line.contains("\r"))
        #expect(line.contains(#"\u0007"#) && line.contains(#"\u0000"#) && line.contains(#"\u2028"#))
        let o = try object(line)
        #expect(o["msg"] as? String == tricky)
        #expect(o["level"] as? String == "warning")
        #expect((o["metadata"] as? [String: Any])?["k\"ey\n"] as? String == tricky)
    }

    @Test func metadataIsANestedObjectWithHandlerLoggerAndEventValues() throws {
        let captured = CapturedLines()
        var log = logger(captured, role: "worker")
        log[metadataKey: "worker"] = "w1"
        log[metadataKey: "shared"] = "from logger"
        log.debug("batch", metadata: [
            "shared": "from event", "sizes": .array(["1", "2"]), "nested": .dictionary(["a": "b", "c": .array([])]),
            "count": .stringConvertible(42),
        ])
        let o = try object(try #require(captured.all.first))
        let m = try #require(o["metadata"] as? [String: Any])
        #expect(o["role"] as? String == "worker")
        #expect(m["worker"] as? String == "w1")
        #expect(m["shared"] as? String == "from event")
        #expect(m["sizes"] as? [String] == ["1", "2"])
        #expect((m["nested"] as? [String: Any])?["a"] as? String == "b")
        #expect(m["count"] as? String == "42")
    }

    @Test func anAttachedErrorGoesIntoMetadata() throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "broken \"pipe\"" } }
        let captured = CapturedLines()
        logger(captured).error("send failed", error: Broken())
        let line = try #require(captured.all.first)
        let m = try #require(try object(line)["metadata"] as? [String: Any])
        #expect(m["error"] as? String == "broken \"pipe\"")
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        #expect(LogTimestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(LogTimestamp(millisecondsSinceEpoch: 951_782_400_007).rfc3339 == "2000-02-29T00:00:00.007Z")
        #expect(LogTimestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        let now = LogTimestamp.now().rfc3339
        #expect(now.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(now)")
    }
}
