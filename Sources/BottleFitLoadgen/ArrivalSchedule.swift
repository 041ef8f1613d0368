import BottleFitCore
import Foundation

/// The open-loop schedule of one camera: the time of each frame follows from the previous
/// *scheduled* time and the load shape, never from when the loop got round to it, so a slow
/// edge (or a slow load generator) cannot thin out the offered load.
struct ArrivalSchedule {
    let shape: LoadShape
    let process: ArrivalProcess
    /// Run start and end, Unix µs; no arrival at or after `end`.
    let start: UInt64
    let end: UInt64
    private var random: SeededGenerator

    init(shape: LoadShape, process: ArrivalProcess, start: UInt64, end: UInt64, seed: UInt64) {
        self.shape = shape
        self.process = process
        self.start = start
        self.end = end
        random = SeededGenerator(seed: seed)
    }

    /// When rate is 0 the schedule looks again this much later (an off phase of a burst, the head of a schedule).
    static let idleStepMicroseconds: UInt64 = 10_000

    /// The first arrival: a random phase within the first gap, so cameras of a group do not fire together.
    mutating func first() -> UInt64? {
        var t = start
        while t < end {
            let rate = shape.rate(at: Double(t - start) / 1e6)
            if rate > 0 {
                let phase = Double.random(in: 0..<1, using: &random) * 1e6 / rate
                let first = t + UInt64(phase)
                return first < end ? first : nil
            }
            t += Self.idleStepMicroseconds
        }
        return nil
    }

    /// The arrival after one scheduled at `previous` (µs), or nil when the run is over.
    mutating func next(after previous: UInt64) -> UInt64? {
        var t = previous
        while t < end {
            let rate = shape.rate(at: Double(t - start) / 1e6)
            if rate > 0 {
                let gap: Double
                switch process {
                case .constant: gap = 1e6 / rate
                case .poisson:
                    let u = Double.random(in: Double.ulpOfOne..<1, using: &random)
                    gap = -log(u) * 1e6 / rate
                }
                let next = t + max(1, UInt64(gap.rounded()))
                return next < end ? next : nil
            }
            t += Self.idleStepMicroseconds
        }
        return nil
    }
}
