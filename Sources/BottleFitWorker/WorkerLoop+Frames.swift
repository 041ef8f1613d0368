import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import BottleFitProtocol
import Logging
import ZeroMQ

extension WorkerLoop {
    /// Takes every message waiting on the socket (bounded per turn, so a flood cannot starve
    /// computation), answering at once the frames that cannot be computed.
    func takeWaitingMessages(_ connection: WorkerConnection) throws(ZMQError) {
        let maxPerTurn = configuration.credit + 64
        for _ in 0..<maxPerTurn {
            guard let inbound = try connection.receive() else { return }
            switch inbound {
            case .control(let bytes): handleControl(bytes)
            case .work(let route, let body): try accept(route: route, body: body, connection)
            case .malformed: counters.discarded += 1
            }
        }
    }

    /// Control messages from the broker. Any message already counted as a sign of life; the
    /// broker's DISCONNECT means it is leaving, so the worker stops trusting this connection
    /// at once (its silence timer is expired) and reconnects with back-off.
    private func handleControl(_ bytes: [UInt8]) {
        counters.controlReceived += 1
        guard let message = try? Message.decode(bytes, limits: configuration.limits) else {
            counters.discarded += 1
            return
        }
        if case .disconnect(let d) = message {
            logger.notice("broker sent DISCONNECT; reconnecting", metadata: ["reason": "\(d.reason ?? "")"])
            connection?.markSilent()
        }
    }

    /// Validates a work message against the models and either holds it for a batch or answers
    /// it with an ERROR. Every work message used one credit, so an answered one frees it.
    private func accept(route: [UInt8], body: [UInt8], _ connection: WorkerConnection) throws(ZMQError) {
        counters.received += 1
        let limits = configuration.limits
        let decoded: Result<Message, ProtocolError> = Result { () throws(ProtocolError) in try Message.decode(body, limits: limits) }
        let frame: FrameMessage
        switch decoded {
        case .success(.frame(let f)):
            frame = f
        case .success(let message):
            let header = try? MessageHeader.peek(body, limits: limits)
            return try reject(route: route, sequence: header?.sequence, cameraID: header?.cameraID, .badRequest,
                              "a \(message.type) message is not valid as work for a worker", connection)
        case .failure(let error):
            let reply = ErrorMessage(replyingTo: error, header: try? MessageHeader.peek(body, limits: limits), limits: limits)
            return try reject(route: route, sequence: reply.sequence, cameraID: reply.cameraID, reply.code, reply.text, connection)
        }
        func refuse(_ code: ErrorCode, _ text: String) throws(ZMQError) {
            try reject(route: route, sequence: frame.sequence, cameraID: frame.cameraID, code, text, connection)
        }
        guard let model = models[frame.model] else {
            return try refuse(.unknownModel, "worker \(configuration.workerID) does not serve model \(frame.model)")
        }
        let input: HeldFrame.Input
        switch frame.payload {
        case .bottleneck(let q):
            guard let tail = model.tail else {
                return try refuse(.unknownModel, "worker \(configuration.workerID) serves only JPEG frames of model \(frame.model)")
            }
            guard q.shape == tail.sampleShape else {
                return try refuse(.badRequest, "bottleneck shape \(q.shape) does not match model \(frame.model), which takes \(tail.sampleShape)")
            }
            guard q.parameters.scale.isFinite, q.parameters.scale >= 0 else {
                return try refuse(.badRequest, "quantization scale must be finite and at least 0")
            }
            input = .bottleneck(q)
        case .jpeg(let bytes):
            guard let preprocessor = model.preprocessor else {
                return try refuse(.unknownModel, "worker \(configuration.workerID) serves only bottleneck frames of model \(frame.model)")
            }
            do throws(ImagingError) {
                input = .image(try JPEGCodec.decode(bytes, channels: preprocessor.channels))
            } catch {
                let code: ErrorCode = switch error {
                case .imageTooLarge: .tooLarge
                case .outOfMemory: .internal
                default: .badRequest
                }
                return try refuse(code, "JPEG: \(error)")
            }
        }
        held.append(HeldFrame(
            cameraRoute: route, cameraID: frame.cameraID, sequence: frame.sequence, model: model, input: input,
            deadline: frame.deadline, receivedAt: .now))
    }

    /// Answers a work message with an ERROR and frees its credit.
    private func reject(
        route: [UInt8], sequence: UInt64?, cameraID: String?, _ code: ErrorCode, _ text: String, _ connection: WorkerConnection
    ) throws(ZMQError) {
        let reply = ErrorMessage(sequence: sequence, cameraID: cameraID, code: code,
                                 text: truncated(text, maxBytes: configuration.limits.maxTextBytes))
        try answer(route: route, .error(reply), connection)
        counters.recordError(code)
        logger.debug("frame refused", metadata: [
            "camera": "\(cameraID ?? "?")", "sequence": "\(sequence.map(String.init) ?? "?")", "code": "\(code)", "why": "\(reply.text)"])
    }

