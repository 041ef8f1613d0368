/// The control law's thresholds and timings (docs/controller.md explains each default).
public struct ControllerSettings: Sendable, Equatable {
    /// The latency objective for broker queue time (STATS `q95`), in milliseconds.
    public var sloMilliseconds: Double = 50
    /// The latency objective for the end-to-end edge latency cameras report (STATS `l95`), in
    /// milliseconds: the cameras' own deadline budget (`bottlefit device --slo-ms`, 250 by default).
    public var latencySloMilliseconds: Double = 250
    /// Edge frames (completed and missed) the cameras' reports must count in the broker's window
    /// before their latency is taken into account: a p95 of a handful of frames is noise.
    public var minimumReportedFrames: Int = 10
    /// The percentile of camera latency the controller reads (`l95`); a miss share above
    /// `1 − cameraPercentile` means that percentile is itself a miss.
    public static let cameraPercentile = 0.95
    /// A signal above its objective × `raiseFactor` counts as overload.
    public var raiseFactor: Double = 1.0
    /// Every signal below its objective × `lowerFactor`, with no drops or misses, counts as healthy.
    /// Below `raiseFactor`, so a signal hovering at its objective is neither and changes nothing (hysteresis).
    public var lowerFactor: Double = 0.5
    /// Fraction added to the cameras sent local per raise.
    public var raiseStep: Double = 0.25
    /// Fraction released back to the edge per recovery step (smaller than `raiseStep`).
    public var lowerStep: Double = 0.1
    /// Overload must last this long (over consecutive STATS) before a raise: one spike is ignored.
    public var overloadWindow: Duration = .seconds(1)
    /// The edge must stay healthy this long before each recovery step.
    public var healthyWindow: Duration = .seconds(2)
    /// At least this long between two changes of the fraction, either way.
    public var dwell: Duration = .seconds(3)
    /// A raise is held back while `q95` fell by more than this share during the last overload
    /// window: the broker's percentile window lags, and the last step may still be taking effect.
    public var improvementMargin: Double = 0.1
    /// Dropped frames per second (STATS `dr`) still counted as "no drops" for recovery...
    public var healthyDropRate: Double = 0
    /// ...plus this share of the arrivals (STATS `ar`): cameras probing a congested edge meet the
    /// odd BUSY, which must not block recovery for ever.
    public var healthyDropShare: Double = 0.02
    /// The edge is fully used at this utilisation (STATS `ut`): below it, with frames running
    /// locally and every signal low, the fraction is released; at or above it, it holds.
    public var targetUtilisation: Double = 0.85
    /// A local share of the reported frames above this counts as cameras computing locally.
    public var underusedLocalShare: Double = 0.02
    /// The most the edge floor (DIRECTIVE `ef`) rises per step, towards the share that would fill
    /// the edge to `targetUtilisation`, while the edge has room and frames run locally with no
    /// fraction sent local: the cameras' own congestion control can leave the edge half
    /// idle (a deadline under two service times makes one frame queued behind another EXPIRED
    /// even at 50 % load, and each EXPIRED halves nothing but still cuts a share by 15 %).
    /// 0 turns the floor off.
    public var floorStep: Double = 1
    /// The broker's camera report window (`--report-window-s`, 3 s by default): STATS this far
    /// apart carry disjoint camera figures, which the controller adds up...
    public var cameraReportWindow: Duration = .seconds(3)
    /// ...going back at most this far when the latest window has fewer than `minimumReportedFrames`.
    public var cameraHistory: Duration = .seconds(12)
    /// The broker's STATS interval; silence is `silenceIntervals` of them without STATS.
    public var statsInterval: Duration = .milliseconds(250)
    /// STATS intervals without STATS after which the broker counts as silent.
    public var silenceIntervals: Int = 3
    /// The highest fraction of cameras ever sent local.
    public var maxFraction: Double = 1.0

    public init() {}

    /// `statsInterval × silenceIntervals`.
    public var silenceTimeout: Duration { statsInterval * silenceIntervals }

    /// What is wrong with these settings, in words; empty when they are usable.
    public var problems: [String] {
        var problems: [String] = []
        if !(sloMilliseconds.isFinite && sloMilliseconds > 0 && sloMilliseconds <= 86_400_000) {
            problems.append("the SLO must be more than 0 and at most a day (86400000 ms) (got \(sloMilliseconds))")
        }
        if !(latencySloMilliseconds.isFinite && latencySloMilliseconds > 0 && latencySloMilliseconds <= 86_400_000) {
            problems.append("the latency SLO must be more than 0 and at most a day (86400000 ms) (got \(latencySloMilliseconds))")
        }
        if !(1...1_000_000).contains(minimumReportedFrames) { problems.append("the minimum reported frames must be 1...1000000 (got \(minimumReportedFrames))") }
        if !(raiseFactor.isFinite && raiseFactor > 0) { problems.append("raiseFactor must be positive (got \(raiseFactor))") }
        if !(lowerFactor.isFinite && lowerFactor >= 0 && lowerFactor < raiseFactor) {
            problems.append("lowerFactor (\(lowerFactor)) must be at least 0 and below raiseFactor (\(raiseFactor)), or there is no hysteresis")
        }
        if !(raiseStep.isFinite && raiseStep > 0 && raiseStep <= 1) { problems.append("the raise step must be in (0, 1] (got \(raiseStep))") }
        if !(lowerStep.isFinite && lowerStep > 0 && lowerStep <= 1) { problems.append("the lower step must be in (0, 1] (got \(lowerStep))") }
        if lowerStep > raiseStep { problems.append("the lower step (\(lowerStep)) must not exceed the raise step (\(raiseStep)): recovery is staged, slower than the raise") }
        if overloadWindow < .zero { problems.append("overloadWindow must not be negative") }
        if healthyWindow < .zero { problems.append("healthyWindow must not be negative") }
        if dwell < .zero || dwell > .seconds(3600) { problems.append("the dwell time must be 0 to an hour") }
        if !(improvementMargin.isFinite && improvementMargin >= 0 && improvementMargin < 1) { problems.append("improvementMargin must be in [0, 1)") }
        if !(healthyDropRate.isFinite && healthyDropRate >= 0) { problems.append("healthyDropRate must be at least 0") }
        if !(healthyDropShare.isFinite && healthyDropShare >= 0 && healthyDropShare < 1) { problems.append("healthyDropShare must be in [0, 1)") }
        if !(targetUtilisation.isFinite && targetUtilisation > 0 && targetUtilisation <= 1) {
            problems.append("the target utilisation must be in (0, 1] (got \(targetUtilisation))")
        }
        if !(underusedLocalShare.isFinite && underusedLocalShare >= 0 && underusedLocalShare < 1) { problems.append("underusedLocalShare must be in [0, 1)") }
        if !(floorStep.isFinite && floorStep >= 0 && floorStep <= 1) { problems.append("the floor step must be in [0, 1] (got \(floorStep))") }
        if cameraReportWindow <= .zero { problems.append("the camera report window must be positive") }
        if cameraHistory < .zero { problems.append("the camera history must not be negative") }
        if statsInterval <= .zero { problems.append("statsInterval must be positive") }
        if silenceIntervals < 1 { problems.append("silenceIntervals must be at least 1") }
        if !(maxFraction.isFinite && maxFraction > 0 && maxFraction <= 1) { problems.append("maxFraction must be in (0, 1]") }
        return problems
    }
}
