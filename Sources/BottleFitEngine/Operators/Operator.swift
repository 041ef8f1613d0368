import BottleFitCore

/// The type and concrete shape of a value once input shapes are known.
public struct ValueType: Sendable, Equatable, CustomStringConvertible {
    public var elementType: ElementType
    public var shape: [Int]

    public init(_ elementType: ElementType, _ shape: [Int]) {
        self.elementType = elementType
        self.shape = shape
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * elementType.byteSize }
    public var description: String { "\(elementType.rawValue)[\(shape.shapeDescription)]" }
}

/// A planned value handed to a kernel: its type, shape, memory and, when known at
/// plan time, its constant contents.
struct Operand {
    var type: ValueType
    var pointer: UnsafeMutableRawPointer
    var constant: Tensor?

    var shape: [Int] { type.shape }
    var count: Int { type.count }
    var floats: UnsafeMutablePointer<Float> { pointer.assumingMemoryBound(to: Float.self) }
    var bytes: UnsafeMutablePointer<UInt8> { pointer.assumingMemoryBound(to: UInt8.self) }
    var int64s: UnsafeMutablePointer<Int64> { pointer.assumingMemoryBound(to: Int64.self) }
}

/// One planned step of an inference: all pointers and shapes fixed, `execute` allocates nothing.
protocol Kernel: AnyObject {
    /// Runs the step, splitting its work over `parallel` (the plan's compute context's threads).
    func execute(_ parallel: Parallel)
}

/// What an operator sees of its node while planning: attributes, input types and constants.
struct NodeContext {
    var node: Node
    /// Input types; nil for an omitted optional input.
    var inputs: [ValueType?]
    /// Input contents where known at plan time (initializers, folded values).
    var constants: [Tensor?]
    var opset: Int
    /// The session's compute context: threads (workspaces are cut for them), GEMM and
    /// instruction set.
    var compute: ComputeContext = .singleThreaded
    var gemm: ComputeContext.GEMM { compute.gemm }
    var threads: Int { compute.threads }
    var instructionSet: KernelInstructionSet { compute.instructionSet }
    /// The session's prepared weights (nil when a node is evaluated on its own).
    var prepared: PreparedWeights? = nil
    /// Nodes whose work this step does after its own node's, in order, when the planner
    /// fused them into it (a Conv's MaxPool, BatchNormalization and second Conv:
    /// `ConvPoolOperator`).
    var fused: [NodeContext] = []

    /// Weights prepared once per session for this node (`what` tells kinds apart).
    func prepared<T: AnyObject>(_ what: String, _ make: () -> T) -> T {
        guard let prepared, let output = node.outputs.first, !output.isEmpty else { return make() }
        return prepared.value(output + "|" + what, make)
    }

    var name: String { node.name }
    var op: String { node.opType }

    func input(_ i: Int) -> ValueType? { i < inputs.count ? inputs[i] : nil }
    func constant(_ i: Int) -> Tensor? { i < constants.count ? constants[i] : nil }

    func required(_ i: Int) throws(EngineError) -> ValueType {
        guard let t = input(i) else { throw .invalidModel("\(op) node '\(name)' is missing input \(i)") }
        return t
    }

    func int(_ key: String, default value: Int) throws(EngineError) -> Int {
        switch node.attributes[key] {
        case nil: return value
        case .int(let v): return v
        default: throw .invalidModel("\(op) node '\(name)': attribute \(key) must be an int")
        }
    }

    func float(_ key: String, default value: Float) throws(EngineError) -> Float {
        switch node.attributes[key] {
        case nil: return value
        case .float(let v): return v
        default: throw .invalidModel("\(op) node '\(name)': attribute \(key) must be a float")
        }
    }

    func ints(_ key: String) throws(EngineError) -> [Int]? {
        switch node.attributes[key] {
        case nil: return nil
        case .ints(let v): return v
        default: throw .invalidModel("\(op) node '\(name)': attribute \(key) must be a list of ints")
        }
    }

    func string(_ key: String, default value: String) throws(EngineError) -> String {
        switch node.attributes[key] {
        case nil: return value
        case .string(let v): return v
        default: throw .invalidModel("\(op) node '\(name)': attribute \(key) must be a string")
        }
    }

    func unsupported(_ attribute: String, _ value: Any) -> EngineError {
        .unsupportedAttribute(op: op, attribute: attribute, value: "\(value)", node: name)
    }

    func requireType(_ i: Int, _ allowed: Set<ElementType>) throws(EngineError) -> ValueType {
        let t = try required(i)
        guard allowed.contains(t.elementType) else {
            throw .unsupportedDataType(t.elementType.rawValue, context: "input \(i) of \(op) node '\(name)'")
        }
        return t
    }

    /// A constant int64 input read as Ints (e.g. Reshape's shape); fails if not constant.
    func constantInts(_ i: Int, what: String) throws(EngineError) -> [Int] {
        guard let t = constant(i) else {
            throw .invalidModel("\(op) node '\(name)': \(what) (input \(i)) must be known before inference (a constant or computed from shapes)")
        }
        guard let v = t.int64s else {
            throw .unsupportedDataType(t.elementType.rawValue, context: "\(what) of \(op) node '\(name)'")
        }
        return v.map { Int($0) }
    }
}

