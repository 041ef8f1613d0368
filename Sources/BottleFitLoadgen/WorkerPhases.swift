/// The edge's worker count over a run, from the broker's STATS: one phase per count, with the
/// completions per second the broker reported while it held (workers joining or drained while
/// `bottlefit up` or `loadgen --topology` runs show here; docs/fleet.md).
public struct WorkerPhase: Sendable, Equatable {
    /// Seconds from the start of the run.
    public var from: Double
    public var to: Double
    public var workers: Int
    /// Mean of STATS completions/s over the phase, leaving out its first `settle` seconds (the
    /// queue a new worker drains at once, the frames a drained one had); nil if nothing is left.
    public var completionsPerS: Double?

    public init(from: Double, to: Double, workers: Int, completionsPerS: Double?) {
        self.from = from
        self.to = to
        self.workers = workers
        self.completionsPerS = completionsPerS
    }
}

extension LoadgenReport {
    /// The phases of constant worker count in `stats`, in order; empty without STATS.
    public static func workerPhases(_ stats: [StatsSample], settle: Double = 2) -> [WorkerPhase] {
        var phases: [(from: Double, to: Double, workers: Int, samples: [StatsSample])] = []
        for s in stats {
            if let last = phases.last, last.workers == s.workers {
                phases[phases.count - 1].to = s.t
                phases[phases.count - 1].samples.append(s)
            } else {
                phases.append((s.t, s.t, s.workers, [s]))
            }
        }
        return phases.map { p in
            let settled = p.samples.filter { $0.t >= p.from + settle }.map(\.completionsPerS)
            return WorkerPhase(from: p.from, to: p.to, workers: p.workers,
                               completionsPerS: settled.isEmpty ? nil : settled.reduce(0, +) / Double(settled.count))
        }
    }
}
