import BottleFitLogging
import Foundation

/// Writes whole lines to standard output or error from many reader threads, so lines never interleave;
/// the children's lines and the supervisor's own in one format (`LogMerger`).
public final class LineWriter: @unchecked Sendable {
    // @unchecked: every write goes through `lock`.
    private let lock = NSLock()
    /// Everything to standard error (the load generator keeps standard output for its table).
    public let allToStandardError: Bool
    /// Text (`[name] ` prefixes) or JSON (a `role` key) for every line.
    public let merger: LogMerger
    /// Who the supervisor's own lines come from: up, loadgen.
    public let role: String

    public init(allToStandardError: Bool = false, format: LogFormat = .text, role: String = "up") {
        self.allToStandardError = allToStandardError
        self.merger = LogMerger(format: format)
        self.role = role
    }

    /// One of the supervisor's own lines (`[up] ...` in text).
    public func own(_ message: String, toError: Bool = false) {
        write(merger.own(message, role: role, label: "bottlefit.\(role)"), toError: toError)
    }

    public func write(_ line: String, toError: Bool = false) {
        let data = Data((line + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        (toError || allToStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(data)
    }
}

/// One process of a fleet (`bottlefit up`, `loadgen --topology`): its output prefixed with its name, a few counts taken from its log
/// lines, and how it ended.
public final class FleetProcess: @unchecked Sendable {
    // @unchecked: the counters are guarded by `lock`; `process` is only started and signalled from the
    // supervising thread, and Foundation's Process reads its own state thread-safely.
    public let role: FleetRole
    let process = Process()
    private let lock = NSLock()
    private var lineCount = 0
    private var warningCount = 0
    private var errorCount = 0
    private var refusalCount = 0
    private var lastStdoutLine: String?
    private var wasKilled = false
    private var wasDrained = false
    private let readers = DispatchGroup()
    /// Lines seen containing each watched text (`watch(_:)`), e.g. the broker's "worker joined".
    private var matches: [String: Int] = [:]

    public init(role: FleetRole) { self.role = role }

    public var name: String { role.name }
    public var pid: Int32 { process.processIdentifier }

    /// Starts `executable` with the role's arguments; stdin is /dev/null so the children never read the terminal.
    public func start(executable: URL, writer: LineWriter) throws {
        process.executableURL = executable
        // Children log in the supervisor's format, so their JSON lines pass through with a role key.
        process.arguments = role.arguments + (writer.merger.format == .json ? [CommonFlags.logFormat.description, LogFormat.json.rawValue] : [])
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        for (pipe, isError) in [(out, false), (err, true)] {
            readers.enter()
            let handle = pipe.fileHandleForReading
            let thread = Thread { [self] in
                pump(handle, isError: isError, writer: writer)
                readers.leave()
            }
            thread.name = "up-\(role.name)-\(isError ? "err" : "out")"
            thread.start()
        }
    }

    /// Copies lines until end of file; a blocking read on its own thread, so no pool thread waits on a pipe.
    private func pump(_ handle: FileHandle, isError: Bool, writer: LineWriter) {
        var pending = Data()
        func emit(_ bytes: Data) {
            let line = String(decoding: bytes, as: UTF8.self)
            let merged = writer.merger.merge(line, from: role.name, stream: isError ? .standardError : .standardOutput)
            note(line, level: merged.level?.rawValue, isError: isError)
            writer.write(merged.text, toError: isError)
        }
        // read(2), not FileHandle.read(upToCount:), which on Linux waits for the full count or end of file.
        let fd = handle.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                emit(pending[pending.startIndex..<newline])
                pending = Data(pending[pending.index(after: newline)...])
            }
        }
        if !pending.isEmpty { emit(pending) }
        try? handle.close()
    }

    /// Counts a line of the level the merger read from it (text or JSON; nil for a line that is no log line).
    private func note(_ line: String, level: String?, isError: Bool) {
        lock.lock()
        defer { lock.unlock() }
        lineCount += 1
        for key in matches.keys where line.contains(key) { matches[key]! += 1 }
        if level == "warning" { warningCount += 1 }
        if level == "error" || level == "critical" { errorCount += 1 }
        if level == "warning", line.contains(Self.refusalWarning) { refusalCount += 1 }
        if !isError { lastStdoutLine = line }
    }

    /// Log lines seen so far, and how many of them were warnings and errors.
    public var counts: (lines: Int, warnings: Int, errors: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (lineCount, warningCount, errorCount)
    }

    /// The camera's warning that the edge refuses its frames (BAD_REQUEST, TOO_LARGE, INTERNAL).
    public static let refusalWarning = "the edge refuses this camera's frames"

    /// How many times the process warned that the edge refuses its frames: a deployment mistake.
    public var refusals: Int {
        lock.lock()
        defer { lock.unlock() }
        return refusalCount
    }

    /// The last line the process wrote to standard output (a camera's summary once it has stopped).
    public var lastLine: String? {
        lock.lock()
        defer { lock.unlock() }
        return lastStdoutLine
    }

    public var isRunning: Bool { process.isRunning }

    /// Counts the lines containing `text` from now on (call before `start` to miss none).
    public func watch(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        if matches[text] == nil { matches[text] = 0 }
    }

    /// Waits until `count` lines containing the watched `text` have been seen, at most `seconds`, or the
    /// process has ended; true if they were seen.
    public func waitForLines(containing text: String, count: Int = 1, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            lock.lock()
            let seen = matches[text] ?? 0
            lock.unlock()
            if seen >= count { return true }
            if !process.isRunning { return false }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Sends SIGTERM to this process (by its PID) if it is still running.
    public func terminate() {
        if process.isRunning { kill(pid, SIGTERM) }
    }

    /// Sends SIGTERM to take it out of a running fleet (a worker drains: it answers the frames it
    /// holds, says DISCONNECT and exits 0); its exit is then expected, not a failure of the fleet.
    public func drain() {
        lock.lock()
        wasDrained = true
        lock.unlock()
        terminate()
    }

    /// Whether it was asked to leave with `drain()`.
    public var isDraining: Bool {
        lock.lock()
        defer { lock.unlock() }
        return wasDrained
    }

    /// Sends `signal` (by PID) if it is still running (SIGHUP: the broker re-reads its allow-lists).
    public func send(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
    }

    /// Sends SIGKILL to this process if it is still running, and remembers that it had to.
    public func forceKill() {
        guard process.isRunning else { return }
        lock.lock()
        wasKilled = true
        lock.unlock()
        kill(pid, SIGKILL)
    }

    /// Waits until the process has exited, at most `seconds`; true if it has.
    public func waitForExit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !process.isRunning
    }

    /// Waits, at most `seconds`, for the last of its output to be copied (after it has exited).
    public func drainOutput(seconds: Double) {
        _ = readers.wait(timeout: .now() + seconds)
    }

    /// Whether it ended badly: a non-zero exit, a signal, or a SIGKILL from `up`.
    /// A worker drained before it handled signals (SIGTERM while still starting) held no frame: not a failure.
    public var failed: Bool {
        guard !process.isRunning else { return true }
        if isDraining, process.terminationReason == .uncaughtSignal, process.terminationStatus == SIGTERM { return false }
        return process.terminationReason != .exit || process.terminationStatus != 0
    }

    /// "exit 0", "exit 1", "killed by signal 9 (did not stop in time)", or "still running".
    public var status: String {
        guard !process.isRunning else { return "still running" }
        if process.terminationReason == .exit { return "exit \(process.terminationStatus)" }
        lock.lock()
        let killed = wasKilled
        lock.unlock()
        // The roles install their SIGTERM handler only once started, so death by SIGTERM means "still loading".
        let hint = killed ? " (did not stop in time)"
            : process.terminationStatus == SIGTERM ? " (SIGTERM arrived before it handled signals: still starting?)" : ""
        return "killed by signal \(process.terminationStatus)\(hint)"
    }
}
