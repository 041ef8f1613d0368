import BottleFitDevice
import BottleFitProtocol

/// One emulated camera: the real `CameraPolicy` (Sources/BottleFitDevice) decides every frame; the
/// camera's compute and radio are modelled from its device and uplink profiles.
///
/// **Every call into `CameraPolicy` is in this file**, and each mirrors what `CameraLoop` and
/// `CameraLoop+Replies` do at the same point (named in the comments), so a change of the policy's
/// API is a change here only. `settle` is the one place an edge outcome (RESULT, ERROR, reply
/// timeout, failed send) reaches the policy, through its single entry point `record(_:epoch:at:)`.
///
/// Times: `now` and scheduled times are Unix µs of the loop's clock; the policy takes Unix ms.
final class EmulatedCamera {
    /// A frame between the policy's edge decision and its settlement.
    struct EdgeFrame {
        /// Scheduled time (Unix µs): latency counts from here (open loop).
        var scheduled: UInt64
        /// The frame's deadline (SLO after its scheduled time), Unix ms: lateness counts against it.
        var deadline: UInt64
        /// The edge deadline (Unix ms, set when the frame leaves the camera): sent as "dl", and when
        /// the camera stops waiting for the reply.
        var giveUpAt: UInt64 = 0
        /// When the frame left the camera (entered its uplink), Unix µs: the edge's part of the
        /// latency counts from here.
        var sent: UInt64 = 0
        /// The policy's epoch when the frame was decided.
        var epoch: UInt64
        var route: FrameRoute
        /// Handed to the broker socket.
        var delivered = false
    }

    /// How an edge frame ended, as the loop sees it (mapped to `CameraPolicy.EdgeOutcome` in `settle`).
    enum EdgeOutcome {
        case result
        case error(ErrorMessage)
        case replyTimeout
        case sendFailed
    }

    let index: Int
    let id: String
    let group: Int
    let connection: Int
    let mode: CameraMode
    let sloMilliseconds: UInt64
    let maxInFlight: Int
    let headMicroseconds: UInt64
    let fullMicroseconds: UInt64
    let encodeMicroseconds: UInt64
    var schedule: ArrivalSchedule
    var uplink: UplinkEmulator

    private(set) var policy: CameraPolicy
    private var nextSequence: UInt64 = 0
    private(set) var atEdge: [UInt64: EdgeFrame] = [:]
    /// Frames due while `maxInFlight` frames were at the edge, or while the local model was
    /// saturated with no usable edge: they wait (open loop: their latency still counts from their
    /// scheduled time), as `CameraLoop` waits before taking a frame.
    private var waiting: [UInt64] = []
    private var waitingHead = 0
    /// The loop's processor: the head and JPEG encoding run on it, one at a time.
    private var busyUntil: UInt64 = 0
    /// The whole model's own processor (`LocalCompute`'s thread): jobs in order.
    private var localBusyUntil: UInt64 = 0
    /// Start times of the local jobs not yet finished, in order (those after `now` are waiting).
    private var localStarts: [UInt64] = []
    private var localStartsHead = 0
    private(set) var busyMicroseconds: UInt64 = 0
    /// Frames offered to this camera and those the edge answered (the fairness measure's counts).
    private(set) var offeredFrames = 0
    private(set) var edgeFrames = 0
    private(set) var bytesSent = 0
    private(set) var localRunning = 0
    private var latencyWindow: EdgeLatencyWindow
    /// The connection's last sign of life already given to the policy.
    private var heardSynced: UInt64 = 0

