import BottleFitProtocol
import BottleFitTestSupport
import Testing

/// The optional keys the dashboard reads: a worker's batch sizes (`wk[].ba`, `bx`), cameras by mode
/// (STATS `cm`) and the mode a camera reports (`lr.md`); written by hand from docs/protocol.md.
@Suite struct DashboardFieldsTests {
    func stats(workers: [MP], extra: [(String, MP)] = []) -> HandMessage {
        HandMessage(fields: [
            ("v", .uint(1)), ("t", .str("stats")), ("ts", .uint(1_700_000_000_500)), ("qd", .uint(0)),
            ("q50", .f64(0)), ("q95", .f64(0)), ("q99", .f64(0)), ("if", .uint(0)),
            ("ar", .f64(0)), ("co", .f64(0)), ("dr", .f64(0)), ("wk", .array(workers)),
        ] + extra)
    }

    @Test func batchSizesAndModesDecodeAndRoundTrip() throws {
        let hand = stats(
            workers: [
                .map([("w", .str("a")), ("cr", .uint(2)), ("if", .uint(1)), ("ba", .f64(2.5)), ("bx", .uint(4))]),
                .map([("w", .str("b")), ("cr", .uint(8)), ("if", .uint(0))]),
            ],
            extra: [("cm", .map([("split", .uint(3)), ("offload", .uint(1)), ("future", .uint(9))]))])
        let decoded = try StatsMessage.decode(hand.bytes)
        #expect(decoded.workers[0].batches == StatsMessage.BatchSizes(mean: 2.5, max: 4))
        #expect(decoded.workers[1].batches == nil)
        #expect(decoded.cameraModes == StatsMessage.CameraModes(split: 3, local: 0, offload: 1))
        #expect(try StatsMessage.decode(decoded.encoded()) == decoded)
        // Without them (an older broker), nothing is assumed.
        let old = try StatsMessage.decode(stats(workers: [.map([("w", .str("a")), ("cr", .uint(2)), ("if", .uint(1))])]).bytes)
        #expect(old.workers[0].batches == nil && old.cameraModes == nil)
    }

    @Test func batchSizeRulesHold() {
        func error(_ worker: [(String, MP)]) -> ProtocolError? {
            do {
                _ = try StatsMessage.decode(stats(workers: [.map([("w", .str("a")), ("cr", .uint(2)), ("if", .uint(1))] + worker)]).bytes)
                return nil
            } catch { return error }
        }
        #expect(error([("ba", .f64(2))]) == .missingField("wk[0].bx"))
        #expect(error([("bx", .uint(2))]) == .missingField("wk[0].ba"))
        #expect(error([("ba", .f64(0.5)), ("bx", .uint(2))]) != nil)
        #expect(error([("ba", .f64(3)), ("bx", .uint(2))]) != nil)  // a mean above the largest
        #expect(error([("ba", .f64(1)), ("bx", .uint(0))]) != nil)
        #expect(error([("ba", .f64(2)), ("bx", .uint(2))]) == nil)
    }

    @Test func aReportCarriesItsMode() throws {
        let report = LatencyReport(cameraID: "c", windowMilliseconds: 1000, completed: 0, missed: 1, percentiles: nil, mode: "offload")
        let decoded = try HeartbeatMessage.decode(HeartbeatMessage(latencyReport: report).encoded())
        #expect(decoded.latencyReport?.mode == "offload")
        let empty = LatencyReport(cameraID: "c", windowMilliseconds: 1000, completed: 0, missed: 1, percentiles: nil, mode: "")
        #expect(throws: ProtocolError.self) { try HeartbeatMessage(latencyReport: empty).encoded() }
    }
}
