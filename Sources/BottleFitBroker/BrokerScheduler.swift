import BottleFitProtocol

/// The broker's scheduling state, with no sockets and no clock of its own: the fair bounded
/// queue, the credit ledger, the in-flight table, deadlines, worker liveness and the counters.
///
/// The socket loop feeds it events (a FRAME from a camera, READY/CREDIT/RESULT from a worker,
/// the passing of time) together with the current `BrokerTime`, and performs the actions each
/// call returns. Being a value driven only by its inputs, it is tested without ZeroMQ, and its
/// counters balance after every call: `received == completed + dropped + queued + inFlight`.
///
/// Rules (docs/broker.md explains the choices):
/// - A frame goes to a worker that serves its model and has credit, fewest in flight first.
/// - Cameras are served round robin, one frame per turn.
/// - The queue holds at most `policy.queueCapacity` frames; beyond that a frame is answered BUSY
///   with a retry hint, unless its camera has fewer waiting than the longest queue, whose newest
///   frame then makes room (and is answered BUSY).
/// - A frame whose deadline has passed is answered EXPIRED instead of being dispatched, and so is
///   one whose deadline would pass before the chosen worker answers (its smoothed dispatch-to-answer
///   time, decaying while it is quiet).
/// - A frame for a model no connected worker serves is answered UNKNOWN_MODEL at once; frames
///   waiting for a model whose last worker leaves are answered UNKNOWN_MODEL too.
/// - A lost worker's frames are dispatched once more if their deadline allows and a worker
///   serves their model, otherwise answered WORKER_LOST.
public struct BrokerScheduler: Sendable {
    /// The rules this scheduler follows.
    public let policy: BrokerPolicy
    /// Every count, with `queued` and `inFlight` kept equal to the real state after each call.
    public internal(set) var counters = BrokerCounters()

    var queue = CameraQueues()
    var workers = WorkerLedger()
    /// Frames at workers: the frame (to requeue it) and who holds it.
    var inFlight: [FrameKey: (frame: PendingFrame, worker: [UInt8])] = [:]
    var queueTimes: QueueTimeWindow
    /// The cameras' latency reports of the last `cameraReportWindow`.
    var cameraReports: CameraReportWindow
    /// Cameras heard from recently, by routing id; told DISCONNECT when the broker stops.
    var cameras: [[UInt8]: Duration] = [:]
    /// Counters and time at the last STATS, for per-interval rates.
    var lastStats: (at: Duration, received: Int, completed: Int, dropped: Int)
    /// Completions per second over the last STATS interval, for the BUSY retry hint.
    var completionRate: Double = 0
    var lastExpirySweep: Duration
    var lastHousekeeping: Duration
    var isStopped = false
    var outbox: [BrokerAction] = []

    /// Most cameras remembered for the shutdown DISCONNECT; beyond it new ones are not tracked.
    static let maxTrackedCameras = 65_536
    /// How often waiting frames are checked for expiry between dispatches.
    static let expirySweepInterval = Duration.milliseconds(5)

    public init(policy: BrokerPolicy, now: BrokerTime) {
        self.policy = policy
        queueTimes = QueueTimeWindow(capacity: policy.queueTimeSamples, window: policy.queueTimeWindow)
        cameraReports = CameraReportWindow(capacity: policy.cameraReportCapacity, window: policy.cameraReportWindow)
        lastStats = (now.monotonic, 0, 0, 0)
        lastExpirySweep = now.monotonic
        lastHousekeeping = now.monotonic
    }

    // MARK: Looking in

    /// Frames waiting in the queue.
    public var queueDepth: Int { queue.count }
    /// Frames at workers.
    public var inFlightCount: Int { inFlight.count }
    /// Connected workers (those that sent READY and were not lost).
    public var workerCount: Int { workers.count }
    /// Each connected worker's name, credit, frames in flight and batch sizes since the last STATS, in joining order.
    public var workerSummaries: [StatsMessage.Worker] {
        workers.ordered.map {
            StatsMessage.Worker(id: $0.workerID, credit: $0.credit, inFlight: $0.inFlight.count, batches: $0.batchSizes)
        }
    }
    /// Whether `frame` is in flight at `worker`. The loop checks it before sending a dispatch,
    /// because a failed send earlier in the same batch may have taken the frame back already.
    public func holds(_ worker: [UInt8], _ frame: FrameKey) -> Bool { inFlight[frame]?.worker == worker }
    /// Whether `shutdown` has run.
    public var hasShutDown: Bool { isStopped }

