import BottleFitProtocol
import BottleFitSecurity
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// CURVE with real processes (docs/security.md): keys from `bottlefit keys generate`, a broker,
/// worker and camera that use them, and a camera key revoked by editing the allow-list and
/// sending SIGHUP. Waits are on log lines and answers, with generous bounds.
@Suite(.enabled(if: ZMQContext.has("curve")), .blocking)
struct CurveFleetTests {
    let models = TinyModels.files

    @Test func aCurveFleetServesAndARevokedCameraKeyIsRefusedAfterSIGHUP() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let keys = fleet.dir.appendingPathComponent("keys").path
        let generate = fleet.start("keys", ["keys", "generate", "--out", keys, "--name", "broker", "--name", "worker-1",
                                            "--name", "camera-1", "--name", "camera-2", "--name", "controller"])
        try #require(generate.waitForExit(timeout: 60) == 0, "\(generate.stderr)")
        func key(_ file: String) -> String { "\(keys)/\(file)" }
        let mode = (try FileManager.default.attributesOfItem(atPath: key("camera-1.key"))[.posixPermissions] as? Int) ?? -1
        #expect(mode == 0o600)
        func write(_ text: String, _ file: String) throws { try text.write(toFile: key(file), atomically: true, encoding: .utf8) }
        func publicLine(_ name: String) throws -> String { try String(contentsOfFile: key("\(name).pub"), encoding: .utf8) }
        try write(try publicLine("camera-1") + publicLine("camera-2"), "cameras.allow")
        try write(try publicLine("worker-1"), "workers.allow")
        try write(try publicLine("controller"), "stats.allow")