    /// Sends an answer and frees the frame's credit; an answer that cannot be queued is counted.
    func answer(route: [UInt8], _ message: Message, _ connection: WorkerConnection) throws(ZMQError) {
        creditToReturn += 1
        guard let bytes = try? message.encoded(limits: configuration.limits),
              try connection.sendAnswer(route: route, bytes)
        else {
            counters.sendsDropped += 1
            return
        }
    }

    /// Computes one batch: the oldest held frame and the next ones that run the same model,
    /// up to `maxBatch`. Frames whose deadline has passed are answered EXPIRED instead.
    func computeOneBatch(_ connection: WorkerConnection) throws(ZMQError) {
        guard let first = held.first else { return }
        var batch: [HeldFrame] = []
        var rest: [HeldFrame] = []
        let now = unixMilliseconds()
        for frame in held {
            if batch.count < configuration.maxBatch && frame.batches(with: first) {
                if frame.deadline < now {
                    try reject(route: frame.cameraRoute, sequence: frame.sequence, cameraID: frame.cameraID, .expired,
                               "deadline \(frame.deadline) passed before computation began (now \(now))", connection)
                } else {
                    batch.append(frame)
                }
            } else {
                rest.append(frame)
            }
        }
        held = rest
        guard !batch.isEmpty, let runner = first.model.runner(for: first.kind) else { return }
        try run(batch, on: runner, connection)
    }

    /// Fills the plan's input in place (dequantize or preprocess), runs it, and answers each frame.
    private func run(_ batch: [HeldFrame], on runner: ModelRunner, _ connection: WorkerConnection) throws(ZMQError) {
        let clock = ContinuousClock()
        let start = clock.now
        let plan: ExecutionPlan
        do throws(EngineError) {
            plan = try runner.plan(batch: batch.count)
        } catch {
            for frame in batch {
                try reject(route: frame.cameraRoute, sequence: frame.sequence, cameraID: frame.cameraID, .internal,
                           "cannot plan batch \(batch.count): \(error)", connection)
            }
            return
        }
        // Checked when the plan was made: both buffers exist and the input holds the batch.
        let input = plan.inputBuffer(runner.inputName)!
        let quantizer = BottleneckQuantizer()
        for (i, frame) in batch.enumerated() {
            let slice = UnsafeMutableBufferPointer(rebasing: input[(i * runner.sampleCount)..<((i + 1) * runner.sampleCount)])
            switch frame.input {
            case .bottleneck(let q):
                q.data.withUnsafeBufferPointer { quantizer.dequantize($0, parameters: q.parameters, into: slice) }
            case .image(let image):
                frame.model.preprocessor!.process(image, into: slice)
            }
        }
        plan.execute()
        let output = plan.outputBuffer(runner.outputName)!
        let computeMilliseconds = milliseconds(start.duration(to: clock.now))
        counters.recordBatch(size: batch.count, computeMilliseconds: computeMilliseconds)
        let classes = output.count / batch.count
        for (i, frame) in batch.enumerated() {
            let row = UnsafeBufferPointer(rebasing: output[(i * classes)..<((i + 1) * classes)])
            guard let top = TopK.softmax(row, k: configuration.topK) else {
                try reject(route: frame.cameraRoute, sequence: frame.sequence, cameraID: frame.cameraID, .internal,
                           "model \(frame.model.name) produced a non-finite output", connection)
                continue
            }
            let waited = milliseconds(frame.receivedAt.duration(to: start))
            counters.frameWait.record(waited / 1000)
            let result = ResultMessage(
                cameraID: frame.cameraID, sequence: frame.sequence, classIndices: top.indices, scores: top.scores,
                queuedMilliseconds: waited,
                computeMilliseconds: computeMilliseconds, batchSize: batch.count, workerID: configuration.workerID)
            try answer(route: frame.cameraRoute, .result(result), connection)
            counters.completed += 1
        }
    }
}

/// A duration in (fractional) milliseconds, as RESULT's "qm" and "cm" carry them.
func milliseconds(_ d: Duration) -> Double {
    let (seconds, attoseconds) = d.components
    return max(0, Double(seconds) * 1000 + Double(attoseconds) / 1e15)
}

/// The longest prefix of whole characters of `s` within `maxBytes` of UTF-8 (ERROR "m" is text).
func truncated(_ s: String, maxBytes: Int) -> String {
    guard s.utf8.count > maxBytes else { return s }
    var out = ""
    var used = 0
    for character in s {
        used += character.utf8.count
        if used > maxBytes { break }
        out.append(character)
    }
    return out
}
