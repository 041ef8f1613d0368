import BottleFitMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Why the metrics endpoint could not start.
public enum MetricsServerError: Error, Equatable, CustomStringConvertible {
    /// The host did not resolve.
    case resolve(String)
    /// bind or listen failed (the address is in use, say), or the server stopped before listening.
    case socket(String)
    /// `start()` was called twice.
    case alreadyStarted

    public var description: String {
        switch self {
        case .resolve(let m): "metrics endpoint: \(m)"
        case .socket(let m): "metrics endpoint: \(m)"
        case .alreadyStarted: "the metrics endpoint was already started"
        }
    }
}

/// What `GET /healthz` says about the role.
public enum RoleHealth: UInt8, Sendable, Equatable {
    /// The role is loading or binding: 503 `starting`.
    case starting
    /// The role runs: 200 `ok`.
    case serving
    /// The role got SIGTERM and is draining: 503 `stopping`.
    case stopping

    var text: String {
        switch self {
        case .starting: "starting"
        case .serving: "ok"
        case .stopping: "stopping"
        }
    }
}

/// One more read-only page a role serves beside `/metrics` and `/healthz` (the controller's
/// dashboard and its `/api/state`): GET and HEAD only, its body made afresh for every request.
public struct ReadOnlyRoute: Sendable {
    /// The exact path, such as `/api/state` (the query is ignored).
    public var path: String
    public var contentType: String
    /// More header fields of every answer (`Cache-Control`, `Content-Security-Policy`).
    public var headers: [(String, String)]
    public var body: @Sendable () -> String

    public init(path: String, contentType: String, headers: [(String, String)] = [], body: @escaping @Sendable () -> String) {
        self.path = path
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }
}

/// The HTTP endpoint of one long-running role, on Hummingbird (swift-nio) with one event-loop
/// thread of its own, which also runs its Swift tasks (`EventLoopTaskExecutor`), so it never
/// waits for Swift's cooperative pool: `/metrics`, `/healthz`, and the role's `ReadOnlyRoute`s.
///
/// - `GET /metrics`: the Prometheus text format (0.0.4) of the families `metrics` builds, from
///   the role's counters at the moment of the scrape, plus the endpoint's own request counts.
/// - `GET /healthz`: 200 `ok` while the role serves, 503 `starting` or `stopping` otherwise.
/// - `HEAD` of any path: the same headers without a body. Any other path 404; another method on
///   these paths 405 (`Allow: GET, HEAD`); an unknown method 501; a malformed head 400; a head
///   over `maxHeadBytes` (8 KiB) or `maxHeaderLines` (64) 431; HTTP/2 or later 505; a head not
///   complete within `headTimeout` (5 s) 408 (`RequestGuard`).
///
/// One request per connection, answered with `Connection: close`, so no body is ever used and
/// no connection outlives its answer by more than a short drain. At most `maxConnections` (64)
/// are open at once; more are answered 503 and closed. `stop()` closes every connection.
///
/// ```swift
/// let server = MetricsServer(address: MetricsAddress("127.0.0.1:0")!, role: "broker", logger: logger) {
///     broker.counters.metricFamilies()
/// }
/// let bound = try server.start()     // "127.0.0.1:41234"
/// server.setHealth(.serving)
/// // ... on SIGTERM:
/// server.setHealth(.stopping)
/// broker.stop(); broker.waitUntilStopped()
/// server.stop(); server.waitUntilStopped()
/// ```
public final class MetricsServer: Sendable {
    public let address: MetricsAddress
    /// The role's name, in `bottlefit_build_info` and the health text.
    public let role: String
    private let logger: Logger
    private let metrics: @Sendable () -> [MetricFamily]
    private let routes: [ReadOnlyRoute]
    private let health = Atomic<UInt8>(RoleHealth.starting.rawValue)
    private let state = Mutex<
        (started: Bool, task: Task<Void, Never>?, group: ServiceGroup?, executor: EventLoopTaskExecutor?)
    >((false, nil, nil, nil))
    private let exited = DispatchSemaphore(value: 0)
    /// Requests answered, by status code (the endpoint's own metrics).
    private let answered = Mutex<[Int: Int]>([:])
    private let startedAt = Date().timeIntervalSince1970

