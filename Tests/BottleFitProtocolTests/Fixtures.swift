import BottleFitTestSupport
import BottleFitCore
import BottleFitProtocol

/// One valid example of every message, both as a Swift value and built by hand from docs/protocol.md.
enum Fixtures {
    static let bottleneckData: [UInt8] = (0..<(2 * 3 * 4)).map { UInt8($0 * 7 % 256) }

    static let frame = FrameMessage(
        cameraID: "cam-0001", sequence: 42, model: "resnet50-bottlefit-c12",
        payload: .bottleneck(QuantizedTensor(
            shape: [2, 3, 4], data: bottleneckData,
            parameters: QuantizationParameters(scale: 0.0625, zeroPoint: 17))),
        deadline: 1_700_000_000_250, sentAt: 1_700_000_000_000, label: 281)

    static let handFrame = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("frame")),
        ("c", .str("cam-0001")), ("s", .uint(42)), ("m", .str("resnet50-bottlefit-c12")),
        ("k", .str("bottleneck")), ("p", .bin(bottleneckData)),
        ("sh", .array([.uint(2), .uint(3), .uint(4)])), ("qs", .f32(0.0625)), ("qz", .uint(17)),
        ("dl", .uint(1_700_000_000_250)), ("ts", .uint(1_700_000_000_000)), ("lb", .uint(281)),
    ])

    static let jpegFrame = FrameMessage(
        cameraID: "cam-0002", sequence: 7, model: "resnet50",
        payload: .jpeg([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]),
        deadline: 1_700_000_001_000, sentAt: 1_700_000_000_900)

    static let handJPEGFrame = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("frame")),
        ("c", .str("cam-0002")), ("s", .uint(7)), ("m", .str("resnet50")),
        ("k", .str("jpeg")), ("p", .bin([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9])),
        ("dl", .uint(1_700_000_001_000)), ("ts", .uint(1_700_000_000_900)),
    ])

    static let result = ResultMessage(
        cameraID: "cam-0001", sequence: 42, classIndices: [281, 285, 282], scores: [0.75, 0.125, 0.0625],
        queuedMilliseconds: 3.5, computeMilliseconds: 11.25, batchSize: 4, workerID: "tail-a")

    static let handResult = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("result")),
        ("c", .str("cam-0001")), ("s", .uint(42)),
        ("ki", .array([.uint(281), .uint(285), .uint(282)])),
        ("ks", .array([.f32(0.75), .f32(0.125), .f32(0.0625)])),
        ("qm", .f64(3.5)), ("cm", .f64(11.25)), ("b", .uint(4)), ("w", .str("tail-a")),
    ])

    static let error = ErrorMessage(sequence: 42, cameraID: "cam-0001", code: .busy, text: "queue full", retryAfterMilliseconds: 200)

    static let handError = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("error")),
        ("s", .uint(42)), ("c", .str("cam-0001")), ("e", .str("BUSY")), ("m", .str("queue full")), ("ra", .uint(200)),
    ])

    static let ready = ReadyMessage(workerID: "tail-a", models: ["resnet50-bottlefit-c12", "resnet50"], credit: 8)

    static let handReady = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("ready")),
        ("w", .str("tail-a")), ("ms", .array([.str("resnet50-bottlefit-c12"), .str("resnet50")])), ("cr", .uint(8)),
    ])

    static let credit = CreditMessage(credits: 3)
    static let handCredit = HandMessage(fields: [("v", .uint(1)), ("t", .str("credit")), ("n", .uint(3))])

    static let heartbeat = HeartbeatMessage()
    static let handHeartbeat = HandMessage(fields: [("v", .uint(1)), ("t", .str("heartbeat"))])

    static let report = LatencyReport(
        cameraID: "cam-0001", windowMilliseconds: 1000, completed: 40, missed: 2,
        percentiles: LatencyPercentiles(p50: 61.5, p95: 88, p99: 97.25))
    static let reportingHeartbeat = HeartbeatMessage(latencyReport: report)
    static let handReport = MP.map([
        ("c", .str("cam-0001")), ("wm", .uint(1000)), ("n", .uint(40)), ("mi", .uint(2)),
        ("l50", .f64(61.5)), ("l95", .f64(88)), ("l99", .f64(97.25)),
    ])
    static let handReportingHeartbeat = HandMessage(fields: [("v", .uint(1)), ("t", .str("heartbeat")), ("lr", handReport)])

    /// A window in which every edge frame missed: no percentiles.
    static let missesOnlyHeartbeat = HeartbeatMessage(latencyReport: LatencyReport(
        cameraID: "cam-0002", windowMilliseconds: 1003, completed: 0, missed: 7, percentiles: nil))
    static let handMissesOnlyHeartbeat = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("heartbeat")),
        ("lr", .map([("c", .str("cam-0002")), ("wm", .uint(1003)), ("n", .uint(0)), ("mi", .uint(7))])),
    ])

    static let disconnect = DisconnectMessage(reason: "SIGTERM")
    static let handDisconnect = HandMessage(fields: [("v", .uint(1)), ("t", .str("disconnect")), ("r", .str("SIGTERM"))])

    static let stats = StatsMessage(
        timestamp: 1_700_000_000_500, queueDepth: 12, queueTimeP50: 2.5, queueTimeP95: 9, queueTimeP99: 15.5,
        inFlight: 6, arrivalRate: 120, completionRate: 118.5, dropRate: 1.5,
        workers: [.init(id: "tail-a", credit: 2, inFlight: 6), .init(id: "tail-b", credit: 8, inFlight: 0)])

    static let handStats = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("stats")),
        ("ts", .uint(1_700_000_000_500)), ("qd", .uint(12)),
        ("q50", .f64(2.5)), ("q95", .f64(9)), ("q99", .f64(15.5)), ("if", .uint(6)),
        ("ar", .f64(120)), ("co", .f64(118.5)), ("dr", .f64(1.5)),
        ("wk", .array([
            .map([("w", .str("tail-a")), ("cr", .uint(2)), ("if", .uint(6))]),
            .map([("w", .str("tail-b")), ("cr", .uint(8)), ("if", .uint(0))]),
        ])),
    ])

    static let cameraStats = StatsMessage(
        timestamp: 1_700_000_000_750, queueDepth: 0, queueTimeP50: 0, queueTimeP95: 0.5, queueTimeP99: 1,
        inFlight: 1, arrivalRate: 20, completionRate: 20, dropRate: 0, workers: [.init(id: "tail-a", credit: 7, inFlight: 1)],
        cameraLatency: CameraLatencySummary(
            cameras: 3, completed: 118, missed: 4, percentiles: LatencyPercentiles(p50: 60.25, p95: 91.5, p99: 120)))

    static let handCameraStats = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("stats")),
        ("ts", .uint(1_700_000_000_750)), ("qd", .uint(0)),
        ("q50", .f64(0)), ("q95", .f64(0.5)), ("q99", .f64(1)), ("if", .uint(1)),
        ("ar", .f64(20)), ("co", .f64(20)), ("dr", .f64(0)),
        ("wk", .array([.map([("w", .str("tail-a")), ("cr", .uint(7)), ("if", .uint(1))])])),
        ("lc", .uint(3)), ("ln", .uint(118)), ("lm", .uint(4)), ("l50", .f64(60.25)), ("l95", .f64(91.5)), ("l99", .f64(120)),
    ])

    /// A broker that aggregates reports but heard none: counts without percentiles.
    static let quietCameraStats = StatsMessage(
        timestamp: 1_700_000_001_000, queueDepth: 0, queueTimeP50: 0, queueTimeP95: 0, queueTimeP99: 0,
        inFlight: 0, arrivalRate: 0, completionRate: 0, dropRate: 0, workers: [],
        cameraLatency: CameraLatencySummary(cameras: 0, completed: 0, missed: 0, percentiles: nil))

    static let handQuietCameraStats = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("stats")),
        ("ts", .uint(1_700_000_001_000)), ("qd", .uint(0)),
        ("q50", .f64(0)), ("q95", .f64(0)), ("q99", .f64(0)), ("if", .uint(0)),
        ("ar", .f64(0)), ("co", .f64(0)), ("dr", .f64(0)), ("wk", .array([])),
        ("lc", .uint(0)), ("ln", .uint(0)), ("lm", .uint(0)),
    ])

    static let directive = DirectiveMessage(
        sequence: 9, target: .cameras(["cam-0001", "cam-0003"]), mode: .local,
        reason: "queue p95 above 50 ms", validUntil: 1_700_000_010_000)

    static let handDirective = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("directive")), ("s", .uint(9)),
        ("tc", .array([.str("cam-0001"), .str("cam-0003")])), ("md", .str("local")),
        ("r", .str("queue p95 above 50 ms")), ("vu", .uint(1_700_000_010_000)),
    ])

    static let fractionDirective = DirectiveMessage(
        sequence: 10, target: .fraction(0.25), mode: .split, reason: "recovering", validUntil: 1_700_000_020_000)

    static let handFractionDirective = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("directive")), ("s", .uint(10)),
        ("tf", .f64(0.25)), ("md", .str("split")), ("r", .str("recovering")), ("vu", .uint(1_700_000_020_000)),
    ])

    static let floorDirective = DirectiveMessage(
        sequence: 11, target: .fraction(1), mode: .split, reason: "edge has room", validUntil: 1_700_000_030_000, edgeFloor: 0.75)

    static let handFloorDirective = HandMessage(fields: [
        ("v", .uint(1)), ("t", .str("directive")), ("s", .uint(11)),
        ("tf", .f64(1)), ("md", .str("split")), ("r", .str("edge has room")), ("vu", .uint(1_700_000_030_000)), ("ef", .f64(0.75)),
    ])

    /// Every fixture: the Swift value and its hand-built bytes.
    static let all: [(Message, HandMessage)] = [
        (.frame(frame), handFrame), (.frame(jpegFrame), handJPEGFrame),
        (.result(result), handResult), (.error(error), handError), (.ready(ready), handReady),
        (.credit(credit), handCredit), (.heartbeat(heartbeat), handHeartbeat),
        (.heartbeat(reportingHeartbeat), handReportingHeartbeat), (.heartbeat(missesOnlyHeartbeat), handMissesOnlyHeartbeat),
        (.stats(cameraStats), handCameraStats), (.stats(quietCameraStats), handQuietCameraStats),
        (.disconnect(disconnect), handDisconnect), (.stats(stats), handStats),
        (.directive(directive), handDirective), (.directive(fractionDirective), handFractionDirective),
        (.directive(floorDirective), handFloorDirective),
    ]
}
