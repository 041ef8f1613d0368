import BottleFitLifecycle
import BottleFitMetrics
import BottleFitProtocol
import BottleFitSecurity
import Dispatch
import Foundation
import Logging
import Synchronization
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the controller could not start.
public enum ControllerError: Error, Equatable, CustomStringConvertible {
    /// The configuration has problems (`ControllerConfiguration.problems`).
    case invalidConfiguration([String])
    /// `start()` was called on a controller that was started before.
    case alreadyStarted
    /// A socket could not be made, bound or connected.
    case socket(ZMQError)
    /// CURVE is asked for but an allow-list cannot be used, or libzmq lacks CURVE.
    case security(SecurityError)

    public var description: String {
        switch self {
        case .invalidConfiguration(let problems): "invalid controller configuration: " + problems.joined(separator: "; ")
        case .alreadyStarted: "the controller was already started"
        case .socket(let error): "controller socket: \(error)"
        case .security(let error): "controller security: \(error)"
        }
    }
}

/// The BottleFit controller: watches the broker's STATS and tells a fraction of the cameras to
/// compute locally while the edge is overloaded (`ControllerPolicy`, docs/controller.md).
///
/// `start()` runs the loop on a dedicated thread that makes and owns its SUB and PUB sockets, so
/// `zmq_poll` never blocks Swift's cooperative pool. `stop()` may be called from any thread; the
/// loop notices within one `pollTimeout` (20 ms) and closes its sockets.
///
/// ```swift
/// let controller = Controller(configuration: .suggested, context: try ZMQContext(), logger: logger)
/// try controller.start()
/// // ... on SIGTERM:
/// controller.stop()
/// controller.waitUntilStopped()
/// ```
public final class Controller: Sendable {
    /// Where and how the controller runs.
    public let configuration: ControllerConfiguration
    private let context: ZMQContext
    private let logger: Logger
    private let shared = SharedState()

    /// A controller that will use sockets of `context` once started; it logs through `logger`
    /// and never configures logging itself.
    public init(configuration: ControllerConfiguration, context: ZMQContext, logger: Logger) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
    }

    deinit {
        shared.service.stop()
    }

    /// Makes the sockets on a new thread and starts. Returns once the PUB socket is bound, with the
    /// directive endpoint actually bound (a port chosen for `tcp://host:*`), or throws why not.
    @discardableResult
    public func start() throws(ControllerError) -> String {
        let problems = configuration.problems
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        let (configuration, context, logger, shared) = (self.configuration, self.context, self.logger, self.shared)
        var authenticator: CurveAuthenticator?
        if let curve = configuration.curve {
            do { authenticator = try CurveAuthenticator(doors: curve.doors, logger: logger) } catch { throw .security(error) }
        }
        let service = shared.service
        let result = service.start(name: "bf-controller") { [authenticator] ready in
            let loop: ControllerLoop
            do throws(ZMQError) {
                // The ZAP handler is bound before the PUB socket, or libzmq would let every subscriber in.
                let domain = try authenticator?.start(in: context)["directives"]
                loop = try ControllerLoop(configuration: configuration, context: context, zapDomain: domain, logger: logger)
            } catch {
                authenticator?.stop()
                ready(.failure(.socket(error)))
                return
            }
            shared.state.withLock { $0.authenticator = authenticator }
            defer { authenticator?.stop() }
            ready(.success(loop.directiveEndpoint))
            loop.run(
                shouldStop: { service.stopRequested },
                report: { counters, policy, decision in
                    shared.state.withLock { state in
                        if counters.statsReceived != state.counters.statsReceived, let stats = policy.latestStats {
                            state.history.record(stats, localFraction: policy.fraction)
                            state.statsReceivedAt = Self.unixMilliseconds()
                        }
                        state.counters = counters
                        state.fraction = policy.fraction
                        state.edgeFloor = policy.edgeFloor
                        state.condition = policy.condition
                        state.latestStats = policy.latestStats
                        if let decision { state.lastDecision = decision }
                    }
                })
        }
        guard let result else { throw .alreadyStarted }
        return try result.get()
    }

    /// Re-reads the allow-list (what SIGHUP does). Returns the problem when the file cannot be
    /// used; the list in force then stays as it was. Nil too when CURVE is off.
    @discardableResult
    public func reloadAllowLists() -> SecurityError? {
        shared.state.withLock { $0.authenticator }?.reload()
    }

    /// Counts of CURVE handshakes accepted and refused; nil when CURVE is off or before `start()`.
    public var authCounters: CurveAuthCounters? { shared.state.withLock { $0.authenticator }?.counters }

    /// The directive endpoint actually bound, once `start()` has returned.
    public var directiveEndpoint: String? { shared.service.started }

    /// Asks the loop to stop; returns at once. The loop exits within about one `pollTimeout`.
    public func stop() { shared.service.stop() }

    /// Blocks until the loop has stopped and closed its sockets (returns at once if it never
    /// started). Do not call it from Swift's cooperative pool.
    public func waitUntilStopped() { shared.service.waitUntilStopped() }

    /// The counters as of the loop's last turn.
    public var counters: ControllerCounters { shared.state.withLock { $0.counters } }
    /// The fraction of cameras currently sent local.
    public var fraction: Double { shared.state.withLock { $0.fraction } }
    /// The last decision taken, if any.
    public var lastDecision: ControllerDecision? { shared.state.withLock { $0.lastDecision } }

    /// What the dashboard shows (`GET /api/state`): the latest STATS, the controller's figures, and
    /// one sample a second for the last `DashboardHistory.capacity` seconds.
    public func dashboardState() -> DashboardState {
        let s = shared.state.withLock { $0 }
        return DashboardState(
            now: Self.unixMilliseconds(), statsEndpoint: configuration.statsEndpoint, statsReceived: s.counters.statsReceived,
            statsReceivedAt: s.statsReceivedAt, condition: s.condition.rawValue, localFraction: s.fraction, edgeFloor: s.edgeFloor,
            lastDecision: s.lastDecision?.description, stats: s.latestStats, history: s.history)
    }

    static func unixMilliseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// The families of `/metrics`: counters, fraction, condition and the signals last read, together.
    public func metricFamilies() -> [MetricFamily] {
        let s = shared.state.withLock { $0 }
        return s.counters.metricFamilies(
            fraction: s.fraction, edgeFloor: s.edgeFloor, condition: s.condition, latestStats: s.latestStats, settings: configuration.settings)
            + (s.authenticator?.metricFamilies(prefix: "bottlefit_controller") ?? [])
    }

}

/// What the controller thread and its callers share: a stop flag and the figures the loop
/// reports. Nothing here touches a socket.
private final class SharedState: Sendable {
    struct State {
        var counters = ControllerCounters()
        var fraction = 0.0
        var edgeFloor = 0.0
        var condition = EdgeCondition.unknown
        var latestStats: StatsMessage?
        var lastDecision: ControllerDecision?
        var authenticator: CurveAuthenticator?
        var history = DashboardHistory()
        /// When the last STATS arrived, Unix ms.
        var statsReceivedAt: UInt64?
    }

    let service = SocketService<String, ControllerError>()
    let state = Mutex(State())
}

extension Controller: ThreadedRole {
    public func startServing() throws { try start() }
    public func requestStop() { stop() }
    public func waitForStop() { waitUntilStopped() }
}
