import BottleFitMetrics
import Foundation
import Logging
import Synchronization

/// Why the metrics endpoint could not start.
public enum MetricsServerError: Error, Equatable, CustomStringConvertible {
    /// The host did not resolve.
    case resolve(String)
    /// socket, bind or listen failed (the address is in use, say).
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

/// The metrics and health endpoint of one long-running role: a small HTTP/1.1 responder on a
/// dedicated thread (never Swift's cooperative pool: it blocks in `poll`).
///
/// - `GET /metrics`: the Prometheus text format (0.0.4) of the families `metrics` builds, from
///   the role's counters at the moment of the scrape, plus the endpoint's own request counts.
/// - `GET /healthz`: 200 `ok` while the role serves, 503 `starting` or `stopping` otherwise.
/// - `HEAD` of either: the same headers without a body. Any other path 404; another method on
///   these paths 405 (`Allow: GET, HEAD`); an unknown method 501; a malformed head 400; a head
///   over `maxHeadBytes` (8 KiB) 431; HTTP/2 or later 505; a head not complete within
///   `headTimeout` (5 s) 408.
///
/// One request per connection, answered with `Connection: close`, so no body is ever read and
/// no connection outlives its answer by more than a short drain. At most `maxConnections` (64)
/// are open at once; more are answered 503 and closed. `stop()` is noticed within 50 ms.
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
    private let health = Atomic<UInt8>(RoleHealth.starting.rawValue)
    private let stopFlag = Atomic<Bool>(false)
    private let state = Mutex<(started: Bool, running: Bool)>((false, false))
    private let exited = DispatchSemaphore(value: 0)
    /// Requests answered, by status code (the endpoint's own metrics).
    private let answered = Mutex<[Int: Int]>([:])
    private let startedAt = Date().timeIntervalSince1970

    /// Bounds on what one peer can cost the responder.
    public struct Limits: Sendable, Equatable {
        /// Connections open at once; more are answered 503 and closed.
        public var maxConnections = 64
        /// Bytes of a request head (request line and header fields); more is answered 431.
        public var maxHeadBytes = 8192
        /// Seconds from accepting a connection to the end of its head; later is answered 408.
        public var headTimeout = 5.0
        /// Seconds to write an answer; a peer that reads slower loses its connection.
        public var writeTimeout = 5.0
        /// After answering: how long unread input (a body, pipelined requests) is read and thrown
        /// away before closing, so the close does not reset the connection under the answer.
        public var drainTimeout = 1.0

        public init() {}
    }

    /// The longest `poll` wait: bounds how long `stop()` takes to be noticed.
    static let pollMilliseconds: Int32 = 50
    public let limits: Limits

    public init(
        address: MetricsAddress, role: String, logger: Logger, limits: Limits = Limits(),
        metrics: @escaping @Sendable () -> [MetricFamily]
    ) {
        self.address = address
        self.limits = limits
        self.role = role
        self.logger = logger
        self.metrics = metrics
    }

    deinit { stopFlag.store(true, ordering: .releasing) }

    /// Binds and listens, then serves on a new thread. Returns the bound address (`127.0.0.1:41234`
    /// for port 0), or throws why it could not bind.
    public func start() throws(MetricsServerError) -> MetricsAddress {
        guard state.withLock({ s in
            defer { s.started = true }
            return !s.started
        }) else { throw .alreadyStarted }
        let listener = try ListeningSocket(address: address)
        state.withLock { $0.running = true }
        let thread = Thread { [self] in
            defer { exited.signal() }
            serve(listener)
        }
        thread.name = "bf-metrics"
        thread.start()
        return listener.bound
    }

    /// What `/healthz` answers from now on.
    public func setHealth(_ health: RoleHealth) { self.health.store(health.rawValue, ordering: .releasing) }

    public var currentHealth: RoleHealth { RoleHealth(rawValue: health.load(ordering: .acquiring)) ?? .starting }

    /// Asks the thread to close every connection and the listener; returns at once.
    public func stop() { stopFlag.store(true, ordering: .releasing) }

    /// Blocks until the thread has closed its sockets (at once if it never started).
    /// Not for Swift's cooperative pool.
    public func waitUntilStopped() {
        guard state.withLock({ $0.running }) else { return }
        exited.wait()
        exited.signal()
    }

