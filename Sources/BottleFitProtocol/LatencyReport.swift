import CBottleFitMsgPack

/// Percentiles of a latency distribution, in milliseconds, with `p50 <= p95 <= p99`.
public struct LatencyPercentiles: Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double

    public init(p50: Double, p95: Double, p99: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
    }

    /// The largest percentile a report or STATS may carry: one day, in milliseconds. A latency
    /// beyond it is a clock step, not a measurement, and the bound keeps aggregates finite.
    public static let maxMilliseconds: Double = 86_400_000

    func validate(_ prefix: String) throws(ProtocolError) {
        for (value, name) in [(p50, "l50"), (p95, "l95"), (p99, "l99")] {
            try checkDuration(value, prefix + name)
            guard value <= Self.maxMilliseconds else {
                throw .invalidValue(field: prefix + name, reason: "above one day (\(Int(Self.maxMilliseconds)) ms)")
            }
        }
        guard p50 <= p95, p95 <= p99 else {
            throw .invalidValue(field: prefix + "l95", reason: "percentiles must not decrease (l50 ≤ l95 ≤ l99)")
        }
    }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("l50"); try w.float64(p50)
        try w.key("l95"); try w.float64(p95)
        try w.key("l99"); try w.float64(p99)
    }

    /// Reads `l50`, `l95`, `l99` when `present`; refuses them when not (a percentile of no frames).
    init?(fields f: FieldMap, present: Bool) throws(ProtocolError) {
        let given = [f.optional("l50"), f.optional("l95"), f.optional("l99")]
        guard present else {
            guard given.allSatisfy({ $0 == nil }) else {
                throw .invalidValue(field: f.name("l95"), reason: "percentiles given for a window without completed frames")
            }
            return nil
        }
        p50 = try FieldValue.double(f.required("l50"), f.name("l50"))
        p95 = try FieldValue.double(f.required("l95"), f.name("l95"))
        p99 = try FieldValue.double(f.required("l99"), f.name("l99"))
        try validate(f.path)
    }
}

/// A camera's report of the end-to-end latency it observed for its edge frames over a window,
/// carried by HEARTBEAT under `"lr"` (docs/protocol.md section 7).
///
/// Latency runs from the frame's scheduled time (open loop) or capture to the arrival of its
/// RESULT. `completed` frames got a RESULT in the window and make the percentiles; `missed`
/// frames went to the edge and ended without a RESULT in time: the camera stopped waiting (its
/// reply timeout) or the broker or worker answered EXPIRED.
public struct LatencyReport: Sendable, Equatable {
    /// "c": the camera the figures are about (one socket may carry several cameras).
    public var cameraID: String
    /// "wm": the window the figures cover, in milliseconds (since the camera's previous report).
    public var windowMilliseconds: UInt64
    /// "n": edge frames completed with a RESULT in the window.
    public var completed: Int
    /// "mi": edge frames that missed in the window.
    public var missed: Int
    /// "l50", "l95", "l99": percentiles of the completed frames' latency; present exactly when `completed > 0`.
    public var percentiles: LatencyPercentiles?
    /// "lo" (optional, 0 when absent): frames the camera completed locally in the window,
    /// fallbacks included, so a controller sees the share of frames that did not use the edge.
    public var local: Int
    /// "lq" (optional): the 95th percentile of those local frames' end-to-end latency, ms.
    public var localP95: Double?
    /// "md" (optional): how the camera runs at the end of the window: `split`, `offload` (its
    /// configured edge mode) or `local` (configured so, or obeying a local directive); the broker
    /// counts cameras by it in STATS `cm`. Another identifier is valid and counted nowhere.
    public var mode: String?

    public init(
        cameraID: String, windowMilliseconds: UInt64, completed: Int, missed: Int, percentiles: LatencyPercentiles?,
        local: Int = 0, localP95: Double? = nil, mode: String? = nil
    ) {
        self.mode = mode
        self.cameraID = cameraID
        self.windowMilliseconds = windowMilliseconds
        self.completed = completed
        self.missed = missed
        self.percentiles = percentiles
        self.local = local
        self.localP95 = localP95
    }

    /// Most frames one report may count (each of `n`, `mi` and `lo`).
    public static let maxFrames = Int(UInt32.max)

