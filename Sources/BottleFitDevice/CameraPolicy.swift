import BottleFitProtocol

/// The camera's decision logic: for each frame, split, local or offload (or drop), from the
/// configured mode, controller directives and what the camera has seen of the edge.
///
/// A pure value with no sockets and no clock of its own: every call takes `now` in Unix
/// milliseconds, so the load generator can drive hundreds of them from one clock and tests
/// can drive one with made-up times. `record(_:epoch:at:)` is the one entry point for what
/// happened to a frame sent to the edge; `CameraLoop` and the load generator both use it.
///
/// The edge is in one of five states (docs/device.md has the diagram):
/// - **healthy**: every frame goes to the edge.
/// - **congested** (slow or full: BUSY, EXPIRED, an answer too late, no answer in time): the
///   camera sends a *share* of its frames and computes the rest locally. The share falls by
///   `shareDecrease` at each congestion signal (once per round of frames in flight, the
///   `epoch`) and grows by `shareIncreasePerSecond` while answers come back in time, as TCP's
///   AIMD does, so cameras sharing an edge converge to equal shares and keep it full. At least
///   one frame goes to the edge every `probeIntervalMilliseconds`, whatever the share: the edge
///   never idles while cameras compute locally. Never a back-off.
/// - **starting** (UNKNOWN_MODEL: no worker serves the model yet): local, with one frame every
///   `startingProbeIntervalMilliseconds` to find out when a worker joins.
/// - **dead** (nothing heard for `liveness` heartbeat intervals, a DISCONNECT, or a frame that
///   could not be sent): local until anything is heard from the broker again. The camera keeps
///   sending HEARTBEATs, whose answers bring it back.
/// - **incompatible** (UNSUPPORTED_VERSION): never sends to the edge again.
///
/// A camera without the whole model cannot compute locally, so it sends every frame while the
/// edge is not dead: the broker's per-camera fairness sheds the excess, and dropping a frame here
/// instead would only leave the edge idler.
public struct CameraPolicy: Sendable {
    /// Fixed parameters of a policy.
    public struct Configuration: Sendable, Equatable {
        /// The camera's id, for directive targets.
        public var cameraID: String
        /// Where the camera computes when nothing stops it.
        public var mode: CameraMode
        /// Whether the camera has the whole model, so it can fall back to computing locally.
        public var canComputeLocally: Bool
        /// Heartbeat interval (protocol: 1000 ms).
        public var heartbeatIntervalMilliseconds: UInt64
        /// Intervals of silence after which the broker counts as gone (protocol: 3).
        public var liveness: UInt64
        /// Longest time without an edge frame while the edge is congested (at most 1000 ms).
        public var probeIntervalMilliseconds: UInt64
        /// Time between probes while no worker serves the model.
        public var startingProbeIntervalMilliseconds: UInt64
        /// The share is multiplied by this at each congestion signal.
        public var shareDecrease: Double
        /// The share grows by this much per second of answers in time after a recent congestion signal...
        public var shareIncreasePerSecond: Double
        /// ...and by this much per second once `calmMilliseconds` passed without one, so cameras
        /// return quickly when capacity comes back.
        public var calmShareIncreasePerSecond: Double
        /// After this long without a congestion signal the share grows at the calm rate.
        public var calmMilliseconds: UInt64
        /// With the whole share back and no congestion signal for this long, the edge is healthy
        /// again: longer than `calmMilliseconds`, so a camera probing a full edge does not flap
        /// between congested and healthy (each change is a mode change).
        public var healthyAfterMilliseconds: UInt64
        /// A RESULT later than this fraction of the frame's edge budget counts as a congestion signal.
        public var lateFraction: Double
        /// Time between frames at the camera's rate, ms (nil: frames as fast as they come). With
        /// the local estimate it bounds the share of frames the camera can compute itself.
        public var framePeriodMilliseconds: Double?

