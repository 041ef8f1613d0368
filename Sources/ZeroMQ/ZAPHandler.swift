import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One authentication request libzmq sends to the ZAP handler (ZeroMQ RFC 27) when a peer
/// completes a security handshake with a socket of the context.
public struct ZAPRequest: Sendable, Equatable {
    /// The `ZMQ_ZAP_DOMAIN` of the socket being connected to: which registration decides.
    public var domain: String
    /// The peer's address as text (for TCP, its IP), for logs.
    public var address: String
    /// `"NULL"`, `"PLAIN"` or `"CURVE"`.
    public var mechanism: String
    /// For CURVE, one frame: the client's 32-byte long-term public key.
    public var credentials: [[UInt8]]

    public init(domain: String, address: String, mechanism: String, credentials: [[UInt8]]) {
        self.domain = domain
        self.address = address
        self.mechanism = mechanism
        self.credentials = credentials
    }
}

/// The answer to a `ZAPRequest`: let the peer in (200) or refuse it (400); libzmq closes a
/// refused connection before any message of it reaches the socket.
public struct ZAPVerdict: Sendable, Equatable {
    /// "200" success, "300" temporary error, "400" authentication failure, "500" internal error.
    public var statusCode: String
    public var statusText: String
    /// The identity the socket may report for the peer's messages (`ZMQ_MSG_PROPERTY_USER_ID`).
    public var userID: String

    public static func allow(userID: String = "") -> ZAPVerdict { ZAPVerdict(statusCode: "200", statusText: "OK", userID: userID) }
    public static func deny(_ reason: String) -> ZAPVerdict { ZAPVerdict(statusCode: "400", statusText: reason, userID: "") }
    public var isAllowed: Bool { statusCode == "200" }
}

/// A registration with the ZAP handler of a context: sockets that set `ZMQ_ZAP_DOMAIN` to
/// `domain` have their peers judged by the function given at registration. Cancelled when
/// released; the handler's thread ends with the last registration of its context.
public final class ZAPRegistration: Sendable {
    /// The domain to set on the sockets this registration guards (unique in the process).
    public let domain: String
    private let cancelled = Atomic<Bool>(false)
    private let endpoint: ZAPHandler.Endpoint

    fileprivate init(domain: String, endpoint: ZAPHandler.Endpoint) {
        self.domain = domain
        self.endpoint = endpoint
    }

    /// Stops judging for `domain` (its peers are refused from now on). Idempotent.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        ZAPHandler.unregister(domain, from: endpoint)
    }

    deinit { cancel() }
}

/// The ZAP handler of a context (ZeroMQ RFC 27): a REP socket bound to `inproc://zeromq.zap.01`
/// on a thread of its own, answering libzmq's authentication requests.
///
/// libzmq allows one handler per context, but a process may run several servers (a broker and a
/// controller in one test) in one context, each with its own allow-lists. So the handler is
/// shared: each server registers a decision function and gets a domain of its own, and requests
/// are routed by their domain; a request for a domain nobody registered is refused.
///
/// The handler must be bound before a CURVE server socket accepts a peer: libzmq lets every
/// peer in when no handler is bound. `register` returns only once it is.
public enum ZAPHandler {
    /// The decision for one request, called on the handler's thread; it must not block.
    public typealias Decide = @Sendable (ZAPRequest) -> ZAPVerdict

    /// Registers `decide` in `context` under a fresh domain starting with `name`, starting the
    /// context's handler thread if none runs. Throws if the handler cannot bind (for example when
    /// something else in the context already bound `inproc://zeromq.zap.01`).
    public static func register(in context: ZMQContext, name: String, _ decide: @escaping Decide) throws(ZMQError) -> ZAPRegistration {
        try endpoints.withLock { (table) throws(ZMQError) -> ZAPRegistration in
            let key = ObjectIdentifier(context)
            let endpoint: Endpoint
            if let running = table.endpoints[key] {
                endpoint = running
            } else {
                endpoint = try Endpoint.start(context: context)
                table.endpoints[key] = endpoint
            }
            table.nextDomain += 1
            let domain = "\(name)#\(table.nextDomain)"
            endpoint.deciders.withLock { $0[domain] = decide }
            return ZAPRegistration(domain: domain, endpoint: endpoint)
        }
    }