    init(
        index: Int, id: String, group: Int, connection: Int, mode: CameraMode, sloMilliseconds: UInt64, maxInFlight: Int,
        headMilliseconds: Double, fullMilliseconds: Double, encodeMilliseconds: Double, framePeriodMilliseconds: Double?,
        schedule: ArrivalSchedule, uplink: UplinkEmulator, now: UInt64
    ) {
        self.index = index
        self.id = id
        self.group = group
        self.connection = connection
        self.mode = mode
        self.sloMilliseconds = sloMilliseconds
        self.maxInFlight = maxInFlight
        headMicroseconds = UInt64((headMilliseconds * 1000).rounded())
        fullMicroseconds = UInt64((fullMilliseconds * 1000).rounded())
        encodeMicroseconds = UInt64((encodeMilliseconds * 1000).rounded())
        self.schedule = schedule
        self.uplink = uplink
        // CameraLoop.init: a policy counting the broker alive from now, seeded with the warm-up's local time.
        // The frame period bounds the share the camera can compute itself (CameraConfiguration.policyConfiguration).
        policy = CameraPolicy(
            CameraPolicy.Configuration(cameraID: id, mode: mode, canComputeLocally: true, framePeriodMilliseconds: framePeriodMilliseconds),
            now: now / 1000)
        policy.recordLocalCompute(milliseconds: fullMilliseconds)
        latencyWindow = EdgeLatencyWindow(cameraID: id, now: now / 1000)
    }

    var framesWaiting: Int { waiting.count - waitingHead }

    // MARK: Frames

    /// A frame scheduled at `scheduled` is due (the loop runs this at `now` ≥ `scheduled`).
    func arrive(scheduled: UInt64, now: UInt64, engine: LoadgenEngine) {
        engine.recorder.recordOffered(group: group)
        offeredFrames += 1
        if !canTake(now: now, engine: engine) {
            waiting.append(scheduled)
            return
        }
        take(scheduled: scheduled, now: now, engine: engine)
    }

    /// CameraLoop.run: a frame is taken while fewer than `maxInFlight` are at the edge, and not
    /// while the local model is saturated with no usable edge.
    private func canTake(now: UInt64, engine: LoadgenEngine) -> Bool {
        atEdge.count < maxInFlight && !(localSaturated(now: now) && !edgeUsable(now: now, engine: engine))
    }

    /// Frames waiting for the local model (not the one running), against `CameraLoop.localQueueLimit`.
    private func localSaturated(now: UInt64) -> Bool {
        var waitingJobs = 0
        var i = localStarts.count - 1
        while i >= localStartsHead, localStarts[i] > now {
            waitingJobs += 1
            i -= 1
        }
        return waitingJobs >= Self.localQueueLimit
    }

    /// `CameraLoop.localQueueLimit`.
    static let localQueueLimit = 2

    /// CameraLoop.edgeUsable: the mode allows the edge, it is alive, no directive keeps the camera local.
    private func edgeUsable(now: UInt64, engine: LoadgenEngine) -> Bool {
        syncHeard(engine)
        guard mode != .local, !policy.obeysLocalDirective(at: now / 1000) else { return false }
        switch policy.edgeState(at: now / 1000) {
        case .dead, .incompatible: return false
        default: return true
        }
    }

    /// CameraLoop.takeFrame: the policy routes the frame.
    private func take(scheduled: UInt64, now: UInt64, engine: LoadgenEngine) {
        syncHeard(engine)
        let deadline = scheduled / 1000 + sloMilliseconds
        var route = policy.decide(at: now / 1000)
        // CameraLoop.takeFrame: the local model has more than it can finish in time, so the edge takes the frame.
        if route == .local, localSaturated(now: now), edgeUsable(now: now, engine: engine) { route = mode == .offload ? .offload : .split }
        switch route {
        case .local:
            runLocally(scheduled: scheduled, deadline: deadline, fellBack: false, now: now, engine: engine)
        case .drop(let reason):
            engine.recorder.recordDropped(group: group, reason: reason)
        case .split, .offload:
            let sequence = nextSequence
            nextSequence += 1
            // CameraLoop.send takes the epoch when the frame leaves; here the head's time is modelled, so at the decision.
            atEdge[sequence] = EdgeFrame(scheduled: scheduled, deadline: deadline, epoch: policy.epoch, route: route)
            let compute = route == .split ? headMicroseconds : encodeMicroseconds
            let ready = occupy(compute, from: now)
            if ready <= now {
                transmit(sequence, now: now, engine: engine)
            } else {
                engine.queue.push(at: ready, .computeDone, camera: index, a: sequence)
            }
        }
    }

