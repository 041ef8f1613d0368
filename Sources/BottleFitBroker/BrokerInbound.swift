import BottleFitProtocol

/// A multipart message from the frontend ROUTER, read and classified. Every failure to read is
/// a case here, never a crash: bytes from a camera are untrusted.
public enum FrontendInput: Sendable, Equatable {
    /// A valid FRAME; `bytes` is the encoded message as received.
    case frame(camera: [UInt8], FrameMessage, bytes: [UInt8])
    /// A HEARTBEAT, with the camera's latency report when it carries one.
    case heartbeat(camera: [UInt8], report: LatencyReport? = nil)
    case disconnect(camera: [UInt8])
    /// A request that cannot be served: answered with `error`, counted as received and dropped.
    case rejected(camera: [UInt8], error: ErrorMessage, reason: DropReason)
    /// Thrown away unanswered (an ERROR, or a non-request of another version), counted.
    case ignored(DiscardReason, detail: String)

    /// Reads `[camera-rid, empty, message]` (docs/protocol.md, section 9).
    public static func classify(_ frames: [[UInt8]], limits: ProtocolLimits = .default) -> FrontendInput {
        guard let camera = frames.first, !camera.isEmpty else {
            return .ignored(.badEnvelope, detail: "frontend message without a routing id")
        }
        guard frames.count == 3, frames[1].isEmpty else {
            // Answer anyway (protocol: "when it can"), naming the frame if the last part says which.
            let header = frames.count >= 2 ? try? MessageHeader.peek(frames[frames.count - 1], limits: limits) : nil
            let error = ErrorMessage(
                sequence: header?.sequence, cameraID: header?.cameraID, code: .badRequest,
                text: "expected [empty delimiter, message] after the routing id, got \(frames.count - 1) frames")
            return .rejected(camera: camera, error: error, reason: .badRequest)
        }
        let body = frames[2]
        let message: Message
        do {
            message = try Message.decode(body, limits: limits)
        } catch {
            let header = try? MessageHeader.peek(body, limits: limits)
            if header?.type == MessageType.error.rawValue {
                return .ignored(.errorMessage, detail: "undecodable ERROR from a camera: \(error)")
            }
            if case .unsupportedVersion = error, let type = header?.type, MessageType.nonRequests.contains(type) {
                return .ignored(.unsupportedVersion, detail: "\(type) of version \(header?.version ?? 0) from a camera")
            }
            let reply = ErrorMessage(replyingTo: error, header: header, limits: limits)
            return .rejected(camera: camera, error: reply, reason: DropReason(answering: reply.code))
        }
        switch message {
        case .frame(let frame): return .frame(camera: camera, frame, bytes: body)
        case .heartbeat(let heartbeat): return .heartbeat(camera: camera, report: heartbeat.latencyReport)
        case .disconnect: return .disconnect(camera: camera)
        case .error(let error): return .ignored(.errorMessage, detail: "ERROR \(error.code) from a camera: \(error.text)")
        default:
            let header = try? MessageHeader.peek(body, limits: limits)
            let error = ErrorMessage(
                sequence: header?.sequence, cameraID: header?.cameraID, code: .badRequest,
                text: "a \(message.type) message is not valid from a camera")
            return .rejected(camera: camera, error: error, reason: .badRequest)
        }
    }
}

/// A multipart message from the backend ROUTER, read and classified.
public enum BackendInput: Sendable, Equatable {
    case ready(worker: [UInt8], ReadyMessage)
    case credit(worker: [UInt8], Int)
    case heartbeat(worker: [UInt8])
    case disconnect(worker: [UInt8])
    /// A RESULT or ERROR for a frame (the 4-frame work layout).
    case answer(worker: [UInt8], WorkerAnswer)
    /// Thrown away and counted; `reply` (BAD_REQUEST, UNSUPPORTED_VERSION) goes back to the worker
    /// when the message deserves one.
    case rejected(worker: [UInt8], reply: ErrorMessage?, reason: DiscardReason, detail: String)