    var fieldCount: Int {
        4 + (percentiles == nil ? 0 : 3) + (local > 0 ? 1 : 0) + (localP95 == nil ? 0 : 1) + (mode == nil ? 0 : 1)
    }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.map(fieldCount)
        try w.key("c"); try w.string(cameraID)
        try w.key("wm"); try w.unsigned(windowMilliseconds)
        try w.key("n"); try w.unsigned(completed)
        try w.key("mi"); try w.unsigned(missed)
        try percentiles?.write(to: w)
        if local > 0 { try w.key("lo"); try w.unsigned(local) }
        if let localP95 { try w.key("lq"); try w.float64(localP95) }
        if let mode { try w.key("md"); try w.string(mode) }
    }

    init(object: msgpack_object, limits: ProtocolLimits) throws(ProtocolError) {
        let f = try FieldMap(object, path: "lr.")
        cameraID = try FieldValue.identifier(f.required("c"), f.name("c"), limits: limits)
        windowMilliseconds = try FieldValue.unsigned(f.required("wm"), f.name("wm"))
        completed = try FieldValue.int(f.required("n"), f.name("n"), in: 0...Self.maxFrames)
        missed = try FieldValue.int(f.required("mi"), f.name("mi"), in: 0...Self.maxFrames)
        percentiles = try LatencyPercentiles(fields: f, present: completed > 0)
        local = try f.optional("lo").map { (o) throws(ProtocolError) in try FieldValue.int(o, f.name("lo"), in: 0...Self.maxFrames) } ?? 0
        localP95 = try f.optional("lq").map { (o) throws(ProtocolError) in try FieldValue.double(o, f.name("lq")) }
        mode = try f.optional("md").map { (o) throws(ProtocolError) in try FieldValue.identifier(o, f.name("md"), limits: limits) }
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        try checkIdentifier(cameraID, "lr.c", limits)
        if let mode { try checkIdentifier(mode, "lr.md", limits) }
        guard (0...Self.maxFrames).contains(local) else { throw .invalidValue(field: "lr.lo", reason: "outside 0...\(Self.maxFrames)") }
        if let q = localP95 {
            try checkDuration(q, "lr.lq")
            guard q <= LatencyPercentiles.maxMilliseconds else { throw .invalidValue(field: "lr.lq", reason: "above one day") }
            guard local > 0 else { throw .invalidValue(field: "lr.lq", reason: "a local percentile given for a window without local frames") }
        }
        guard windowMilliseconds >= 1 else { throw .invalidValue(field: "lr.wm", reason: "a window lasts at least 1 ms") }
        guard (0...Self.maxFrames).contains(completed) else { throw .invalidValue(field: "lr.n", reason: "outside 0...\(Self.maxFrames)") }
        guard (0...Self.maxFrames).contains(missed) else { throw .invalidValue(field: "lr.mi", reason: "outside 0...\(Self.maxFrames)") }
        switch (completed > 0, percentiles) {
        case (true, nil): throw .missingField("lr.l50")
        case (false, _?): throw .invalidValue(field: "lr.l95", reason: "percentiles given for a window without completed frames")
        case (true, let p?): try p.validate("lr.")
        case (false, nil): break
        }
    }
}

/// The broker's aggregate of the latency reports it received recently, in STATS
/// (`lc`, `ln`, `lm` and, when `ln > 0`, `l50`, `l95`, `l99`).
public struct CameraLatencySummary: Sendable, Equatable {
    /// "lc": cameras with a report in the window.
    public var cameras: Int
    /// "ln": completed edge frames those reports count.
    public var completed: Int
    /// "lm": missed edge frames those reports count.
    public var missed: Int
    /// The reports' percentiles, each weighted by the frames it counts; present exactly when `completed > 0`.
    public var percentiles: LatencyPercentiles?
    /// "lo": frames those reports say the cameras completed locally (0 from cameras that do not say).
    public var local: Int
    /// "lq": the reports' local latency p95, weighted by their local frames; present when any report gave one.
    public var localP95: Double?

    public init(cameras: Int, completed: Int, missed: Int, percentiles: LatencyPercentiles?, local: Int = 0, localP95: Double? = nil) {
        self.cameras = cameras
        self.completed = completed
        self.missed = missed
        self.percentiles = percentiles
        self.local = local
        self.localP95 = localP95
    }

