import BottleFitCore
import Foundation
import Testing
import BottleFitTestSupport

/// Every numeric option of every subcommand, and every numeric key of a topology file, given 0, -1,
/// huge, NaN and infinity (issue 13): no value traps the runtime, and every value but 0 is refused
/// as bad input (exit 64, a one-line error) unless the option takes any number (a seed, a cap).
/// Subcommands and options come from the binary's own `--experimental-dump-help`, so a new option
/// is walked without editing this test; a new subcommand with numeric options needs a base below.
@Suite(.blocking) struct OptionWalkTests {
    static let values = ["0", "-1", "1e300", "18446744073709551615", "9223372036854775807", "nan", "inf"]

    /// Options for which any number that parses is a valid choice: huge seeds, caps meaning "all".
    static let anyNumber: Set<String> = [
        "model create --seed", "train teacher --seed", "train bottlefit --seed", "train baseline --seed", "loadgen --seed",
        "eval --limit", "train teacher --limit", "train bottlefit --limit", "train baseline --limit",
        "train teacher --eval-limit", "train bottlefit --eval-limit", "train baseline --eval-limit",
    ]

    /// A log line that says a long-running role got past its checks and started: the walk stops it there.
    static let startedMarkers = ["broker up", "worker models loaded", "camera started", "controller up"]

    /// Text that must never reach a user: runtime traps and the names of Foundation or library errors.
    static let internalNames = ["Fatal error", "NSCocoaErrorDomain", "Error Domain=", "BinaryDecodingError", "DecodingError", "Swift.", "SwiftProtobuf"]

