import BottleFitLifecycle
import BottleFitMetricsServer
import Dispatch
import Foundation

/// Why the fleet should stop, set once from a signal or the supervising loop: the lifecycle's
/// `StopRequest`, one type for every command that stops on SIGTERM/SIGINT.
public typealias FleetStopRequest = StopRequest

/// Changes asked of a running fleet's workers (SIGUSR1 adds one, SIGUSR2 drains one), taken in
/// order by the supervising loop.
public final class FleetScaleRequests: @unchecked Sendable {
    public enum Request: Sendable, Equatable { case addWorker, removeWorker }

    // @unchecked: `pending` is guarded by `lock`; signal handlers run on a dispatch queue.
    private let lock = NSLock()
    private var pending: [Request] = []
    private var sources: [any DispatchSourceSignal] = []

    public init() {}

    public func request(_ r: Request) {
        lock.lock()
        defer { lock.unlock() }
        pending.append(r)
    }

    /// The requests made since the last call, oldest first.
    public func take() -> [Request] {
        lock.lock()
        defer { lock.unlock() }
        let out = pending
        pending = []
        return out
    }

    /// The scaling signals: SIGUSR1 asks for one more worker, SIGUSR2 for one fewer. They are
    /// handled on a dispatch queue instead of ending the process (their default action).
    public static func installSignals() -> FleetScaleRequests {
        let requests = FleetScaleRequests()
        requests.sources = [(SIGUSR1, Request.addWorker), (SIGUSR2, .removeWorker)].map { sig, request in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak requests] in requests?.request(request) }
            source.resume()
            return source
        }
        return requests
    }
}

/// The processes of one topology: started in order, watched, workers added and drained while it
/// runs, stopped by PID in reverse order. `bottlefit up` and `loadgen --topology` both run fleets
/// through it.
public final class FleetSupervisor: @unchecked Sendable {
    // @unchecked: `processes` and the names are read and changed on the supervising thread only
    // (`run`, or `BackendFleet`'s scaling thread, which holds `lock` around every change); other
    // threads only read the processes' own lock-guarded state.
    public let file: TopologyFile
    public let roles: [FleetRole]
    public let executable: URL
    public let grace: Double
    public let writer: LineWriter
    private let lock = NSLock()
    private var processes_: [FleetProcess] = []
    private var usedNames: Set<String>
    private var startFailed = false
    private(set) var added = 0
    private(set) var drained = 0
    /// Start order; stopping goes the other way.
    public static let order: [FleetRole.Kind] = [.broker, .worker, .controller, .camera]

    /// A supervisor of `roles` (by default every role of `file`), running `executable` for each.
    public init(file: TopologyFile, roles: [FleetRole]? = nil, executable: URL, grace: Double, writer: LineWriter = LineWriter()) {
        self.file = file
        self.roles = roles ?? file.roles
        self.executable = executable
        self.grace = grace
        self.writer = writer
        usedNames = Set(file.roles.map(\.name))
    }

    /// The processes started so far (those that ended included).
    public var processes: [FleetProcess] {
        lock.lock()
        defer { lock.unlock() }
        return processes_
    }

    /// Workers running and not draining.
    public var activeWorkers: [FleetProcess] { processes.filter { $0.role.kind == .worker && $0.isRunning && !$0.isDraining } }

