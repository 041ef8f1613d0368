import BottleFitCore
import BottleFitEngine

/// A model being trained: an ONNX-style `Graph` whose float initializers are live
/// parameters, run forward with a tape and backward by reverse-mode differentiation.
///
/// Layout is NCHW float32. Parameters are the float initializers; the running mean and
/// variance of BatchNormalization are state, updated by training-mode forward passes and
/// never given gradients. Freezing is by parameter name (`freeze(prefixes:)`): a frozen
/// parameter gets no gradient, and a BatchNormalization whose scale is frozen runs in
/// inference mode (running statistics, no updates), so a frozen part stays exactly as
/// it was.
public final class TrainingGraph {
    public private(set) var graph: Graph
    /// Current values of every float initializer (weights, biases, BN state).
    public private(set) var parameters: [String: Buffer]
    /// Names of the parameters that learn.
    public private(set) var trainable: Set<String>
    /// BatchNormalization running statistics: updated in forward passes, never trained.
    public let stateNames: Set<String>
    private let operators: [any TrainableOperator]
    private let producers: [String: Int]

    public init(_ graph: Graph) throws(TrainingError) {
        var sorted = graph
        do { try sorted.sortTopologically() } catch { throw .invalidArgument(error.description) }
        self.graph = sorted
        var ops: [any TrainableOperator] = []
        var state = Set<String>()
        for node in sorted.nodes {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw .unsupported("operator \(node.domain).\(node.opType) (node '\(node.name)')")
            }
            ops.append(try Self.makeOperator(node))
            if node.opType == "BatchNormalization" { state.formUnion(node.inputs[3...4]) }
        }
        operators = ops
        var params: [String: Buffer] = [:]
        for (name, tensor) in sorted.initializers where tensor.elementType == .float32 {
            params[name] = try Buffer(tensor)
        }
        parameters = params
        stateNames = state
        trainable = Set(params.keys).subtracting(state)
        producers = sorted.producers()
    }

    static func makeOperator(_ node: Node) throws(TrainingError) -> any TrainableOperator {
        switch node.opType {
        case "Conv": try ConvolutionGradient(node)
        case "ConvTranspose": try ConvTransposeGradient(node)
        case "BatchNormalization": try BatchNormGradient(node)
        case "Relu": try ReluGradient(node)
        case "MaxPool": try PoolGradient(node, kind: .max)
        case "AveragePool": try PoolGradient(node, kind: .average)
        case "GlobalAveragePool": try GlobalAveragePoolGradient(node)
        case "Add": try AddGradient(node)
        case "Concat": try ConcatGradient(node)
        case "Flatten": try FlattenGradient(node)
        case "Gemm": try GemmGradient(node)
        case "Identity", "Dropout": try IdentityGradient(node)
        default: throw .unsupported("operator \(node.opType) (node '\(node.name)')")
        }
    }

    /// Freezes every parameter whose name starts with one of `prefixes` (e.g. "encoder.",
    /// "layer3."); the others keep their current state.
    public func freeze(prefixes: [String]) {
        trainable = trainable.filter { name in !prefixes.contains { name.hasPrefix($0) } }
    }

    /// Makes exactly the parameters whose names start with one of `prefixes` trainable.
    public func train(onlyPrefixes prefixes: [String]) {
        trainable = Set(parameters.keys).subtracting(stateNames).filter { name in prefixes.contains { name.hasPrefix($0) } }
    }

    /// Makes every parameter trainable again.
    public func unfreezeAll() { trainable = Set(parameters.keys).subtracting(stateNames) }

    /// Replaces parameter values (gradient steps, checkpoints); shapes must not change.
    public func setParameter(_ name: String, _ value: Buffer) throws(TrainingError) {
        guard let old = parameters[name] else { throw .invalidArgument("no parameter named '\(name)'") }
        guard old.shape == value.shape else { throw .shapeMismatch("parameter '\(name)': \(value.shape) for \(old.shape)") }
        parameters[name] = value
    }

    /// In-place update of one parameter (the optimisers' path; avoids a copy).
    func updateParameter(_ name: String, _ body: (inout [Float]) -> Void) {
        body(&parameters[name]!.data)
    }

    /// Copies every parameter of `source` whose name and shape match one here (teacher →
    /// student); returns the names copied. Names present in both with different shapes fail.
    @discardableResult
    public func copyParameters(from source: Graph, prefixes: [String]? = nil) throws(TrainingError) -> [String] {
        var copied: [String] = []
        for (name, tensor) in source.initializers.sorted(by: { $0.key < $1.key }) {
            guard let mine = parameters[name] else { continue }
            if let prefixes, !prefixes.contains(where: { name.hasPrefix($0) }) { continue }
            guard tensor.shape == mine.shape else {
                throw .shapeMismatch("parameter '\(name)' is \(tensor.shape) in the source and \(mine.shape) here")
            }
            parameters[name] = try Buffer(tensor)
            copied.append(name)
        }
        return copied
    }

    /// The graph with its initializers set to the current parameter values.
    public func exportGraph() -> Graph {
        var g = graph
        for (name, value) in parameters { g.initializers[name] = value.tensor }
        return g
    }

    /// Number of trainable parameter elements.
    public var trainableCount: Int { trainable.reduce(0) { $0 + parameters[$1]!.count } }

    // MARK: Forward and backward

    /// A forward pass's values and what each node saved for the backward pass.
    public struct Pass {
        public internal(set) var values: [String: Buffer]
        var saved: [Int: SavedState]
        var executed: [Int]
        let training: Bool

        public subscript(_ name: String) -> Buffer? { values[name] }
    }

    /// Runs the nodes needed for `outputs`. With `training`, BatchNormalization of
    /// trainable parts uses batch statistics and updates its running statistics, and the
    /// pass is kept for `backward`.
    public func forward(_ inputs: [String: Buffer], outputs: [String], training: Bool) throws(TrainingError) -> Pass {
        for info in graph.inputs where parameters[info.name] == nil {
            guard let value = inputs[info.name] else { throw .invalidArgument("missing graph input '\(info.name)'") }
            if let shape = info.shape {
                let ok = shape.count == value.shape.count
                    && zip(shape, value.shape).allSatisfy { d, n in d.fixedValue.map { $0 == n } ?? true }
                guard ok else {
                    throw .shapeMismatch("input '\(info.name)' is \(value.shape), the model takes \(shape.map(\.description).joined(separator: "x"))")
                }
            }
        }
        let needed = try neededNodes(for: outputs)
        var values = inputs
        var saved: [Int: SavedState] = [:]
        for index in needed {
            let node = graph.nodes[index]
            var args: [Buffer] = []
            for name in node.inputs where !name.isEmpty {
                if let v = values[name] ?? parameters[name] {
                    args.append(v)
                } else if let t = graph.initializers[name], let b = try? Buffer(t) {
                    args.append(b)
                } else {
                    throw .invalidArgument("node '\(node.name)' needs '\(name)', which is not available")
                }
            }
            var state = SavedState()
            let batchStatistics = training && (node.opType != "BatchNormalization" || trainable.contains(node.inputs[1]))
            let result = try operators[index].forward(args, training: batchStatistics, saved: &state)
            values[node.outputs[0]] = result.output
            for (k, value) in result.updates { parameters[node.inputs[k]] = value }
            if training { saved[index] = state }
        }
        return Pass(values: values, saved: saved, executed: needed, training: training)
    }

    /// Node indices, in order, that `outputs` depend on.
    private func neededNodes(for outputs: [String]) throws(TrainingError) -> [Int] {
        var needed = Set<Int>()
        var stack = outputs
        var seen = Set<String>()
        while let name = stack.popLast() {
            guard seen.insert(name).inserted else { continue }
            if let p = producers[name] {
                if needed.insert(p).inserted { stack.append(contentsOf: graph.nodes[p].inputs.filter { !$0.isEmpty }) }
            } else if parameters[name] == nil && graph.initializers[name] == nil && !graph.inputs.contains(where: { $0.name == name }) {
                throw .invalidArgument("no value named '\(name)' in the model")
            }
        }
        return needed.sorted()
    }

    /// Reverse-mode differentiation of a training pass: `seeds` are the gradients of the
    /// loss with respect to some values of the pass; returns the gradients of every
    /// trainable parameter the seeds reach.
    public func backward(_ pass: Pass, seeds: [String: Buffer]) throws(TrainingError) -> [String: Buffer] {
        guard pass.training else { throw .invalidArgument("backward needs a pass run with training: true") }
        // Which values carry a gradient: trainable parameters and what depends on them.
        var dependsOnTrainable = Set<String>(trainable)
        for index in pass.executed {
            let node = graph.nodes[index]
            if node.inputs.contains(where: { dependsOnTrainable.contains($0) }) { dependsOnTrainable.insert(node.outputs[0]) }
        }
        var grads: [String: Buffer] = [:]
        for (name, g) in seeds {
            guard let v = pass.values[name] else { throw .invalidArgument("no value '\(name)' in this pass") }
            guard v.shape == g.shape else { throw .shapeMismatch("gradient for '\(name)' is \(g.shape), the value is \(v.shape)") }
            grads[name] = g
        }
        for index in pass.executed.reversed() {
            let node = graph.nodes[index]
            guard let dy = grads[node.outputs[0]] else { continue }
            let names = node.inputs.filter { !$0.isEmpty }
            let needs = names.map { dependsOnTrainable.contains($0) }
            guard needs.contains(true) else { continue }
            let args = names.map { pass.values[$0] ?? parameters[$0] ?? (try? Buffer(graph.initializers[$0]!))! }
            let inputGrads = operators[index].backward(dy, inputs: args, output: pass.values[node.outputs[0]]!, saved: pass.saved[index]!, needs: needs)
            for (k, name) in names.enumerated() where needs[k] {
                guard let g = inputGrads[k] else { continue }
                if grads[name] == nil { grads[name] = g } else { grads[name]!.accumulate(g) }
            }
            // Intermediate gradients are no longer needed once consumed.
            if !trainable.contains(node.outputs[0]) { grads[node.outputs[0]] = nil }
        }
        return grads.filter { trainable.contains($0.key) }
    }
}
