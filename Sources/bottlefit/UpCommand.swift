import ArgumentParser
import Foundation

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run a whole pipeline on this machine from a topology file: broker, workers, controller, cameras.",
        discussion: """
            Each role runs as a child process of this same executable, started in order (broker, \
            tail workers, controller, cameras); every line a child writes is prefixed with its name \
            ([broker], [worker-1], [camera-3]) and a one-line summary is printed every couple of \
            seconds. At the end of --duration, on Ctrl-C or on SIGTERM, and as soon as any process \
            fails, the children get SIGTERM in reverse order (cameras first, so they print their \
            summaries), are waited for up to --grace seconds, and any still running is killed. Each \
            child's exit status and the cameras' summaries are printed; the exit status is non-zero \
            if any process failed or had to be killed.
            The topology is YAML (see topology/local.yaml): broker endpoints, workers and cameras as \
            a count or a list, an optional controller. Any process may set `metrics: HOST:PORT` to \
            serve /metrics and /healthz (docs/metrics.md; a count group takes consecutive ports, port \
            0 a free one each). Paths are relative to the file; unknown and duplicate keys are \
            refused, and every error names the line and the key. Before anything starts, each split \
            camera's head must output what the workers' tail for its model takes (else every edge \
            frame would be refused), and some worker must serve every edge camera's model. An \
            endpoint other machines can reach (not loopback or ipc://) needs `security: {keys: DIR}` \
            (CURVE on every hop, each process using DIR/NAME.key; see docs/security.md) or an \
            explicit `security: none`.
            With no topology argument, `up` runs the embedded default: the fleet of \
            topology/local.yaml (loopback ports 5555-5558, 2 workers, the controller, 4 split \
            cameras, metrics on 127.0.0.1:9500-9523) on BottleFit ResNet-50 (C = 12) models in \
            models/demo/ under the current folder, creating them there on first run (--dry-run \
            writes nothing, models included).
            Example: bottlefit up --duration 30    or    bottlefit up topology/local.yaml --duration 30
            """
    )

    @Argument(help: "The topology file (YAML); default: the embedded local fleet.") var topology: String?
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C or SIGTERM).") var duration: Double?
    @Option(help: "Seconds each group of processes gets to stop after SIGTERM before SIGKILL.") var grace: Double = 10
    @Flag(help: "Check the topology and print the command lines without starting anything.") var dryRun = false

    func validate() throws {
        if let duration { guard duration > 0, duration <= 31_536_000 else { throw ValidationError("--duration must be more than 0 and at most a year (31536000 s)") } }
        guard grace > 0, grace <= 3600 else { throw ValidationError("--grace must be more than 0 and at most 3600 seconds") }
    }

    func run() throws {
        let file: TopologyFile
        let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        do {
            if let topology {
                file = try TopologyFile(contentsOf: topology)
            } else if dryRun {
                // A dry run writes nothing: not the default fleet's models (about 200 MB), not its topology file.
                let (folder, present, text) = DefaultFleet.plan(in: root)
                if !present { print("[up] dry run: \(folder.path) has no models yet; a real run creates them there (nothing is written now)") }
                file = try TopologyFile(text: text, path: folder.appendingPathComponent("default-topology.yaml").path, base: folder, checkFiles: present)
            } else {
                file = try TopologyFile(contentsOf: DefaultFleet.prepare(in: root))
            }
        } catch let error as TopologyError {
            // A topology that cannot be run is bad input, as a bad option is: exit 64.
            printError("Error: \(error.description)")
            throw ExitCode.validationFailure
        }
        let executable = Self.executableURL()
        if dryRun {
            for role in file.roles { print("\(role.name): \(executable.path) \(role.arguments.joined(separator: " "))") }
            return
        }
        let fleet = Fleet(roles: file.roles, executable: executable, grace: grace)
        let stop = FleetStopRequest()
        let sources = StopSignals.install { stop.request("signal") }
        let failed = fleet.run(duration: duration, stop: stop)
        withExtendedLifetime(sources) {}
        if failed { throw ExitCode.failure }
    }

    /// This executable, so the children run the same build as `up`.
    static func executableURL() -> URL {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: target)
        }
        let argument0 = CommandLine.arguments[0]
        if argument0.contains("/") {
            return URL(fileURLWithPath: argument0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
                .standardizedFileURL
        }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: argument0)
    }
}

/// Why the fleet should stop, set once from a signal handler or the supervising loop.
final class FleetStopRequest: @unchecked Sendable {
    // @unchecked: `reason` is guarded by `lock`.
    private let lock = NSLock()
    private var reason_: String?

    func request(_ reason: String) {
        lock.lock()
        defer { lock.unlock() }
        if reason_ == nil { reason_ = reason }
    }

    var reason: String? {
        lock.lock()
        defer { lock.unlock() }
        return reason_
    }
}

/// The processes of one topology: started in order, watched, stopped in reverse order.
struct Fleet {
    var roles: [TopologyFile.Role]
    var executable: URL
    var grace: Double
    var writer = LineWriter()
    /// Start order; stopping goes the other way.
    static let order: [TopologyFile.Role.Kind] = [.broker, .worker, .controller, .camera]

