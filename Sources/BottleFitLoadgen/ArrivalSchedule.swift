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
    mutating func first() -> UInt64? { arrival(from: start) }

    /// The arrival after one scheduled at `previous` (µs), or nil when the run is over.
    ///
    /// When the rate jumps (a step, a burst's edge, a schedule point) before the next arrival is
    /// due, the next one is drawn afresh from the jump, at a random phase within the new gap, as
    /// the first arrival is: cameras that change rate together do not stay bunched together (four
    /// cameras stepping from 5.8 to 1.45 frames/s would otherwise keep arriving within 172 ms of
    /// each other every 690 ms, a burst the edge must expire although it is half idle).
    mutating func next(after previous: UInt64) -> UInt64? {
        var t = previous
        while t < end {
            let seconds = Double(t - start) / 1e6
            let rate = shape.rate(at: seconds)
            if rate > 0 {
                let next = t + max(1, UInt64(gap(rate).rounded()))
                if let jump = shape.nextJump(after: seconds), start + UInt64(jump * 1e6) < next {
                    return arrival(from: start + UInt64((jump * 1e6).rounded(.up)))
                }
                return next < end ? next : nil
            }
            t += Self.idleStepMicroseconds
        }
        return nil
    }

    /// The first arrival at or after `t` (µs): a random phase within the gap at the rate there
    /// (constant arrivals), or an exponential gap from `t` (Poisson arrivals, memoryless).
    private mutating func arrival(from t: UInt64) -> UInt64? {
        var t = t
        while t < end {
            let rate = shape.rate(at: Double(t - start) / 1e6)
            if rate > 0 {
                let phase = process == .constant ? Double.random(in: 0..<1, using: &random) * 1e6 / rate : gap(rate)
                let next = t + UInt64(phase)
                return next < end ? next : nil
            }
            t += Self.idleStepMicroseconds
        }
        return nil
    }

    /// The gap to the next arrival at `rate` frames/s, µs: fixed, or exponential for Poisson arrivals.
    private mutating func gap(_ rate: Double) -> Double {
        switch process {
        case .constant: return 1e6 / rate
        case .poisson: return -log(Double.random(in: Double.ulpOfOne..<1, using: &random)) * 1e6 / rate
        }
    }
}