        public init(
            cameraID: String, mode: CameraMode = .split, canComputeLocally: Bool = true,
            heartbeatIntervalMilliseconds: UInt64 = 1000, liveness: UInt64 = 3,
            probeIntervalMilliseconds: UInt64 = 1000, startingProbeIntervalMilliseconds: UInt64 = 250,
            shareDecrease: Double = 0.85, shareIncreasePerSecond: Double = 0.25, calmShareIncreasePerSecond: Double = 1.0,
            calmMilliseconds: UInt64 = 1000, healthyAfterMilliseconds: UInt64 = 10_000, lateFraction: Double = 0.95,
            framePeriodMilliseconds: Double? = nil
        ) {
            self.healthyAfterMilliseconds = max(calmMilliseconds, healthyAfterMilliseconds)
            self.framePeriodMilliseconds = framePeriodMilliseconds
            self.cameraID = cameraID
            self.mode = mode
            self.canComputeLocally = canComputeLocally
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.liveness = liveness
            self.probeIntervalMilliseconds = probeIntervalMilliseconds
            self.startingProbeIntervalMilliseconds = startingProbeIntervalMilliseconds
            self.shareDecrease = shareDecrease
            self.shareIncreasePerSecond = shareIncreasePerSecond
            self.calmShareIncreasePerSecond = calmShareIncreasePerSecond
            self.calmMilliseconds = calmMilliseconds
            self.lateFraction = lateFraction
        }

        /// What is wrong with these parameters, in words; empty when usable.
        public var problems: [String] {
            var problems: [String] = []
            if heartbeatIntervalMilliseconds == 0 || liveness == 0 { problems.append("heartbeat interval and liveness must be positive") }
            if !(1...1000).contains(probeIntervalMilliseconds) { problems.append("the probe interval must be 1...1000 ms") }
            if !(1...1000).contains(startingProbeIntervalMilliseconds) { problems.append("the starting probe interval must be 1...1000 ms") }
            if !(shareDecrease > 0 && shareDecrease < 1) { problems.append("the share decrease must be in (0, 1)") }
            if !(shareIncreasePerSecond > 0 && shareIncreasePerSecond <= 10) { problems.append("the share increase must be in (0, 10] per second") }
            if !(calmShareIncreasePerSecond > 0 && calmShareIncreasePerSecond <= 10) { problems.append("the calm share increase must be in (0, 10] per second") }
            if !(lateFraction > 0 && lateFraction <= 1) { problems.append("the late fraction must be in (0, 1]") }
            return problems
        }
    }

    /// What the camera currently believes about the edge.
    public enum EdgeState: Sendable, Equatable {
        case healthy
        /// Slow or full: sending `share` of the frames (probing at least every probe interval).
        case congested(share: Double)
        /// No worker serves the model yet: local, probing every starting probe interval.
        case starting
        /// Nothing heard for `liveness` heartbeat intervals, a DISCONNECT, or a failed send.
        case dead
        /// The broker speaks another protocol version: never send to it again.
        case incompatible

        /// The name `/metrics` and the logs use.
        public var name: String {
            switch self {
            case .healthy: "healthy"
            case .congested: "congested"
            case .starting: "starting"
            case .dead: "dead"
            case .incompatible: "incompatible"
            }
        }

        /// Every state's name, in the order `/metrics` lists them.
        public static let names = ["healthy", "congested", "starting", "dead", "incompatible"]
    }

    /// What happened to a frame sent to the edge.
    public enum EdgeOutcome: Sendable, Equatable {
        /// A RESULT came back `latencyMilliseconds` after the frame was sent, which left the edge
        /// `budgetMilliseconds` (from sending to the frame's edge deadline). Measured from the
        /// send, not the schedule: a camera behind its own schedule is not a slow edge.
        case result(latencyMilliseconds: Double, budgetMilliseconds: Double)
        /// An ERROR came back.
        case error(ErrorCode, retryAfterMilliseconds: UInt64? = nil)
        /// No reply by the edge deadline.
        case timedOut
        /// The frame could not be handed to the socket (no broker connected, pipe full).
        case sendFailed
    }

