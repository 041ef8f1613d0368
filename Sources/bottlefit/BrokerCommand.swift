import ArgumentParser
import BottleFitFleet
import BottleFitBroker
import BottleFitLifecycle
import BottleFitSecurity
import Dispatch
import Foundation
import Logging
import ZeroMQ

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: RoleCommandName.broker,
        abstract: "Run the broker between cameras and tail workers (docs/protocol.md, docs/broker.md).",
        discussion: """
            Cameras connect DEALER sockets to the frontend, tail workers to the backend; STATS are \
            published on the stats endpoint several times a second. A frame goes to a worker that \
            serves its model and has credit, fewest in flight first; cameras are served round-robin; \
            a full queue answers BUSY with a retry-after hint; expired frames are answered EXPIRED \
            before any compute; a worker that misses --liveness heartbeats is declared lost and its \
            frames are dispatched once more or answered WORKER_LOST. SIGINT or SIGTERM stops it: \
            frames still held are answered BUSY and the counters are printed. Cameras' latency \
            reports (HEARTBEATs carrying "lr") of the last --report-window-s seconds are aggregated \
            into STATS for the controller.
            --metrics HOST:PORT serves the counters as Prometheus text on GET /metrics and GET \
            /healthz (200 while serving, 503 while stopping); see docs/metrics.md.
            Endpoints default to the ports docs/protocol.md suggests on all interfaces; give \
            loopback or ipc:// endpoints for a single machine. With --curve-key (and the three \
            allow-lists) every socket uses CURVE: only clients whose public key is on that socket's \
            list get through; refusals are counted and logged; SIGHUP re-reads the lists (docs/security.md).
            Defaults: --queue-capacity 1024, --heartbeat-ms 1000, --liveness 3, --stats-interval-ms 250, \
            --report-window-s 3, no --metrics.
            Example: bottlefit broker --frontend tcp://127.0.0.1:5555 --backend tcp://127.0.0.1:5556 --stats tcp://127.0.0.1:5557 --metrics 127.0.0.1:9500
            """
    )

    @Option(name: .role(BrokerFlags.frontend), help: "Endpoint cameras connect to.") var frontend = BrokerConfiguration.suggested.frontendEndpoint
    @Option(name: .role(BrokerFlags.backend), help: "Endpoint tail workers connect to.") var backend = BrokerConfiguration.suggested.backendEndpoint
    @Option(name: .role(CommonFlags.stats), help: "Endpoint STATS are published on.") var stats = BrokerConfiguration.suggested.statsEndpoint
    @Option(name: .role(BrokerFlags.queueCapacity), help: "Frames the broker holds at most (queued, not yet dispatched).") var queueCapacity = BrokerPolicy().queueCapacity
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatMs = 1000
    @Option(help: "Heartbeats a worker may miss before it is declared lost.") var liveness = BrokerPolicy().liveness
    @Option(help: "STATS interval in milliseconds.") var statsIntervalMs = 250
    @Option(help: "Seconds of camera latency reports STATS aggregate (lc, ln, lm, l50...l99).") var reportWindowS = 3.0
    @Option(name: .role(CommonFlags.curveKey), help: CurveOptionHelp.curveKey) var curveKey: String?
    @Option(name: .role(CommonFlags.allowCameras), help: CurveOptionHelp.allowList("the cameras (frontend)")) var allowCameras: String?
    @Option(name: .role(BrokerFlags.allowWorkers), help: CurveOptionHelp.allowList("the tail workers (backend)")) var allowWorkers: String?
    @Option(name: .role(BrokerFlags.allowStats), help: CurveOptionHelp.allowList("the STATS subscribers (the controller)")) var allowStats: String?
    @OptionGroup var metricsOptions: MetricsOptions
    @Option(name: .role(CommonFlags.logLevel), help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @OptionGroup var logFormat: LogFormatOption

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        try CurveOptionHelp.requireTogether(
            curveKey, [("--allow-cameras", allowCameras), ("--allow-workers", allowWorkers), ("--allow-stats", allowStats)])
        guard reportWindowS > 0, reportWindowS <= 3600 else { throw ValidationError("--report-window-s must be more than 0 and at most 3600") }
        let configuration = try makeConfiguration()
        let problems = configuration.problems
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }
        // The allow-lists are read here too, so a bad line is a usage error before anything binds.
        if let curve = configuration.curve {
            try CurveOptionHelp.loading { () throws(SecurityError) in try CurveAuthenticator.check(curve.doors) }
        }
    }

    func makeConfiguration() throws -> BrokerConfiguration {
        var policy = BrokerPolicy()
        policy.queueCapacity = queueCapacity
        policy.heartbeatInterval = .milliseconds(heartbeatMs)
        policy.liveness = liveness
        policy.statsInterval = .milliseconds(statsIntervalMs)
        policy.cameraReportWindow = .milliseconds(Int64((reportWindowS * 1000).rounded()))
        var configuration = BrokerConfiguration(frontendEndpoint: frontend, backendEndpoint: backend, statsEndpoint: stats, policy: policy)
        if let curveKey, let allowCameras, let allowWorkers, let allowStats {
            let keys = try CurveOptionHelp.loading { () throws(SecurityError) in try CurveKeyFile.readSecret(curveKey) }
            configuration.curve = BrokerCurve(keys: keys, cameraAllowList: allowCameras, workerAllowList: allowWorkers, statsAllowList: allowStats)
        }
        return configuration
    }

    func run() async throws {
        let logger = logFormat.bootstrap(role: "broker", level: logLevel)
        let context = try ZMQContext()
        let broker = Broker(configuration: try makeConfiguration(), context: context, logger: logger)
        // SIGHUP re-reads the allow-lists (a revoked key is refused from the next handshake on).
        let reload = ReloadSignal.install { [weak broker] in broker?.reloadAllowLists() }
        defer { reload.cancel() }
        try await RoleRunner.run(
            broker, name: "broker", logger: logger, metrics: metricsOptions, families: { [weak broker] in broker?.metricFamilies() ?? [] },
            serving: { [weak broker] in
                guard let broker, let endpoints = broker.endpoints else { return }
                logger.info("broker up", metadata: [
                    "frontend": "\(endpoints.frontend)", "backend": "\(endpoints.backend)", "stats": "\(endpoints.stats)",
                    "curve": "\(broker.configuration.curve == nil ? "off" : "on")",
                ])
            })
        print(broker.counters.description)
    }
}