    /// The head (or JPEG encode) of frame `sequence` is done: it enters the uplink.
    func transmit(_ sequence: UInt64, now: UInt64, engine: LoadgenEngine) {
        guard var frame = atEdge[sequence] else { return }
        let bytes = engine.payloadBytes(route: frame.route, camera: self, sequence: sequence)
        let (arrival, _) = uplink.transmit(bytes: bytes, at: now)
        bytesSent += bytes
        // CameraLoop.send: the edge deadline, sent as "dl" and when the camera stops waiting; a frame
        // behind the camera's schedule still gives the edge half its budget from now.
        let budget = frame.deadline > frame.scheduled / 1000 ? frame.deadline - frame.scheduled / 1000 : 1
        frame.giveUpAt = max(policy.edgeDeadline(start: frame.scheduled / 1000, deadline: frame.deadline), now / 1000 + max(1, budget / 2))
        frame.sent = now
        atEdge[sequence] = frame
        engine.queue.push(at: max(frame.giveUpAt * 1000, now), .giveUp, camera: index, a: sequence)
        guard let arrival else {
            engine.recorder.recordUplinkLoss(group: group)  // no reply will come: the reply timeout settles it
            return
        }
        if arrival <= now {
            deliver(sequence, now: now, engine: engine)
        } else {
            engine.queue.push(at: arrival, .deliver, camera: index, a: sequence)
        }
    }

    /// The frame has crossed the uplink: hand the FRAME to the broker's socket.
    func deliver(_ sequence: UInt64, now: UInt64, engine: LoadgenEngine) {
        guard var frame = atEdge[sequence], !frame.delivered else { return }
        guard let bytes = engine.encodeFrame(camera: self, sequence: sequence, frame: frame) else {
            // Our own frame breaks a protocol limit: no fault of the edge, so no back-off (CameraLoop.send).
            atEdge[sequence] = nil
            fallBack(frame, reason: .rejected, now: now, engine: engine)
            return
        }
        guard engine.transport.trySend(bytes, connection: connection) else {
            atEdge[sequence] = nil
            settle(frame, .sendFailed, now: now, engine: engine)
            return
        }
        frame.delivered = true
        atEdge[sequence] = frame
        engine.recorder.recordSent(group: group)
        engine.noteSent(connection: connection, now: now)
    }

    /// The reply timeout of frame `sequence` fired (CameraLoop.settleOverdue).
    func giveUp(_ sequence: UInt64, now: UInt64, engine: LoadgenEngine) {
        guard let frame = atEdge.removeValue(forKey: sequence) else { return }
        settle(frame, .replyTimeout, now: now, engine: engine)
    }

    /// A RESULT or ERROR for this camera arrived (CameraLoop+Replies.handle / handleError).
    func reply(_ message: Message, now: UInt64, engine: LoadgenEngine) {
        syncHeard(engine)
        switch message {
        case .result(let result):
            guard let frame = atEdge[result.sequence], frame.delivered else {
                engine.recorder.recordIgnoredReply()  // settled already (late, duplicate) or not ours
                return
            }
            atEdge[result.sequence] = nil
            if let label = engine.label(camera: self, sequence: result.sequence, route: frame.route) {
                engine.recorder.recordEdgeAccuracy(group: group, correct: result.classIndices.first == label)
            }
            settle(frame, .result, now: now, engine: engine)
        case .error(let error):
            guard let sequence = error.sequence, let frame = atEdge[sequence], frame.delivered else {
                // An answer naming no frame still tells about the edge when it says another version.
                if error.code == .unsupportedVersion { policy.record(.error(error.code), epoch: policy.epoch, at: now / 1000) }
                engine.recorder.recordIgnoredReply()
                return
            }
            atEdge[sequence] = nil
            settle(frame, .error(error), now: now, engine: engine)
        default:
            engine.recorder.recordIgnoredReply()
        }
    }

