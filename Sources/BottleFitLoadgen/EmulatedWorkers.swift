import BottleFitCore
import BottleFitProtocol
import Foundation
import ZeroMQ

/// How emulated tail workers serve (`--emulate-workers`): a service-time model instead of a model.
public struct EmulatedWorkerSettings: Sendable, Equatable {
    public enum Distribution: String, Sendable, CaseIterable {
        /// Every batch takes exactly its service time.
        case constant
        /// Exponential with that mean (an M/M/c-like edge).
        case exponential
    }

    public var count: Int
    /// The broker's backend (workers connect here).
    public var backend: String
    /// Models every worker announces in READY.
    public var models: [String]
    /// Service time of a batch of one frame, ms.
    public var serviceMilliseconds: Double
    /// Each further frame of a batch adds this, ms (equal to the service time: no gain from batching).
    public var batchExtraMilliseconds: Double
    public var maxBatch: Int
    /// READY credit: frames the broker may hand a worker at once (2 × `maxBatch` by default, so
    /// the next batch is ready; 1 leaves the queue, and its deadline checks, to the broker).
    public var credit: Int
    public var distribution: Distribution
    public var seed: UInt64

    public init(
        count: Int, backend: String, models: [String], serviceMilliseconds: Double, batchExtraMilliseconds: Double? = nil,
        maxBatch: Int = 1, credit: Int? = nil, distribution: Distribution = .constant, seed: UInt64 = 1
    ) {
        self.credit = credit ?? 2 * maxBatch
        self.count = count
        self.backend = backend
        self.models = models
        self.serviceMilliseconds = serviceMilliseconds
        self.batchExtraMilliseconds = batchExtraMilliseconds ?? serviceMilliseconds
        self.maxBatch = maxBatch
        self.distribution = distribution
        self.seed = seed
    }

    /// Frames per second the pool serves at full batches (constant service).
    public var capacity: Double {
        Double(count * maxBatch) / ((serviceMilliseconds + Double(maxBatch - 1) * batchExtraMilliseconds) / 1000)
    }
}

/// Tail workers replaced by a service-time distribution, speaking the real worker protocol to the
/// broker (docs/protocol.md sections 7, 9, 10): READY with credit `worker_credit` (2 × max_batch by default), micro-batches
/// of what is waiting (up to `max_batch`), a RESULT per frame and a CREDIT per batch, EXPIRED for a
/// frame whose `dl` passed before its batch began, HEARTBEAT when idle, READY again after a
/// DISCONNECT. For broker-only capacity studies: no engine runs. One thread, one DEALER per worker.
public final class EmulatedWorkers: @unchecked Sendable {
    /// A frame waiting at, or being served by, one worker.
    private struct Held {
        var routingID: [UInt8]
        var cameraID: String
        var sequence: UInt64
        var deadline: UInt64
        var receivedAt: UInt64
    }

    private struct Worker {
        var socket: ZMQSocket
        var id: String
        var waiting: [Held] = []
        var serving: [Held] = []
        var doneAt: UInt64 = 0
        var startedAt: UInt64 = 0
        var lastSent: UInt64 = 0
    }

    public let settings: EmulatedWorkerSettings
    private let context: ZMQContext
    // `stopped`, `served` and `expired` are guarded by `lock`; sockets live on the worker thread only.
    private let lock = NSLock()
    private var stopped = false
    private var servedCount = 0
    private var expiredCount = 0
    private var startError: String?
    private let started = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(settings: EmulatedWorkerSettings, context: ZMQContext) {
        self.settings = settings
        self.context = context
    }

    public var served: Int { lock.withLock { servedCount } }
    public var expired: Int { lock.withLock { expiredCount } }

    /// Connects every worker and sends READY; throws if a socket cannot be made.
    public func start() throws(LoadgenError) {
        Thread.detachNewThread { [self] in run() }
        started.wait()
        if let error = lock.withLock({ startError }) { throw LoadgenError("emulated workers: \(error)") }
    }

    /// Stops serving (DISCONNECT to the broker) and waits for the thread, at most 10 s.
    public func stop() {
        lock.withLock { stopped = true }
        _ = finished.wait(timeout: .now() + 10)
    }