    /// Runs until `duration`, a stop request, a failed child or every camera finishing, taking
    /// `scale` requests as they come; true if anything failed.
    public func run(duration: Double?, stop: FleetStopRequest, scale: FleetScaleRequests? = nil) -> Bool {
        let started = Date()
        var reported: Set<String> = []
        start(stop: stop, reported: &reported)
        var lastSummary = Date()
        var refused: String?
        while stop.reason == nil {
            Thread.sleep(forTimeInterval: 0.1)
            let elapsed = Date().timeIntervalSince(started)
            if let duration, elapsed >= duration { stop.request("--duration reached") }
            for request in scale?.take() ?? [] { apply(request) }
            checkExits(stop: stop, reported: &reported)
            // Frames the edge refuses (a head and tail that do not fit, a payload over a limit)
            // would be refused all run long: stop and fail now rather than "stop cleanly" later.
            if refused == nil, let p = processes.first(where: { $0.refusals > 0 }) {
                refused = p.name
                stop.request("\(p.name): the edge refuses its frames (its warning above says why)")
            }
            if Date().timeIntervalSince(lastSummary) >= 2 {
                lastSummary = Date()
                say(summary(elapsed: elapsed, duration: duration))
            }
        }
        stopAll(reason: stop.reason ?? "")
        return report(refused: refused)
    }

    /// Starts the roles kind by kind (broker, workers, controller, cameras), stopping early when one
    /// cannot start or fails at once; `prepare` runs on each process before it starts (to watch its lines).
    public func start(stop: FleetStopRequest, reported: inout Set<String>, prepare: (FleetProcess) -> Void = { _ in }) {
        for kind in Self.order {
            let group = roles.filter { $0.kind == kind }.map(FleetProcess.init)
            for p in group {
                prepare(p)
                do {
                    try p.start(executable: executable, writer: writer)
                    append(p)
                } catch {
                    say("cannot start \(p.name): \(error)")
                    startFailed = true
                    stop.request("a process could not start")
                }
            }
            if stop.reason != nil { break }
            // A moment for the group to bind or connect, and to fail fast on a bad argument before the next starts.
            if !group.isEmpty { Thread.sleep(forTimeInterval: 0.3) }
            checkExits(stop: stop, reported: &reported)
            if stop.reason != nil { break }
        }
        let all = processes
        say("started \(all.count) processes: \(all.map { "\($0.name) (pid \($0.pid))" }.joined(separator: ", "))")
    }

    /// Adds a worker (a copy of the topology's last one under a new name) or drains the newest one.
    public func apply(_ request: FleetScaleRequests.Request) {
        switch request {
        case .addWorker: addWorker()
        case .removeWorker: removeWorker()
        }
    }

    /// Starts one more worker like the topology's last, named worker-N (the first unused N); the
    /// broker gives it frames as soon as its READY arrives.
    @discardableResult
    public func addWorker(prepare: (FleetProcess) -> Void = { _ in }) -> FleetProcess? {
        var n = roles.filter { $0.kind == .worker }.count + 1
        while usedNames.contains("worker-\(n)") { n += 1 }
        let name = "worker-\(n)"
        let role: FleetRole
        do { role = try file.addedWorker(named: name) } catch {
            say("cannot add a worker: \(error)")
            return nil
        }
        usedNames.insert(name)
        // Under CURVE the broker re-reads its allow-lists first, so a key just added to workers.allow is accepted.
        if case .curve = file.topology.security { processes.first { $0.role.kind == .broker }?.send(SIGHUP) }
        let p = FleetProcess(role: role)
        prepare(p)
        do { try p.start(executable: executable, writer: writer) } catch {
            say("cannot start \(name): \(error)")
            return nil
        }
        append(p)
        lock.lock()
        added += 1
        lock.unlock()
        say("added \(name) (pid \(p.pid)): \(activeWorkers.count) workers")
        return p
    }

    /// Drains the most recently started worker that is still serving (SIGTERM: it answers the
    /// frames it holds, says DISCONNECT, and the broker requeues anything sent to it after that);
    /// the last worker is kept.
    @discardableResult
    public func removeWorker() -> FleetProcess? {
        let active = activeWorkers
        guard active.count > 1, let p = active.last else {
            say("not draining the last worker (stop the fleet to end it)")
            return nil
        }
        p.drain()
        lock.lock()
        drained += 1
        lock.unlock()
        say("draining \(p.name) (pid \(p.pid)): it answers the frames it holds, then exits; \(active.count - 1) workers")
        return p
    }

