import BottleFitCore
import Testing

@Suite struct BottleneckQuantizerTests {
    let quantizer = BottleneckQuantizer()

    func roundTripError(_ values: [Float]) throws -> (maxError: Float, scale: Float) {
        let t = Tensor(shape: [values.count], floats: values)
        let q = try quantizer.quantize(t)
        let back = quantizer.dequantize(q).floats!
        var worst: Float = 0
        for (a, b) in zip(values, back) { worst = max(worst, abs(a - b)) }
        return (worst, q.parameters.scale)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func roundTripWithinHalfAScale(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        // Mixed-sign, all-positive (ReLU-like) and all-negative tensors.
        let shifts: [Float] = [0, 7, -3]
        for shift in shifts {
            let values = (0..<12 * 29 * 29).map { _ in rng.nextNormal() * 2 + shift }
            let (err, scale) = try roundTripError(values)
            #expect(scale > 0)
            #expect(err <= scale / 2 * (1 + 1e-4), "error \(err) exceeds scale/2 = \(scale / 2) (shift \(shift))")
        }
    }

    @Test func parametersFollowTheFormula() {
        let p = quantizer.parameters(minimum: -1, maximum: 3)
        #expect(p.scale == Float(4) / 255)
        #expect(p.zeroPoint == UInt8((Float(1) / (Float(4) / 255)).rounded()))
    }

    @Test func constantTensorRoundTripsExactly() throws {
        for c: Float in [2.5, -0.75] {
            let t = Tensor(shape: [3, 4], floats: Array(repeating: c, count: 12))
            let q = try quantizer.quantize(t)
            #expect(q.parameters.scale > 0)
            let back = quantizer.dequantize(q).floats!
            for v in back { #expect(abs(v - c) <= abs(c) * 1e-6) }
        }
    }

    @Test func zeroTensorHasScaleZero() throws {
        let t = Tensor.zeros([2, 5])
        let q = try quantizer.quantize(t)
        #expect(q.parameters == QuantizationParameters(scale: 0, zeroPoint: 0))
        #expect(q.data == Array(repeating: 0, count: 10))
        #expect(quantizer.dequantize(q).floats! == Array(repeating: 0, count: 10))
    }

    @Test func nonFiniteInputIsAnError() {
        let t = Tensor(shape: [3], floats: [1, .nan, 2])
        #expect(throws: QuantizationError.notFinite(index: 1)) { try quantizer.quantize(t) }
        let u = Tensor(shape: [2], floats: [1, .infinity])
        #expect(throws: QuantizationError.notFinite(index: 1)) { try quantizer.quantize(u) }
    }

    @Test func payloadIsOneBytePerElement() throws {
        let t = Tensor.zeros([1, 12, 29, 29])
        #expect(try quantizer.quantize(t).data.count == 10_092)
    }
}
