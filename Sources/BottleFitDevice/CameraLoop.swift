import BottleFitCore
import BottleFitImaging
import BottleFitProtocol
import Logging
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The camera's loop: one thread owns it, its sockets and its engine sessions.
///
/// Each turn settles frames whose reply is overdue, takes the next frame when it is due and the
/// in-flight bound allows, sends a heartbeat when idle, and waits on the sockets for at most
/// the time until the next of those events (never more than `pollTimeoutMilliseconds`).
final class CameraLoop {
    /// A frame at the edge, with what a local fallback needs.
    struct PendingFrame {
        let image: Image
        let label: Int?
        /// Latency counts from here: the scheduled time (open loop) or when it was taken.
        let startMicroseconds: UInt64
        let deadline: UInt64
        /// Stop waiting for the edge at this Unix ms (leaves time to compute locally).
        let giveUpAt: UInt64
        /// When it was handed to the socket, Unix µs: the edge's part of the latency counts from here.
        let sentMicroseconds: UInt64
        /// The policy's epoch when it was sent.
        let epoch: UInt64
    }

    let configuration: CameraConfiguration
    let clock: any CameraClock
    let limits = ProtocolLimits.default
    var policy: CameraPolicy
    var accounting = FrameAccounting()
    let models: CameraModels
    var source: any FrameSource
    let broker: ZMQSocket?
    let directives: ZMQSocket?
    let poller = ZMQPoller()
    var pending: [UInt64: PendingFrame] = [:]
    var nextSequence: UInt64 = 0
    var lastSentMicroseconds: UInt64
    var nextFrameDue: UInt64
    var taken = 0
    var sourceFinished = false
    var skippedSeen = 0
    let heartbeat: [UInt8]
    let logger: Logger
    /// The edge state last logged, so changes are logged once.
    var loggedEdgeState = "healthy"
    /// Edge latency since the last report, and when the next report is due (Unix µs).
    var edgeLatency: EdgeLatencyWindow
    var nextReportAt: UInt64
    /// When the status was last handed to `run`'s `report` (Unix µs).
    var lastStatusAt: UInt64 = 0
    /// Refusals (BAD_REQUEST, TOO_LARGE, INTERNAL) not logged yet, and when one last was (µs).
    var refusalsUnlogged = 0
    var lastRefusalLog: UInt64?
    /// The whole model on its own thread (nil without one), and the frames it holds.
    let local: LocalCompute?
    struct LocalFrame {
        let label: Int?
        let startMicroseconds: UInt64
        let deadline: UInt64
        let fellBack: Bool
    }
    var localFrames: [UInt64: LocalFrame] = [:]
    var nextLocalID: UInt64 = 0
    /// Frames waiting for the local model beyond which a frame routed local goes to the edge
    /// instead (the camera cannot compute it in time), or, with no usable edge, no new frame is taken.
    static let localQueueLimit = 2

    init(
        configuration: CameraConfiguration, source: any FrameSource, context: ZMQContext, clock: any CameraClock, logger: Logger
    ) throws(CameraError) {
        try configuration.validate()
        self.logger = logger
        self.configuration = configuration
        self.clock = clock
        self.source = source
        models = try CameraModels(configuration: configuration)
        let warmUp = models.warmUp(clock: clock)
        let now = clock.unixMicroseconds()
        policy = CameraPolicy(configuration.policyConfiguration, now: now / 1000)
        if let warmUp { policy.recordLocalCompute(milliseconds: warmUp) }
        lastSentMicroseconds = now
        nextFrameDue = now
        edgeLatency = EdgeLatencyWindow(cameraID: configuration.cameraID, now: now / 1000)
        nextReportAt = now + configuration.latencyReportIntervalMilliseconds * 1000
        heartbeat = try! HeartbeatMessage().encoded()  // a constant message: cannot fail
        do {
            (broker, directives) = try CameraSockets.make(context: context, configuration: configuration)
            if let broker { _ = try poller.add(broker) }
            if let directives { _ = try poller.add(directives) }
            local = models.full == nil ? nil : try LocalCompute(models: models, clock: clock, context: context)
            if let local { _ = try poller.add(local.wakeSocket) }
        } catch {
            throw .transport("\(error)")
        }
        logger.info("camera started", metadata: [
            "camera": "\(configuration.cameraID)", "mode": "\(configuration.mode)",
            "broker": "\(configuration.brokerEndpoint ?? "-")", "directives": "\(configuration.directiveEndpoint ?? "-")",
            "local_ms": "\(warmUp.map { String($0) } ?? "-")",
        ])
    }

