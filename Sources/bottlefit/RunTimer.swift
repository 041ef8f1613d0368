import ArgumentParser
import Foundation

/// Times repeated runs of one piece of work the way `bottlefit bench` does: untimed warm-up runs (the
/// given number, and at least a quarter second of them unless 0, so that caches, page mappings and
/// OpenBLAS's start-up settle), then the timed runs.
struct RunTimer {
    var warmup: Int
    var runs: Int

    /// Refuses counts no benchmark needs (a million timed runs is days of a large model).
    static func validate(warmup: Int, runs: Int) throws {
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be 0...100000") }
        guard (1...1_000_000).contains(runs) else { throw ValidationError("--runs must be 1...1000000") }
    }

    /// Sorted run times in ms.
    func measure(_ body: () throws -> Void) rethrows -> [Double] {
        let warmStart = DispatchTime.now().uptimeNanoseconds
        var warmed = 0
        while warmed < warmup || (warmup > 0 && DispatchTime.now().uptimeNanoseconds - warmStart < 250_000_000) {
            try body()
            warmed += 1
        }
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return times.sorted()
    }

    /// The `p` quantile (0...1) of sorted times, interpolated.
    static func percentile(_ times: [Double], _ p: Double) -> Double {
        let pos = p * Double(times.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return times[lo] + (times[hi] - times[lo]) * (pos - Double(lo))
    }
}
