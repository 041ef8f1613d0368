import Foundation
import BottleFitCore

/// Turns an `Image` into the float32 NCHW input of a model: channel conversion, resize
/// of the shorter side, centre crop, scaling to [0, 1] and per-channel normalisation.
///
/// The steps are those of torchvision's `Resize(s)`, `CenterCrop(h, w)`, `ToTensor()`,
/// `Normalize(mean, std)`, fused into one pass over the output so nothing is allocated
/// per frame when the caller passes its own buffer. Interpolation is bilinear with
/// half-pixel centres (PyTorch `align_corners=False`, OpenCV `INTER_LINEAR`), without an
/// antialiasing filter; a 1920x1080 frame shrunk to 224 pixels therefore aliases a little
/// more than PIL's resize would.
///
/// Only the crop's pixels are interpolated: the resized image is never materialised.
public struct ImagePreprocessor: Sendable {
    /// How the [0, 1] values are shifted and scaled per channel.
    public enum Normalization: Sendable, Equatable {
        /// Leave the values in [0, 1] (torchvision `ToTensor()` alone).
        case unitRange
        /// `(value - mean[c]) / std[c]`, one entry per output channel.
        case meanStd(mean: [Float], std: [Float])

        /// ImageNet's statistics, which torchvision's pretrained 3-channel models expect.
        public static let imageNet = Normalization.meanStd(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

        /// Model metadata keys that state the input normalisation a model was trained with:
        /// comma-separated per-channel values (`bottlefit train` writes them).
        public static let meanMetadataKey = "bottlefit.input_mean"
        public static let stdMetadataKey = "bottlefit.input_std"

        /// The normalisation a model's metadata states, nil when it states none; a malformed
        /// or partial statement is an error (a camera must not guess its model's input).
        public static func fromMetadata(_ metadata: [String: String]) throws(ImagingError) -> Normalization? {
            let mean = metadata[meanMetadataKey], std = metadata[stdMetadataKey]
            if mean == nil && std == nil { return nil }
            func parse(_ key: String, _ text: String?) throws(ImagingError) -> [Float] {
                guard let text else { throw .invalidConfiguration("model metadata has \(key == meanMetadataKey ? stdMetadataKey : meanMetadataKey) but not \(key)") }
                var values: [Float] = []
                for part in text.split(separator: ",") {
                    guard let v = Float(part.trimmingCharacters(in: .whitespaces)) else {
                        throw .invalidConfiguration("model metadata \(key) = '\(text)' is not a list of numbers")
                    }
                    values.append(v)
                }
                return values
            }
            return .meanStd(mean: try parse(meanMetadataKey, mean), std: try parse(stdMetadataKey, std))
        }

        /// The metadata entries that state this normalisation.
        public var metadata: [String: String] {
            switch self {
            case .unitRange: [Self.meanMetadataKey: "0", Self.stdMetadataKey: "1"]
            case .meanStd(let mean, let std):
                [Self.meanMetadataKey: mean.map { "\($0)" }.joined(separator: ","), Self.stdMetadataKey: std.map { "\($0)" }.joined(separator: ",")]
            }
        }

        /// Per channel, the `scale` and `offset` of `sample (0...255) * scale + offset`, which
        /// folds /255, -mean and /std into one multiply-add; checks the statistics first.
        package func affine(channels: Int) throws(ImagingError) -> (scale: [Float], offset: [Float]) {
            switch self {
            case .unitRange:
                return (Array(repeating: 1 / 255, count: channels), Array(repeating: 0, count: channels))
            case .meanStd(let mean, let std):
                guard mean.count == channels, std.count == channels else {
                    throw .invalidConfiguration("\(channels) channels need \(channels) means and standard deviations, got \(mean.count) and \(std.count)")
                }
                guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
                    throw .invalidConfiguration("standard deviations must be positive and means finite")
                }
                return (std.map { 1 / (255 * $0) }, zip(mean, std).map { -$0 / $1 })
            }
        }
    }

    /// Output channels: 1 (colour images become luma) or 3 (grey images are repeated).
    public let channels: Int
    /// Output height and width (the crop).
    public let height: Int
    public let width: Int
    /// The shorter side is resized to this before cropping; `nil` resizes just enough
    /// for the crop to fit. Never less than the crop: an image is never padded.
    public let resizeShorterSide: Int?
    public let normalization: Normalization
    /// Per channel: output = sample (0...255) * scale + offset, folding /255, -mean, /std.
    private let scale: [Float]
    private let offset: [Float]

    /// Number of floats one image occupies: channels * height * width.
    public var elementCount: Int { channels * height * width }
    /// The input shape for a batch of `batch` images, NCHW.
    public func shape(batch: Int = 1) -> [Int] { [batch, channels, height, width] }

