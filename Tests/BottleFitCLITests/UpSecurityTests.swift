import Foundation
import Testing

/// The topology's `security:` section (docs/security.md): CURVE is the default for endpoints other
/// machines can reach, key files come from one folder, and `up` passes them to every child.
@Suite struct UpSecurityTests {
    typealias Up = UpTests

    func write(_ yaml: String, in dir: URL) throws -> String {
        let file = dir.appendingPathComponent("t.yaml")
        try Data(yaml.utf8).write(to: file)
        return file.path
    }

    static let openFleet = """
        broker: {frontend: "tcp://0.0.0.0:15555", backend: "tcp://0.0.0.0:15556", stats: "tcp://127.0.0.1:15557"}
        workers:
          count: 1
          models: {tiny: {tail: tail.onnx, full: full.onnx}}
        controller: {stats: "tcp://127.0.0.1:15557", publish: "tcp://0.0.0.0:15558"}
        cameras:
          - {name: cam-a, model: tiny, head: head.onnx, full: full.onnx, rate: 5}
          - {name: cam-l, mode: local, model: tiny, full: full.onnx, rate: 5}

        """

    @Test func anEndpointOtherMachinesReachNeedsKeysOrAnExplicitNone() throws {
        let dir = try UpTests().temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        for file in ["head.onnx", "tail.onnx", "full.onnx"] { try Data("x".utf8).write(to: dir.appendingPathComponent(file)) }

        let refused = try Up.run(["up", try write(Self.openFleet, in: dir), "--dry-run"], timeout: 30)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("tcp://0.0.0.0:15555") && refused.stderr.contains("security: none")
                && refused.stderr.contains("bottlefit keys generate"), "\(refused.stderr)")

        let plain = try Up.run(["up", try write(Self.openFleet + "security: none\n", in: dir), "--dry-run"], timeout: 30)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(!plain.stdout.contains("--curve-key"), "\(plain.stdout)")

        let withKeys = Self.openFleet + "security: {keys: keys}\n"
        let missing = try Up.run(["up", try write(withKeys, in: dir), "--dry-run"], timeout: 30)
        #expect(missing.status != 0)
        // The error gives the command that makes exactly the pairs needed (a local camera needs none).
        #expect(missing.stderr.contains("bottlefit keys generate --out \(dir.path)/keys --name broker --name worker-1 --name controller --name cam-a"),
                "\(missing.stderr)")

        let generate = try Up.run(["keys", "generate", "--out", dir.appendingPathComponent("keys").path,
                                   "--name", "broker", "--name", "worker-1", "--name", "controller", "--name", "cam-a"], timeout: 30)
        #expect(generate.status == 0, "\(generate.stderr)")
        let noList = try Up.run(["up", try write(withKeys, in: dir), "--dry-run"], timeout: 30)
        #expect(noList.stderr.contains("no allow-list \(dir.path)/keys/cameras.allow"), "\(noList.stderr)")
        let keys = dir.appendingPathComponent("keys")
        for (list, source) in [("cameras.allow", "cam-a.pub"), ("workers.allow", "worker-1.pub")] {
            try FileManager.default.copyItem(at: keys.appendingPathComponent(source), to: keys.appendingPathComponent(list))
        }
        let r = try Up.run(["up", try write(withKeys, in: dir), "--dry-run"], timeout: 30)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        func line(_ name: String) -> String { lines.first { $0.hasPrefix(name + ":") } ?? "" }
        let k = keys.path
        #expect(line("broker").contains("--curve-key \(k)/broker.key --allow-cameras \(k)/cameras.allow --allow-workers \(k)/workers.allow --allow-stats \(k)/controller.pub"), "\(line("broker"))")
        #expect(line("worker-1").contains("--curve-key \(k)/worker-1.key --broker-key \(k)/broker.pub"))
        #expect(line("controller").contains("--curve-key \(k)/controller.key --broker-key \(k)/broker.pub --allow-cameras \(k)/cameras.allow"))
        #expect(line("cam-a").contains("--curve-key \(k)/cam-a.key --broker-key \(k)/broker.pub --controller-key \(k)/controller.pub"))
        #expect(!line("cam-l").contains("--curve-key"), "a local camera talks to nobody")

        let typo = try Up.run(["up", try write(Self.openFleet + "security: curve\n", in: dir), "--dry-run"], timeout: 30)
        #expect(typo.status != 0 && typo.stderr.contains("security"), "\(typo.stderr)")
    }

    @Test func aCurveFleetRunsUnderUp() throws {
        let dir = try UpTests().temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        for part in ["head", "tail", "full"] {
            let r = try Up.run(["model", "create", "bottlefit-resnet50", "--bottleneck", "4", "--width", "4", "--classes", "10",
                                "--image-size", "64", "--out", dir.appendingPathComponent("\(part).onnx").path, "--part", part], timeout: 120)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let keys = dir.appendingPathComponent("keys")
        let generate = try Up.run(["keys", "generate", "--out", keys.path, "--name", "broker", "--name", "worker-1", "--name", "controller",
                                   "--name", "cam-a"], timeout: 30)
        #expect(generate.status == 0, "\(generate.stderr)")
        try FileManager.default.copyItem(at: keys.appendingPathComponent("cam-a.pub"), to: keys.appendingPathComponent("cameras.allow"))
        try FileManager.default.copyItem(at: keys.appendingPathComponent("worker-1.pub"), to: keys.appendingPathComponent("workers.allow"))
        let yaml = """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats}
            workers:
              count: 1
              models: {tiny: {tail: tail.onnx, full: full.onnx}}
            controller: {stats: ipc://stats, publish: ipc://directives}
            cameras:
              - {name: cam-a, model: tiny, head: head.onnx, full: full.onnx, rate: 5, slo_ms: 5000}
            security: {keys: keys}

            """
        let r = try Up.run(["up", try write(yaml, in: dir), "--duration", "4", "--grace", "10"], timeout: 90)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stderr.contains("curve=on"), "\(r.stderr)")
        #expect(r.stdout.contains("all 4 processes stopped cleanly"), "\(r.stdout)")
        let summary = r.stdout.split(separator: "\n").first { $0.contains("[cam-a] camera=cam-a") } ?? ""
        let edge = summary.firstMatch(of: /completed_edge=(\d+)/).flatMap { Int($0.output.1) } ?? 0
        #expect(edge > 0, "no frame completed on the edge over CURVE: \(summary)")
        #expect(!r.stderr.contains("refused a client"), "\(r.stderr)")
    }
}