    /// Reads `[worker-rid, empty, message]` (control) or `[worker-rid, empty, camera-rid, empty, answer]` (work).
    public static func classify(_ frames: [[UInt8]], limits: ProtocolLimits = .default) -> BackendInput {
        guard let worker = frames.first, !worker.isEmpty else {
            return .rejected(worker: [], reply: nil, reason: .badEnvelope, detail: "backend message without a routing id")
        }
        if frames.count == 3 && frames[1].isEmpty {
            return control(worker: worker, body: frames[2], limits: limits)
        }
        if frames.count == 5 && frames[1].isEmpty && frames[3].isEmpty && (1...255).contains(frames[2].count) {
            return answer(worker: worker, camera: frames[2], body: frames[4], limits: limits)
        }
        // Protocol: any other layout is discarded and counted.
        return .rejected(worker: worker, reply: nil, reason: .badWorkerMessage, detail: "wrong layout: \(frames.count) frames")
    }

    private static func control(worker: [UInt8], body: [UInt8], limits: ProtocolLimits) -> BackendInput {
        let message: Message
        do {
            message = try Message.decode(body, limits: limits)
        } catch {
            return undecodable(worker: worker, body: body, error: error, limits: limits)
        }
        switch message {
        case .ready(let ready): return .ready(worker: worker, ready)
        case .credit(let credit): return .credit(worker: worker, credit.credits)
        case .heartbeat: return .heartbeat(worker: worker)
        case .disconnect: return .disconnect(worker: worker)
        case .error(let error):
            return .rejected(worker: worker, reply: nil, reason: .errorMessage, detail: "ERROR \(error.code) from a worker: \(error.text)")
        default:
            let reply = ErrorMessage(sequence: nil, cameraID: nil, code: .badRequest, text: "a \(message.type) message is not valid as worker control")
            return .rejected(worker: worker, reply: reply, reason: .badWorkerMessage, detail: "\(message.type) on the control layout")
        }
    }

    private static func answer(worker: [UInt8], camera: [UInt8], body: [UInt8], limits: ProtocolLimits) -> BackendInput {
        let message: Message
        do {
            message = try Message.decode(body, limits: limits)
        } catch {
            // A RESULT that does not decode but names its frame ("c" and "s" readable): the camera
            // gets INTERNAL for it at once, as for a worker's own failure, rather than waiting for
            // WORKER_LOST; the broker never forwards what it could not decode.
            if let header = try? MessageHeader.peek(body, limits: limits), header.type == MessageType.result.rawValue,
               let cameraID = header.cameraID, let sequence = header.sequence,
               let reply = try? Message.error(Self.malformedResult(error, header: header, limits: limits)).encoded(limits: limits) {
                let key = FrameKey(cameraRoutingID: camera, cameraID: cameraID, sequence: sequence)
                return .answer(worker: worker, WorkerAnswer(frame: key, body: reply, errorCode: .internal))
            }
            return undecodable(worker: worker, body: body, error: error, limits: limits)
        }
        switch message {
        case .result(let result):
            let key = FrameKey(cameraRoutingID: camera, cameraID: result.cameraID, sequence: result.sequence)
            return .answer(worker: worker, WorkerAnswer(frame: key, body: body, batchSize: result.batchSize))
        case .error(let error):
            guard let cameraID = error.cameraID, let sequence = error.sequence else {
                return .rejected(worker: worker, reply: nil, reason: .badWorkerMessage, detail: "ERROR answer without \"c\" and \"s\"")
            }
            let key = FrameKey(cameraRoutingID: camera, cameraID: cameraID, sequence: sequence)
            return .answer(worker: worker, WorkerAnswer(frame: key, body: body, errorCode: error.code))
        default:
            let reply = ErrorMessage(sequence: nil, cameraID: nil, code: .badRequest, text: "a \(message.type) message is not an answer")
            return .rejected(worker: worker, reply: reply, reason: .badWorkerMessage, detail: "\(message.type) on the work layout")
        }
    }

