/// How a camera group's per-camera frame rate changes over a run (frames per second at a time
/// since the start, in seconds). A value: no clock, no randomness.
public enum LoadShape: Sendable, Equatable {
    /// `rate` for the whole run.
    case steady(rate: Double)
    /// Linear from `from` to `to` over `over` seconds, then `to`.
    case ramp(from: Double, to: Double, over: Double)
    /// `before` until `at` seconds, then `after`.
    case step(before: Double, at: Double, after: Double)
    /// On/off: `onRate` for `onSeconds`, then `offRate` for `offSeconds`, repeated.
    case burst(onRate: Double, onSeconds: Double, offRate: Double, offSeconds: Double)
    /// Piecewise constant from a file: each point's rate holds from its time to the next point's.
    /// Before the first point the rate is 0.
    case schedule([SchedulePoint])

    /// One row of a schedule: from `at` seconds on, `rate` frames per second per camera.
    public struct SchedulePoint: Sendable, Equatable {
        public var at: Double
        public var rate: Double
        public init(at: Double, rate: Double) {
            self.at = at
            self.rate = rate
        }
    }

    /// Per-camera frames per second at `t` seconds since the start.
    public func rate(at t: Double) -> Double {
        switch self {
        case .steady(let rate):
            return rate
        case .ramp(let from, let to, let over):
            guard over > 0, t < over else { return to }
            return from + (to - from) * max(0, t) / over
        case .step(let before, let at, let after):
            return t < at ? before : after
        case .burst(let onRate, let onSeconds, let offRate, let offSeconds):
            let period = onSeconds + offSeconds
            guard period > 0 else { return onRate }
            let phase = t.truncatingRemainder(dividingBy: period)
            return phase < onSeconds ? onRate : offRate
        case .schedule(let points):
            var rate = 0.0
            for p in points {
                if p.at <= t { rate = p.rate } else { break }
            }
            return rate
        }
    }

    /// The first time after `t` (seconds) at which the rate jumps: a step, either edge of a burst,
    /// a schedule point. Nil for a steady or ramp shape, or when no jump follows `t`.
    public func nextJump(after t: Double) -> Double? {
        switch self {
        case .steady, .ramp:
            return nil
        case .step(let before, let at, let after):
            return t < at && before != after ? at : nil
        case .burst(let onRate, let onSeconds, let offRate, let offSeconds):
            let period = onSeconds + offSeconds
            guard period > 0, onRate != offRate else { return nil }
            let cycle = (t / period).rounded(.down) * period
            for edge in [cycle + onSeconds, cycle + period, cycle + period + onSeconds] where edge > t { return edge }
            return nil
        case .schedule(let points):
            var previous = 0.0
            for p in points {
                if p.at > t, p.rate != previous { return p.at }
                previous = p.rate
            }
            return nil
        }
    }

    /// The highest rate the shape reaches (what the payload and heap sizing plan for).
    public var peakRate: Double {
        switch self {
        case .steady(let r): r
        case .ramp(let a, let b, _): max(a, b)
        case .step(let a, _, let b): max(a, b)
        case .burst(let on, _, let off, _): max(on, off)
        case .schedule(let points): points.map(\.rate).max() ?? 0
        }
    }

    /// Frames one camera is expected to offer in `[0, duration)` seconds (numerical integral, 1 ms steps).
    public func expectedFrames(duration: Double) -> Double {
        let steps = max(1, Int(duration * 1000))
        let dt = duration / Double(steps)
        var sum = 0.0
        for i in 0..<steps { sum += rate(at: (Double(i) + 0.5) * dt) * dt }
        return sum
    }

    /// Parses a schedule file: one `SECONDS RATE` pair a line (comma or spaces between), `#` comments,
    /// times strictly increasing, rates finite and not negative. Errors name the line.
    public static func parseSchedule(_ text: String, path: String) throws(LoadgenError) -> [SchedulePoint] {
        var points: [SchedulePoint] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let fields = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 2, let at = Double(fields[0]), let rate = Double(fields[1]), at.isFinite, rate.isFinite else {
                throw LoadgenError("\(path):\(i + 1): expected `SECONDS RATE`, found `\(line.trimmingCharacters(in: .whitespaces))`")
            }
            guard at >= 0, rate >= 0 else { throw LoadgenError("\(path):\(i + 1): time and rate must not be negative") }
            guard at <= 31_536_000, rate <= 100_000 else {
                throw LoadgenError("\(path):\(i + 1): times are at most a year (31536000 s) and rates at most 100000 frames per second")
            }
            if let last = points.last, at <= last.at {
                throw LoadgenError("\(path):\(i + 1): times must increase (\(at) after \(last.at))")
            }
            points.append(SchedulePoint(at: at, rate: rate))
        }
        guard points.contains(where: { $0.rate > 0 }) else { throw LoadgenError("\(path): the schedule never has a rate above 0") }
        return points
    }
}

/// How a camera's frames are spaced.
public enum ArrivalProcess: String, Sendable, CaseIterable, Codable {
    /// Exactly 1/rate apart.
    case constant
    /// Exponential gaps with mean 1/rate (the rate taken at each arrival: a piecewise approximation
    /// of a non-homogeneous Poisson process, exact for steady load).
    case poisson
}

/// An error in the load generator's input (options, scenario, profiles) or run, ready to print.
public struct LoadgenError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
