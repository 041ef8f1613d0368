/// The "t" field: which message a map is.
public struct MessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Camera → broker → worker: one frame to classify.
    public static let frame = MessageType(rawValue: "frame")
    /// Worker → broker → camera: the answer for one frame.
    public static let result = MessageType(rawValue: "result")
    /// Broker or worker → camera (or broker → worker): a frame or request failed.
    public static let error = MessageType(rawValue: "error")
    /// Worker → broker: a worker announces itself, its models and its initial credit.
    public static let ready = MessageType(rawValue: "ready")
    /// Worker → broker: the worker can take n more frames.
    public static let credit = MessageType(rawValue: "credit")
    /// Either direction: I am alive.
    public static let heartbeat = MessageType(rawValue: "heartbeat")
    /// Either direction: I am leaving; forget me.
    public static let disconnect = MessageType(rawValue: "disconnect")
    /// Broker PUB: load figures a few times a second.
    public static let stats = MessageType(rawValue: "stats")
    /// Controller PUB: which cameras should compute where.
    public static let directive = MessageType(rawValue: "directive")

    /// Every type version 1 defines.
    public static let all: [MessageType] = [.frame, .result, .error, .ready, .credit, .heartbeat, .disconnect, .stats, .directive]

    public var description: String { rawValue }
}

/// One message of the BottleFit protocol (docs/protocol.md), encoded as a msgpack map.
public enum Message: Sendable, Equatable {
    case frame(FrameMessage)
    case result(ResultMessage)
    case error(ErrorMessage)
    case ready(ReadyMessage)
    case credit(CreditMessage)
    case heartbeat(HeartbeatMessage)
    case disconnect(DisconnectMessage)
    case stats(StatsMessage)
    case directive(DirectiveMessage)

    /// The "t" of this message.
    public var type: MessageType {
        switch self {
        case .frame: .frame
        case .result: .result
        case .error: .error
        case .ready: .ready
        case .credit: .credit
        case .heartbeat: .heartbeat
        case .disconnect: .disconnect
        case .stats: .stats
        case .directive: .directive
        }
    }

    /// Encodes the message, first checking it against `limits` so a peer with the same limits accepts it.
    public func encoded(limits: ProtocolLimits = .default) throws(ProtocolError) -> [UInt8] {
        switch self {
        case .frame(let m): try Self.encode(m, limits: limits)
        case .result(let m): try Self.encode(m, limits: limits)
        case .error(let m): try Self.encode(m, limits: limits)
        case .ready(let m): try Self.encode(m, limits: limits)
        case .credit(let m): try Self.encode(m, limits: limits)
        case .heartbeat(let m): try Self.encode(m, limits: limits)
        case .disconnect(let m): try Self.encode(m, limits: limits)
        case .stats(let m): try Self.encode(m, limits: limits)
        case .directive(let m): try Self.encode(m, limits: limits)
        }
    }

    private static func encode<Body: MessageBody>(_ body: Body, limits: ProtocolLimits) throws(ProtocolError) -> [UInt8] {
        try body.validate(limits: limits)
        let writer = MessagePackWriter()
        try writer.map(2 + body.fieldCount)
        try writer.header(Body.messageType)
        try body.write(to: writer)
        let bytes = writer.bytes
        guard bytes.count <= limits.maxMessageBytes else { throw .tooLarge(field: "message", limit: limits.maxMessageBytes) }
        return bytes
    }

