import Foundation
import Testing
import BottleFitTestSupport

/// `--log-format json`: every line a role, or `up` and its children, write is one JSON object with the documented keys.
@Suite(.blocking) struct LogFormatTests {
    static let keys: Set<String> = ["ts", "level", "role", "label", "source", "msg", "metadata"]

    /// The JSON objects of `text`'s lines; records an issue for every line that is not one.
    func objects(_ text: String, _ stream: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if object == nil { Issue.record("\(stream): not a JSON object: \(line)") }
            return object
        }
    }

    @Test func upMergesItsChildrensJSONLogsWithTheirNames() throws {
        let up = UpTests()
        let dir = try up.temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        try up.tinyModels(in: dir)
        let yaml = """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats}
            workers: {count: 1, models: {tiny: {tail: tail.onnx, full: full.onnx}}}
            cameras: [{name: cam-a, model: tiny, head: head.onnx, full: full.onnx, rate: 5}]

            """
        let file = dir.appendingPathComponent("fleet.yaml")
        try Data(yaml.utf8).write(to: file)
        let r = try UpTests.run(["up", file.path, "--duration", "3", "--grace", "10", "--log-format", "json"], timeout: 60)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        let all = objects(r.stdout, "stdout") + objects(r.stderr, "stderr")
        for o in all {
            #expect(Set(o.keys) == Self.keys, "\(o)")
            #expect((o["ts"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(o)")
            #expect(o["metadata"] is [String: Any], "\(o)")
        }
        func lines(of role: String) -> [[String: Any]] { all.filter { $0["role"] as? String == role } }
        #expect(Set(all.compactMap { $0["role"] as? String }) == ["up", "broker", "worker-1", "cam-a"])
        #expect(lines(of: "broker").contains { $0["msg"] as? String == "broker serving" }, "\(r.stderr)")
        #expect(lines(of: "cam-a").contains { ($0["msg"] as? String)?.hasPrefix("camera=cam-a mode=split") == true }, "\(r.stdout)")
        #expect(lines(of: "up").contains { ($0["msg"] as? String)?.hasPrefix("all 3 processes stopped cleanly") == true }, "\(r.stdout)")
        // The children's own handler wrote their lines: a label and a source from the role's module.
        #expect(lines(of: "worker-1").contains { $0["label"] as? String == "bottlefit.worker" && $0["source"] as? String == "BottleFitWorker" })
    }

    @Test func aRoleLogsJSONAndStillDrainsOnSIGTERM() throws {
        let dir = try UpTests().temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: UpTests.binary)
        p.arguments = [
            "broker", "--frontend", "ipc://\(dir.path)/f", "--backend", "ipc://\(dir.path)/b", "--stats", "ipc://\(dir.path)/s",
            "--log-format", "json", "--metrics", "127.0.0.1:0",
        ]
        let err = Pipe(), out = Pipe()
        p.standardError = err
        p.standardOutput = out
        try p.run()
        // Read standard error line by line until the broker serves, then stop it.
        var stderr = Data()
        let handle = err.fileHandleForReading
        while !String(decoding: stderr, as: UTF8.self).contains("\"msg\":\"broker up\"") {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            stderr.append(chunk)
        }
        kill(p.processIdentifier, SIGTERM)
        stderr.append(handle.readDataToEndOfFile())
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        let all = objects(String(decoding: stderr, as: UTF8.self), "stderr")
        #expect(all.allSatisfy { Set($0.keys) == Self.keys && $0["role"] as? String == "broker" }, "\(all)")
        let messages = all.compactMap { $0["msg"] as? String }
        #expect(messages.contains { $0.hasPrefix("metrics endpoint listening on http://127.0.0.1:") }, "\(messages)")
        #expect(messages.contains("broker serving") && messages.contains("broker up"), "\(messages)")
        #expect(stdout.contains("received="), "the counters go to standard output: \(stdout)")
    }

    @Test func loadgenWritesItsProgressAndErrorsAsJSON() throws {
        let profiles = CLITests.root.appendingPathComponent("profiles").path
        let base = ["loadgen", "--profiles", profiles, "--sink", "--device", "ideal", "--uplink", "ideal", "--log-format", "json"]
        let r = try UpTests.run(base + ["--cameras", "2", "--rate", "10", "--duration", "2", "--progress"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("unaccounted 0"), "the table stays text on standard output: \(r.stdout)")
        let progress = objects(r.stderr, "stderr")
        for o in progress {
            #expect(Set(o.keys) == Self.keys && o["role"] as? String == "loadgen" && o["level"] as? String == "info", "\(o)")
        }
        #expect(progress.contains { ($0["msg"] as? String)?.contains("offered") == true }, "\(r.stderr)")
        let refused = try UpTests.run(base + ["--rate", "0"], timeout: 60)
        #expect(refused.status == 64, "a refused setting is a usage error: \(refused.stderr)")
        let errors = objects(refused.stderr, "stderr")
        #expect(errors.contains { $0["level"] as? String == "error" && ($0["msg"] as? String)?.contains("--rate: the rate is 0") == true },
                "\(refused.stderr)")
    }

    @Test func anUnknownLogFormatIsAUsageError() throws {
        let r = try UpTests.run(["broker", "--log-format", "yaml"], timeout: 30)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("--log-format must be text or json (got yaml)"), "\(r.stderr)")
    }
}
