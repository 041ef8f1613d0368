import Foundation
import Testing
import BottleFitTestSupport

/// `scripts/multihost`: the multi-host rehearsal in network namespaces (docs/deploy.md). Needs root
/// and `ip netns`; each test uses a prefix of its own, so nothing clashes with a user's run.
enum Multihost {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Why the rehearsal cannot run here, or nil when it can: `scripts/multihost --probe` installs
    /// iproute2 when missing and makes (and removes) namespaces, a bridge, a veth link and a tbf shaper.
    static let unavailable: String? = {
        guard geteuid() == 0 else { return "scripts/multihost needs root (network namespaces); run the tests as root to include it" }
        guard let probe = try? Run(prefix: prefix(), arguments: ["--probe"]) else { return "cannot start scripts/multihost --probe" }
        defer { probe.cleanUp() }
        let status = probe.waitForExit(timeout: 600)
        return status == 0 ? nil : "network namespaces, veth or tc tbf do not work here (scripts/multihost --probe: \(probe.text.trimmingCharacters(in: .whitespacesAndNewlines)))"
    }()

    /// Evaluated only when the suite is about to run (the trait's condition is an autoclosure); says why it is skipped.
    static var available: Bool {
        if let unavailable { FileHandle.standardError.write(Data("MultihostTests skipped: \(unavailable)\n".utf8)) }
        return unavailable == nil
    }

    /// One run of the script, its output in a log file read as it grows.
    final class Run {
        let process = Process()
        let log: URL
        let out: URL
        let prefix: String

        init(prefix: String, arguments: [String]) throws {
            self.prefix = prefix
            let dir = try shortTemporary("bfmh")
            log = dir.appendingPathComponent("script.log")
            out = dir.appendingPathComponent("out")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = root.appendingPathComponent("scripts/multihost")
            process.arguments = ["--prefix", prefix, "--binary", Binary.path, "--out", out.path] + arguments
            process.standardOutput = handle
            process.standardError = handle
            process.currentDirectoryURL = root
            try process.run()
        }

        var text: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Waits for `line` in the output (an event, not a time); false when the script ends first or after `timeout`.
        func waitFor(_ line: String, timeout: Double) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if text.contains(line) { return true }
                if !process.isRunning { return text.contains(line) }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        func waitForExit(timeout: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return nil
            }
            return process.terminationStatus
        }

        /// A run of the rehearsal for `seconds`, once the script has printed `line`.
        static func started(prefix: String, seconds: Int, until line: String) throws -> Run {
            let run = try Run(prefix: prefix, arguments: ["--duration", "\(seconds)"])
            #expect(run.waitFor(line, timeout: 600), "\(run.text)")
            return run
        }

        /// PIDs the script said it started.
        var startedPIDs: [pid_t] {
            text.split(separator: "\n").compactMap { line -> pid_t? in
                guard line.contains("started "), let r = line.range(of: "(pid ") else { return nil }
                return pid_t(line[r.upperBound...].prefix { $0.isNumber })
            }
        }

        func cleanUp() { try? FileManager.default.removeItem(at: log.deletingLastPathComponent()) }
    }

    /// The namespaces named PREFIX-* that exist now.
    static func namespaces(_ prefix: String) -> [String] {
        let p = Process()
        let pipe = Pipe()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "ip netns list"]
        p.standardOutput = pipe
        guard (try? p.run()) != nil else { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(prefix + "-") }
    }

    static func prefix() -> String { "bft" + String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(6)) }

    /// `scripts/multihost --clean`: whatever a failed test left, removed before the next one.
    static func clean(_ prefix: String) {
        guard !namespaces(prefix).isEmpty, let run = try? Run(prefix: prefix, arguments: ["--clean"]) else { return }
        _ = run.waitForExit(timeout: 120)
        run.cleanUp()
    }
}

