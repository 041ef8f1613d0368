import ArgumentParser
import BottleFitCore
import BottleFitFleet
import BottleFitLifecycle
import BottleFitLogging
import Foundation
import Logging

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
            if any process failed or had to be killed. With --log-format json the children log JSON \
            too and every line on either stream is one JSON object whose role is the process's name \
            (up's own lines: role up); see docs/operations.md, "Logs".
            Scaling while it runs: SIGUSR1 to `up` starts one more tail worker, a copy of the topology's \
            last worker named worker-N (the first unused N; its metrics, if any, on a free port of the \
            same host; under CURVE its key pair KEYS/worker-N.key must exist and its public key be in \
            the workers' allow-list, which the broker re-reads first); the broker gives it frames as \
            soon as its READY arrives. SIGUSR2 drains the most recently started worker still serving: \
            SIGTERM, it answers the frames it holds, says DISCONNECT and exits 0, and the broker requeues \
            anything sent to it meanwhile, so no frame is lost; the last worker is kept. The summary line \
            counts the workers; docs/fleet.md has an example with the load generator.
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
            writes nothing, models included); copy topology/local.yaml to change it.
            Examples: bottlefit up --duration 30    or    bottlefit up topology/local.yaml --pid-file up.pid, \
            then kill -USR1 $(cat up.pid) to add a worker and kill -USR2 $(cat up.pid) to drain one
            """
    )

    @Argument(help: "The topology file (YAML); default: the embedded local fleet.") var topology: String?
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C or SIGTERM).") var duration: Double?
    @Option(help: "Seconds each group of processes gets to stop after SIGTERM before SIGKILL.") var grace: Double = 10
    @Flag(help: "Check the topology and print the command lines without starting anything.") var dryRun = false
    @Option(help: "Write this process's PID to this file while the fleet runs (for kill -USR1 / -USR2), removed at the end.")
    var pidFile: String?
    @OptionGroup var logFormat: LogFormatOption

    func validate() throws {
        if let duration { guard duration > 0, duration <= 31_536_000 else { throw ValidationError("--duration must be more than 0 and at most a year (31536000 s)") } }
        guard grace > 0, grace <= 3600 else { throw ValidationError("--grace must be more than 0 and at most 3600 seconds") }
    }

    func run() throws {
        let file: TopologyFile
        let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let say = { (line: String) in print("[up] " + line) }
        do {
            if let topology {
                file = try TopologyFile(contentsOf: topology)
            } else {
                // A dry run writes nothing: not the default fleet's models (about 200 MB).
                let (folder, present, topology) = DefaultFleet.plan(in: root, say: say)
                if dryRun, !present { say("dry run: \(folder.path) has no models yet; a real run creates them there (nothing is written now)") }
                if !dryRun {
                    do { try DefaultFleet.createModels(in: folder, say: say) } catch {
                        throw CommandError("cannot create the default fleet's models in \(folder.path): \(error)")
                    }
                }
                file = try TopologyFile(topology: topology, path: "the default fleet", base: folder, checkFiles: !dryRun || present)
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
        if let pidFile {
            do { try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) } catch {
                throw CommandError("--pid-file \(pidFile): \(FileBytes.reason(error))")
            }
        }
        defer { if let pidFile { try? FileManager.default.removeItem(atPath: pidFile) } }
        let fleet = FleetSupervisor(file: file, executable: executable, grace: grace, writer: LineWriter(format: logFormat.format))
        let scale = FleetScaleRequests.installSignals()
        // SIGINT and SIGTERM (through the process's ServiceGroup) stop the fleet, as its end does.
        let failed = ProcessLifecycle.runBlocking(logger: Logger(label: "bottlefit.up")) { stop in
            fleet.run(duration: duration, stop: stop, scale: scale)
        }
        withExtendedLifetime(scale) {}
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