    // MARK: Cameras

    /// A valid FRAME from a camera: answer it at once (duplicate, expired, unknown model, busy)
    /// or queue it and dispatch what can be dispatched.
    public mutating func receiveFrame(_ frame: FrameMessage, bytes: [UInt8], from camera: [UInt8], now: BrokerTime) -> [BrokerAction] {
        counters.received += 1
        noteCamera(camera, now)
        let key = FrameKey(cameraRoutingID: camera, cameraID: frame.cameraID, sequence: frame.sequence)
        let pending = PendingFrame(key: key, model: frame.model, deadline: frame.deadline, bytes: bytes, enqueuedAt: now.monotonic)
        if isStopped {
            answer(key, .busy, "the broker is shutting down", reason: .shutdown, retryAfter: policy.retryAfterMaximum)
        } else if queue.contains(key) || inFlight[key] != nil {
            // A second frame with the same (c, s) would make the answers ambiguous.
            answer(key, .badRequest, "frame \(key) is already pending at the broker", reason: .badRequest)
        } else if pending.isExpired(at: now) {
            answer(key, .expired, "deadline \(frame.deadline) passed before the frame reached the broker", reason: .expired)
        } else if !workers.serves(frame.model) {
            answer(key, .unknownModel, "no connected worker serves model \(frame.model)", reason: .unknownModel)
        } else if admit(pending) {
            queue.enqueue(pending)
            dispatch(now)
        }
        return finish()
    }

    /// Makes room for a frame if the queue is full; false (after answering BUSY) if there is none.
    private mutating func admit(_ frame: PendingFrame) -> Bool {
        guard queue.count >= policy.queueCapacity else { return true }
        let camera = frame.key.camera
        let mine = queue.count(of: camera)
        // Nothing of this camera waits and a worker can take it now: it would not stay queued,
        // and round robin would serve it next anyway (dispatch always runs to completion).
        if mine == 0 && workers.canTake(frame.model) { return true }
        // Push-out: the longest queue gives up its newest frame, if it is longer than this
        // camera's would be after admission; otherwise this frame is the one refused.
        if let victim = queue.removeNewestOfLongest(ifLongerThan: mine + 1) {
            answer(victim.key, .busy, "the broker queue is full (\(policy.queueCapacity) frames); "
                + "the frame made room for a camera with fewer frames waiting", reason: .busy, retryAfter: retryAfter())
            return true
        }
        answer(frame.key, .busy, "the broker queue is full (\(policy.queueCapacity) frames)", reason: .busy, retryAfter: retryAfter())
        return false
    }

    /// A request that could not be read or is not valid from a camera: answered with `error`,
    /// counted as received and dropped.
    public mutating func rejectRequest(from camera: [UInt8], error: ErrorMessage, reason: DropReason, now: BrokerTime) -> [BrokerAction] {
        counters.received += 1
        counters.drop(reason)
        noteCamera(camera, now)
        outbox.append(.reply(camera: camera, message: .error(error)))
        return finish()
    }

    /// A camera's HEARTBEAT, answered with one so the camera knows the broker is alive. Its latency
    /// report, if it carries one, joins the camera figures of the next STATS.
    public mutating func cameraHeartbeat(from camera: [UInt8], report: LatencyReport? = nil, now: BrokerTime) -> [BrokerAction] {
        noteCamera(camera, now)
        if let report {
            cameraReports.record(report, from: camera, at: now.monotonic)
            counters.latencyReports += 1
        }
        outbox.append(.reply(camera: camera, message: .heartbeat(HeartbeatMessage())))
        return finish()
    }

    /// A camera's DISCONNECT: its waiting frames are dropped unanswered (nobody would read the
    /// answers); frames already at workers finish, and their answers go out if the camera is back.
    public mutating func cameraDisconnected(_ camera: [UInt8], now: BrokerTime) -> [BrokerAction] {
        cameras[camera] = nil
        let gone = queue.removeAll { $0.key.cameraRoutingID == camera }
        counters.drop(.cameraGone, count: gone.count)
        return finish()
    }

    /// Counts a message thrown away outside the frame balance (garbage from a worker, a late
    /// answer, a reply libzmq refused, ...).
    public mutating func discard(_ reason: DiscardReason, detail: String) -> [BrokerAction] {
        counters.discard(reason)
        outbox.append(.note(.discarded(reason, detail: detail)))
        return finish()
    }

    // MARK: Dispatch

