import BottleFitCore
import Foundation
internal import ONNXProto

/// Runs ONNX backend test cases: a folder with `model.onnx` and `test_data_set_*/`
/// holding `input_*.pb` and `output_*.pb` (serialized TensorProto).
public struct ConformanceRunner {
    public enum Outcome: Equatable {
        case passed
        case failed(String)
        /// The case needs something the engine does not support; the reason names it.
        case skipped(String)
    }

    public var rtol: Double
    public var atol: Double

    public init(rtol: Double = 1e-3, atol: Double = 1e-7) {
        self.rtol = rtol
        self.atol = atol
    }

    /// Case folders under the given paths: a path with `model.onnx` is a case, otherwise
    /// each sub-folder with one is (sorted by name).
    public static func discover(_ paths: [URL]) throws(EngineError) -> [URL] {
        let fm = FileManager.default
        var cases: [URL] = []
        for path in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path.path, isDirectory: &isDir), isDir.boolValue else {
                throw .io("\(path.path) is not a folder")
            }
            if fm.fileExists(atPath: path.appendingPathComponent("model.onnx").path) {
                cases.append(path)
                continue
            }
            let children = ((try? fm.contentsOfDirectory(atPath: path.path)) ?? []).sorted()
            let found = children.map { path.appendingPathComponent($0) }.filter {
                fm.fileExists(atPath: $0.appendingPathComponent("model.onnx").path)
            }
            if found.isEmpty { throw .io("\(path.path) holds no model.onnx, directly or one level down") }
            cases += found
        }
        return cases
    }

    /// Runs one case folder.
    public func run(_ folder: URL) -> Outcome {
        let graph: Graph
        do {
            let data = try Data(contentsOf: folder.appendingPathComponent("model.onnx"))
            // The operators first, so a skip names the missing operator rather than a data type.
            let proto = try Onnx_ModelProto(serializedBytes: data)
            let supported = Set(InferenceSession.supportedOperators)
            for n in proto.graph.node where !(n.domain.isEmpty || n.domain == "ai.onnx") || !supported.contains(n.opType) {
                let op = n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : "\(n.domain).\(n.opType)"
                return .skipped(EngineError.unsupportedOperator(op, node: n.name.isEmpty ? n.opType : n.name).description)
            }
            // Older opsets run too: an attribute the engine does not know fails the load anyway.
            graph = try ONNXImporter.graph(from: proto, checkOpset: false)
        } catch let e as EngineError {
            return classify(e)
        } catch {
            return .failed("cannot read model.onnx: \(error.localizedDescription)")
        }
        let session: InferenceSession
        do { session = try InferenceSession(graph: graph) } catch { return classify(error) }
        let fm = FileManager.default
        let sets = ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        if sets.isEmpty { return .failed("no test_data_set_* folder") }
        for set in sets {
            let dir = folder.appendingPathComponent(set)
            do {
                var inputs: [String: Tensor] = [:]
                for (i, v) in graph.inputs.enumerated() {
                    inputs[v.name] = try Self.readTensor(dir.appendingPathComponent("input_\(i).pb"))
                }
                let outputs = try session.run(inputs)
                for (i, v) in graph.outputs.enumerated() {
                    let expected = try Self.readTensor(dir.appendingPathComponent("output_\(i).pb"))
                    guard let actual = outputs[v.name] else { return .failed("\(set): output '\(v.name)' missing") }
                    if let problem = compare(actual, expected) { return .failed("\(set): output '\(v.name)': \(problem)") }
                }
            } catch let e as EngineError {
                if case .failed(let m) = classify(e) { return .failed("\(set): \(m)") }
                return classify(e)
            } catch {
                return .failed("\(set): \(error)")
            }
        }
        return .passed
    }

    func classify(_ e: EngineError) -> Outcome {
        switch e {
        case .unsupportedOperator, .unsupportedAttribute, .unsupportedDataType: .skipped(e.description)
        default: .failed(e.description)
        }
    }

    /// Element-wise |actual − expected| ≤ atol + rtol·|expected| (NaN matches NaN), shapes and types equal.
    public func compare(_ actual: Tensor, _ expected: Tensor) -> String? {
        guard actual.shape == expected.shape else {
            return "shape \(actual.shape) differs from expected \(expected.shape)"
        }
        guard actual.elementType == expected.elementType else {
            return "type \(actual.elementType.rawValue) differs from expected \(expected.elementType.rawValue)"
        }
        let a = actual.doubles, e = expected.doubles
        var worst = 0.0
        var worstIndex = -1
        for i in 0..<a.count {
            if a[i].isNaN && e[i].isNaN { continue }
            if a[i] == e[i] { continue }
            let excess = abs(a[i] - e[i]) - (atol + rtol * abs(e[i]))
            if excess > 0 || a[i].isNaN != e[i].isNaN, excess.isNaN || excess > worst || worstIndex < 0 {
                worst = excess.isNaN ? .infinity : excess
                worstIndex = i
            }
        }
        if worstIndex >= 0 {
            return "element \(worstIndex) is \(a[worstIndex]), expected \(e[worstIndex]) (rtol \(rtol), atol \(atol))"
        }
        return nil
    }

    /// Reads a serialized TensorProto (`input_0.pb`).
    public static func readTensor(_ url: URL) throws -> Tensor {
        let data = try Data(contentsOf: url)
        let proto = try Onnx_TensorProto(serializedBytes: data)
        return try ONNXImporter.tensor(from: proto)
    }
}
