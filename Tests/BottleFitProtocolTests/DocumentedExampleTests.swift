import BottleFitCore
import BottleFitProtocol
import Testing

/// The hex examples printed in docs/protocol.md, so the document cannot drift from the code.
@Suite struct DocumentedExampleTests {
    static func bytes(_ hex: String) -> [UInt8] {
        hex.split(whereSeparator: \.isWhitespace).map { UInt8($0, radix: 16)! }
    }

    @Test func frameExample() throws {
        let hex = """
            8c a1 76 01 a1 74 a5 66 72 61 6d 65 a1 63 a5 63
            61 6d 2d 31 a1 73 05 a1 6d a3 72 35 30 a1 6b aa
            62 6f 74 74 6c 65 6e 65 63 6b a1 70 c4 04 01 02
            03 04 a2 73 68 93 01 02 02 a2 71 73 ca 3f 00 00
            00 a2 71 7a cc 80 a2 64 6c cf 00 00 01 8b cf e5
            68 fa a2 74 73 cf 00 00 01 8b cf e5 68 00
            """
        let frame = FrameMessage(
            cameraID: "cam-1", sequence: 5, model: "r50",
            payload: .bottleneck(QuantizedTensor(shape: [1, 2, 2], data: [1, 2, 3, 4],
                                                 parameters: QuantizationParameters(scale: 0.5, zeroPoint: 128))),
            deadline: 1_700_000_000_250, sentAt: 1_700_000_000_000)
        #expect(Self.bytes(hex).count == 94)
        #expect(try frame.encoded() == Self.bytes(hex))
        #expect(try FrameMessage.decode(Self.bytes(hex)) == frame)
    }

    @Test func latencyReportExample() throws {
        let hex = """
            83 a1 76 01 a1 74 a9 68 65 61 72 74 62 65 61 74
            a2 6c 72 87 a1 63 a5 63 61 6d 2d 31 a2 77 6d cd
            03 e8 a1 6e 28 a2 6d 69 02 a3 6c 35 30 cb 40 4e
            c0 00 00 00 00 00 a3 6c 39 35 cb 40 56 00 00 00
            00 00 00 a3 6c 39 39 cb 40 58 50 00 00 00 00 00
            """
        let heartbeat = HeartbeatMessage(latencyReport: LatencyReport(
            cameraID: "cam-1", windowMilliseconds: 1000, completed: 40, missed: 2,
            percentiles: LatencyPercentiles(p50: 61.5, p95: 88, p99: 97.25)))
        #expect(Self.bytes(hex).count == 80)
        #expect(try heartbeat.encoded() == Self.bytes(hex))
        #expect(try HeartbeatMessage.decode(Self.bytes(hex)) == heartbeat)
    }

    @Test func creditAndHeartbeatExamples() throws {
        #expect(try CreditMessage(credits: 3).encoded() == Self.bytes("83 a1 76 01 a1 74 a6 63 72 65 64 69 74 a1 6e 03"))
        #expect(try HeartbeatMessage().encoded() == Self.bytes("82 a1 76 01 a1 74 a9 68 65 61 72 74 62 65 61 74"))
    }
}
