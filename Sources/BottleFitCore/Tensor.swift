/// The element types the engine computes with.
public enum ElementType: String, Sendable, CaseIterable {
    case float32
    case uint8
    case int64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: 4
        case .uint8: 1
        case .int64: 8
        }
    }
}

/// A dense tensor in row-major (C) order; image tensors are NCHW.
///
/// This is the value type used at the edges of the engine (inputs, outputs,
/// initializers, constant folding). Inference itself runs on planned buffers.
public struct Tensor: Sendable, Equatable {
    /// Element storage; exactly one typed array, its count equal to the product of `shape`.
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case uint8([UInt8])
        case int64([Int64])
    }

    public var shape: [Int]
    public var storage: Storage

    public init(shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "shape \(shape) does not hold \(floats.count) elements")
        self.shape = shape
        self.storage = .float32(floats)
    }

    public init(shape: [Int], bytes: [UInt8]) {
        precondition(shape.reduce(1, *) == bytes.count, "shape \(shape) does not hold \(bytes.count) elements")
        self.shape = shape
        self.storage = .uint8(bytes)
    }

    public init(shape: [Int], int64s: [Int64]) {
        precondition(shape.reduce(1, *) == int64s.count, "shape \(shape) does not hold \(int64s.count) elements")
        self.shape = shape
        self.storage = .int64(int64s)
    }

    /// A float tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A scalar (rank-0) float tensor.
    public static func scalar(_ value: Float) -> Tensor { Tensor(shape: [], floats: [value]) }

    public var elementType: ElementType {
        switch storage {
        case .float32: .float32
        case .uint8: .uint8
        case .int64: .int64
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// The float elements; nil when the tensor holds another type.
    public var floats: [Float]? {
        if case .float32(let v) = storage { return v }
        return nil
    }

    /// The uint8 elements; nil when the tensor holds another type.
    public var bytes: [UInt8]? {
        if case .uint8(let v) = storage { return v }
        return nil
    }

    /// The int64 elements; nil when the tensor holds another type.
    public var int64s: [Int64]? {
        if case .int64(let v) = storage { return v }
        return nil
    }

    /// Elements converted to Double, whatever the element type (for comparisons and reports).
    public var doubles: [Double] {
        switch storage {
        case .float32(let v): v.map(Double.init)
        case .uint8(let v): v.map(Double.init)
        case .int64(let v): v.map(Double.init)
        }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }
}

extension Array where Element == Int {
    /// Human-readable shape, e.g. `1x3x224x224`.
    public var shapeDescription: String { isEmpty ? "scalar" : map(String.init).joined(separator: "x") }
}