    /// Small files the bases point at: a Fashion-MNIST-sized BottleFit model, its head and tail, an
    /// input, an empty folder (a dataset that is not there, so an accepted training value fails fast).
    final class Fixtures: Sendable {
        let dir: URL
        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("bf-walk-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
            func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
            var r = try CLITests.run(["model", "create", "bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--width", "4", "--out", path("bf.onnx")])
            #expect(r.status == 0, "\(r.stderr)")
            r = try CLITests.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("t.onnx")])
            #expect(r.status == 0, "\(r.stderr)")
            try NPY.write(Tensor(shape: [1, 1, 28, 28], floats: [Float](repeating: 0.5, count: 784)), to: dir.appendingPathComponent("x.npy"))
        }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        deinit { try? FileManager.default.removeItem(at: dir) }
    }

    /// Arguments that make `command` pass every check but the walked option's, and stop soon when the
    /// value is accepted (one run, a missing dataset, a one-second sink run, a dry run).
    static func base(_ command: String, option: String, _ f: Fixtures) -> [String]? {
        let unique = UUID().uuidString.prefix(8)
        func ipc(_ name: String) -> String { "ipc://\(f.dir.path)/\(name)-\(unique)" }
        let endToEnd = ["--max-batch", "--credit", "--warmup-seconds", "--duration"]
        switch command {
        case "infer": return ["--model", f.path("bf.onnx"), "--input", f.path("x.npy"), "--output", f.path("y-\(unique).npy")]
        case "bench": return ["--model", f.path("bf.onnx"), "--runs", "1", "--warmup", "0"]
        case "bench-device": return ["--head", f.path("h.onnx"), "--full", f.path("bf.onnx"), "--runs", "1", "--warmup", "0"]
        case "check-onnx": return [f.path("empty")]
        case "model create" where option == "growth-rate":
            return ["bottlefit-densenet169", "--bottleneck", "2", "--image-size", "32", "--classes", "2", "--out", f.path("m-\(unique).onnx")]
        case "model create":
            return ["bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--width", "4", "--out", f.path("m-\(unique).onnx")]
        case "broker": return ["--frontend", ipc("f"), "--backend", ipc("b"), "--stats", ipc("s")]
        case "worker": return ["--broker", ipc("b"), "--model", "bf=\(f.path("t.onnx"))"]
        case "device": return ["--broker", ipc("f"), "--model", "bf", "--head", f.path("h.onnx"), "--frames", "1"]
        case "controller": return ["--stats", ipc("s"), "--publish", ipc("p")]
        case "bench-pipeline" where endToEnd.contains(option):
            return ["--mode", "end-to-end", "--tail", f.path("t.onnx"), "--runs", "1", "--duration", "1", "--warmup-seconds", "0", "--transport", "ipc"]
        case "bench-pipeline": return ["--mode", "broker", "--runs", "1", "--count", "10", "--warmup", "0", "--transport", "ipc"]
        case "up": return ["--dry-run"]
        case "bench-train": return ["--model", f.path("bf.onnx"), "--runs", "1", "--warmup", "0", "--batch", "2"]
        case "train teacher": return ["--out", f.path("run-\(unique)"), "--data-dir", f.path("empty")]
        case "train bottlefit":
            return ["--out", f.path("run-\(unique)"), "--data-dir", f.path("empty"), "--teacher", f.path("none.onnx"), "--bottleneck", "2"]
        case "train baseline":
            return ["naive", "--out", f.path("run-\(unique)"), "--data-dir", f.path("empty"), "--teacher", f.path("none.onnx"), "--bottleneck", "2"]
        case "eval": return ["--model", f.path("bf.onnx"), "--data-dir", f.path("empty")]
        case "loadgen":
            return ["--sink", "--duration", "1", "--drain-ms", "100", "--cameras", "1", "--rate", "1", "--no-progress",
                    "--profiles", CLITests.root.appendingPathComponent("profiles").path]
        default: return nil
        }
    }

    struct Outcome: Sendable {
        var status: Int32
        var signalled: Bool
        var started: Bool
        var timedOut: Bool
        var stderr: String
    }

    /// Runs the binary; stops it when it logs that it started, kills it after `timeout` seconds.
    static func run(_ arguments: [String], in directory: URL, timeout: Double = 120) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = arguments
        p.currentDirectoryURL = directory
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        let text = Collected()
        try p.run()
        // A thread of its own reads stderr as it comes (FileHandle's readabilityHandler is not reliable
        // with hundreds of short-lived children on Linux), so a role's "started" line is seen at once.
        let reader = FileHandle(fileDescriptor: err.fileHandleForReading.fileDescriptor, closeOnDealloc: false)
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while case let d = reader.availableData, !d.isEmpty { text.append(d) }
            drained.signal()
        }
        let deadline = Date().addingTimeInterval(timeout)
        var started = false, timedOut = false
        while p.isRunning {
            if !started, startedMarkers.contains(where: text.string.contains) {
                started = true
                kill(p.processIdentifier, SIGTERM)
                let grace = Date().addingTimeInterval(15)
                while p.isRunning, Date() < grace { Thread.sleep(forTimeInterval: 0.02) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            if Date() > deadline {
                timedOut = true
                kill(p.processIdentifier, SIGKILL)
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        p.waitUntilExit()
        // A grandchild could keep the pipe open: wait for the end of stderr only so long.
        _ = drained.wait(timeout: .now() + 10)
        return Outcome(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal, started: started,
                       timedOut: timedOut, stderr: text.string)
    }

    final class Collected: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var data = Data()
        func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
        var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }

    /// Runs `jobs` on `width` threads (the machine may have two cores; each job is mostly a process start).
    static func parallel<T: Sendable>(_ jobs: [@Sendable () -> T], width: Int = 4) -> [T] {
        let results = ParallelResults<T>(jobs.count)
        let group = DispatchGroup()
        for _ in 0..<min(width, jobs.count) {
            group.enter()
            Thread.detachNewThread {
                while true {
                    results.lock.lock()
                    let i = results.next
                    results.next += 1
                    results.lock.unlock()
                    guard i < jobs.count else { break }
                    let value = jobs[i]()
                    results.lock.lock()
                    results.out[i] = value
                    results.lock.unlock()
                }
                group.leave()
            }
        }
        group.wait()
        return results.out.map { $0! }
    }

    final class ParallelResults<T>: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        let lock = NSLock()
        var next = 0
        var out: [T?]
        init(_ n: Int) { out = Array(repeating: nil, count: n) }
    }

    /// Leaf subcommands (`model create`, `broker`) and their options that take a value, from the dump.
    static func leafOptions() throws -> [(command: String, options: [String])] {
        let dump = try CLITests.run(["--experimental-dump-help"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var out: [(String, [String])] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let subcommands = command["subcommands"] as? [[String: Any]] ?? []
            if subcommands.isEmpty, !path.isEmpty {
                let arguments = command["arguments"] as? [[String: Any]] ?? []
                let options = arguments.compactMap { a -> String? in
                    // Options with a fixed set of values (`--gemm auto|packed|openblas`) are not numbers.
                    guard a["kind"] as? String == "option", (a["allValues"] as? [String] ?? []).isEmpty else { return nil }
                    return (a["preferredName"] as? [String: Any])?["name"] as? String
                }
                out.append((path.joined(separator: " "), options))
            }
            for s in subcommands { walk(s, path + [s["commandName"] as? String ?? "?"]) }
        }
        walk(try #require(json["command"] as? [String: Any]), [])
        return out
    }

    /// The problem with `outcome` for `value`, or nil when it is what bad input must give.
    static func problem(_ outcome: Outcome, value: String, anyNumber: Bool) -> String? {
        if outcome.signalled && !outcome.started { return "killed by signal \(outcome.status)" }
        if outcome.timedOut { return "still running after the time limit" }
        if let name = internalNames.first(where: outcome.stderr.contains) { return "stderr shows '\(name)'" }
        if outcome.status == 64 {
            // ArgumentParser follows the error with the option's help, the usage and a pointer to --help.
            let lines = outcome.stderr.split(separator: "\n").filter {
                !$0.hasPrefix("Usage:") && !$0.hasPrefix("Help:") && !$0.hasPrefix("  See '") && !$0.isEmpty
            }
            guard lines.count == 1, lines[0].hasPrefix("Error: ") || lines[0].hasPrefix("error: ") else {
                return "a usage error that is not one line: \(outcome.stderr)"
            }
            return nil
        }
        // Accepted: fine for 0 (a count of nothing, no warm-up) and for options that take any number,
        // as long as the command then ran (0), started (a role) or failed on the base's own missing input (1).
        if value == "0" || anyNumber {
            return outcome.started || [0, 1].contains(outcome.status) ? nil : "exit \(outcome.status)"
        }
        return "accepted (exit \(outcome.status)\(outcome.started ? ", started" : "")); expected a usage error (exit 64)"
    }

    @Test func everyNumericOptionRefusesAbsurdValues() throws {
        let fixtures = try Fixtures()
        let leaves = try Self.leafOptions()
        #expect(leaves.count >= 20, "\(leaves.map(\.command))")
        // An option is numeric when a word is refused as its value by the parser (ArgumentParser's
        // "is invalid for", or the load generator's "expected a number/an integer").
        let candidates = leaves.flatMap { leaf in leaf.options.map { (leaf.command, $0) } }
        let probes: [@Sendable () -> Bool] = candidates.map { (command, option) in
            { @Sendable in
                let arguments = command.split(separator: " ").map(String.init) + (Self.base(command, option: option, fixtures) ?? []) + ["--\(option)=abc"]
                let r = (try? Self.run(arguments, in: fixtures.dir, timeout: 60))?.stderr ?? ""
                return ["is invalid for", "expected a number", "expected an integer"].contains(where: r.contains)
            }
        }
        let numeric = zip(candidates, Self.parallel(probes)).filter(\.1).map(\.0)
        #expect(numeric.count >= 80, "only \(numeric.count) numeric options found: \(numeric)")
        for (command, option) in numeric where Self.base(command, option: option, fixtures) == nil {
            Issue.record("\(command) has numeric option --\(option) but no base arguments in OptionWalkTests.base")
        }
        let cases = numeric.filter { Self.base($0.0, option: $0.1, fixtures) != nil }.flatMap { c in Self.values.map { (c.0, c.1, $0) } }
        let jobs: [@Sendable () -> String?] = cases.map { (command, option, value) in
            { @Sendable in
                let arguments = command.split(separator: " ").map(String.init) + Self.base(command, option: option, fixtures)! + ["--\(option)=\(value)"]
                guard let outcome = try? Self.run(arguments, in: fixtures.dir) else { return "could not start the binary" }
                return Self.problem(outcome, value: value, anyNumber: Self.anyNumber.contains("\(command) --\(option)"))
                    .map { "bottlefit \(command) --\(option)=\(value): \($0) [\(outcome.stderr.split(separator: "\n").first ?? "")]" }
            }
        }
        let problems = Self.parallel(jobs).compactMap { $0 }
        let summary = "\(problems.count) of \(cases.count) cases:\n" + problems.joined(separator: "\n")
        #expect(problems.isEmpty, "\(summary)")
    }

    /// The same walk over a topology file's numbers, through `up --dry-run` (which checks everything).
    @Test func everyNumericTopologyKeyRefusesAbsurdValues() throws {
        let fixtures = try Fixtures()
        let keys: [(key: String, value: String)] = [
            ("queue_capacity", "64"), ("count", "1"), ("credit", "16"), ("max_batch", "8"), ("threads", "1"),
            ("slo_ms", "250"), ("latency_slo_ms", "250"), ("camera_count", "1"), ("rate", "5"), ("camera_slo_ms", "250"), ("camera_threads", "1"),
        ]
        @Sendable func topology(_ values: [String: String]) -> String {
            func v(_ key: String) -> String { values[key] ?? keys.first { $0.key == key }!.value }
            return """
                broker: {frontend: ipc://f, backend: ipc://b, stats: ipc://s, queue_capacity: \(v("queue_capacity"))}
                workers:
                  count: \(v("count"))
                  models: {bf: {tail: t.onnx, full: bf.onnx}}
                  credit: \(v("credit"))
                  max_batch: \(v("max_batch"))
                  threads: \(v("threads"))
                controller: {stats: ipc://s, publish: ipc://p, slo_ms: \(v("slo_ms")), latency_slo_ms: \(v("latency_slo_ms"))}
                cameras:
                  count: \(v("camera_count"))
                  model: bf
                  head: h.onnx
                  full: bf.onnx
                  rate: \(v("rate"))
                  slo_ms: \(v("camera_slo_ms"))
                  threads: \(v("camera_threads"))

                """
        }
        let valid = fixtures.dir.appendingPathComponent("valid.yaml")
        try Data(topology([:]).utf8).write(to: valid)
        let ok = try Self.run(["up", "--dry-run", valid.path], in: fixtures.dir)
        #expect(ok.status == 0, "the unaltered topology is refused: \(ok.stderr)")
        // YAML's own spellings of NaN and infinity reach the decoder as floats, not strings.
        let yamlValues = Self.values.map { ["nan": ".nan", "inf": ".inf"][$0] ?? $0 }
        let jobs: [@Sendable () -> String?] = keys.flatMap { key in
            yamlValues.map { value in
                { @Sendable in
                    let file = fixtures.dir.appendingPathComponent("t-\(key.key)-\(value).yaml")
                    try? Data(topology([key.key: value]).utf8).write(to: file)
                    guard let outcome = try? Self.run(["up", "--dry-run", file.path], in: fixtures.dir) else { return "could not start the binary" }
                    return Self.problem(outcome, value: value, anyNumber: false)
                        .map { "\(key.key): \(value): \($0) [\(outcome.stderr.split(separator: "\n").first ?? "")]" }
                }
            }
        }
        let problems = Self.parallel(jobs).compactMap { $0 }
        let summary = "\(problems.count) cases:\n" + problems.joined(separator: "\n")
        #expect(problems.isEmpty, "\(summary)")
    }
}
