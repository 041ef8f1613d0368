import BottleFitMetrics
import Logging
import Synchronization
import ZeroMQ

/// The allow-list of one server socket ("door"): which client public keys it lets in.
public struct CurveDoor: Sendable, Equatable {
    /// What the socket is for, e.g. `cameras` or `workers`: the `socket` label of the metrics.
    public var name: String
    /// The allow-list file: one Z85 public key per line, `#` comments (docs/security.md).
    public var allowListPath: String

    public init(name: String, allowListPath: String) {
        self.name = name
        self.allowListPath = allowListPath
    }
}

/// Counts of the authenticator's decisions, per door.
public struct CurveAuthCounters: Sendable, Equatable {
    /// Why a client was refused.
    public enum RefusalReason: String, CaseIterable, Sendable {
        /// A CURVE client whose public key is not on the door's allow-list.
        case unknownKey = "unknown_key"
        /// A client that reached the handler with another mechanism than CURVE (libzmq normally
        /// refuses those in the handshake already).
        case notCurve = "not_curve"
    }

    public var accepted: [String: Int] = [:]
    public var refused: [String: [RefusalReason: Int]] = [:]
    /// Keys on each door's allow-list now.
    public var allowListKeys: [String: Int] = [:]
    public var reloads = 0
    public var failedReloads = 0

    public init() {}

    public func refused(_ door: String, _ reason: RefusalReason) -> Int { refused[door]?[reason] ?? 0 }
    public func totalRefused(_ door: String) -> Int { refused[door]?.values.reduce(0, +) ?? 0 }
}

/// The ZAP side of a CURVE server (broker, controller): for each of its server sockets an
/// allow-list of client public keys, read from files and re-read on `reload()` (SIGHUP).
/// Clients not on the list are refused before any of their messages reach the socket; each
/// refusal is counted and logged (at most one line per door per second, with the number of
/// refusals not logged since).
public final class CurveAuthenticator: Sendable {
    public let doors: [CurveDoor]
    private let logger: Logger
    private let state: Mutex<State>
    private let registrations = Mutex<[String: ZAPRegistration]>([:])

    private struct State {
        var allowed: [String: Set<[UInt8]>]
        var counters = CurveAuthCounters()
        var lastLogged: [String: ContinuousClock.Instant] = [:]
        var unlogged: [String: Int] = [:]
    }

    /// Reads every door's allow-list; throws the first problem (file and line), or that the
    /// linked libzmq lacks CURVE.
    public init(doors: [CurveDoor], logger: Logger) throws(SecurityError) {
        try CurveSupport.require()
        self.doors = doors
        self.logger = logger
        let allowed = try Self.read(doors)
        var counters = CurveAuthCounters()
        for door in doors {
            counters.allowListKeys[door.name] = allowed[door.name]?.count ?? 0
            counters.accepted[door.name] = 0
        }
        state = Mutex(State(allowed: allowed, counters: counters))
    }

    /// Reads every door's allow-list without starting anything: a bad line is found before a socket binds.
    public static func check(_ doors: [CurveDoor]) throws(SecurityError) {
        _ = try read(doors)
    }

    private static func read(_ doors: [CurveDoor]) throws(SecurityError) -> [String: Set<[UInt8]>] {
        var allowed: [String: Set<[UInt8]>] = [:]
        for door in doors {
            let entries = try KeyListFile.read(door.allowListPath, what: "allow-list")
            allowed[door.name] = Set(entries.compactMap { Z85.decodeKey($0.key) })
        }
        return allowed
    }

    /// Registers one ZAP domain per door with `context`'s handler; returns the domain of each
    /// door, to set on its socket (`ZMQSocket.makeCurveServer`). Call before binding.
    public func start(in context: ZMQContext) throws(ZMQError) -> [String: String] {
        var domains: [String: String] = [:]
        for door in doors {
            let name = door.name
            let registration = try ZAPHandler.register(in: context, name: "bottlefit-\(name)") { [self] request in
                decide(name, request)
            }
            registrations.withLock { $0[name] = registration }
            domains[name] = registration.domain
        }
        return domains
    }

    /// Stops answering (every later handshake on these doors is refused). Idempotent.
    public func stop() {
        let all = registrations.withLock { r in defer { r = [:] }; return Array(r.values) }
        for registration in all { registration.cancel() }
    }

