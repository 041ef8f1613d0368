/// STATS, broker PUB: the broker's load, published a few times a second for the controller.
public struct StatsMessage: WireMessage {
    public static let messageType = MessageType.stats

    /// One worker's entry in "wk".
    public struct Worker: Sendable, Equatable {
        /// "w": the worker's name from READY.
        public var id: String
        /// "cr": frames the broker may still send it.
        public var credit: Int
        /// "if": frames sent to it and not yet answered.
        public var inFlight: Int
        /// "ba", "bx" (optional, together): the mean and the largest batch size (RESULT `b`) of the
        /// answers it sent in the last STATS interval; absent when it sent none (and from an older broker).
        public var batches: BatchSizes?

        public init(id: String, credit: Int, inFlight: Int, batches: BatchSizes? = nil) {
            self.id = id
            self.credit = credit
            self.inFlight = inFlight
            self.batches = batches
        }
    }

    /// The batch sizes of one worker's answers over a STATS interval.
    public struct BatchSizes: Sendable, Equatable {
        /// "ba": the mean of the answers' `b`, at least 1.
        public var mean: Double
        /// "bx": the largest `b`.
        public var max: Int

        public init(mean: Double, max: Int) {
            self.mean = mean
            self.max = max
        }
    }

    /// "cm": cameras by how they run, counted over the latency reports in the report window that
    /// carried `md` (a camera that sends none is in `lc` only).
    public struct CameraModes: Sendable, Equatable {
        /// "split": running the head and sending the bottleneck.
        public var split: Int
        /// "local": running the whole model (configured so, or obeying a local directive).
        public var local: Int
        /// "offload": sending the JPEG.
        public var offload: Int

        public init(split: Int = 0, local: Int = 0, offload: Int = 0) {
            self.split = split
            self.local = local
            self.offload = offload
        }

        /// Cameras counted in any mode.
        public var total: Int { split + local + offload }
    }

    /// "ts": when the figures were taken, in Unix milliseconds.
    public var timestamp: UInt64
    /// "qd": frames waiting in the broker's queue.
    public var queueDepth: Int
    /// "q50", "q95", "q99": queue-time percentiles over the last window, in milliseconds.
    public var queueTimeP50: Double
    public var queueTimeP95: Double
    public var queueTimeP99: Double
    /// "if": frames at workers and not yet answered.
    public var inFlight: Int
    /// "ar": frames arriving per second.
    public var arrivalRate: Double
    /// "co": frames completed per second.
    public var completionRate: Double
    /// "dr": frames dropped (BUSY, EXPIRED, WORKER_LOST, ...) per second.
    public var dropRate: Double
    /// "wk": every connected worker.
    public var workers: [Worker]
    /// "lc", "ln", "lm", "l50", "l95", "l99": the cameras' recent latency reports; nil from a broker
    /// that does not aggregate them (one older than the latency report).
    public var cameraLatency: CameraLatencySummary?
    /// "ut": the workers' utilisation over the last STATS interval, in [0, 1]: the share of the
    /// time each connected worker held at least one frame, averaged over workers. Absent from an
    /// older broker, and when no worker is connected.
    public var utilisation: Double?
    /// "cm": cameras by mode (optional; absent from an older broker and when no report in the
    /// window carried a mode).
    public var cameraModes: CameraModes?

    public init(
        timestamp: UInt64, queueDepth: Int, queueTimeP50: Double, queueTimeP95: Double, queueTimeP99: Double,
        inFlight: Int, arrivalRate: Double, completionRate: Double, dropRate: Double, workers: [Worker],
        cameraLatency: CameraLatencySummary? = nil, utilisation: Double? = nil, cameraModes: CameraModes? = nil
    ) {
        self.utilisation = utilisation
        self.cameraModes = cameraModes
        self.timestamp = timestamp
        self.queueDepth = queueDepth
        self.queueTimeP50 = queueTimeP50
        self.queueTimeP95 = queueTimeP95
        self.queueTimeP99 = queueTimeP99
        self.inFlight = inFlight
        self.arrivalRate = arrivalRate
        self.completionRate = completionRate
        self.dropRate = dropRate
        self.workers = workers
        self.cameraLatency = cameraLatency
    }

    public var message: Message { .stats(self) }
    public init?(_ message: Message) {
        guard case .stats(let m) = message else { return nil }
        self = m
    }
}

