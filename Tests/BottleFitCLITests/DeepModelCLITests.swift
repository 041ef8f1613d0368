import BottleFitCore
import BottleFitEngine
import Foundation
import BottleFitTestSupport
import Testing

/// `model create` for DenseNet-169/201 and ResNet-152 and their BottleFit forms, as a user runs
/// it: the parts run with `bottlefit infer`, agree with ONNX Runtime, head then tail is the full
/// model, and `model split` at the bottleneck writes the same head and tail as `--part`.
@Suite(.blocking) struct DeepModelCLITests {
    /// Small sizes (a debug build runs them in seconds); the full sizes are checked by shape in DeepModelTests.
    static let cases: [(architecture: String, size: [String])] = [
        ("bottlefit-densenet169", ["--growth-rate", "4", "--image-size", "64", "--classes", "10"]),
        ("bottlefit-densenet201", ["--growth-rate", "4", "--image-size", "64", "--classes", "10"]),
        ("bottlefit-resnet152", ["--width", "4", "--image-size", "64", "--classes", "10"]),
    ]

    @Test(arguments: cases.indices)
    func bottleFitPartsRunAndAgree(index: Int) throws {
        let (architecture, size) = Self.cases[index]
        let dir = try CLITests().temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let create = ["model", "create", architecture, "--bottleneck", "3", "--seed", "5"] + size
        for part in ["full", "head", "tail"] {
            let r = try CLITests.run(create + ["--part", part, "--out", path("\(part).onnx")])
            #expect(r.status == 0, "\(architecture) \(part): \(r.stderr)")
        }
        var r = try CLITests.run(["model", "info", path("head.onnx")])
        #expect(r.stdout.contains("architecture: \(architecture) (head)"), "\(r.stdout)")
        #expect(r.stdout.contains("output: bottleneck float32[batchx3x9x9]"), "\(r.stdout)")
        #expect(r.stdout.contains("bottleneck: 1x3x9x9, uint8 payload 243 bytes"), "\(r.stdout)")

        // `model split` at the bottleneck reproduces --part head and --part tail.
        r = try CLITests.run(["model", "split", path("full.onnx"), "--at", "bottleneck", "--head", path("h.onnx"), "--tail", path("t.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cut 'bottleneck' is batchx3x9x9"), "\(r.stdout)")
        for (split, created) in [("h.onnx", "head.onnx"), ("t.onnx", "tail.onnx")] {
            let a = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path(split)))
            let b = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path(created)))
            #expect(a.nodes == b.nodes && a.initializers == b.initializers && a.inputs == b.inputs && a.outputs == b.outputs, "\(split)")
        }

        // infer: head then tail equals the full model, and each agrees with ONNX Runtime.
        try NPY.write(TensorHelpers.random([2, 3, 64, 64], seed: 6), to: dir.appendingPathComponent("x.npy"))
        for (model, input, output) in [("head.onnx", "x.npy", "z.npy"), ("tail.onnx", "z.npy", "y.npy"), ("full.onnx", "x.npy", "f.npy")] {
            r = try CLITests.run(["infer", "--model", path(model), "--input", path(input), "--output", path(output), "--threads", "2"])
            #expect(r.status == 0, "\(model): \(r.stderr)")
            let ours = try NPY.read(contentsOf: URL(fileURLWithPath: path(output)))
            let reference = try ONNXRuntimeOracle.run(model: path(model), input: path(input), output: path("ort-\(output)"))
            #expect(ours.shape == reference.shape)
            #expect(Self.relativeError(ours, reference) <= 1e-4, "\(architecture) \(model) vs ONNX Runtime")
        }
        let y = try NPY.read(contentsOf: URL(fileURLWithPath: path("y.npy")))
        let full = try NPY.read(contentsOf: URL(fileURLWithPath: path("f.npy")))
        #expect(y.shape == [2, 10])
        #expect(Self.relativeError(y, full) <= 1e-5, "\(architecture): head then tail differs from the full model")
    }

    @Test func teachersRunAndDescribeThemselves() throws {
        let dir = try CLITests().temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        for (architecture, size) in [("densenet201", ["--growth-rate", "4"]), ("resnet152", ["--width", "4"])] {
            var r = try CLITests.run(["model", "create", architecture, "--image-size", "64", "--classes", "10", "--out", path("m.onnx")] + size)
            #expect(r.status == 0, "\(r.stderr)")
            r = try CLITests.run(["model", "info", path("m.onnx")])
            #expect(r.stdout.contains("architecture: \(architecture) (full)"), "\(r.stdout)")
            try NPY.write(TensorHelpers.random([1, 3, 64, 64], seed: 7), to: dir.appendingPathComponent("x.npy"))
            r = try CLITests.run(["infer", "--model", path("m.onnx"), "--input", path("x.npy"), "--output", path("y.npy")])
            #expect(r.status == 0, "\(r.stderr)")
            let reference = try ONNXRuntimeOracle.run(model: path("m.onnx"), input: path("x.npy"), output: path("ort.npy"))
            #expect(Self.relativeError(try NPY.read(contentsOf: URL(fileURLWithPath: path("y.npy"))), reference) <= 1e-4, "\(architecture)")
        }
        // The DenseNet teacher splits where the BottleFit decoder ends: after transition2.
        var r = try CLITests.run(["model", "create", "densenet169", "--growth-rate", "4", "--image-size", "64", "--out", path("d.onnx")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLITests.run(["model", "split", path("d.onnx"), "--at", "transition2", "--head", path("dh.onnx"), "--tail", path("dt.onnx")])
        #expect(r.status == 0 && r.stdout.contains("cut 'transition2' is batchx32x4x4"), "\(r.stdout) \(r.stderr)")
    }

    @Test func unsupportedCombinationsAreOneLineErrors() throws {
        let out = "/tmp/never-written-\(UUID().uuidString).onnx"
        let cases: [([String], String)] = [
            (["densenet169", "--width", "8"], "--width and --blocks apply to the ResNets; densenet169 has its dense blocks and takes --growth-rate"),
            (["bottlefit-densenet201", "--bottleneck", "2", "--blocks", "1,1,1,1"], "--width and --blocks apply to the ResNets"),
            (["resnet", "--growth-rate", "8"], "--growth-rate applies to densenet169, densenet201 and their bottlefit- forms only"),
            (["bottlefit-resnet152", "--bottleneck", "2", "--blocks", "1,1,1,1"], "bottlefit-resnet152 has blocks 3,8,36,3; use bottlefit-resnet --blocks"),
            (["densenet201", "--preset", "fashion-mnist"], "densenet201 is an ImageNet model and takes no --preset"),
            (["densenet169", "--image-size", "28"], "a 28 px input is too small for the stem and three transitions"),
            (["densenet169", "--growth-rate", "0"], "--growth-rate must be between 1 and 256"),
            (["bottlefit-densenet169"], "bottlefit-densenet169 needs --bottleneck C"),
            (["densenet169", "--part", "head"], "--part applies to bottlefit-* and autoencoder-resnet only"),
        ]
        for (arguments, message) in cases {
            let r = try CLITests.run(["model", "create"] + arguments + ["--out", out])
            #expect(r.status == 64, "\(arguments): exit \(r.status), \(r.stderr)")
            let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage:") && !$0.hasPrefix("Help:") && !$0.hasPrefix("  See '") && !$0.isEmpty }
            #expect(lines.count == 1 && lines[0].contains(message), "\(arguments): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        let x = a.floats ?? [], y = b.floats ?? []
        guard x.count == y.count, !y.isEmpty else { return .infinity }
        let scale = Double(y.map { abs($0) }.max()!)
        let diff = Double(zip(x, y).map { abs($0 - $1) }.max()!)
        return scale > 0 ? diff / scale : diff
    }
}
