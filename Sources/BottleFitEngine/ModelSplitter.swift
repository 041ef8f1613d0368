import BottleFitCore

/// Splits a model at one named tensor into a head (inputs → tensor) and a tail
/// (tensor → outputs). A cut that any other value crosses is refused.
public enum ModelSplitter {
    public static func split(_ graph: Graph, at tensor: String) throws(EngineError) -> (head: Graph, tail: Graph) {
        let producers = graph.producers()
        let graphInputs = Set(graph.inputs.map(\.name))
        guard producers[tensor] != nil || graphInputs.contains(tensor) else {
            let known = graph.nodes.flatMap(\.outputs).prefix(8).joined(separator: ", ")
            throw .invalidModel("no value named '\(tensor)' in the model (values include: \(known), …)")
        }
        guard !graphInputs.contains(tensor) else {
            throw .invalidModel("'\(tensor)' is a graph input: the head would be empty")
        }
        guard !graph.outputs.contains(where: { $0.name == tensor }) else {
            throw .invalidModel("'\(tensor)' is a graph output: the tail would be empty; cut at a tensor inside the model")
        }
        // The head: every node the tensor depends on.
        var headNodes = Set<Int>()
        var stack = [tensor]
        while let v = stack.popLast() {
            guard let p = producers[v], !headNodes.contains(p) else { continue }
            headNodes.insert(p)
            for i in graph.nodes[p].inputs where !i.isEmpty && graph.initializers[i] == nil { stack.append(i) }
        }
        let headValues = Set(headNodes.flatMap { graph.nodes[$0].outputs }).union(graphInputs)
        // Values that the tail reads from the head side, other than the cut tensor itself.
        var crossing: [String: String] = [:]
        for (i, node) in graph.nodes.enumerated() where !headNodes.contains(i) {
            for v in node.inputs where !v.isEmpty && v != tensor && headValues.contains(v) && graph.initializers[v] == nil {
                crossing[v] = crossing[v] ?? node.name
            }
        }
        if !crossing.isEmpty {
            let list = crossing.keys.sorted().map { "'\($0)' (read by '\(crossing[$0]!)')" }.joined(separator: ", ")
            throw .invalidModel(
                "cannot split at '\(tensor)': the cut is also crossed by \(list); choose a tensor that every path from the inputs to the outputs passes through")
        }
        for out in graph.outputs where out.name != tensor && headValues.contains(out.name) {
            throw .invalidModel("cannot split at '\(tensor)': graph output '\(out.name)' would be computed in the head")
        }
        let tailReadsInput = graph.nodes.enumerated().contains { i, n in !headNodes.contains(i) && n.inputs.contains { graphInputs.contains($0) } }
        if tailReadsInput {
            throw .invalidModel("cannot split at '\(tensor)': nodes after the cut read a graph input directly")
        }

        let cutType = try tensorInfo(graph, tensor)
        func subgraph(_ nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo], part: String) -> Graph {
            let used = Set(nodes.flatMap(\.inputs))
            var g = Graph(
                name: "\(graph.name)_\(part)", nodes: nodes, inputs: inputs, outputs: outputs,
                initializers: graph.initializers.filter { used.contains($0.key) }, opsetVersion: graph.opsetVersion,
                metadata: graph.metadata)
            g.metadata["bottlefit.part"] = part
            g.metadata["bottlefit.bottleneck"] = tensor
            return g
        }
        let head = subgraph(
            graph.nodes.enumerated().filter { headNodes.contains($0.offset) }.map(\.element), inputs: graph.inputs,
            outputs: [cutType], part: "head")
        let tail = subgraph(
            graph.nodes.enumerated().filter { !headNodes.contains($0.offset) }.map(\.element), inputs: [cutType],
            outputs: graph.outputs, part: "tail")
        return (head, tail)
    }

    /// The declared type of an intermediate value, inferred at batch 1 with a symbolic batch dimension.
    static func tensorInfo(_ graph: Graph, _ name: String) throws(EngineError) -> ValueInfo {
        let shapes = try graph.inputs.map { (v) throws(EngineError) in try InferenceSession.concreteShape(v, batch: 1) }
        let analysis = try Planner(session: try InferenceSession(graph: graph, optimize: false), graph: graph, inputShapes: shapes).analyze()
        guard let t = analysis.types[name] else { throw .invalidModel("cannot infer the shape of '\(name)'") }
        let batchName = graph.inputs.first?.shape?.first.flatMap { if case .symbolic(let s) = $0 { s } else { nil } } ?? "batch"
        var dims = t.shape.map { Dimension.fixed($0) }
        if !dims.isEmpty { dims[0] = .symbolic(batchName.isEmpty ? "batch" : batchName) }
        return ValueInfo(name: name, elementType: t.elementType, shape: dims)
    }
}

/// What `bottlefit model info` reports about a model.
public struct ModelSummary: Sendable {
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Learned parameters (batch-norm running statistics excluded).
    public var parameters: Int
    /// Multiply-accumulates of one image (batch 1).
    public var macs: Int
    /// The bottleneck's shape at batch 1 and its uint8 payload in bytes: a head's output, or
    /// the value `bottlefit.bottleneck` names in a full model or a tail.
    public var bottleneck: (shape: [Int], bytes: Int)?
    public var metadata: [String: String]

    public init(_ graph: Graph) throws(EngineError) {
        inputs = graph.inputs
        outputs = graph.outputs
        metadata = graph.metadata
        var buffers = Set<String>()
        for n in graph.nodes where n.opType == "BatchNormalization" {
            for i in 3...4 { if let v = n.input(i) { buffers.insert(v) } }
        }
        parameters = graph.initializers.filter { $0.value.elementType == .float32 && !buffers.contains($0.key) }.reduce(0) { $0 + $1.value.count }
        let shapes = try graph.inputs.map { (v) throws(EngineError) in try InferenceSession.concreteShape(v, batch: 1) }
        let analysis = try Planner(session: try InferenceSession(graph: graph, optimize: false), graph: graph, inputShapes: shapes).analyze()
        var macs = 0
        for s in analysis.steps {
            let out = s.outputTypes.first?.count ?? 0
            switch s.node.opType {
            case "Conv":
                if let w = s.context.input(1) { macs += out * w.shape[1...].reduce(1, *) }
            case "ConvTranspose":
                if let x = s.context.input(0), let w = s.context.input(1) { macs += x.count * w.shape[1...].reduce(1, *) }
            case "Gemm":
                if let shape = try? GemmOperator.shape(s.context) { macs += shape.m * shape.n * shape.k }
            case "MatMul":
                if let shape = try? MatMulOperator.shape(s.context) { macs += shape.batch.reduce(1, *) * shape.m * shape.n * shape.k }
            default: break
            }
        }
        self.macs = macs
        if graph.metadata["bottlefit.part"] == "head", graph.outputs.count == 1, let t = analysis.types[graph.outputs[0].name] {
            bottleneck = (t.shape, t.count)
        } else if let name = graph.metadata["bottlefit.bottleneck"], let t = analysis.types[name], graph.initializers[name] == nil {
            // A full model or a tail: the value the metadata names (a tail's input).
            bottleneck = (t.shape, t.count)
        } else {
            bottleneck = nil
        }
    }
}