    fileprivate static func unregister(_ domain: String, from endpoint: Endpoint) {
        endpoints.withLock { table in
            let empty = endpoint.deciders.withLock { deciders in
                deciders[domain] = nil
                return deciders.isEmpty
            }
            guard empty else { return }
            // Stopped and waited for under the lock, so a new registration in the same context
            // binds only after this handler has closed its socket.
            endpoint.service.stop()
            endpoint.service.waitUntilStopped(timeout: .seconds(5))
            if let key = table.endpoints.first(where: { $0.value === endpoint })?.key { table.endpoints[key] = nil }
        }
    }

    private struct Table: ~Copyable {
        var endpoints: [ObjectIdentifier: Endpoint] = [:]
        var nextDomain = 0
    }

    /// One handler per context; the key stays valid while the entry exists, because the
    /// handler's socket keeps its context alive.
    private static let endpoints = Mutex(Table())

    /// A running handler: its thread and the decisions it routes to.
    fileprivate final class Endpoint: Sendable {
        let service = SocketService<Void, ZMQError>()
        let deciders = Mutex<[String: Decide]>([:])

        static func start(context: ZMQContext) throws(ZMQError) -> Endpoint {
            let endpoint = Endpoint()
            let result = endpoint.service.start(name: "bf-zap") { [endpoint] ready in
                let socket: ZMQSocket
                let poller = ZMQPoller()
                do throws(ZMQError) {
                    socket = try ZMQSocket(context, type: .rep, linger: 0)
                    try socket.bind("inproc://zeromq.zap.01")
                    try poller.add(socket)
                } catch {
                    ready(.failure(error))
                    return
                }
                ready(.success(()))
                endpoint.serve(socket, poller)
                try? socket.close()
            }
            try result?.get()
            return endpoint
        }

        /// Answers requests until stopped or the context is shut down.
        private func serve(_ socket: ZMQSocket, _ poller: ZMQPoller) {
            let limits = ZMQReceiveLimits(maxFrames: 16, maxBytes: 64 << 10)
            while !service.stopRequested {
                do {
                    guard try poller.poll(timeout: .milliseconds(50)) > 0 else { continue }
                    while let frames = try socket.tryReceive(limits: limits) {
                        try socket.send(answer(frames))
                    }
                } catch {
                    if error.isTerminated { return }
                    // An oversized request was discarded whole; REP still owes it nothing, so go on.
                    if error.isMessageTooLarge { continue }
                    return
                }
            }
        }

        /// The reply frames to one request: version, request id, status code, text, user id, metadata.
        private func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
            let requestID = frames.count > 1 ? frames[1] : []
            func reply(_ verdict: ZAPVerdict) -> [[UInt8]] {
                [Array("1.0".utf8), requestID, Array(verdict.statusCode.utf8), Array(verdict.statusText.utf8), Array(verdict.userID.utf8), []]
            }
            // version, request id, domain, address, routing id, mechanism, credentials...
            guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
                return reply(ZAPVerdict(statusCode: "500", statusText: "malformed ZAP request", userID: ""))
            }
            let request = ZAPRequest(
                domain: String(decoding: frames[2], as: UTF8.self), address: String(decoding: frames[3], as: UTF8.self),
                mechanism: String(decoding: frames[5], as: UTF8.self), credentials: Array(frames.dropFirst(6)))
            guard let decide = deciders.withLock({ $0[request.domain] }) else {
                return reply(.deny("no authenticator for domain \"\(request.domain)\""))
            }
            return reply(decide(request))
        }
    }
}