    /// A directive the camera is obeying.
    public struct ActiveDirective: Sendable, Equatable {
        public var sequence: UInt64
        public var mode: DirectiveMessage.Mode
        public var validUntil: UInt64
        public var reason: String
        public var edgeShare: Double?
        public var edgeFloor: Double?
    }

    public let configuration: Configuration
    /// Advances at every congestion signal; tag each edge frame with the epoch at send time, so a
    /// burst of failures of frames that were all in flight together counts once.
    public private(set) var epoch: UInt64 = 0
    /// The directive in force, if any (it may have lapsed; `decide` checks `validUntil`).
    public private(set) var directive: ActiveDirective?
    /// Smoothed time the whole model takes here, in ms (nil until measured).
    public private(set) var localEstimateMilliseconds: Double?
    /// The camera's own share of frames for the edge, in (0, 1].
    public private(set) var share = 1.0
    /// Changes of the state's name so far (what "mode changes per minute" counts).
    public private(set) var stateChanges = 0

    private var lastHeard: UInt64
    /// Dead from a failed send or DISCONNECT at this time until something is heard after it.
    private var deadSince: UInt64?
    private var starting = false
    private var incompatible = false
    private var lastCongestion: UInt64?
    private var lastIncrease: UInt64?
    private var lastEdgeFrame: UInt64?
    /// Fractional frames owed to the edge at the current share.
    private var credit = 0.0
    private var lastStateName = "healthy"
    private var lastObeyedDirective: UInt64?

    /// A policy that counts the broker as alive from `now` (a grace period of `liveness` beats).
    public init(_ configuration: Configuration, now: UInt64) {
        self.configuration = configuration
        self.lastHeard = now
    }

    // MARK: Deciding

    /// The route for the next frame. Mutating: it spends share credit and notes probes.
    public mutating func decide(at now: UInt64) -> FrameRoute {
        let edge: FrameRoute
        switch configuration.mode {
        case .local: return .local
        case .split: edge = .split
        case .offload: edge = .offload
        }
        if let d = directive, now >= d.validUntil { directive = nil }
        let local = configuration.canComputeLocally
        // A camera without the whole model cannot obey "local"; it keeps using the edge.
        if directive?.mode == .local, local { return .local }
        let state = edgeState(at: now)
        noteState(state)
        switch state {
        case .dead, .incompatible:
            return local ? .local : .drop(.edgeDownNoLocal)
        case .starting:
            guard local else { return toEdge(edge, now) }
            return due(configuration.startingProbeIntervalMilliseconds, now) ? toEdge(edge, now) : .local
        case .healthy, .congested:
            guard local else { return toEdge(edge, now) }
            credit += effectiveShare(at: now)
            if credit >= 1 {
                credit -= 1
                return toEdge(edge, now)
            }
            if due(configuration.probeIntervalMilliseconds, now) {
                credit = 0
                return toEdge(edge, now)
            }
            return .local
        }
    }

    private mutating func toEdge(_ route: FrameRoute, _ now: UInt64) -> FrameRoute {
        lastEdgeFrame = now
        return route
    }

    private func due(_ interval: UInt64, _ now: UInt64) -> Bool {
        guard let last = lastEdgeFrame else { return true }
        return now >= last + interval
    }

    /// The share of frames that goes to the edge now: the camera's own, capped by a directive's
    /// `es` and raised to its `ef` (the controller sees an edge with room that the cameras' own
    /// congestion control leaves idle), and never below what the camera cannot compute itself
    /// (`localCapacityFloor`).
    public func effectiveShare(at now: UInt64) -> Double {
        guard let d = directive, now < d.validUntil, d.mode == .split, d.edgeShare != nil || d.edgeFloor != nil else { return share }
        let capped = d.edgeShare.map { min(share, $0) } ?? share
        return max(localCapacityFloor, d.edgeFloor.map { max(capped, $0) } ?? capped)
    }

    /// The smallest share of frames the edge must take because the camera cannot compute more
    /// itself: with a frame every P ms and the whole model taking L ms here, at most P / L of the
    /// frames can run locally (90 % of it, to leave the camera some slack). Sending fewer frames
    /// to the edge than this would only make the camera fall behind its own schedule, where every
    /// frame is late whichever path it takes.
    public var localCapacityFloor: Double {
        guard let period = configuration.framePeriodMilliseconds, let local = localEstimateMilliseconds, local > 0 else { return 0 }
        return min(1, max(0, 1 - 0.9 * period / local))
    }

