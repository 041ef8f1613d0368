import BottleFitProtocol
import Logging
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The endpoints the broker's sockets are bound to, with the ports libzmq chose for `tcp://host:*`.
public struct BrokerEndpoints: Sendable, Equatable {
    public var frontend: String
    public var backend: String
    public var stats: String
}

/// The broker's socket side: made on the broker thread, it owns the frontend and backend
/// ROUTERs and the stats PUB, and moves messages between them and the `BrokerScheduler`.
///
/// Not `Sendable`: its sockets belong to the thread that made it (STYLE: one socket, one thread).
final class BrokerLoop {
    private let configuration: BrokerConfiguration
    private let logger: Logger
    private let frontend: ZMQSocket
    private let backend: ZMQSocket
    private let statsSocket: ZMQSocket
    private let poller = ZMQPoller()
    private var scheduler: BrokerScheduler
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    /// Set when libzmq reports the context terminated: nothing can be sent any more.
    private var contextTerminated = false
    /// Bounds on one received message: the envelope plus the protocol's whole-message limit.
    private let receiveLimits: ZMQReceiveLimits

    let endpoints: BrokerEndpoints

    /// Makes and binds the sockets. Throws if an endpoint cannot be bound.
    /// `zapDomains` (CURVE on) names the ZAP domain of each socket ("frontend", "backend", "stats").
    init(configuration: BrokerConfiguration, context: ZMQContext, zapDomains: [String: String]?, logger: Logger) throws(ZMQError) {
        self.configuration = configuration
        self.logger = logger
        origin = clock.now
        let limits = configuration.policy.limits
        receiveLimits = ZMQReceiveLimits(maxFrames: 8, maxBytes: limits.maxMessageBytes + 1024)
        frontend = try Self.makeRouter(context, configuration)
        backend = try Self.makeRouter(context, configuration)
        statsSocket = try ZMQSocket(context, type: .pub, linger: configuration.linger)
        try statsSocket.setOption(.sendHighWaterMark, 1000)
        if let curve = configuration.curve, let zapDomains {
            // Set before binding: only connections made afterwards take the options.
            for (socket, name) in [(frontend, "frontend"), (backend, "backend"), (statsSocket, "stats")] {
                try socket.makeCurveServer(curve.keys, zapDomain: zapDomains[name] ?? "")
            }
        }
        try frontend.bind(configuration.frontendEndpoint)
        try backend.bind(configuration.backendEndpoint)
        try statsSocket.bind(configuration.statsEndpoint)
        endpoints = BrokerEndpoints(
            frontend: try frontend.option(.lastEndpoint),
            backend: try backend.option(.lastEndpoint),
            stats: try statsSocket.option(.lastEndpoint))
        try poller.add(frontend)
        try poller.add(backend)
        scheduler = BrokerScheduler(policy: configuration.policy, now: BrokerTime(unixMilliseconds: Self.wallClockMilliseconds(), monotonic: .zero))
    }

    /// Every broker ROUTER is configured here, so a change to all hops (CURVE, say) is one edit.
    private static func makeRouter(_ context: ZMQContext, _ configuration: BrokerConfiguration) throws(ZMQError) -> ZMQSocket {
        let socket = try ZMQSocket(context, type: .router, linger: configuration.linger)
        // A reply to a vanished peer fails (EHOSTUNREACH) and is counted instead of vanishing.
        try socket.setOption(.routerMandatory, true)
        try socket.setOption(.sendHighWaterMark, configuration.highWaterMark)
        try socket.setOption(.receiveHighWaterMark, configuration.highWaterMark)
        // libzmq drops a peer announcing a larger message before allocating for it.
        try socket.setOption(.maxMessageSize, Int64(configuration.policy.limits.maxMessageBytes))
        return socket
    }

    /// Serves until `shouldStop` says so (checked at least every `pollTimeout`) or the context is
    /// shut down; then answers what it holds, says DISCONNECT and closes the sockets.
    /// `report` receives the counters and the latest STATS after every turn.
    func run(shouldStop: () -> Bool, report: (BrokerCounters, StatsMessage?) -> Void) {
        logger.info("broker serving", metadata: [
            "frontend": "\(endpoints.frontend)", "backend": "\(endpoints.backend)", "stats": "\(endpoints.stats)",
        ])
        var lastStats: StatsMessage?
        while !shouldStop() && !contextTerminated {
            do {
                _ = try poller.poll(timeout: configuration.pollTimeout)
            } catch {
                if error.isTerminated { break }
                logger.error("zmq_poll failed; the broker stops", metadata: ["error": "\(error)"])
                break
            }
            if poller.events(at: 0).contains(.readable) { drain(frontend, isFrontend: true) }
            if poller.events(at: 1).contains(.readable) { drain(backend, isFrontend: false) }
            for action in scheduler.tick(now: now()) {
                if case .publish(let stats) = action { lastStats = stats }
                perform(action)
            }
            report(scheduler.counters, lastStats)
        }
        perform(scheduler.shutdown(now: now()))
        report(scheduler.counters, lastStats)
        for socket in [frontend, backend, statsSocket] {
            do { try socket.close() } catch { logger.warning("closing a socket failed", metadata: ["error": "\(error)"]) }
        }
        logger.info("broker stopped", metadata: ["counters": "\(scheduler.counters)"])
    }

