import BottleFitLoadgen
import Foundation
import Testing
import BottleFitTestSupport

/// `bottlefit loadgen` as a user runs it: help, exit statuses, refused settings. Runs against the
/// in-process sink (no broker), for about a second each; never timed.
@Suite(.blocking) struct LoadgenCLITests {
    let profiles = CLITests.root.appendingPathComponent("profiles").path

    func run(_ arguments: [String]) throws -> UpTests.Result {
        try UpTests.run(["loadgen", "--profiles", profiles, "--no-progress"] + arguments, timeout: 120)
    }

    @Test func helpListsEveryOptionWithItsScenarioKey() throws {
        let r = try UpTests.run(["loadgen", "--help"], timeout: 60)
        #expect(r.status == 0)
        // --help wraps lines: compare with runs of whitespace collapsed.
        let text = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for option in LoadgenOption.all {
            #expect(text.contains(option.flag + " ") || text.contains(option.flag + "/"), "\(option.flag) missing from --help")
            #expect(text.contains("[scenario key: \(option.key)]"), "\(option.key) missing from --help")
        }
        #expect(r.stdout.contains("Example"))
    }

    @Test func aSinkRunPassesItsThresholdsAndWritesItsReports() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("r.json").path, html = dir.appendingPathComponent("r.html").path
        var r = try run(["--sink", "--cameras", "3", "--rate", "10", "--duration", "1", "--device", "ideal", "--uplink", "ideal",
                         "--report", json, "--html", html, "--fail-if", "unaccounted==0", "--fail-if", "offered==30"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("unaccounted 0"), "\(r.stdout)")
        let report = try LoadgenReport.decode(Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.totals.offered == 30 && report.totals.unaccounted == 0)
        #expect(FileManager.default.fileExists(atPath: html))
        // A threshold that cannot hold: exit status 3.
        r = try run(["--sink", "--cameras", "1", "--rate", "10", "--duration", "1", "--device", "ideal", "--uplink", "ideal",
                     "--fail-if", "completed<1"])
        #expect(r.status == 3, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("FAIL completed<1"))
    }

    @Test func impossibleSettingsAreRefusedBeforeAnyFrame() throws {
        var r = try run(["--sink", "--rate", "0"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--rate: the rate is 0 for the whole run"), "\(r.stderr)")
        r = try run(["--sink", "--device", "toaster"])
        #expect(r.status == 64 && r.stderr.contains("unknown device profile toaster"), "\(r.stderr)")
        let scenario = FileManager.default.temporaryDirectory.appendingPathComponent("lg-\(UUID().uuidString).yaml")
        try "sink: true\ngroups:\n  - cameras: 2\n    rat: 3\n".write(to: scenario, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: scenario) }
        r = try run(["--scenario", scenario.path])
        #expect(r.status == 64 && r.stderr.contains("\(scenario.path):4: groups[0].rat: unknown key rat"), "\(r.stderr)")
    }

    /// `--topology`: the load generator starts the topology's broker and worker (not its cameras) as
    /// `up` does, runs against them, and stops them by PID at the end.
    @Test func aTopologyIsStartedRunAgainstAndStopped() throws {
        let dir = URL(fileURLWithPath: "/tmp/bflg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let models = CLITests.root.appendingPathComponent("assets/fashion-mnist/bottlefit-c2").path
        let topology = dir.appendingPathComponent("t.yaml")
        try """
            broker:
              frontend: ipc://front
              backend: ipc://back
              stats: ipc://stats
            workers:
              count: 1
              models:
                fmnist-c2: {tail: \(models)/tail.onnx, full: \(models)/full.onnx}
            cameras:
              count: 1
              model: fmnist-c2
              head: \(models)/head.onnx
              source: fashion-mnist

            """.write(to: topology, atomically: true, encoding: .utf8)
        let json = dir.appendingPathComponent("r.json").path
        let r = try run(["--topology", topology.path, "--model", "fmnist-c2", "--cameras", "2", "--rate", "5", "--duration", "2",
                         "--device", "ideal", "--uplink", "ideal", "--slo-ms", "5000", "--report", json, "--fail-if", "unaccounted==0"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try LoadgenReport.decode(Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.totals.offered == 20 && report.totals.completedEdge > 0, "\(r.stdout)")
        // The topology's camera was left out; broker and worker were started, then stopped by their PIDs.
        #expect(r.stderr.contains("started 2 processes: broker (pid "), "\(r.stderr)")
        #expect(r.stderr.contains("all 2 processes stopped cleanly"), "\(r.stderr)")
        let pids = r.stderr.split(separator: "(pid ").dropFirst().compactMap { Int32($0.prefix { $0.isNumber }) }
        #expect(pids.count == 2)
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) still runs") }
        // A model the topology's workers do not serve is refused before anything starts.
        let refused = try run(["--topology", topology.path, "--model", "bf12", "--duration", "1"])
        #expect(refused.status == 64 && refused.stderr.contains("no worker of the topology serves model bf12"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("started"))
    }
}
