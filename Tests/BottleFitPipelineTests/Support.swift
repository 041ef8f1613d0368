import Foundation
import Testing

/// The `bottlefit` built next to this test runner (whatever --scratch-path), like UpTests finds it.
enum Binary {
    static var path: String {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map(URL.init(fileURLWithPath:))
            ?? Bundle.main.bundleURL
        let sibling = runner.deletingLastPathComponent().appendingPathComponent("bottlefit").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("bottlefit").path
    }
}

/// A short temporary folder: ipc:// paths must fit in a Unix socket address (about 100 bytes).
func shortTemporary(_ prefix: String) throws -> URL {
    let url = URL(fileURLWithPath: "/tmp/\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The tiny models every scenario uses, made once by the binary itself.
enum TinyModels {
    struct Files: Sendable {
        var head: String
        var tail: String
        var full: String
        /// A tail 8× wider (same bottleneck): a worker slow enough to overload on a small machine.
        var slowTail: String
        var problem: String?
    }

    static let files: Files = {
        let dir = URL(fileURLWithPath: "/tmp/bfp-models-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Removed when the test runner exits (same pid), so runs leave nothing in /tmp.
        atexit { try? FileManager.default.removeItem(atPath: "/tmp/bfp-models-\(getpid())") }
        var problem: String?
        var paths: [String: String] = [:]
        for (name, part, width) in [("head", "head", 4), ("tail", "tail", 4), ("full", "full", 4), ("slowTail", "tail", 32)] {
            let out = dir.appendingPathComponent("\(name).onnx").path
            paths[name] = out
            let p = Running(name: "model-\(name)", arguments: [
                "model", "create", "bottlefit-resnet50", "--bottleneck", "4", "--width", "\(width)", "--classes", "10",
                "--image-size", "64", "--out", out, "--part", part,
            ])
            let status = p.waitForExit(timeout: 120)
            if status != 0 { problem = "model create \(part) failed (\(String(describing: status))): \(p.stderr)" }
        }
        return Files(head: paths["head"]!, tail: paths["tail"]!, full: paths["full"]!, slowTail: paths["slowTail"]!, problem: problem)
    }()
}

/// One started `bottlefit` process whose stdout and stderr are collected as they arrive.
final class Running: @unchecked Sendable {
    // @unchecked: the buffers are guarded by `lock`; `process` is only touched by the test's thread.
    let name: String
    let process = Process()
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    private var openPipes = 2
    private(set) var startError: String?

    /// `launcher` runs the binary through another program (e.g. `ip netns exec NS`), which must
    /// exec it, so that `pid` stays the binary's.
    init(name: String, arguments: [String], launcher: [String] = []) {
        self.name = name
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [Binary.path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binary.path)
            process.arguments = arguments
        }
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        for (pipe, isError) in [(o, false), (e, true)] {
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard let self else { return }
                self.lock.lock()
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    self.openPipes -= 1
                } else if isError {
                    self.err.append(data)
                } else {
                    self.out.append(data)
                }
                self.lock.unlock()
            }
        }
        do { try process.run() } catch {
            startError = "\(error)"
            lock.lock(); openPipes = 0; lock.unlock()
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { startError == nil && process.isRunning }
    var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: out, as: UTF8.self) }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: err, as: UTF8.self) }
    /// Bytes of stderr so far, to look only at what comes after an event.
    var stderrCount: Int { lock.lock(); defer { lock.unlock() }; return err.count }
    func stderr(after offset: Int) -> String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: err.suffix(from: min(offset, err.count)), as: UTF8.self)
    }

    func signal(_ sig: Int32) {
        guard isRunning else { return }
        kill(pid, sig)
    }

    /// Waits (bounded) for the process to end and its pipes to close; nil if it is still running.
    @discardableResult
    func waitForExit(timeout: Double) -> Int32? {
        guard startError == nil else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        let pipeDeadline = Date().addingTimeInterval(3)
        while Date() < pipeDeadline {
            lock.lock(); let open = openPipes; lock.unlock()
            if open <= 0 { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns the exit status (128+signal if killed by one).
    @discardableResult
    func stop(grace: Double = 10) -> Int32? {
        guard startError == nil else { return nil }
        if process.isRunning { kill(pid, SIGTERM) }
        if let status = waitForExit(timeout: grace) { return status }
        kill(pid, SIGKILL)
        return waitForExit(timeout: 10)
    }

    /// Polls (bounded in time) until `text` appears in stderr after `offset`; the time it was seen, or nil.
    func waitForStderr(_ text: String, after offset: Int = 0, count: Int = 1, timeout: Double) -> Date? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if stderr(after: offset).components(separatedBy: text).count - 1 >= count { return Date() }
            if !isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        } while Date() < deadline
        return stderr(after: offset).components(separatedBy: text).count - 1 >= count ? Date() : nil
    }

    func waitForStderr<Output>(matching regex: Regex<Output>, after offset: Int, timeout: Double) -> Date? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if stderr(after: offset).contains(regex) { return Date() }
            if !isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        } while Date() < deadline
        return stderr(after: offset).contains(regex) ? Date() : nil
    }
}

/// Every process a test starts; `stopAll` (from a defer) stops each by its PID, bounded.
final class Fleet: @unchecked Sendable {
    // @unchecked: used from the test's thread only.
    private(set) var all: [Running] = []
    let dir: URL

