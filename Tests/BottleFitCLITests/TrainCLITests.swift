import BottleFitCore
import BottleFitDatasets
import BottleFitEngine
import BottleFitImaging
import Foundation
import Testing
import BottleFitTestSupport

/// `bottlefit train` and `bottlefit eval` as a user runs them, on tiny real runs (narrow
/// models, a few hundred Fashion-MNIST images) so the debug binary finishes in seconds.
@Suite(.serialized, .blocking) struct TrainCLITests {
    static let tiny = ["--width", "8", "--limit", "256", "--eval-limit", "200", "--batch", "32", "--threads", "1"]

    func temporary() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func run(_ arguments: [String]) throws -> CLITests.Result {
        let r = try CLITests.run(arguments)
        #expect(r.status == 0, "bottlefit \(arguments.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        return r
    }

    /// Teacher, BottleFit and every baseline train, write ONNX, and `eval --json` scores them;
    /// the trained head, tail and full model give the same predictions in `bottlefit infer`
    /// and ONNX Runtime.
    @Test func trainedModelsRunTheSameInTheEngineAndONNXRuntime() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ s: String) -> String { dir.appendingPathComponent(s).path }
        let teacher = try run(["train", "teacher", "--out", path("teacher"), "--epochs", "1"] + Self.tiny)
        #expect(teacher.stdout.contains("epoch 1/1"))
        #expect(teacher.stdout.contains("img/s") && teacher.stdout.contains("ETA") && teacher.stdout.contains("loss"))
        let t = path("teacher/full.onnx")
        _ = try run(["train", "bottlefit", "--teacher", t, "--bottleneck", "2", "--out", path("bf"), "--stage1-epochs", "1", "--stage2-epochs", "1"] + Self.tiny)
        _ = try run(["train", "bottlefit", "--teacher", t, "--bottleneck", "2", "--out", path("kd"), "--kd", "--from-stage1", path("bf/stage1.onnx"), "--stage2-epochs", "1"] + Self.tiny)
        for kind in ["naive", "hnd", "autoencoder"] {
            _ = try run(["train", "baseline", kind, "--teacher", t, "--bottleneck", "2", "--out", path(kind), "--epochs", "1"] + Self.tiny)
            #expect(FileManager.default.fileExists(atPath: path("\(kind)/head.onnx")))
        }
        for name in ["bf", "kd"] {
            let history = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("\(name)/history.json")))) as! [[String: Any]]
            #expect(history.count == (name == "bf" ? 2 : 1))
        }
        // The trained model states its input normalisation (cameras and workers read it).
        for part in ["full", "head"] {
            let metadata = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path("bf/\(part).onnx"))).metadata
            #expect(metadata["bottlefit.input_mean"] == "\(FashionMNIST.mean)" && metadata["bottlefit.input_std"] == "\(FashionMNIST.std)")
        }
        // eval --json: exactly one object with accuracy and samples, float and uint8.
        for flag in [[], ["--quantize-bottleneck"]] {
            let e = try run(["eval", "--model", path("bf/full.onnx"), "--dataset", "fashion-mnist", "--limit", "300", "--json"] + flag)
            let lines = e.stdout.split(separator: "\n")
            #expect(lines.count == 1)
            let object = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
            #expect(object["samples"] as? Int == 300)
            let accuracy = try #require(object["accuracy"] as? Double)
            #expect((0...1).contains(accuracy))
        }
        // Real test images through head → tail and full, in the engine and in ONNX Runtime.
        let images = try FashionMNIST.load(.test).prefix(16)
        let x = Tensor(shape: [16, 1, 28, 28], floats: (0..<16).flatMap { i in Normalize.fashionMNIST(images.image(at: i)) })
        try NPY.write(x, to: URL(fileURLWithPath: path("x.npy")))
        for model in ["bf", "autoencoder"] {
            _ = try run(["infer", "--model", path("\(model)/full.onnx"), "--input", path("x.npy"), "--output", path("\(model)-y.npy")])
            _ = try run(["infer", "--model", path("\(model)/head.onnx"), "--input", path("x.npy"), "--output", path("\(model)-z.npy")])
            _ = try run(["infer", "--model", path("\(model)/tail.onnx"), "--input", path("\(model)-z.npy"), "--output", path("\(model)-y2.npy")])
            let ours = try NPY.read(contentsOf: URL(fileURLWithPath: path("\(model)-y.npy")))
            let split = try NPY.read(contentsOf: URL(fileURLWithPath: path("\(model)-y2.npy")))
            let reference = try ONNXRuntimeOracle.run(model: path("\(model)/full.onnx"), input: path("x.npy"), output: path("\(model)-ort.npy"))
            #expect(Self.argmax(ours) == Self.argmax(reference), "\(model): engine and ONNX Runtime predict differently")
            #expect(Self.argmax(split) == Self.argmax(reference), "\(model): head + tail and ONNX Runtime predict differently")
            let scale = reference.floats!.map(abs).max()!
            let diff = zip(ours.floats!, reference.floats!).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-4 * max(scale, 1), "\(model): max |diff| \(diff)")
        }
    }

    static func argmax(_ t: Tensor) -> [Int] {
        let v = t.floats!, k = t.shape[1]
        return (0..<t.shape[0]).map { i in (0..<k).max { v[i * k + $0] < v[i * k + $1] }! }
    }

    /// SIGINT mid-epoch leaves a checkpoint that `--resume` continues to the end; a resume of
    /// another recipe is refused.
    @Test func interruptedTrainingResumesFromItsCheckpoint() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("teacher").path
        let args = ["train", "teacher", "--out", out, "--epochs", "2", "--width", "4", "--limit", "4096", "--eval-limit", "100",
                    "--batch", "32", "--threads", "1", "--progress-interval", "0.05"]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        // Wait for the first progress line, then Ctrl-C.
        var seen = Data()
        let deadline = Date().addingTimeInterval(120)
        while !String(decoding: seen, as: UTF8.self).contains("/128 loss"), Date() < deadline {
            seen.append(pipe.fileHandleForReading.availableData)
        }
        kill(p.processIdentifier, SIGINT)
        seen.append(pipe.fileHandleForReading.readDataToEndOfFile())
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let text = String(decoding: seen, as: UTF8.self)
        #expect(p.terminationStatus != 0)
        #expect(!FileManager.default.fileExists(atPath: out + "/full.onnx"))
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint/state.json"))) as! [String: Any]
        let position = state["position"] as! [String: Int]
        #expect(position["epoch"]! < 2 && position["batch"]! > 0, "checkpoint position \(position); output: \(text)")
        #expect(errorText.contains("checkpoint saved"), "stderr: \(errorText)")
        // The checkpoint's model is a usable ONNX model.
        _ = try run(["model", "info", out + "/checkpoint/model.onnx"])
        // Another recipe must not resume from it.
        let wrong = try CLITests.run(["train", "teacher", "--out", out, "--epochs", "3", "--resume"] + Array(args[6...]))
        #expect(wrong.status != 0 && wrong.stderr.contains("checkpoint is of"))
        let resumed = try run(args + ["--resume"])
        #expect(resumed.stdout.contains("resuming"))
        #expect(FileManager.default.fileExists(atPath: out + "/full.onnx"))
        let history = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/history.json"))) as! [[String: Any]]
        #expect(history.map { $0["epoch"] as! Int } == [1, 2])
    }

    /// An ImageFolder tree (ImageNet layout) the test writes: JPEGs of three classes, one
    /// corrupt file. BottleFit ResNet-50's topology at 64 px trains on it and evaluates.
    @Test func imageFolderTrainsTheResNet50Family() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededGenerator(seed: 3)
        for (c, name) in ["bird", "cat", "dog"].enumerated() {
            let folder = dir.appendingPathComponent("images/\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for i in 0..<4 {
                let (w, h) = (72 + 8 * i, 64 + 4 * c)
                let pixels = (0..<(w * h * 3)).map { k in UInt8(truncatingIfNeeded: (k % 3 == c ? 180 : 40) + Int(rng.next() % 50)) }
                let jpeg = try JPEGCodec.encode(Image(width: w, height: h, channels: 3, pixels: pixels))
                try Data(jpeg).write(to: folder.appendingPathComponent("\(i).JPG"))
            }
        }
        try Data("not a jpeg".utf8).write(to: dir.appendingPathComponent("images/cat/broken.jpg"))
        let images = dir.appendingPathComponent("images").path
        let common = ["--dataset", "image-folder", "--train-folder", images, "--eval-folder", images, "--preset", "imagenet",
                      "--width", "2", "--image-size", "64", "--batch", "4", "--threads", "1"]
        let t = try run(["train", "teacher", "--out", dir.appendingPathComponent("t").path, "--epochs", "1"] + common)
        #expect(t.stdout.contains("3 batches of 4"))
        _ = try run(["train", "bottlefit", "--teacher", dir.appendingPathComponent("t/full.onnx").path, "--bottleneck", "3",
                     "--out", dir.appendingPathComponent("bf").path, "--stage1-epochs", "1", "--stage2-epochs", "1"] + common)
        let info = try run(["model", "info", "--json", dir.appendingPathComponent("bf/head.onnx").path])
        #expect(info.stdout.contains("\"bottleneck_shape\": [1, 3, 9, 9]"))
        let e = try run(["eval", "--model", dir.appendingPathComponent("bf/full.onnx").path, "--dataset", "image-folder", "--eval-folder", images, "--json"])
        #expect(e.stdout.contains("\"samples\": 12"))
    }

    @Test func badTrainingInputsAreClearErrors() throws {
        let dir = try temporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try CLITests.run(["train", "teacher", "--out", dir.path, "--data-dir", "/nonexistent"])
        #expect(missing.status != 0 && missing.stderr.contains("dataset-fashion-mnist"))
        let noTeacher = try CLITests.run(["train", "bottlefit", "--teacher", "/nonexistent.onnx", "--bottleneck", "2", "--out", dir.path])
        #expect(noTeacher.status != 0 && noTeacher.stderr.contains("/nonexistent.onnx"))
        let badKind = try CLITests.run(["train", "baseline", "magic", "--teacher", "x", "--bottleneck", "2", "--out", dir.path])
        #expect(badKind.status != 0 && badKind.stderr.contains("naive, hnd or autoencoder"))
        let noResume = try CLITests.run(["train", "teacher", "--out", dir.path, "--resume"] + Self.tiny)
        #expect(noResume.status != 0 && noResume.stderr.contains("no checkpoint"))
        for command in [["train", "teacher"], ["train", "bottlefit"], ["train", "baseline"], ["eval"], ["bench-train"], ["dataset"]] {
            let r = try CLITests.run(command + ["--help"])
            #expect(r.status == 0 && r.stdout.contains("Example"), "\(command) --help has no example")
        }
    }
}

/// ONNX Runtime through the project's venv (scripts/setup creates it).
enum ONNXRuntimeOracle {
    static func run(model: String, input: String, output: String) throws -> Tensor {
        let python = CLITests.root.appendingPathComponent(".venv/bin/python").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [CLITests.root.appendingPathComponent("scripts/oracle/ort_run.py").path, model, input, output]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
        return try NPY.read(contentsOf: URL(fileURLWithPath: output))
    }
}
