import BottleFitProtocol

/// What the controller made of the latest STATS (or of their absence).
public enum EdgeCondition: String, Sendable, Equatable, CustomStringConvertible {
    /// No STATS yet since the controller started.
    case unknown
    /// A latency signal (queue time, camera latency or camera misses) above its raise threshold.
    case overloaded
    /// A signal between the two thresholds, or low but with drops or misses: no reason to move either way.
    case steady
    /// Every signal below its lower threshold, no drops and no misses.
    case healthy
    /// The edge has room (workers busy less than the target utilisation) while cameras compute
    /// frames locally, and no signal is over its objective: frames should come back to the edge.
    case underused
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
    /// The edge floor in force after it (DIRECTIVE `ef`; 0: none). A floor change is a `lower`
    /// (more frames to the edge) or a `raise` (fewer), like a fraction change.
    public var edgeFloor: Double = 0
    /// How the edge looked.
    public var condition: EdgeCondition
    /// The signals over their objective, when overloaded (what a raise was for); empty otherwise.
    public var signals: [ControllerSignal]
    /// Why, in words: logged, and sent as the DIRECTIVE's `r` when the fraction changes.
    public var reason: String

    public var changed: Bool { action != .hold }
    public init(
        action: Action, previousFraction: Double, fraction: Double, condition: EdgeCondition, signals: [ControllerSignal] = [], reason: String
    ) {
        self.action = action
        self.previousFraction = previousFraction
        self.fraction = fraction
        self.condition = condition
        self.signals = signals
        self.reason = reason
    }

    public var description: String { "\(action) \(Self.format(previousFraction)) -> \(Self.format(fraction)) [\(condition)]: \(reason)" }

