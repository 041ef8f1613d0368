import BottleFitEngine

/// What an operator keeps from its forward pass for the backward pass.
struct SavedState {
    var buffers: [Buffer] = []
    var indices: [Int32] = []
}

/// The result of a forward step: the output, plus new values for state inputs
/// (BatchNormalization's running mean and variance) keyed by input index.
struct ForwardOutput {
    var output: Buffer
    var updates: [Int: Buffer] = [:]
}

/// A differentiable operator: a forward pass that saves what its backward pass needs, and
/// a backward pass that maps the output gradient to gradients of the inputs asked for.
protocol TrainableOperator {
    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput
    /// Gradients of the inputs, `nil` where `needs[i]` is false (or the input is not differentiable).
    func backward(_ gradOutput: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?]
}

/// Reads a node's attributes for the training engine, refusing anything it does not know.
struct AttributeReader {
    let node: Node

    init(_ node: Node, allowed: Set<String>) throws(TrainingError) {
        self.node = node
        for key in node.attributes.keys.sorted() where !allowed.contains(key) {
            throw .unsupported("attribute \(key) of \(node.opType) (node '\(node.name)')")
        }
    }

    func int(_ key: String, _ fallback: Int) throws(TrainingError) -> Int {
        guard let value = node.attributes[key] else { return fallback }
        guard case .int(let v) = value else { throw .unsupported("attribute \(key) of node '\(node.name)' is not an integer") }
        return v
    }

    func ints(_ key: String, _ fallback: [Int]) throws(TrainingError) -> [Int] {
        guard let value = node.attributes[key] else { return fallback }
        guard case .ints(let v) = value else { throw .unsupported("attribute \(key) of node '\(node.name)' is not a list of integers") }
        return v
    }

    func float(_ key: String, _ fallback: Float) throws(TrainingError) -> Float {
        guard let value = node.attributes[key] else { return fallback }
        guard case .float(let v) = value else { throw .unsupported("attribute \(key) of node '\(node.name)' is not a float") }
        return v
    }

    func string(_ key: String, _ fallback: String) throws(TrainingError) -> String {
        guard let value = node.attributes[key] else { return fallback }
        guard case .string(let v) = value else { throw .unsupported("attribute \(key) of node '\(node.name)' is not a string") }
        return v
    }
}

/// 2-D window attributes shared by Conv, ConvTranspose and the pools.
struct Window2D: Equatable {
    var kernel: [Int]
    var strides: [Int]
    var pads: [Int]  // top, left, bottom, right
    var dilations: [Int]

    init(_ attributes: AttributeReader, kernel: [Int]) throws(TrainingError) {
        let name = attributes.node.name
        guard kernel.count == 2 else { throw .unsupported("\(kernel.count)-D windows (node '\(name)'); only 2-D") }
        self.kernel = kernel
        strides = try attributes.ints("strides", [1, 1])
        pads = try attributes.ints("pads", [0, 0, 0, 0])
        dilations = try attributes.ints("dilations", [1, 1])
        let autoPad = try attributes.string("auto_pad", "NOTSET")
        guard autoPad == "NOTSET" || autoPad == "VALID" else {
            throw .unsupported("auto_pad=\(autoPad) (node '\(name)'); give explicit pads")
        }
        if autoPad == "VALID" { pads = [0, 0, 0, 0] }
        guard strides.count == 2, pads.count == 4, dilations.count == 2,
            strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), pads.allSatisfy({ $0 >= 0 }),
            kernel.allSatisfy({ $0 > 0 })
        else { throw .unsupported("window attributes of node '\(name)': kernel \(kernel), strides \(strides), pads \(pads), dilations \(dilations)") }
    }
}

/// Checks that `buffer` is NCHW and returns its dimensions.
func nchw(_ buffer: Buffer, _ what: String) throws(TrainingError) -> (n: Int, c: Int, h: Int, w: Int) {
    guard buffer.shape.count == 4 else { throw .shapeMismatch("\(what) must be NCHW, got \(buffer.shape)") }
    return (buffer.shape[0], buffer.shape[1], buffer.shape[2], buffer.shape[3])
}