    /// INTERNAL for the camera whose RESULT the worker garbled, naming what was wrong with it.
    private static func malformedResult(_ error: ProtocolError, header: MessageHeader, limits: ProtocolLimits) -> ErrorMessage {
        var reply = ErrorMessage(replyingTo: error, header: header, limits: limits)
        reply.code = .internal
        return reply
    }

    /// A worker message that does not decode: answered BAD_REQUEST (or UNSUPPORTED_VERSION for a
    /// request of another version), except ERRORs and non-requests, which are never answered.
    private static func undecodable(worker: [UInt8], body: [UInt8], error: ProtocolError, limits: ProtocolLimits) -> BackendInput {
        let header = try? MessageHeader.peek(body, limits: limits)
        if header?.type == MessageType.error.rawValue {
            return .rejected(worker: worker, reply: nil, reason: .errorMessage, detail: "undecodable ERROR from a worker: \(error)")
        }
        if case .unsupportedVersion = error {
            if let type = header?.type, MessageType.nonRequests.contains(type) {
                return .rejected(worker: worker, reply: nil, reason: .unsupportedVersion, detail: "\(type) of version \(header?.version ?? 0)")
            }
            let reply = ErrorMessage(replyingTo: error, header: header, limits: limits)
            return .rejected(worker: worker, reply: reply, reason: .unsupportedVersion, detail: "\(error)")
        }
        let reply = ErrorMessage(replyingTo: error, header: header, limits: limits)
        return .rejected(worker: worker, reply: reply, reason: .badWorkerMessage, detail: "\(error)")
    }
}

extension MessageType {
    /// Version-1 types that carry no request: one of these in another version is dropped
    /// unanswered (protocol section 2). FRAME, READY and unknown types are requests.
    static let nonRequests: Set<String> = Set([
        MessageType.result, .error, .credit, .heartbeat, .disconnect, .stats, .directive,
    ].map(\.rawValue))
}

extension DropReason {
    /// The drop reason for a request answered with `code`.
    init(answering code: ErrorCode) {
        switch code {
        case .unsupportedVersion: self = .unsupportedVersion
        case .tooLarge: self = .tooLarge
        case .busy: self = .busy
        case .expired: self = .expired
        case .unknownModel: self = .unknownModel
        case .workerLost: self = .workerLost
        default: self = .badRequest
        }
    }
}

extension BrokerScheduler {
    /// Applies a classified camera message.
    public mutating func handle(_ input: FrontendInput, now: BrokerTime) -> [BrokerAction] {
        switch input {
        case .frame(let camera, let frame, let bytes): return receiveFrame(frame, bytes: bytes, from: camera, now: now)
        case .heartbeat(let camera, let report): return cameraHeartbeat(from: camera, report: report, now: now)
        case .disconnect(let camera): return cameraDisconnected(camera, now: now)
        case .rejected(let camera, let error, let reason): return rejectRequest(from: camera, error: error, reason: reason, now: now)
        case .ignored(let reason, let detail): return discard(reason, detail: detail)
        }
    }

    /// Applies a classified worker message. Whatever it is, it proves the worker alive.
    public mutating func handle(_ input: BackendInput, now: BrokerTime) -> [BrokerAction] {
        switch input {
        case .ready(let worker, let ready): return workerReady(ready, from: worker, now: now)
        case .credit(let worker, let n): return workerCredit(n, from: worker, now: now)
        case .heartbeat(let worker): return workerHeartbeat(from: worker, now: now)
        case .disconnect(let worker): return workerDisconnected(worker, now: now)
        case .answer(let worker, let answer): return workerAnswered(answer, from: worker, now: now)
        case .rejected(let worker, let reply, let reason, let detail):
            workerHeard(from: worker, now: now)
            if let reply, !worker.isEmpty { outbox.append(.control(worker: worker, message: .error(reply))) }
            return discard(reason, detail: detail)
        }
    }
}