    /// Requests answered so far, by status code.
    public var answeredByStatus: [Int: Int] { answered.withLock { $0 } }

    // MARK: The thread

    private func serve(_ listener: ListeningSocket) {
        logger.debug("metrics endpoint serving", metadata: ["address": "\(listener.bound)"])
        var connections: [HTTPConnection] = []
        while !stopFlag.load(ordering: .acquiring) {
            var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)]
            for c in connections { fds.append(pollfd(fd: c.fd, events: c.wantsWrite ? Int16(POLLOUT) : Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), Self.pollMilliseconds)
            if rc < 0 {
                if errno == EINTR { continue }
                logger.error("metrics endpoint: poll failed; it stops", metadata: ["errno": "\(errno)"])
                break
            }
            let now = Date().timeIntervalSince1970
            for (i, c) in connections.enumerated() where fds[i + 1].revents != 0 {
                c.service(revents: fds[i + 1].revents, now: now, limits: limits, respond: respond)
            }
            for c in connections { c.checkTimeouts(now: now, limits: limits, respond: respond) }
            connections.removeAll { c in
                if c.isFinished { c.close() }
                return c.isFinished
            }
            if fds[0].revents & Int16(POLLIN) != 0 { acceptAll(listener, into: &connections, now: now) }
        }
        for c in connections { c.close() }
        listener.close()
        logger.debug("metrics endpoint stopped")
    }

    private func acceptAll(_ listener: ListeningSocket, into connections: inout [HTTPConnection], now: Double) {
        for _ in 0..<limits.maxConnections {
            let fd = accept(listener.fd, nil, nil)
            guard fd >= 0 else { return }  // EAGAIN: nothing more waiting (or a transient error)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            guard connections.count < limits.maxConnections else {
                // Answered in one best-effort write and closed at once: a flood of connections
                // must not hold descriptors the role's own sockets need.
                let busy = HTTPResponse(status: .serviceUnavailable, body: "too many connections\n").bytes
                _ = busy.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                closeDescriptor(fd)
                record(.serviceUnavailable)
                continue
            }
            connections.append(HTTPConnection(fd: fd, acceptedAt: now))
        }
    }

    /// Routes one request (or a failure to read one) to its response.
    private func respond(_ parse: HTTPRequestHead.Parse) -> HTTPResponse {
        let response: HTTPResponse
        switch parse {
        case .incomplete:
            response = HTTPResponse(status: .requestTimeout, body: "the request head did not arrive in time\n")
        case .invalid(let status, let reason):
            logger.debug("metrics endpoint: bad request", metadata: ["status": "\(status.code)", "reason": "\(reason)"])
            response = HTTPResponse(status: status, body: reason + "\n")
        case .complete(let request):
            response = route(request)
        }
        record(response.status)
        return response
    }

    private func route(_ request: HTTPRequestHead) -> HTTPResponse {
        let known = ["/metrics", "/healthz"]
        let isRead = request.method == "GET" || request.method == "HEAD"
        let standard = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        guard standard.contains(request.method) else {
            return HTTPResponse(status: .notImplemented, body: "method \(request.method) is not implemented\n")
        }
        guard known.contains(request.path) else {
            return HTTPResponse(status: .notFound, body: "not found: try /metrics or /healthz\n", headOnly: request.method == "HEAD")
        }
        guard isRead else {
            return HTTPResponse(status: .methodNotAllowed, body: "\(request.path) answers GET and HEAD\n", extraHeaders: [("Allow", "GET, HEAD")])
        }
        let headOnly = request.method == "HEAD"
        if request.path == "/healthz" {
            let health = currentHealth
            return HTTPResponse(status: health == .serving ? .ok : .serviceUnavailable, body: "\(health.text) \(role)\n", headOnly: headOnly)
        }
        let text = PrometheusText.render(metrics() + ownFamilies())
        return HTTPResponse(status: .ok, contentType: PrometheusText.contentType, body: text, headOnly: headOnly)
    }

    private func record(_ status: HTTPStatus) { answered.withLock { $0[status.code, default: 0] += 1 } }

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

/// The version `bottlefit_build_info` reports.
public enum BuildInfo {
    public static let version = "0.1.0"
}
