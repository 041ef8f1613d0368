/// READY, worker → broker: a worker joins (or rejoins) with its models and initial credit.
public struct ReadyMessage: WireMessage {
    public static let messageType = MessageType.ready

    /// "w": the worker's name, for logs and stats (routing uses the socket's routing id).
    public var workerID: String
    /// "ms": the models whose tails this worker runs.
    public var models: [String]
    /// "cr": how many frames the broker may send before the worker returns credit.
    public var credit: Int

    public init(workerID: String, models: [String], credit: Int) {
        self.workerID = workerID
        self.models = models
        self.credit = credit
    }

    public var message: Message { .ready(self) }
    public init?(_ message: Message) {
        guard case .ready(let m) = message else { return nil }
        self = m
    }
}

extension ReadyMessage: MessageBody {
    var fieldCount: Int { 3 }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("w"); try w.string(workerID)
        try w.key("ms"); try w.array(models.count)
        for m in models { try w.string(m) }
        try w.key("cr"); try w.unsigned(credit)
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        workerID = try FieldValue.identifier(f.required("w"), "w", limits: limits)
        models = try FieldValue.list(f.required("ms"), "ms", maxCount: limits.maxModels) { (o, name) throws(ProtocolError) in
            try FieldValue.identifier(o, name, limits: limits)
        }
        credit = try FieldValue.int(f.required("cr"), "cr", in: 0...limits.maxCredit)
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        try checkIdentifier(workerID, "w", limits)
        guard !models.isEmpty else { throw .invalidValue(field: "ms", reason: "a worker must serve at least one model") }
        guard models.count <= limits.maxModels else { throw .tooLarge(field: "ms", limit: limits.maxModels) }
        for m in models { try checkIdentifier(m, "ms", limits) }
        guard (0...limits.maxCredit).contains(credit) else {
            throw .invalidValue(field: "cr", reason: "credit \(credit) outside 0...\(limits.maxCredit)")
        }
    }
}

/// CREDIT, worker → broker: the worker can take `credits` more frames.
public struct CreditMessage: WireMessage {
    public static let messageType = MessageType.credit

    /// "n": credits returned, at least 1.
    public var credits: Int

    public init(credits: Int) { self.credits = credits }

    public var message: Message { .credit(self) }
    public init?(_ message: Message) {
        guard case .credit(let m) = message else { return nil }
        self = m
    }
}

extension CreditMessage: MessageBody {
    var fieldCount: Int { 1 }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("n"); try w.unsigned(credits)
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        credits = try FieldValue.int(f.required("n"), "n", in: 1...limits.maxCredit)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        guard (1...limits.maxCredit).contains(credits) else {
            throw .invalidValue(field: "n", reason: "credits \(credits) outside 1...\(limits.maxCredit)")
        }
    }
}

/// HEARTBEAT, either direction: a sign of life when there is nothing else to send. From a camera
/// it may carry a latency report (`"lr"`), which a broker that does not know the key ignores.
public struct HeartbeatMessage: WireMessage {
    public static let messageType = MessageType.heartbeat

    /// "lr": the camera's latency report for the window just ended (camera → broker only).
    public var latencyReport: LatencyReport?

    public init(latencyReport: LatencyReport? = nil) { self.latencyReport = latencyReport }

    public var message: Message { .heartbeat(self) }
    public init?(_ message: Message) {
        guard case .heartbeat(let m) = message else { return nil }
        self = m
    }
}

extension HeartbeatMessage: MessageBody {
    var fieldCount: Int { latencyReport == nil ? 0 : 1 }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        if let latencyReport { try w.key("lr"); try latencyReport.write(to: w) }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        latencyReport = try f.optional("lr").map { (o) throws(ProtocolError) in try LatencyReport(object: o, limits: limits) }
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        try latencyReport?.validate(limits: limits)
    }
}

/// DISCONNECT, either direction: the sender is leaving; the receiver forgets it at once
/// instead of waiting for heartbeats to lapse.
public struct DisconnectMessage: WireMessage {
    public static let messageType = MessageType.disconnect

    /// "r": why, for logs.
    public var reason: String?

    public init(reason: String? = nil) { self.reason = reason }

    public var message: Message { .disconnect(self) }
    public init?(_ message: Message) {
        guard case .disconnect(let m) = message else { return nil }
        self = m
    }
}

extension DisconnectMessage: MessageBody {
    var fieldCount: Int { reason == nil ? 0 : 1 }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        if let reason { try w.key("r"); try w.string(reason) }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        reason = try f.optional("r").map { (o) throws(ProtocolError) in try FieldValue.string(o, "r", maxBytes: limits.maxTextBytes) }
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        if let reason { try checkText(reason, "r", limits) }
    }
}
