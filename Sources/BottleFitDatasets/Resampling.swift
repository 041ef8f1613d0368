import BottleFitImaging

/// A rectangle of an image: rows `top..<top + height`, columns `left..<left + width`.
public struct CropBox: Hashable, Sendable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }

    public var description: String { "\(height)x\(width) at (\(top), \(left))" }
}

/// Bilinear resizing with PIL's antialiasing, which torchvision's transforms use (PIL images,
/// and tensors with `antialias=True`): the triangle filter is widened by the scale factor
/// when shrinking, so every input pixel under an output pixel contributes; when enlarging it
/// is plain bilinear interpolation with half-pixel centres. Separable: a horizontal pass
/// rounded to 8 bits, then a vertical pass, as PIL does.
///
/// The camera's `ImagePreprocessor` interpolates without the widened filter (it only ever
/// shrinks a frame once); for training crops, which shrink by anything up to 10x, aliasing
/// would put high-frequency noise into the images.
enum Resampler {
    /// Resizes the `box` of `image` to `size` (the box is cut out first: no pixel outside it
    /// contributes) and returns the part `window` of the result (all of it when `nil`).
    static func resize(_ image: Image, box: CropBox, to size: ImageSize, window: CropBox? = nil) -> Image {
        let window = window ?? CropBox(top: 0, left: 0, height: size.height, width: size.width)
        precondition(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0
            && box.top + box.height <= image.height && box.left + box.width <= image.width, "box \(box) is outside the image")
        precondition(window.top >= 0 && window.left >= 0 && window.height > 0 && window.width > 0
            && window.top + window.height <= size.height && window.left + window.width <= size.width, "window outside the output")
        let columns = AxisWeights(
            inputStart: box.left, inputLength: box.width, outputLength: size.width,
            outputs: window.left..<(window.left + window.width))
        let rows = AxisWeights(
            inputStart: box.top, inputLength: box.height, outputLength: size.height,
            outputs: window.top..<(window.top + window.height))
        let channels = image.channels
        let outW = window.width, outH = window.height
        // Only the input rows some output row reads go through the horizontal pass.
        let firstRow = rows.firstInput.min()!, endRow = zip(rows.firstInput, rows.taps).map { $0 + $1 }.max()!
        let rowStride = outW * channels
        var temporary = [UInt8](repeating: 0, count: (endRow - firstRow) * rowStride)
        image.pixels.withUnsafeBufferPointer { source in
            temporary.withUnsafeMutableBufferPointer { temp in
                for y in firstRow..<endRow {
                    let inRow = source.baseAddress! + y * image.width * channels
                    let outRow = temp.baseAddress! + (y - firstRow) * rowStride
                    for x in 0..<outW {
                        for c in 0..<channels {
                            var sum: Float = 0
                            let start = columns.firstInput[x], base = x * columns.stride
                            for t in 0..<columns.taps[x] {
                                sum += columns.weights[base + t] * Float(inRow[(start + t) * channels + c])
                            }
                            outRow[x * channels + c] = clampToByte(sum)
                        }
                    }
                }
            }
        }
        let output = [UInt8](unsafeUninitializedCapacity: outH * rowStride) { buffer, initialized in
            temporary.withUnsafeBufferPointer { temp in
                for y in 0..<outH {
                    let start = rows.firstInput[y] - firstRow, base = y * rows.stride
                    for i in 0..<rowStride {
                        var sum: Float = 0
                        for t in 0..<rows.taps[y] {
                            sum += rows.weights[base + t] * Float(temp[(start + t) * rowStride + i])
                        }
                        buffer[y * rowStride + i] = clampToByte(sum)
                    }
                }
            }
            initialized = outH * rowStride
        }
        return Image(validatedWidth: outW, height: outH, channels: channels, pixels: output)
    }

    /// Round half up and clip, as PIL's `clip8`.
    @inline(__always) private static func clampToByte(_ value: Float) -> UInt8 {
        UInt8(clamping: Int(value + 0.5))
    }
}

/// For each output sample along one axis: the first input index it reads, how many inputs
/// (taps), and their normalised weights. This is PIL's `precompute_coeffs` for the bilinear
/// (triangle, support 1) filter over an input span of `inputLength` starting at `inputStart`.
struct AxisWeights {
    var firstInput: [Int] = []
    var taps: [Int] = []
    var weights: [Float] = []
    let stride: Int

    init(inputStart: Int, inputLength: Int, outputLength: Int, outputs: Range<Int>) {
        let scale = Double(inputLength) / Double(outputLength)
        let filterScale = max(scale, 1)
        let support = filterScale
        stride = Int(support.rounded(.up)) * 2 + 1
        weights = [Float](repeating: 0, count: outputs.count * stride)
        for (k, output) in outputs.enumerated() {
            let center = (Double(output) + 0.5) * scale
            // Int(_:) truncates toward zero, as the C cast in PIL does.
            let lower = max(Int(center - support + 0.5), 0)
            let count = min(min(Int(center + support + 0.5), inputLength) - lower, stride)
            var raw = [Double](repeating: 0, count: count)
            var total = 0.0
            for x in 0..<count {
                let distance = abs((Double(x + lower) - center + 0.5) / filterScale)
                raw[x] = distance < 1 ? 1 - distance : 0
                total += raw[x]
            }
            for x in 0..<count { weights[k * stride + x] = Float(total == 0 ? 0 : raw[x] / total) }
            firstInput.append(inputStart + lower)
            taps.append(count)
        }
    }
}
