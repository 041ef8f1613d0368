import Logging

/// How a process writes its log lines: swift-log's text lines, or one JSON object per line
/// (`JSONLogHandler`; the keys are listed in docs/operations.md, "Logs").
public enum LogFormat: String, CaseIterable, Sendable {
    /// `TIMESTAMP LEVEL LABEL: METADATA [SOURCE] MESSAGE`, swift-log's `StreamLogHandler`.
    case text
    /// One JSON object per line with stable keys (`JSONLogHandler`).
    case json

    /// A handler for loggers labelled `label`, writing to standard error; `role` names the
    /// process in JSON lines (broker, worker, device, controller, loadgen, up).
    public func handler(label: String, role: String) -> any LogHandler {
        switch self {
        case .text: StreamLogHandler.standardError(label: label)
        case .json: JSONLogHandler(label: label, role: role, sink: .standardError)
        }
    }
}
