import BottleFitFleet
import BottleFitSecurity
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

@testable import bottlefit

/// Every child's argv, as a topology with a non-default value for every key plans it, parsed back by
/// the role command the child runs: a renamed or dropped option fails here, not in a running fleet.
@Suite(.blocking) struct RoleArgumentTests {
    /// A folder with CURVE keys for every process of `Self.yaml` and its allow-lists, and the topology.
    struct Setup {
        let dir: URL
        let file: TopologyFile

        init() throws {
            dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bf-fleet-\(UUID().uuidString.prefix(8))")
            let keys = dir.appendingPathComponent("keys")
            try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
            var publics: [String: String] = [:]
            for name in ["broker", "controller", "worker-1", "worker-2", "cam-a", "cam-b"] {
                let pair = try ZMQCurveKeyPair.generate()
                _ = try CurveKeyFile.create(pair, name: name, directory: keys.path)
                publics[name] = pair.publicKey
            }
            try (publics["cam-a"]! + "\n" + publics["cam-b"]! + "\n").write(to: keys.appendingPathComponent("cameras.allow"), atomically: true, encoding: .utf8)
            try (publics["worker-1"]! + "\n" + publics["worker-2"]! + "\n").write(to: keys.appendingPathComponent("workers.allow"), atomically: true, encoding: .utf8)
            let path = dir.appendingPathComponent("fleet.yaml").path
            try RoleArgumentTests.yaml.write(toFile: path, atomically: true, encoding: .utf8)
            file = try TopologyFile(contentsOf: path)
        }
    }

    /// The committed Fashion-MNIST model (real files: the roles check that they exist).
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("assets/fashion-mnist/bottlefit-c2").path

    /// Every key of every role set, none to its default.
    static let yaml = """
        log_level: debug
        broker:
          frontend: tcp://127.0.0.1:6655
          backend: tcp://127.0.0.1:6656
          stats: tcp://127.0.0.1:6657
          queue_capacity: 77
          metrics: 127.0.0.1:9600
        workers:
          count: 2
          models:
            fm:
              tail: \(model)/tail.onnx
              full: \(model)/full.onnx
            fm-tail-only:
              tail: \(model)/tail.onnx
          credit: 5
          max_batch: 3
          threads: 2
          metrics: 127.0.0.1:9601
        controller:
          stats: tcp://127.0.0.1:6657
          publish: tcp://127.0.0.1:6658
          slo_ms: 41
          latency_slo_ms: 333
          metrics: 127.0.0.1:9610
        cameras:
          - name: cam-a
            mode: offload
            model: fm
            head: \(model)/head.onnx
            full: \(model)/full.onnx
            source: dir:frames
            rate: 7.5
            slo_ms: 123
            threads: 3
            metrics: 127.0.0.1:9620
          - name: cam-b
            model: fm
            head: \(model)/head.onnx
            full: \(model)/full.onnx
        security:
          keys: keys
        """