    /// Stops every process by its PID, in the reverse of the start order.
    public func stopAll(reason: String) {
        say("stopping (\(reason)): cameras, controller, workers, broker")
        let all = processes
        for kind in Self.order.reversed() { stopGroup(all.filter { $0.role.kind == kind }) }
    }

    /// Notes children that ended on their own; a failure stops the fleet, and so does the last camera
    /// finishing. A drained worker that exits 0 is expected.
    public func checkExits(stop: FleetStopRequest, reported: inout Set<String>) {
        let all = processes
        for p in all where !p.isRunning && !reported.contains(p.name) {
            reported.insert(p.name)
            if p.isDraining {
                p.drainOutput(seconds: 1)
                say("\(p.name) drained: \(p.status); \(p.lastLine ?? "")")
            } else {
                say("\(p.name) ended on its own: \(p.status)")
            }
            if p.failed { stop.request("\(p.name) failed") }
        }
        let cameras = all.filter { $0.role.kind == .camera }
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

    private func summary(elapsed: Double, duration: Double?) -> String {
        let all = processes
        let running = all.filter(\.isRunning).count
        let counts = all.map(\.counts)
        let lines = counts.reduce(0) { $0 + $1.lines }
        let warnings = counts.reduce(0) { $0 + $1.warnings }, errors = counts.reduce(0) { $0 + $1.errors }
        let time = String(format: "%.0f", elapsed) + (duration.map { String(format: "/%.0f", $0) } ?? "")
        return "\(time) s: \(running) of \(all.count) running, \(activeWorkers.count) workers; \(lines) log lines, \(warnings) warnings, \(errors) errors"
    }

    /// Prints every child's exit status and the cameras' summaries; true if any process failed.
    public func report(refused: String? = nil) -> Bool {
        let all = processes
        say("exit status:")
        for p in all { say("  \(p.name): \(p.status)\(p.isDraining ? " (drained while the fleet ran)" : "")") }
        if added + drained > 0 { say("workers added while running: \(added), drained: \(drained)") }
        let cameras = all.filter { $0.role.kind == .camera }
        if !cameras.isEmpty {
            say("camera summaries:")
            for c in cameras { say("  \(c.name): \(c.lastLine ?? "(no summary)")") }
        }
        let failed = all.filter(\.failed).map(\.name) + (refused.map { ["\($0) (the edge refused its frames)"] } ?? [])
        say(failed.isEmpty ? "all \(all.count) processes stopped cleanly" : "failed: \(failed.joined(separator: ", "))")
        return !failed.isEmpty || startFailed
    }

    private func append(_ p: FleetProcess) {
        lock.lock()
        processes_.append(p)
        lock.unlock()
    }

    private func say(_ line: String) { writer.own(line) }
}

extension TopologyFile {
    /// A worker like the topology's last one, named `name`: the same models, credit, batch and
    /// threads; its metrics endpoint (if the template has one) on a free port of the same host, as a
    /// fixed port would clash; under CURVE its key file `KEYS/NAME.key` must exist.
    public func addedWorker(named name: String) throws(TopologyError) -> FleetRole {
        guard case .worker(var launch)? = roles.last(where: { $0.kind == .worker })?.launch else {
            throw TopologyError("\(path): the topology has no worker to copy")
        }
        launch.id = name
        if let m = launch.metrics, let address = MetricsAddress(m) { launch.metrics = MetricsAddress(host: address.host, port: 0).description }
        if case .curve(let spec) = topology.security {
            let curve = CurvePlan(spec, base: base)
            let client = curve.client(name)
            guard FileManager.default.fileExists(atPath: client.key) else {
                throw TopologyError("""
                    no key pair for \(name) in \(curve.keys.path): make it with bottlefit keys generate --out \(curve.keys.path) \
                    --name \(name), add \(name).pub to \(curve.allowWorkers), then ask again
                    """)
            }
            launch.curve = client
        }
        return FleetRole(name: name, launch: .worker(launch))
    }
}
