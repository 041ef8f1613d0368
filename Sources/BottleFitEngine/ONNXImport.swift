import BottleFitCore
import Foundation
// The protobuf types stay inside this package (`package` access): clients see Graph and Tensor.
package import ONNXProto
internal import SwiftProtobuf

/// Reads ONNX models (opsets 11 to 18 of the default domain) into the engine's `Graph`.
public enum ONNXImporter {
    public static let supportedOpsets = 11...18

    /// Loads an `.onnx` file.
    public static func load(contentsOf url: URL) throws(EngineError) -> Graph {
        let data: Data
        // A protobuf message is at most 2 GiB.
        do { data = Data(try FileBytes.contents(of: url.path, maxBytes: Int(Int32.max))) } catch { throw .io(error.description) }
        do { return try decode(data) } catch {
            throw .invalidModel("\(url.lastPathComponent): \(error.description.replacingOccurrences(of: "invalid model: ", with: ""))")
        }
    }

    /// Parses serialized `ModelProto` bytes.
    public static func decode(_ data: Data, checkOpset: Bool = true) throws(EngineError) -> Graph {
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw .invalidModel("not an ONNX model: \(protobufProblem(error))")
        }
        return try graph(from: model, checkOpset: checkOpset)
    }

    /// Converts a parsed `ModelProto`.
    package static func graph(from model: Onnx_ModelProto, checkOpset: Bool = true) throws(EngineError) -> Graph {
        let g = model.graph
        var initializers: [String: Tensor] = [:]
        for t in g.initializer {
            initializers[t.name] = try tensor(from: t)
        }
        if !g.sparseInitializer.isEmpty {
            throw .unsupportedDataType("sparse initializer", context: "graph '\(g.name)'")
        }
        // Graph inputs that are also initializers are constants, not inputs (IR < 4 style).
        let inputs = try g.input.filter { initializers[$0.name] == nil }.map { (v) throws(EngineError) in try valueInfo(v) }
        let outputs = try g.output.map { (v) throws(EngineError) in try valueInfo(v) }
        var nodes: [Node] = []
        for (i, n) in g.node.enumerated() {
            let name = n.name.isEmpty ? "\(n.opType)_\(i)" : n.name
            guard n.domain.isEmpty || n.domain == "ai.onnx" else {
                throw .unsupportedOperator("\(n.domain).\(n.opType)", node: name)
            }
            var attributes: [String: AttributeValue] = [:]
            for a in n.attribute {
                attributes[a.name] = try attribute(a, op: n.opType, node: name)
            }
            nodes.append(Node(name: name, opType: n.opType, inputs: n.input, outputs: n.output, attributes: attributes))
        }
        var opset = 0
        for entry in model.opsetImport {
            if entry.domain.isEmpty || entry.domain == "ai.onnx" { opset = Int(entry.version) }
        }
        guard opset > 0 else { throw .invalidModel("the model imports no default-domain (ai.onnx) opset") }
        if checkOpset && !supportedOpsets.contains(opset) {
            throw .invalidModel("opset \(opset) is not supported (supported: \(supportedOpsets.lowerBound) to \(supportedOpsets.upperBound))")
        }
        var metadata: [String: String] = [:]
        for p in model.metadataProps { metadata[p.key] = p.value }
        var graph = Graph(
            name: g.name, nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers,
            opsetVersion: opset, metadata: metadata)
        try graph.sortTopologically()
        return graph
    }

    static func valueInfo(_ v: Onnx_ValueInfoProto) throws(EngineError) -> ValueInfo {
        guard case .tensorType? = v.type.value else {
            throw .unsupportedDataType("non-tensor value", context: "graph value '\(v.name)'")
        }
        let tt = v.type.tensorType
        let type = try elementType(Int(tt.elemType), context: "graph value '\(v.name)'")
        var shape: [Dimension]? = nil
        if tt.hasShape {
            shape = tt.shape.dim.map { d in
                switch d.value {
                case .dimValue(let n): .fixed(Int(n))
                case .dimParam(let p): .symbolic(p)
                case nil: .symbolic("")
                }
            }
        }
        return ValueInfo(name: v.name, elementType: type, shape: shape)
    }

    static func elementType(_ code: Int, context: String) throws(EngineError) -> ElementType {
        switch Onnx_TensorProto.DataType(rawValue: code) {
        case .float: return .float32
        case .uint8: return .uint8
        case .int64: return .int64
        case let other:
            throw .unsupportedDataType(other.map { "\($0)".uppercased() } ?? "code \(code)", context: context)
        }
    }

    /// Converts a `TensorProto` (raw_data or typed fields) into a tensor.
    package static func tensor(from t: Onnx_TensorProto) throws(EngineError) -> Tensor {
        let context = "tensor '\(t.name)'"
        if t.dataLocation == .external {
            throw .unsupportedDataType("external data", context: context)
        }
        let type = try elementType(Int(t.dataType), context: context)
        let shape = t.dims.map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidModel("\(context) has a negative dimension") }
        let count = shape.reduce(1, *)
        let raw = t.rawData
        switch type {
        case .float32:
            var values: [Float]
            if !raw.isEmpty {
                guard raw.count == count * 4 else { throw .invalidModel("\(context): raw_data holds \(raw.count) bytes, shape \(shape) needs \(count * 4)") }
                values = [Float](repeating: 0, count: count)
                values.withUnsafeMutableBytes { dst in raw.withUnsafeBytes { dst.copyMemory(from: $0) } }
            } else {
                values = t.floatData
            }
            guard values.count == count else { throw .invalidModel("\(context) holds \(values.count) values, shape \(shape) needs \(count)") }
            return Tensor(shape: shape, floats: values)
        case .uint8:
            let values: [UInt8] = !raw.isEmpty ? [UInt8](raw) : t.int32Data.map { UInt8(truncatingIfNeeded: $0) }
            guard values.count == count else { throw .invalidModel("\(context) holds \(values.count) values, shape \(shape) needs \(count)") }
            return Tensor(shape: shape, bytes: values)
        case .int64:
            var values: [Int64]
            if !raw.isEmpty {
                guard raw.count == count * 8 else { throw .invalidModel("\(context): raw_data holds \(raw.count) bytes, shape \(shape) needs \(count * 8)") }
                values = [Int64](repeating: 0, count: count)
                values.withUnsafeMutableBytes { dst in raw.withUnsafeBytes { dst.copyMemory(from: $0) } }
            } else {
                values = t.int64Data
            }
            guard values.count == count else { throw .invalidModel("\(context) holds \(values.count) values, shape \(shape) needs \(count)") }
            return Tensor(shape: shape, int64s: values)
        }
    }

    static func attribute(_ a: Onnx_AttributeProto, op: String, node: String) throws(EngineError) -> AttributeValue {
        switch a.type {
        case .int: return .int(Int(a.i))
        case .ints: return .ints(a.ints.map { Int($0) })
        case .float: return .float(a.f)
        case .floats: return .floats(a.floats)
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor: return .tensor(try tensor(from: a.t))
        default:
            if !a.refAttrName.isEmpty {
                throw .unsupportedAttribute(op: op, attribute: a.name, value: "reference to \(a.refAttrName)", node: node)
            }
            throw .unsupportedAttribute(op: op, attribute: a.name, value: "of kind \(a.type)", node: node)
        }
    }
}

/// What is wrong with bytes that are not a `ModelProto`, in words (SwiftProtobuf's error names
/// such as `malformedProtobuf` mean nothing to a user holding a file).
func protobufProblem(_ error: any Error) -> String {
    switch error as? BinaryDecodingError {
    case .truncated?: "the file ends in the middle of a field (truncated or still being written?)"
    case .invalidUTF8?: "a text field is not valid UTF-8"
    case .messageDepthLimit?: "messages nested deeper than protobuf allows"
    case .trailingGarbage?, .malformedProtobuf?: "the bytes are not a protobuf ModelProto (a different file type, or corrupt)"
    default: "the bytes are not a protobuf ModelProto (a different file type, or corrupt)"
    }
}