    init() throws { dir = try shortTemporary("bfp") }

    func endpoint(_ name: String) -> String { "ipc://\(dir.path)/\(name)" }

    @discardableResult
    func start(_ name: String, _ arguments: [String], launcher: [String] = []) -> Running {
        let r = Running(name: name, arguments: arguments, launcher: launcher)
        all.append(r)
        if let e = r.startError { Issue.record("could not start \(name): \(e)") }
        return r
    }

    func stopAll() {
        for r in all.reversed() where r.isRunning { r.signal(SIGTERM) }
        for r in all.reversed() { r.stop(grace: 5) }
        try? FileManager.default.removeItem(at: dir)
    }

    /// Everything every process wrote, for failure messages.
    var transcript: String {
        all.map { "--- \($0.name) (pid \($0.pid))\nstdout: \($0.stdout)\nstderr: \($0.stderr.suffix(3000))" }.joined(separator: "\n")
    }
}

/// `key=value` tokens of a summary line; `prefix` picks the line (e.g. "camera=cam1", "received=").
func summary(_ text: String, prefix: String) -> [String: String]? {
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else { return nil }
    var fields: [String: String] = [:]
    for token in line.split(separator: " ") {
        guard let eq = token.firstIndex(of: "=") else { continue }
        fields[String(token[..<eq])] = String(token[token.index(after: eq)...])
    }
    return fields
}

func int(_ fields: [String: String]?, _ key: String) -> Int { fields.flatMap { $0[key] }.flatMap { Int($0) } ?? -1 }

/// A count inside the broker's `dropped[a=1,b=2]` list (0 when absent).
func brokerDropped(_ line: String, _ reason: String) -> Int {
    guard let m = line.firstMatch(of: try! Regex("dropped\\[[^\\]]*\\b\(reason)=(\\d+)")) else { return 0 }
    return Int(m.output[1].substring ?? "0") ?? 0
}

/// Sum of all counts in the broker's `dropped[...]` list.
func brokerDroppedTotal(_ line: String) -> Int {
    guard let m = line.firstMatch(of: /dropped\[([^\]]*)\]/) else { return -1 }
    if m.output.1 == "none" { return 0 }
    return m.output.1.split(separator: ",").compactMap { $0.split(separator: "=").last.flatMap { Int($0) } }.reduce(0, +)
}

/// Checks a camera's printed summary: it exists, and offered = completed_edge + completed_local + dropped.
@discardableResult
func checkCamera(_ cam: Running, _ id: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: String]? {
    let s = summary(cam.stdout, prefix: "camera=\(id) ")
    #expect(s != nil, "no summary from \(id): \(cam.stdout) \(cam.stderr.suffix(2000))", sourceLocation: sourceLocation)
    let offered = int(s, "offered"), edge = int(s, "completed_edge"), local = int(s, "completed_local"), dropped = int(s, "dropped")
    #expect(offered > 0, "\(id): \(String(describing: s))", sourceLocation: sourceLocation)
    #expect(edge >= 0 && local >= 0 && dropped >= 0, sourceLocation: sourceLocation)
    #expect(offered == edge + local + dropped, "\(id) does not account for every frame: \(cam.stdout)", sourceLocation: sourceLocation)
    return s
}

/// A timestamped progress line in the test output, to see where a slow run spent its time.
func note(_ text: String, since start: Date) {
    print(String(format: "[pipeline +%.2fs] %@", Date().timeIntervalSince(start), text))
}

/// Waits (bounded) until the camera's last edge-state change after `offset` leaves it on the
/// edge (healthy or congested), or it logged none (it never left). The time, or nil.
func onEdge(_ c: Running, after offset: Int, timeout: Double) -> Date? {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        let changes = c.stderr(after: offset).matches(of: /edge [a-z]+ -> ([a-z]+)/).map { String($0.output.1) }
        if let last = changes.last {
            if last == "healthy" || last == "congested" { return Date() }
        } else {
            return Date()
        }
        if !c.isRunning { return nil }
        Thread.sleep(forTimeInterval: 0.05)
    } while Date() < deadline
    return nil
}

/// The broker's counters line (printed on exit).
func brokerLine(_ b: Running) -> String {
    b.stdout.split(separator: "\n").last(where: { $0.hasPrefix("received=") }).map(String.init) ?? ""
}

/// received = completed + Σ dropped, with nothing left queued or in flight after a stop.
func checkBrokerBalance(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let f = summary(line, prefix: "received=")
    #expect(f != nil, "no broker counters", sourceLocation: sourceLocation)
    #expect(int(f, "queued") == 0 && int(f, "in_flight") == 0, "\(line)", sourceLocation: sourceLocation)
    #expect(int(f, "received") == int(f, "completed") + brokerDroppedTotal(line), "broker balance: \(line)",
            sourceLocation: sourceLocation)
}

/// Tests that make network namespaces take this lock, so that at most one of them runs at a
/// time: on a busy machine, several making and deleting namespaces at once made `ip` calls block
/// for minutes (seen once, cause not found).
enum NamespaceLock {
    private static let lock = NSLock()
    static func acquire() { lock.lock() }
    static func release() { lock.unlock() }
}
