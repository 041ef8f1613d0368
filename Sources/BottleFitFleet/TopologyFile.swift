import BottleFitCore
import BottleFitMetricsServer
import BottleFitYAML
import Foundation
import Yams

/// A topology that has been read, checked, and turned into the typed plan of the processes
/// `bottlefit up` starts (each role's `FleetRole.Launch`, from which its argv is written).
public struct TopologyFile {
    /// Where it was read from (or, for a topology built in code, the name its messages use).
    public var path: String
    public var topology: Topology
    /// The folder relative model, source and ipc:// paths are taken from.
    public var base: URL
    /// Broker, workers, controller, cameras: the order they start in (and stop in reverse).
    public var roles: [FleetRole]

    /// Reads, decodes and checks the file; relative model, source and ipc:// paths are taken from its
    /// folder. With `checkFiles` false, model and key files need not exist (a plan to print).
    public init(contentsOf path: String, checkFiles: Bool = true) throws(TopologyError) {
        let text: String
        do { text = try FileBytes.text(of: path) } catch { throw TopologyError("\(error.description) (the topology)") }
        try self.init(text: text, path: path, base: URL(fileURLWithPath: path).deletingLastPathComponent(), checkFiles: checkFiles)
    }

    /// Checks a topology built in code (the default fleet) with the same checks a file goes through,
    /// and plans it; `path` names it in messages, relative paths are taken from `base`.
    public init(topology: Topology, path: String, base: URL, checkFiles: Bool = true) throws(TopologyError) {
        do { try topology.check() } catch let error as DecodingError {
            throw Self.describe(error, path: path, node: nil)
        } catch {
            throw TopologyError("\(path): \(error)")
        }
        self.path = path
        self.topology = topology
        self.base = base.standardizedFileURL
        roles = try Self.plan(topology, base: self.base, path: path, node: nil, checkFiles: checkFiles)
        if checkFiles { try Self.checkShapes(topology, base: self.base, path: path, node: nil) }
    }

    /// Decodes and checks `text` as if read from `path`, relative paths taken from `base`. With
    /// `checkFiles` false, model and source files need not exist yet (a dry run of the default
    /// fleet, whose models `up` creates on its first real run).
    public init(text: String, path: String, base: URL, checkFiles: Bool = true) throws(TopologyError) {
        self.path = path
        self.base = base.standardizedFileURL
        // Composing first gives libyaml's syntax errors with their line; decoding then checks the structure.
        let node: Node
        do {
            guard let root = try Yams.compose(yaml: text) else { throw TopologyError("\(path): the topology is empty") }
            if let d = YAMLDuplicateKeys.first(in: root) {
                throw TopologyError("\(path):\(d.line): duplicate key '\(d.key)' (first at line \(d.firstLine)); a key may appear once per mapping")
            }
            node = root
        } catch let error as TopologyError {
            throw error
        } catch {
            throw TopologyError("\(path):\(Self.withoutSnippet("\(error)")) (not valid YAML)")
        }
        do {
            topology = try YAMLDecoder().decode(Topology.self, from: text)
        } catch let error as DecodingError {
            throw Self.describe(error, path: path, node: node)
        } catch {
            throw TopologyError("\(path): \(error)")
        }
        roles = try Self.plan(topology, base: base.standardizedFileURL, path: path, node: node, checkFiles: checkFiles)
        if checkFiles { try Self.checkShapes(topology, base: base.standardizedFileURL, path: path, node: node) }
    }

