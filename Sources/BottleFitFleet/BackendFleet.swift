import BottleFitLogging
import Foundation

/// The broker, workers and controller of a topology file, started for one `bottlefit loadgen --topology`
/// run as `bottlefit up` starts them (same typed plan, same `FleetSupervisor`), and stopped by PID when
/// the run ends. The topology's cameras are left out: the load generator is the fleet. While it runs,
/// `scale` requests (SIGUSR1, SIGUSR2) add and drain workers as they do under `up`.
public final class BackendFleet: @unchecked Sendable {
    // @unchecked: `watcher` and `finished` are set on the caller's thread before and after the
    // scaling thread runs; the thread only reads the stop flag under `lock`.
    public let file: TopologyFile
    private let supervisor: FleetSupervisor
    private let lock = NSLock()
    private var finished = false
    private var watcher: Thread?
    private let done = DispatchSemaphore(value: 0)

    /// Reads and checks the topology; refuses it when its workers serve none of `models` (the FRAME
    /// model names of the run), before anything starts.
    /// Its processes log in `format`, merged with the load generator's own lines (role loadgen).
    public init(path: String, models: [String], executable: URL, grace: Double = 10, format: LogFormat = .text) throws(TopologyError) {
        file = try TopologyFile(contentsOf: path)
        let served = Set(file.topology.workers.flatMap(\.models.keys))
        if let missing = models.first(where: { !served.contains($0) }) {
            throw TopologyError("\(path): no worker of the topology serves model \(missing) (served: \(served.sorted().joined(separator: ", ")))")
        }
        supervisor = FleetSupervisor(
            file: file, roles: file.roles.filter { $0.kind != .camera }, executable: executable, grace: grace,
            writer: LineWriter(allToStandardError: true, format: format, role: "loadgen"))
    }

    /// The endpoints as the started processes see them (a relative ipc:// path is taken from the topology's folder).
    public var broker: String { Endpoint.resolving(file.topology.broker.frontend, base: file.base) }
    public var stats: String { Endpoint.resolving(file.topology.broker.stats, base: file.base) }
    public var directives: String? { file.topology.controller.map { Endpoint.resolving($0.publish, base: file.base) } }

    /// Starts the processes and waits, at most `seconds` in all, until the broker serves, every worker
    /// has joined it (models loaded) and the controller is up; stops them all and throws otherwise.
    /// From then on `scale` requests are applied every 100 ms until `stop`.
    public func start(seconds: Double = 300, scale: FleetScaleRequests? = nil) throws(TopologyError) {
        let stop = FleetStopRequest()
        var reported = Set<String>()
        supervisor.start(stop: stop, reported: &reported) { p in
            switch p.role.kind {
            case .broker: p.watch("broker serving"); p.watch("worker joined")
            case .controller: p.watch("controller up")
            default: break
            }
        }
        let processes = supervisor.processes
        let deadline = Date().addingTimeInterval(seconds)
        func left() -> Double { max(0, deadline.timeIntervalSinceNow) }
        var problem = stop.reason
        let workers = processes.filter { $0.role.kind == .worker }.count
        if problem == nil, let broker = processes.first(where: { $0.role.kind == .broker }) {
            if !broker.waitForLines(containing: "broker serving", seconds: left()) {
                problem = "the broker did not start serving"
            } else if !broker.waitForLines(containing: "worker joined", count: workers, seconds: left()) {
                problem = "not every worker joined the broker within \(Int(seconds)) s"
            }
        }
        if problem == nil, let controller = processes.first(where: { $0.role.kind == .controller }),
           !controller.waitForLines(containing: "controller up", seconds: left()) {
            problem = "the controller did not come up"
        }
        if problem == nil, let dead = processes.first(where: { !$0.isRunning }) { problem = "\(dead.name) ended: \(dead.status)" }
        if let problem {
            self.stop(reason: problem)
            throw TopologyError("--topology \(file.path): \(problem)")
        }
        if let scale {
            let thread = Thread { [self] in
                var reported = Set<String>()
                let ignored = FleetStopRequest()
                while !isFinished {
                    for request in scale.take() { supervisor.apply(request) }
                    supervisor.checkExits(stop: ignored, reported: &reported)
                    Thread.sleep(forTimeInterval: 0.1)
                }
                done.signal()
            }
            thread.name = "loadgen-fleet-scaling"
            watcher = thread
            thread.start()
        }
    }

    private var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    /// Stops every started process by its PID (controller, workers, broker) and prints how each ended.
    public func stop(reason: String = "the load generator's run ended") {
        lock.lock()
        let already = finished
        finished = true
        lock.unlock()
        guard !already else { return }
        if watcher != nil { done.wait() }
        guard !supervisor.processes.isEmpty else { return }
        supervisor.stopAll(reason: reason)
        _ = supervisor.report()
    }
}