    /// Fails for every optional field of `value` left nil: each must be set, so its flag is written and read back.
    func expectEveryFieldSet(_ value: Any, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for child in Mirror(reflecting: value).children {
            let m = Mirror(reflecting: child.value)
            if m.displayStyle == .optional {
                #expect(!m.children.isEmpty, "\(what).\(child.label ?? "?") is nil: the test leaves its option unchecked",
                        sourceLocation: sourceLocation)
                if let inner = m.children.first?.value { expectEveryFieldSet(inner, "\(what).\(child.label ?? "?")", sourceLocation: sourceLocation) }
            } else if m.displayStyle == .struct {
                expectEveryFieldSet(child.value, "\(what).\(child.label ?? "?")", sourceLocation: sourceLocation)
            }
        }
    }

    func clientCurve(_ key: String?, _ brokerKey: String?) -> ClientCurve? {
        guard let key, let brokerKey else { return nil }
        return ClientCurve(key: key, brokerKey: brokerKey)
    }

    @Test func everyRolesArgvParsesBackToItsTypedConfiguration() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        let kinds = setup.file.roles.map(\.kind)
        #expect(kinds == [.broker, .worker, .worker, .controller, .camera, .camera])
        for role in setup.file.roles {
            let argv = role.arguments
            let rest = Array(argv.dropFirst())
            switch role.launch {
            case .broker(let launch):
                #expect(argv.first == BrokerCommand.configuration.commandName)
                expectEveryFieldSet(launch, role.name)
                let c = try BrokerCommand.parse(rest)
                let parsed = BrokerLaunch(
                    frontend: c.frontend, backend: c.backend, stats: c.stats, queueCapacity: c.queueCapacity,
                    metrics: c.metricsOptions.metrics,
                    curve: c.curveKey.map { BrokerLaunch.Curve(key: $0, allowCameras: c.allowCameras ?? "", allowWorkers: c.allowWorkers ?? "", allowStats: c.allowStats ?? "") },
                    logLevel: c.logLevel)
                #expect(parsed == launch, "\(argv)")
            case .worker(let launch):
                #expect(argv.first == WorkerCommand.configuration.commandName)
                expectEveryFieldSet(launch, role.name)
                let c = try WorkerCommand.parse(rest)
                let models = try c.models().sorted { $0.key < $1.key }.map { name, files in
                    WorkerLaunch.Model(name: name, tail: files.tail?.path, full: files.full?.path)
                }
                let parsed = WorkerLaunch(
                    broker: c.broker, id: c.id, models: models, credit: c.credit, maxBatch: c.maxBatch, threads: c.threadOptions.threads,
                    metrics: c.metricsOptions.metrics, curve: clientCurve(c.curveKey, c.brokerKey), logLevel: c.logLevel)
                #expect(parsed == launch, "\(argv)")
            case .controller(let launch):
                #expect(argv.first == ControllerCommand.configuration.commandName)
                expectEveryFieldSet(launch, role.name)
                let c = try ControllerCommand.parse(rest)
                let parsed = ControllerLaunch(
                    stats: c.stats, publish: c.publish, sloMs: Int(c.sloMs), latencySloMs: Int(c.latencySloMs),
                    metrics: c.metricsOptions.metrics, curve: clientCurve(c.curveKey, c.brokerKey), allowCameras: c.allowCameras,
                    logLevel: c.logLevel)
                #expect(parsed == launch, "\(argv)")
            case .camera(let launch):
                #expect(argv.first == DeviceCommand.configuration.commandName)
                // cam-b leaves its optional keys out (it checks the defaults); cam-a sets them all.
                if role.name == "cam-a" { expectEveryFieldSet(launch, role.name) }
                let c = try DeviceCommand.parse(rest)
                let parsed = CameraLaunch(
                    id: c.id, mode: c.mode, model: c.model, broker: c.broker, directives: c.directives, head: c.head, full: c.full,
                    source: c.source, rate: c.rate, sloMs: launch.sloMs == nil ? nil : Int(c.sloMs),
                    threads: launch.threads == nil ? nil : c.threadOptions.threads, metrics: c.metricsOptions.metrics,
                    curve: clientCurve(c.curveKey, c.brokerKey), controllerKey: c.controllerKey, logLevel: c.logLevel)
                #expect(parsed == launch, "\(argv)")
            }
        }
    }

    /// The plan's values are the topology's, resolved: count groups numbered, metrics ports consecutive,
    /// relative paths from the topology's folder, keys per process name.
    @Test func thePlanCarriesTheTopologysValues() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        guard case .worker(let w2) = setup.file.roles[2].launch, case .camera(let cam) = setup.file.roles[4].launch else {
            Issue.record("unexpected plan \(setup.file.roles.map(\.name))")
            return
        }
        #expect(w2.id == "worker-2" && w2.metrics == "127.0.0.1:9602" && w2.credit == 5 && w2.maxBatch == 3 && w2.threads == 2)
        #expect(w2.models.map(\.argument) == ["fm=\(Self.model)/tail.onnx,\(Self.model)/full.onnx", "fm-tail-only=\(Self.model)/tail.onnx"])
        let keys = setup.dir.standardizedFileURL.appendingPathComponent("keys").path
        #expect(w2.curve == ClientCurve(key: "\(keys)/worker-2.key", brokerKey: "\(keys)/broker.pub"))
        #expect(cam.source == "dir:\(setup.dir.standardizedFileURL.path)/frames" && cam.rate == 7.5)
        #expect(cam.broker == "tcp://127.0.0.1:6655" && cam.directives == "tcp://127.0.0.1:6658")
        #expect(cam.controllerKey == "\(keys)/controller.pub")
    }

    /// A worker added to a running fleet copies the last one under its new name, with a free metrics port.
    @Test func anAddedWorkerCopiesTheLastOne() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(at: setup.dir) }
        // worker-3 has no key pair yet: refused with the command that makes one.
        #expect(throws: TopologyError.self) { try setup.file.addedWorker(named: "worker-3") }
        do { _ = try setup.file.addedWorker(named: "worker-3") } catch {
            #expect(error.description.contains("bottlefit keys generate --out"), "\(error)")
        }
        _ = try CurveKeyFile.create(try ZMQCurveKeyPair.generate(), name: "worker-3", directory: setup.dir.appendingPathComponent("keys").path)
        let role = try setup.file.addedWorker(named: "worker-3")
        guard case .worker(let added) = role.launch, case .worker(let last) = setup.file.roles[2].launch else {
            Issue.record("not a worker: \(role)")
            return
        }
        #expect(role.name == "worker-3" && added.id == "worker-3")
        #expect(added.metrics == "127.0.0.1:0")
        #expect(added.models == last.models && added.credit == last.credit && added.maxBatch == last.maxBatch)
        #expect(added.curve?.key.hasSuffix("/keys/worker-3.key") == true)
        _ = try WorkerCommand.parse(Array(role.arguments.dropFirst()))
    }
}
