/// Why a message could not be decoded (or encoded): every failure on untrusted bytes is one of these.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes end before the msgpack value does (including headers declaring more bytes than remain).
    case truncated
    /// The bytes are not msgpack (for example the never-used byte 0xc1).
    case malformed(String)
    /// A complete message is followed by this many extra bytes.
    case trailingBytes(Int)
    /// The top-level value (or a nested record) is not a map.
    case notAMap
    /// A map key is not a string, or appears twice.
    case badKey(String)
    /// A required field is absent.
    case missingField(String)
    /// A field has the wrong msgpack type; `expected` names the type.
    case wrongType(field: String, expected: String)
    /// A field, container or the message exceeds a limit of `ProtocolLimits`.
    case tooLarge(field: String, limit: Int)
    /// A field has the right type but a value outside its domain.
    case invalidValue(field: String, reason: String)
    /// A bottleneck's payload length differs from the product of its shape.
    case shapeMismatch(shape: [Int], payloadBytes: Int)
    /// The message's protocol version ("v") is not one this build speaks.
    case unsupportedVersion(got: UInt64)
    /// The message type ("t") is not known.
    case unknownType(String)
    /// The message is well formed but of another type than the one asked for.
    case unexpectedType(expected: String, got: String)
    /// msgpack-c failed while encoding or decoding (out of memory).
    case codecFailure(String)

    public var description: String {
        switch self {
        case .truncated: "message is truncated"
        case .malformed(let why): "message is not valid msgpack: \(why)"
        case .trailingBytes(let n): "message is followed by \(n) extra bytes"
        case .notAMap: "expected a msgpack map"
        case .badKey(let why): "bad map key: \(why)"
        case .missingField(let name): "missing field \"\(name)\""
        case .wrongType(let field, let expected): "field \"\(field)\" should be \(expected)"
        case .tooLarge(let field, let limit): "\(field) exceeds the limit of \(limit)"
        case .invalidValue(let field, let reason): "field \"\(field)\" is invalid: \(reason)"
        case .shapeMismatch(let shape, let bytes): "payload of \(bytes) bytes does not match shape \(shape)"
        case .unsupportedVersion(let got): "unsupported protocol version \(got) (this build speaks \(ProtocolVersion.current))"
        case .unknownType(let t): "unknown message type \"\(t)\""
        case .unexpectedType(let expected, let got): "expected a \(expected) message, got \(got)"
        case .codecFailure(let why): "msgpack-c failed: \(why)"
        }
    }
}

/// The protocol version this build speaks, the "v" field of every message.
public enum ProtocolVersion {
    /// Version 1, described in docs/protocol.md.
    public static let current: UInt64 = 1
}

/// Limits every decoder enforces before it allocates, so untrusted bytes cannot make it
/// allocate more than a bounded amount. Encoders enforce the same limits, so a message
/// that encodes is one the peer (with default limits) accepts.
public struct ProtocolLimits: Sendable, Equatable {
    /// Whole encoded message, in bytes. Also the natural `ZMQ_MAXMSGSIZE` of inbound sockets.
    public var maxMessageBytes: Int = (4 << 20) + (64 << 10)
    /// FRAME payload ("p"), in bytes.
    public var maxPayloadBytes: Int = 4 << 20
    /// Dimensions of a FRAME shape ("sh").
    public var maxShapeRank: Int = 8
    /// Product of a FRAME shape.
    public var maxShapeElements: Int = 4 << 20
    /// Identifiers: camera, worker and model names, error codes, in UTF-8 bytes.
    public var maxIdentifierBytes: Int = 128
    /// Free text: error messages and directive reasons, in UTF-8 bytes.
    public var maxTextBytes: Int = 1024
    /// Entries of RESULT top-k arrays.
    public var maxTopK: Int = 1000
    /// Models a worker may announce in READY.
    public var maxModels: Int = 64
    /// Credit in READY and CREDIT.
    public var maxCredit: Int = 1 << 16
    /// Worker entries in STATS.
    public var maxWorkers: Int = 1024
    /// Camera ids in a DIRECTIVE.
    public var maxCameraIDs: Int = 4096

    // Structural limits, checked by a pre-scan of the raw bytes before msgpack-c runs,
    // because msgpack-c allocates an array's storage from its declared count.

    /// Nesting depth of maps and arrays (STATS needs 3: message, worker list, worker).
    public var maxDepth: Int = 4
    /// Entries of any map.
    public var maxMapEntries: Int = 64
    /// Elements of any array (at least the largest per-field array limit above).
    public var maxArrayLength: Int = 4096
    /// Values in the whole message, counting every key, element and container.
    public var maxObjects: Int = 16384

    public init() {}

    /// The defaults: 4 MiB payloads, rank 8 shapes, 128-byte identifiers, 1 KiB texts.
    public static let `default` = ProtocolLimits()
}
