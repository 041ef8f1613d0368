import BottleFitBroker
import BottleFitDevice
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport
@testable import BottleFitLoadgen

/// Fidelity real: real `Camera`s (head and whole model on the engine) against the real broker in-process.
@Suite(.serialized, .blocking) struct RealFidelityTests {
    let models = repositoryRoot.appendingPathComponent("assets/fashion-mnist/bottlefit-c2").path

    @Test func realCamerasRunTheirModelsAndAccountForEveryFrame() throws {
        let context = try ZMQContext()
        let name = "lgreal-\(UUID().uuidString.prefix(8))"
        var configuration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back", statsEndpoint: "inproc://\(name)-stats")
        configuration.linger = 0
        let broker = Broker(configuration: configuration, context: context, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let endpoints = try broker.start()
        defer { broker.stop(); broker.waitUntilStopped() }
        let workers = EmulatedWorkers(
            settings: EmulatedWorkerSettings(count: 1, backend: endpoints.backend, models: ["fmnist-c2"], serviceMilliseconds: 2, batchExtraMilliseconds: 1, maxBatch: 4),
            context: context)
        try workers.start()
        defer { workers.stop() }
        let deadline = ContinuousClock.now + .seconds(20)
        while broker.counters.workersJoined < 1 && ContinuousClock.now < deadline { usleep(5000) }
        #expect(broker.counters.workersJoined == 1)
        // One split and one local camera, 10 frames/s for 2 s, labelled Fashion-MNIST frames; a generous SLO for a busy machine.
        let model = ModelProfile(name: "fmnist-c2", headGMAC: 0.000036416, fullGMAC: 0.00289696, bottleneckShape: [2, 8, 8], inputSize: 28)
        let group = LoadgenPlan.Group(
            name: "real", cameras: 2, shape: .steady(rate: 10), modes: [(.split, 0.5), (.local, 0.5)], modelName: "fmnist-c2", model: model,
            device: .ideal, uplink: .ideal, fashionMNIST: true, headModel: "\(models)/head.onnx", fullModel: "\(models)/full.onnx",
            sloMilliseconds: 5000)
        var plan = LoadgenPlan(groups: [group], durationSeconds: 2, sampleMilliseconds: 250)
        plan.fidelity = .real
        let options = LoadgenRunOptions(
            broker: endpoints.frontend, directives: nil, stats: endpoints.stats, sink: false, report: nil, html: nil,
            thresholds: [try Threshold(parsing: "unaccounted==0")], progress: false)
        let report = try Loadgen.run(plan: plan, options: options, context: context)
        let t = report.totals
        #expect(report.fidelity == "real")
        #expect(t.offered == 40 && t.unaccounted == 0 && report.thresholds.allSatisfy(\.passed))
        // The split camera's frames went through the broker; the local camera ran its whole model.
        #expect(t.completedEdge > 0 && t.completedLocal > 0)
        #expect(broker.counters.completed >= t.completedEdge)
        #expect((report.latencyMs["edge"]?.count ?? 0) == UInt64(t.completedEdge))
        #expect(report.cameras?.count == 2 && !report.timeseries.isEmpty)
        #expect(report.groups[0].labelledEdge > 0)
    }

    @Test func realFidelityRefusesWhatItCannotDo() throws {
        func refusal(_ yaml: String) -> String {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lgreal-\(UUID().uuidString)")
            try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let file = dir.appendingPathComponent("s.yaml")
            try? (yaml + "profiles: \(shippedProfiles.directory)\n").write(to: file, atomically: true, encoding: .utf8)
            do {
                _ = try LoadgenScenario.load(path: file.path).resolve()
                return "accepted"
            } catch {
                return error.description
            }
        }
        let base = "broker: tcp://127.0.0.1:1\nmodel: fmnist-c2\nhead: \(models)/head.onnx\nfull: \(models)/full.onnx\n"
        #expect(refusal(base + "fidelity: real\n") == "accepted")
        #expect(refusal(base + "fidelity: real\nuplink: wifi-20mbit\n").contains("uplink must be ideal"))
        #expect(refusal(base + "fidelity: real\nshape: ramp\nramp_to: 10\n").contains("shape steady only"))
        #expect(refusal(base + "fidelity: real\narrivals: poisson\n").contains("arrivals constant only"))
        #expect(refusal(base + "fidelity: real\nsource: textured\n").contains("emulated only"))
        #expect(refusal(base + "fidelity: magic\n").contains("expected emulated or real"))
        #expect(refusal(base).contains("head and full are for fidelity real"))
        #expect(refusal("broker: tcp://127.0.0.1:1\nmodel: fmnist-c2\nfidelity: real\n").contains("needs head"))
        #expect(refusal("broker: tcp://127.0.0.1:1\nfidelity: real\nhead: /no/such.onnx\n").contains("no file /no/such.onnx"))
        #expect(refusal("sink: true\ntopology: t.yaml\n").contains("the sink needs none"))
        #expect(refusal("topology: t.yaml\n") == "accepted")
    }
}
