import ArgumentParser
import BottleFitMetrics
import BottleFitMetricsServer
import Logging

/// `--metrics HOST:PORT`, shared by every long-running role (broker, worker, device, controller).
struct MetricsOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Serve GET /metrics (Prometheus text format 0.0.4) and GET /healthz on HOST:PORT, e.g. 127.0.0.1:9500; "
            + "port 0 picks a free port, logged as \"metrics endpoint listening on http://HOST:PORT\". Off by default.",
        valueName: "host:port"))
    var metrics: String?

    func validate() throws {
        if let metrics, let problem = MetricsAddress.problem(metrics) { throw ValidationError("--metrics: \(problem)") }
    }

    /// Starts the endpoint (health `starting`) and logs where it listens; nil without `--metrics`.
    func start(role: String, logger: Logger, families: @escaping @Sendable () -> [MetricFamily]) throws -> MetricsServer? {
        guard let text = metrics, let address = MetricsAddress(text) else { return nil }
        let server = MetricsServer(address: address, role: role, logger: logger, metrics: families)
        let bound: MetricsAddress
        do { bound = try server.start() } catch { throw CommandError("\(role): \(error)") }
        logger.info("metrics endpoint listening on http://\(bound)", metadata: ["metrics": "http://\(bound)/metrics", "health": "http://\(bound)/healthz"])
        return server
    }
}

extension Optional where Wrapped == MetricsServer {
    /// `/healthz` from now on (nothing without `--metrics`).
    func setHealth(_ health: RoleHealth) { self?.setHealth(health) }

    /// Closes the endpoint once the role has stopped (nothing without `--metrics`).
    func shutDown() {
        self?.stop()
        self?.waitUntilStopped()
    }
}