/// One operator: how to check it, infer output types, and build its kernel.
protocol Operator {
    /// Attribute names the implementation understands; any other fails the load.
    static var attributes: Set<String> { get }
    /// Output types from input types (and constant inputs).
    static func infer(_ ctx: NodeContext) throws(EngineError) -> [ValueType]
    /// Scratch bytes the kernel needs (shared by all steps of a plan).
    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int
    /// Builds the kernel over planned memory.
    static func kernel(_ ctx: NodeContext, inputs: [Operand?], outputs: [Operand], workspace: UnsafeMutableRawPointer)
        throws(EngineError) -> any Kernel
    /// Constant inputs the kernel reads only while it is built (weights it packs or
    /// transforms into prepared weights of its own), never when it runs: the plan need not
    /// keep them.
    static func inputsReadOnlyWhilePlanning(_ ctx: NodeContext) -> Set<Int>
}

extension Operator {
    static func workspaceBytes(_ ctx: NodeContext, outputs: [ValueType]) -> Int { 0 }
    static func inputsReadOnlyWhilePlanning(_ ctx: NodeContext) -> Set<Int> { [] }
}

/// Operators whose output shares the input's memory (no copy at run time).
let aliasingOperators: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]

/// The registry: operator type → implementation.
enum OperatorRegistry {
    // Immutable after initialisation; metatypes carry no state.
    nonisolated(unsafe) static let operators: [String: any Operator.Type] = [
        "Conv": ConvOperator.self,
        "ConvTranspose": ConvTransposeOperator.self,
        "BatchNormalization": BatchNormOperator.self,
        "Relu": ActivationOperator.self,
        "LeakyRelu": ActivationOperator.self,
        "Sigmoid": ActivationOperator.self,
        "Clip": ActivationOperator.self,
        "HardSigmoid": ActivationOperator.self,
        "HardSwish": ActivationOperator.self,
        "Tanh": UnaryOperator.self,
        "Exp": UnaryOperator.self,
        "Log": UnaryOperator.self,
        "Abs": UnaryOperator.self,
        "Neg": UnaryOperator.self,
        "Sqrt": UnaryOperator.self,
        "Reciprocal": UnaryOperator.self,
        "Floor": UnaryOperator.self,
        "Ceil": UnaryOperator.self,
        "Erf": UnaryOperator.self,
        "Elu": UnaryOperator.self,
        "Selu": UnaryOperator.self,
        "Celu": UnaryOperator.self,
        "Softplus": UnaryOperator.self,
        "Softsign": UnaryOperator.self,
        "ThresholdedRelu": UnaryOperator.self,
        "MaxPool": PoolOperator.self,
        "AveragePool": PoolOperator.self,
        "GlobalAveragePool": GlobalAveragePoolOperator.self,
        "Add": BinaryOperator.self,
        "Sub": BinaryOperator.self,
        "Mul": BinaryOperator.self,
        "Div": BinaryOperator.self,
        "Pow": BinaryOperator.self,
        "PRelu": BinaryOperator.self,
        "ReduceMean": ReduceOperator.self,
        "ReduceSum": ReduceOperator.self,
        "ReduceMax": ReduceOperator.self,
        "ReduceMin": ReduceOperator.self,
        "ReduceProd": ReduceOperator.self,
        "ReduceL1": ReduceOperator.self,
        "ReduceL2": ReduceOperator.self,
        "ReduceSumSquare": ReduceOperator.self,
        "ReduceLogSum": ReduceOperator.self,
        "ReduceLogSumExp": ReduceOperator.self,
        "Pad": PadOperator.self,
        "Slice": SliceOperator.self,
        "Split": SplitOperator.self,
        "LayerNormalization": LayerNormOperator.self,
        "Resize": ResizeOperator.self,
        "Concat": ConcatOperator.self,
        "Flatten": ReshapeOperator.self,
        "Reshape": ReshapeOperator.self,
        "Squeeze": ReshapeOperator.self,
        "Unsqueeze": ReshapeOperator.self,
        "Identity": ReshapeOperator.self,
        "Dropout": ReshapeOperator.self,
        "Transpose": TransposeOperator.self,
        "Gemm": GemmOperator.self,
        "MatMul": MatMulOperator.self,
        "Softmax": SoftmaxOperator.self,
        "LogSoftmax": SoftmaxOperator.self,
        "QuantizeLinear": QuantizeOperator.self,
        "DequantizeLinear": QuantizeOperator.self,
        "Shape": ShapeOperator.self,
        "Gather": GatherOperator.self,
        "Cast": CastOperator.self,
        "Constant": ConstantOperator.self,
    ]

    /// Float inputs that must be known when a plan is made (int64 ones always are).
    static let floatParameterSlots: [String: Set<Int>] = ["Resize": [1, 2], "Pad": [2]]

    static func lookup(_ node: Node) throws(EngineError) -> any Operator.Type {
        guard let op = operators[node.opType] else { throw .unsupportedOperator(node.opType, node: node.name) }
        return op
    }

    /// Checks every node's operator and attribute names; the load fails on the first unknown one.
    static func validate(_ graph: Graph) throws(EngineError) {
        for node in graph.nodes {
            let op = try lookup(node)
            for key in node.attributes.keys.sorted() where !op.attributes.contains(key) && !key.hasPrefix("_") {
                throw .unsupportedAttribute(op: node.opType, attribute: key, value: "(any value)", node: node.name)
            }
        }
    }
}
