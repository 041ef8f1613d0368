import Foundation
import Testing
import BottleFitTestSupport

/// `bottlefit up`: topology errors name the line and the key; a small fleet runs, reports and leaves nothing behind.
@Suite(.blocking) struct UpTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `bottlefit` built next to this test runner (whatever --scratch-path), else the one CLITests finds.
    static var binary: String {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map(URL.init(fileURLWithPath:))
            ?? Bundle.main.bundleURL
        let sibling = runner.deletingLastPathComponent().appendingPathComponent("bottlefit").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : CLITests.binary
    }

    /// Runs the binary with a deadline, so a hung fleet fails the test instead of hanging it.
    static func run(_ arguments: [String], timeout: Double, in directory: URL? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently: a child that fills one while we block on the other would deadlock.
        let collected = Collected()
        let group = DispatchGroup()
        for (handle, isError) in [(out.fileHandleForReading, false), (err.fileHandleForReading, true)] {
            group.enter()
            // A thread of its own, not a queue of Dispatch's: those are the threads Swift's
            // cooperative pool runs on, and a blocking read there waits for a free one.
            Thread {
                collected.set(handle.readDataToEndOfFile(), isError: isError)
                group.leave()
            }.start()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            Issue.record("bottlefit \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        p.waitUntilExit()
        _ = group.wait(timeout: .now() + 5)
        return Result(status: p.terminationStatus, stdout: collected.text(isError: false), stderr: collected.text(isError: true))
    }

    final class Collected: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var data: [Bool: Data] = [:]
        func set(_ d: Data, isError: Bool) { lock.lock(); data[isError] = d; lock.unlock() }
        func text(isError: Bool) -> String { lock.lock(); defer { lock.unlock() }; return String(decoding: data[isError] ?? Data(), as: UTF8.self) }
    }

    func temporary() throws -> URL {
        // Short: ipc:// paths must fit in a Unix socket address (about 100 bytes).
        let url = URL(fileURLWithPath: "/tmp/bfup-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func refuse(_ yaml: String, mentioning expected: [String]) throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("t.yaml")
        try Data(yaml.utf8).write(to: file)
        let r = try Self.run(["up", file.path, "--duration", "1"], timeout: 30)
        #expect(r.status != 0)
        for text in expected { #expect(r.stderr.contains(text), "expected \(text) in: \(r.stderr)") }
        #expect(!r.stdout.contains("started"), "nothing may start: \(r.stdout)")
    }

    static let valid = """
        broker:
          frontend: ipc://front
          backend: ipc://back
          stats: ipc://stats
        cameras:
          count: 1
          mode: local
          model: m
          full: full.onnx

        """

    @Test func badYAMLNamesTheLine() throws {
        try refuse("broker:\n  frontend: ipc://a\n  backend: [unclosed\ncameras: {}\n", mentioning: ["t.yaml:", "not valid YAML"])
        let r = try refuseText("broker:\n  frontend: ipc://a\n  backend: [unclosed\ncameras: {}\n")
        #expect(r.contains(":4:") || r.contains(":3:"), "\(r)")
    }

    @Test func unknownKeyIsRefusedWithLineAndPath() throws {
        let yaml = Self.valid.replacingOccurrences(of: "  mode: local", with: "  mode: local\n  frame_rate: 5")
        try refuse(yaml, mentioning: ["t.yaml:8: cameras.frame_rate: unknown key frame_rate"])
    }

    /// `up --dry-run` with the default fleet writes nothing: not its 200 MB of models, not its topology.
    @Test func aDryRunOfTheDefaultFleetWritesNothing() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Self.run(["up", "--dry-run"], timeout: 60, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("has no models yet; a real run creates them there (nothing is written now)"), "\(r.stdout)")
        let broker = r.stdout.split(separator: "\n").first { $0.hasPrefix("broker:") } ?? ""
        #expect(broker.contains("--frontend tcp://127.0.0.1:5555"), "\(r.stdout)")
        #expect(r.stdout.contains("--tail \(dir.path)/models/demo/tail.onnx") || r.stdout.contains("\(dir.path)/models/demo/tail.onnx"), "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "a dry run wrote files")
    }

    @Test func duplicateKeysAreRefusedWithBothLines() throws {
        try refuse(Self.valid.replacingOccurrences(of: "  mode: local", with: "  mode: local\n  mode: split"),
                   mentioning: ["t.yaml:8: duplicate key 'mode' (first at line 7)"])
    }

    @Test func badModeAndNegativeCountAreRefused() throws {
        try refuse(Self.valid.replacingOccurrences(of: "mode: local", with: "mode: cloud"),
                   mentioning: ["t.yaml:7: cameras.mode: mode must be split, local or offload"])
        try refuse(Self.valid.replacingOccurrences(of: "count: 1", with: "count: -2"),
                   mentioning: ["t.yaml:6: cameras.count: count must be 0...4096, not -2"])
        try refuse(Self.valid.replacingOccurrences(of: "ipc://back", with: "inproc://back"),
                   mentioning: ["t.yaml:3: broker.backend: inproc://"])
        try refuse(Self.valid.replacingOccurrences(of: "  stats: ipc://stats\n", with: ""),
                   mentioning: ["broker.stats: missing required key stats"])
    }

    @Test func missingModelNamesTheFileAndTheCommand() throws {
        try refuse(Self.valid, mentioning: ["cameras.full: no file", "full.onnx", "bottlefit model create bottlefit-resnet50", "scripts/demo"])
    }

    func refuseText(_ yaml: String) throws -> String {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("t.yaml")
        try Data(yaml.utf8).write(to: file)
        return try Self.run(["up", file.path], timeout: 30).stderr
    }

    @Test func metricsAddressesComeFromTheTopology() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        try tinyModels(in: dir)
        let yaml = """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats, metrics: "127.0.0.1:9600"}
            workers:
              count: 2
              models: {m: {tail: tail.onnx}}
              metrics: 127.0.0.1:9610
            controller: {stats: ipc://stats, publish: ipc://dir, latency_slo_ms: 300, metrics: "[::1]:9620"}
            cameras:
              count: 2
              mode: local
              model: m
              full: full.onnx
              metrics: 127.0.0.1:0

            """
        let file = dir.appendingPathComponent("t.yaml")
        try Data(yaml.utf8).write(to: file)
        let r = try Self.run(["up", file.path, "--dry-run"], timeout: 30)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        func line(_ name: String) -> String { lines.first { $0.hasPrefix(name + ":") } ?? "" }
        #expect(line("broker").contains("--metrics 127.0.0.1:9600"))
        #expect(line("worker-1").contains("--metrics 127.0.0.1:9610"))
        #expect(line("worker-2").contains("--metrics 127.0.0.1:9611"))  // consecutive ports for a count
        #expect(line("controller").contains("--metrics [::1]:9620") && line("controller").contains("--latency-slo-ms 300"))
        #expect(line("camera-1").contains("--metrics 127.0.0.1:0") && line("camera-2").contains("--metrics 127.0.0.1:0"))

        try refuse(yaml.replacingOccurrences(of: "9610", with: "9600"), mentioning: ["metrics port 9600 is used by two processes"])
        try refuse(yaml.replacingOccurrences(of: "127.0.0.1:9610", with: "localhost"), mentioning: ["workers.metrics: localhost is not HOST:PORT"])
        try refuse(yaml.replacingOccurrences(of: "9610", with: "65535"), mentioning: ["2 consecutive metrics ports from 65535 go past 65535"])
    }

    /// A small BottleFit model's head, tail and full model in `dir` (C = `bottleneck`), prefixed.
    func tinyModels(in dir: URL, bottleneck: Int = 4, prefix: String = "") throws {
        for part in ["head", "tail", "full"] {
            let r = try Self.run(["model", "create", "bottlefit-resnet50", "--bottleneck", "\(bottleneck)", "--width", "4", "--classes", "10",
                                  "--image-size", "64", "--out", dir.appendingPathComponent("\(prefix)\(part).onnx").path, "--part", part], timeout: 120)
            #expect(r.status == 0, "\(r.stderr)")
        }
    }

    /// Models that do not fit together are refused before anything starts: a head whose
    /// bottleneck the workers' tail does not take; a camera of a model no worker serves.
    @Test func modelsThatDoNotFitTogetherAreRefused() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        try tinyModels(in: dir)
        try tinyModels(in: dir, bottleneck: 3, prefix: "c3-")
        func fleet(head: String, model: String = "tiny") -> String {
            """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats}
            workers:
              count: 1
              models: {tiny: {tail: \(dir.path)/tail.onnx, full: \(dir.path)/full.onnx}}
            cameras:
              - {name: cam-a, model: \(model), head: \(dir.path)/\(head), full: \(dir.path)/full.onnx, rate: 5}

            """
        }
        try refuse(fleet(head: "c3-head.onnx"), mentioning: [
            "t.yaml:6: cameras[0].head:", "c3-head.onnx outputs 3x9x9 but the workers' tail", "takes 4x9x9: every edge frame would be refused (BAD_REQUEST)"])
        try refuse(fleet(head: "head.onnx", model: "other"), mentioning: [
            "cam-a sends split frames of model other but no worker serves its tail"])
        // The fitting fleet passes the check.
        let file = dir.appendingPathComponent("ok.yaml")
        try Data(fleet(head: "head.onnx").utf8).write(to: file)
        let r = try Self.run(["up", file.path, "--dry-run"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func smallFleetRunsAndStopsCleanly() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        try tinyModels(in: dir)
        let yaml = """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats}
            workers:
              count: 1
              models: {tiny: {tail: tail.onnx, full: full.onnx}}
            cameras:
              - {name: cam-a, model: tiny, head: head.onnx, full: full.onnx, rate: 5}
              - {mode: local, model: tiny, full: full.onnx, rate: 5}

            """
        let file = dir.appendingPathComponent("fleet.yaml")
        try Data(yaml.utf8).write(to: file)
        let r = try Self.run(["up", file.path, "--duration", "3", "--grace", "10"], timeout: 60)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("[up] started 4 processes"), "\(r.stdout)")
        #expect(r.stderr.contains("[broker] "), "\(r.stderr)")
        #expect(r.stderr.contains("[worker-1] "), "\(r.stderr)")
        #expect(r.stdout.contains("[cam-a] camera=cam-a mode=split"), "\(r.stdout)")
        #expect(r.stdout.contains("[camera-2] camera=camera-2 mode=local"), "\(r.stdout)")
        #expect(r.stdout.contains("  cam-a: camera=cam-a"), "\(r.stdout)")
        #expect(r.stdout.contains("all 4 processes stopped cleanly"), "\(r.stdout)")
        // Every PID `up` started must be gone.
        let pids = r.stdout.matches(of: /pid (\d+)/).compactMap { Int32($0.output.1) }
        #expect(pids.count == 4, "\(r.stdout)")
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) is still there") }
    }
    @Test func aFailingWorkerStopsTheFleetAndFailsTheRun() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("not an onnx model".utf8).write(to: dir.appendingPathComponent("bad.onnx"))
        let yaml = """
            broker: {frontend: ipc://front, backend: ipc://back, stats: ipc://stats}
            workers: {count: 1, models: {m: {tail: bad.onnx}}}
            cameras: {count: 0, mode: local, model: m, full: bad.onnx}

            """
        let file = dir.appendingPathComponent("fleet.yaml")
        try Data(yaml.utf8).write(to: file)
        let r = try Self.run(["up", file.path, "--duration", "20", "--grace", "5"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.stdout.contains("worker-1 ended on its own: exit"), "\(r.stdout)")
        #expect(r.stdout.contains("failed: worker-1"), "\(r.stdout)")
        #expect(r.stderr.contains("[worker-1] "), "\(r.stderr)")
    }
}