    /// Bounds on what one peer can cost the endpoint.
    public struct Limits: Sendable, Equatable {
        /// Connections open at once; more are answered 503 and closed.
        public var maxConnections = 64
        /// Bytes of the header fields of a request head; more is answered 431.
        public var maxHeadBytes = 8192
        /// Header lines of a request head; more is answered 431.
        public var maxHeaderLines = 64
        /// Seconds from accepting a connection to the end of its head; later is answered 408.
        public var headTimeout = 5.0
        /// Seconds to write an answer; a peer that reads slower loses its connection.
        public var writeTimeout = 5.0
        /// After answering: how long unread input (a body, pipelined requests) is read and thrown
        /// away before closing, so the close does not reset the connection under the answer.
        public var drainTimeout = 1.0

        public init() {}
    }

    public let limits: Limits

    public init(
        address: MetricsAddress, role: String, logger: Logger, limits: Limits = Limits(), routes: [ReadOnlyRoute] = [],
        metrics: @escaping @Sendable () -> [MetricFamily]
    ) {
        self.address = address
        self.limits = limits
        self.role = role
        self.logger = logger
        self.routes = routes
        self.metrics = metrics
    }

    deinit { state.withLock { $0.task?.cancel() } }

    /// Binds and listens, then serves on one of SwiftNIO's process-wide event loops. Returns the bound address
    /// (`127.0.0.1:41234` for port 0), or throws why it could not listen.
    public func start() throws(MetricsServerError) -> MetricsAddress {
        guard state.withLock({ s in
            defer { s.started = true }
            return !s.started
        }) else { throw .alreadyStarted }
        let outcome = StartOutcome()
        let settle = outcome.settle
        let host = address.host
        // NIO's process-wide loops, never shut down: a group of our own, shut down in
        // `waitUntilStopped`, raced Hummingbird's shutdown when a busy machine made the graceful
        // stop outlast its bound and the task was cancelled; the shutdown still running then
        // made promises on the closed loops, which SwiftNIO traps on in debug builds (a test
        // process crashed so beside stress-ng, 2026-12-04).
        let group = MultiThreadedEventLoopGroup.singleton
        let settings = RequestGuard.Settings(limits: limits, connections: ConnectionCount()) { [self] in record($0) }
        var serverLogger = logger
        // Hummingbird's own lines ("Server started ...") only when debugging; warnings always.
        if serverLogger.logLevel > .debug { serverLogger.logLevel = max(serverLogger.logLevel, .warning) }
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { [self] request, _ in answer(request) },
            server: HTTPServerBuilder { responder in GuardedHTTP1Channel(responder: responder, settings: settings) },
            configuration: ApplicationConfiguration(address: .hostname(host, port: Int(address.port)), serverName: nil),
            onServerRunning: { channel in
                guard let local = channel.localAddress, let port = local.port else {
                    return settle(.failure(.socket("the listener has no local address")))
                }
                settle(.success(MetricsAddress(host: local.ipAddress ?? host, port: UInt16(port))))
            },
            eventLoopGroupProvider: .shared(group),
            logger: serverLogger)
        // A group of its own (no signal handlers: the role's command owns SIGINT and SIGTERM), so
        // `stop()` is a graceful shutdown: the listener closes, connections waiting for a head
        // close at once (`RequestGuard`), answers under way finish.
        let services = ServiceGroup(services: [app], logger: serverLogger)
        let executor = EventLoopTaskExecutor(group.next())
        let task = Task(executorPreference: executor) { [self, address] in
            defer { exited.signal() }
            do {
                try await services.run()
                settle(.failure(.socket("\(address): the server stopped before it listened")))
            } catch {
                settle(.failure(Self.classify(error, address: address)))
            }
        }
        state.withLock {
            $0.task = task
            $0.group = services
            $0.executor = executor
        }
        switch outcome.wait() {
        case .success(let bound):
            logger.debug("metrics endpoint serving", metadata: ["address": "\(bound)"])
            return bound
        case .failure(let error):
            waitUntilStopped()
            throw error
        }
    }

    /// What `/healthz` answers from now on.
    public func setHealth(_ health: RoleHealth) { self.health.store(health.rawValue, ordering: .releasing) }

    public var currentHealth: RoleHealth { RoleHealth(rawValue: health.load(ordering: .acquiring)) ?? .starting }

    /// Asks the server to close its listener and every connection; returns at once.
    public func stop() {
        guard let (services, executor) = state.withLock({ s in s.group.flatMap { g in s.executor.map { (g, $0) } } }) else { return }
        Task(executorPreference: executor) { await services.triggerGracefulShutdown() }
    }

    /// How long a graceful stop may take before the server's task is cancelled instead: part of
    /// Hummingbird's shutdown runs on Swift's cooperative pool, which a busy process may not lend.
    static let gracefulStopSeconds = 3.0

    /// Blocks until the server's task has ended, gracefully or, after `gracefulStopSeconds`,
    /// cancelled (at once if it never started). Not for Swift's cooperative pool.
    public func waitUntilStopped() {
        guard let task = state.withLock({ $0.task }) else { return }
        if exited.wait(timeout: .now() + Self.gracefulStopSeconds) == .timedOut {
            task.cancel()
            exited.wait()
        }
        exited.signal()
    }

    /// Requests answered so far, by status code.
    public var answeredByStatus: [Int: Int] { answered.withLock { $0 } }

    private static func classify(_ error: any Error, address: MetricsAddress) -> MetricsServerError {
        if error is SocketAddressError { return .resolve("\(address.host) does not resolve (\(error))") }
        if let io = error as? IOError { return .socket("cannot listen on \(address): \(io.description)") }
        return .socket("cannot listen on \(address): \(error)")
    }

    // MARK: Answers

    private func record(_ code: Int) { answered.withLock { $0[code, default: 0] += 1 } }

    /// Methods HTTP defines; any other that the decoder let through is answered 501.
    private static let standardMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    /// Routes one request that `RequestGuard` let through.
    private func answer(_ request: Request) -> Response {
        let method = request.method.rawValue
        let path = request.uri.path
        guard Self.standardMethods.contains(method) else {
            return Self.text(.notImplemented, "method \(method) is not implemented\n")
        }
        let headOnly = method == "HEAD"
        let page: (contentType: String, headers: [(String, String)], body: () -> String)?
        switch path {
        case "/metrics": page = (PrometheusText.contentType, [], { PrometheusText.render(self.metrics() + self.ownFamilies()) })
        case "/healthz": page = nil
        default:
            guard let route = routes.first(where: { $0.path == path }) else {
                let known = (["/metrics", "/healthz"] + routes.map(\.path)).joined(separator: ", ")
                return Self.text(.notFound, "not found: try \(known)\n", headOnly: headOnly)
            }
            page = (route.contentType, route.headers, route.body)
        }
        guard method == "GET" || headOnly else {
            var response = Self.text(.methodNotAllowed, "\(path) answers GET and HEAD\n")
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        guard let page else {
            let health = currentHealth
            return Self.text(health == .serving ? .ok : .serviceUnavailable, "\(health.text) \(role)\n", headOnly: headOnly)
        }
        var response = Self.text(.ok, page.body(), contentType: page.contentType, headOnly: headOnly)
        for (name, value) in page.headers {
            if let field = HTTPField.Name(name) { response.headers[field] = value }
        }
        return response
    }

    private static func text(
        _ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8", headOnly: Bool = false
    ) -> Response {
        let response = Response(
            status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        return headOnly ? response.createHeadResponse() : response
    }

    /// The endpoint's own figures: build info, start time, health and requests answered.
    private func ownFamilies() -> [MetricFamily] {
        let byCode = answeredByStatus.sorted { $0.key < $1.key }
        let health = currentHealth
        return [
            .gauge("bottlefit_build_info", "Always 1; the labels name the version and the role of this process.",
                   1, labels: [("version", BuildInfo.version), ("role", role)]),
            .gauge("bottlefit_process_start_time_seconds", "When this process started its metrics endpoint, Unix seconds.", startedAt),
            .gauge("bottlefit_role_health", "1 for the role's current health (what /healthz says), 0 for the others.",
                   [RoleHealth.starting, .serving, .stopping].map { ([("state", $0.text)], $0 == health ? 1 : 0) }),
            .counter("bottlefit_metrics_http_requests_total", "HTTP requests the metrics endpoint answered, by status code.",
                     byCode.map { ([("code", "\($0.key)")], $0.value) }),
        ]
    }
}

/// How `start()` ended: listening on an address, or why not; the first word counts.
private final class StartOutcome: Sendable {
    private let result = Mutex<Result<MetricsAddress, MetricsServerError>?>(nil)
    private let settled = DispatchSemaphore(value: 0)

    @Sendable func settle(_ outcome: Result<MetricsAddress, MetricsServerError>) {
        let first = result.withLock { r in
            defer { if r == nil { r = outcome } }
            return r == nil
        }
        if first { settled.signal() }
    }

    /// Blocks until `settle` was called.
    func wait() -> Result<MetricsAddress, MetricsServerError> {
        settled.wait()
        settled.signal()
        return result.withLock { $0 }!
    }
}

/// The version `bottlefit_build_info` reports.
public enum BuildInfo {
    public static let version = "0.1.0"
}
