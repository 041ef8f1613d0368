import ArgumentParser
import BottleFitFleet
import BottleFitMetrics
import BottleFitLifecycle
import BottleFitMetricsServer
import Logging
import ServiceLifecycle

/// `--metrics HOST:PORT`, shared by every long-running role (broker, worker, device, controller).
struct MetricsOptions: ParsableArguments {
    @Option(name: .role(CommonFlags.metrics), help: ArgumentHelp(
        "Serve GET /metrics (Prometheus text format 0.0.4) and GET /healthz on HOST:PORT, e.g. 127.0.0.1:9500; "
            + "port 0 picks a free port, logged as \"metrics endpoint listening on http://HOST:PORT\". Off by default.",
        valueName: "host:port"))
    var metrics: String?

    func validate() throws {
        if let metrics, let problem = MetricsAddress.problem(metrics) { throw ValidationError("--metrics: \(problem)") }
    }
}

extension MetricsOptions {
    /// The endpoint as a service of the role's group; nil without `--metrics`.
    /// `routes` are the role's pages beyond /metrics and /healthz (the controller's dashboard).
    func service(
        role: String, logger: Logger, routes: [ReadOnlyRoute] = [], families: @escaping @Sendable () -> [MetricFamily]
    ) -> MetricsEndpointService? {
        guard let text = metrics, let address = MetricsAddress(text) else { return nil }
        return MetricsEndpointService(
            server: MetricsServer(address: address, role: role, logger: logger, routes: routes, metrics: families), role: role, logger: logger)
    }
}

/// The /metrics and /healthz endpoint of a role as a service: it binds when the group starts
/// (health `starting`; a bind failure ends the command before the role does any work, which
/// waits on `ready`), and closes on graceful shutdown, which comes after the role's (the group
/// stops in reverse order), so a scraper sees the final counts.
struct MetricsEndpointService: Service, CustomStringConvertible {
    let server: MetricsServer
    let role: String
    let logger: Logger
    /// Given once the endpoint is bound, or failed with why it could not be.
    let ready = ReadinessSignal()

    var description: String { "metrics endpoint" }

    func run() async throws {
        let bound: MetricsAddress
        do { bound = try server.start() } catch {
            let failure = CommandError("\(role): \(error)")
            ready.fail(failure)
            throw failure
        }
        logger.info("metrics endpoint listening on http://\(bound)", metadata: ["metrics": "http://\(bound)/metrics", "health": "http://\(bound)/healthz"])
        ready.ready()
        // Returns on graceful shutdown, throws on cancellation (the role failed): close either way.
        try? await gracefulShutdown()
        server.stop()
        await ThreadCall.blocking("bf-metrics-stop") { server.waitUntilStopped() }
    }
}
