import BottleFitCore
import Foundation

/// Runs an ONNX model: float32 NCHW tensors in and out.
///
/// Numeric contract: results match ONNX Runtime within max|Δ| ≤ 1e-4 · max|reference|
/// on the BottleFit and ResNet models, and the ONNX backend cases within their tolerances
/// (rtol 1e-3, atol 1e-7). A session optimises the graph once; a plan per set of input
/// shapes fixes every buffer, so a steady-state inference allocates nothing. A session
/// and its plans are used from one thread at a time.
public final class InferenceSession {
    /// The model as loaded.
    public let graph: Graph
    /// The model after load-time optimisation.
    public let optimizedGraph: Graph
    private var plans: [[Int]: ExecutionPlan] = [:]
    private var valuePlans: [String: ExecutionPlan] = [:]
    private var constantBuffers: [String: AlignedBuffer] = [:]

    /// How this session's plans compute: threads, GEMM, instruction set.
    public let compute: ComputeContext

    /// Loads and validates a graph; fails naming the first unsupported operator or attribute.
    public init(graph: Graph, optimize: Bool = true, compute: ComputeContext = .singleThreaded) throws(EngineError) {
        try OperatorRegistry.validate(graph)
        self.graph = graph
        optimizedGraph = optimize ? GraphOptimizer.optimize(graph) : graph
        self.compute = compute
    }

    /// Loads an `.onnx` file.
    public convenience init(contentsOf url: URL, optimize: Bool = true, compute: ComputeContext = .singleThreaded) throws(EngineError) {
        try self.init(graph: try ONNXImporter.load(contentsOf: url), optimize: optimize, compute: compute)
    }

    /// The plan for these input shapes (graph input order), made once and cached.
    ///
    /// `constantInputs` are inputs whose values the plan may depend on (int64 inputs that
    /// feed shape arithmetic, such as Reshape's shape); the plan is cached per value.
    public func plan(inputShapes: [[Int]], constantInputs: [String: Tensor] = [:]) throws(EngineError) -> ExecutionPlan {
        if !constantInputs.isEmpty {
            let key = "\(inputShapes)|" + constantInputs.keys.sorted().map { "\($0)=\(constantInputs[$0]!.doubles)" }.joined(separator: ";")
            if let p = valuePlans[key] { return p }
            let p = try Planner(session: self, graph: optimizedGraph, inputShapes: inputShapes, constantInputs: constantInputs).build()
            valuePlans[key] = p
            return p
        }
        if let p = plans[inputShapes.flatMap { $0 + [-1] }] { return p }
        guard inputShapes.count == optimizedGraph.inputs.count else {
            throw .shapeMismatch("the model has \(optimizedGraph.inputs.count) inputs, \(inputShapes.count) shapes given")
        }
        let p = try Planner(session: self, graph: optimizedGraph, inputShapes: inputShapes).build()
        plans[inputShapes.flatMap { $0 + [-1] }] = p
        return p
    }

    /// The plan for a batch size when the model has one input whose only free dimension is the first.
    public func plan(batch: Int) throws(EngineError) -> ExecutionPlan {
        try plan(inputShapes: try optimizedGraph.inputs.map { (v) throws(EngineError) in try Self.concreteShape(v, batch: batch) })
    }

    /// A declared input shape with the batch (first) dimension set; other dimensions must be fixed.
    public static func concreteShape(_ v: ValueInfo, batch: Int) throws(EngineError) -> [Int] {
        guard let shape = v.shape, !shape.isEmpty else {
            throw .shapeMismatch("input '\(v.name)' has no declared shape; give the shape explicitly")
        }
        var out: [Int] = []
        for (i, d) in shape.enumerated() {
            // The first dimension is the batch when it is free; a fixed one must agree.
            if i == 0, let fixed = d.fixedValue, fixed != batch {
                throw .shapeMismatch("input '\(v.name)' has a fixed first dimension \(fixed); batch \(batch) does not fit")
            }
            if i == 0 { out.append(batch); continue }
            guard let n = d.fixedValue else {
                throw .shapeMismatch("input '\(v.name)' has a free dimension \(d) at axis \(i); give the shape explicitly")
            }
            out.append(n)
        }
        return out
    }

    /// Float graph inputs that a node reads as a parameter its plan depends on (Resize's
    /// scales, Pad's constant value): like int64 inputs, plans are made per value.
    private lazy var floatParameterInputs: Set<String> = {
        let inputs = Set(optimizedGraph.inputs.map(\.name))
        var found = Set<String>()
        for n in optimizedGraph.nodes {
            for i in OperatorRegistry.floatParameterSlots[n.opType] ?? [] {
                if let name = n.input(i), inputs.contains(name) { found.insert(name) }
            }
        }
        return found
    }()

    /// Runs the model on named inputs and returns every graph output by name.
    public func run(_ inputs: [String: Tensor]) throws(EngineError) -> [String: Tensor] {
        var shapes: [[Int]] = []
        for v in optimizedGraph.inputs {
            guard let t = inputs[v.name] else { throw .shapeMismatch("missing input '\(v.name)'") }
            shapes.append(t.shape)
        }
        var byValue: [String: Tensor] = [:]
        for v in optimizedGraph.inputs where v.elementType == .int64 || floatParameterInputs.contains(v.name) {
            byValue[v.name] = inputs[v.name]
        }
        let p = try plan(inputShapes: shapes, constantInputs: byValue)
        for v in optimizedGraph.inputs { try p.setInput(v.name, inputs[v.name]!) }
        p.execute()
        var out: [String: Tensor] = [:]
        for v in optimizedGraph.outputs { out[v.name] = p.output(v.name) }
        return out
    }