    /// "FILE:LINE: key.path: reason" for a decoding error, the line found by walking the composed YAML.
    static func describe(_ error: DecodingError, path: String, node: Node?) -> TopologyError {
        let where_: [any CodingKey], reason: String
        switch error {
        case let .keyNotFound(key, context):
            where_ = context.codingPath + [key]
            reason = "missing required key \(key.stringValue)"
        case let .typeMismatch(type, context):
            where_ = context.codingPath
            // Yams' own text ("Expected to decode Mapping but found Node") says no more than the type does.
            let detail = context.debugDescription.hasPrefix("Expected to decode") ? "" : " (\(context.debugDescription))"
            reason = "expected \(describe(type))\(detail)"
        case let .valueNotFound(type, context):
            where_ = context.codingPath
            reason = "expected \(describe(type)), found nothing"
        case let .dataCorrupted(context):
            where_ = context.codingPath
            reason = context.debugDescription
        @unknown default:
            return TopologyError("\(path): \(error)")
        }
        return TopologyError(locate(where_, path: path, node: node) + reason)
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Double.Type: "a number"
        case is [String: TopologyModelFiles].Type: "a mapping of model names"
        default: "\(type)".contains("Mapping") ? "a mapping" : "\(type)".contains("Sequence") ? "a list" : "\(type)"
        }
    }

    /// "FILE:LINE: key.path: " (line omitted when the path leads nowhere in the file, e.g. a missing top-level key).
    static func locate(_ codingPath: [any CodingKey], path: String, node: Node?) -> String {
        let key = keyPath(codingPath)
        let line = node.flatMap { Self.line(of: codingPath, in: $0) }.map { ":\($0)" } ?? ""
        return "\(path)\(line): \(key.isEmpty ? "" : key + ": ")"
    }

    /// The line of the deepest node on `codingPath` that exists: the key's own line for a mapping entry.
    static func line(of codingPath: [any CodingKey], in root: Node) -> Int? {
        var current = root
        var line = root.mark?.line
        for key in codingPath {
            if let i = key.intValue, let sequence = current.sequence, i < sequence.count {
                current = sequence[i]
                line = current.mark?.line
            } else if let mapping = current.mapping, let entry = mapping.first(where: { $0.key.string == key.stringValue }) {
                current = entry.value
                line = entry.key.mark?.line
            } else {
                break
            }
        }
        return line
    }

    /// Yams' message on one line: "LINE:COLUMN: error: parser: CONTEXT PROBLEM", without the quoted source and caret.
    private static func withoutSnippet(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.count > 2 && lines.last?.hasSuffix("^") == true ? lines.dropLast(2) : lines[...]
        return kept.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    // MARK: - From topology to command lines

    static func plan(_ t: Topology, base: URL, path: String, node: Node?, checkFiles: Bool = true) throws(TopologyError) -> [FleetRole] {
        func file(_ value: String, _ origin: [any CodingKey], _ keys: [String]) throws(TopologyError) -> String {
            let url = value.hasPrefix("/") ? URL(fileURLWithPath: value) : base.appendingPathComponent(value)
            let resolved = url.standardizedFileURL.path
            guard !checkFiles || FileManager.default.fileExists(atPath: resolved) else {
                let part = keys.last ?? "full"
                let at = locate(origin + keys.map { AnyKey(stringValue: $0) }, path: path, node: node)
                throw TopologyError("""
                    \(at)no file \(resolved). Create the demo models with scripts/demo, or this one with: \
                    bottlefit model create bottlefit-resnet50 --bottleneck 12 --part \(part) --out \(resolved)
                    """)
            }
            return resolved
        }
        var curve: CurvePlan?
        if case .curve(let spec) = t.security {
            let plan = CurvePlan(spec, base: base)
            if checkFiles {
                let edgeCameras = t.cameras.filter { $0.mode != "local" }.map(\.name)
                try plan.check(names: ["broker"] + t.workers.map(\.name) + (t.controller == nil ? [] : ["controller"]) + edgeCameras, path: path)
            }
            curve = plan
        }
        let b = t.broker
        var roles = [FleetRole(name: "broker", launch: .broker(BrokerLaunch(
            frontend: Endpoint.resolving(b.frontend, base: base), backend: Endpoint.resolving(b.backend, base: base),
            stats: Endpoint.resolving(b.stats, base: base), queueCapacity: b.queueCapacity, metrics: b.metrics?.description,
            curve: curve?.broker(), logLevel: t.logLevel)))]
        for w in t.workers {
            var models: [WorkerLaunch.Model] = []
            for (model, files) in w.models.sorted(by: { $0.key < $1.key }) {
                let tail = try files.tail.map { v throws(TopologyError) in try file(v, w.origin, ["models", model, "tail"]) }
                let full = try files.full.map { v throws(TopologyError) in try file(v, w.origin, ["models", model, "full"]) }
                models.append(WorkerLaunch.Model(name: model, tail: tail, full: full))
            }
            roles.append(FleetRole(name: w.name, launch: .worker(WorkerLaunch(
                broker: Endpoint.connectable(b.backend, base: base), id: w.name, models: models, credit: w.credit,
                maxBatch: w.maxBatch, threads: w.threads, metrics: w.metrics?.description, curve: curve?.client(w.name),
                logLevel: t.logLevel))))
        }
        if let c = t.controller {
            roles.append(FleetRole(name: "controller", launch: .controller(ControllerLaunch(
                stats: Endpoint.connectable(c.stats, base: base), publish: Endpoint.resolving(c.publish, base: base),
                sloMs: c.sloMs, latencySloMs: c.latencySloMs, metrics: c.metrics?.description,
                curve: curve?.client("controller"), allowCameras: curve?.allowCameras, logLevel: t.logLevel))))
        }
        for cam in t.cameras {
            let edge = cam.mode != "local"
            var source = cam.source
            if source.hasPrefix("dir:") {
                let dir = String(source.dropFirst(4))
                source = "dir:" + (dir.hasPrefix("/") ? dir : base.appendingPathComponent(dir).standardizedFileURL.path)
            }
            roles.append(FleetRole(name: cam.name, launch: .camera(CameraLaunch(
                id: cam.name, mode: cam.mode, model: cam.model, broker: edge ? Endpoint.connectable(b.frontend, base: base) : nil,
                directives: t.controller.map { Endpoint.connectable($0.publish, base: base) },
                head: try cam.head.map { v throws(TopologyError) in try file(v, cam.origin, ["head"]) },
                full: try cam.full.map { v throws(TopologyError) in try file(v, cam.origin, ["full"]) },
                source: source, rate: cam.rate, sloMs: cam.sloMs, threads: cam.threads, metrics: cam.metrics?.description,
                curve: edge ? curve?.client(cam.name) : nil,
                controllerKey: edge && t.controller != nil ? curve?.controllerPublicKey : nil, logLevel: t.logLevel))))
        }
        return roles
    }
}

