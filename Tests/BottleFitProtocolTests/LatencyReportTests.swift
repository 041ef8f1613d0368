import BottleFitTestSupport
import BottleFitCore
import BottleFitProtocol
import Testing

/// The latency report (HEARTBEAT `lr`) and the camera fields of STATS: their rules, and how
/// peers of the version before them see them.
@Suite struct LatencyReportTests {
    func decodeError(_ bytes: [UInt8]) -> ProtocolError? {
        do {
            _ = try Message.decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    func heartbeat(_ report: MP) -> [UInt8] {
        HandMessage(fields: [("v", .uint(1)), ("t", .str("heartbeat")), ("lr", report)]).bytes
    }

    func report(replacing key: String, with value: MP?) -> MP {
        guard case .map(let fields) = Fixtures.handReport else { return Fixtures.handReport }
        return .map(fields.compactMap { $0.0 == key ? value.map { v in (key, v) } : $0 })
    }

    @Test func reportRulesHold() {
        #expect(decodeError(heartbeat(report(replacing: "l50", with: nil))) == .missingField("lr.l50"))
        #expect(decodeError(heartbeat(report(replacing: "n", with: .uint(0))))
            == .invalidValue(field: "lr.l95", reason: "percentiles given for a window without completed frames"))
        #expect(decodeError(heartbeat(report(replacing: "l95", with: .f64(50))))
            == .invalidValue(field: "lr.l95", reason: "percentiles must not decrease (l50 ≤ l95 ≤ l99)"))
        #expect(decodeError(heartbeat(report(replacing: "l99", with: .f64(-1))))
            == .invalidValue(field: "lr.l99", reason: "must be finite and not negative"))
        #expect(decodeError(heartbeat(report(replacing: "l95", with: .f64(.infinity)))) == .invalidValue(field: "lr.l95", reason: "not finite"))
        #expect(decodeError(heartbeat(report(replacing: "l99", with: .f64(86_400_001))))
            == .invalidValue(field: "lr.l99", reason: "above one day (86400000 ms)"))
        #expect(decodeError(heartbeat(report(replacing: "wm", with: .uint(0))))
            == .invalidValue(field: "lr.wm", reason: "a window lasts at least 1 ms"))
        #expect(decodeError(heartbeat(report(replacing: "n", with: .uint(1 << 32))))
            == .invalidValue(field: "lr.n", reason: "\(UInt64(1) << 32) exceeds \(UInt32.max)"))
        #expect(decodeError(heartbeat(report(replacing: "mi", with: .int(-2)))) == .invalidValue(field: "lr.mi", reason: "negative (-2)"))
        #expect(decodeError(heartbeat(report(replacing: "c", with: .str("")))) == .invalidValue(field: "lr.c", reason: "empty"))
        #expect(decodeError(heartbeat(report(replacing: "c", with: nil))) == .missingField("lr.c"))
        #expect(decodeError(heartbeat(.array([.uint(1)]))) == .wrongType(field: "lr", expected: "map"))
        // nil means absent, as everywhere in the protocol.
        #expect((try? Message.decode(heartbeat(.null))) == .heartbeat(HeartbeatMessage()))
    }

    @Test func encoderRefusesWhatTheDecoderRefuses() {
        let bad = [
            LatencyReport(cameraID: "c", windowMilliseconds: 1000, completed: 3, missed: 0, percentiles: nil),
            LatencyReport(cameraID: "c", windowMilliseconds: 1000, completed: 0, missed: 1, percentiles: .init(p50: 1, p95: 1, p99: 1)),
            LatencyReport(cameraID: "c", windowMilliseconds: 1000, completed: 2, missed: 0, percentiles: .init(p50: 3, p95: 2, p99: 4)),
            LatencyReport(cameraID: "", windowMilliseconds: 1000, completed: 0, missed: 1, percentiles: nil),
            LatencyReport(cameraID: "c", windowMilliseconds: 0, completed: 0, missed: 1, percentiles: nil),
            LatencyReport(cameraID: "c", windowMilliseconds: 1, completed: -1, missed: 1, percentiles: nil),
        ]
        for report in bad {
            #expect(throws: ProtocolError.self, "\(report)") { try HeartbeatMessage(latencyReport: report).encoded() }
        }
    }

    @Test func statsCameraFieldsComeTogether() throws {
        let stats = Fixtures.handCameraStats
        #expect(decodeError(stats.removing("lc").bytes) == .missingField("lc"))
        #expect(decodeError(stats.removing("lc").removing("ln").removing("lm").bytes) == .missingField("ln"))
        #expect(decodeError(Fixtures.handQuietCameraStats.adding("l95", .f64(3)).bytes)
            == .invalidValue(field: "l95", reason: "percentiles given for a window without completed frames"))
        #expect(decodeError(stats.replacing("l50", with: .f64(100)).bytes)
            == .invalidValue(field: "l95", reason: "percentiles must not decrease (l50 ≤ l95 ≤ l99)"))
        // Without any camera field (a broker older than the report), STATS decode as before.
        #expect(try StatsMessage.decode(Fixtures.handStats.bytes).cameraLatency == nil)
        let summary = CameraLatencySummary(cameras: 1, completed: 3, missed: 1, percentiles: .init(p50: 1, p95: 2, p99: 3))
        #expect(summary.missRatio == 0.25)
        #expect(CameraLatencySummary(cameras: 0, completed: 0, missed: 0, percentiles: nil).missRatio == 0)
    }

    /// What a peer of the version before the report sees: it ignores keys it does not know
    /// (protocol.md section 1), so a reporting HEARTBEAT is a HEARTBEAT and camera STATS are STATS.
    @Test func olderPeersSeeKnownMessages() throws {
        // The rule the old decoder applies, shown on this one: unknown keys at any level are skipped.
        let future = Fixtures.handReportingHeartbeat.adding("zz", .array([.str("later")]))
        #expect(try HeartbeatMessage.decode(future.bytes) == Fixtures.reportingHeartbeat)
        guard case .map(var fields) = Fixtures.handReport else { return }
        fields.append(("p999", .f64(150)))
        let extended = HandMessage(fields: [("v", .uint(1)), ("t", .str("heartbeat")), ("lr", .map(fields))])
        #expect(try HeartbeatMessage.decode(extended.bytes) == Fixtures.reportingHeartbeat)
        // A HEARTBEAT keeps its type and version: an old broker treats it as a sign of life.
        #expect(try MessageHeader.peek(Fixtures.reportingHeartbeat.encoded()) == MessageHeader(version: 1, type: "heartbeat"))
    }

    @Test func randomReportsNeverCrash() throws {
        var rng = SeededGenerator(seed: 0x4C52)
        let valid = try Fixtures.reportingHeartbeat.encoded()
        for _ in 0..<5_000 {
            var bytes = valid
            for _ in 0...(rng.next() % 3) {
                bytes[16 + Int(rng.next() % UInt64(bytes.count - 16))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if let message = try? Message.decode(bytes) { _ = try message.encoded() }
        }
    }
}
