import ArgumentParser
import BottleFitFleet
import BottleFitLifecycle
import BottleFitLoadgen
import BottleFitLogging
import Foundation
import Logging

/// `bottlefit loadgen`: many emulated cameras against a running broker (docs/loadgen.md). Only
/// argument parsing and wiring live here; the load generator is the BottleFitLoadgen library.
struct LoadgenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadgen",
        abstract: "Drive a fleet of cameras (emulated, or real ones running their models) against a broker, open loop; report latency, paths, drops, fairness and energy (docs/loadgen.md).",
        discussion: """
            One process, one event loop, N cameras. Each camera decides every frame with the real camera \
            policy (split, local, offload, fallback, directives); its compute time and energy come from a \
            device profile (profiles/devices) and its network from an uplink profile (profiles/uplinks: \
            token bucket + delay line), so payload size shows in latency. That is --fidelity emulated; with \
            --fidelity real the cameras are real ones in this process (the code of `bottlefit device`) running \
            --head and --full with the engine, on real sockets. Every report names its fidelity. With \
            --topology the broker, workers and controller of a topology file are started first and stopped \
            by PID at the end; while it runs, SIGUSR1 to the load generator adds a worker and SIGUSR2 drains \
            one (as with `bottlefit up`, docs/fleet.md). Frames are scheduled open loop: latency counts from each frame's scheduled time, \
            and a slow edge never slows the schedule. At the end: a table, and the accounting check \
            offered = completed_edge + completed_local + completed_fallback + dropped.
            Every option is also a scenario key (the flag without --, dashes as underscores); group options \
            given here override every group of the scenario. A scenario's group keys at its top level are \
            defaults for its groups.
            Exit status: 0 ok; 64 refused before anything started (bad option, scenario, profile or topology); \
            1 could not run (a fleet that did not start, a report that could not be written); 2 unaccounted \
            frames; 3 a --fail-if threshold failed. SIGINT/SIGTERM ends the arrivals early and drains.
            Thresholds (--fail-if): METRIC OP VALUE[ms|s|us|%] with OP in < <= > >= == !=; metrics: \
            p50 p90 p99 p999 max mean, edge_/local_/fallback_/sched_ + those, offered completed \
            completed_edge completed_local completed_fallback dropped dropped_REASON unaccounted, \
            edge_fraction local_fraction drop_fraction, throughput offered_rate, energy_per_frame, mode_changes (per camera per minute), edge_utilisation (STATS ut), \
            fairness_min fairness_max (per-camera edge share / fleet mean over 10 s windows after 10 s; fair within 0.5...2).
            Examples:
              bottlefit loadgen --broker tcp://127.0.0.1:5555 --cameras 50 --rate 5 --device raspberry-pi-4 --uplink wifi-20mbit --duration 60 --report out/run.json --html out/run.html --fail-if 'p99<250ms' --fail-if 'unaccounted==0'
              bottlefit loadgen --scenario scenarios/overload-2x.yaml --directives tcp://127.0.0.1:5558 --stats tcp://127.0.0.1:5557
              bottlefit loadgen --topology topology/local.yaml --model bf12 --cameras 20 --rate 1 --duration 30   (starts and stops the broker, workers and controller)
              bottlefit loadgen --sink --cameras 1000 --rate 20 --device ideal --uplink ideal --duration 10   (the load generator's own speed)
              bottlefit loadgen --broker tcp://10.77.0.2:5555 --curve-key keys/cameras-a.key --broker-key keys/broker.pub --cameras 20 --rate 5 --duration 30   (CURVE: the key must be on the broker's camera allow-list)
            """
    )

    static func help(_ key: String) -> ArgumentHelp {
        let option = LoadgenOption.all.first { $0.key == key }!
        let d = option.defaultValue.map { " (default: \($0))" } ?? ""
        return ArgumentHelp(option.help + d + " [scenario key: \(key)]")
    }

    @Option(help: "A scenario YAML file (docs/loadgen.md); options given here override its keys.") var scenario: String?
    @Option(help: help("broker")) var broker: String?
    @Option(help: help("topology")) var topology: String?
    @Option(help: help("directives")) var directives: String?
    @Option(help: help("stats")) var stats: String?
    @Option(help: help("fidelity")) var fidelity: String?
    @Flag(help: help("sink")) var sink = false
    @Option(help: help("duration")) var duration: String?
    @Option(help: help("drain_ms")) var drainMs: String?
    @Option(help: help("connections")) var connections: String?
    @Option(help: help("seed")) var seed: String?
    @Option(help: help("sample_ms")) var sampleMs: String?
    @Option(help: help("latency_report_ms")) var latencyReportMs: String?
    @Option(help: help("profiles")) var profiles: String?
    @Option(help: help("report")) var report: String?
    @Option(help: help("html")) var html: String?
    @Option(help: help("fail_if")) var failIf: [String] = []
    @Flag(inversion: .prefixedNo, help: help("progress")) var progress: Bool?
    @OptionGroup var logFormat: LogFormatOption
    @Option(help: help("emulate_workers")) var emulateWorkers: String?
    @Option(help: help("worker_backend")) var workerBackend: String?
    @Option(help: help("worker_service_ms")) var workerServiceMs: String?
    @Option(help: help("worker_batch_extra_ms")) var workerBatchExtraMs: String?
    @Option(help: help("worker_max_batch")) var workerMaxBatch: String?
    @Option(help: help("worker_credit")) var workerCredit: String?
    @Option(help: help("worker_service")) var workerService: String?
    @Option(help: help("name")) var name: String?
    @Option(help: help("cameras")) var cameras: String?
    @Option(help: help("rate")) var rate: String?
    @Option(help: help("arrivals")) var arrivals: String?
    @Option(help: help("mode")) var mode: String?
    @Option(help: help("model")) var model: String?
    @Option(help: help("model_profile")) var modelProfile: String?
    @Option(help: help("device")) var device: String?
    @Option(help: help("uplink")) var uplink: String?
    @Option(help: help("shape")) var shape: String?
    @Option(help: help("ramp_to")) var rampTo: String?
    @Option(help: help("ramp_seconds")) var rampSeconds: String?
    @Option(help: help("step_at")) var stepAt: String?
    @Option(help: help("step_rate")) var stepRate: String?
    @Option(help: help("burst_on")) var burstOn: String?
    @Option(help: help("burst_off")) var burstOff: String?
    @Option(help: help("burst_off_rate")) var burstOffRate: String?
    @Option(help: help("schedule")) var schedule: String?
    @Option(help: help("slo_ms")) var sloMs: String?
    @Option(help: help("max_in_flight")) var maxInFlight: String?
    @Option(help: help("source")) var source: String?
    @Option(help: help("jpeg_quality")) var jpegQuality: String?
    @Option(help: help("images")) var images: String?
    @Option(help: help("head")) var head: String?
    @Option(help: help("full")) var full: String?
    // Command line only, not scenario keys: key files belong to the host, not to a shared scenario.
    @Option(help: CurveOptionHelp.curveKey) var curveKey: String?
    @Option(help: CurveOptionHelp.brokerKey) var brokerKey: String?
    @Option(help: CurveOptionHelp.controllerKey) var controllerKey: String?

    func validate() throws {
        try CurveOptionHelp.requireTogether(curveKey, [("--broker-key", brokerKey)] + (directives == nil ? [] : [("--controller-key", controllerKey)]))
    }


    /// The options given, by scenario key.
    var commandLine: [String: [String]] {
        var out: [String: [String]] = [:]
        func put(_ key: String, _ value: String?) { if let value { out[key] = [value] } }
        put("broker", broker); put("topology", topology); put("directives", directives); put("stats", stats)
        put("fidelity", fidelity)
        if sink { out["sink"] = ["true"] }
        put("duration", duration); put("drain_ms", drainMs); put("connections", connections); put("seed", seed)
        put("sample_ms", sampleMs); put("latency_report_ms", latencyReportMs); put("profiles", profiles)
        put("report", report); put("html", html)
        if !failIf.isEmpty { out["fail_if"] = failIf }
        put("progress", progress.map { $0 ? "true" : "false" })
        put("emulate_workers", emulateWorkers); put("worker_backend", workerBackend); put("worker_service_ms", workerServiceMs)
        put("worker_batch_extra_ms", workerBatchExtraMs); put("worker_max_batch", workerMaxBatch); put("worker_credit", workerCredit); put("worker_service", workerService)
        put("name", name); put("cameras", cameras); put("rate", rate); put("arrivals", arrivals); put("mode", mode)
        put("model", model); put("model_profile", modelProfile); put("device", device); put("uplink", uplink)
        put("shape", shape); put("ramp_to", rampTo); put("ramp_seconds", rampSeconds); put("step_at", stepAt)
        put("step_rate", stepRate); put("burst_on", burstOn); put("burst_off", burstOff); put("burst_off_rate", burstOffRate)
        put("schedule", schedule); put("slo_ms", sloMs); put("max_in_flight", maxInFlight); put("jpeg_quality", jpegQuality)
        put("images", images); put("source", source); put("head", head); put("full", full)
        return out
    }

    func run() throws {
        // SIGINT and SIGTERM (through the process's ServiceGroup) end the run early, with its report.
        try ProcessLifecycle.runBlocking(logger: Logger(label: "bottlefit.loadgen")) { stop in try run(stop: stop) }
    }

    private func run(stop: StopRequest) throws {
        let curve = try CurveOptionHelp.cameraCurve(curveKey: curveKey, brokerKey: brokerKey, controllerKey: controllerKey)
        let plan: LoadgenPlan
        var options: LoadgenRunOptions
        var fleet: BackendFleet?
        do {
            var settings = try scenario.map { path throws(LoadgenError) in try LoadgenScenario.load(path: path) } ?? LoadgenSettings()
            settings.apply(commandLine: commandLine)
            (plan, options) = try settings.resolve()
            options.curve = curve
            if let path = options.topology {
                var models: [String] = []
                for g in plan.groups where !models.contains(g.modelName) { models.append(g.modelName) }
                fleet = try BackendFleet(
                    path: path, models: options.workers == nil ? models : [], executable: UpCommand.executableURL(), format: logFormat.format)
                options.broker = options.broker ?? fleet!.broker
                options.stats = options.stats ?? fleet!.stats
                options.directives = options.directives ?? fleet!.directives
            }
        } catch {
            report("\(error)", level: .error)
            throw ExitCode(Loadgen.Status.usage.rawValue)
        }
        // The topology's fleet (--topology): started before the first frame, stopped by PID at the end.
        // SIGUSR1 and SIGUSR2 add and drain its workers while the run goes on, as under `up`.
        let scale = fleet == nil ? nil : FleetScaleRequests.installSignals()
        do { try fleet?.start(scale: scale) } catch {
            report("\(error)", level: .error)
            throw ExitCode(Loadgen.Status.invalid.rawValue)
        }
        defer { fleet?.stop() }
        // JSON logs are whole lines: no carriage-return updates then.
        let interactive = isatty(STDERR_FILENO) == 1 && logFormat.format == .text
        let progressLine: ((LoadgenProgress) -> Void)? = options.progress ? { p in
            let line = LoadgenTable.progressLine(p)
            if interactive { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) } else { report(line, level: .info) }
        } : nil
        let result: LoadgenReport
        do {
            result = try Loadgen.run(
                plan: plan, options: options, command: CommandLine.arguments, progress: progressLine,
                shouldStop: { stop.isRequested })
            if options.progress && interactive { FileHandle.standardError.write(Data("\n".utf8)) }
            try Loadgen.write(result, options: options)
        } catch {
            report("\(error)", level: .error)
            throw ExitCode(Loadgen.Status.invalid.rawValue)
        }
        print(LoadgenTable.render(result))
        let status = Loadgen.status(of: result)
        if status == .unaccounted {
            report("\(result.totals.unaccounted) frames unaccounted for", level: .error)
        }
        if status != .ok { throw ExitCode(status.rawValue) }
    }

    /// A line of the load generator's own on standard error: "error: ..." (or the progress line) in
    /// text, a JSON object (role loadgen) with --log-format json.
    private func report(_ message: String, level: Logger.Level) {
        let line = switch logFormat.format {
        case .text: level >= .error ? "error: " + message : message
        case .json: LogMerger(format: .json).own(message, role: "loadgen", label: "bottlefit.loadgen", level: level)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
