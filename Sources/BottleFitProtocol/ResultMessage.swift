/// RESULT, worker → broker → camera: the top-k classes for one frame and where the time went.
public struct ResultMessage: WireMessage {
    public static let messageType = MessageType.result

    /// "c": the camera the frame came from.
    public var cameraID: String
    /// "s": the frame's sequence number.
    public var sequence: UInt64
    /// "ki": class indices, best first.
    public var classIndices: [Int]
    /// "ks": the score of each class in `classIndices` (same length): its softmax probability.
    public var scores: [Float]
    /// "qm": time the frame waited at the worker, from receipt to the start of its batch, in milliseconds.
    public var queuedMilliseconds: Double
    /// "cm": time the worker spent computing the batch the frame was in, in milliseconds.
    public var computeMilliseconds: Double
    /// "b": how many frames that batch held.
    public var batchSize: Int
    /// "w": the worker that computed it.
    public var workerID: String

    public init(
        cameraID: String, sequence: UInt64, classIndices: [Int], scores: [Float],
        queuedMilliseconds: Double, computeMilliseconds: Double, batchSize: Int, workerID: String
    ) {
        self.cameraID = cameraID
        self.sequence = sequence
        self.classIndices = classIndices
        self.scores = scores
        self.queuedMilliseconds = queuedMilliseconds
        self.computeMilliseconds = computeMilliseconds
        self.batchSize = batchSize
        self.workerID = workerID
    }

    public var message: Message { .result(self) }
    public init?(_ message: Message) {
        guard case .result(let m) = message else { return nil }
        self = m
    }
}

extension ResultMessage: MessageBody {
    var fieldCount: Int { 8 }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("c"); try w.string(cameraID)
        try w.key("s"); try w.unsigned(sequence)
        try w.key("ki"); try w.array(classIndices.count)
        for i in classIndices { try w.unsigned(i) }
        try w.key("ks"); try w.array(scores.count)
        for s in scores { try w.float32(s) }
        try w.key("qm"); try w.float64(queuedMilliseconds)
        try w.key("cm"); try w.float64(computeMilliseconds)
        try w.key("b"); try w.unsigned(batchSize)
        try w.key("w"); try w.string(workerID)
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        cameraID = try FieldValue.identifier(f.required("c"), "c", limits: limits)
        sequence = try FieldValue.unsigned(f.required("s"), "s")
        classIndices = try FieldValue.list(f.required("ki"), "ki", maxCount: limits.maxTopK) { (o, name) throws(ProtocolError) in
            try FieldValue.int(o, name, in: 0...Int(UInt32.max))
        }
        scores = try FieldValue.list(f.required("ks"), "ks", maxCount: limits.maxTopK) { (o, name) throws(ProtocolError) in
            try FieldValue.float(o, name)
        }
        queuedMilliseconds = try FieldValue.double(f.required("qm"), "qm")
        computeMilliseconds = try FieldValue.double(f.required("cm"), "cm")
        batchSize = try FieldValue.int(f.required("b"), "b", in: 1...limits.maxCredit)
        workerID = try FieldValue.identifier(f.required("w"), "w", limits: limits)
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        try checkIdentifier(cameraID, "c", limits)
        try checkIdentifier(workerID, "w", limits)
        guard classIndices.count <= limits.maxTopK else { throw .tooLarge(field: "ki", limit: limits.maxTopK) }
        guard scores.count == classIndices.count else {
            throw .invalidValue(field: "ks", reason: "\(scores.count) scores for \(classIndices.count) classes")
        }
        for i in classIndices where !(0...Int(UInt32.max)).contains(i) {
            throw .invalidValue(field: "ki", reason: "class index \(i) outside 0...\(UInt32.max)")
        }
        guard scores.allSatisfy(\.isFinite) else { throw .invalidValue(field: "ks", reason: "not finite") }
        try checkDuration(queuedMilliseconds, "qm")
        try checkDuration(computeMilliseconds, "cm")
        guard (1...limits.maxCredit).contains(batchSize) else {
            throw .invalidValue(field: "b", reason: "batch size \(batchSize) outside 1...\(limits.maxCredit)")
        }
    }
}

/// A finite, non-negative amount (a duration or a rate).
func checkDuration(_ value: Double, _ field: String) throws(ProtocolError) {
    guard value.isFinite, value >= 0 else { throw .invalidValue(field: field, reason: "must be finite and not negative") }
}
