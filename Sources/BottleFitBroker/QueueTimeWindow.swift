/// Recent queue times, for the p50/p95/p99 of STATS.
///
/// A ring of the last `capacity` samples, each stamped with when it was taken; percentiles use
/// the samples younger than the window. The controller sheds on queue time, so the window must
/// forget an overload that has passed: a count-only ring would keep reporting it while no frame
/// moves.
struct QueueTimeWindow: Sendable {
    private var samples: RecentRing<Double>
    let window: Duration

    init(capacity: Int, window: Duration) {
        samples = RecentRing(capacity: capacity)
        self.window = window
    }

    /// Records that a frame waited `milliseconds` and left the queue at `now`.
    mutating func record(_ milliseconds: Double, at now: Duration) {
        samples.record(max(0, milliseconds), at: now)
    }

    /// Nearest-rank percentiles (p in 0...100) of the samples within the window; 0 when there are none.
    func percentiles(_ ps: [Double], at now: Duration) -> [Double] {
        var sorted = samples.values(within: window, at: now)
        guard !sorted.isEmpty else { return ps.map { _ in 0 } }
        sorted.sort()
        return ps.map { p in
            let rank = Int((min(max(p, 0), 100) / 100 * Double(sorted.count)).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
    }
}
