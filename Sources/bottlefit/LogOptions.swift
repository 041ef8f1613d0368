import ArgumentParser
import BottleFitFleet
import BottleFitLogging
import Logging

/// `--log-format text|json`, shared by every long-running command (broker, worker, device,
/// controller, loadgen, up).
struct LogFormatOption: ParsableArguments {
    @Option(name: .role(CommonFlags.logFormat), help: ArgumentHelp(
        "Log lines as text (swift-log's format) or json (one object per line: ts, level, role, label, source, msg, "
            + "metadata; docs/operations.md, \"Logs\").",
        valueName: "text|json"))
    var logFormat = "text"

    func validate() throws {
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json (got \(logFormat))") }
    }

    var format: LogFormat { LogFormat(rawValue: logFormat) ?? .text }

    /// Sets up the process's logging in this format and returns its logger (`bottlefit.ROLE`).
    func bootstrap(role: String, level: String) -> Logger {
        let format = self.format
        LoggingSystem.bootstrap { label in format.handler(label: label, role: role) }
        var logger = Logger(label: "bottlefit.\(role)")
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}