    /// Runs until the source ends (or `maxFrames`) or `shouldStop` says so, then drains:
    /// every frame at the edge is settled by its reply, its fallback or its deadline.
    /// `report` gets the camera's status at most every 100 ms, and once more at the end.
    func run(shouldStop: () -> Bool, report: (CameraStatus) -> Void = { _ in }) -> FrameAccounting {
        let drainCap = (configuration.sloMilliseconds + 1000) * 1000
        var drainUntil: UInt64?
        while true {
            let now = clock.unixMicroseconds()
            collectLocal()
            settleOverdue(now: now)
            let draining = sourceFinished || shouldStop()
            if draining {
                let until = drainUntil ?? now + drainCap
                drainUntil = until
                if (pending.isEmpty && localFrames.isEmpty) || now >= until { break }
            }
            var waitMicroseconds = UInt64(configuration.pollTimeoutMilliseconds) * 1000
            if !draining && pending.count < configuration.maxInFlight && !(localSaturated && !edgeUsable(at: now / 1000)) {
                if now >= nextFrameDue {
                    takeFrame(now: now)
                    waitMicroseconds = 0  // only look at the sockets, then take the next frame
                } else {
                    waitMicroseconds = min(waitMicroseconds, nextFrameDue - now)
                }
            }
            if let earliest = pending.values.lazy.map(\.giveUpAt).min() {
                let giveUp = earliest * 1000
                waitMicroseconds = min(waitMicroseconds, giveUp > now ? giveUp - now : 0)
            }
            if configuration.latencyReportIntervalMilliseconds > 0 {
                sendLatencyReportIfDue(now: now)
                waitMicroseconds = min(waitMicroseconds, nextReportAt > now ? nextReportAt - now : 0)
            }
            sendHeartbeatIfIdle(now: now)
            service(waitMicroseconds: waitMicroseconds)
            logEdgeStateChange()
            let after = clock.unixMicroseconds()
            if after >= lastStatusAt + 100_000 {
                lastStatusAt = after
                report(status(at: after))
            }
        }
        for _ in pending { accounting.recordDropped(.shutdown) }
        pending.removeAll()
        if let local {
            let abandoned = local.stop()
            collectLocal()
            for id in abandoned where localFrames.removeValue(forKey: id) != nil { accounting.recordDropped(.shutdown) }
        }
        for _ in localFrames { accounting.recordDropped(.shutdown) }
        localFrames.removeAll()
        closeSockets()
        report(status(at: clock.unixMicroseconds()))
        return accounting
    }

    /// The camera as `/metrics` shows it.
    private func status(at now: UInt64) -> CameraStatus {
        CameraStatus(
            accounting: accounting, edgeState: policy.edgeState(at: now / 1000).name,
            framesAtEdge: pending.count, obeyingLocalDirective: policy.obeysLocalDirective(at: now / 1000),
            edgeShare: policy.effectiveShare(at: now / 1000), stateChanges: policy.stateChanges)
    }

    // MARK: Frames

    private func takeFrame(now: UInt64) {
        if let max = configuration.maxFrames, taken >= max {
            sourceFinished = true
            return
        }
        let frame = source.next()
        if let skipping = source as? any SkippingFrameSource {
            let skipped = skipping.skippedCount
            accounting.recordSourceSkipped(skipped - skippedSeen)
            skippedSeen = skipped
        }
        guard let frame else {
            sourceFinished = true
            return
        }
        taken += 1
        accounting.recordOffered()
        // Open loop: the schedule advances by the period whatever happened, and latency counts
        // from the scheduled time, so a slow camera cannot hide its delay.
        let start: UInt64
        if let fps = configuration.framesPerSecond {
            start = nextFrameDue
            nextFrameDue += UInt64((1_000_000 / fps).rounded())
        } else {
            start = now
            nextFrameDue = now
        }
        let nowMs = now / 1000
        let deadline = start / 1000 + configuration.sloMilliseconds
        var route = policy.decide(at: nowMs)
        // The whole model is busy with more than it can finish in time: the edge takes the frame.
        if route == .local, localSaturated, edgeUsable(at: nowMs) { route = configuration.mode == .offload ? .offload : .split }
        switch route {
        case .local:
            computeLocally(frame.image, label: frame.label, start: start, deadline: deadline, fellBack: false)
        case .drop(let reason):
            accounting.recordDropped(reason)
        case .split:
            let payload: QuantizedTensor
            do {
                payload = try models.runHead(frame.image)
            } catch {
                accounting.recordDropped(.inferenceError)
                return
            }
            send(.bottleneck(payload), frame: frame, start: start, deadline: deadline)
        case .offload:
            guard let jpeg = frame.jpeg ?? (try? JPEGCodec.encode(frame.image, quality: configuration.jpegQuality)) else {
                accounting.recordDropped(.inferenceError)
                return
            }
            send(.jpeg(jpeg), frame: frame, start: start, deadline: deadline)
        }
    }

