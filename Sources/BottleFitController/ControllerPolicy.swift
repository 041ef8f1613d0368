import BottleFitProtocol

/// What the controller made of the latest STATS (or of their absence).
public enum EdgeCondition: String, Sendable, Equatable, CustomStringConvertible {
    /// No STATS yet since the controller started.
    case unknown
    /// Queue time `q95` above the raise threshold.
    case overloaded
    /// Queue time between the two thresholds, or low but with drops: no reason to move either way.
    case steady
    /// Queue time below the lower threshold and no drops.
    case healthy
    /// No STATS for `silenceIntervals` STATS intervals.
    case silent

    public var description: String { rawValue }
}

/// One decision of `ControllerPolicy`: the fraction of cameras sent local, and why.
public struct ControllerDecision: Sendable, Equatable, CustomStringConvertible {
    /// Which way the fraction moved.
    public enum Action: String, Sendable, Equatable {
        case raise, lower, hold
    }

    public var action: Action
    /// The fraction before this decision.
    public var previousFraction: Double
    /// The fraction in force after it.
    public var fraction: Double
    /// How the edge looked.
    public var condition: EdgeCondition
    /// Why, in words: logged, and sent as the DIRECTIVE's `r` when the fraction changes.
    public var reason: String

    public var changed: Bool { action != .hold }
    public var description: String { "\(action) \(Self.format(previousFraction)) -> \(Self.format(fraction)) [\(condition)]: \(reason)" }

