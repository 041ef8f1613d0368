import BottleFitCore

/// An operator attribute value (the subset of ONNX attribute kinds the engine reads).
public enum AttributeValue: Sendable, Equatable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
    case strings([String])
    case tensor(Tensor)
}

/// One dimension of a declared shape: a fixed size or a named, free size (e.g. the batch).
public enum Dimension: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var description: String {
        switch self {
        case .fixed(let n): String(n)
        case .symbolic(let s): s.isEmpty ? "?" : s
        }
    }

    public var fixedValue: Int? {
        if case .fixed(let n) = self { return n }
        return nil
    }
}

/// A graph input or output: its name, element type and declared shape (nil: unknown rank).
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var elementType: ElementType
    public var shape: [Dimension]?

    public init(name: String, elementType: ElementType = .float32, shape: [Dimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    public var shapeDescription: String {
        guard let shape else { return "unknown" }
        return shape.isEmpty ? "scalar" : shape.map(\.description).joined(separator: "x")
    }
}

/// One operator application; `""` in `inputs` marks an omitted optional input.
public struct Node: Sendable, Equatable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]

    public init(
        name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
        attributes: [String: AttributeValue] = [:]
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The input at `index`, or nil when it is absent or omitted.
    public func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }
}

/// A computation graph in the engine's own form: ONNX's model, minus what the engine
/// does not use. Nodes are kept in topological order.
public struct Graph: Sendable, Equatable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: Tensor]
    /// The default-domain opset the graph was written against.
    public var opsetVersion: Int
    /// Free-form metadata carried through ONNX `metadata_props`.
    public var metadata: [String: String]

    public init(
        name: String, nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo],
        initializers: [String: Tensor], opsetVersion: Int = 17, metadata: [String: String] = [:]
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.opsetVersion = opsetVersion
        self.metadata = metadata
    }

    /// Number of parameters: elements of all float initializers.
    public var parameterCount: Int {
        initializers.values.reduce(0) { $0 + ($1.elementType == .float32 ? $1.count : 0) }
    }

    /// For each value name, the indices of the nodes that consume it.
    public func consumers() -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for name in node.inputs where !name.isEmpty { result[name, default: []].append(i) }
        }
        return result
    }

    /// For each value name, the index of the node that produces it.
    public func producers() -> [String: Int] {
        var result: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for name in node.outputs where !name.isEmpty { result[name] = i }
        }
        return result
    }

    /// Sorts nodes topologically (stable for already-sorted graphs); fails on a cycle or a
    /// value that nothing produces.
    public mutating func sortTopologically() throws(EngineError) {
        var available = Set(inputs.map(\.name)).union(initializers.keys)
        var remaining = nodes
        var sorted: [Node] = []
        sorted.reserveCapacity(nodes.count)
        while !remaining.isEmpty {
            var progressed = false
            var next: [Node] = []
            for node in remaining {
                if node.inputs.allSatisfy({ $0.isEmpty || available.contains($0) }) {
                    sorted.append(node)
                    available.formUnion(node.outputs.filter { !$0.isEmpty })
                    progressed = true
                } else {
                    next.append(node)
                }
            }
            if !progressed {
                let node = next[0]
                let missing = node.inputs.filter { !$0.isEmpty && !available.contains($0) }
                throw .invalidModel(
                    "node '\(node.name)' (\(node.opType)) needs \(missing.joined(separator: ", ")), which nothing produces (or the graph has a cycle)"
                )
            }
            remaining = next
        }
        nodes = sorted
    }
}

/// Errors of the engine: loading, planning and running models.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case unsupportedOperator(String, node: String)
    case unsupportedAttribute(op: String, attribute: String, value: String, node: String)
    case unsupportedDataType(String, context: String)
    case invalidModel(String)
    case shapeMismatch(String)
    case io(String)

    public var description: String {
        switch self {
        case .unsupportedOperator(let op, let node):
            "unsupported operator \(op) (node '\(node)')"
        case .unsupportedAttribute(let op, let attribute, let value, let node):
            "unsupported attribute \(attribute)=\(value) of \(op) (node '\(node)')"
        case .unsupportedDataType(let type, let context):
            "unsupported data type \(type) (\(context))"
        case .invalidModel(let message): "invalid model: \(message)"
        case .shapeMismatch(let message): "shape mismatch: \(message)"
        case .io(let message): message
        }
    }
}
