import BottleFitEngine
import Foundation

/// The fleet `bottlefit up` runs with no topology argument: topology/local.yaml's fleet, on
/// BottleFit ResNet-50 (C = 12) models kept in models/demo/, created on first run, plus
/// Fashion-MNIST cameras on the committed trained model.
enum DefaultFleet {
    /// Where the committed, trained Fashion-MNIST BottleFit model lives (relative to the
    /// repository root); see assets/fashion-mnist/README.md for the commands that made it.
    static let fashionMNISTModel = "assets/fashion-mnist/bottlefit-c2"

    /// The topology: ResNet-50 cameras on synthetic frames, and — when the trained
    /// Fashion-MNIST model is at `fashionMNIST` — cameras streaming labelled Fashion-MNIST
    /// images through it, which report accuracy per path.
    static func topology(fashionMNIST: URL?) -> String {
        var models = """
                bf12:
                  tail: tail.onnx
                  full: full.onnx
            """
        /// One camera entry of the `cameras` list.
        func camera(_ name: String, model: String, head: String, full: String, source: String, rate: Int, slo: Int, port: Int) -> String {
            """
              - name: \(name)
                model: \(model)
                head: \(head)
                full: \(full)
                source: \(source)
                rate: \(rate)
                slo_ms: \(slo)
                metrics: 127.0.0.1:\(port)
            """
        }
        var cameras = (1...2).map { i in
            camera("camera-\(i)", model: "bf12", head: "head.onnx", full: "full.onnx", source: "synthetic", rate: 5, slo: 250, port: 9519 + i)
        }
        if let f = fashionMNIST {
            models += """

                    fmnist-c2:
                      tail: \(f.appendingPathComponent("tail.onnx").path)
                      full: \(f.appendingPathComponent("full.onnx").path)
                """
            for i in 1...2 {
                cameras.append(camera(
                    "fmnist-\(i)", model: "fmnist-c2", head: f.appendingPathComponent("head.onnx").path,
                    full: f.appendingPathComponent("full.onnx").path, source: "fashion-mnist", rate: 20, slo: 100, port: 9521 + i))
            }
        }
        return """
            # Written by `bottlefit up` (the embedded default fleet); edit a copy and pass it to `up`.
            log_level: info
            broker:
              frontend: tcp://127.0.0.1:5555
              backend: tcp://127.0.0.1:5556
              stats: tcp://127.0.0.1:5557
              queue_capacity: 1024
              metrics: 127.0.0.1:9500
            workers:
              count: 2
              models:
            \(models)
              credit: 16
              max_batch: 8
              threads: 1
              metrics: 127.0.0.1:9501
            controller:
              stats: tcp://127.0.0.1:5557
              publish: tcp://127.0.0.1:5558
              slo_ms: 250
              latency_slo_ms: 250
              metrics: 127.0.0.1:9510
            cameras:
            \(cameras.joined(separator: "\n"))

            """
    }

    /// The default fleet under `root`: its folder (models/demo/), whether its ResNet-50 models
    /// are there yet, and the topology text (nothing is written).
    static func plan(in root: URL) -> (folder: URL, modelsPresent: Bool, topology: String) {
        let folder = root.appendingPathComponent("models/demo")
        let present = ["full", "head", "tail"].allSatisfy {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("\($0).onnx").path)
        }
        let trained = root.appendingPathComponent(fashionMNISTModel)
        let haveTrained = ["head", "tail", "full"].allSatisfy {
            FileManager.default.fileExists(atPath: trained.appendingPathComponent("\($0).onnx").path)
        }
        if haveTrained {
            print("[up] Fashion-MNIST cameras use the trained BottleFit model in \(trained.path) (labelled frames: accuracy per path)")
        } else {
            print("[up] no trained Fashion-MNIST model at \(trained.path) (run from the repository root for it); ResNet-50 cameras only")
        }
        return (folder, present, topology(fashionMNIST: haveTrained ? trained : nil))
    }

    /// Makes models/demo/ under `root` (models and the topology file) and returns the topology's path.
    static func prepare(in root: URL) throws -> String {
        let (folder, present, text) = plan(in: root)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if !present {
            print("[up] creating BottleFit ResNet-50 (C = 12) in \(folder.path)")
            let full = ModelFactory.bottleFitResNet(bottleneck: 12)
            let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
            for (graph, name) in [(full, "full"), (head, "head"), (tail, "tail")] {
                try ONNXExporter.write(graph, to: folder.appendingPathComponent("\(name).onnx"))
            }
        }
        let path = folder.appendingPathComponent("default-topology.yaml")
        try text.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }
}
