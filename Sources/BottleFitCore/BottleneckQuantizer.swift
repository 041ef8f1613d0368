/// Parameters of per-tensor asymmetric uint8 quantization: `x ≈ scale * (q - zeroPoint)`.
public struct QuantizationParameters: Sendable, Equatable {
    public var scale: Float
    public var zeroPoint: UInt8

    public init(scale: Float, zeroPoint: UInt8) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

/// A uint8 tensor with the parameters that map it back to floats.
public struct QuantizedTensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [UInt8]
    public var parameters: QuantizationParameters

    public init(shape: [Int], data: [UInt8], parameters: QuantizationParameters) {
        self.shape = shape
        self.data = data
        self.parameters = parameters
    }
}

/// Errors of the bottleneck quantizer.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    case notFinite(index: Int)
    case notFloat(ElementType)

    public var description: String {
        switch self {
        case .notFinite(let i): "cannot quantize: element \(i) is not finite"
        case .notFloat(let t): "cannot quantize a \(t.rawValue) tensor; expected float32"
        }
    }
}

/// Post-training, per-tensor, asymmetric uint8 quantization of the bottleneck (BottleFit).
///
/// scale = (max - min) / 255, zeroPoint = clamp(round(-min / scale), 0, 255),
/// q = clamp(round(x / scale + zeroPoint), 0, 255), x' = scale * (q - zeroPoint).
/// The observed range is widened to include 0 (as PyTorch's min/max observer does):
/// without that the clamped zero point breaks the round-trip bound for all-positive
/// tensors. With it every element round-trips within scale / 2. A constant tensor
/// still round-trips exactly; an all-zero tensor gets scale 0 and zero point 0.
/// Rounding is half-to-even, as in ONNX QuantizeLinear.
public struct BottleneckQuantizer: Sendable {
    public init() {}

    /// Parameters for values observed in [minimum, maximum].
    public func parameters(minimum: Float, maximum: Float) -> QuantizationParameters {
        let lo = Swift.min(minimum, 0)
        let hi = Swift.max(maximum, 0)
        let scale = (hi - lo) / 255
        guard scale > 0 else { return QuantizationParameters(scale: 0, zeroPoint: 0) }
        let zp = (-lo / scale).rounded(.toNearestOrEven)
        return QuantizationParameters(scale: scale, zeroPoint: UInt8(Swift.min(Swift.max(zp, 0), 255)))
    }

    /// Quantizes `source` into `destination` (same count) and returns the parameters used.
    /// Allocates nothing: this is the camera's per-frame path.
    public func quantize(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt8>
    ) throws(QuantizationError) -> QuantizationParameters {
        precondition(source.count == destination.count, "quantize: source and destination differ in size")
        var lo = Float.infinity
        var hi = -Float.infinity
        for i in 0..<source.count {
            let v = source[i]
            guard v.isFinite else { throw .notFinite(index: i) }
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        if source.isEmpty { lo = 0; hi = 0 }
        let p = parameters(minimum: lo, maximum: hi)
        guard p.scale > 0 else {
            for i in 0..<destination.count { destination[i] = 0 }
            return p
        }
        let inv = 1 / p.scale
        let zp = Float(p.zeroPoint)
        for i in 0..<source.count {
            let q = (source[i] * inv + zp).rounded(.toNearestOrEven)
            destination[i] = UInt8(Swift.min(Swift.max(q, 0), 255))
        }
        return p
    }

    /// Quantizes a float tensor.
    public func quantize(_ tensor: Tensor) throws(QuantizationError) -> QuantizedTensor {
        guard let values = tensor.floats else { throw .notFloat(tensor.elementType) }
        var out = [UInt8](repeating: 0, count: values.count)
        let p = try values.withUnsafeBufferPointer { (src) throws(QuantizationError) -> QuantizationParameters in
            try out.withUnsafeMutableBufferPointer { (dst) throws(QuantizationError) -> QuantizationParameters in
                try quantize(src, into: dst)
            }
        }
        return QuantizedTensor(shape: tensor.shape, data: out, parameters: p)
    }

    /// Maps quantized values back to floats into `destination` (same count).
    public func dequantize(
        _ source: UnsafeBufferPointer<UInt8>, parameters p: QuantizationParameters,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(source.count == destination.count, "dequantize: source and destination differ in size")
        let zp = Int32(p.zeroPoint)
        for i in 0..<source.count {
            destination[i] = p.scale * Float(Int32(source[i]) - zp)
        }
    }

    /// Maps a quantized tensor back to a float tensor.
    public func dequantize(_ q: QuantizedTensor) -> Tensor {
        var out = [Float](repeating: 0, count: q.data.count)
        q.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in dequantize(src, parameters: q.parameters, into: dst) }
        }
        return Tensor(shape: q.shape, floats: out)
    }
}