    /// Decodes untrusted bytes. Never traps and never allocates more than `limits` allow:
    /// sizes are checked before anything is copied. The version is checked before the type.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: ProtocolLimits = .default) throws(ProtocolError) -> Message {
        try MessagePackReader.withRoot(bytes, limits: limits) { (root) throws(ProtocolError) -> Message in
            let version = try FieldValue.unsigned(root.required("v"), "v")
            guard version == ProtocolVersion.current else { throw .unsupportedVersion(got: version) }
            let type = MessageType(rawValue: try FieldValue.string(root.required("t"), "t", maxBytes: limits.maxIdentifierBytes))
            switch type {
            case .frame: return .frame(try FrameMessage(fields: root, limits: limits))
            case .result: return .result(try ResultMessage(fields: root, limits: limits))
            case .error: return .error(try ErrorMessage(fields: root, limits: limits))
            case .ready: return .ready(try ReadyMessage(fields: root, limits: limits))
            case .credit: return .credit(try CreditMessage(fields: root, limits: limits))
            case .heartbeat: return .heartbeat(try HeartbeatMessage(fields: root, limits: limits))
            case .disconnect: return .disconnect(try DisconnectMessage(fields: root, limits: limits))
            case .stats: return .stats(try StatsMessage(fields: root, limits: limits))
            case .directive: return .directive(try DirectiveMessage(fields: root, limits: limits))
            default: throw .unknownType(type.rawValue)
            }
        }
    }

    /// Decodes untrusted bytes; see `decode(_:limits:)`.
    public static func decode(_ bytes: [UInt8], limits: ProtocolLimits = .default) throws(ProtocolError) -> Message {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> Message in try decode(raw, limits: limits) }
        }
        return try result.get()
    }
}

/// What can be read of a message whatever its version: enough to answer it with an ERROR
/// (for example UNSUPPORTED_VERSION) that names the frame it refers to.
public struct MessageHeader: Sendable, Equatable {
    /// "v", whatever its value.
    public var version: UInt64
    /// "t", not checked against the known types.
    public var type: String
    /// "s" if present and an unsigned integer.
    public var sequence: UInt64?
    /// "c" if present and a valid identifier.
    public var cameraID: String?

    public init(version: UInt64, type: String, sequence: UInt64? = nil, cameraID: String? = nil) {
        self.version = version
        self.type = type
        self.sequence = sequence
        self.cameraID = cameraID
    }

    /// Reads "v", "t", "s" and "c" of a message map, within the same structural limits as `Message.decode`.
    public static func peek(_ bytes: [UInt8], limits: ProtocolLimits = .default) throws(ProtocolError) -> MessageHeader {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> MessageHeader in
                try MessagePackReader.withRoot(raw, limits: limits) { (root) throws(ProtocolError) -> MessageHeader in
                    MessageHeader(
                        version: try FieldValue.unsigned(root.required("v"), "v"),
                        type: try FieldValue.string(root.required("t"), "t", maxBytes: limits.maxIdentifierBytes),
                        sequence: root.optional("s").flatMap { try? FieldValue.unsigned($0, "s") },
                        cameraID: root.optional("c").flatMap { try? FieldValue.identifier($0, "c", limits: limits) })
                }
            }
        }
        return try result.get()
    }
}

/// A message body: its fields besides "v" and "t", how to write, read and check them.
protocol MessageBody {
    static var messageType: MessageType { get }
    /// Map entries written after "v" and "t".
    var fieldCount: Int { get }
    func write(to writer: MessagePackWriter) throws(ProtocolError)
    /// Reads the fields, checking each size against `limits` before allocating for it.
    init(fields: FieldMap, limits: ProtocolLimits) throws(ProtocolError)
    /// Cross-field and range checks, run before encoding and after decoding.
    func validate(limits: ProtocolLimits) throws(ProtocolError)
}

/// A message struct that can be encoded and decoded on its own.
public protocol WireMessage: Sendable, Equatable {
    /// The "t" this struct is encoded with.
    static var messageType: MessageType { get }
    /// This message wrapped in `Message`.
    var message: Message { get }
    /// The struct inside `message`, or nil if it is of another type.
    init?(_ message: Message)
}

extension WireMessage {
    /// Encodes the message; see `Message.encoded(limits:)`.
    public func encoded(limits: ProtocolLimits = .default) throws(ProtocolError) -> [UInt8] {
        try message.encoded(limits: limits)
    }

    /// Decodes bytes that must hold a message of this type (`unexpectedType` otherwise).
    public static func decode(_ bytes: [UInt8], limits: ProtocolLimits = .default) throws(ProtocolError) -> Self {
        let message = try Message.decode(bytes, limits: limits)
        guard let body = Self(message) else {
            throw .unexpectedType(expected: messageType.rawValue, got: message.type.rawValue)
        }
        return body
    }
}
