import BottleFitEngine
import BottleFitMetricsServer
import Foundation

/// The fleet `bottlefit up` runs with no topology argument, as a typed `Topology`: the fleet of
/// topology/local.yaml (a unit test checks that both plan the same processes) on BottleFit
/// ResNet-50 (C = 12) models kept in models/demo/, created on first run, plus Fashion-MNIST cameras
/// on the committed trained model when it is there.
public enum DefaultFleet {
    /// Where the committed, trained Fashion-MNIST BottleFit model lives (relative to the
    /// repository root); see assets/fashion-mnist/README.md for the commands that made it.
    public static let fashionMNISTModel = "assets/fashion-mnist/bottlefit-c2"

    /// The topology: two ResNet-50 cameras on synthetic frames with their models in `models`, and —
    /// when `fashionMNIST` names the trained model's folder — two cameras streaming labelled
    /// Fashion-MNIST images through it, which report accuracy per path.
    public static func topology(models: URL, fashionMNIST: URL?) -> Topology {
        func file(_ folder: URL, _ name: String) -> String { folder.appendingPathComponent("\(name).onnx").path }
        func metrics(_ port: UInt16) -> MetricsAddress? { MetricsAddress("127.0.0.1:\(port)") }
        var served = ["bf12": TopologyModelFiles(tail: file(models, "tail"), full: file(models, "full"))]
        var cameras = (1...2).map { i in
            CameraSpec(name: "camera-\(i)", model: "bf12", head: file(models, "head"), full: file(models, "full"),
                       source: "synthetic", rate: 5, sloMs: 250, metrics: metrics(UInt16(9519 + i)))
        }
        if let f = fashionMNIST {
            served["fmnist-c2"] = TopologyModelFiles(tail: file(f, "tail"), full: file(f, "full"))
            cameras += (1...2).map { i in
                CameraSpec(name: "fmnist-\(i)", model: "fmnist-c2", head: file(f, "head"), full: file(f, "full"),
                           source: "fashion-mnist", rate: 20, sloMs: 100, metrics: metrics(UInt16(9521 + i)))
            }
        }
        return Topology(
            logLevel: "info",
            broker: BrokerSpec(frontend: "tcp://127.0.0.1:5555", backend: "tcp://127.0.0.1:5556", stats: "tcp://127.0.0.1:5557",
                               queueCapacity: 1024, metrics: metrics(9500)),
            workers: (1...2).map { i in
                WorkerSpec(name: "worker-\(i)", models: served, credit: 16, maxBatch: 8, threads: 1, metrics: metrics(UInt16(9500 + i)))
            },
            controller: ControllerSpec(stats: "tcp://127.0.0.1:5557", publish: "tcp://127.0.0.1:5558", sloMs: 250, latencySloMs: 250,
                                       metrics: metrics(9510)),
            cameras: cameras)
    }

    /// The default fleet under `root`: its model folder (models/demo/), whether its ResNet-50
    /// models are there yet, and the topology (nothing is written). `say` gets a line about the
    /// Fashion-MNIST cameras.
    public static func plan(in root: URL, say: (String) -> Void) -> (folder: URL, modelsPresent: Bool, topology: Topology) {
        let folder = root.appendingPathComponent("models/demo")
        let present = ["full", "head", "tail"].allSatisfy {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("\($0).onnx").path)
        }
        let trained = root.appendingPathComponent(fashionMNISTModel)
        let haveTrained = ["head", "tail", "full"].allSatisfy {
            FileManager.default.fileExists(atPath: trained.appendingPathComponent("\($0).onnx").path)
        }
        if haveTrained {
            say("Fashion-MNIST cameras use the trained BottleFit model in \(trained.path) (labelled frames: accuracy per path)")
        } else {
            say("no trained Fashion-MNIST model at \(trained.path) (run from the repository root for it); ResNet-50 cameras only")
        }
        return (folder, present, topology(models: folder, fashionMNIST: haveTrained ? trained : nil))
    }

    /// Writes the ResNet-50 models into `folder` (made if missing) unless they are there already.
    public static func createModels(in folder: URL, say: (String) -> Void) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let present = ["full", "head", "tail"].allSatisfy {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("\($0).onnx").path)
        }
        guard !present else { return }
        say("creating BottleFit ResNet-50 (C = 12) in \(folder.path)")
        let full = ModelFactory.bottleFitResNet(bottleneck: 12)
        let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
        for (graph, name) in [(full, "full"), (head, "head"), (tail, "tail")] {
            try ONNXExporter.write(graph, to: folder.appendingPathComponent("\(name).onnx"))
        }
    }
}
