import BottleFitCore
import Foundation
// The protobuf types stay inside this package (`package` access): clients see Graph and Tensor.
package import ONNXProto
internal import SwiftProtobuf

/// Writes the engine's `Graph` as an ONNX model that ONNX Runtime loads.
public enum ONNXExporter {
    /// The IR version written (ONNX 1.13+, read by every current runtime).
    public static let irVersion: Int64 = 8

    /// Builds the `ModelProto` for a graph.
    package static func model(from graph: Graph) -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = irVersion
        model.producerName = "bottlefit"
        model.producerVersion = BottleFitVersion.string
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(graph.opsetVersion)
        model.opsetImport = [opset]
        for (k, v) in graph.metadata.sorted(by: { $0.key < $1.key }) {
            var p = Onnx_StringStringEntryProto()
            p.key = k
            p.value = v
            model.metadataProps.append(p)
        }
        var g = Onnx_GraphProto()
        g.name = graph.name
        g.input = graph.inputs.map(valueInfo)
        g.output = graph.outputs.map(valueInfo)
        g.initializer = graph.initializers.keys.sorted().map { tensorProto(graph.initializers[$0]!, name: $0) }
        g.node = graph.nodes.map { n in
            var p = Onnx_NodeProto()
            p.name = n.name
            p.opType = n.opType
            p.domain = n.domain
            p.input = n.inputs
            p.output = n.outputs
            p.attribute = n.attributes.keys.sorted().map { attributeProto(name: $0, value: n.attributes[$0]!) }
            return p
        }
        model.graph = g
        return model
    }

    /// Serializes a graph to ONNX bytes.
    public static func encode(_ graph: Graph) throws(EngineError) -> Data {
        do { return try model(from: graph).serializedData() } catch {
            throw .io("cannot serialize the model: it is larger than the 2 GiB a protobuf message can hold, or a field is missing")
        }
    }

    /// Writes a graph to an `.onnx` file.
    public static func write(_ graph: Graph, to url: URL) throws(EngineError) {
        let data = try encode(graph)
        do { try data.write(to: url, options: .atomic) } catch {
            throw .io("cannot write \(url.path): \(FileBytes.reason(error))")
        }
    }

    static func dataType(_ t: ElementType) -> Onnx_TensorProto.DataType {
        switch t {
        case .float32: .float
        case .uint8: .uint8
        case .int64: .int64
        }
    }

    static func valueInfo(_ v: ValueInfo) -> Onnx_ValueInfoProto {
        var p = Onnx_ValueInfoProto()
        p.name = v.name
        var tt = Onnx_TypeProto.Tensor()
        tt.elemType = Int32(dataType(v.elementType).rawValue)
        if let shape = v.shape {
            var s = Onnx_TensorShapeProto()
            s.dim = shape.map { d in
                var dim = Onnx_TensorShapeProto.Dimension()
                switch d {
                case .fixed(let n): dim.dimValue = Int64(n)
                case .symbolic(let name): if !name.isEmpty { dim.dimParam = name }
                }
                return dim
            }
            tt.shape = s
        }
        p.type.tensorType = tt
        return p
    }

    /// A `TensorProto` with the elements in little-endian `raw_data`.
    package static func tensorProto(_ t: Tensor, name: String) -> Onnx_TensorProto {
        var p = Onnx_TensorProto()
        p.name = name
        p.dims = t.shape.map { Int64($0) }
        p.dataType = Int32(dataType(t.elementType).rawValue)
        switch t.storage {
        case .float32(let v): p.rawData = v.withUnsafeBytes { Data($0) }
        case .uint8(let v): p.rawData = Data(v)
        case .int64(let v): p.rawData = v.withUnsafeBytes { Data($0) }
        }
        return p
    }

    static func attributeProto(name: String, value: AttributeValue) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        switch value {
        case .int(let v): a.type = .int; a.i = Int64(v)
        case .ints(let v): a.type = .ints; a.ints = v.map { Int64($0) }
        case .float(let v): a.type = .float; a.f = v
        case .floats(let v): a.type = .floats; a.floats = v
        case .string(let v): a.type = .string; a.s = Data(v.utf8)
        case .strings(let v): a.type = .strings; a.strings = v.map { Data($0.utf8) }
        case .tensor(let v): a.type = .tensor; a.t = tensorProto(v, name: name)
        }
        return a
    }
}

/// The version of this tool, written into the models it produces.
public enum BottleFitVersion {
    public static let string = "0.1.0"
}