    /// The one mapping of an edge outcome to the policy (`CameraPolicy.record`), then to a
    /// completion or a fallback, as CameraLoop+Replies and CameraLoop.settleOverdue do.
    private func settle(_ frame: EdgeFrame, _ outcome: EdgeOutcome, now: UInt64, engine: LoadgenEngine) {
        let nowMs = now / 1000
        let reason: DropReason
        switch outcome {
        case .result:
            let latency = now &- frame.scheduled
            // CameraLoop+Replies: the edge is judged on its own part, from the send.
            let edgeTime = Double(now &- frame.sent) / 1000
            let edgeBudget = Double(frame.giveUpAt &* 1000 &- frame.sent) / 1000
            policy.record(.result(latencyMilliseconds: edgeTime, budgetMilliseconds: edgeBudget), epoch: frame.epoch, at: nowMs)
            latencyWindow.recordCompleted(latencyMilliseconds: Double(latency) / 1000)
            engine.recorder.recordCompleted(group: group, path: .edge, latencyMicroseconds: latency, late: nowMs > frame.deadline)
            edgeFrames += 1
            pullWaiting(now: now, engine: engine)
            return
        case .error(let error):
            if error.code == .expired { latencyWindow.recordMissed() }
            engine.recorder.recordEdgeError(group: group, code: error.code.rawValue)
            reason = policy.record(.error(error.code, retryAfterMilliseconds: error.retryAfterMilliseconds), epoch: frame.epoch, at: nowMs)
                ?? .rejected
        case .replyTimeout:
            latencyWindow.recordMissed()
            reason = policy.record(.timedOut, epoch: frame.epoch, at: nowMs) ?? .timeout
        case .sendFailed:
            reason = policy.record(.sendFailed, epoch: frame.epoch, at: nowMs) ?? .sendFailed
        }
        fallBack(frame, reason: reason, now: now, engine: engine)
    }

    /// CameraLoop.fallBack: a camera with the whole model computes the frame (late if it must),
    /// one without drops it for `reason`.
    private func fallBack(_ frame: EdgeFrame, reason: DropReason, now: UInt64, engine: LoadgenEngine) {
        switch policy.fallback(after: reason) {
        case .local: runLocally(scheduled: frame.scheduled, deadline: frame.deadline, fellBack: true, now: now, engine: engine)
        case .drop(let r): engine.recorder.recordDropped(group: group, reason: r)
        case .split, .offload: engine.recorder.recordDropped(group: group, reason: reason)
        }
        pullWaiting(now: now, engine: engine)
    }

    /// Frames that waited are taken as edge slots and the local model free up.
    private func pullWaiting(now: UInt64, engine: LoadgenEngine) {
        while waitingHead < waiting.count, canTake(now: now, engine: engine) {
            let scheduled = waiting[waitingHead]
            waitingHead += 1
            take(scheduled: scheduled, now: now, engine: engine)
        }
        if waitingHead > 1024, waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
    }

    /// The whole model runs on its own processor (CameraLoop hands it to `LocalCompute`), after
    /// the local frames already queued there; fallbacks are always queued.
    private func runLocally(scheduled: UInt64, deadline: UInt64, fellBack: Bool, now: UInt64, engine: LoadgenEngine) {
        let begin = max(now, localBusyUntil)
        let done = begin + fullMicroseconds
        localBusyUntil = done
        busyMicroseconds += fullMicroseconds
        localStarts.append(begin)
        // CameraLoop.collectLocal: the policy's moving average of local compute time.
        policy.recordLocalCompute(milliseconds: Double(fullMicroseconds) / 1000)
        localRunning += 1
        if done <= now {
            finishLocal(scheduled: scheduled, deadline: deadline, fellBack: fellBack, now: now, engine: engine)
        } else {
            engine.queue.push(at: done, .localDone, camera: index, a: scheduled, b: deadline << 1 | (fellBack ? 1 : 0))
        }
    }

