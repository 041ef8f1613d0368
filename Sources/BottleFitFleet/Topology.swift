import BottleFitMetricsServer
import Foundation
import Yams

/// A one-machine fleet as `bottlefit up` reads it from YAML: broker, tail workers, controller, cameras.
///
/// Every mapping rejects keys it does not know and checks its values while decoding, so each
/// problem is a `DecodingError` whose coding path `TopologyFile` turns into a key path and a line.
/// File paths stay as written here; `TopologyFile` resolves them against the topology's folder.
public struct Topology: Decodable {
    public var logLevel: String
    public var broker: BrokerSpec
    public var workers: [WorkerSpec]
    public var controller: ControllerSpec?
    public var cameras: [CameraSpec]
    /// nil: not written (plain text if every endpoint is local, refused otherwise).
    public var security: SecuritySpec?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case logLevel = "log_level", broker, workers, controller, cameras, security
    }

    public init(logLevel: String = "info", broker: BrokerSpec, workers: [WorkerSpec], controller: ControllerSpec? = nil,
                cameras: [CameraSpec], security: SecuritySpec? = nil) {
        self.logLevel = logLevel
        self.broker = broker
        self.workers = workers
        self.controller = controller
        self.cameras = cameras
        self.security = security
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? "info"
        broker = try c.decode(BrokerSpec.self, forKey: .broker)
        workers = try c.decodeIfPresent(Group<WorkerSpec>.self, forKey: .workers)?.members ?? []
        controller = try c.decodeIfPresent(ControllerSpec.self, forKey: .controller)
        cameras = try c.decode(Group<CameraSpec>.self, forKey: .cameras).members
        security = try c.decodeIfPresent(SecuritySpec.self, forKey: .security)
        try check(at: c.codingPath)
    }

    /// The checks that span several parts (names, ports, which worker serves which camera), as
    /// `DecodingError`s whose coding path (under `path`) locates the problem in a file. A topology
    /// built in code (the default fleet) passes through the same checks.
    public func check(at path: [any CodingKey] = []) throws {
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        try require(levels.contains(logLevel), path + [CodingKeys.logLevel], "must be one of \(levels.joined(separator: ", "))")
        let endpoints = [broker.frontend, broker.backend, broker.stats] + [controller?.stats, controller?.publish].compactMap { $0 }
        for (i, endpoint) in endpoints.enumerated() {
            if let problem = Endpoint.problem(endpoint) { throw semantic(path + [i < 3 ? CodingKeys.broker : CodingKeys.controller], problem) }
        }
        let open = endpoints.filter { !SecuritySpec.isLocal($0) }
        if security == nil, !open.isEmpty {
            throw semantic(path + [CodingKeys.security], """
                \(open.joined(separator: ", ")) can be reached from other machines, where CURVE is the default: add \
                `security: {keys: DIR}` with keys from `bottlefit keys generate` (docs/security.md), or `security: none` to run in plain text
                """)
        }
        let names = ["broker"] + workers.map(\.name) + (controller == nil ? [] : ["controller"]) + cameras.map(\.name)
        if let dup = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw semantic(path, "the name \(dup) is used twice")
        }
        // Each fixed metrics port once (port 0 is a fresh ephemeral port for every process).
        let fixed = ([broker.metrics] + workers.map(\.metrics) + [controller?.metrics] + cameras.map(\.metrics))
            .compactMap { $0 }.filter { $0.port != 0 }.map(\.port)
        if let dup = Dictionary(grouping: fixed, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw semantic(path, "metrics port \(dup) is used by two processes (with count, a template's port is the first of consecutive ports)")
        }
        // A camera that sends to the edge needs a worker that can answer it, or every frame falls back.
        for (i, camera) in cameras.enumerated() where camera.mode != "local" {
            let served = workers.contains { w in
                guard let m = w.models[camera.model] else { return false }
                return camera.mode == "split" ? m.tail != nil : m.full != nil
            }
            let part = camera.mode == "split" ? "tail" : "full model"
            try require(served, path + [CodingKeys.cameras, IndexKey(i)],
                        "\(camera.name) sends \(camera.mode) frames of model \(camera.model) but no worker serves its \(part)")
        }
    }
}

/// The broker: three endpoints it binds and how many frames it queues.
public struct BrokerSpec: Decodable {
    public var frontend: String
    public var backend: String
    public var stats: String
    public var queueCapacity: Int?
    public var metrics: MetricsAddress?

    enum CodingKeys: String, CodingKey, CaseIterable { case frontend, backend, stats, queueCapacity = "queue_capacity", metrics }

    public init(frontend: String, backend: String, stats: String, queueCapacity: Int? = nil, metrics: MetricsAddress? = nil) {
        self.frontend = frontend
        self.backend = backend
        self.stats = stats
        self.queueCapacity = queueCapacity
        self.metrics = metrics
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        frontend = try decodeEndpoint(c, .frontend)
        backend = try decodeEndpoint(c, .backend)
        stats = try decodeEndpoint(c, .stats)
        queueCapacity = try c.decodeIfPresent(Int.self, forKey: .queueCapacity)
        if let q = queueCapacity { try require((1...1_000_000).contains(q), c.codingPath + [CodingKeys.queueCapacity], "must be 1...1000000, not \(q)") }
        metrics = try decodeMetrics(c, .metrics)
    }
}