    /// Reads up to `receiveBatch` waiting messages from one socket.
    private func drain(_ socket: ZMQSocket, isFrontend: Bool) {
        let limits = configuration.policy.limits
        for _ in 0..<configuration.receiveBatch {
            let frames: [[UInt8]]
            do {
                guard let received = try socket.tryReceive(limits: receiveLimits) else { return }
                frames = received
            } catch {
                if error.isMessageTooLarge {
                    perform(scheduler.discard(.oversized, detail: "\(error)"))
                    continue
                }
                if error.isTerminated { contextTerminated = true } else {
                    logger.error("receive failed", metadata: ["error": "\(error)"])
                }
                return
            }
            let actions = isFrontend
                ? scheduler.handle(FrontendInput.classify(frames, limits: limits), now: now())
                : scheduler.handle(BackendInput.classify(frames, limits: limits), now: now())
            perform(actions)
        }
    }

    private func perform(_ actions: [BrokerAction]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: BrokerAction) {
        switch action {
        case .reply(let camera, let message):
            guard let body = encode(message) else { return }
            if !send(frontend, [camera, [], body]) { undeliverable("reply to a camera") }
        case .forward(let camera, let body):
            if !send(frontend, [camera, [], body]) { undeliverable("answer to a camera") }
        case .dispatch(let worker, let frame, let body):
            guard scheduler.holds(worker, frame) else { return }
            if !send(backend, [worker, [], frame.cameraRoutingID, [], body]) {
                perform(scheduler.dispatchFailed(to: worker, frame: frame, now: now()))
            }
        case .control(let worker, let message):
            guard let body = encode(message) else { return }
            if !send(backend, [worker, [], body]) { undeliverable("control message to a worker") }
        case .publish(let stats):
            guard let body = encode(stats.message) else { return }
            // PUB never blocks: at its high-water mark libzmq drops for the slow subscriber.
            _ = send(statsSocket, [Array("stats".utf8), body])
        case .note(let event):
            log(event)
        }
    }

    private func undeliverable(_ what: String) {
        perform(scheduler.discard(.undeliverable, detail: what))
    }

    /// Sends without blocking. False when libzmq refused: would block, or unknown peer (EHOSTUNREACH).
    private func send(_ socket: ZMQSocket, _ frames: [[UInt8]]) -> Bool {
        guard !contextTerminated else { return false }
        do {
            return try socket.trySend(frames)
        } catch {
            if error.isTerminated { contextTerminated = true }
            else if !error.isHostUnreachable { logger.error("send failed", metadata: ["error": "\(error)"]) }
            return false
        }
    }

    private func encode(_ message: Message) -> [UInt8]? {
        do {
            return try message.encoded(limits: configuration.policy.limits)
        } catch {
            // Only the broker's own messages are encoded here; failing is a bug worth a loud line.
            logger.error("cannot encode a \(message.type) message", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func log(_ event: BrokerEvent) {
        switch event {
        case .workerJoined(let id, let models, let credit, let replaced):
            logger.info("worker joined", metadata: [
                "worker": "\(id)", "models": "\(models.joined(separator: ","))", "credit": "\(credit)", "replaced": "\(replaced)",
            ])
        case .workerLost(let id, let reason, let requeued, let failed):
            logger.warning("worker lost", metadata: [
                "worker": "\(id)", "reason": "\(reason.rawValue)", "requeued": "\(requeued)", "failed": "\(failed)",
            ])
        case .discarded(let reason, let detail):
            // Debug only: a peer sending garbage in a loop must not flood the log.
            logger.debug("message discarded", metadata: ["reason": "\(reason.rawValue)", "detail": "\(detail)"])
        }
    }

    /// Both clocks now.
    private func now() -> BrokerTime {
        BrokerTime(unixMilliseconds: Self.wallClockMilliseconds(), monotonic: clock.now - origin)
    }

    /// Wall-clock Unix time in milliseconds (`CLOCK_REALTIME`), as deadlines are written.
    static func wallClockMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec)) * 1000 + UInt64(max(0, ts.tv_nsec)) / 1_000_000
    }
}