    /// Whether a `local` directive in force at `now` keeps this camera off the edge.
    public func obeysLocalDirective(at now: UInt64) -> Bool {
        guard configuration.mode != .local, configuration.canComputeLocally, let d = directive else { return false }
        return d.mode == .local && now < d.validUntil
    }

    /// The edge as seen at `now`.
    public func edgeState(at now: UInt64) -> EdgeState {
        if incompatible { return .incompatible }
        if deadSince != nil { return .dead }
        if now >= lastHeard + configuration.liveness * configuration.heartbeatIntervalMilliseconds { return .dead }
        if starting { return .starting }
        if share < 1 { return .congested(share: share) }
        if let last = lastCongestion, now < last + configuration.healthyAfterMilliseconds { return .congested(share: share) }
        return .healthy
    }

    /// Counts a change of the state's name (a mode change, as the overload study counts them).
    private mutating func noteState(_ state: EdgeState) {
        let name = state.name
        guard name != lastStateName else { return }
        lastStateName = name
        stateChanges += 1
    }

    // MARK: Edge events

    /// Any message from the broker: a sign of life, which ends a dead state.
    public mutating func heard(at now: UInt64) {
        lastHeard = max(lastHeard, now)
        if let since = deadSince, now >= since { deadSince = nil }
    }

    /// What happened to a frame sent to the edge in `epoch`. Returns the reason the frame failed
    /// (the camera computes it locally when it can, or drops it for this reason), nil for a RESULT.
    @discardableResult
    public mutating func record(_ outcome: EdgeOutcome, epoch frameEpoch: UInt64, at now: UInt64) -> DropReason? {
        defer { noteState(edgeState(at: now)) }
        switch outcome {
        case .result(let latency, let budget):
            heard(at: now)
            starting = false
            if budget > 0, latency > configuration.lateFraction * budget {
                congested(epoch: frameEpoch, at: now)
            } else {
                grow(at: now)
            }
            return nil
        case .timedOut:
            congested(epoch: frameEpoch, at: now)
            return .timeout
        case .sendFailed:
            // With ZMQ_IMMEDIATE a send fails when no broker is connected: dead until it answers.
            deadSince = now + 1
            return .sendFailed
        case .error(let code, _):
            heard(at: now)
            switch code {
            case .busy:
                // The retry hint is not a pause: the share falls instead, and probes continue.
                starting = false
                congested(epoch: frameEpoch, at: now)
                return .busy
            case .expired:
                starting = false
                congested(epoch: frameEpoch, at: now)
                return .expired
            case .workerLost:
                // The pool recovers or shrinks by itself; only this frame is lost.
                return .workerLost
            case .unknownModel:
                starting = true
                return .noWorker
            case .unsupportedVersion:
                incompatible = true
                return .rejected
            default:
                // BAD_REQUEST, TOO_LARGE, INTERNAL: the edge will not serve these frames; sending
                // fewer of them wastes less, and probes tell when that changes.
                congested(epoch: frameEpoch, at: now)
                return .rejected
            }
        }
    }

    /// DISCONNECT from the broker: it is leaving, so count it as dead now rather than after
    /// `liveness` silent beats; anything heard from it later brings it back.
    public mutating func brokerLeft(at now: UInt64) {
        deadSince = now + 1
        noteState(edgeState(at: now))
    }

    private mutating func congested(epoch frameEpoch: UInt64, at now: UInt64) {
        lastCongestion = now
        lastIncrease = now
        guard frameEpoch == epoch else { return }  // a frame in flight with one already counted
        share = max(Self.minimumShare, localCapacityFloor, share * configuration.shareDecrease)
        credit = min(credit, share)
        epoch += 1
    }