/// A topology that cannot be run, with the file, line and key path when known.
public struct TopologyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// ZeroMQ endpoints as processes on one machine share them.
public enum Endpoint {
    /// Why `endpoint` cannot be used by `up`, or nil. inproc:// is refused: it never crosses a process.
    public static func problem(_ endpoint: String) -> String? {
        if endpoint.hasPrefix("ipc://") {
            return endpoint.count > 6 ? nil : "ipc:// needs a path"
        }
        if endpoint.hasPrefix("inproc://") {
            return "inproc:// endpoints work only inside one process; use ipc:// or tcp://127.0.0.1:PORT"
        }
        guard endpoint.hasPrefix("tcp://") else {
            return "\(endpoint) is not a tcp://HOST:PORT or ipc://PATH endpoint"
        }
        let rest = endpoint.dropFirst(6)
        guard let colon = rest.lastIndex(of: ":"), colon != rest.startIndex,
              let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port)
        else { return "\(endpoint) needs a host and a port between 1 and 65535 (tcp://HOST:PORT)" }
        return nil
    }

    /// A relative ipc:// path is taken from the topology's folder, like the model files.
    public static func resolving(_ endpoint: String, base: URL) -> String {
        guard endpoint.hasPrefix("ipc://"), !endpoint.hasPrefix("ipc:///") else { return endpoint }
        return "ipc://" + base.appendingPathComponent(String(endpoint.dropFirst(6))).standardizedFileURL.path
    }

    /// The endpoint to connect to one that is bound: a wildcard host (bind on all interfaces) becomes loopback.
    public static func connectable(_ endpoint: String, base: URL) -> String {
        for wildcard in ["tcp://*:", "tcp://0.0.0.0:"] where endpoint.hasPrefix(wildcard) {
            return "tcp://127.0.0.1:" + endpoint.dropFirst(wildcard.count)
        }
        return resolving(endpoint, base: base)
    }
}
