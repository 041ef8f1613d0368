/// Issue 10's fairness measure: each camera's edge share (edge answers / frames offered to it) over
/// sliding windows of `windowSeconds`, against the mean of the cameras' shares, in windows that start
/// once the fleet has run `warmupSeconds`. Fair: every ratio within a factor of 2 (0.5...2).
///
/// Fed the cameras' cumulative counts at each time-series sample; keeps only the samples a window
/// still needs, so it costs O(cameras × window / sample) memory however long the run.
struct FairnessWindows {
    let windowSeconds: Double
    let warmupSeconds: Double
    /// Half a sample: how far a sample's time may be off the window's ideal start.
    let tolerance: Double

    private var snapshots: [(t: Double, offered: [Int], edge: [Int])] = []
    private(set) var windows = 0
    private(set) var minRatio: Double?
    private(set) var maxRatio: Double?
    /// The camera (index) and window end of the lowest ratio.
    private(set) var worst: (camera: Int, t: Double)?

    init(windowSeconds: Double = 10, warmupSeconds: Double = 10, sampleSeconds: Double) {
        self.windowSeconds = windowSeconds
        self.warmupSeconds = warmupSeconds
        tolerance = sampleSeconds / 2
    }

    /// One sample at `t` (seconds since the start) of every camera's cumulative offered and edge
    /// counts; `eligible` marks the cameras that may use the edge (not mode `local`). Returns the
    /// lowest and highest ratio of the window ending here, if one ends here.
    mutating func sample(t: Double, offered: [Int], edge: [Int], eligible: [Bool]) -> (min: Double, max: Double)? {
        snapshots.append((t, offered, edge))
        let latestStart = t - windowSeconds + tolerance
        guard let startIndex = snapshots.lastIndex(where: { $0.t <= latestStart }) else { return nil }
        // Samples before the window's start are needed by no later window.
        snapshots.removeFirst(startIndex)
        let first = snapshots[0]
        guard first.t >= warmupSeconds - tolerance else { return nil }
        var shares: [(camera: Int, share: Double)] = []
        for c in offered.indices where eligible[c] {
            let o = offered[c] - first.offered[c]
            guard o > 0 else { continue }
            shares.append((c, Double(edge[c] - first.edge[c]) / Double(o)))
        }
        guard !shares.isEmpty else { return nil }
        let mean = shares.reduce(0) { $0 + $1.share } / Double(shares.count)
        guard mean > 0 else { return nil }  // nothing served at all: no share to compare
        let low = shares.min { $0.share < $1.share }!, high = shares.max { $0.share < $1.share }!
        let lo = low.share / mean, hi = high.share / mean
        windows += 1
        if minRatio.map({ lo < $0 }) ?? true {
            minRatio = lo
            worst = (low.camera, t)
        }
        maxRatio = max(maxRatio ?? hi, hi)
        return (lo, hi)
    }
}
