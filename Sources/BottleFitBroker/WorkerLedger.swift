import BottleFitProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the broker knows about one worker connection.
struct WorkerRecord: Sendable {
    /// The backend ROUTER's routing id for the connection: how frames are addressed.
    var routingID: [UInt8]
    /// "w" from READY: for logs and STATS only.
    var workerID: String
    /// "ms" from READY.
    var models: Set<String>
    /// Frames the broker may still send before the worker grants more.
    var credit: Int
    /// Frames sent and not answered.
    var inFlight: Set<FrameKey> = []
    /// Last message from the worker (any message is a sign of life).
    var lastHeard: Duration
    /// Last message to the worker, to know when a HEARTBEAT is due.
    var lastSent: Duration
    /// Order of joining, for a stable listing in STATS.
    var joinOrder: Int
    /// When the worker last got a frame (a dispatch counter), so ties rotate instead of piling on one worker.
    var lastDispatch = 0
    /// Since when it has held at least one frame (nil while it holds none), and the time it held
    /// frames before that since the last STATS: its utilisation.
    var busySince: Duration?
    var busyTime: Duration = .zero
    /// The worker's smoothed cost per frame of each model, ms (`recordService`), and when its last
    /// answer came: how long a frame sent to it now will take.
    var serviceByModel: [String: Double] = [:]
    var lastAnswer: Duration?
    /// The batch sizes (RESULT `b`) of its answers since the last STATS: count, sum and largest.
    var batches: (count: Int, sum: Int, max: Int) = (0, 0, 0)

    /// The mean and largest batch size of those answers; nil when there were none.
    var batchSizes: StatsMessage.BatchSizes? {
        batches.count == 0 ? nil : StatsMessage.BatchSizes(mean: Double(batches.sum) / Double(batches.count), max: batches.max)
    }
}

/// The credit ledger: which workers exist, what they serve, how much credit they have and what
/// they hold. Picks the worker for a frame: serves its model, has credit, fewest in flight.
struct WorkerLedger: Sendable {
    private(set) var workers: [[UInt8]: WorkerRecord] = [:]
    /// How many workers serve each model, so "does anyone serve m?" is a lookup.
    private var servers: [String: Int] = [:]
    private var joins = 0
    private var dispatchClock = 0
    /// Credit summed over all workers, so a saturated pool is recognised without a scan.
    private(set) var totalCredit = 0

    var count: Int { workers.count }
    subscript(routingID: [UInt8]) -> WorkerRecord? { workers[routingID] }

    /// Whether any connected worker, with or without credit, serves `model`.
    func serves(_ model: String) -> Bool { servers[model, default: 0] > 0 }

    /// Adds a worker; returns the record it replaces (READY again on the same connection).
    mutating func register(routingID: [UInt8], workerID: String, models: [String], credit: Int, now: Duration) -> WorkerRecord? {
        let previous = remove(routingID)
        joins += 1
        let record = WorkerRecord(
            routingID: routingID, workerID: workerID, models: Set(models), credit: credit,
            lastHeard: now, lastSent: now, joinOrder: joins)
        for model in record.models { servers[model, default: 0] += 1 }
        workers[routingID] = record
        totalCredit += credit
        return previous
    }

    /// Forgets a worker and returns what it held.
    mutating func remove(_ routingID: [UInt8]) -> WorkerRecord? {
        guard let record = workers.removeValue(forKey: routingID) else { return nil }
        totalCredit -= record.credit
        for model in record.models {
            servers[model, default: 0] -= 1
            if servers[model] == 0 { servers[model] = nil }
        }
        return record
    }

    /// The worker a frame of `model` should go to: it serves the model and has credit; among
    /// those, fewest frames in flight, then the one that waited longest for work.
    func pick(for model: String) -> [UInt8]? {
        guard serves(model) else { return nil }
        var best: WorkerRecord?
        for worker in workers.values where worker.credit > 0 && worker.models.contains(model) {
            guard let current = best else { best = worker; continue }
            if worker.inFlight.count < current.inFlight.count
                || (worker.inFlight.count == current.inFlight.count && worker.lastDispatch < current.lastDispatch) {
                best = worker
            }
        }
        return best?.routingID
    }

    /// Whether `pick(for:)` would find a worker.
    func canTake(_ model: String) -> Bool { pick(for: model) != nil }

    /// Records a frame sent to a worker: one credit used, one more in flight.
    mutating func recordDispatch(_ key: FrameKey, to routingID: [UInt8], now: Duration) {
        guard workers[routingID] != nil else { return }
        dispatchClock += 1
        totalCredit -= 1
        workers[routingID]?.credit -= 1
        if workers[routingID]?.inFlight.isEmpty == true { workers[routingID]?.busySince = now }
        workers[routingID]?.inFlight.insert(key)
        workers[routingID]?.lastDispatch = dispatchClock
        workers[routingID]?.lastSent = now
    }

