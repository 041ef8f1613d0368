import BottleFitProtocol
import Foundation
import Logging
import ZeroMQ

/// The controller thread's work: owns the STATS SUB and the DIRECTIVE PUB, feeds STATS to the
/// policy, and publishes the directive in force (at once on a change, then every `republishInterval`).
final class ControllerLoop {
    let configuration: ControllerConfiguration
    /// The endpoint the PUB socket actually bound (a port chosen for `tcp://host:*`).
    let directiveEndpoint: String
    private let logger: Logger
    private let statsSocket: ZMQSocket
    private let directiveSocket: ZMQSocket
    private let poller = ZMQPoller()
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    private let receiveLimits: ZMQReceiveLimits
    private var policy: ControllerPolicy
    private var counters = ControllerCounters()
    private var sequence: UInt64
    private var directiveReason = "controller started: no frame is sent local"
    private var lastPublishedAt: Duration?

    /// `zapDomain` (CURVE on) is the ZAP domain of the DIRECTIVE publisher.
    init(configuration: ControllerConfiguration, context: ZMQContext, zapDomain: String?, logger: Logger) throws(ZMQError) {
        self.configuration = configuration
        self.logger = logger
        origin = clock.now
        receiveLimits = ZMQReceiveLimits(maxFrames: 4, maxBytes: configuration.limits.maxMessageBytes + 1024)
        statsSocket = try Self.makeSocket(context, .sub, configuration)
        try statsSocket.setOption(.maxMessageSize, Int64(configuration.limits.maxMessageBytes))
        try statsSocket.setOption(.subscribe, Array("stats".utf8))
        directiveSocket = try Self.makeSocket(context, .pub, configuration)
        try directiveSocket.setOption(.sendHighWaterMark, configuration.highWaterMark)
        if let curve = configuration.curve {
            // Before bind and connect: only connections made afterwards take the options.
            try statsSocket.makeCurveClient(curve.keys, serverKey: curve.brokerKey)
            try directiveSocket.makeCurveServer(curve.keys, zapDomain: zapDomain ?? "")
        }
        try directiveSocket.bind(configuration.directiveEndpoint)
        try statsSocket.connect(configuration.statsEndpoint)
        directiveEndpoint = try directiveSocket.option(.lastEndpoint)
        try poller.add(statsSocket)
        policy = ControllerPolicy(settings: configuration.settings, now: .zero)
        // Sequence numbers start at the wall clock in ms, so a restarted controller's directives
        // rank above those its predecessor published (cameras ignore an `s` not above the last).
        sequence = Self.wallClockMilliseconds()
    }

    /// Every controller socket is made here, so a change to both (CURVE, say) is one edit.
    private static func makeSocket(_ context: ZMQContext, _ type: ZMQSocketType, _ configuration: ControllerConfiguration) throws(ZMQError) -> ZMQSocket {
        try ZMQSocket(context, type: type, linger: configuration.linger)
    }

    private var now: Duration { clock.now - origin }

    /// Runs until `shouldStop` says so (checked at least every `pollTimeout`) or the context is
    /// shut down, then closes the sockets. `report` gets the counters and fraction after every turn.
    func run(shouldStop: () -> Bool, report: (ControllerCounters, ControllerPolicy, ControllerDecision?) -> Void) {
        var lastDecision: ControllerDecision?
        publish(now: now)
        report(counters, policy, nil)
        while !shouldStop() {
            let wait = min(configuration.pollTimeout, max(.zero, nextPublication - now))
            do {
                if try poller.poll(timeout: wait) > 0 { lastDecision = try drainStats() ?? lastDecision }
            } catch {
                if error.isTerminated { break }
                logger.error("controller poll failed; stopping", metadata: ["error": "\(error)"])
                break
            }
            if let decision = policy.tick(now: now) {
                record(decision)
                lastDecision = decision
            }
            if now >= nextPublication { publish(now: now) }
            report(counters, policy, lastDecision)
        }
        report(counters, policy, lastDecision)
        for socket in [statsSocket, directiveSocket] {
            do { try socket.close() } catch { logger.warning("closing a controller socket failed", metadata: ["error": "\(error)"]) }
        }
    }