@Suite(.serialized, .enabled(if: Multihost.available, "needs root and working network namespaces, veth links, a bridge and tc tbf (scripts/multihost --probe says what is missing)"), .blocking)
struct MultihostTests {
    /// The whole rehearsal for 20 s: broker, controller, two workers and two camera groups in seven
    /// namespaces, CURVE on, tbf on every link; every frame accounted for, the broker's counts agree
    /// with the cameras', nothing left behind.
    @Test func aTwentySecondRehearsalAccountsForEveryFrameAndLeavesNothing() throws {
        NamespaceLock.acquire()
        defer { NamespaceLock.release() }
        let prefix = Multihost.prefix()
        defer { Multihost.clean(prefix) }
        let summary = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-summary.json")
        defer { try? FileManager.default.removeItem(at: summary) }
        let run = try Multihost.Run(prefix: prefix, arguments: ["--duration", "20", "--summary", summary.path])
        defer { run.cleanUp() }
        // 20 s of load; the rest is starting seven processes on a busy machine and stopping them.
        let status = run.waitForExit(timeout: 900)
        #expect(status == 0, "scripts/multihost ended with \(String(describing: status)):\n\(run.text)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: summary)) as? [String: Any], "\(run.text)")
        #expect(json["ok"] as? Bool == true, "\(run.text)")
        let checks = json["checks"] as? [[String: Any]] ?? []
        for c in checks where c["ok"] as? Bool != true { Issue.record("failed: \(c["check"] ?? "") \(c["detail"] ?? "")") }
        #expect(checks.count >= 20, "\(checks.count) checks")
        let groups = try #require(json["groups"] as? [String: [String: Any]])
        #expect(Set(groups.keys) == ["cameras-a", "cameras-b"])
        var sent = 0
        for (name, g) in groups {
            let offered = g["offered"] as? Int ?? -1
            let parts = ["completed_edge", "completed_local", "completed_fallback", "dropped"].map { g[$0] as? Int ?? -1 }
            #expect(g["unaccounted"] as? Int == 0, "\(name): \(g)")
            #expect(offered > 0 && offered == parts.reduce(0, +), "\(name): \(g)")
            #expect(parts[0] > 0, "\(name): nothing completed at the edge over the bridge")
            sent += g["sent"] as? Int ?? 0
        }
        let broker = try #require(json["broker"] as? [String: Any])
        let received = broker["received"] as? Double ?? -1
        #expect(received > 0 && received <= Double(sent), "broker \(received), cameras sent \(sent)")
        #expect(broker["auth_refused"] as? Double == 0)
        #expect((json["links"] as? [String: Any])?.count == 8, "a tbf shaper per uplink and per camera downlink")
        #expect((json["cleanup"] as? String)?.hasPrefix("removed 7 namespaces") == true, "\(json["cleanup"] ?? "")")
        #expect(Multihost.namespaces(prefix).isEmpty)
        for pid in run.startedPIDs { #expect(kill(pid, 0) != 0, "process \(pid) still runs") }
    }

    /// SIGTERM while the cameras run: the script stops every process and removes every namespace.
    @Test func sigtermMidwayRemovesEverything() throws {
        NamespaceLock.acquire()
        defer { NamespaceLock.release() }
        let prefix = Multihost.prefix()
        defer { Multihost.clean(prefix) }
        let run = try Multihost.Run.started(prefix: prefix, seconds: 600, until: "camera groups started")
        defer { run.cleanUp() }
        #expect(Multihost.namespaces(prefix).count == 7)
        kill(run.process.processIdentifier, SIGTERM)
        let status = run.waitForExit(timeout: 300)
        #expect(status == 128 + SIGTERM, "\(run.text)")
        #expect(run.text.contains("SIGTERM: stopping and cleaning up"))
        #expect(run.text.contains("removed 7 namespaces"), "\(run.text)")
        #expect(Multihost.namespaces(prefix).isEmpty)
        #expect(run.startedPIDs.count == 6)
        for pid in run.startedPIDs { #expect(kill(pid, 0) != 0, "process \(pid) still runs") }
    }

    /// SIGKILL cannot be trapped: the children die with the script (PR_SET_PDEATHSIG), the empty
    /// namespaces stay, a second run with the prefix refuses nothing it owns and `--clean` removes them.
    @Test func afterSigkillTheChildrenAreGoneAndCleanRemovesTheNamespaces() throws {
        NamespaceLock.acquire()
        defer { NamespaceLock.release() }
        let prefix = Multihost.prefix()
        defer { Multihost.clean(prefix) }
        let run = try Multihost.Run.started(prefix: prefix, seconds: 600, until: "edge ready")
        defer { run.cleanUp() }
        kill(run.process.processIdentifier, SIGKILL)
        _ = run.waitForExit(timeout: 60)
        #expect(Multihost.namespaces(prefix).count == 7)
        // The children get SIGKILL from the kernel when their parent dies; wait for that event.
        let deadline = Date().addingTimeInterval(60)
        while run.startedPIDs.contains(where: { kill($0, 0) == 0 }), Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        for pid in run.startedPIDs { #expect(kill(pid, 0) != 0, "process \(pid) outlived the script") }
        let clean = try Multihost.Run(prefix: prefix, arguments: ["--clean"])
        defer { clean.cleanUp() }
        #expect(clean.waitForExit(timeout: 120) == 0, "\(clean.text)")
        #expect(clean.text.contains("removed 7 namespaces"), "\(clean.text)")
        #expect(Multihost.namespaces(prefix).isEmpty)
    }
}