    static func format(_ x: Double) -> String {
        let hundredths = Int((x * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

/// The controller's control law as a value: STATS in, the fraction of cameras to send local out.
///
/// No sockets and no clock: every call gets `now`, a monotonic reading (any origin). It raises
/// the fraction by `raiseStep` after `q95` stays above the SLO for `overloadWindow`, lowers it by
/// `lowerStep` after the edge stays healthy (`q95` below `lowerFactor × SLO`, no drops) for
/// `healthyWindow`, never changes it twice within `dwell`, and never changes it because of
/// silence (docs/controller.md).
public struct ControllerPolicy: Sendable {
    public let settings: ControllerSettings
    /// The fraction of the fleet currently sent local, in [0, `maxFraction`].
    public private(set) var fraction: Double = 0
    /// How the edge looked at the last STATS or silence check.
    public private(set) var condition: EdgeCondition = .unknown
    /// The latest STATS taken into account.
    public private(set) var latestStats: StatsMessage?

    private let startedAt: Duration
    private var lastStatsAt: Duration?
    private var lastChangeAt: Duration?
    /// Start of the current overload streak, and `q95` at that time (re-anchored while improving).
    private var overload: (since: Duration, q95: Double)?
    /// Start of the current healthy streak.
    private var healthySince: Duration?

    /// A policy with fraction 0 that starts waiting for STATS at `now`.
    public init(settings: ControllerSettings = ControllerSettings(), now: Duration) {
        self.settings = settings
        startedAt = now
    }

    private var raiseThreshold: Double { settings.sloMilliseconds * settings.raiseFactor }
    private var lowerThreshold: Double { settings.sloMilliseconds * settings.lowerFactor }

    /// Takes one STATS into account and decides. Streaks of overload or health are measured over
    /// consecutive STATS; anything in between ends them.
    public mutating func observe(_ stats: StatsMessage, now: Duration) -> ControllerDecision {
        let resumed = condition == .silent
        latestStats = stats
        lastStatsAt = now
        let q95 = stats.queueTimeP95
        let figures = "q95 \(Self.ms(q95)) ms, SLO \(Self.ms(settings.sloMilliseconds)) ms, drops \(Self.ms(stats.dropRate))/s, queue \(stats.queueDepth)"
        let prefix = resumed ? "broker heard again; " : ""

        if q95 > raiseThreshold {
            condition = .overloaded
            healthySince = nil
            guard let streak = overload else {
                overload = (now, q95)
                return hold(prefix + "overload began (\(figures)); waiting \(Self.ms(settings.overloadWindow)) before acting")
            }
            let lasted = now - streak.since
            guard lasted >= settings.overloadWindow else {
                return hold(prefix + "overloaded for \(Self.ms(lasted)) ms of \(Self.ms(settings.overloadWindow)) (\(figures))")
            }
            guard fraction < settings.maxFraction else {
                return hold(prefix + "overloaded (\(figures)) but the whole allowed fraction is local already")
            }
            if let changed = lastChangeAt, now - changed < settings.dwell {
                return hold(prefix + "overloaded (\(figures)); dwell: last change \(Self.ms(now - changed)) ms ago, minimum \(Self.ms(settings.dwell))")
            }
            if q95 < streak.q95 * (1 - settings.improvementMargin) {
                // The broker's percentile window still holds waits from before the last step:
                // give the step time to show instead of stacking another on top.
                overload = (now, q95)
                return hold(prefix + "overloaded but improving: q95 fell from \(Self.ms(streak.q95)) to \(Self.ms(q95)) ms over the last \(Self.ms(lasted)) ms")
            }
            let next = Self.rounded(min(settings.maxFraction, fraction + settings.raiseStep))
            return change(to: next, now: now, .raise,
                prefix + "overloaded for \(Self.ms(lasted)) ms (\(figures)): sending \(Self.percent(next)) of cameras local")
        }

        overload = nil
        if q95 < lowerThreshold && stats.dropRate <= settings.healthyDropRate {
            condition = .healthy
            guard fraction > 0 else {
                healthySince = nil
                return hold(prefix + "healthy (\(figures)); no camera is sent local")
            }
            guard let since = healthySince else {
                healthySince = now
                return hold(prefix + "healthy (\(figures)); recovery in \(Self.ms(settings.healthyWindow)) ms if it stays so")
            }
            let lasted = now - since
            guard lasted >= settings.healthyWindow else {
                return hold(prefix + "healthy for \(Self.ms(lasted)) ms of \(Self.ms(settings.healthyWindow)) (\(figures))")
            }
            if let changed = lastChangeAt, now - changed < settings.dwell {
                return hold(prefix + "healthy (\(figures)); dwell: last change \(Self.ms(now - changed)) ms ago, minimum \(Self.ms(settings.dwell))")
            }
            let next = Self.rounded(max(0, fraction - settings.lowerStep))
            return change(to: next, now: now, .lower,
                prefix + "healthy for \(Self.ms(lasted)) ms (\(figures)): releasing cameras, \(Self.percent(next)) stay local")
        }

        condition = .steady
        healthySince = nil
        let why = q95 < lowerThreshold ? "queue time low but frames are dropped" : "queue time between \(Self.ms(lowerThreshold)) and \(Self.ms(raiseThreshold)) ms"
        return hold(prefix + "steady, \(why) (\(figures)); fraction stays \(Self.percent(fraction))")
    }

    /// Checks for a silent broker. Returns a decision only when the policy enters the silent
    /// state (so it is logged once); the fraction is held, since cameras fall back on their own
    /// when the broker is silent and the controller cannot tell an idle edge from a dead one.
    public mutating func tick(now: Duration) -> ControllerDecision? {
        // A broker never heard from since the start counts as silent too.
        let last = lastStatsAt ?? startedAt
        guard condition != .silent, now - last >= settings.silenceTimeout else { return nil }
        condition = .silent
        // Evidence from before the silence is stale: a streak starts afresh on the next STATS.
        overload = nil
        healthySince = nil
        let heard = lastStatsAt == nil ? "never heard from the broker" : "no STATS"
        return hold("\(heard) for \(Self.ms(now - last)) ms (\(settings.silenceIntervals) intervals): broker silent; holding \(Self.percent(fraction)) local, cameras fall back on their own")
    }

    private func hold(_ reason: String) -> ControllerDecision {
        ControllerDecision(action: .hold, previousFraction: fraction, fraction: fraction, condition: condition, reason: reason)
    }

    private mutating func change(to next: Double, now: Duration, _ action: ControllerDecision.Action, _ reason: String) -> ControllerDecision {
        let previous = fraction
        fraction = next
        lastChangeAt = now
        // Each step needs fresh evidence gathered after it.
        overload = nil
        healthySince = nil
        return ControllerDecision(action: action, previousFraction: previous, fraction: next, condition: condition, reason: reason)
    }

    /// Keeps fractions on a 1e-6 grid so repeated steps do not accumulate binary noise (0.75 − 0.1 × 7.5...).
    static func rounded(_ x: Double) -> Double { (x * 1_000_000).rounded() / 1_000_000 }

    static func ms(_ x: Double) -> String {
        let tenths = Int((x * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }

    static func ms(_ d: Duration) -> String {
        let (s, atto) = d.components
        return ms(Double(s) * 1000 + Double(atto) / 1e15)
    }

    static func percent(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
}
