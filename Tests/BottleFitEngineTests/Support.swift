import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// Paths and the ONNX Runtime oracle shared by the engine tests.
enum TestSupport {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The venv Python that has onnxruntime (scripts/setup creates it).
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["BOTTLEFIT_PYTHON"], !p.isEmpty { return p }
        return packageRoot.appendingPathComponent(".venv/bin/python").path
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct ProcessFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs the model with ONNX Runtime (the oracle) on one input.
    static func onnxRuntime(model: URL, input: Tensor, in dir: URL) throws -> Tensor {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ProcessFailure(description: "no Python with onnxruntime at \(python); run scripts/setup (or scripts/test)")
        }
        let x = dir.appendingPathComponent("oracle-in-\(UUID().uuidString).npy")
        let y = dir.appendingPathComponent("oracle-out-\(UUID().uuidString).npy")
        try NPY.write(input, to: x)
        try OracleServer.shared.run(model: model.path, input: x.path, output: y.path)
        return try NPY.read(contentsOf: y)
    }

    static func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() })
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        let x = a.doubles, y = b.doubles
        var diff = 0.0, scale = 0.0
        for i in 0..<min(x.count, y.count) {
            diff = max(diff, abs(x[i] - y[i]))
            scale = max(scale, abs(y[i]))
        }
        return scale > 0 ? diff / scale : diff
    }
}
