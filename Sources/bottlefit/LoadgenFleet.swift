import BottleFitLifecycle
import BottleFitLogging
import Foundation

/// The broker, workers and controller of a topology file, started for one `bottlefit loadgen --topology`
/// run as `bottlefit up` starts them (same `TopologyFile` roles, same `Fleet`), and stopped by PID when
/// the run ends. The topology's cameras are left out: the load generator is the fleet.
struct LoadgenFleet {
    let file: TopologyFile
    private var fleet: Fleet
    private var processes: [FleetProcess] = []

    /// Reads and checks the topology; refuses it when its workers serve none of `models` (the FRAME
    /// model names of the run), before anything starts.
    init(path: String, models: [String], grace: Double = 10, format: LogFormat = .text) throws {
        do { file = try TopologyFile(contentsOf: path) } catch { throw CommandError(error.description) }
        let served = Set(file.topology.workers.flatMap(\.models.keys))
        if let missing = models.first(where: { !served.contains($0) }) {
            throw CommandError("\(path): no worker of the topology serves model \(missing) (served: \(served.sorted().joined(separator: ", ")))")
        }
        fleet = Fleet(roles: file.roles.filter { $0.kind != .camera }, executable: UpCommand.executableURL(), grace: grace)
        fleet.writer = LineWriter(allToStandardError: true, format: format, role: "loadgen")
    }

    /// The endpoints as the started processes see them (a relative ipc:// path is taken from the topology's folder).
    var broker: String { resolved(file.topology.broker.frontend) }
    var stats: String { resolved(file.topology.broker.stats) }
    var directives: String? { file.topology.controller.map { resolved($0.publish) } }

    private func resolved(_ endpoint: String) -> String {
        Endpoint.resolving(endpoint, base: URL(fileURLWithPath: file.path).deletingLastPathComponent().standardizedFileURL)
    }

    /// Starts the processes and waits, at most `seconds` in all, until the broker serves, every worker
    /// has joined it (models loaded) and the controller is up; stops them all and throws otherwise.
    mutating func start(seconds: Double = 300) throws {
        let stop = FleetStopRequest()
        var reported = Set<String>()
        processes = fleet.start(stop: stop, reported: &reported) { p in
            switch p.role.kind {
            case .broker: p.watch("broker serving"); p.watch("worker joined")
            case .controller: p.watch("controller up")
            default: break
            }
        }
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
            throw CommandError("--topology \(file.path): \(problem)")
        }
    }

    /// Stops every started process by its PID (controller, workers, broker) and prints how each ended.
    mutating func stop(reason: String = "the load generator's run ended") {
        guard !processes.isEmpty else { return }
        fleet.stopAll(processes, reason: reason)
        _ = fleet.report(processes)
        processes = []
    }
}
