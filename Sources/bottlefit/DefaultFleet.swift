import BottleFitEngine
import Foundation

/// The fleet `bottlefit up` runs with no topology argument: topology/local.yaml's fleet, on
/// BottleFit ResNet-50 (C = 12) models kept in models/demo/, created on first run.
enum DefaultFleet {
    static let topology = """
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
            bf12:
              tail: tail.onnx
              full: full.onnx
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
          count: 4
          mode: split
          model: bf12
          head: head.onnx
          full: full.onnx
          source: synthetic
          rate: 5
          slo_ms: 250
          metrics: 127.0.0.1:9520

        """

    /// Makes models/demo/ under `root` (models and the topology file) and returns the topology's path.
    static func prepare(in root: URL) throws -> String {
        let folder = root.appendingPathComponent("models/demo")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let files = ["full", "head", "tail"].map { folder.appendingPathComponent("\($0).onnx") }
        if !files.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) {
            print("[up] creating BottleFit ResNet-50 (C = 12) in \(folder.path)")
            let full = ModelFactory.bottleFitResNet(bottleneck: 12)
            let (head, tail) = try ModelSplitter.split(full, at: ModelFactory.bottleneckName)
            try ONNXExporter.write(full, to: files[0])
            try ONNXExporter.write(head, to: files[1])
            try ONNXExporter.write(tail, to: files[2])
        }
        let path = folder.appendingPathComponent("default-topology.yaml")
        try topology.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }
}
