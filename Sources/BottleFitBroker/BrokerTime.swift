/// A moment as the broker sees it, read from two clocks at once.
///
/// Deadlines ("dl") and STATS timestamps are wall-clock Unix times by protocol, so they use the
/// wall clock. Everything the broker measures itself (liveness, queue times, rates, timers) uses a
/// monotonic clock, so an NTP step cannot declare every worker dead or produce a negative wait.
/// The scheduler is handed a `BrokerTime` with every event instead of reading a clock, which makes
/// it deterministic under test.
public struct BrokerTime: Sendable, Equatable {
    /// Wall-clock Unix time in milliseconds, compared with frame deadlines.
    public var unixMilliseconds: UInt64
    /// Time on a monotonic clock since an arbitrary origin.
    public var monotonic: Duration

    public init(unixMilliseconds: UInt64, monotonic: Duration) {
        self.unixMilliseconds = unixMilliseconds
        self.monotonic = monotonic
    }

    /// Both clocks at `milliseconds`: a convenient timeline for tests and simulations.
    public static func milliseconds(_ milliseconds: UInt64) -> BrokerTime {
        BrokerTime(unixMilliseconds: milliseconds, monotonic: .milliseconds(Int64(clamping: milliseconds)))
    }

    /// This time moved forward by `duration` on both clocks.
    public func advanced(by duration: Duration) -> BrokerTime {
        BrokerTime(
            unixMilliseconds: unixMilliseconds &+ UInt64(max(0, duration.milliseconds)),
            monotonic: monotonic + duration)
    }
}

extension Duration {
    /// Whole milliseconds, rounded toward zero.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds as a floating-point number, for queue-time figures.
    var fractionalMilliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