    private var nextPublication: Duration { (lastPublishedAt ?? .zero) + configuration.republishInterval }

    /// Reads the STATS waiting (at most 64 per turn, so the loop keeps its other duties).
    private func drainStats() throws(ZMQError) -> ControllerDecision? {
        var last: ControllerDecision?
        for _ in 0..<64 {
            let frames: [[UInt8]]
            do {
                guard let received = try statsSocket.tryReceive(limits: receiveLimits) else { break }
                frames = received
            } catch {
                if error.isMessageTooLarge { counters.statsRejected += 1; continue }
                throw error
            }
            guard frames.count == 2, frames[0] == Array("stats".utf8) else {
                counters.statsRejected += 1
                logger.debug("discarded a message on the STATS socket", metadata: ["frames": "\(frames.count)"])
                continue
            }
            let stats: StatsMessage
            do {
                stats = try StatsMessage.decode(frames[1], limits: configuration.limits)
            } catch {
                counters.statsRejected += 1
                logger.debug("discarded an invalid STATS", metadata: ["error": "\(error)"])
                continue
            }
            counters.statsReceived += 1
            let decision = policy.observe(stats, now: now)
            record(decision)
            last = decision
        }
        return last
    }

    private func record(_ decision: ControllerDecision) {
        counters.decisions += 1
        var metadata: Logger.Metadata = [
            "fraction": "\(decision.fraction)", "previous": "\(decision.previousFraction)", "condition": "\(decision.condition)",
            "edge_floor": "\(decision.edgeFloor)",
        ]
        if !decision.signals.isEmpty { metadata["signals"] = "\(decision.signals.map(\.rawValue).joined(separator: ","))" }
        switch decision.action {
        case .raise, .lower:
            if decision.action == .raise {
                counters.raises += 1
                for signal in decision.signals { counters.raisesBySignal[signal, default: 0] += 1 }
            } else {
                counters.lowers += 1
            }
            sequence += 1
            directiveReason = decision.reason
            logger.notice("\(decision.action) local share: \(decision.reason)", metadata: metadata)
            publish(now: now)
        case .hold where decision.condition == .silent:
            counters.silences += 1
            logger.warning("\(decision.reason)", metadata: metadata)
        case .hold:
            logger.debug("hold: \(decision.reason)", metadata: metadata)
        }
    }

    /// Publishes the directive in force to the whole fleet (`tf` 1): mode split with edge share
    /// `es` = 1 − fraction, so every camera computes the same share of its frames locally
    /// (fraction 0 sends no `es`, which lifts any cap a camera still obeys).
    private func publish(now: Duration) {
        lastPublishedAt = now
        let validity = UInt64(max(0, configuration.directiveValidity.components.seconds)) * 1000
            + UInt64(configuration.directiveValidity.components.attoseconds / 1_000_000_000_000_000)
        let directive = DirectiveMessage(
            sequence: sequence, target: .fraction(1), mode: .split,
            reason: Self.truncated(directiveReason, to: configuration.limits.maxTextBytes),
            validUntil: Self.wallClockMilliseconds() + validity,
            edgeShare: policy.fraction > 0 ? ControllerPolicy.rounded(1 - policy.fraction) : nil,
            edgeFloor: policy.fraction == 0 && policy.edgeFloor > 0 ? policy.edgeFloor : nil)
        do {
            let body = try directive.encoded(limits: configuration.limits)
            if try directiveSocket.trySend([Array("directive".utf8), body]) {
                counters.directivesPublished += 1
            } else {
                counters.directivesUnsent += 1
            }
        } catch {
            counters.directivesUnsent += 1
            logger.error("could not publish a directive", metadata: ["error": "\(error)"])
        }
    }

    /// Cuts `text` to at most `bytes` UTF-8 bytes on a character boundary (DIRECTIVE `r` is text).
    static func truncated(_ text: String, to bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var result = ""
        for character in text {
            if result.utf8.count + String(character).utf8.count > bytes { break }
            result.append(character)
        }
        return result
    }

    static func wallClockMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
