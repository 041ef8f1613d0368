import BottleFitLifecycle
import BottleFitMetrics
import BottleFitProtocol
import BottleFitSecurity
import Dispatch
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

/// Why the broker could not start.
public enum BrokerError: Error, Equatable, CustomStringConvertible {
    /// The configuration has problems (`BrokerConfiguration.problems`).
    case invalidConfiguration([String])
    /// `start()` was called on a broker that was started before.
    case alreadyStarted
    /// A socket could not be made or bound.
    case socket(ZMQError)
    /// CURVE is asked for but a key file or allow-list cannot be used, or libzmq lacks CURVE.
    case security(SecurityError)

    public var description: String {
        switch self {
        case .invalidConfiguration(let problems): "invalid broker configuration: " + problems.joined(separator: "; ")
        case .alreadyStarted: "the broker was already started"
        case .socket(let error): "broker socket: \(error)"
        case .security(let error): "broker security: \(error)"
        }
    }
}

/// The BottleFit broker: cameras on a ROUTER frontend, tail workers on a ROUTER backend, STATS
/// on a PUB socket, scheduled by `BrokerScheduler` (docs/broker.md).
///
/// `start()` runs the loop on a dedicated thread that makes and owns all three sockets, so
/// `zmq_poll` never blocks Swift's cooperative pool. `stop()` may be called from any thread: the
/// loop notices within one `pollTimeout`, answers the frames it holds, says DISCONNECT to
/// workers and cameras, and closes its sockets.
///
/// ```swift
/// let broker = Broker(configuration: .suggested, context: try ZMQContext(), logger: logger)
/// let endpoints = try broker.start()
/// // ... on SIGTERM:
/// broker.stop()
/// broker.waitUntilStopped()
/// ```
public final class Broker: Sendable {
    /// Where and how the broker serves.
    public let configuration: BrokerConfiguration
    private let context: ZMQContext
    private let logger: Logger
    private let shared = SharedState()

    /// A broker that will serve with `configuration` on sockets of `context` once started.
    /// It logs through `logger` and never configures logging itself.
    public init(configuration: BrokerConfiguration, context: ZMQContext, logger: Logger) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
    }

    deinit {
        // The thread holds only `shared`, not the broker: dropping the broker stops the loop.
        shared.service.stop()
    }

    /// Binds the sockets on a new thread and starts serving. Returns once the sockets are bound,
    /// with the endpoints actually bound (ports chosen for `tcp://host:*`), or throws why not.
    @discardableResult
    public func start() throws(BrokerError) -> BrokerEndpoints {
        let problems = configuration.problems
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        let (configuration, context, logger, shared) = (self.configuration, self.context, self.logger, self.shared)
        let authenticator = try Self.makeAuthenticator(configuration, logger: logger)
        let service = shared.service
        let result = service.start(name: "bf-broker") { ready in
            let loop: BrokerLoop
            do throws(ZMQError) {
                // The ZAP handler is bound before the sockets, or libzmq would let every client in.
                let domains = try authenticator?.start(in: context)
                loop = try BrokerLoop(configuration: configuration, context: context, zapDomains: domains, logger: logger)
            } catch {
                authenticator?.stop()
                ready(.failure(.socket(error)))
                return
            }
            shared.state.withLock { $0.authenticator = authenticator }
            defer { authenticator?.stop() }
            ready(.success(loop.endpoints))
            loop.run(
                shouldStop: { service.stopRequested },
                report: { counters, stats in
                    shared.state.withLock { state in
                        state.counters = counters
                        if let stats { state.latestStats = stats }
                    }
                })
        }
        guard let result else { throw .alreadyStarted }
        return try result.get()
    }

    /// The authenticator of a CURVE configuration, its allow-lists read; nil without CURVE.
    private static func makeAuthenticator(_ configuration: BrokerConfiguration, logger: Logger) throws(BrokerError) -> CurveAuthenticator? {
        guard let curve = configuration.curve else { return nil }
        do { return try CurveAuthenticator(doors: curve.doors, logger: logger) } catch { throw .security(error) }
    }

    /// Re-reads the allow-lists (what SIGHUP does). Returns the problem when a file cannot be
    /// used; the lists in force then stay as they were. Nil too when CURVE is off.
    @discardableResult
    public func reloadAllowLists() -> SecurityError? {
        shared.state.withLock { $0.authenticator }?.reload()
    }

    /// Counts of CURVE handshakes accepted and refused; nil when CURVE is off or before `start()`.
    public var authCounters: CurveAuthCounters? { shared.state.withLock { $0.authenticator }?.counters }

    /// The endpoints actually bound, once `start()` has returned.
    public var endpoints: BrokerEndpoints? { shared.service.started }

    /// Asks the loop to stop; returns at once. The loop exits within about one `pollTimeout`.
    public func stop() { shared.service.stop() }

    /// Blocks until the loop has stopped and closed its sockets (returns at once if it never started).
    /// Do not call it from Swift's cooperative pool.
    public func waitUntilStopped() { shared.service.waitUntilStopped() }

    /// The counters as of the loop's last turn (at most one `pollTimeout` old while it runs).
    public var counters: BrokerCounters { shared.state.withLock { $0.counters } }

    /// The last STATS published, if any.
    public var latestStats: StatsMessage? { shared.state.withLock { $0.latestStats } }

    /// The families of `/metrics`: the counters and the latest STATS, read together.
    public func metricFamilies() -> [MetricFamily] {
        let (counters, stats, authenticator) = shared.state.withLock { ($0.counters, $0.latestStats, $0.authenticator) }
        return counters.metricFamilies(latestStats: stats) + (authenticator?.metricFamilies(prefix: "bottlefit_broker") ?? [])
    }

}

/// What the broker thread and its callers share: a stop flag, read every turn, and the figures
/// the loop reports. Nothing here touches a socket.
private final class SharedState: Sendable {
    struct State {
        var counters = BrokerCounters()
        var latestStats: StatsMessage?
        var authenticator: CurveAuthenticator?
    }

    let service = SocketService<BrokerEndpoints, BrokerError>()
    let state = Mutex(State())
}

extension Broker: ThreadedRole {
    public func startServing() throws { try start() }
    public func requestStop() { stop() }
    public func waitForStop() { waitUntilStopped() }
}
