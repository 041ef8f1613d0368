import Foundation
import Testing

/// Every command that reads a file, given files that are missing, folders, empty, truncated or of
/// another kind (issue 13): each fails with a sentence about the file, never a trap, a Foundation
/// error domain, a SwiftProtobuf or Yams error name, and never starts.
@Suite struct BadFileTests {
    /// Bad files by kind, written once into `dir`.
    static func badFiles(in fixtures: OptionWalkTests.Fixtures) throws -> [String: String] {
        func write(_ name: String, _ bytes: [UInt8]) throws -> String {
            let url = fixtures.dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }
        let onnx = try Data(contentsOf: URL(fileURLWithPath: fixtures.path("bf.onnx")))
        try FileManager.default.createDirectory(atPath: fixtures.path("folder.onnx"), withIntermediateDirectories: true)
        return [
            "missing": fixtures.path("missing.onnx"),
            "folder": fixtures.path("folder.onnx"),
            "empty": try write("empty.bin", []),
            "text": try write("text.onnx", Array("this is not a model\n".utf8)),
            "truncated ONNX": try write("truncated.onnx", Array(onnx.prefix(onnx.count / 3))),
            "garbage": try write("garbage.bin", (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 7) }),
            "bad .npy": try write("bad.npy", [0x93] + Array("NUMPY".utf8) + [1, 0, 0x20, 0] + Array("{'descr': '<f4', 'shape': (9".utf8)),
            "bad YAML": try write("bad.yaml", Array("broker: [unclosed\n  - {\n".utf8)),
            "not UTF-8": try write("latin1.yaml", [0x62, 0x72, 0x6F, 0x6B, 0x65, 0x72, 0x3A, 0x20, 0xE9, 0xFF, 0x0A]),
            "bad JPEG": try write("bad.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9]),
        ]
    }

    @Test func badFilesGiveSentences() throws {
        let fixtures = try OptionWalkTests.Fixtures()
        let bad = try Self.badFiles(in: fixtures)
        let f = fixtures
        // Each command with BAD where the file goes; every kind of bad file is tried in each.
        let commands: [[String]] = [
            ["model", "info", "BAD"],
            ["model", "split", "BAD", "--at", "bottleneck", "--head", f.path("h2.onnx"), "--tail", f.path("t2.onnx")],
            ["infer", "--model", "BAD", "--input", f.path("x.npy"), "--output", f.path("y.npy")],
            ["infer", "--model", f.path("bf.onnx"), "--input", "BAD", "--output", f.path("y.npy")],
            ["bench", "--model", "BAD", "--runs", "1", "--warmup", "0"],
            ["bench-device", "--head", "BAD", "--full", f.path("bf.onnx"), "--runs", "1", "--warmup", "0"],
            ["bench-train", "--model", "BAD", "--runs", "1", "--warmup", "0", "--batch", "2"],
            ["eval", "--model", "BAD"],
            ["train", "bottlefit", "--out", f.path("run"), "--teacher", "BAD", "--bottleneck", "2"],
            ["up", "--dry-run", "BAD"],
            ["loadgen", "--scenario", "BAD"],
            ["loadgen", "--sink", "--duration", "1", "--shape", "schedule", "--schedule", "BAD", "--no-progress"],
            ["worker", "--broker", "ipc://\(f.path("b"))", "--model", "bf=BAD"],
            ["device", "--broker", "ipc://\(f.path("f"))", "--model", "bf", "--head", "BAD", "--frames", "1"],
            ["broker", "--frontend", "ipc://\(f.path("f"))", "--backend", "ipc://\(f.path("b"))", "--stats", "ipc://\(f.path("s"))",
             "--curve-key", "BAD", "--allow-cameras", "BAD", "--allow-workers", "BAD", "--allow-stats", "BAD"],
        ]
        let jobs: [@Sendable () -> String?] = commands.flatMap { command in
            bad.sorted { $0.key < $1.key }.map { (kind, path) in
                { @Sendable in
                    let arguments = command.map { $0 == "BAD" ? path : $0 }
                    guard let r = try? OptionWalkTests.run(arguments, in: fixtures.dir) else { return "could not start the binary" }
                    let shown = "bottlefit \(command.joined(separator: " ")) with a \(kind) file"
                    if r.started || r.timedOut { return "\(shown): accepted it and started" }
                    if r.signalled { return "\(shown): killed by signal \(r.status)" }
                    if r.status == 0 { return "\(shown): succeeded" }
                    if let name = OptionWalkTests.internalNames.first(where: r.stderr.contains) { return "\(shown): shows '\(name)': \(r.stderr)" }
                    let message = r.stderr.split(separator: "\n").first { $0.lowercased().hasPrefix("error: ") || $0.contains(" error ") }
                    if message == nil { return "\(shown): no error line: \(r.stderr)" }
                    return nil
                }
            }
        }
        let problems = OptionWalkTests.parallel(jobs).compactMap { $0 }
        let summary = "\(problems.count) of \(jobs.count) cases:\n" + problems.joined(separator: "\n")
        #expect(problems.isEmpty, "\(summary)")
    }
}