    private func send(_ payload: FramePayload, frame: Frame, start: UInt64, deadline: UInt64) {
        let sequence = nextSequence
        nextSequence += 1
        let now = clock.unixMicroseconds()
        // The edge gets the frame's edge deadline as "dl": past it the camera has computed the
        // frame itself, so the broker must not spend a worker on it. A frame taken behind the
        // camera's schedule still gives the edge half its budget from now: it is late whatever
        // path it takes, and an EXPIRED would blame the edge for the camera's own delay.
        let budget = deadline > start / 1000 ? deadline - start / 1000 : 1
        let edgeDeadline = max(policy.edgeDeadline(start: start / 1000, deadline: deadline), now / 1000 + max(1, budget / 2))
        let message = FrameMessage(
            cameraID: configuration.cameraID, sequence: sequence, model: configuration.modelName, payload: payload,
            deadline: edgeDeadline, sentAt: start / 1000, label: frame.label)
        let epoch = policy.epoch
        guard let bytes = try? message.encoded(limits: limits) else {
            // Our own frame breaks a protocol limit: no fault of the edge, so no back-off.
            fallBack(image: frame.image, label: frame.label, start: start, deadline: deadline, reason: .rejected, now: now)
            return
        }
        // DEALER with ZMQ_IMMEDIATE: "would block" means no broker is connected; say so at once.
        guard let broker, (try? broker.trySend([[], bytes])) == true else {
            let reason = policy.record(.sendFailed, epoch: epoch, at: now / 1000) ?? .sendFailed
            fallBack(image: frame.image, label: frame.label, start: start, deadline: deadline, reason: reason, now: now)
            return
        }
        accounting.recordSent()
        lastSentMicroseconds = now
        pending[sequence] = PendingFrame(
            image: frame.image, label: frame.label, startMicroseconds: start, deadline: deadline,
            giveUpAt: edgeDeadline, sentMicroseconds: now, epoch: epoch)
    }

    /// Hands the frame to the local model; it completes when `collectLocal` sees it done.
    func computeLocally(_ image: Image, label: Int?, start: UInt64, deadline: UInt64, fellBack: Bool) {
        guard let local else {
            accounting.recordDropped(.inferenceError)  // unreachable: routes are local only with a whole model
            return
        }
        let id = nextLocalID
        nextLocalID += 1
        localFrames[id] = LocalFrame(label: label, startMicroseconds: start, deadline: deadline, fellBack: fellBack)
        local.submit(LocalCompute.Job(id: id, image: image))
    }

    /// Completes the frames the local model finished.
    func collectLocal() {
        guard let local, !localFrames.isEmpty else { return }
        for done in local.collect() {
            guard let frame = localFrames.removeValue(forKey: done.id) else { continue }
            policy.recordLocalCompute(milliseconds: Double(done.finishedAt &- done.startedAt) / 1000)
            let latency = Double(done.finishedAt &- frame.startMicroseconds) / 1000
            edgeLatency.recordLocal(latencyMilliseconds: latency)
            accounting.recordCompleted(
                on: .local, latencyMilliseconds: latency, top1: done.top1, label: frame.label,
                late: done.finishedAt / 1000 > frame.deadline, fellBack: frame.fellBack)
        }
    }

    /// Whether the local model has more waiting than it can finish in time.
    var localSaturated: Bool { (local?.waiting ?? 0) >= Self.localQueueLimit }

    /// Whether a frame could go to the edge now (the mode allows it, the edge is alive, no
    /// directive keeps the camera local).
    func edgeUsable(at nowMs: UInt64) -> Bool {
        guard configuration.mode != .local, !policy.obeysLocalDirective(at: nowMs) else { return false }
        switch policy.edgeState(at: nowMs) {
        case .dead, .incompatible: return false
        default: return true
        }
    }

