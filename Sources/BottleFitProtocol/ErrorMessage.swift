/// An ERROR code ("e"). Receivers treat codes they do not know like `internal`.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The broker's queue is full; retry after "ra" ms or compute locally.
    public static let busy = ErrorCode(rawValue: "BUSY")
    /// The frame's deadline passed before it could be computed; it was dropped unprocessed.
    public static let expired = ErrorCode(rawValue: "EXPIRED")
    /// The worker computing the frame stopped answering, and the frame was not requeued.
    public static let workerLost = ErrorCode(rawValue: "WORKER_LOST")
    /// The message could not be decoded or broke a rule of the protocol.
    public static let badRequest = ErrorCode(rawValue: "BAD_REQUEST")
    /// The message's "v" is not a version the receiver speaks.
    public static let unsupportedVersion = ErrorCode(rawValue: "UNSUPPORTED_VERSION")
    /// No worker serves the frame's model.
    public static let unknownModel = ErrorCode(rawValue: "UNKNOWN_MODEL")
    /// The message or payload exceeds the receiver's limits.
    public static let tooLarge = ErrorCode(rawValue: "TOO_LARGE")
    /// Anything else that went wrong on the receiving side.
    public static let `internal` = ErrorCode(rawValue: "INTERNAL")

    /// The codes version 1 defines.
    public static let known: [ErrorCode] = [.busy, .expired, .workerLost, .badRequest, .unsupportedVersion, .unknownModel, .tooLarge, .internal]

    /// The code to answer a message that failed to decode with `error`.
    public init(for error: ProtocolError) {
        switch error {
        case .unsupportedVersion: self = .unsupportedVersion
        case .tooLarge: self = .tooLarge
        case .codecFailure: self = .internal
        default: self = .badRequest
        }
    }

    public var description: String { rawValue }
}

/// ERROR: a frame (or request) failed; `sequence` says which one when it could be read.
public struct ErrorMessage: WireMessage {
    public static let messageType = MessageType.error

    /// "s": the sequence number of the frame this answers, absent if it could not be read.
    public var sequence: UInt64?
    /// "c": the camera the frame came from, absent if it could not be read.
    public var cameraID: String?
    /// "e": what went wrong.
    public var code: ErrorCode
    /// "m": a human-readable explanation (may be empty).
    public var text: String
    /// "ra": for BUSY, how long to wait before sending to the edge again, in milliseconds.
    public var retryAfterMilliseconds: UInt64?

    public init(sequence: UInt64?, cameraID: String?, code: ErrorCode, text: String, retryAfterMilliseconds: UInt64? = nil) {
        self.sequence = sequence
        self.cameraID = cameraID
        self.code = code
        self.text = text
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    /// The reply to a message that failed to decode: code from the error, sequence and camera
    /// from whatever `MessageHeader.peek` could read, and the error as text.
    public init(replyingTo error: ProtocolError, header: MessageHeader?, limits: ProtocolLimits = .default) {
        self.sequence = header?.sequence
        self.cameraID = header?.cameraID
        self.code = ErrorCode(for: error)
        self.text = prefix(String(describing: error), fittingUTF8Bytes: limits.maxTextBytes)
        self.retryAfterMilliseconds = nil
    }

    public var message: Message { .error(self) }
    public init?(_ message: Message) {
        guard case .error(let m) = message else { return nil }
        self = m
    }
}

extension ErrorMessage: MessageBody {
    var fieldCount: Int { 2 + (sequence == nil ? 0 : 1) + (cameraID == nil ? 0 : 1) + (retryAfterMilliseconds == nil ? 0 : 1) }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        if let sequence { try w.key("s"); try w.unsigned(sequence) }
        if let cameraID { try w.key("c"); try w.string(cameraID) }
        try w.key("e"); try w.string(code.rawValue)
        try w.key("m"); try w.string(text)
        if let retryAfterMilliseconds { try w.key("ra"); try w.unsigned(retryAfterMilliseconds) }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        sequence = try f.optional("s").map { (o) throws(ProtocolError) in try FieldValue.unsigned(o, "s") }
        cameraID = try f.optional("c").map { (o) throws(ProtocolError) in try FieldValue.identifier(o, "c", limits: limits) }
        code = ErrorCode(rawValue: try FieldValue.identifier(f.required("e"), "e", limits: limits))
        text = try FieldValue.string(f.required("m"), "m", maxBytes: limits.maxTextBytes)
        retryAfterMilliseconds = try f.optional("ra").map { (o) throws(ProtocolError) in try FieldValue.unsigned(o, "ra") }
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        if let cameraID { try checkIdentifier(cameraID, "c", limits) }
        try checkIdentifier(code.rawValue, "e", limits)
        try checkText(text, "m", limits)
    }
}

/// The longest prefix of whole characters of `s` that fits in `maxBytes` of UTF-8.
func prefix(_ s: String, fittingUTF8Bytes maxBytes: Int) -> String {
    guard s.utf8.count > maxBytes else { return s }
    var out = ""
    var used = 0
    for character in s {
        let n = character.utf8.count
        if used + n > maxBytes { break }
        out.append(character)
        used += n
    }
    return out
}
