import BottleFitCore
import BottleFitEngine
import Foundation
import ONNXProto
import Testing
import BottleFitTestSupport

/// The `bottlefit` executable as a user runs it: its output contracts and its errors.
@Suite(.blocking) struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The debug binary that `swift build --build-tests` produced next to the tests (whatever --scratch-path).
    static var binary: String {
        let runner = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map(URL.init(fileURLWithPath:))
        let candidates = [
            runner?.deletingLastPathComponent().appendingPathComponent("bottlefit").path ?? "",
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("bottlefit").path,
            root.appendingPathComponent(".build/debug/bottlefit").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[2]
    }

    static func run(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func temporary() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func createSplitInfoInferAgree() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = dir.appendingPathComponent("full.onnx").path
        let head = dir.appendingPathComponent("head.onnx").path
        let tail = dir.appendingPathComponent("tail.onnx").path
        var r = try Self.run(["model", "create", "bottlefit-resnet50", "--bottleneck", "12", "--width", "8", "--classes", "10", "--out", full])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "split", full, "--at", "bottleneck", "--head", head, "--tail", tail])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "info", head])
        #expect(r.status == 0)
        #expect(r.stdout.contains("bottleneck: 1x12x29x29, uint8 payload 10092 bytes"), "\(r.stdout)")
        #expect(r.stdout.contains("parameters: \(9_664 / 8 + 256 * 12 / 8)"), "\(r.stdout)")

        let x = TensorHelpers.random([2, 3, 224, 224], seed: 3)
        let xPath = dir.appendingPathComponent("x.npy"), zPath = dir.appendingPathComponent("z.npy")
        let yPath = dir.appendingPathComponent("y.npy")
        try NPY.write(x, to: xPath)
        r = try Self.run(["infer", "--model", head, "--input", xPath.path, "--output", zPath.path, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["infer", "--model", tail, "--input", zPath.path, "--output", yPath.path])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPY.read(contentsOf: yPath)
        let reference = try InferenceSession(contentsOf: URL(fileURLWithPath: full)).run(x)
        #expect(y.shape == [2, 10])
        let a = y.floats!, b = reference.floats!
        #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })

        // Both GEMMs give the same answer; a GEMM that does not exist is refused.
        let y2Path = dir.appendingPathComponent("y2.npy")
        r = try Self.run(["infer", "--model", full, "--input", xPath.path, "--output", y2Path.path, "--threads", "2", "--gemm", "openblas"])
        #expect(r.status == 0, "\(r.stderr)")
        let y2 = try NPY.read(contentsOf: y2Path).floats!
        #expect(y2.count == b.count && zip(y2, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
        r = try Self.run(["infer", "--model", full, "--input", xPath.path, "--output", y2Path.path, "--gemm", "fast"])
        #expect(r.status != 0 && r.stderr.contains("--gemm"), "\(r.stderr)")

        // Every build of the C kernels gives the same answer (one this CPU lacks runs the
        // portable build); a build that does not exist is refused.
        for kernels in ["portable", "avx2", "avx512"] {
            r = try Self.run(["infer", "--model", full, "--input", xPath.path, "--output", y2Path.path, "--gemm", "packed", "--kernels", kernels])
            #expect(r.status == 0, "\(kernels): \(r.stderr)")
            let y3 = try NPY.read(contentsOf: y2Path).floats!
            #expect(y3.count == b.count && zip(y3, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(kernels)")
        }
        r = try Self.run(["infer", "--model", full, "--input", xPath.path, "--output", y2Path.path, "--kernels", "sse9"])
        #expect(r.status != 0 && r.stderr.contains("--kernels"), "\(r.stderr)")
    }

    @Test func fashionMNISTFamilyCreatesSplitsAndDescribes() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        var r = try Self.run(["model", "create", "resnet", "--preset", "fashion-mnist", "--out", path("teacher.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "info", path("teacher.onnx")])
        #expect(r.stdout.contains("architecture: resnet-fmnist (full)") && r.stdout.contains("parameters: 308538"), "\(r.stdout)")
        #expect(r.stdout.contains("input:  input float32[batchx1x28x28]"), "\(r.stdout)")

        r = try Self.run(["model", "create", "bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--out", path("bf.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("t.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "info", path("h.onnx")])
        #expect(r.stdout.contains("architecture: bottlefit-resnet-fmnist (head)"), "\(r.stdout)")
        #expect(r.stdout.contains("parameters: \(208 + 64 * 2)"), "\(r.stdout)")
        #expect(r.stdout.contains("bottleneck: 1x2x8x8, uint8 payload 128 bytes"), "\(r.stdout)")
        #expect(r.stdout.contains("vs raw uint8 input 784 bytes: 83.7% smaller"), "\(r.stdout)")
        // --part head writes the same head as splitting the full model.
        r = try Self.run(["model", "create", "bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--part", "head", "--out", path("h2.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        let split = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path("h.onnx")))
        let created = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path("h2.onnx")))
        #expect(split.nodes == created.nodes && split.initializers == created.initializers)

        r = try Self.run(["model", "create", "autoencoder-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--out", path("ae.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "info", path("ae.onnx")])
        #expect(r.stdout.contains("architecture: autoencoder-resnet-fmnist (full)"), "\(r.stdout)")
        #expect(r.stdout.contains("bottleneck: 1x2x3x3, uint8 payload 18 bytes"), "\(r.stdout)")
        r = try Self.run(["model", "split", path("ae.onnx"), "--at", "bottleneck", "--head", path("aeh.onnx"), "--tail", path("aet.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "info", path("aet.onnx")])
        #expect(r.stdout.contains("bottleneck: 1x2x3x3, uint8 payload 18 bytes per image (this tail's input)"), "\(r.stdout)")

        r = try Self.run(["model", "create", "resnet50", "--preset", "fashion-mnist", "--out", path("x.onnx")])
        #expect(r.status != 0 && r.stderr.contains("use resnet --preset fashion-mnist"), "\(r.stderr)")
        r = try Self.run(["model", "create", "bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--image-size", "30", "--out", path("x.onnx")])
        #expect(r.status != 0 && r.stderr.contains("into 32x7x7, but the teacher's layer2 is 32x8x8"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path("x.onnx")))
    }

    /// Mistakes that used to pass with exit 0 (issue 13): an empty tail, a head overwritten by its
    /// tail, a split that failed half-way leaving one part behind, a head given as the whole
    /// model, a learning rate of 0.
    @Test func silentMistakesAreErrors() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        var r = try Self.run(["model", "create", "bottlefit-resnet", "--preset", "fashion-mnist", "--bottleneck", "2", "--out", path("bf.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "logits", "--head", path("h.onnx"), "--tail", path("t.onnx")])
        #expect(r.status != 0 && r.stderr.contains("'logits' is a graph output: the tail would be empty"), "\(r.stderr)")
        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", dir.path + "/./h.onnx"])
        #expect(r.status == 64 && r.stderr.contains("--head and --tail are the same file"), "\(r.stderr)")
        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("bf.onnx")])
        #expect(r.status == 64 && r.stderr.contains("is the model being split"), "\(r.stderr)")
        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("missing/t.onnx")])
        #expect(r.status != 0 && r.stderr.contains("missing/t.onnx"), "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(left == ["bf.onnx"], "a failed split left files behind: \(left)")

        r = try Self.run(["model", "split", path("bf.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("t.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run(["device", "--model", "m", "--broker", "tcp://127.0.0.1:1", "--head", path("h.onnx"), "--full", path("h.onnx"), "--frames", "1"])
        #expect(r.status != 0 && r.stderr.contains("not a vector of class scores: is it a head?"), "\(r.stderr)")
        r = try Self.run(["eval", "--model", path("h.onnx"), "--limit", "10"])
        #expect(r.status != 0 && r.stderr.contains("not class scores [batch, classes]: is it a head?"), "\(r.stderr)")

        r = try Self.run(["train", "teacher", "--out", path("never"), "--lr", "0"])
        #expect(r.status == 64 && r.stderr.contains("--lr must be above 0"), "\(r.stderr)")
        r = try Self.run(["train", "bottlefit", "--teacher", path("bf.onnx"), "--bottleneck", "2", "--out", path("never"), "--stage2-lr", "nan"])
        #expect(r.status == 64 && r.stderr.contains("--stage2-lr must be above 0"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path("never")))
    }

    @Test func badInputsAreClearErrors() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.onnx").path
        _ = try Self.run(["model", "create", "resnet50", "--width", "4", "--classes", "5", "--image-size", "64", "--out", model])
        let garbage = dir.appendingPathComponent("garbage.npy")
        try Data("this is not numpy".utf8).write(to: garbage)
        var r = try Self.run(["infer", "--model", model, "--input", garbage.path, "--output", dir.appendingPathComponent("o.npy").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("not a .npy file"))
        let wrong = dir.appendingPathComponent("wrong.npy")
        try NPY.write(Tensor.zeros([1, 3, 32, 32]), to: wrong)
        r = try Self.run(["infer", "--model", model, "--input", wrong.path, "--output", dir.appendingPathComponent("o.npy").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("has shape 1x3x32x32"), "\(r.stderr)")
        r = try Self.run(["infer", "--model", garbage.path, "--input", wrong.path, "--output", dir.appendingPathComponent("o.npy").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("invalid model"))
        r = try Self.run(["bench", "--model", model, "--batch", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--batch must be between 1 and 4096"))
        r = try Self.run(["model", "split", model, "--at", "layer1.0.relu1", "--head", dir.appendingPathComponent("h.onnx").path, "--tail", dir.appendingPathComponent("t.onnx").path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("also crossed by"))
    }

    @Test func benchJSONIsOneObject() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.onnx").path
        _ = try Self.run(["model", "create", "resnet50", "--width", "4", "--classes", "5", "--image-size", "64", "--out", model])
        let r = try Self.run(["bench", "--model", model, "--batch", "2", "--threads", "2", "--warmup", "1", "--runs", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(Set(object?.keys.map { $0 } ?? []) == ["median_ms", "p10_ms", "p90_ms", "images_per_s", "batch", "threads"])
        #expect(object?["batch"] as? Int == 2)
        #expect(object?["threads"] as? Int == 2)
        #expect((object?["median_ms"] as? Double ?? 0) > 0)
    }

    @Test func checkONNXReportsPassFailSkip() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let node = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data/node")
        for name in ["test_relu", "test_det_2d", "test_sigmoid"] {
            try FileManager.default.copyItem(at: node.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        var r = try Self.run(["check-onnx", dir.path])
        #expect(r.status == 0)
        #expect(r.stdout.contains("PASS test_relu"))
        #expect(r.stdout.contains("SKIP test_det_2d: unsupported operator Det"), "\(r.stdout)")
        #expect(r.stdout.hasSuffix("2 passed, 0 failed, 1 skipped\n"), "\(r.stdout)")
        // Corrupt the expected output of one case: it must fail, and the exit status says so.
        let outFile = dir.appendingPathComponent("test_sigmoid/test_data_set_0/output_0.pb")
        var proto = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: outFile))
        var values = try ONNXImporter.tensor(from: proto).floats!
        values[0] += 1
        proto = ONNXExporter.tensorProto(Tensor(shape: proto.dims.map { Int($0) }, floats: values), name: proto.name)
        try proto.serializedData().write(to: outFile)
        r = try Self.run(["check-onnx", dir.path])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL test_sigmoid"))
        #expect(r.stdout.hasSuffix("1 passed, 1 failed, 1 skipped\n"))
    }

    /// Numbers that used to trap the runtime (issue 13): each is refused before any work, with a
    /// one-line usage error and exit 64.
    @Test func oversizedNumbersAreUsageErrors() throws {
        // A split camera with some existing file as its head passes every check but the number's.
        let camera = ["device", "--model", "m", "--broker", "tcp://127.0.0.1:1", "--head", "/etc/passwd"]
        let cases: [([String], String)] = [
            (["bench", "--model", "/nonexistent.onnx", "--batch", "1000000000"], "--batch must be between 1 and 4096"),
            (camera + ["--rate", "1e-300"], "frames per second must be between 0.001 and 100000"),
            (camera + ["--slo-ms", "18446744073709551615"], "the SLO must be between 1 ms and one day"),
            (camera + ["--duration", "1e300"], "--duration must be more than 0 and at most a year"),
            (["broker", "--report-window-s", "1e300"], "--report-window-s must be more than 0 and at most 3600"),
            (["model", "create", "resnet50", "--classes", "1000000000", "--out", "/tmp/never-written.onnx"], "--classes must be between 1 and 100000"),
        ]
        for (arguments, message) in cases {
            let r = try Self.run(arguments)
            #expect(r.status == 64, "\(arguments): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.contains("Error: ") && r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.onnx"))
    }

    @Test func everySubcommandHasHelp() throws {
        let commands = [["infer"], ["bench"], ["check-onnx"], ["model", "create"], ["model", "split"], ["model", "info"], ["version"],
                        ["broker"], ["worker"], ["device"], ["controller"], ["up"], ["bench-pipeline"]]
        for command in commands {
            let r = try Self.run(command + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("Example"), "\(command) --help has no example")
        }
        // Every long-running role documents its metrics endpoint.
        for role in ["broker", "worker", "device", "controller"] {
            let help = try Self.run([role, "--help"]).stdout
            #expect(help.contains("--metrics <host:port>") && help.contains("/healthz") && help.contains("Defaults:"), "\(role): \(help)")
        }
        #expect(try Self.run(["controller", "--help"]).stdout.contains("--latency-slo-ms"))
        #expect(try Self.run(["device", "--help"]).stdout.contains("--latency-report-ms"))
    }

    @Test func aBadMetricsAddressIsRefusedBeforeAnyWork() throws {
        for bad in ["9100", "127.0.0.1:99999", "::1:9100", "127.0.0.1:"] {
            let r = try Self.run(["broker", "--frontend", "inproc://f", "--backend", "inproc://b", "--stats", "inproc://s", "--metrics", bad])
            #expect(r.status != 0)
            #expect(r.stderr.contains("--metrics"), "\(bad): \(r.stderr)")
            #expect(!r.stderr.contains("broker serving"))
        }
    }
}

enum TensorHelpers {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() })
    }
}