    /// - Parameter normalization: defaults to ImageNet's for 3 channels and `.unitRange`
    ///   for 1 (there is no standard grey statistic).
    public init(
        channels: Int = 3, height: Int = 224, width: Int = 224, resizeShorterSide: Int? = nil,
        normalization: Normalization? = nil
    ) throws(ImagingError) {
        guard channels == 1 || channels == 3 else {
            throw .invalidConfiguration("model input channels must be 1 or 3, not \(channels)")
        }
        guard height > 0, width > 0, height <= 65536, width <= 65536 else {
            throw .invalidConfiguration("model input size must be in 1...65536, not \(height)x\(width)")
        }
        if let side = resizeShorterSide, side <= 0 || side > 65536 {
            throw .invalidConfiguration("resize of the shorter side must be in 1...65536, not \(side)")
        }
        let normalization = normalization ?? (channels == 3 ? .imageNet : .unitRange)
        (scale, offset) = try normalization.affine(channels: channels)
        self.channels = channels
        self.height = height
        self.width = width
        self.resizeShorterSide = resizeShorterSide
        self.normalization = normalization
    }

    /// torchvision's ImageNet evaluation transform: shorter side to 256, centre crop
    /// 224x224, ImageNet mean and std.
    public static func imageNetEvaluation() -> ImagePreprocessor {
        // Constant, valid arguments: this cannot throw.
        try! ImagePreprocessor(channels: 3, height: 224, width: 224, resizeShorterSide: 256, normalization: .imageNet)
    }

    /// Writes the preprocessed image into `output`, NCHW (one image: C planes of H x W).
    /// For a batch, pass a rebased slice of the batch buffer.
    ///
    /// - Precondition: `output.count == elementCount`.
    public func process(_ image: Image, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count == elementCount, "output holds \(output.count) floats, the preprocessor writes \(elementCount)")
        let inH = image.height, inW = image.width, inC = image.channels
        let (resizedH, resizedW) = resizedSize(height: inH, width: inW)
        // torchvision's CenterCrop rounds the offset half to even.
        let top = Int((Double(resizedH - height) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(resizedW - width) / 2).rounded(.toNearestOrEven))
        let stepY = Float(Double(inH) / Double(resizedH))
        let stepX = Float(Double(inW) / Double(resizedW))
        let plane = height * width
        let outC = channels
        let s0 = scale[0], o0 = offset[0]
        let s1 = outC == 3 ? scale[1] : 0, o1 = outC == 3 ? offset[1] : 0
        let s2 = outC == 3 ? scale[2] : 0, o2 = outC == 3 ? offset[2] : 0

        image.pixels.withUnsafeBufferPointer { pixels in
            let src = pixels.baseAddress!
            let dst = output.baseAddress!
            for oy in 0..<height {
                // Source coordinate of this output row's centre, clamped at the border.
                let sy = max(0, (Float(oy + top) + 0.5) * stepY - 0.5)
                let y0 = min(Int(sy), inH - 1)
                let y1 = min(y0 + 1, inH - 1)
                let wy = sy - Float(y0)
                let row0 = src + y0 * inW * inC
                let row1 = src + y1 * inW * inC
                for ox in 0..<width {
                    let sx = max(0, (Float(ox + left) + 0.5) * stepX - 0.5)
                    let x0 = min(Int(sx), inW - 1)
                    let x1 = min(x0 + 1, inW - 1)
                    let wx = sx - Float(x0)
                    let w00 = (1 - wy) * (1 - wx), w01 = (1 - wy) * wx
                    let w10 = wy * (1 - wx), w11 = wy * wx
                    let a = x0 * inC, b = x1 * inC
                    @inline(__always) func sample(_ c: Int) -> Float {
                        w00 * Float(row0[a + c]) + w01 * Float(row0[b + c])
                            + w10 * Float(row1[a + c]) + w11 * Float(row1[b + c])
                    }
                    let index = oy * width + ox
                    // Interpolation is linear, so converting after it equals converting first.
                    switch (inC, outC) {
                    case (1, 1):
                        dst[index] = sample(0) * s0 + o0
                    case (3, 3):
                        dst[index] = sample(0) * s0 + o0
                        dst[plane + index] = sample(1) * s1 + o1
                        dst[2 * plane + index] = sample(2) * s2 + o2
                    case (1, _):
                        let v = sample(0)
                        dst[index] = v * s0 + o0
                        dst[plane + index] = v * s1 + o1
                        dst[2 * plane + index] = v * s2 + o2
                    default:
                        // ITU-R BT.601 luma, as PIL's convert("L") and libjpeg use.
                        let v = 0.299 * sample(0) + 0.587 * sample(1) + 0.114 * sample(2)
                        dst[index] = v * s0 + o0
                    }
                }
            }
        }
    }

    /// The preprocessed image as a new array (allocates; the frame loop should use
    /// `process(_:into:)`).
    public func process(_ image: Image) -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            process(image, into: buffer)
            initialized = elementCount
        }
    }

    /// The preprocessed image as a 1 x C x H x W tensor.
    public func tensor(_ image: Image) -> Tensor {
        Tensor(shape: shape(), floats: process(image))
    }

    /// Size of the image after the resize step: the scale makes the shorter side
    /// `resizeShorterSide` but never leaves either side smaller than the crop.
    func resizedSize(height inH: Int, width inW: Int) -> (height: Int, width: Int) {
        var scale = max(Double(height) / Double(inH), Double(width) / Double(inW))
        if let side = resizeShorterSide { scale = max(scale, Double(side) / Double(min(inH, inW))) }
        let h = max(height, Int((Double(inH) * scale).rounded()))
        let w = max(width, Int((Double(inW) * scale).rounded()))
        return (h, w)
    }
}
