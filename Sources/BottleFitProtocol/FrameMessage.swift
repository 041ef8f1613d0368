import BottleFitCore

/// What a FRAME carries: a quantized bottleneck (split mode) or a JPEG file (offload mode).
public enum FramePayload: Sendable, Equatable {
    /// The head's output, uint8 per tensor element, with the parameters that map it back to floats.
    case bottleneck(QuantizedTensor)
    /// A complete JPEG file; the edge runs the whole model on it.
    case jpeg([UInt8])

    /// The "k" field.
    public var kind: String {
        switch self {
        case .bottleneck: "bottleneck"
        case .jpeg: "jpeg"
        }
    }

    /// The payload bytes ("p").
    public var bytes: [UInt8] {
        switch self {
        case .bottleneck(let q): q.data
        case .jpeg(let data): data
        }
    }
}

/// FRAME, camera → broker → worker: one frame to classify before `deadline`.
public struct FrameMessage: WireMessage {
    public static let messageType = MessageType.frame

    /// "c": the sending camera, unique in the fleet.
    public var cameraID: String
    /// "s": the camera's frame sequence number; replies carry it back.
    public var sequence: UInt64
    /// "m": the model whose tail should run (its head produced the bottleneck).
    public var model: String
    /// "k", "p", "sh", "qs", "qz".
    public var payload: FramePayload
    /// "dl": when the answer stops being useful, in Unix milliseconds. Nobody computes after it.
    public var deadline: UInt64
    /// "ts": when the camera sent (or was scheduled to send) the frame, in Unix milliseconds.
    public var sentAt: UInt64
    /// "lb": the ground-truth class index, when known (datasets, accuracy studies).
    public var label: Int?

    public init(
        cameraID: String, sequence: UInt64, model: String, payload: FramePayload,
        deadline: UInt64, sentAt: UInt64, label: Int? = nil
    ) {
        self.cameraID = cameraID
        self.sequence = sequence
        self.model = model
        self.payload = payload
        self.deadline = deadline
        self.sentAt = sentAt
        self.label = label
    }

    public var message: Message { .frame(self) }
    public init?(_ message: Message) {
        guard case .frame(let m) = message else { return nil }
        self = m
    }
}

extension FrameMessage: MessageBody {
    var fieldCount: Int {
        var n = 7  // c s m k p dl ts
        if case .bottleneck = payload { n += 3 }  // sh qs qz
        if label != nil { n += 1 }
        return n
    }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("c"); try w.string(cameraID)
        try w.key("s"); try w.unsigned(sequence)
        try w.key("m"); try w.string(model)
        try w.key("k"); try w.string(payload.kind)
        switch payload {
        case .bottleneck(let q):
            try w.key("p"); try w.binary(q.data)
            try w.key("sh"); try w.array(q.shape.count)
            for d in q.shape { try w.unsigned(d) }
            try w.key("qs"); try w.float32(q.parameters.scale)
            try w.key("qz"); try w.unsigned(UInt64(q.parameters.zeroPoint))
        case .jpeg(let data):
            try w.key("p"); try w.binary(data)
        }
        try w.key("dl"); try w.unsigned(deadline)
        try w.key("ts"); try w.unsigned(sentAt)
        if let label { try w.key("lb"); try w.unsigned(label) }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        cameraID = try FieldValue.identifier(f.required("c"), "c", limits: limits)
        sequence = try FieldValue.unsigned(f.required("s"), "s")
        model = try FieldValue.identifier(f.required("m"), "m", limits: limits)
        let kind = try FieldValue.string(f.required("k"), "k", maxBytes: limits.maxIdentifierBytes)
        let bytes = try FieldValue.binary(f.required("p"), "p", maxBytes: limits.maxPayloadBytes)
        switch kind {
        case "bottleneck":
            // The shape is read and checked against the payload length before the payload is copied.
            let shape = try FieldValue.list(f.required("sh"), "sh", maxCount: limits.maxShapeRank) { (o, name) throws(ProtocolError) in
                try FieldValue.int(o, name, in: 1...limits.maxShapeElements)
            }
            try Self.checkShape(shape, payloadBytes: bytes.count, limits: limits)
            let scale = try FieldValue.float(f.required("qs"), "qs")
            let zeroPoint = try FieldValue.int(f.required("qz"), "qz", in: 0...255)
            payload = .bottleneck(QuantizedTensor(
                shape: shape, data: Array(bytes),
                parameters: QuantizationParameters(scale: scale, zeroPoint: UInt8(zeroPoint))))
        case "jpeg":
            payload = .jpeg(Array(bytes))
        default:
            throw .invalidValue(field: "k", reason: "unknown kind \"\(kind)\" (expected bottleneck or jpeg)")
        }
        deadline = try FieldValue.unsigned(f.required("dl"), "dl")
        sentAt = try FieldValue.unsigned(f.required("ts"), "ts")
        label = try f.optional("lb").map { (o) throws(ProtocolError) in try FieldValue.int(o, "lb", in: 0...Int(UInt32.max)) }
        try validate(limits: limits)
    }

    /// Rank 1...maxShapeRank, every dimension at least 1, product within limits and equal to the payload length.
    static func checkShape(_ shape: [Int], payloadBytes: Int, limits: ProtocolLimits) throws(ProtocolError) {
        guard !shape.isEmpty else { throw .invalidValue(field: "sh", reason: "empty shape") }
        guard shape.count <= limits.maxShapeRank else { throw .tooLarge(field: "sh", limit: limits.maxShapeRank) }
        var product = 1
        for d in shape {
            guard d >= 1 else { throw .invalidValue(field: "sh", reason: "dimension \(d) is below 1") }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limits.maxShapeElements else {
                throw .tooLarge(field: "sh (element count)", limit: limits.maxShapeElements)
            }
            product = p
        }
        guard product == payloadBytes else { throw .shapeMismatch(shape: shape, payloadBytes: payloadBytes) }
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        try checkIdentifier(cameraID, "c", limits)
        try checkIdentifier(model, "m", limits)
        let bytes = payload.bytes
        guard bytes.count <= limits.maxPayloadBytes else { throw .tooLarge(field: "p", limit: limits.maxPayloadBytes) }
        switch payload {
        case .bottleneck(let q):
            try Self.checkShape(q.shape, payloadBytes: bytes.count, limits: limits)
            guard q.parameters.scale.isFinite, q.parameters.scale >= 0 else {
                throw .invalidValue(field: "qs", reason: "scale must be finite and not negative")
            }
        case .jpeg(let data):
            guard !data.isEmpty else { throw .invalidValue(field: "p", reason: "empty JPEG") }
        }
        if let label, !(0...Int(UInt32.max)).contains(label) {
            throw .invalidValue(field: "lb", reason: "label \(label) outside 0...\(UInt32.max)")
        }
    }
}

/// A non-empty identifier within `maxIdentifierBytes`.
func checkIdentifier(_ s: String, _ field: String, _ limits: ProtocolLimits) throws(ProtocolError) {
    guard !s.isEmpty else { throw .invalidValue(field: field, reason: "empty") }
    guard s.utf8.count <= limits.maxIdentifierBytes else { throw .tooLarge(field: field, limit: limits.maxIdentifierBytes) }
}

/// Text within `maxTextBytes`.
func checkText(_ s: String, _ field: String, _ limits: ProtocolLimits) throws(ProtocolError) {
    guard s.utf8.count <= limits.maxTextBytes else { throw .tooLarge(field: field, limit: limits.maxTextBytes) }
}