    /// Re-reads every allow-list. On any problem the lists in force stay as they were, and the
    /// problem is logged and returned. New handshakes see the new lists at once; connections
    /// made before keep their session (docs/security.md, "Revoking a key").
    @discardableResult
    public func reload() -> SecurityError? {
        do {
            let allowed = try Self.read(doors)
            let counts = state.withLock { s in
                s.allowed = allowed
                s.counters.reloads += 1
                for door in doors { s.counters.allowListKeys[door.name] = allowed[door.name]?.count ?? 0 }
                return s.counters.allowListKeys
            }
            logger.notice("allow-lists reloaded", metadata: [
                "keys": "\(counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
            return nil
        } catch {
            state.withLock { $0.counters.failedReloads += 1 }
            logger.error("allow-list reload failed; the lists in force stay as they were", metadata: ["error": "\(error)"])
            return error
        }
    }

    public var counters: CurveAuthCounters { state.withLock { $0.counters } }

    /// The decision for one handshake on door `name`.
    func decide(_ name: String, _ request: ZAPRequest) -> ZAPVerdict {
        guard request.mechanism == "CURVE", let key = request.credentials.first, key.count == 32 else {
            refuse(name, .notCurve, key: "-", address: request.address)
            return .deny("CURVE required")
        }
        let allowed = state.withLock { s in
            let ok = s.allowed[name]?.contains(key) == true
            if ok { s.counters.accepted[name, default: 0] += 1 }
            return ok
        }
        let text = Z85.encodeKey(key) ?? "?"
        if allowed { return .allow(userID: text) }
        refuse(name, .unknownKey, key: text, address: request.address)
        return .deny("key not allowed")
    }

    private func refuse(_ door: String, _ reason: CurveAuthCounters.RefusalReason, key: String, address: String) {
        let now = ContinuousClock.now
        let unlogged: Int? = state.withLock { s in
            s.counters.refused[door, default: [:]][reason, default: 0] += 1
            if let last = s.lastLogged[door], now - last < .seconds(1) {
                s.unlogged[door, default: 0] += 1
                return nil
            }
            s.lastLogged[door] = now
            defer { s.unlogged[door] = 0 }
            return s.unlogged[door] ?? 0
        }
        guard let unlogged else { return }
        let path = doors.first { $0.name == door }?.allowListPath ?? "?"
        logger.warning("refused a client", metadata: [
            "socket": "\(door)", "reason": "\(reason.rawValue)", "key": "\(key)", "address": "\(address)",
            "allow_list": "\(path)", "refused_unlogged": "\(unlogged)",
        ])
    }

    /// `PREFIX_auth_accepted_total{socket}`, `PREFIX_auth_refused_total{socket,reason}`,
    /// `PREFIX_allow_list_keys{socket}` and `PREFIX_allow_list_reloads_total{result}`.
    public func metricFamilies(prefix: String) -> [MetricFamily] {
        let c = counters
        let names = doors.map(\.name)
        return [
            .counter("\(prefix)_auth_accepted_total", "CURVE clients let in (their key is on the socket's allow-list).",
                     names.map { ([("socket", $0)], c.accepted[$0] ?? 0) }),
            .counter("\(prefix)_auth_refused_total", "CURVE handshakes refused, by socket and reason.",
                     names.flatMap { n in CurveAuthCounters.RefusalReason.allCases.map { ([("socket", n), ("reason", $0.rawValue)], c.refused(n, $0)) } }),
            .gauge("\(prefix)_allow_list_keys", "Public keys on each socket's allow-list now.",
                   names.map { ([("socket", $0)], Double(c.allowListKeys[$0] ?? 0)) }),
            .counter("\(prefix)_allow_list_reloads_total", "Allow-list reloads (SIGHUP), by result.",
                     [([("result", "ok")], c.reloads), ([("result", "failed")], c.failedReloads)]),
        ]
    }
}

/// Whether CURVE can be used here.
public enum CurveSupport {
    /// Throws when the linked libzmq was built without CURVE (`zmq_has("curve")`).
    public static func require() throws(SecurityError) {
        guard ZMQContext.has("curve") else {
            throw SecurityError("the linked libzmq was built without CURVE (zmq_has(\"curve\") is false); install a libzmq with libsodium or its own TweetNaCl")
        }
    }
}

/// The CURVE settings of a client socket: its own key pair and the public key of the server.
public struct CurveClient: Sendable, Equatable {
    public var keys: ZMQCurveKeyPair
    public var serverKey: String

    public init(keys: ZMQCurveKeyPair, serverKey: String) {
        self.keys = keys
        self.serverKey = serverKey
    }

    /// Sets the CURVE client options on `socket`; call before `connect`.
    public func apply(to socket: ZMQSocket) throws(ZMQError) {
        try socket.makeCurveClient(keys, serverKey: serverKey)
    }

    /// Reads the client's secret key file and the server's public key file.
    public init(secretKeyFile: String, serverKeyFile: String) throws(SecurityError) {
        try CurveSupport.require()
        keys = try CurveKeyFile.readSecret(secretKeyFile)
        serverKey = try CurveKeyFile.readPublic(serverKeyFile)
    }
}