    /// Sends waiting frames to workers until no waiting camera's head frame can go anywhere.
    mutating func dispatch(_ now: BrokerTime) {
        guard !isStopped else { return }
        // Cameras passed over in a row; a whole round of them means nothing more can move now.
        var skipped = 0
        // Models no worker can take now. Dispatching only uses credit up, so a model found
        // blocked stays blocked for the rest of this call: each is looked up once.
        var blocked: Set<String> = []
        // Saturated (no credit anywhere) is the common overload case: nothing to walk then.
        while workers.totalCredit > 0, skipped < queue.waitingCameras, let head = queue.current {
            if head.isExpired(at: now) {
                // Expired frames never reach a worker; the camera keeps its turn.
                _ = queue.dropCurrent()
                expire(head, now)
                continue
            }
            guard !blocked.contains(head.model), let worker = workers.pick(for: head.model) else {
                blocked.insert(head.model)
                queue.skipCurrent()
                skipped += 1
                continue
            }
            // Deadline-aware: a frame the worker would answer only after its deadline is not worth
            // the worker's time (the camera has computed it itself by then); answer it now.
            let ahead = workers[worker]?.inFlight.compactMap { inFlight[$0]?.frame.model } ?? []
            let expected = workers.expectedService(of: worker, model: head.model, ahead: ahead, now: now.monotonic)
            if expected > 0, Double(now.unixMilliseconds) + expected > Double(head.deadline) {
                _ = queue.dropCurrent()
                recordQueueTime(now.monotonic - head.enqueuedAt, at: now.monotonic)
                answer(head.key, .expired, "deadline \(head.deadline) would pass before the worker answers (about \(Int(expected.rounded())) ms)", reason: .expired)
                continue
            }
            guard var frame = queue.takeCurrent() else { break }
            recordQueueTime(now.monotonic - frame.enqueuedAt, at: now.monotonic)
            frame.dispatches += 1
            frame.dispatchedAt = now.monotonic
            workers.recordDispatch(frame.key, to: worker, now: now.monotonic)
            inFlight[frame.key] = (frame, worker)
            counters.dispatched += 1
            outbox.append(.dispatch(worker: worker, frame: frame.key, body: frame.bytes))
            skipped = 0
        }
    }

    /// Answers a frame that left the queue unserved because its deadline passed.
    mutating func expire(_ frame: PendingFrame, _ now: BrokerTime) {
        // Its wait counts in the queue-time figures: under overload these are the longest waits.
        recordQueueTime(now.monotonic - frame.enqueuedAt, at: now.monotonic)
        answer(frame.key, .expired, "deadline \(frame.deadline) passed while the frame waited in the broker queue", reason: .expired)
    }

    /// One frame's wait in the queue: for STATS percentiles and the cumulative histogram of /metrics.
    mutating func recordQueueTime(_ wait: Duration, at now: Duration) {
        let milliseconds = wait.fractionalMilliseconds
        queueTimes.record(milliseconds, at: now)
        counters.queueTime.record(max(0, milliseconds) / 1000)
    }

    // MARK: Answers

    /// Answers a frame with an ERROR and counts the drop.
    mutating func answer(_ key: FrameKey, _ code: ErrorCode, _ text: String, reason: DropReason, retryAfter: UInt64? = nil) {
        counters.drop(reason)
        let error = ErrorMessage(
            sequence: key.sequence, cameraID: key.cameraID, code: code,
            text: String(text.utf8.prefix(policy.limits.maxTextBytes)) ?? code.rawValue,
            retryAfterMilliseconds: retryAfter)
        outbox.append(.reply(camera: key.cameraRoutingID, message: .error(error)))
    }

    /// How long a camera refused with BUSY should wait: the time the queue needs to drain at the
    /// recent completion rate, within the policy's bounds. With nothing completing, the maximum.
    func retryAfter() -> UInt64 {
        let low = policy.retryAfterMinimum, high = policy.retryAfterMaximum
        guard completionRate > 0 else { return high }
        let drain = Double(queue.count) / completionRate * 1000
        guard drain.isFinite else { return high }
        return min(high, max(low, UInt64(drain.rounded(.up))))
    }

    mutating func noteCamera(_ camera: [UInt8], _ now: BrokerTime) {
        if cameras[camera] != nil || cameras.count < Self.maxTrackedCameras { cameras[camera] = now.monotonic }
    }

    /// Brings the gauges in line with the state and hands the actions over.
    mutating func finish() -> [BrokerAction] {
        counters.queued = queue.count
        counters.inFlight = inFlight.count
        let actions = outbox
        outbox = []
        return actions
    }
}
