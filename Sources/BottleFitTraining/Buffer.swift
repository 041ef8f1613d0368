import BottleFitCore

/// A float32 array with its shape: the values and gradients the training engine passes
/// between operators. Layout is row-major; images are NCHW.
public struct Buffer: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Buffer: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public init(_ tensor: Tensor) throws(TrainingError) {
        guard let floats = tensor.floats else {
            throw .unsupported("a \(tensor.elementType) tensor where float32 is needed")
        }
        self.init(shape: tensor.shape, data: floats)
    }

    public var count: Int { data.count }
    public var tensor: Tensor { Tensor(shape: shape, floats: data) }

    public func reshaped(_ newShape: [Int]) -> Buffer { Buffer(shape: newShape, data: data) }

    /// Adds `other` element-wise (same shape); used to accumulate gradients.
    public mutating func accumulate(_ other: Buffer) {
        precondition(shape == other.shape, "accumulating \(other.shape) into \(shape)")
        data.withUnsafeMutableBufferPointer { d in
            other.data.withUnsafeBufferPointer { o in
                for i in 0..<d.count { d[i] += o[i] }
            }
        }
    }
}

/// Errors of the training engine.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case unsupported(String)
    case shapeMismatch(String)
    case invalidArgument(String)
    case io(String)
    /// Stopped on request (Ctrl-C) after saving a checkpoint.
    case interrupted(String)

    public var description: String {
        switch self {
        case .unsupported(let s): "not supported for training: \(s)"
        case .shapeMismatch(let s): "shape mismatch: \(s)"
        case .invalidArgument(let s): s
        case .io(let s): s
        case .interrupted(let s): s
        }
    }
}
