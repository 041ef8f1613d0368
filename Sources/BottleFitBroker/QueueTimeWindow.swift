/// Recent queue times, for the p50/p95/p99 of STATS.
///
/// A ring of the last `capacity` samples, each stamped with when it was taken; percentiles use
/// the samples younger than the window. The controller sheds on queue time, so the window must
/// forget an overload that has passed: a count-only ring would keep reporting it while no frame
/// moves.
struct QueueTimeWindow: Sendable {
    private var samples: [(at: Duration, milliseconds: Double)] = []
    private var next = 0
    let capacity: Int
    let window: Duration

    init(capacity: Int, window: Duration) {
        self.capacity = max(1, capacity)
        self.window = window
        samples.reserveCapacity(self.capacity)
    }

    /// Records that a frame waited `milliseconds` and left the queue at `now`.
    mutating func record(_ milliseconds: Double, at now: Duration) {
        let sample = (at: now, milliseconds: max(0, milliseconds))
        if samples.count < capacity {
            samples.append(sample)
        } else {
            samples[next] = sample
        }
        next = (next + 1) % capacity
    }

    /// Nearest-rank percentiles (p in 0...100) of the samples within the window; 0 when there are none.
    func percentiles(_ ps: [Double], at now: Duration) -> [Double] {
        var sorted = samples.filter { now - $0.at <= window }.map(\.milliseconds)
        guard !sorted.isEmpty else { return ps.map { _ in 0 } }
        sorted.sort()
        return ps.map { p in
            let rank = Int((min(max(p, 0), 100) / 100 * Double(sorted.count)).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
    }
}