extension StatsMessage: MessageBody {
    var fieldCount: Int {
        10 + (cameraLatency?.fieldCount ?? 0) + (utilisation == nil ? 0 : 1) + (cameraModes == nil ? 0 : 1)
    }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("ts"); try w.unsigned(timestamp)
        try w.key("qd"); try w.unsigned(queueDepth)
        try w.key("q50"); try w.float64(queueTimeP50)
        try w.key("q95"); try w.float64(queueTimeP95)
        try w.key("q99"); try w.float64(queueTimeP99)
        try w.key("if"); try w.unsigned(inFlight)
        try w.key("ar"); try w.float64(arrivalRate)
        try w.key("co"); try w.float64(completionRate)
        try w.key("dr"); try w.float64(dropRate)
        try w.key("wk"); try w.array(workers.count)
        for worker in workers {
            try w.map(worker.batches == nil ? 3 : 5)
            try w.key("w"); try w.string(worker.id)
            try w.key("cr"); try w.unsigned(worker.credit)
            try w.key("if"); try w.unsigned(worker.inFlight)
            if let b = worker.batches {
                try w.key("ba"); try w.float64(b.mean)
                try w.key("bx"); try w.unsigned(b.max)
            }
        }
        try cameraLatency?.write(to: w)
        if let utilisation { try w.key("ut"); try w.float64(utilisation) }
        if let m = cameraModes {
            try w.key("cm"); try w.map(3)
            try w.key("split"); try w.unsigned(m.split)
            try w.key("local"); try w.unsigned(m.local)
            try w.key("offload"); try w.unsigned(m.offload)
        }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        timestamp = try FieldValue.unsigned(f.required("ts"), "ts")
        queueDepth = try FieldValue.int(f.required("qd"), "qd", in: 0...Int.max)
        queueTimeP50 = try FieldValue.double(f.required("q50"), "q50")
        queueTimeP95 = try FieldValue.double(f.required("q95"), "q95")
        queueTimeP99 = try FieldValue.double(f.required("q99"), "q99")
        inFlight = try FieldValue.int(f.required("if"), "if", in: 0...Int.max)
        arrivalRate = try FieldValue.double(f.required("ar"), "ar")
        completionRate = try FieldValue.double(f.required("co"), "co")
        dropRate = try FieldValue.double(f.required("dr"), "dr")
        workers = try FieldValue.list(f.required("wk"), "wk", maxCount: limits.maxWorkers) { (o, name) throws(ProtocolError) in
            let entry = try FieldMap(o, path: name + ".")
            let batches: BatchSizes?
            switch (entry.optional("ba"), entry.optional("bx")) {
            case (nil, nil): batches = nil
            case (let ba?, let bx?):
                batches = BatchSizes(
                    mean: try FieldValue.double(ba, entry.name("ba")),
                    max: try FieldValue.int(bx, entry.name("bx"), in: 1...limits.maxCredit))
            case (nil, _): throw .missingField(entry.name("ba"))
            case (_, nil): throw .missingField(entry.name("bx"))
            }
            return Worker(
                id: try FieldValue.identifier(entry.required("w"), entry.name("w"), limits: limits),
                credit: try FieldValue.int(entry.required("cr"), entry.name("cr"), in: 0...limits.maxCredit),
                inFlight: try FieldValue.int(entry.required("if"), entry.name("if"), in: 0...Int.max),
                batches: batches)
        }
        cameraLatency = try CameraLatencySummary(fields: f)
        utilisation = try f.optional("ut").map { (o) throws(ProtocolError) in try FieldValue.double(o, "ut") }
        cameraModes = try f.optional("cm").map { (o) throws(ProtocolError) in
            let m = try FieldMap(o, path: "cm.")
            func count(_ key: StaticString) throws(ProtocolError) -> Int {
                try m.optional(key).map { (v) throws(ProtocolError) in try FieldValue.int(v, m.name(key), in: 0...Int(UInt32.max)) } ?? 0
            }
            return CameraModes(split: try count("split"), local: try count("local"), offload: try count("offload"))
        }
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        guard queueDepth >= 0 else { throw .invalidValue(field: "qd", reason: "negative") }
        guard inFlight >= 0 else { throw .invalidValue(field: "if", reason: "negative") }
        try checkDuration(queueTimeP50, "q50")
        try checkDuration(queueTimeP95, "q95")
        try checkDuration(queueTimeP99, "q99")
        try checkDuration(arrivalRate, "ar")
        try checkDuration(completionRate, "co")
        try checkDuration(dropRate, "dr")
        guard workers.count <= limits.maxWorkers else { throw .tooLarge(field: "wk", limit: limits.maxWorkers) }
        for (i, worker) in workers.enumerated() {
            try checkIdentifier(worker.id, "wk[\(i)].w", limits)
            guard (0...limits.maxCredit).contains(worker.credit) else {
                throw .invalidValue(field: "wk[\(i)].cr", reason: "credit \(worker.credit) outside 0...\(limits.maxCredit)")
            }
            guard worker.inFlight >= 0 else { throw .invalidValue(field: "wk[\(i)].if", reason: "negative") }
            if let b = worker.batches {
                guard b.mean.isFinite, b.mean >= 1, b.mean <= Double(b.max) else {
                    throw .invalidValue(field: "wk[\(i)].ba", reason: "mean batch size \(b.mean) outside 1...bx")
                }
                guard (1...limits.maxCredit).contains(b.max) else {
                    throw .invalidValue(field: "wk[\(i)].bx", reason: "batch size \(b.max) outside 1...\(limits.maxCredit)")
                }
            }
        }
        if let m = cameraModes, m.split < 0 || m.local < 0 || m.offload < 0 {
            throw .invalidValue(field: "cm", reason: "negative count")
        }
        try cameraLatency?.validate()
        if let u = utilisation, !(u.isFinite && (0...1).contains(u)) { throw .invalidValue(field: "ut", reason: "utilisation \(u) outside [0, 1]") }
    }
}
