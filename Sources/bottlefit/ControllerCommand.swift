import ArgumentParser
import BottleFitFleet
import BottleFitController
import BottleFitDashboard
import BottleFitLifecycle
import BottleFitSecurity
import Dispatch
import Foundation
import Logging
import ZeroMQ

/// `bottlefit controller`: watches the broker's STATS and publishes DIRECTIVEs (docs/controller.md).
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: RoleCommandName.controller,
        abstract: "Keep the edge full and within its objectives by sending a share of every camera's frames local (docs/controller.md).",
        discussion: """
            Subscribes to the broker's STATS and publishes one DIRECTIVE at a time on --publish, to the \
            whole fleet: "send at most es = 1 - f of your frames to the edge, compute the rest locally". \
            Every camera gets the same share, so none is starved of the edge. Two latency signals drive \
            f up, each against its own objective: the broker's queue-time p95 against --slo-ms, and the \
            end-to-end edge latency p95 the cameras report (relayed in STATS) against --latency-slo-ms, \
            once their reports count --min-reported-frames edge frames (reports with fewer are added up \
            over up to 12 s); more than 5% of reported edge frames missed counts as over the objective \
            too. When any signal stays above its objective for 1 s, f rises by --raise-step. The edge's \
            utilisation (STATS ut) and the share of frames the cameras compute locally bring it back: \
            when every signal stays below half its objective with few drops for 2 s while the workers \
            are busy less than --target-utilisation, f falls by --lower-step; at or above it, f holds. \
            Two changes are at least --dwell-ms apart. A broker silent for 3 STATS intervals changes \
            nothing (cameras see a dead edge by themselves). The directive in force is re-published \
            every second and is valid for 5 s. Every decision is logged with its reason and figures \
            (changes at notice, holds at debug). SIGINT or SIGTERM stops it and prints the counts of \
            decisions. --metrics HOST:PORT serves them, the fraction, utilisation, local share and the \
            signals as Prometheus text on GET /metrics and GET /healthz, and a live dashboard on GET / \
            (queue, latency, throughput, fraction local, workers, cameras by mode; its data as JSON on \
            GET /api/state, refreshed every second); see docs/metrics.md. \
            With --curve-key, --broker-key and --allow-cameras both sockets use CURVE and only listed \
            cameras receive DIRECTIVEs; SIGHUP re-reads the list (docs/security.md).
            Defaults: --stats tcp://localhost:5557, --publish tcp://*:5558, --slo-ms 50, \
            --latency-slo-ms 250, --min-reported-frames 10, --raise-step 0.25, --lower-step 0.1, \
            --target-utilisation 0.85, --dwell-ms 3000, no --metrics.
            Example: bottlefit controller --stats tcp://127.0.0.1:5557 --publish tcp://127.0.0.1:5558 --slo-ms 40 --latency-slo-ms 200 --metrics 127.0.0.1:9510
            """
    )

    @Option(name: .role(CommonFlags.stats), help: "Broker STATS endpoint to connect to.") var stats = ControllerConfiguration.suggested.statsEndpoint
    @Option(name: .role(ControllerFlags.publish), help: "Endpoint to bind the DIRECTIVE publisher on (cameras connect to it).")
    var publish = ControllerConfiguration.suggested.directiveEndpoint
    @Option(name: .role(CommonFlags.sloMs), help: "Queue-time objective in milliseconds: p95 above it is overload, below half of it healthy.")
    var sloMs = ControllerSettings().sloMilliseconds
    @Option(name: .role(ControllerFlags.latencySloMs), help: "End-to-end latency objective in milliseconds for the p95 cameras report (through the broker's STATS).")
    var latencySloMs = ControllerSettings().latencySloMilliseconds
    @Option(help: "Edge frames the cameras' reports must count before their latency is taken into account.")
    var minReportedFrames = ControllerSettings().minimumReportedFrames
    @Option(help: "Share of every camera's frames added to local compute per raise, in (0, 1].") var raiseStep = ControllerSettings().raiseStep
    @Option(help: "Share released back to the edge per recovery step, in (0, 1], at most --raise-step.")
    var lowerStep = ControllerSettings().lowerStep
    @Option(help: "Worker utilisation (STATS ut) the controller aims for, in (0, 1]: below it, with frames local and latency low, it releases frames to the edge.")
    var targetUtilisation = ControllerSettings().targetUtilisation
    @Option(help: "The most the edge floor (DIRECTIVE ef: the share every camera sends to the edge at least) rises per step, towards the share that would fill the edge to --target-utilisation, while frames run locally on an edge with room; in [0, 1]; 0 never sets a floor.")
    var floorStep = ControllerSettings().floorStep
    @Option(help: "Minimum milliseconds between two changes of the fraction or the floor.") var dwellMs = 3000
    @Option(name: .role(CommonFlags.curveKey), help: CurveOptionHelp.curveKey) var curveKey: String?
    @Option(name: .role(CommonFlags.brokerKey), help: CurveOptionHelp.brokerKey) var brokerKey: String?
    @Option(name: .role(CommonFlags.allowCameras), help: CurveOptionHelp.allowList("the cameras allowed to subscribe to DIRECTIVEs")) var allowCameras: String?
    @OptionGroup var metricsOptions: MetricsOptions
    @Option(name: .role(CommonFlags.logLevel), help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @OptionGroup var logFormat: LogFormatOption

    func validate() throws {
        try CurveOptionHelp.requireTogether(curveKey, [("--broker-key", brokerKey), ("--allow-cameras", allowCameras)])
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level \(logLevel) (expected trace, debug, info, notice, warning, error or critical)")
        }
        guard (0...3_600_000).contains(dwellMs) else { throw ValidationError("--dwell-ms must be 0...3600000 (an hour), not \(dwellMs)") }
        let configuration = try makeConfiguration()
        let problems = configuration.problems
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }
        if let curve = configuration.curve {
            try CurveOptionHelp.loading { () throws(SecurityError) in try CurveAuthenticator.check(curve.doors) }
        }
    }

    func makeConfiguration() throws -> ControllerConfiguration {
        var settings = ControllerSettings()
        settings.sloMilliseconds = sloMs
        settings.latencySloMilliseconds = latencySloMs
        settings.minimumReportedFrames = minReportedFrames
        settings.raiseStep = raiseStep
        settings.lowerStep = lowerStep
        settings.targetUtilisation = targetUtilisation
        settings.floorStep = floorStep
        settings.dwell = .milliseconds(dwellMs)
        var configuration = ControllerConfiguration(statsEndpoint: stats, directiveEndpoint: publish, settings: settings)
        if let curveKey, let brokerKey, let allowCameras {
            configuration.curve = try CurveOptionHelp.loading { () throws(SecurityError) in
                try ControllerCurve(keys: CurveKeyFile.readSecret(curveKey), brokerKey: CurveKeyFile.readPublic(brokerKey), cameraAllowList: allowCameras)
            }
        }
        return configuration
    }

    func run() async throws {
        let logger = logFormat.bootstrap(role: "controller", level: logLevel)
        let context = try ZMQContext()
        let controller = Controller(configuration: try makeConfiguration(), context: context, logger: logger)
        // SIGHUP re-reads the allow-list (a revoked camera key is refused from the next handshake on).
        let reload = ReloadSignal.install { [weak controller] in controller?.reloadAllowLists() }
        defer { reload.cancel() }
        let (stats, sloMs, latencySloMs) = (self.stats, self.sloMs, self.latencySloMs)
        try await RoleRunner.run(
            controller, name: "controller", logger: logger, metrics: metricsOptions, routes: ControllerDashboard.routes(controller),
            families: { [weak controller] in controller?.metricFamilies() ?? [] },
            serving: { [weak controller] in
                logger.info("controller up", metadata: [
                    "stats": "\(stats)", "directives": "\(controller?.directiveEndpoint ?? "")", "slo_ms": "\(sloMs)",
                    "latency_slo_ms": "\(latencySloMs)",
                ])
            })
        let counters = controller.counters
        print("controller stopped: \(counters.decisions) decisions, fraction \(controller.fraction) local; \(counters)")
    }
}
