import ArgumentParser
import BottleFitFleet
import BottleFitMetrics
import BottleFitMetricsServer
import Logging

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

extension MetricsOptions {
    /// Runs a role with its endpoint around it: the endpoint comes up first (`starting`; a bind
    /// failure ends the command before any work), turns `ok` once `start` has returned and
    /// `stopping` when SIGINT or SIGTERM asks `stopRole`, and closes after `wait` returns, so a
    /// scraper sees the final counts. Without `--metrics` it is just start, stop and wait.
    func serve(
        role: String, logger: Logger, stop: StopRequest, families: @escaping @Sendable () -> [MetricFamily],
        start: () throws -> Void, stopRole: @escaping @Sendable () -> Void, wait: () -> Void
    ) throws {
        let server = try self.start(role: role, logger: logger, families: families)
        do { try start() } catch {
            server?.stop()
            server?.waitUntilStopped()
            throw error
        }
        server?.setHealth(.serving)
        stop.attach {
            server?.setHealth(.stopping)
            stopRole()
        }
        wait()
        server?.stop()
        server?.waitUntilStopped()
    }
}