    /// Frames completed locally as a share of all frames the reports count (edge completed,
    /// missed and local); 0 when none were counted.
    public var localShare: Double {
        let all = completed + missed + local
        return all == 0 ? 0 : Double(local) / Double(all)
    }

    /// These figures and `other`'s, for disjoint windows: counts add, percentiles are weighted
    /// by the frames each side counts (as the broker merges reports). `cameras` is the larger.
    public func merged(with other: CameraLatencySummary) -> CameraLatencySummary {
        func weigh(_ a: Double?, _ na: Int, _ b: Double?, _ nb: Int) -> Double? {
            switch (a, b) {
            case (nil, nil): return nil
            case (let a?, nil): return a
            case (nil, let b?): return b
            case (let a?, let b?): return na + nb == 0 ? max(a, b) : (a * Double(na) + b * Double(nb)) / Double(na + nb)
            }
        }
        let n = completed, m = other.completed
        let p50 = weigh(percentiles?.p50, n, other.percentiles?.p50, m)
        let percentiles: LatencyPercentiles? = p50.map { p50 in
            let p95 = max(p50, weigh(self.percentiles?.p95, n, other.percentiles?.p95, m) ?? p50)
            let p99 = max(p95, weigh(self.percentiles?.p99, n, other.percentiles?.p99, m) ?? p95)
            return LatencyPercentiles(p50: p50, p95: p95, p99: p99)
        }
        return CameraLatencySummary(
            cameras: max(cameras, other.cameras), completed: completed + other.completed, missed: missed + other.missed,
            percentiles: percentiles, local: local + other.local,
            localP95: weigh(localP95, local, other.localP95, other.local))
    }

    /// Missed frames as a share of the edge frames counted; 0 when none were counted.
    public var missRatio: Double {
        completed + missed == 0 ? 0 : Double(missed) / Double(completed + missed)
    }

    var fieldCount: Int { 3 + (percentiles == nil ? 0 : 3) + (local > 0 ? 1 : 0) + (localP95 == nil ? 0 : 1) }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("lc"); try w.unsigned(cameras)
        try w.key("ln"); try w.unsigned(completed)
        try w.key("lm"); try w.unsigned(missed)
        try percentiles?.write(to: w)
        if local > 0 { try w.key("lo"); try w.unsigned(local) }
        if let localP95 { try w.key("lq"); try w.float64(localP95) }
    }

    /// Reads the fields from a STATS map: nil when the broker sent none (an older broker).
    init?(fields f: FieldMap) throws(ProtocolError) {
        guard f.optional("lc") != nil || f.optional("ln") != nil || f.optional("lm") != nil else {
            guard f.optional("l50") == nil, f.optional("l95") == nil, f.optional("l99") == nil else {
                throw .missingField("ln")
            }
            return nil
        }
        cameras = try FieldValue.int(f.required("lc"), "lc", in: 0...Int.max)
        completed = try FieldValue.int(f.required("ln"), "ln", in: 0...Int.max)
        missed = try FieldValue.int(f.required("lm"), "lm", in: 0...Int.max)
        percentiles = try LatencyPercentiles(fields: f, present: completed > 0)
        local = try f.optional("lo").map { (o) throws(ProtocolError) in try FieldValue.int(o, "lo", in: 0...Int.max) } ?? 0
        localP95 = try f.optional("lq").map { (o) throws(ProtocolError) in try FieldValue.double(o, "lq") }
    }

    func validate() throws(ProtocolError) {
        guard cameras >= 0, completed >= 0, missed >= 0, local >= 0 else { throw .invalidValue(field: "lc", reason: "negative") }
        if let q = localP95 {
            try checkDuration(q, "lq")
            guard q <= LatencyPercentiles.maxMilliseconds else { throw .invalidValue(field: "lq", reason: "above one day") }
        }
        switch (completed > 0, percentiles) {
        case (true, nil): throw .missingField("l50")
        case (false, _?): throw .invalidValue(field: "l95", reason: "percentiles given without completed frames")
        case (true, let p?): try p.validate("")
        case (false, nil): break
        }
    }
}
