import BottleFitProtocol

/// The camera's decision logic: for each frame, split, local or offload (or drop), from the
/// configured mode, controller directives and what the camera has seen of the edge.
///
/// A pure value with no sockets and no clock of its own: every call takes `now` in Unix
/// milliseconds, so the load generator can drive hundreds of them from one clock and tests
/// can drive one with made-up times.
///
/// Edge health is a small state machine:
/// - **silent**: nothing heard from the broker for `liveness` heartbeat intervals; local until
///   anything is heard again (protocol.md section 10).
/// - **backing off**: after BUSY (never shorter than its `ra`), a missed deadline, EXPIRED or a
///   failed send; local until the back-off ends. Back-off doubles with each consecutive
///   failure (up to `maxBackoff`) so a struggling edge does not make the camera flap.
/// - **probing**: the back-off has ended; exactly one frame goes to the edge, the rest stay
///   local until its outcome is known. Success returns to healthy and resets the back-off.
///
/// Outcomes carry the `epoch` in force when their frame was sent. The epoch advances at every
/// escalation, so a burst of failures of frames that were all in flight together counts once,
/// and a late success from before a failure does not end a back-off.
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
        /// First back-off after a failure; doubles per consecutive failure.
        public var initialBackoffMilliseconds: UInt64
        /// Longest back-off.
        public var maxBackoffMilliseconds: UInt64

        public init(
            cameraID: String, mode: CameraMode = .split, canComputeLocally: Bool = true,
            heartbeatIntervalMilliseconds: UInt64 = 1000, liveness: UInt64 = 3,
            initialBackoffMilliseconds: UInt64 = 500, maxBackoffMilliseconds: UInt64 = 16_000
        ) {
            self.cameraID = cameraID
            self.mode = mode
            self.canComputeLocally = canComputeLocally
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.liveness = liveness
            self.initialBackoffMilliseconds = initialBackoffMilliseconds
            self.maxBackoffMilliseconds = max(initialBackoffMilliseconds, maxBackoffMilliseconds)
        }
    }

    /// What the camera currently believes about the edge.
    public enum EdgeState: Sendable, Equatable {
        case healthy
        /// Nothing heard for `liveness` heartbeat intervals.
        case silent
        /// Not sending to the edge until `until` (Unix ms), because of `cause`.
        case backingOff(until: UInt64, cause: DropReason)
        /// One probe frame is (or may be) at the edge; others stay local until it settles.
        case probing
        /// The broker speaks another protocol version: never send to it again.
        case incompatible
    }

    /// A directive the camera is obeying.
    public struct ActiveDirective: Sendable, Equatable {
        public var sequence: UInt64
        public var mode: DirectiveMessage.Mode
        public var validUntil: UInt64
        public var reason: String
    }

    public let configuration: Configuration
    /// Advances at every escalation; tag each edge frame with the epoch at send time.
    public private(set) var epoch: UInt64 = 0
    /// The directive in force, if any (it may have lapsed; `decide` checks `validUntil`).
    public private(set) var directive: ActiveDirective?
    /// Smoothed time the whole model takes here, in ms (nil until measured).
    public private(set) var localEstimateMilliseconds: Double?
    /// Consecutive failures behind the current back-off.
    public private(set) var failureStreak = 0

    private var lastHeard: UInt64
    private var lastObeyedDirective: UInt64?
    private var backoffUntil: UInt64?
    private var backoffCause = DropReason.edgeDownNoLocal
    private var probeSentAt: UInt64?
    private var incompatible = false

    /// A policy that counts the broker as alive from `now` (a grace period of `liveness` beats).
    public init(_ configuration: Configuration, now: UInt64) {
        self.configuration = configuration
        self.lastHeard = now
    }

    // MARK: Deciding

    /// The route for the next frame. Mutating because it may start a probe.
    public mutating func decide(at now: UInt64) -> FrameRoute {
        let edge: FrameRoute
        switch configuration.mode {
        case .local: return .local
        case .split: edge = .split
        case .offload: edge = .offload
        }
        if let d = directive, now >= d.validUntil { directive = nil }
        // A camera without the whole model cannot obey "local"; it keeps using the edge.
        if directive?.mode == .local, configuration.canComputeLocally { return .local }
        switch edgeState(at: now) {
        case .healthy:
            return edge
        case .silent, .incompatible:
            return fallback(.edgeDownNoLocal)
        case .backingOff(_, let cause):
            return fallback(cause)
        case .probing:
            // A probe whose outcome never came (it always should) must not block recovery forever.
            if let sent = probeSentAt, now < sent + configuration.maxBackoffMilliseconds {
                return fallback(backoffCause)
            }
            probeSentAt = now
            return edge
        }
    }

    /// Whether a `local` directive in force at `now` keeps this camera off the edge.
    public func obeysLocalDirective(at now: UInt64) -> Bool {
        guard configuration.mode != .local, configuration.canComputeLocally, let d = directive else { return false }
        return d.mode == .local && now < d.validUntil
    }

    /// The edge as seen at `now`.
    public func edgeState(at now: UInt64) -> EdgeState {
        if incompatible { return .incompatible }
        if now >= lastHeard + configuration.liveness * configuration.heartbeatIntervalMilliseconds { return .silent }
        if let until = backoffUntil {
            return now < until ? .backingOff(until: until, cause: backoffCause) : .probing
        }
        return .healthy
    }

    private func fallback(_ reason: DropReason) -> FrameRoute {
        configuration.canComputeLocally ? .local : .drop(reason)
    }

    // MARK: Edge events

    /// Any message from the broker: a sign of life.
    public mutating func heard(at now: UInt64) {
        lastHeard = max(lastHeard, now)
    }

    /// A RESULT arrived in time for a frame sent in `epoch`.
    public mutating func edgeSucceeded(epoch frameEpoch: UInt64, at now: UInt64) {
        heard(at: now)
        guard frameEpoch == epoch else { return }
        if backoffUntil == nil || probeSentAt != nil {
            backoffUntil = nil
            probeSentAt = nil
            failureStreak = 0
        }
    }

    /// BUSY for a frame sent in `epoch`: back off for at least `retryAfter` ms.
    public mutating func edgeBusy(retryAfterMilliseconds retryAfter: UInt64?, epoch frameEpoch: UInt64, at now: UInt64) {
        heard(at: now)
        escalate(epoch: frameEpoch, at: now, atLeast: retryAfter ?? 0, cause: .busyNoLocal)
    }

    /// A frame sent in `epoch` missed its deadline at the edge: no reply in time, or EXPIRED.
    public mutating func edgeMissedDeadline(epoch frameEpoch: UInt64, at now: UInt64) {
        escalate(epoch: frameEpoch, at: now, atLeast: 0, cause: .edgeDownNoLocal)
    }

    /// A frame could not be sent at all (no broker connected, queue full).
    public mutating func edgeSendFailed(epoch frameEpoch: UInt64, at now: UInt64) {
        escalate(epoch: frameEpoch, at: now, atLeast: 0, cause: .edgeDownNoLocal)
    }

    /// Another ERROR for a frame sent in `epoch` (WORKER_LOST, UNKNOWN_MODEL, BAD_REQUEST, ...):
    /// the broker is alive but did not serve the frame. Such an answer settles a probe, so the
    /// camera never waits out a whole back-off on an answered probe: with `retry` (WORKER_LOST:
    /// the pool recovers by itself) the next frame probes again; otherwise it backs off.
    public mutating func edgeRejected(epoch frameEpoch: UInt64, retry: Bool, at now: UInt64) {
        heard(at: now)
        if retry {
            if frameEpoch == epoch { probeSentAt = nil }
        } else {
            escalate(epoch: frameEpoch, at: now, atLeast: 0, cause: .edgeDownNoLocal)
        }
    }

    /// DISCONNECT from the broker: it is leaving, so count it as gone now rather than after
    /// `liveness` silent beats; anything heard from it later brings it back.
    public mutating func brokerLeft(at now: UInt64) {
        lastHeard = min(lastHeard, now.saturatingSubtract(configuration.liveness * configuration.heartbeatIntervalMilliseconds))
    }

    /// UNSUPPORTED_VERSION: the protocol says never retry the same version, so stop using the edge.
    public mutating func edgeIncompatible(at now: UInt64) {
        heard(at: now)
        incompatible = true
    }

    private mutating func escalate(epoch frameEpoch: UInt64, at now: UInt64, atLeast minimum: UInt64, cause: DropReason) {
        guard frameEpoch == epoch else {
            // A frame from before the current back-off began: it tells nothing new, but a longer
            // retry-after from the broker is still honoured.
            if let until = backoffUntil, minimum > 0 { backoffUntil = max(until, now + minimum) }
            return
        }
        failureStreak += 1
        let shift = UInt64(min(failureStreak - 1, 32))
        let backoff = min(configuration.maxBackoffMilliseconds, configuration.initialBackoffMilliseconds << shift)
        backoffUntil = now + max(backoff, minimum)
        backoffCause = cause
        probeSentAt = nil
        epoch += 1
    }

    // MARK: Directives

    /// Applies a DIRECTIVE. Returns whether this camera now obeys it.
    ///
    /// One whose `s` is not above the last obeyed is ignored (protocol.md section 7). A newer one
    /// that does not target this camera ends the directive it was obeying: this is how staged
    /// recovery (`tf` 0.75 → 0.5 → ...) hands cameras back to their own choice.
    @discardableResult
    public mutating func apply(_ message: DirectiveMessage, at now: UInt64) -> Bool {
        if let last = lastObeyedDirective, message.sequence <= last { return false }
        guard message.target.includes(cameraID: configuration.cameraID) else {
            if let d = directive, d.sequence < message.sequence { directive = nil }
            return false
        }
        lastObeyedDirective = message.sequence
        directive = now < message.validUntil
            ? ActiveDirective(sequence: message.sequence, mode: message.mode, validUntil: message.validUntil, reason: message.reason)
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

    /// Whether a frame started locally at `now` should finish by `deadline`.
    public func canFinishLocally(by deadline: UInt64, at now: UInt64) -> Bool {
        configuration.canComputeLocally && Double(now) + (localEstimateMilliseconds ?? 0) <= Double(deadline)
    }

    /// What to do with an edge frame that failed for `reason` at `now`: compute it locally if
    /// that still meets the deadline, otherwise drop it for that reason.
    public func fallback(after reason: DropReason, deadline: UInt64, at now: UInt64) -> FrameRoute {
        canFinishLocally(by: deadline, at: now) ? .local : .drop(reason)
    }

    /// When to stop waiting for the edge's reply to a frame sent at `sentAt`: early enough to
    /// compute it locally by its deadline, or the deadline itself when that is impossible.
    public func replyTimeout(sentAt: UInt64, deadline: UInt64) -> UInt64 {
        guard configuration.canComputeLocally else { return deadline }
        let estimate = UInt64((localEstimateMilliseconds ?? 0).rounded(.up))
        guard deadline > estimate, deadline - estimate > sentAt else { return deadline }
        return deadline - estimate
    }
}

extension UInt64 {
    fileprivate func saturatingSubtract(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }
}