    private static func unixMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    private func run() {
        defer { finished.signal() }
        var workers: [Worker] = []
        let poller = ZMQPoller()
        let ready: [UInt8]
        do {
            ready = try ReadyMessage(workerID: "x", models: settings.models, credit: settings.credit).encoded()
            for i in 0..<settings.count {
                let socket = try ZMQSocket(context, type: .dealer, linger: 0)
                try socket.setOption(.maxMessageSize, Int64(ProtocolLimits.default.maxMessageBytes))
                try socket.connect(settings.backend)
                _ = try poller.add(socket)
                workers.append(Worker(socket: socket, id: "emulated-worker-\(i + 1)"))
            }
        } catch {
            lock.withLock { startError = "\(error)" }
            started.signal()
            return
        }
        func readyMessage(_ w: Worker) -> [UInt8] {
            (try? ReadyMessage(workerID: w.id, models: settings.models, credit: settings.credit).encoded()) ?? ready
        }
        for i in workers.indices { _ = try? workers[i].socket.trySend([[], readyMessage(workers[i])]) }
        started.signal()
        var random = SeededGenerator(seed: settings.seed)
        let heartbeat = (try? HeartbeatMessage().encoded()) ?? []
        let limits = ZMQReceiveLimits(maxFrames: 4, maxBytes: ProtocolLimits.default.maxMessageBytes)
        while !lock.withLock({ stopped }) {
            var now = Self.unixMicroseconds()
            for i in workers.indices {
                // A batch ends: a RESULT for each frame, then the credit back.
                if !workers[i].serving.isEmpty, now >= workers[i].doneAt {
                    let batch = workers[i].serving
                    let compute = Double(workers[i].doneAt - workers[i].startedAt) / 1000
                    for held in batch {
                        let result = ResultMessage(
                            cameraID: held.cameraID, sequence: held.sequence, classIndices: [0], scores: [1],
                            queuedMilliseconds: Double(workers[i].startedAt &- held.receivedAt) / 1000,
                            computeMilliseconds: compute, batchSize: batch.count, workerID: workers[i].id)
                        if let bytes = try? result.encoded() { _ = try? workers[i].socket.trySend([[], held.routingID, [], bytes]) }
                    }
                    if let credit = try? CreditMessage(credits: batch.count).encoded() { _ = try? workers[i].socket.trySend([[], credit]) }
                    workers[i].serving = []
                    workers[i].lastSent = now
                    lock.withLock { servedCount += batch.count }
                }
                // An idle worker takes what waits, dropping frames already past their deadline.
                if workers[i].serving.isEmpty, !workers[i].waiting.isEmpty {
                    var batch: [Held] = []
                    while batch.count < settings.maxBatch, !workers[i].waiting.isEmpty {
                        let held = workers[i].waiting.removeFirst()
                        if now / 1000 > held.deadline {
                            let error = ErrorMessage(sequence: held.sequence, cameraID: held.cameraID, code: .expired, text: "deadline passed before compute")
                            if let bytes = try? error.encoded() { _ = try? workers[i].socket.trySend([[], held.routingID, [], bytes]) }
                            if let credit = try? CreditMessage(credits: 1).encoded() { _ = try? workers[i].socket.trySend([[], credit]) }
                            lock.withLock { expiredCount += 1 }
                            continue
                        }
                        batch.append(held)
                    }
                    if !batch.isEmpty {
                        var ms = settings.serviceMilliseconds + Double(batch.count - 1) * settings.batchExtraMilliseconds
                        if settings.distribution == .exponential {
                            ms *= -log(Double.random(in: Double.ulpOfOne..<1, using: &random))
                        }
                        workers[i].serving = batch
                        workers[i].startedAt = now
                        workers[i].doneAt = now + UInt64((ms * 1000).rounded())
                    }
                }
                if now >= workers[i].lastSent + 1_000_000 {
                    _ = try? workers[i].socket.trySend([[], heartbeat])
                    workers[i].lastSent = now
                }
            }
            let next = workers.filter { !$0.serving.isEmpty }.map(\.doneAt).min() ?? now + 100_000
            now = Self.unixMicroseconds()
            let wait = next > now ? min(next - now, 100_000) : 0
            _ = try? poller.poll(timeout: .microseconds(Int64(wait)))
            let received = Self.unixMicroseconds()
            for i in workers.indices where poller.events(at: i).contains(.readable) {
                for _ in 0..<256 {
                    guard let parts = (try? workers[i].socket.tryReceive(limits: limits)) ?? nil else { break }
                    if parts.count == 4, parts[0].isEmpty, parts[2].isEmpty {
                        guard let frame = try? FrameMessage.decode(parts[3]) else { continue }
                        workers[i].waiting.append(Held(
                            routingID: parts[1], cameraID: frame.cameraID, sequence: frame.sequence, deadline: frame.deadline,
                            receivedAt: received))
                    } else if parts.count == 2, case .disconnect? = try? Message.decode(parts[1]) {
                        // The broker forgot this worker (or is leaving): announce again, as a worker reconnecting does.
                        workers[i].waiting = []
                        workers[i].serving = []
                        _ = try? workers[i].socket.trySend([[], readyMessage(workers[i])])
                        workers[i].lastSent = received
                    }
                }
            }
        }
        let bye = (try? DisconnectMessage(reason: "emulated worker stopping").encoded()) ?? []
        for w in workers {
            _ = try? w.socket.trySend([[], bye])
            try? w.socket.close()
        }
    }
}
