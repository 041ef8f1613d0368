/// The last `capacity` values, each stamped with when it was recorded: the broker's windows over
/// recent events (queue times, camera latency reports) keep theirs in one of these. Bounded in
/// count by the ring and in age by the window a reader asks for, so an overload that has passed
/// is forgotten even when nothing new arrives.
struct RecentRing<Value: Sendable>: Sendable {
    private var entries: [(at: Duration, value: Value)] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Records `value` at `now`, replacing the oldest once the ring is full.
    mutating func record(_ value: Value, at now: Duration) {
        if entries.count < capacity {
            entries.append((now, value))
        } else {
            entries[next] = (now, value)
        }
        next = (next + 1) % capacity
    }

    /// The values recorded at most `window` before `now`.
    func values(within window: Duration, at now: Duration) -> [Value] {
        entries.filter { now - $0.at <= window }.map(\.value)
    }
}
