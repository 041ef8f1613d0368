import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// `bottlefit loadgen --curve-key`: the load generator's cameras over CURVE against a real broker
/// and worker (processes, ipc://): a listed key is served and every frame is accounted for; an
/// unlisted key gets nothing through, and its frames are computed locally, still accounted for.
@Suite(.enabled(if: ZMQContext.has("curve")), .blocking)
struct LoadgenCurveTests {
    @Test func aListedKeyIsServedAndAnUnlistedOneIsNot() throws {
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let keys = fleet.dir.appendingPathComponent("keys").path
        func key(_ file: String) -> String { "\(keys)/\(file)" }
        let generate = fleet.start("keys", ["keys", "generate", "--out", keys, "--name", "broker", "--name", "worker-1",
                                            "--name", "cameras", "--name", "stranger"])
        try #require(generate.waitForExit(timeout: 60) == 0, "\(generate.stderr)")
        for (list, name) in [("cameras.allow", "cameras"), ("workers.allow", "worker-1")] {
            try String(contentsOfFile: key("\(name).pub"), encoding: .utf8).write(toFile: key(list), atomically: true, encoding: .utf8)
        }
        let b = fleet.start("broker", [
            "broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"), "--stats", fleet.endpoint("stats"),
            "--curve-key", key("broker.key"), "--allow-cameras", key("cameras.allow"), "--allow-workers", key("workers.allow"),
            "--allow-stats", key("cameras.allow"),
        ])
        try #require(b.waitForStderr("broker serving", timeout: 60) != nil, "\(b.stderr)")
        let model = Multihost.root.appendingPathComponent("assets/fashion-mnist/bottlefit-c2").path
        _ = fleet.start("worker-1", [
            "worker", "--broker", fleet.endpoint("back"), "--id", "worker-1", "--model", "fmnist-c2=\(model)/tail.onnx,\(model)/full.onnx",
            "--curve-key", key("worker-1.key"), "--broker-key", key("broker.pub"),
        ])
        try #require(b.waitForStderr("worker joined", timeout: 120) != nil, "\(fleet.transcript)")

        func loadgen(_ name: String) throws -> (status: Int32?, totals: [String: Any], output: String) {
            let report = fleet.dir.appendingPathComponent("\(name).json").path
            let run = fleet.start("loadgen-\(name)", [
                "loadgen", "--broker", fleet.endpoint("front"), "--stats", fleet.endpoint("stats"), "--model", "fmnist-c2",
                "--profiles", Multihost.root.appendingPathComponent("profiles").path, "--cameras", "3", "--rate", "5",
                "--duration", "3s", "--slo-ms", "5000", "--device", "ideal", "--uplink", "ideal", "--no-progress",
                "--report", report, "--curve-key", key("\(name).key"), "--broker-key", key("broker.pub"),
            ])
            let status = run.waitForExit(timeout: 300)
            let json = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))) as? [String: Any]
            return (status, json?["totals"] as? [String: Any] ?? [:], run.stdout + run.stderr)
        }
        let listed = try loadgen("cameras")
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.totals["offered"] as? Int == 45, "\(listed.output)")
        #expect(listed.totals["unaccounted"] as? Int == 0)
        #expect((listed.totals["completed_edge"] as? Int ?? 0) > 0, "nothing completed at the edge over CURVE: \(listed.output)")

        let stranger = try loadgen("stranger")
        #expect(stranger.status == 0, "\(stranger.output)")
        #expect(stranger.totals["unaccounted"] as? Int == 0)
        #expect(stranger.totals["completed_edge"] as? Int == 0, "an unlisted key was served: \(stranger.output)")
        #expect(b.waitForStderr("refused a client", timeout: 60) != nil, "\(b.stderr)")
    }
}