    /// Runs a single-input, single-output model.
    public func run(_ input: Tensor) throws(EngineError) -> Tensor {
        guard optimizedGraph.inputs.count == 1, optimizedGraph.outputs.count == 1 else {
            throw .invalidModel("the model has \(optimizedGraph.inputs.count) inputs and \(optimizedGraph.outputs.count) outputs; name them")
        }
        return try run([optimizedGraph.inputs[0].name: input])[optimizedGraph.outputs[0].name]!
    }

    /// Session-wide memory for an initializer, shared by all plans.
    func constantBuffer(_ name: String, _ tensor: Tensor) -> AlignedBuffer {
        if let b = constantBuffers[name] { return b }
        let b = AlignedBuffer(copying: tensor)
        constantBuffers[name] = b
        return b
    }

    /// Weights prepared for a kernel (packed, Winograd-transformed), shared by all of this
    /// session's plans: a worker plans every batch size it sees, and the weights are the
    /// same in each.
    let preparedWeights = PreparedWeights()
}

/// A session's prepared weights by key (a node's first output names it uniquely).
final class PreparedWeights {
    private var entries: [String: AnyObject] = [:]

    var count: Int { entries.count }

    func value<T: AnyObject>(_ key: String, _ make: () -> T) -> T {
        if let v = entries[key] as? T { return v }
        let v = make()
        entries[key] = v
        return v
    }
}

/// A model planned for fixed input shapes: every buffer placed, every kernel built.
public final class ExecutionPlan {
    public let inputTypes: [(name: String, type: ValueType)]
    public let outputTypes: [(name: String, type: ValueType)]
    let steps: [any Kernel]
    let stepNames: [String]
    /// The session's compute context: kept alive (and its threads running) as long as the plan.
    let compute: ComputeContext
    let pointers: [String: UnsafeMutableRawPointer]
    /// Keeps the arena, workspace and constants alive as long as the kernels that point into them.
    let owned: [AlignedBuffer]
    /// Bytes of activation memory (the arena) this plan uses.
    public let arenaBytes: Int
    /// Bytes the same values would take with a buffer each (what liveness-based reuse saves).
    public let unsharedBytes: Int
    /// Bytes of constants (weights, folded values) the plan reads while it runs. Weights a
    /// kernel packs or transforms for itself are not kept in their plain form.
    public let constantBytes: Int

    init(
        inputTypes: [(String, ValueType)], outputTypes: [(String, ValueType)], steps: [any Kernel], stepNames: [String],
        pointers: [String: UnsafeMutableRawPointer], owned: [AlignedBuffer], arenaBytes: Int, unsharedBytes: Int,
        constantBytes: Int, compute: ComputeContext
    ) {
        self.compute = compute
        self.unsharedBytes = unsharedBytes
        self.constantBytes = constantBytes
        self.inputTypes = inputTypes.map { (name: $0.0, type: $0.1) }
        self.outputTypes = outputTypes.map { (name: $0.0, type: $0.1) }
        self.steps = steps
        self.stepNames = stepNames
        self.pointers = pointers
        self.owned = owned
        self.arenaBytes = arenaBytes
    }

    /// Number of kernels one inference runs.
    public var stepCount: Int { steps.count }

    /// Runs every step; reads the inputs set before and leaves the outputs in place.
    public func execute() {
        for s in steps { s.execute(compute.parallel) }
    }

    /// Runs every step and returns the seconds each took, by node name (for profiling).
    public func executeProfiled() -> [(String, Double)] {
        var out: [(String, Double)] = []
        for (s, name) in zip(steps, stepNames) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            s.execute(compute.parallel)
            out.append((name, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
        }
        return out
    }

    /// Copies a tensor into a planned input.
    public func setInput(_ name: String, _ tensor: Tensor) throws(EngineError) {
        guard let (_, type) = inputTypes.first(where: { $0.name == name }) else {
            throw .shapeMismatch("the model has no input '\(name)'")
        }
        guard tensor.shape == type.shape, tensor.elementType == type.elementType else {
            throw .shapeMismatch("input '\(name)' is \(tensor.elementType.rawValue)[\(tensor.shape.shapeDescription)], the plan expects \(type)")
        }
        copy(tensor, into: pointers[name]!)
    }

    /// The float memory of an input, for callers that fill it in place (no copy, no allocation).
    public func inputBuffer(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let (_, type) = inputTypes.first(where: { $0.name == name }), type.elementType == .float32 else { return nil }
        return UnsafeMutableBufferPointer(start: pointers[name]!.assumingMemoryBound(to: Float.self), count: type.count)
    }

    /// The float memory of an output after `execute`.
    public func outputBuffer(_ name: String) -> UnsafeBufferPointer<Float>? {
        guard let (_, type) = outputTypes.first(where: { $0.name == name }), type.elementType == .float32 else { return nil }
        return UnsafeBufferPointer(start: pointers[name]!.assumingMemoryBound(to: Float.self), count: type.count)
    }

    /// A copy of an output after `execute`.
    public func output(_ name: String) -> Tensor? {
        guard let (_, type) = outputTypes.first(where: { $0.name == name }) else { return nil }
        return readTensor(type, from: pointers[name]!)
    }
}

extension InferenceSession {
    /// The ONNX operator types the engine runs (default domain).
    public static var supportedOperators: [String] { OperatorRegistry.operators.keys.sorted() }
}