    static func format(_ x: Double) -> String {
        let hundredths = Int((x * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}

/// A latency signal the controller compares against an objective.
public enum ControllerSignal: String, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    /// The broker's queue-time p95 (STATS `q95`) against `sloMilliseconds`.
    case queueTime = "queue_time"
    /// The cameras' reported end-to-end edge latency p95 (STATS `l95`) against `latencySloMilliseconds`.
    case cameraLatency = "camera_latency"
    /// More than 5 % of the cameras' reported edge frames missed (STATS `lm`): their p95 is itself a miss.
    case cameraMisses = "camera_misses"

    public var description: String { rawValue }
}

/// One STATS read against the objectives: which signals are over their raise threshold, and
/// whether every signal there is looks healthy.
struct SignalReading {
    /// Signals above their raise threshold, in `ControllerSignal` order.
    var over: [ControllerSignal] = []
    /// Every present signal below its lower threshold (misses: none at all).
    var allLow: Bool { notLow.isEmpty }
    /// Why the signals are not all low, in words ("queue time in the band", "2 missed frames").
    var notLow: [String] = []
    /// The largest ratio of a present signal to its raise threshold: how far over (or under) the
    /// objectives the edge is, comparable across signals. A miss share over the limit counts
    /// as its ratio to that limit.
    var pressure = 0.0
    /// The figures, for reasons and logs.
    var figures = ""

    /// The workers' utilisation (STATS `ut`), nil from an older broker or without workers.
    var utilisation: Double?
    /// The share of the frames the cameras reported that ran locally (nil without reports).
    var localShare: Double?
    /// The p95 latency of those local frames, ms (nil when none was reported).
    var localP95: Double?
    /// The cameras' edge latency p95, ms, when it counts (enough frames).
    var edgeP95: Double?

    init(_ stats: StatsMessage, camera: CameraLatencySummary?, _ settings: ControllerSettings) {
        let q95 = stats.queueTimeP95
        let queueRaise = settings.sloMilliseconds * settings.raiseFactor
        if q95 > queueRaise { over.append(.queueTime) }
        if q95 >= settings.sloMilliseconds * settings.lowerFactor { notLow.append("queue time above half its objective") }
        pressure = q95 / queueRaise
        var parts = ["queue p95 \(ControllerPolicy.ms(q95)) ms (SLO \(ControllerPolicy.ms(settings.sloMilliseconds)))"]
        if let camera {
            let frames = camera.completed + camera.missed
            if frames >= settings.minimumReportedFrames {
                let latencyRaise = settings.latencySloMilliseconds * settings.raiseFactor
                var text = "camera p95 "
                if let p = camera.percentiles {
                    if p.p95 > latencyRaise { over.append(.cameraLatency) }
                    if p.p95 >= settings.latencySloMilliseconds * settings.lowerFactor {
                        notLow.append("camera latency above half its objective")
                    }
                    pressure = max(pressure, p.p95 / latencyRaise)
                    edgeP95 = p.p95
                    text += "\(ControllerPolicy.ms(p.p95)) ms"
                } else {
                    text += "-"
                }
                text += " (latency SLO \(ControllerPolicy.ms(settings.latencySloMilliseconds)), \(camera.cameras) cameras, \(camera.completed) frames"
                let missLimit = 1 - ControllerSettings.cameraPercentile
                if camera.missed > 0 {
                    notLow.append("cameras missed \(camera.missed) edge frames")
                    text += ", \(camera.missed) missed = \(ControllerPolicy.percent(camera.missRatio))"
                    // With the edge's utilisation known, misses are the cameras' own congestion
                    // signal (each lowers its share at once, and a camera with the whole model
                    // loses nothing): the controller raising on them as well reacted twice and,
                    // measured at 2x overload, cut edge utilisation from 91 % to 77 %. They still
                    // block recovery. From an older broker (no `ut`) they raise as before.
                    if camera.missRatio > missLimit && stats.utilisation == nil { over.append(.cameraMisses) }
                    pressure = max(pressure, camera.missRatio / missLimit)
                }
                parts.append(text + ")")
            } else if frames == 0 {
                parts.append("no edge frames reported")
            } else {
                parts.append("camera reports: \(frames) edge frames over the last \(ControllerPolicy.ms(settings.cameraHistory)) ms, fewer than \(settings.minimumReportedFrames), latency not judged")
            }
            if camera.completed + camera.missed + camera.local > 0 {
                localShare = camera.localShare
                localP95 = camera.local > 0 ? camera.localP95 : nil
                var text = "\(ControllerPolicy.percent(camera.localShare)) of frames local"
                if let q = camera.localP95 { text += " (local p95 \(ControllerPolicy.ms(q)) ms)" }
                parts.append(text)
            }
        }
        utilisation = stats.utilisation
        if let u = stats.utilisation { parts.append("edge \(ControllerPolicy.percent(u)) busy") }
        parts.append("drops \(ControllerPolicy.ms(stats.dropRate))/s, queue \(stats.queueDepth)")
        figures = parts.joined(separator: ", ")
    }

    /// "queue time", "camera latency and camera misses": the signals over, in words.
    var overText: String {
        let names = over.map { $0.rawValue.replacingOccurrences(of: "_", with: " ") }
        return names.count <= 2 ? names.joined(separator: " and ") : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }
}

/// The controller's control law as a value: STATS in, the share of every camera's frames to
/// compute locally out.
///
/// No sockets and no clock: every call gets `now`, a monotonic reading (any origin). Two latency
/// signals drive it, each against its own objective with the same thresholds: the broker's
/// queue-time p95 (`q95` against `sloMilliseconds`) and the cameras' end-to-end edge latency p95
/// (`l95` against `latencySloMilliseconds`, plus a miss share above 5 %), taken from camera
/// reports aggregated over up to `cameraHistory` when the broker's window holds too few frames.
/// The edge's utilisation (`ut`) and the share of frames cameras computed locally are inputs too:
/// the fraction rises by `raiseStep` after a signal stays over its objective for
/// `overloadWindow`; it falls by `lowerStep` after every signal stays below `lowerFactor` of its
/// objective for `healthyWindow` while the edge has room (utilisation below
/// `targetUtilisation`), and holds while the edge is busy enough and within its objectives. It
/// never changes twice within `dwell`, nor because of silence (docs/controller.md). Every
/// decision names the figures that drove it.
///
/// The fraction applies to every camera alike (DIRECTIVE `es` = 1 − fraction): a camera keeps
/// sending its share of frames, so no camera is starved of the edge while others are served.
public struct ControllerPolicy: Sendable {
    public let settings: ControllerSettings
    /// The share of every camera's frames the directive in force sends local, in [0, `maxFraction`].
    public private(set) var fraction: Double = 0
    /// The smallest share of its frames every camera sends to the edge (DIRECTIVE `ef`), in [0, 1];
    /// only ever above 0 while `fraction` is 0.
    public private(set) var edgeFloor: Double = 0
    /// How the edge looked at the last STATS or silence check.
    public private(set) var condition: EdgeCondition = .unknown
    /// The latest STATS taken into account.
    public private(set) var latestStats: StatsMessage?

    private let startedAt: Duration
    private var lastStatsAt: Duration?
    private var lastChangeAt: Duration?
    /// Start of the current overload streak, and the pressure at that time (re-anchored while improving).
    private var overload: (since: Duration, pressure: Double)?
    /// Start of the current healthy streak.
    private var healthySince: Duration?
    /// Camera figures of earlier STATS, one per broker report window, newest last: what a window
    /// with too few frames is aggregated with.
    private var cameraHistory: [(at: Duration, summary: CameraLatencySummary)] = []

    /// A policy with fraction 0 that starts waiting for STATS at `now`.
    public init(settings: ControllerSettings = ControllerSettings(), now: Duration) {
        self.settings = settings
        startedAt = now
    }

    /// The camera figures to judge: the STATS' own when they count enough edge frames, else
    /// those merged with earlier, disjoint windows (up to `cameraHistory` back).
    mutating func cameraFigures(_ stats: StatsMessage, now: Duration) -> CameraLatencySummary? {
        guard let current = stats.cameraLatency else { return nil }
        cameraHistory.removeAll { now - $0.at > settings.cameraHistory }
        defer {
            if let last = cameraHistory.last, now - last.at < settings.cameraReportWindow {} else {
                cameraHistory.append((now, current))
            }
        }
        var merged = current
        for entry in cameraHistory.reversed() where merged.completed + merged.missed < settings.minimumReportedFrames {
            guard now - entry.at >= settings.cameraReportWindow else { continue }  // overlaps the current window
            merged = merged.merged(with: entry.summary)
        }
        return merged
    }

    /// Takes one STATS into account and decides. Streaks of overload or health are measured over
    /// consecutive STATS; anything in between ends them.
    public mutating func observe(_ stats: StatsMessage, now: Duration) -> ControllerDecision {
        let resumed = condition == .silent
        latestStats = stats
        lastStatsAt = now
        let reading = SignalReading(stats, camera: cameraFigures(stats, now: now), settings)
        let figures = reading.figures
        let prefix = resumed ? "broker heard again; " : ""

        if !reading.over.isEmpty {
            condition = .overloaded
            healthySince = nil
            let signals = reading.over
            let what = reading.overText + (reading.over.count == 1 ? " over its objective" : " over their objectives")
            if edgeFloor > 0 {
                // The floor was for an edge with room; an overloaded one has none. The cameras'
                // own congestion control takes over at once (no overload window, no dwell).
                return changeFloor(to: 0, now: now, .raise, signals,
                    prefix + "overloaded, \(what) (\(figures)): the edge floor is lifted, cameras send what their own congestion control allows")
            }
            guard let streak = overload else {
                overload = (now, reading.pressure)
                return hold(prefix + "overload began, \(what) (\(figures)); waiting \(Self.ms(settings.overloadWindow)) before acting", signals)
            }
            let lasted = now - streak.since
            guard lasted >= settings.overloadWindow else {
                return hold(prefix + "overloaded for \(Self.ms(lasted)) ms of \(Self.ms(settings.overloadWindow)), \(what) (\(figures))", signals)
            }
            guard fraction < settings.maxFraction else {
                return hold(prefix + "overloaded, \(what) (\(figures)), but the whole allowed fraction is local already", signals)
            }
            if let changed = lastChangeAt, now - changed < settings.dwell {
                return hold(prefix + "overloaded, \(what) (\(figures)); dwell: last change \(Self.ms(now - changed)) ms ago, minimum \(Self.ms(settings.dwell))", signals)
            }
            if !reading.over.contains(.queueTime), let u = reading.utilisation, u < settings.targetUtilisation {
                // Late or missed frames with idle workers and a short queue are not load: the edge
                // is slow per frame (or the frames' budgets are), and more frames local would not
                // make it faster.
                return hold(prefix + "\(what) (\(figures)); but the workers are only \(Self.percent(u)) busy with a short queue: that is not load, so no raise", signals)
            }
            if let local = reading.localP95, local > settings.latencySloMilliseconds, (reading.localShare ?? 0) > settings.underusedLocalShare,
               let edge = reading.edgeP95, local > edge {
                // Local compute is itself over the objective and slower than the edge: more frames
                // there would be later still.
                return hold(prefix + "overloaded, \(what) (\(figures)); but frames computed locally already take p95 \(Self.ms(local)) ms, over the \(Self.ms(settings.latencySloMilliseconds)) ms objective and slower than the edge's \(Self.ms(edge)) ms: sending more local would not help", signals)
            }
            if reading.pressure < streak.pressure * (1 - settings.improvementMargin) {
                // The broker's windows still hold figures from before the last step: give the
                // step time to show instead of stacking another on top.
                overload = (now, reading.pressure)
                return hold(prefix + "overloaded but improving: the worst signal fell from \(Self.times(streak.pressure)) to \(Self.times(reading.pressure)) its objective over the last \(Self.ms(lasted)) ms (\(figures))", signals)
            }
            let next = Self.rounded(min(settings.maxFraction, fraction + settings.raiseStep))
            return change(to: next, now: now, .raise, signals,
                prefix + "overloaded for \(Self.ms(lasted)) ms, \(what) (\(figures)): \(Self.percent(next)) of every camera's frames local")
        }

        overload = nil
        if fraction == 0, settings.floorStep > 0, let u = reading.utilisation, u < settings.targetUtilisation,
           let local = reading.localShare, local > settings.underusedLocalShare,
           case let wanted = Self.floorFilling(utilisation: u, localShare: local, target: settings.targetUtilisation),
           wanted >= 1 - local + Self.floorMargin {
            // No directive keeps frames local, yet the cameras' own congestion control keeps some
            // there (or their EXPIRED frames fall back there) while the edge has room a floor
            // would fill: raise the floor every camera sends to the edge. Drops do not stop this:
            // at this utilisation they are frames the broker expired, which the cameras compute
            // locally in time.
            condition = .underused
            let state = "edge has room: \(Self.percent(u)) busy, below the \(Self.percent(settings.targetUtilisation)) target, while \(Self.percent(local)) of frames run locally"
            guard edgeFloor < wanted else {
                healthySince = nil
                return hold(prefix + state + " (\(figures)); the edge floor \(Self.percent(edgeFloor)) already asks for what would fill it")
            }
            guard let since = healthySince else {
                healthySince = now
                return hold(prefix + state + " (\(figures)); raising the edge floor in \(Self.ms(settings.healthyWindow)) ms if it stays so")
            }
            guard now - since >= settings.healthyWindow, dwelt(now) else {
                return hold(prefix + state + " for \(Self.ms(now - since)) ms (\(figures)); edge floor \(Self.percent(edgeFloor))")
            }
            let next = Self.rounded(min(wanted, edgeFloor + settings.floorStep))
            return changeFloor(to: next, now: now, .lower, [],
                prefix + state + " for \(Self.ms(now - since)) ms (\(figures)): every camera sends at least \(Self.percent(next)) of its frames to the edge")
        }
        let fewDrops = stats.dropRate <= settings.healthyDropRate + settings.healthyDropShare * stats.arrivalRate
        guard reading.allLow && fewDrops else {
            condition = .steady
            healthySince = nil
            let why = reading.allLow ? "latency low but frames are dropped" : reading.notLow.joined(separator: ", ")
            return hold(prefix + "steady, \(why) (\(figures)); fraction stays \(Self.percent(fraction))")
        }
        let hasRoom = reading.utilisation.map { $0 < settings.targetUtilisation } ?? true
        if !hasRoom {
            // Busy enough and within the objectives: the point the controller aims for.
            condition = .steady
            healthySince = nil
            if edgeFloor > 0, reading.utilisation.map({ $0 >= settings.targetUtilisation + Self.floorHysteresis }) == true, dwelt(now) {
                let next = Self.rounded(max(0, edgeFloor - Self.floorLowerStep))
                return changeFloor(to: next, now: now, .raise, [],
                    prefix + "edge busy, \(reading.utilisation.map(Self.percent) ?? "?") over the \(Self.percent(settings.targetUtilisation)) target (\(figures)): edge floor lowered to \(Self.percent(next))")
            }
            return hold(prefix + "edge busy and within its objectives (\(figures)); fraction stays \(Self.percent(fraction))")
        }
        let localWork = (reading.localShare ?? 0) > settings.underusedLocalShare
        condition = localWork && reading.utilisation != nil ? .underused : .healthy
        let state = condition == .underused
            ? "edge has room: \(reading.utilisation.map(Self.percent) ?? "?") busy, below the \(Self.percent(settings.targetUtilisation)) target, while \(Self.percent(reading.localShare ?? 0)) of frames run locally"
            : "healthy"
        guard fraction > 0 else {
            healthySince = nil
            let note = condition == .underused ? "; no directive keeps frames local: the cameras' own shares are recovering" : "; no frame is sent local"
            return hold(prefix + state + " (\(figures))" + note)
        }
        guard let since = healthySince else {
            healthySince = now
            return hold(prefix + state + " (\(figures)); releasing in \(Self.ms(settings.healthyWindow)) ms if it stays so")
        }
        let lasted = now - since
        guard lasted >= settings.healthyWindow else {
            return hold(prefix + state + " for \(Self.ms(lasted)) ms of \(Self.ms(settings.healthyWindow)) (\(figures))")
        }
        if let changed = lastChangeAt, now - changed < settings.dwell {
            return hold(prefix + state + " (\(figures)); dwell: last change \(Self.ms(now - changed)) ms ago, minimum \(Self.ms(settings.dwell))")
        }
        // Staged, but in proportion to the room: an idle edge gets half the fraction back at once.
        let room = reading.utilisation.map { max(0, 1 - $0 / settings.targetUtilisation) } ?? 0
        let next = Self.rounded(max(0, fraction - max(settings.lowerStep, fraction * room / 2)))
        return change(to: next, now: now, .lower, [],
            prefix + state + " for \(Self.ms(lasted)) ms (\(figures)): releasing frames to the edge, \(Self.percent(next)) stay local")
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

    private func hold(_ reason: String, _ signals: [ControllerSignal] = []) -> ControllerDecision {
        var d = ControllerDecision(action: .hold, previousFraction: fraction, fraction: fraction, condition: condition, signals: signals, reason: reason)
        d.edgeFloor = edgeFloor
        return d
    }

    /// Utilisation this far over the target before a floor step comes down: a floor that just
    /// filled the edge to the target is not taken back at once.
    static let floorHysteresis = 0.05

    /// How much a busy edge (over the target plus `floorHysteresis`) takes off the floor per dwell.
    static let floorLowerStep = 0.25

    /// A floor is set only when it would send at least this much more of the frames to the edge
    /// than the cameras send now: a floor at what they already do would change nothing.
    static let floorMargin = 0.1

    /// The edge share that would bring the workers to `target`: the share the cameras send now,
    /// taken as 1 − the local share (an underestimate, since fallbacks went to the edge first,
    /// so the floor errs low), scaled by target ÷ utilisation; at most 1, on a 0.05 grid.
    static func floorFilling(utilisation u: Double, localShare local: Double, target: Double) -> Double {
        let share = min(1, (1 - local) * target / max(u, 0.01))
        return (share * 20).rounded(.down) / 20
    }

    /// Whether the dwell since the last change of the fraction or the floor has passed.
    private func dwelt(_ now: Duration) -> Bool {
        lastChangeAt.map { now - $0 >= settings.dwell } ?? true
    }

    private mutating func changeFloor(
        to next: Double, now: Duration, _ action: ControllerDecision.Action, _ signals: [ControllerSignal], _ reason: String
    ) -> ControllerDecision {
        edgeFloor = next
        lastChangeAt = now
        overload = nil
        healthySince = nil
        var d = ControllerDecision(action: action, previousFraction: fraction, fraction: fraction, condition: condition, signals: signals, reason: reason)
        d.edgeFloor = next
        return d
    }

    private mutating func change(
        to next: Double, now: Duration, _ action: ControllerDecision.Action, _ signals: [ControllerSignal], _ reason: String
    ) -> ControllerDecision {
        let previous = fraction
        fraction = next
        // A fraction sent local and a floor on the edge never stand together.
        if next > 0 { edgeFloor = 0 }
        lastChangeAt = now
        // Each step needs fresh evidence gathered after it.
        overload = nil
        healthySince = nil
        var d = ControllerDecision(action: action, previousFraction: previous, fraction: next, condition: condition, signals: signals, reason: reason)
        d.edgeFloor = edgeFloor
        return d
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

    /// A ratio to an objective: "1.8x".
    static func times(_ x: Double) -> String {
        let tenths = Int((x * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)x"
    }
}
