import BottleFitBroker
import BottleFitCore
import BottleFitProtocol
import Testing

/// Drives a `BrokerScheduler` on a simulated timeline and checks, after every call, that every
/// frame is accounted for and that the counters' gauges match the real state.
struct SchedulerHarness {
    static let epoch: UInt64 = 1_700_000_000_000
    var scheduler: BrokerScheduler
    /// Milliseconds since `epoch` on both clocks.
    var elapsed: UInt64 = 0
    /// Every action returned so far, in order.
    var history: [BrokerAction] = []

    init(policy: BrokerPolicy = .testing) {
        scheduler = BrokerScheduler(policy: policy, now: BrokerTime(unixMilliseconds: Self.epoch, monotonic: .zero))
    }

    var now: BrokerTime { BrokerTime(unixMilliseconds: Self.epoch + elapsed, monotonic: .milliseconds(Int64(elapsed))) }
    var counters: BrokerCounters { scheduler.counters }

    /// Runs one scheduler call and checks the frame balance.
    @discardableResult
    mutating func run(_ body: (inout BrokerScheduler, BrokerTime) -> [BrokerAction],
                      sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        let actions = body(&scheduler, now)
        history += actions
        let c = scheduler.counters
        #expect(c.isBalanced, "unbalanced: \(c)", sourceLocation: sourceLocation)
        #expect(c.queued == scheduler.queueDepth && c.inFlight == scheduler.inFlightCount, sourceLocation: sourceLocation)
        return actions
    }

    /// Moves time forward and ticks.
    @discardableResult
    mutating func advance(_ milliseconds: UInt64, sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        elapsed += milliseconds
        return run({ s, t in s.tick(now: t) }, sourceLocation: sourceLocation)
    }

    static func cameraRID(_ camera: String) -> [UInt8] { Array("rid-\(camera)".utf8) }
    static func workerRID(_ worker: String) -> [UInt8] { Array("wrk-\(worker)".utf8) }

    static func key(_ camera: String, _ sequence: UInt64) -> FrameKey {
        FrameKey(cameraRoutingID: cameraRID(camera), cameraID: camera, sequence: sequence)
    }

    /// A valid 1x2x2 bottleneck FRAME.
    static func frameMessage(_ camera: String, _ sequence: UInt64, model: String, deadline: UInt64) -> FrameMessage {
        FrameMessage(
            cameraID: camera, sequence: sequence, model: model,
            payload: .bottleneck(QuantizedTensor(
                shape: [1, 2, 2], data: [1, 2, 3, 4], parameters: QuantizationParameters(scale: 0.5, zeroPoint: 128))),
            deadline: deadline, sentAt: deadline &- 1000)
    }

    /// A camera sends frame `sequence`, due `deadlineIn` ms from now.
    @discardableResult
    mutating func frame(_ camera: String, _ sequence: UInt64, model: String = "m", deadlineIn: Int64 = 1000,
                        sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        let deadline = UInt64(Int64(now.unixMilliseconds) + deadlineIn)
        let message = Self.frameMessage(camera, sequence, model: model, deadline: deadline)
        let bytes = try! message.encoded()
        return run({ s, t in s.receiveFrame(message, bytes: bytes, from: Self.cameraRID(camera), now: t) }, sourceLocation: sourceLocation)
    }

    @discardableResult
    mutating func ready(_ worker: String, models: [String] = ["m"], credit: Int,
                        sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        let ready = ReadyMessage(workerID: worker, models: models, credit: credit)
        return run({ s, t in s.workerReady(ready, from: Self.workerRID(worker), now: t) }, sourceLocation: sourceLocation)
    }

    @discardableResult
    mutating func credit(_ worker: String, _ n: Int, sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        run({ s, t in s.workerCredit(n, from: Self.workerRID(worker), now: t) }, sourceLocation: sourceLocation)
    }

    @discardableResult
    mutating func heartbeat(_ worker: String) -> [BrokerAction] {
        run { s, t in s.workerHeartbeat(from: Self.workerRID(worker), now: t) }
    }

    @discardableResult
    mutating func disconnect(_ worker: String) -> [BrokerAction] {
        run { s, t in s.workerDisconnected(Self.workerRID(worker), now: t) }
    }

    /// `worker` answers `key` with a RESULT (or an ERROR of `code`); `batch` is the RESULT's `b`
    /// as the inbound classifier passes it on (nil: left out, as before batch sizes were tracked).
    @discardableResult
    mutating func answer(_ worker: String, _ key: FrameKey, code: ErrorCode? = nil, batch: Int? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) -> [BrokerAction] {
        let body: [UInt8]
        if let code {
            body = try! ErrorMessage(sequence: key.sequence, cameraID: key.cameraID, code: code, text: "").encoded()
        } else {
            body = try! ResultMessage(
                cameraID: key.cameraID, sequence: key.sequence, classIndices: [7], scores: [0.9],
                queuedMilliseconds: 1, computeMilliseconds: 2, batchSize: batch ?? 1, workerID: worker).encoded()
        }
        let answer = WorkerAnswer(frame: key, body: body, errorCode: code, batchSize: code == nil ? batch : nil)
        return run({ s, t in s.workerAnswered(answer, from: Self.workerRID(worker), now: t) }, sourceLocation: sourceLocation)
    }
}

extension BrokerPolicy {
    /// Defaults with a small queue, so the tests reach its bound quickly.
    static var testing: BrokerPolicy {
        var policy = BrokerPolicy()
        policy.queueCapacity = 8
        return policy
    }
}

extension Array where Element == BrokerAction {
    /// FRAMEs sent to workers: worker name (from its routing id) and frame.
    var dispatches: [(worker: String, frame: FrameKey)] {
        compactMap {
            guard case .dispatch(let worker, let frame, _) = $0 else { return nil }
            return (String(decoding: worker.dropFirst(4), as: UTF8.self), frame)
        }
    }

    /// The frames dispatched, as "camera#sequence".
    var dispatchedFrames: [String] { dispatches.map { "\($0.frame)" } }

    /// ERRORs sent to cameras, with the routing id they went to.
    var errors: [(camera: [UInt8], error: ErrorMessage)] {
        compactMap {
            guard case .reply(let camera, .error(let error)) = $0 else { return nil }
            return (camera, error)
        }
    }

    /// The ERROR codes sent to cameras, each with "camera#sequence".
    var errorCodes: [String] { errors.map { "\($0.error.code)@\($0.error.cameraID ?? "?")#\($0.error.sequence.map(String.init) ?? "?")" } }

    /// Answers forwarded to cameras.
    var forwards: [(camera: [UInt8], body: [UInt8])] {
        compactMap {
            guard case .forward(let camera, let body) = $0 else { return nil }
            return (camera, body)
        }
    }

    /// Control messages to workers, by worker name.
    var controls: [(worker: String, message: Message)] {
        compactMap {
            guard case .control(let worker, let message) = $0 else { return nil }
            return (String(decoding: worker.dropFirst(4), as: UTF8.self), message)
        }
    }

    var published: [StatsMessage] {
        compactMap {
            guard case .publish(let stats) = $0 else { return nil }
            return stats
        }
    }
}