    /// Runs until `duration`, a stop request, a failed child or every camera finishing; true if anything failed.
    func run(duration: Double?, stop: FleetStopRequest) -> Bool {
        let started = Date()
        var reported: Set<String> = []
        let processes = start(stop: stop, reported: &reported)
        var lastSummary = Date()
        var refused: String?
        while stop.reason == nil {
            Thread.sleep(forTimeInterval: 0.1)
            let elapsed = Date().timeIntervalSince(started)
            if let duration, elapsed >= duration { stop.request("--duration reached") }
            checkExits(processes, stop: stop, reported: &reported)
            // Frames the edge refuses (a head and tail that do not fit, a payload over a limit)
            // would be refused all run long: stop and fail now rather than "stop cleanly" later.
            if refused == nil, let p = processes.first(where: { $0.refusals > 0 }) {
                refused = p.name
                stop.request("\(p.name): the edge refuses its frames (its warning above says why)")
            }
            if Date().timeIntervalSince(lastSummary) >= 2 {
                lastSummary = Date()
                say(summary(processes, elapsed: elapsed, duration: duration))
            }
        }
        stopAll(processes, reason: stop.reason ?? "")
        return report(processes, refused: refused)
    }

    /// Starts the roles kind by kind (broker, workers, controller, cameras), stopping early when one
    /// cannot start or fails at once; `prepare` runs on each process before it starts (to watch its lines).
    func start(stop: FleetStopRequest, reported: inout Set<String>, prepare: (FleetProcess) -> Void = { _ in }) -> [FleetProcess] {
        var processes: [FleetProcess] = []
        for kind in Self.order {
            let group = roles.filter { $0.kind == kind }.map(FleetProcess.init)
            for p in group {
                prepare(p)
                do {
                    try p.start(executable: executable, writer: writer)
                    processes.append(p)
                } catch {
                    say("cannot start \(p.name): \(error)")
                    stop.request("a process could not start")
                }
            }
            if stop.reason != nil { break }
            // A moment for the group to bind or connect, and to fail fast on a bad argument before the next starts.
            if !group.isEmpty { Thread.sleep(forTimeInterval: 0.3) }
            checkExits(processes, stop: stop, reported: &reported)
            if stop.reason != nil { break }
        }
        say("started \(processes.count) processes: \(processes.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", "))")
        return processes
    }

    /// Stops every process by its PID, in the reverse of the start order.
    func stopAll(_ processes: [FleetProcess], reason: String) {
        say("stopping (\(reason)): cameras, controller, workers, broker")
        for kind in Self.order.reversed() { stopGroup(processes.filter { $0.role.kind == kind }) }
    }

    /// Notes children that ended on their own; a failure stops the fleet, and so does the last camera finishing.
    func checkExits(_ processes: [FleetProcess], stop: FleetStopRequest, reported: inout Set<String>) {
        for p in processes where !p.isRunning && !reported.contains(p.name) {
            reported.insert(p.name)
            say("\(p.name) ended on its own: \(p.status)")
            if p.failed { stop.request("\(p.name) failed") }
        }
        let cameras = processes.filter { $0.role.kind == .camera }
        if !cameras.isEmpty, cameras.allSatisfy({ !$0.isRunning }) { stop.request("every camera has finished") }
    }

    /// SIGTERM to each, a bounded wait for all, SIGKILL to stragglers, and a short bounded wait for those.
    private func stopGroup(_ group: [FleetProcess]) {
        guard !group.isEmpty else { return }
        for p in group { p.terminate() }
        let deadline = Date().addingTimeInterval(grace)
        for p in group { _ = p.waitForExit(seconds: max(0, deadline.timeIntervalSinceNow)) }
        for p in group where p.isRunning {
            say("\(p.name) (pid \(p.pid)) did not stop within \(grace) s: SIGKILL")
            p.forceKill()
            _ = p.waitForExit(seconds: 2)
        }
        for p in group { p.drainOutput(seconds: 1) }
    }

    private func summary(_ processes: [FleetProcess], elapsed: Double, duration: Double?) -> String {
        let running = processes.filter(\.isRunning).count
        let counts = processes.map(\.counts)
        let lines = counts.reduce(0) { $0 + $1.lines }
        let warnings = counts.reduce(0) { $0 + $1.warnings }, errors = counts.reduce(0) { $0 + $1.errors }
        let time = String(format: "%.0f", elapsed) + (duration.map { String(format: "/%.0f", $0) } ?? "")
        return "\(time) s: \(running) of \(processes.count) running; \(lines) log lines, \(warnings) warnings, \(errors) errors"
    }

    /// Prints every child's exit status and the cameras' summaries; true if any process failed.
    func report(_ processes: [FleetProcess], refused: String? = nil) -> Bool {
        say("exit status:")
        for p in processes { say("  \(p.name): \(p.status)") }
        let cameras = processes.filter { $0.role.kind == .camera }
        if !cameras.isEmpty {
            say("camera summaries:")
            for c in cameras { say("  \(c.name): \(c.lastLine ?? "(no summary)")") }
        }
        let failed = processes.filter(\.failed).map(\.name) + (refused.map { ["\($0) (the edge refused its frames)"] } ?? [])
        say(failed.isEmpty ? "all \(processes.count) processes stopped cleanly" : "failed: \(failed.joined(separator: ", "))")
        return !failed.isEmpty || processes.count < roles.count
    }

    private func say(_ line: String) { writer.write("[up] " + line) }
}