    /// An edge frame failed for `reason`: compute it locally when the camera can (late if it
    /// must), else drop it for that reason.
    func fallBack(image: Image, label: Int?, start: UInt64, deadline: UInt64, reason: DropReason, now: UInt64) {
        switch policy.fallback(after: reason) {
        case .local:
            // The one bound on fallbacks: a local backlog longer than twice the SLO (a board whose
            // whole model is far slower than its frame rate, under a failing edge) would only grow.
            let backlog = Double(local?.waiting ?? 0) * (policy.localEstimateMilliseconds ?? 0)
            if backlog > 2 * Double(configuration.sloMilliseconds) {
                accounting.recordDropped(.overloaded)
                return
            }
            computeLocally(image, label: label, start: start, deadline: deadline, fellBack: true)
        case .drop(let r): accounting.recordDropped(r)
        case .split, .offload: accounting.recordDropped(reason)  // `fallback` never sends again
        }
    }

    /// Frames whose reply did not come in time count as deadline misses at the edge.
    private func settleOverdue(now: UInt64) {
        let nowMs = now / 1000
        guard pending.values.contains(where: { $0.giveUpAt <= nowMs }) else { return }
        let overdue = pending.filter { $0.value.giveUpAt <= nowMs }
        for (sequence, frame) in overdue.sorted(by: { $0.key < $1.key }) {
            pending[sequence] = nil
            edgeLatency.recordMissed()
            let reason = policy.record(.timedOut, epoch: frame.epoch, at: nowMs) ?? .timeout
            fallBack(image: frame.image, label: frame.label, start: frame.startMicroseconds, deadline: frame.deadline,
                     reason: reason, now: clock.unixMicroseconds())
        }
    }

    private func logEdgeStateChange() {
        let now = clock.unixMicroseconds() / 1000
        let name = policy.edgeState(at: now).name
        guard name != loggedEdgeState else { return }
        // Dead and incompatible matter to operators; congestion is logged at info with the share.
        let level: Logger.Level = name == "dead" || name == "incompatible" ? .warning : .info
        logger.log(level: level, "edge \(loggedEdgeState) -> \(name)", metadata: [
            "camera": "\(configuration.cameraID)", "share": "\(Int((policy.effectiveShare(at: now) * 100).rounded()))%",
        ])
        loggedEdgeState = name
    }

    // MARK: Sockets

    /// Every `latencyReportIntervalMilliseconds`: a HEARTBEAT carrying the window's latency report,
    /// if the window saw an edge frame. It counts as a message sent, so it also serves as the heartbeat.
    private func sendLatencyReportIfDue(now: UInt64) {
        guard now >= nextReportAt else { return }
        nextReportAt = now + configuration.latencyReportIntervalMilliseconds * 1000
        guard let broker, var report = edgeLatency.report(at: now / 1000) else { return }
        // How it runs now, for the broker's cameras-by-mode (STATS `cm`).
        let local = configuration.mode == .local || policy.obeysLocalDirective(at: now / 1000)
        report.mode = local ? CameraMode.local.rawValue : configuration.mode.rawValue
        guard let bytes = try? HeartbeatMessage(latencyReport: report).encoded(limits: limits) else { return }
        // Not connected (would block): the figures are dropped; the next window starts afresh.
        if (try? broker.trySend([[], bytes])) == true {
            accounting.recordLatencyReportSent()
            lastSentMicroseconds = now
        }
    }

    private func sendHeartbeatIfIdle(now: UInt64) {
        guard let broker, now >= lastSentMicroseconds + configuration.heartbeatIntervalMilliseconds * 1000 else { return }
        // Not connected (would block) is fine: silence is what the policy watches for.
        _ = try? broker.trySend([[], heartbeat])
        lastSentMicroseconds = now
    }

    /// Waits up to `waitMicroseconds` for messages and handles a bounded number of them.
    private func service(waitMicroseconds: UInt64) {
        guard poller.count > 0 else {
            if waitMicroseconds > 0 { usleep(UInt32(min(waitMicroseconds, 1_000_000))) }
            return
        }
        let ready = (try? poller.poll(timeout: .microseconds(Int64(waitMicroseconds)))) ?? 0
        guard ready > 0 else { return }
        if let broker { receiveReplies(from: broker) }
        if let directives { receiveDirectives(from: directives) }
    }

    private func closeSockets() {
        if let broker {
            _ = try? broker.trySend([[], try! DisconnectMessage(reason: "camera stopping").encoded()])
            try? broker.close()
        }
        try? directives?.close()
    }
}