        let b = fleet.start("broker", [
            "broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"), "--stats", fleet.endpoint("stats"),
            "--curve-key", key("broker.key"), "--allow-cameras", key("cameras.allow"), "--allow-workers", key("workers.allow"),
            "--allow-stats", key("stats.allow"),
        ])
        try #require(b.waitForStderr("broker serving", timeout: 60) != nil, "\(b.stderr)")
        // "broker up" (with curve=on) is logged once start() returns, which may follow "broker serving".
        #expect(b.waitForStderr("curve=on", timeout: 60) != nil, "\(b.stderr)")
        _ = fleet.start("worker-1", [
            "worker", "--broker", fleet.endpoint("back"), "--id", "worker-1", "--model", "tiny=\(models.tail),\(models.full)",
            "--curve-key", key("worker-1.key"), "--broker-key", key("broker.pub"),
        ])
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let cam = fleet.start("camera-1", [
            "device", "--broker", fleet.endpoint("front"), "--id", "camera-1", "--model", "tiny", "--head", models.head,
            "--full", models.full, "--rate", "20", "--frames", "20", "--slo-ms", "5000",
            "--curve-key", key("camera-1.key"), "--broker-key", key("broker.pub"),
        ])
        #expect(cam.waitForExit(timeout: 120) == 0, "\(cam.stderr.suffix(2000))")
        let summary = checkCamera(cam, "camera-1")
        #expect(int(summary, "completed_edge") > 0, "no frame completed on the edge over CURVE: \(cam.stdout)")

        // camera-2's key is served now: a heartbeat is answered.
        let context = try ZMQContext()
        let camera2 = try CurveKeyFile.readSecret(key("camera-2.key"))
        let brokerKey = try CurveKeyFile.readPublic(key("broker.pub"))
        func client() throws -> ZMQSocket {
            let s = try ZMQSocket(context, type: .dealer, linger: 0)
            try s.makeCurveClient(camera2, serverKey: brokerKey)
            try s.connect(fleet.endpoint("front"))
            return s
        }
        func heartbeatAnswered(_ s: ZMQSocket, timeout: Duration) throws -> Bool {
            try s.send([[], HeartbeatMessage().encoded()])
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let frames = try s.tryReceive(), frames.count == 2, case .heartbeat = try Message.decode(frames[1]) { return true }
                usleep(2000)
            }
            return false
        }
        let before = try client()
        #expect(try heartbeatAnswered(before, timeout: .seconds(60)), "camera-2 was not served before the revocation: \(b.stderr)")

        // A bad allow-list on SIGHUP changes nothing and says which line is wrong.
        let badReload = b.stderrCount
        try write(try publicLine("camera-1") + "not-a-key\n", "cameras.allow")
        b.signal(SIGHUP)
        #expect(b.waitForStderr("allow-list reload failed", after: badReload, timeout: 60) != nil, "\(b.stderr)")
        #expect(b.stderr(after: badReload).contains("cameras.allow:2:"), "\(b.stderr(after: badReload))")

        // Revoke camera-2: remove it from the list, SIGHUP, wait for the reload.
        let reloadAt = b.stderrCount
        try write("# camera-2 revoked\n" + publicLine("camera-1"), "cameras.allow")
        b.signal(SIGHUP)
        #expect(b.waitForStderr("allow-lists reloaded", after: reloadAt, timeout: 60) != nil, "\(b.stderr)")
        #expect(b.isRunning, "SIGHUP must not end the broker")

        // A new connection with the revoked key is refused: the broker logs it (with the key) and
        // the client never hears back, while camera-1's key is still served.
        let after = try client()
        try after.send([[], HeartbeatMessage().encoded()])
        let refusal = b.waitForStderr("refused a client", after: reloadAt, timeout: 60)
        #expect(refusal != nil, "\(b.stderr(after: reloadAt))")
        #expect(b.stderr(after: reloadAt).contains(camera2.publicKey), "the refusal names the key")
        let camera1 = fleet.start("camera-1b", [
            "device", "--broker", fleet.endpoint("front"), "--id", "camera-1b", "--model", "tiny", "--head", models.head,
            "--full", models.full, "--rate", "20", "--frames", "10", "--slo-ms", "5000",
            "--curve-key", key("camera-1.key"), "--broker-key", key("broker.pub"),
        ])
        #expect(camera1.waitForExit(timeout: 120) == 0, "\(camera1.stderr.suffix(2000))")
        #expect(int(checkCamera(camera1, "camera-1b"), "completed_edge") > 0, "\(camera1.stdout)")
        #expect(try after.tryReceive() == nil, "the revoked key got an answer")
        #expect(b.stop() == 0, "\(b.stderr.suffix(3000))")
    }

    @Test func aSecretKeyOthersMayReadIsAUsageErrorNamingTheFix() throws {
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let keys = fleet.dir.appendingPathComponent("k").path
        let generate = fleet.start("keys", ["keys", "generate", "--out", keys, "--name", "worker"])
        try #require(generate.waitForExit(timeout: 60) == 0, "\(generate.stderr)")
        #expect(generate.stdout.contains("worker: public "))
        let secret = "\(keys)/worker.key"
        chmod(secret, 0o644)
        let w = fleet.start("worker", ["worker", "--broker", fleet.endpoint("back"), "--model", "tiny=\(models.tail)",
                                      "--curve-key", secret, "--broker-key", "\(keys)/worker.pub"])
        #expect(w.waitForExit(timeout: 60) == 64)
        #expect(w.stderr.contains("chmod 600 \(secret)"), "\(w.stderr)")
        // Generating over an existing pair is refused and writes nothing.
        let again = fleet.start("keys-again", ["keys", "generate", "--out", keys, "--name", "other", "--name", "worker"])
        #expect(again.waitForExit(timeout: 60) != 0)
        #expect(again.stderr.contains("worker.key exists"), "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(keys)/other.key"))
        // Half the options is a usage error.
        let half = fleet.start("half", ["broker", "--curve-key", secret])
        #expect(half.waitForExit(timeout: 60) == 64)
        #expect(half.stderr.contains("--allow-cameras"), "\(half.stderr)")
    }
}
