import BottleFitProtocol
import ZeroMQ

extension CameraLoop {
    /// Messages handled per socket per turn, so a flood cannot starve frame-taking and timeouts.
    static let receiveBatch = 64

    /// RESULT, ERROR, HEARTBEAT and DISCONNECT from the broker.
    func receiveReplies(from broker: ZMQSocket) {
        let receiveLimits = ZMQReceiveLimits(maxFrames: 4, maxBytes: limits.maxMessageBytes)
        for _ in 0..<Self.receiveBatch {
            let frames: [[UInt8]]
            do {
                guard let received = try broker.tryReceive(limits: receiveLimits) else { return }
                frames = received
            } catch {
                // Too large (already discarded by the wrapper) or a socket failure: count and go on.
                accounting.recordUndecodableMessage()
                continue
            }
            let now = clock.unixMicroseconds()
            // Any message is a sign of life (protocol.md section 10), even one we cannot use.
            policy.heard(at: now / 1000)
            guard frames.count == 2, frames[0].isEmpty else {
                accounting.recordUndecodableMessage()
                continue
            }
            handle(frames[1], now: now)
        }
    }

    private func handle(_ bytes: [UInt8], now: UInt64) {
        let nowMs = now / 1000
        let message: Message
        do {
            message = try Message.decode(bytes, limits: limits)
        } catch {
            // If the broken reply still names one of our frames, settle that frame now instead
            // of waiting for its timeout.
            if let header = try? MessageHeader.peek(bytes, limits: limits), header.cameraID == configuration.cameraID,
               let sequence = header.sequence, let frame = pending.removeValue(forKey: sequence) {
                fallBack(frame, reason: .decodeError, now: now)
            } else {
                accounting.recordUndecodableMessage()
            }
            return
        }
        switch message {
        case .result(let result):
            guard result.cameraID == configuration.cameraID, let frame = pending.removeValue(forKey: result.sequence) else {
                accounting.recordIgnoredReply()  // settled already (late, duplicate) or not ours
                return
            }
            let latency = Double(now &- frame.startMicroseconds) / 1000
            let edgeTime = Double(now &- frame.sentMicroseconds) / 1000
            let edgeBudget = Double(frame.giveUpAt &* 1000 &- frame.sentMicroseconds) / 1000
            policy.record(.result(latencyMilliseconds: edgeTime, budgetMilliseconds: edgeBudget), epoch: frame.epoch, at: nowMs)
            edgeLatency.recordCompleted(latencyMilliseconds: latency)
            accounting.recordCompleted(
                on: .edge, latencyMilliseconds: latency,
                top1: result.classIndices.first, label: frame.label, late: nowMs > frame.deadline)
        case .error(let error):
            handleError(error, now: now)
        case .heartbeat:
            break
        case .disconnect:
            policy.brokerLeft(at: nowMs)
        default:
            accounting.recordIgnoredReply()  // not valid toward a camera
        }
    }

    private func handleError(_ error: ErrorMessage, now: UInt64) {
        let nowMs = now / 1000
        guard error.cameraID == nil || error.cameraID == configuration.cameraID,
              let sequence = error.sequence, let frame = pending.removeValue(forKey: sequence)
        else {
            // An answer naming no pending frame still tells about the edge when it says the
            // broker speaks another version.
            if error.code == .unsupportedVersion { policy.record(.error(error.code), epoch: policy.epoch, at: nowMs) }
            accounting.recordIgnoredReply()
            return
        }
        if error.code == .expired { edgeLatency.recordMissed() }
        if [.badRequest, .tooLarge, .internal].contains(error.code) { logRefusal(error, now: now) }
        let reason = policy.record(.error(error.code, retryAfterMilliseconds: error.retryAfterMilliseconds), epoch: frame.epoch, at: nowMs)
        fallBack(frame, reason: reason ?? .rejected, now: now)
    }

    /// The edge refused a frame it will refuse again (a tail that does not take this head's
    /// output, a payload over its limit): a mistake in the deployment, said at once and then at
    /// most every 10 s with the count since, never silently counted away.
    private func logRefusal(_ error: ErrorMessage, now: UInt64) {
        refusalsUnlogged += 1
        if let last = lastRefusalLog, now < last + 10_000_000 { return }
        logger.warning("the edge refuses this camera's frames", metadata: [
            "code": "\(error.code.rawValue)", "reason": "\(error.text)", "refused_since_last_warning": "\(refusalsUnlogged)",
            "hint": "check that the workers' tail for model '\(configuration.modelName)' takes this head's output",
        ])
        refusalsUnlogged = 0
        lastRefusalLog = now
    }

    func fallBack(_ frame: PendingFrame, reason: DropReason, now: UInt64) {
        fallBack(image: frame.image, label: frame.label, start: frame.startMicroseconds, deadline: frame.deadline,
                 reason: reason, now: now)
    }

    /// DIRECTIVE messages from the controller.
    func receiveDirectives(from socket: ZMQSocket) {
        let receiveLimits = ZMQReceiveLimits(maxFrames: 2, maxBytes: limits.maxMessageBytes)
        for _ in 0..<Self.receiveBatch {
            guard let frames = (try? socket.tryReceive(limits: receiveLimits)) ?? nil else { return }
            guard frames.count == 2, let directive = try? DirectiveMessage.decode(frames[1], limits: limits) else {
                // Invalid directives (unknown mode, other version) are ignored, as the protocol says.
                accounting.recordUndecodableMessage()
                continue
            }
            if policy.apply(directive, at: clock.unixMicroseconds() / 1000) {
                accounting.recordDirectiveObeyed()
                logger.info("directive obeyed", metadata: [
                    "camera": "\(configuration.cameraID)", "s": "\(directive.sequence)", "mode": "\(directive.mode.rawValue)",
                    "valid_until": "\(directive.validUntil)", "reason": "\(directive.reason)",
                ])
            }
        }
    }
}

/// Where the camera's sockets are made and configured, CURVE included.
enum CameraSockets {
    static func make(context: ZMQContext, configuration: CameraConfiguration) throws(ZMQError) -> (broker: ZMQSocket?, directives: ZMQSocket?) {
        let maxMessage = Int64(ProtocolLimits.default.maxMessageBytes)
        var broker: ZMQSocket?
        if configuration.mode != .local, let endpoint = configuration.brokerEndpoint {
            let socket = try ZMQSocket(context, type: .dealer, linger: 1000)
            if let curve = configuration.curve { try socket.makeCurveClient(curve.keys, serverKey: curve.brokerKey) }
            // Not queued for a broker that is not connected: the camera learns at once and computes locally.
            try socket.setOption(.immediate, true)
            try socket.setOption(.maxMessageSize, maxMessage)
            // Bounded: a camera never holds more than its in-flight frames plus heartbeats.
            try socket.setOption(.sendHighWaterMark, Int32(clamping: configuration.maxInFlight * 2 + 16))
            try socket.connect(endpoint)
            broker = socket
        }
        var directives: ZMQSocket?
        // A local camera is the paper's baseline and obeys no directive: no subscription.
        if configuration.mode != .local, let endpoint = configuration.directiveEndpoint {
            let socket = try ZMQSocket(context, type: .sub, linger: 0)
            if let curve = configuration.curve, let controllerKey = curve.controllerKey {
                try socket.makeCurveClient(curve.keys, serverKey: controllerKey)
            }
            try socket.setOption(.maxMessageSize, maxMessage)
            try socket.setOption(.subscribe, Array("directive".utf8))
            try socket.connect(endpoint)
            directives = socket
        }
        return (broker, directives)
    }
}