    func finishLocal(scheduled: UInt64, deadline: UInt64, fellBack: Bool, now: UInt64, engine: LoadgenEngine) {
        localRunning -= 1
        localStartsHead += 1
        if localStartsHead > 64, localStartsHead * 2 > localStarts.count {
            localStarts.removeFirst(localStartsHead)
            localStartsHead = 0
        }
        defer { pullWaiting(now: now, engine: engine) }
        // CameraLoop.computeLocally: local completions go in the latency report too.
        latencyWindow.recordLocal(latencyMilliseconds: Double(now &- scheduled) / 1000)
        engine.recorder.recordCompleted(
            group: group, path: fellBack ? .fallback : .local, latencyMicroseconds: now &- scheduled, late: now / 1000 > deadline)
    }

    /// Reserves the camera's processor for `duration` µs from `now` (or when it frees up); returns the end.
    private func occupy(_ duration: UInt64, from now: UInt64) -> UInt64 {
        let begin = max(now, busyUntil)
        busyUntil = begin + duration
        busyMicroseconds += duration
        return busyUntil
    }

    // MARK: Broker and controller

    /// Any message on the camera's connection is a sign of life (CameraLoop+Replies.receiveReplies).
    /// The loop records it per connection; the policy hears it before it next decides.
    private func syncHeard(_ engine: LoadgenEngine) {
        let heard = engine.lastHeard[connection]
        if heard > heardSynced {
            policy.heard(at: heard / 1000)
            heardSynced = heard
        }
    }

    /// DISCONNECT from the broker on this camera's connection.
    func brokerLeft(now: UInt64, engine: LoadgenEngine) {
        heardSynced = max(heardSynced, engine.lastHeard[connection])
        policy.brokerLeft(at: now / 1000)
    }

    /// A DIRECTIVE from the controller (CameraLoop+Replies.receiveDirectives). A local camera has no subscription.
    func apply(_ directive: DirectiveMessage, now: UInt64) -> Bool {
        guard mode != .local else { return false }
        return policy.apply(directive, at: now / 1000)
    }

    /// The HEARTBEAT carrying this camera's latency report, if its window saw an edge frame.
    func latencyReport(now: UInt64) -> LatencyReport? {
        guard mode != .local, var report = latencyWindow.report(at: now / 1000) else { return nil }
        // As CameraLoop.sendLatencyReportIfDue: how the camera runs now (STATS `cm`).
        report.mode = obeysLocalDirective(now: now) ? CameraMode.local.rawValue : mode.rawValue
        return report
    }

    /// Whether a `local` directive keeps the camera off the edge now.
    func obeysLocalDirective(now: UInt64) -> Bool { policy.obeysLocalDirective(at: now / 1000) }

    /// The policy's edge state, by name.
    func edgeStateName(now: UInt64, engine: LoadgenEngine) -> String {
        syncHeard(engine)
        return policy.edgeState(at: now / 1000).name
    }

    /// The share of frames the policy sends to the edge now (its own, capped by a directive's).
    func edgeShare(now: UInt64) -> Double { policy.effectiveShare(at: now / 1000) }

    /// Changes of the policy's edge state so far (mode changes, as issue 10 counts them).
    var stateChanges: Int { policy.stateChanges }

    /// The run is over: every frame not yet settled is dropped as `shutdown`, as a draining camera does.
    func abandon(engine: LoadgenEngine) {
        let left = atEdge.count + framesWaiting + localRunning
        for _ in 0..<left { engine.recorder.recordDropped(group: group, reason: .shutdown) }
        atEdge.removeAll()
        waiting.removeAll()
        waitingHead = 0
        localRunning = 0
        localStarts.removeAll()
        localStartsHead = 0
    }
}
