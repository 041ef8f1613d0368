import BottleFitEngine
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

/// The worker's loop: one thread, which owns the socket, the engine sessions and the held frames.
///
/// Each turn: wait (bounded) for a message, take every message waiting, compute one batch of
/// held frames, return credit for the slots freed, heartbeat if due, and reconnect if the
/// broker has been silent for `liveness` intervals.
final class WorkerLoop {
    let configuration: WorkerConfiguration
    let context: ZMQContext
    let logger: Logger
    let models: [String: ServedModel]
    var connection: WorkerConnection?
    /// Frames accepted and not yet answered, in arrival order.
    var held: [HeldFrame] = []
    /// Credit freed since the last CREDIT (slots of frames answered).
    var creditToReturn = 0
    var counters = WorkerCounters()
    /// Paranoid Pirate back-off: doubles after every reconnect, back to the start once the broker is heard.
    private var reconnectDelay: Duration

    /// Loads every model (on the calling thread, which becomes the loop's owner) and connects.
    init(configuration: WorkerConfiguration, context: ZMQContext, logger: Logger) throws(WorkerError) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
        var models: [String: ServedModel] = [:]
        for (name, files) in configuration.models.sorted(by: { $0.key < $1.key }) {
            models[name] = try ServedModel(name: name, files: files, compute: configuration.compute)
        }
        self.models = models
        logger.info("worker models loaded", metadata: [
            "worker": "\(configuration.workerID)", "models": "\(models.keys.sorted())",
            "maxBatch": "\(configuration.maxBatch)", "credit": "\(configuration.credit)"])
        reconnectDelay = configuration.reconnectDelay
        do throws(ZMQError) {
            try connect()
        } catch {
            throw .socket("\(error)")
        }
    }

    /// Runs until `shouldStop` is true, then drains: no more credit, the frames in hand (and
    /// any already waiting on the socket) are answered, DISCONNECT is sent, the socket closed.
    func run(shouldStop: () -> Bool, report: (WorkerCounters) -> Void) {
        let clock = ContinuousClock()
        let silence = configuration.heartbeatInterval * configuration.liveness
        while !shouldStop() {
            do throws(ZMQError) {
                guard let connection else {
                    // Only reached if a reconnect failed to make a socket; try again after the back-off.
                    try reconnect(shouldStop: shouldStop)
                    continue
                }
                let now = clock.now
                var timeout = configuration.pollTimeout
                if !held.isEmpty { timeout = .zero }
                timeout = min(timeout, max(.zero, now.duration(to: connection.lastSent + configuration.heartbeatInterval)))
                timeout = min(timeout, max(.zero, now.duration(to: connection.lastHeard + silence)))
                if connection.readyPending { try sendReady(connection) }
                // While READY waits for the connection, look again every 20 ms.
                try connection.wait(timeout: connection.readyPending ? min(timeout, .milliseconds(20)) : timeout)
                let before = connection.lastHeard
                try takeWaitingMessages(connection)
                if connection.lastHeard > before { reconnectDelay = configuration.reconnectDelay }
                try computeOneBatch(connection)
                try returnCredit(connection)
                if !connection.readyPending && clock.now - connection.lastSent >= configuration.heartbeatInterval {
                    if try connection.sendControl(.heartbeat(HeartbeatMessage())) {
                        counters.heartbeatsSent += 1
                    } else {
                        counters.sendsDropped += 1
                    }
                }
                if clock.now - connection.lastHeard >= silence {
                    // A long batch may have kept the broker's heartbeats waiting unread: read them first.
                    try takeWaitingMessages(connection)
                    if clock.now - connection.lastHeard >= silence { try reconnect(shouldStop: shouldStop) }
                }
            } catch {
                logger.error("worker socket failed", metadata: ["error": "\(error)"])
                // ETERM: the context is shutting down; nothing more can be sent.
                if error.isTerminated { connection?.close(linger: 0); connection = nil; break }
                // Any other socket failure: start over with a new socket, as for a silent broker.
                try? reconnect(shouldStop: shouldStop)
            }
            report(counters)
        }
        drain()
        report(counters)
    }

    /// Makes a new socket and announces the worker with READY (credit is set, not added).
    private func connect() throws(ZMQError) {
        let connection = try WorkerConnection(
            context: context, endpoint: configuration.endpoint, limits: configuration.limits, curve: configuration.curve)
        self.connection = connection
        creditToReturn = 0
        try sendReady(connection)
    }

    /// Queues READY if the connection is up; otherwise the loop tries again next turn. If the
    /// broker never answers, liveness lapses and a new socket tries again after the back-off.
    private func sendReady(_ connection: WorkerConnection) throws(ZMQError) {
        let ready = ReadyMessage(workerID: configuration.workerID, models: models.keys.sorted(), credit: configuration.credit)
        if try connection.sendControl(.ready(ready)) {
            connection.readyPending = false
            counters.readySent += 1
            logger.info("worker sent READY", metadata: ["endpoint": "\(configuration.endpoint)", "credit": "\(configuration.credit)"])
        }
    }

    /// The broker is silent: drop the socket and what it brought, wait the back-off (in short
    /// slices, so `stop()` is not delayed), and connect again.
    private func reconnect(shouldStop: () -> Bool) throws(ZMQError) {
        connection?.close(linger: 0)
        connection = nil
        // The broker declared this worker lost and requeued or failed these itself.
        logger.warning("broker silent or gone; reconnecting", metadata: [
            "after": "\(reconnectDelay)", "abandoned": "\(held.count)"])
        counters.abandoned += held.count
        held.removeAll()
        counters.reconnects += 1
        let clock = ContinuousClock()
        let until = clock.now + reconnectDelay
        while clock.now < until && !shouldStop() {
            sleepBlocking(min(configuration.pollTimeout, clock.now.duration(to: until)))
        }
        reconnectDelay = min(reconnectDelay * 2, configuration.maxReconnectDelay)
        if shouldStop() { return }
        try connect()
    }

    /// Graceful stop (protocol.md section 10): stop granting credit, answer everything held or
    /// already waiting on the socket, then DISCONNECT and close with a bounded linger.
    private func drain() {
        guard let connection else { return }
        do throws(ZMQError) {
            // Frames may still arrive while the held ones compute (the broker has not seen a
            // DISCONNECT yet); a few rounds answer those too. Any later ones the broker requeues.
            for _ in 0..<4 {
                try takeWaitingMessages(connection)
                if held.isEmpty { break }
                while !held.isEmpty { try computeOneBatch(connection) }
            }
            _ = try connection.sendControl(.disconnect(DisconnectMessage(reason: "worker stopping")))
        } catch {
            counters.abandoned += held.count
            held.removeAll()
        }
        connection.close(linger: 1000)
        self.connection = nil
        logger.info("worker stopped", metadata: [
            "completed": "\(counters.completed)", "errors": "\(counters.errorsSent)", "batches": "\(counters.batches)"])
    }

    /// Sends the credit freed since the last CREDIT, unless the worker is draining.
    private func returnCredit(_ connection: WorkerConnection) throws(ZMQError) {
        while creditToReturn > 0 {
            let n = min(creditToReturn, configuration.limits.maxCredit)
            guard try connection.sendControl(.credit(CreditMessage(credits: n))) else {
                counters.sendsDropped += 1
                return
            }
            creditToReturn -= n
            counters.creditsReturned += n
        }
    }
}

/// The current time as Unix milliseconds, the clock of FRAME deadlines ("dl").
func unixMilliseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(max(0, now.tv_sec)) * 1000 + UInt64(max(0, now.tv_nsec)) / 1_000_000
}

/// Blocks the calling thread (the loop's own, never the cooperative pool) for `duration`.
func sleepBlocking(_ duration: Duration) {
    let (seconds, attoseconds) = max(duration, .zero).components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    // Resumed after a signal for the time left.
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
