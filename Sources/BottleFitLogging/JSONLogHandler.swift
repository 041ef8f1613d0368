import Logging

/// A swift-log handler that writes one JSON object per line, with the same keys in the same
/// order on every line (docs/operations.md, "Logs"):
///
/// `{"ts":"2026-12-03T15:26:20.123Z","level":"info","role":"broker","label":"bottlefit.broker","source":"BottleFitBroker","msg":"broker serving","metadata":{"frontend":"tcp://127.0.0.1:5555"}}`
///
/// `ts` is RFC 3339 in UTC with milliseconds; `metadata` is always an object (empty when there is
/// none), its values strings, arrays or objects as swift-log's `Logger.MetadataValue` has them;
/// an error attached to the event goes in as `metadata.error` unless that key is taken.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The logger's label.
    public let label: String
    /// The process's role: broker, worker, device, controller, loadgen, up.
    public let role: String
    private let sink: LogLineSink
    private let clock: @Sendable () -> LogTimestamp

    /// A handler for `label` in a process of `role`, writing lines to `sink`; `clock` gives the
    /// time of each line (tests fix it).
    public init(
        label: String, role: String, sink: LogLineSink, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        clock: @escaping @Sendable () -> LogTimestamp = LogTimestamp.now
    ) {
        self.label = label
        self.role = role
        self.sink = sink
        self.metadataProvider = metadataProvider
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        sink.write(Self.line(
            ts: clock(), level: event.level, role: role, label: label, source: event.source, message: "\(event.message)",
            metadata: merged))
    }

    /// One line, keys in the documented order.
    public static func line(
        ts: LogTimestamp, level: Logger.Level, role: String, label: String, source: String, message: String, metadata: Logger.Metadata
    ) -> String {
        var json = ""
        JSONText.appendMetadata(metadata, to: &json)
        return JSONText.line(
            ts: ts.rfc3339, level: level, role: role, label: label, source: source, message: message, metadata: json)
    }
}

/// JSON text for the handler: strings escaped per RFC 8259 (quote, backslash, control characters),
/// metadata as nested objects with sorted keys.
enum JSONText {
    /// A whole line: the documented keys in order, `metadata` already JSON text, then `extra`
    /// keys with JSON text values.
    static func line(
        ts: String, level: Logger.Level, role: String, label: String, source: String, message: String, metadata: String,
        extra: [(String, String)] = []
    ) -> String {
        var out = "{"
        for (key, value) in [("ts", ts), ("level", level.rawValue), ("role", role), ("label", label), ("source", source), ("msg", message)] {
            appendString(key, to: &out)
            out += ":"
            appendString(value, to: &out)
            out += ","
        }
        out += "\"metadata\":" + metadata
        for (key, value) in extra {
            out += ","
            appendString(key, to: &out)
            out += ":" + value
        }
        return out + "}"
    }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                // Control characters (and the line separators some JavaScript readers choke on) as \uXXXX.
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func appendMetadata(_ metadata: Logger.Metadata, to out: inout String) {
        out += "{"
        var first = true
        for key in metadata.keys.sorted() {
            if !first { out += "," }
            first = false
            appendString(key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}"
    }

    static func appendValue(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .stringConvertible(let c): appendString(c.description, to: &out)
        case .dictionary(let d): appendMetadata(d, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                appendValue(v, to: &out)
            }
            out += "]"
        }
    }
}