    private mutating func grow(at now: UInt64) {
        defer { lastIncrease = now }
        guard share < 1 else { return }
        let calm = lastCongestion.map { now >= $0 + configuration.calmMilliseconds } ?? true
        let rate = calm ? configuration.calmShareIncreasePerSecond : configuration.shareIncreasePerSecond
        // Time since the previous answer, at most a second; and at most doubling per answer (as
        // TCP's slow start), so sparse answers after a long gap do not jump the share to 1.
        let elapsed = Double(min(1000, now - min(now, lastIncrease ?? now))) / 1000
        share = min(1, share + min(rate * max(elapsed, 0.02), max(0.05, share)))
    }

    /// The share never falls below this: probes keep at least one frame per probe interval anyway.
    static let minimumShare = 0.01

    // MARK: Directives

    /// Applies a DIRECTIVE. Returns whether this camera now obeys it.
    ///
    /// One whose `s` is not above the last obeyed is ignored (protocol.md section 7). A newer one
    /// that does not target this camera ends the directive it was obeying: this is how staged
    /// recovery (`tf` 0.75 → 0.5 → ...) hands cameras back to their own choice.
    @discardableResult
    public mutating func apply(_ message: DirectiveMessage, at now: UInt64) -> Bool {
        if let last = lastObeyedDirective, message.sequence <= last {
            // The controller re-publishes the directive in force with the same `s` and a renewed
            // `vu`: that renews it here (without it the directive lapsed `vu` after its first
            // publication, 5 s, whatever the controller kept saying). Not a new one: false.
            // Only the validity is taken from it (a same-`s` message is the same directive); one
            // that had lapsed meanwhile (messages lost for 5 s) is taken up again.
            if message.sequence == last, message.target.includes(cameraID: configuration.cameraID), now < message.validUntil {
                if var d = directive, d.sequence == last {
                    d.validUntil = max(d.validUntil, message.validUntil)
                    directive = d
                } else {
                    directive = ActiveDirective(sequence: message.sequence, mode: message.mode, validUntil: message.validUntil,
                                                reason: message.reason, edgeShare: message.edgeShare, edgeFloor: message.edgeFloor)
                }
            }
            return false
        }
        guard message.target.includes(cameraID: configuration.cameraID) else {
            if let d = directive, d.sequence < message.sequence { directive = nil }
            return false
        }
        lastObeyedDirective = message.sequence
        directive = now < message.validUntil
            ? ActiveDirective(sequence: message.sequence, mode: message.mode, validUntil: message.validUntil,
                              reason: message.reason, edgeShare: message.edgeShare, edgeFloor: message.edgeFloor)
            : nil
        return true
    }

    // MARK: Local fallback

    /// Records how long the whole model took here; the estimate is a moving average.
    public mutating func recordLocalCompute(milliseconds: Double) {
        guard milliseconds.isFinite, milliseconds >= 0 else { return }
        if let old = localEstimateMilliseconds {
            localEstimateMilliseconds = 0.8 * old + 0.2 * milliseconds
        } else {
            localEstimateMilliseconds = milliseconds
        }
    }

    /// What to do with an edge frame that failed for `reason`: a camera with the whole model
    /// computes it (late if it must: a late result beats none); one without drops it.
    public func fallback(after reason: DropReason) -> FrameRoute {
        configuration.canComputeLocally ? .local : .drop(reason)
    }

    /// The edge deadline of a frame started at `start` (Unix ms) with deadline `deadline`: early
    /// enough to compute it locally by its deadline when the whole model takes at most half the
    /// budget; otherwise the deadline itself (a local fallback would be late anyway, so the edge,
    /// the only path that can be in time, gets the whole budget). The camera stops waiting for
    /// the edge then, and sends it as the frame's `dl`, so the broker never spends compute on a
    /// frame the camera gave up.
    public func edgeDeadline(start: UInt64, deadline: UInt64) -> UInt64 {
        guard configuration.canComputeLocally, deadline > start else { return deadline }
        let estimate = UInt64((localEstimateMilliseconds ?? 0).rounded(.up))
        guard estimate <= (deadline - start) / 2 else { return deadline }
        return deadline - estimate
    }
}