/// The controller: the broker's stats endpoint it reads, the endpoint it publishes directives on.
public struct ControllerSpec: Decodable {
    public var stats: String
    public var publish: String
    public var sloMs: Int?
    public var latencySloMs: Int?
    public var metrics: MetricsAddress?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case stats, publish, sloMs = "slo_ms", latencySloMs = "latency_slo_ms", metrics
    }

    public init(stats: String, publish: String, sloMs: Int? = nil, latencySloMs: Int? = nil, metrics: MetricsAddress? = nil) {
        self.stats = stats
        self.publish = publish
        self.sloMs = sloMs
        self.latencySloMs = latencySloMs
        self.metrics = metrics
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stats = try decodeEndpoint(c, .stats)
        publish = try decodeEndpoint(c, .publish)
        sloMs = try decodePositive(c, .sloMs, max: 86_400_000)
        latencySloMs = try decodePositive(c, .latencySloMs, max: 86_400_000)
        metrics = try decodeMetrics(c, .metrics)
    }
}

/// The ONNX files a worker serves for one model name: the tail (split frames), the full model (offload frames).
public struct TopologyModelFiles: Decodable {
    public var tail: String?
    public var full: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case tail, full }

    public init(tail: String?, full: String?) {
        self.tail = tail
        self.full = full
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tail = try c.decodeIfPresent(String.self, forKey: .tail)
        full = try c.decodeIfPresent(String.self, forKey: .full)
        try require(tail != nil || full != nil, c.codingPath, "give tail, full or both")
    }
}

/// One tail worker (or, with `count`, the template of several).
public struct WorkerSpec: GroupMember {
    public init(from decoder: any Decoder) throws { try self.init(from: decoder, extraKeys: []) }

    public var name: String
    public var models: [String: TopologyModelFiles]
    public var credit: Int?
    public var maxBatch: Int?
    public var threads: Int?
    public var metrics: MetricsAddress?
    /// Where the worker was written ("workers[1]"), for messages about its files.
    var origin: [any CodingKey]

    enum CodingKeys: String, CodingKey, CaseIterable { case name, models, credit, maxBatch = "max_batch", threads, metrics }
    static let defaultName = "worker"

    public init(name: String, models: [String: TopologyModelFiles], credit: Int? = nil, maxBatch: Int? = nil, threads: Int? = nil,
                metrics: MetricsAddress? = nil) {
        self.name = name
        self.models = models
        self.credit = credit
        self.maxBatch = maxBatch
        self.threads = threads
        self.metrics = metrics
        origin = []
    }

    init(from decoder: any Decoder, extraKeys: [String]) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue) + extraKeys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? Self.defaultName
        models = try c.decode([String: TopologyModelFiles].self, forKey: .models)
        try require(!models.isEmpty, c.codingPath + [CodingKeys.models], "name at least one model")
        credit = try decodePositive(c, .credit, max: 65_536)
        maxBatch = try decodePositive(c, .maxBatch, max: 65_536)
        threads = try decodePositive(c, .threads, max: 256)
        metrics = try decodeMetrics(c, .metrics)
        origin = decoder.codingPath
    }
}

/// One camera (or, with `count`, the template of several).
public struct CameraSpec: GroupMember {
    public init(from decoder: any Decoder) throws { try self.init(from: decoder, extraKeys: []) }

    public var name: String
    public var mode: String
    public var model: String
    public var head: String?
    public var full: String?
    public var source: String
    public var rate: Double?
    public var sloMs: Int?
    public var threads: Int?
    public var metrics: MetricsAddress?
    /// Where the camera was written ("cameras"), for messages about its files.
    var origin: [any CodingKey]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, mode, model, head, full, source, rate, sloMs = "slo_ms", threads, metrics
    }
    static let defaultName = "camera"

    public init(name: String, mode: String = "split", model: String, head: String? = nil, full: String? = nil, source: String = "synthetic",
                rate: Double? = nil, sloMs: Int? = nil, threads: Int? = nil, metrics: MetricsAddress? = nil) {
        self.name = name
        self.mode = mode
        self.model = model
        self.head = head
        self.full = full
        self.source = source
        self.rate = rate
        self.sloMs = sloMs
        self.threads = threads
        self.metrics = metrics
        origin = []
    }

    init(from decoder: any Decoder, extraKeys: [String]) throws {
        try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue) + extraKeys)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? Self.defaultName
        mode = try c.decodeIfPresent(String.self, forKey: .mode) ?? "split"
        try require(["split", "local", "offload"].contains(mode), c.codingPath + [CodingKeys.mode],
                    "mode must be split, local or offload, not \(mode)")
        model = try c.decode(String.self, forKey: .model)
        head = try c.decodeIfPresent(String.self, forKey: .head)
        full = try c.decodeIfPresent(String.self, forKey: .full)
        if mode == "split" { try require(head != nil, c.codingPath, "split mode needs head (the head ONNX file)") }
        if mode == "local" { try require(full != nil, c.codingPath, "local mode needs full (the full-model ONNX file)") }
        source = try c.decodeIfPresent(String.self, forKey: .source) ?? "synthetic"
        try require(source == "synthetic" || source == "fashion-mnist" || (source.hasPrefix("dir:") && source.count > 4),
                    c.codingPath + [CodingKeys.source], "source must be synthetic, fashion-mnist or dir:PATH, not \(source)")
        rate = try c.decodeIfPresent(Double.self, forKey: .rate)
        if let r = rate { try require(r >= 0.001 && r <= 100_000, c.codingPath + [CodingKeys.rate], "must be 0.001...100000 frames per second, not \(r)") }
        sloMs = try decodePositive(c, .sloMs, max: 86_400_000)
        threads = try decodePositive(c, .threads, max: 256)
        metrics = try decodeMetrics(c, .metrics)
        origin = decoder.codingPath
    }
}

