import BottleFitLifecycle
import BottleFitMetrics
import BottleFitMetricsServer
import Logging
import ServiceLifecycle

/// How `broker`, `worker`, `controller` and `device` run: the role as a `RoleService` and its
/// metrics endpoint beside it, in one `ServiceGroup` (`ProcessLifecycle`): SIGTERM or SIGINT
/// drains the role first, then closes the endpoint; a role that ends on its own ends the group.
enum RoleRunner {
    static func run<Role: ThreadedRole>(
        _ role: Role, name: String, logger: Logger, metrics: MetricsOptions, routes: [ReadOnlyRoute] = [],
        families: @escaping @Sendable () -> [MetricFamily],
        timeLimit: Duration? = nil, serving: @escaping @Sendable () -> Void = {}
    ) async throws {
        let endpoint = metrics.service(role: name, logger: logger, routes: routes, families: families)
        let server = endpoint?.server
        let service = RoleService(
            name: name, role: role, timeLimit: timeLimit, prerequisite: endpoint?.ready,
            events: .init(
                serving: {
                    server?.setHealth(.serving)
                    serving()
                },
                stopping: { server?.setHealth(.stopping) }))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let endpoint { services.append(.init(service: endpoint)) }
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup))
        try await ProcessLifecycle.run(services, logger: logger)
    }
}
