import Foundation
import Logging

/// Which stream of a child process a line came on.
public enum LogStream: String, Sendable {
    case standardOutput = "stdout"
    case standardError = "stderr"
}

/// One line of a child, as the supervising process writes it.
public struct MergedLine: Sendable, Equatable {
    /// The line to write (no newline).
    public var text: String
    /// The level of the child's log line; nil for a line that is not a log line (a summary, a usage error).
    public var level: Logger.Level?

    public init(text: String, level: Logger.Level?) {
        self.text = text
        self.level = level
    }
}

/// Merges the lines of several processes into one stream in one format (`bottlefit up`): each line
/// says which process wrote it, as a `[name] ` prefix in text, or as the `role` key in JSON.
///
/// A child may write either format: swift-log text lines, `JSONLogHandler` lines, or lines that are
/// no log line at all (a summary on standard output, "Error: ..." from the argument parser). In
/// JSON every one becomes a `JSONLogHandler` object (a plain line as `msg`, level info from
/// standard output and error from standard error, `label` the stream); in text a JSON line becomes
/// a swift-log style text line and every other line is kept as it is.
public struct LogMerger: Sendable {
    public let format: LogFormat
    private let clock: @Sendable () -> LogTimestamp

    public init(format: LogFormat, clock: @escaping @Sendable () -> LogTimestamp = LogTimestamp.now) {
        self.format = format
        self.clock = clock
    }

    /// `line` from the child `process` on `stream`, in this merger's format.
    public func merge(_ line: String, from process: String, stream: LogStream) -> MergedLine {
        if let record = LogRecord(json: line) {
            switch format {
            case .json: return MergedLine(text: record.json(role: process), level: record.level)
            case .text: return MergedLine(text: "[\(process)] " + record.text, level: record.level)
            }
        }
        let text = LogRecord(text: line)
        switch format {
        case .text:
            return MergedLine(text: "[\(process)] " + line, level: text?.level)
        case .json:
            let record = text ?? LogRecord(
                ts: clock().rfc3339, level: stream == .standardError ? .error : .info, label: stream.rawValue, source: "bottlefit",
                message: line, metadata: "{}", extra: [])
            return MergedLine(text: record.json(role: process), level: text?.level)
        }
    }

    /// A line of the supervising process itself (`role` up), in this merger's format.
    public func own(_ message: String, role: String = "up", label: String = "bottlefit.up", level: Logger.Level = .info) -> String {
        switch format {
        case .text: "[\(role)] " + message
        case .json:
            JSONLogHandler.line(ts: clock(), level: level, role: role, label: label, source: "bottlefit", message: message, metadata: [:])
        }
    }
}

/// A `JSONLogHandler` line read back: the documented keys, and any other keys kept as JSON text.
struct LogRecord {
    var ts: String
    var level: Logger.Level
    var label: String
    var source: String
    var message: String
    /// The metadata object as JSON text.
    var metadata: String
    /// Keys other than the documented ones, sorted, with their values as JSON text.
    var extra: [(String, String)]

    init(ts: String, level: Logger.Level, label: String, source: String, message: String, metadata: String, extra: [(String, String)]) {
        (self.ts, self.level, self.label, self.source, self.message, self.metadata, self.extra) = (ts, level, label, source, message, metadata, extra)
    }

    /// Nil unless `line` is a JSON object with at least a level and a message.
    init?(json line: String) {
        guard line.first == "{",
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let levelText = object["level"] as? String, let level = Logger.Level(rawValue: levelText),
              let message = object["msg"] as? String else { return nil }
        self.level = level
        self.message = message
        ts = object["ts"] as? String ?? LogTimestamp.now().rfc3339
        label = object["label"] as? String ?? ""
        source = object["source"] as? String ?? ""
        metadata = object["metadata"].flatMap(Self.jsonText) ?? "{}"
        let known: Set<String> = ["ts", "level", "role", "label", "source", "msg", "metadata"]
        extra = object.keys.filter { !known.contains($0) }.sorted().compactMap { key in Self.jsonText(object[key]!).map { (key, $0) } }
    }

    /// Nil unless `line` is a swift-log text line, `TIMESTAMP LEVEL LABEL: METADATA [SOURCE] MESSAGE`:
    /// the level is its second word; everything after the label's colon becomes the message.
    init?(text line: String) {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard words.count == 3, let level = Logger.Level(rawValue: String(words[1])),
              let colon = words[2].firstIndex(of: ":") else { return nil }
        self.init(
            ts: String(words[0]), level: level, label: String(words[2][..<colon]), source: "",
            message: String(words[2][words[2].index(after: colon)...].drop { $0 == " " }), metadata: "{}", extra: [])
    }

    /// The record as one `JSONLogHandler` line, `role` set to `role`.
    func json(role: String) -> String {
        JSONText.line(ts: ts, level: level, role: role, label: label, source: source, message: message, metadata: metadata, extra: extra)
    }

    /// As swift-log's `StreamLogHandler` writes it: `TS LEVEL LABEL: key=value ... [SOURCE] MESSAGE`.
    var text: String {
        var pairs: [String] = []
        if let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any] {
            for key in object.keys.sorted() {
                let value = object[key]!
                pairs.append("\(key)=\(value as? String ?? Self.jsonText(value) ?? "")")
            }
        }
        let meta = pairs.isEmpty ? "" : " " + pairs.joined(separator: " ")
        return "\(ts) \(level.rawValue) \(label):\(meta) [\(source)] \(message)"
    }

    /// `value` as compact JSON text with sorted keys.
    static func jsonText(_ value: Any) -> String? {
        guard let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .withoutEscapingSlashes]),
              let text = String(data: data, encoding: .utf8) else { return nil }
        return String(text.dropFirst().dropLast())
    }
}