    /// Frees an in-flight slot (an answer arrived, or the frame was given up). Credit is not
    /// returned: by protocol it comes back only through CREDIT and READY.
    mutating func release(_ key: FrameKey, from routingID: [UInt8], now: Duration) {
        guard var worker = workers[routingID], worker.inFlight.remove(key) != nil else { return }
        if worker.inFlight.isEmpty, let since = worker.busySince {
            worker.busyTime += now - since
            worker.busySince = nil
        }
        workers[routingID] = worker
    }

    /// The share of the time since `start` that connected workers held frames, averaged over
    /// them; nil without workers or time. Counts busy time recorded since the last `resetBusyTime`.
    func utilisation(since start: Duration, at now: Duration) -> Double? {
        let elapsed = (now - start).fractionalMilliseconds
        guard !workers.isEmpty, elapsed > 0 else { return nil }
        var busy = 0.0
        for worker in workers.values {
            var time = worker.busyTime
            if let since = worker.busySince { time += now - max(since, start) }
            busy += min(elapsed, time.fractionalMilliseconds)
        }
        return min(1, max(0, busy / (elapsed * Double(workers.count))))
    }

    /// A RESULT from the worker came from a batch of `size` frames.
    mutating func recordBatch(_ size: Int, of routingID: [UInt8]) {
        guard var worker = workers[routingID] else { return }
        worker.batches = (worker.batches.count + 1, worker.batches.sum + size, max(worker.batches.max, size))
        workers[routingID] = worker
    }

    /// Starts a new utilisation (and batch size) interval at `now`.
    mutating func resetBusyTime(at now: Duration) {
        for id in workers.keys {
            workers[id]?.busyTime = .zero
            workers[id]?.batches = (0, 0, 0)
            if workers[id]?.busySince != nil { workers[id]?.busySince = now }
        }
    }

    /// An answer came at `now` for a frame of `model` dispatched at `dispatchedAt`. The sample is
    /// the time the worker spent on this frame alone: from its dispatch, or from the worker's
    /// previous answer if that came later (the frame waited behind it). Answers of one batch
    /// share its time, so the mean is the worker's cost per frame, kept per model (a worker
    /// serving a ResNet-50 tail and a tiny model spends very different times on each).
    mutating func recordService(dispatchedAt: Duration, model: String, of routingID: [UInt8], now: Duration) {
        guard var worker = workers[routingID] else { return }
        let began = max(dispatchedAt, worker.lastAnswer ?? dispatchedAt)
        let sample = max(0, (now - began).fractionalMilliseconds)
        worker.serviceByModel[model] = worker.serviceByModel[model].map { 0.8 * $0 + 0.2 * sample } ?? sample
        worker.lastAnswer = now
        workers[routingID] = worker
    }

    /// How long a frame of `model` dispatched to the worker now is expected to take, ms: the
    /// worker's cost for it and for each frame already there (`ahead`, their models), less what
    /// the one in progress has had (since the last answer). 0 while the model's cost is unknown.
    /// Halved for every second without an answer, so a worker that was slow (or stopped) and
    /// then idle is tried again, never written off. Measured against the plain mean
    /// dispatch-to-answer time in docs/results/overload.md.
    func expectedService(of routingID: [UInt8], model: String, ahead: [String], now: Duration) -> Double {
        guard let worker = workers[routingID], let own = worker.serviceByModel[model], let last = worker.lastAnswer else { return 0 }
        let sinceAnswer = max(0, (now - last).fractionalMilliseconds)
        let costs = ahead.map { worker.serviceByModel[$0] ?? own }
        let queued = costs.reduce(0, +) - min(costs.max() ?? 0, sinceAnswer)
        return (own + queued) * pow(0.5, sinceAnswer / 1000)
    }

    /// Adds credit from CREDIT, capped at `maximum` (the protocol's 65536) so STATS stays valid.
    mutating func addCredit(_ n: Int, to routingID: [UInt8], maximum: Int) {
        guard let credit = workers[routingID]?.credit else { return }
        let updated = min(maximum, credit + max(0, n))
        totalCredit += updated - credit
        workers[routingID]?.credit = updated
    }

    mutating func heard(_ routingID: [UInt8], now: Duration) {
        workers[routingID]?.lastHeard = now
    }

    mutating func sent(_ routingID: [UInt8], now: Duration) {
        workers[routingID]?.lastSent = now
    }

    /// Workers silent for longer than `expiry`.
    func silent(at now: Duration, expiry: Duration) -> [[UInt8]] {
        workers.values.filter { now - $0.lastHeard > expiry }.sorted { $0.joinOrder < $1.joinOrder }.map(\.routingID)
    }

    /// Workers that have been sent nothing for `interval` and are due a HEARTBEAT.
    func needingHeartbeat(at now: Duration, interval: Duration) -> [[UInt8]] {
        workers.values.filter { now - $0.lastSent >= interval }.sorted { $0.joinOrder < $1.joinOrder }.map(\.routingID)
    }

    /// Workers in the order they joined.
    var ordered: [WorkerRecord] { workers.values.sorted { $0.joinOrder < $1.joinOrder } }
}
