#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The load generator's time: Unix microseconds. The real one is monotonic (an NTP step cannot
/// bunch up the schedule) and anchored to the wall clock once, since FRAME deadlines are wall-clock.
protocol LoadgenClock: AnyObject {
    func now() -> UInt64
}

final class SystemLoadgenClock: LoadgenClock {
    private let offset: UInt64

    init() {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let unix = UInt64(wall.tv_sec) * 1_000_000 + UInt64(wall.tv_nsec) / 1000
        offset = unix &- Self.monotonic()
    }

    static func monotonic() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    func now() -> UInt64 { Self.monotonic() &+ offset }
}

/// A clock that moves only when told: the sink transport advances it instead of sleeping, so tests
/// run a whole schedule deterministically and in no time.
final class VirtualClock: LoadgenClock {
    private(set) var time: UInt64
    init(start: UInt64 = 1_700_000_000_000_000) { time = start }
    func now() -> UInt64 { time }
    func advance(by microseconds: UInt64) { time += max(1, microseconds) }
}

/// CPU time this process has used, µs (for the sink benchmark's frames per CPU-second).
func processCPUMicroseconds() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = UInt64(usage.ru_utime.tv_sec) * 1_000_000 + UInt64(usage.ru_utime.tv_usec)
    let system = UInt64(usage.ru_stime.tv_sec) * 1_000_000 + UInt64(usage.ru_stime.tv_usec)
    return user + system
}

/// CPU time of the calling thread, µs.
func threadCPUMicroseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}
