import BottleFitCore
import BottleFitLoadgen
import BottleFitMetricsServer
import Foundation
import Yams

/// A topology file that has been read, checked, and turned into the processes `bottlefit up` starts.
struct TopologyFile {
    /// One process to start: its name (the log prefix) and the `bottlefit` arguments that run it.
    struct Role {
        enum Kind: String { case broker, worker, controller, camera }
        var name: String
        var kind: Kind
        var arguments: [String]
    }

    var path: String
    var topology: Topology
    /// Broker, workers, controller, cameras: the order they start in (and stop in reverse).
    var roles: [Role]

    /// Reads, decodes and checks the file; relative model, source and ipc:// paths are taken from its folder.
    init(contentsOf path: String) throws(TopologyError) {
        let text: String
        do { text = try FileBytes.text(of: path) } catch { throw TopologyError("\(error.description) (the topology)") }
        try self.init(text: text, path: path, base: URL(fileURLWithPath: path).deletingLastPathComponent())
    }

    /// Decodes and checks `text` as if read from `path`, relative paths taken from `base`. With
    /// `checkFiles` false, model and source files need not exist yet (a dry run of the default
    /// fleet, whose models `up` creates on its first real run).
    init(text: String, path: String, base: URL, checkFiles: Bool = true) throws(TopologyError) {
        self.path = path
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
    static func describe(_ error: DecodingError, path: String, node: Node) -> TopologyError {
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
    static func locate(_ codingPath: [any CodingKey], path: String, node: Node) -> String {
        let key = keyPath(codingPath)
        let line = line(of: codingPath, in: node).map { ":\($0)" } ?? ""
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

    static func plan(_ t: Topology, base: URL, path: String, node: Node, checkFiles: Bool = true) throws(TopologyError) -> [Role] {
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
        let level = ["--log-level", t.logLevel]
        var curve: CurvePlan?
        if case .curve(let spec) = t.security {
            let plan = CurvePlan(spec, base: base)
            let edgeCameras = t.cameras.filter { $0.mode != "local" }.map(\.name)
            try plan.check(names: ["broker"] + t.workers.map(\.name) + (t.controller == nil ? [] : ["controller"]) + edgeCameras, path: path)
            curve = plan
        }
        let b = t.broker
        var roles = [Role(
            name: "broker", kind: .broker,
            arguments: ["broker", "--frontend", Endpoint.resolving(b.frontend, base: base),
                        "--backend", Endpoint.resolving(b.backend, base: base), "--stats", Endpoint.resolving(b.stats, base: base)]
                + (b.queueCapacity.map { ["--queue-capacity", "\($0)"] } ?? []) + metrics(b.metrics) + (curve?.broker() ?? []) + level)]
        for w in t.workers {
            var args = ["worker", "--broker", Endpoint.connectable(b.backend, base: base), "--id", w.name]
            for (model, files) in w.models.sorted(by: { $0.key < $1.key }) {
                let tail = try files.tail.map { v throws(TopologyError) in try file(v, w.origin, ["models", model, "tail"]) } ?? ""
                let full = try files.full.map { v throws(TopologyError) in try file(v, w.origin, ["models", model, "full"]) }
                args += ["--model", "\(model)=\(tail)" + (full.map { ",\($0)" } ?? "")]
            }
            args += optional("--credit", w.credit) + optional("--max-batch", w.maxBatch) + optional("--threads", w.threads)
            args += metrics(w.metrics) + (curve?.worker(w.name) ?? [])
            roles.append(Role(name: w.name, kind: .worker, arguments: args + level))
        }
        if let c = t.controller {
            roles.append(Role(
                name: "controller", kind: .controller,
                arguments: ["controller", "--stats", Endpoint.connectable(c.stats, base: base),
                            "--publish", Endpoint.resolving(c.publish, base: base)] + optional("--slo-ms", c.sloMs)
                    + optional("--latency-slo-ms", c.latencySloMs) + metrics(c.metrics) + (curve?.controller() ?? []) + level))
        }
        for cam in t.cameras {
            var args = ["device", "--id", cam.name, "--mode", cam.mode, "--model", cam.model]
            if cam.mode != "local" { args += ["--broker", Endpoint.connectable(b.frontend, base: base)] }
            if let c = t.controller { args += ["--directives", Endpoint.connectable(c.publish, base: base)] }
            if let h = cam.head { args += ["--head", try file(h, cam.origin, ["head"])] }
            if let f = cam.full { args += ["--full", try file(f, cam.origin, ["full"])] }
            var source = cam.source
            if source.hasPrefix("dir:") {
                let dir = String(source.dropFirst(4))
                source = "dir:" + (dir.hasPrefix("/") ? dir : base.appendingPathComponent(dir).standardizedFileURL.path)
            }
            args += ["--source", source] + (cam.rate.map { ["--rate", "\($0)"] } ?? [])
            args += optional("--slo-ms", cam.sloMs) + optional("--threads", cam.threads) + metrics(cam.metrics)
            if cam.mode != "local", let curve { args += curve.camera(cam.name, directives: t.controller != nil) }
            roles.append(Role(name: cam.name, kind: .camera, arguments: args + level))
        }
        return roles
    }

    private static func optional(_ flag: String, _ value: Int?) -> [String] { value.map { [flag, "\($0)"] } ?? [] }
    private static func metrics(_ address: MetricsAddress?) -> [String] { address.map { ["--metrics", "\($0)"] } ?? [] }
}

/// A topology that cannot be run, with the file, line and key path when known.
struct TopologyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// ZeroMQ endpoints as processes on one machine share them.
enum Endpoint {
    /// Why `endpoint` cannot be used by `up`, or nil. inproc:// is refused: it never crosses a process.
    static func problem(_ endpoint: String) -> String? {
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
    static func resolving(_ endpoint: String, base: URL) -> String {
        guard endpoint.hasPrefix("ipc://"), !endpoint.hasPrefix("ipc:///") else { return endpoint }
        return "ipc://" + base.appendingPathComponent(String(endpoint.dropFirst(6))).standardizedFileURL.path
    }

    /// The endpoint to connect to one that is bound: a wildcard host (bind on all interfaces) becomes loopback.
    static func connectable(_ endpoint: String, base: URL) -> String {
        for wildcard in ["tcp://*:", "tcp://0.0.0.0:"] where endpoint.hasPrefix(wildcard) {
            return "tcp://127.0.0.1:" + endpoint.dropFirst(wildcard.count)
        }
        return resolving(endpoint, base: base)
    }
}