/// A worker or camera: decodable with extra keys allowed (a group's `count`) and named by default.
protocol GroupMember: Decodable {
    var name: String { get set }
    /// Its metrics endpoint; with `count`, member i (from 0) of a template with a fixed port gets port + i.
    var metrics: MetricsAddress? { get set }
    static var defaultName: String { get }
    init(from decoder: any Decoder, extraKeys: [String]) throws
}


/// Workers or cameras written either as a list (one entry each) or as one mapping with `count`.
struct Group<Member: GroupMember>: Decodable {
    public var members: [Member]

    private enum CountKey: String, CodingKey { case count }

    init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            members = []
            while !list.isAtEnd {
                var m = try list.decode(Member.self)
                if m.name == Member.defaultName { m.name = "\(Member.defaultName)-\(members.count + 1)" }
                members.append(m)
            }
            return
        }
        let c = try decoder.container(keyedBy: CountKey.self)
        let count = try c.decodeIfPresent(Int.self, forKey: .count) ?? 1
        try require((0...4096).contains(count), c.codingPath + [CountKey.count], "count must be 0...4096, not \(count)")
        let template = try Member(from: decoder, extraKeys: [CountKey.count.rawValue])
        if let m = template.metrics, m.port != 0 {
            try require(Int(m.port) + count - 1 <= 65535, c.codingPath + [AnyKey(stringValue: "metrics")],
                        "\(count) consecutive metrics ports from \(m.port) go past 65535")
        }
        members = (0..<count).map { i in
            var m = template
            m.name = "\(template.name)-\(i + 1)"
            if var address = m.metrics, address.port != 0 {
                address.port += UInt16(i)
                m.metrics = address
            }
            return m
        }
    }
}

// MARK: - Checks that become DecodingErrors, so they carry a coding path

/// A coding key for any string, to list the keys a mapping actually has.
struct AnyKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A position in a list, for coding paths built by hand.
struct IndexKey: CodingKey {
    public var intValue: Int?
    public var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// Throws for the first key of the mapping `decoder` reads that is not in `allowed`: a typo must not pass silently.
func rejectUnknownKeys(_ decoder: any Decoder, allowed: [String]) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for key in c.allKeys where !allowed.contains(key.stringValue) {
        throw semantic(decoder.codingPath + [key], "unknown key \(key.stringValue) (expected one of: \(allowed.joined(separator: ", ")))")
    }
}

func semantic(_ path: [any CodingKey], _ reason: String) -> DecodingError {
    DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: reason))
}

func require(_ condition: Bool, _ path: [any CodingKey], _ reason: String) throws {
    if !condition { throw semantic(path, reason) }
}

/// Decodes an optional count in `1...max` (the range the role's own option accepts).
func decodePositive<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K, max: Int) throws -> Int? {
    let value = try c.decodeIfPresent(Int.self, forKey: key)
    if let v = value { try require((1...max).contains(v), c.codingPath + [key], "must be 1...\(max), not \(v)") }
    return value
}

/// Decodes an optional `metrics: HOST:PORT` (port 0: a free port, logged by the process).
func decodeMetrics<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> MetricsAddress? {
    guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
    if let problem = MetricsAddress.problem(text) { throw semantic(c.codingPath + [key], problem) }
    return MetricsAddress(text)
}

/// Decodes a ZeroMQ endpoint that processes on one machine can share: tcp://HOST:PORT or ipc://PATH.
func decodeEndpoint<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> String {
    let endpoint = try c.decode(String.self, forKey: key)
    if let problem = Endpoint.problem(endpoint) { throw semantic(c.codingPath + [key], problem) }
    return endpoint
}

/// "workers[1].models.bf12": a coding path as a user reads it.
func keyPath(_ path: [any CodingKey]) -> String {
    var out = ""
    for key in path {
        if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
    }
    return out
}
