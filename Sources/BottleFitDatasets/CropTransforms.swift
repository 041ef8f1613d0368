import BottleFitCore
import BottleFitImaging

/// torchvision's `RandomResizedCrop`: a random box of `scale` times the image's area and
/// aspect ratio (width / height) in `ratio`, resized to `size` with antialiased bilinear
/// resampling.
///
/// The box is chosen by torchvision's algorithm: up to ten tries of an area drawn uniformly
/// from `scale` and a ratio drawn log-uniformly from `ratio`, rounded half to even; the first
/// box that fits is placed uniformly. When none fits, the largest centred box whose ratio is
/// clamped into `ratio`.
public struct RandomResizedCrop: ImageTransform {
    public let size: ImageSize
    public let scale: ClosedRange<Double>
    public let ratio: ClosedRange<Double>
    public var isRandom: Bool { true }

    public init(size: Int, scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)) throws(DatasetError) {
        try self.init(height: size, width: size, scale: scale, ratio: ratio)
    }

    public init(height: Int, width: Int, scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)) throws(DatasetError) {
        try validate(height: height, width: width, "RandomResizedCrop size")
        guard scale.lowerBound > 0, scale.upperBound <= 1 else {
            throw .invalidConfiguration("RandomResizedCrop scale must lie in (0, 1], not \(scale)")
        }
        guard ratio.lowerBound > 0, ratio.upperBound.isFinite else {
            throw .invalidConfiguration("RandomResizedCrop ratio must be positive and finite, not \(ratio)")
        }
        self.size = ImageSize(height: height, width: width)
        self.scale = scale
        self.ratio = ratio
    }

    public func outputSize(for input: ImageSize?) -> ImageSize? { size }

    /// The box for an image of `height` x `width` (torchvision's `get_params`).
    public func box(height: Int, width: Int, using random: inout SeededGenerator) -> CropBox {
        let area = Double(height * width)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * random.uniform(scale)
            let aspect = exp(random.uniform(logRatio))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0, w <= width, h > 0, h <= height {
                let top = random.integer(below: height - h + 1)
                let left = random.integer(below: width - w + 1)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        // Fallback: a centred crop with the ratio clamped into range.
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = min(height, max(1, Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))))
        } else if inRatio > ratio.upperBound {
            w = min(width, max(1, Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))))
        }
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    public func callAsFunction(_ image: Image, using random: inout SeededGenerator) -> Image {
        Resampler.resize(image, box: box(height: image.height, width: image.width, using: &random), to: size)
    }
}

/// torchvision's ImageNet evaluation geometry, `Resize(resize)` then `CenterCrop(crop)`:
/// the shorter side is scaled to `resize` (the longer one truncated, as torchvision does),
/// then the centre `crop` x `crop` is cut out, its offset rounded half to even. Only the crop
/// is computed.
public struct ResizeCenterCrop: ImageTransform {
    public let resize: Int
    public let crop: ImageSize
    public var isRandom: Bool { false }

    public init(resize: Int = 256, crop: Int = 224) throws(DatasetError) {
        try validate(height: crop, width: crop, "ResizeCenterCrop crop")
        guard resize >= crop, resize <= 1 << 16 else {
            throw .invalidConfiguration("ResizeCenterCrop resize must be in \(crop)...65536 (at least the crop), not \(resize)")
        }
        self.resize = resize
        self.crop = ImageSize(height: crop, width: crop)
    }

    public func outputSize(for input: ImageSize?) -> ImageSize? { crop }

    /// The size after the resize step.
    public func resizedSize(height: Int, width: Int) -> ImageSize {
        if width <= height {
            return ImageSize(height: max(crop.height, resize * height / width), width: resize)
        }
        return ImageSize(height: resize, width: max(crop.width, resize * width / height))
    }

    public func callAsFunction(_ image: Image, using random: inout SeededGenerator) -> Image {
        let resized = resizedSize(height: image.height, width: image.width)
        let top = Int((Double(resized.height - crop.height) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(resized.width - crop.width) / 2).rounded(.toNearestOrEven))
        return Resampler.resize(
            image, box: CropBox(top: 0, left: 0, height: image.height, width: image.width), to: resized,
            window: CropBox(top: top, left: left, height: crop.height, width: crop.width))
    }
}

/// torchvision's `RandomCrop(size, padding)`: the image is padded with `padding` zero pixels
/// on every side, then a `size` box is cut out at a uniformly drawn place. An image that is
/// still smaller than `size` after padding is padded further (torchvision's
/// `pad_if_needed`), so no input fails. The padded image is never materialised.
public struct RandomCrop: ImageTransform {
    public let size: ImageSize
    public let padding: Int
    public var isRandom: Bool { true }

    public init(size: Int, padding: Int = 0) throws(DatasetError) {
        try self.init(height: size, width: size, padding: padding)
    }

    public init(height: Int, width: Int, padding: Int = 0) throws(DatasetError) {
        try validate(height: height, width: width, "RandomCrop size")
        guard (0...(1 << 16)).contains(padding) else {
            throw .invalidConfiguration("RandomCrop padding must be in 0...65536, not \(padding)")
        }
        self.size = ImageSize(height: height, width: width)
        self.padding = padding
    }

    public func outputSize(for input: ImageSize?) -> ImageSize? { size }

    /// The box in the coordinates of the padded image (top-left corner of the padding is 0, 0).
    public func box(height: Int, width: Int, using random: inout SeededGenerator) -> CropBox {
        let paddedH = max(height + 2 * padding, size.height)
        let paddedW = max(width + 2 * padding, size.width)
        let top = random.integer(below: paddedH - size.height + 1)
        let left = random.integer(below: paddedW - size.width + 1)
        return CropBox(top: top, left: left, height: size.height, width: size.width)
    }

    public func callAsFunction(_ image: Image, using random: inout SeededGenerator) -> Image {
        let box = box(height: image.height, width: image.width, using: &random)
        // Offsets of the original image inside the padded one (pad_if_needed splits the extra evenly).
        let padTop = padding + max(0, size.height - (image.height + 2 * padding)) / 2
        let padLeft = padding + max(0, size.width - (image.width + 2 * padding)) / 2
        let channels = image.channels
        var pixels = [UInt8](repeating: 0, count: size.height * size.width * channels)
        for y in 0..<size.height {
            let sourceY = box.top + y - padTop
            guard (0..<image.height).contains(sourceY) else { continue }
            // Columns of this output row that fall inside the image.
            let firstX = max(0, padLeft - box.left)
            let endX = min(size.width, image.width + padLeft - box.left)
            guard firstX < endX else { continue }
            let sourceStart = (sourceY * image.width + box.left + firstX - padLeft) * channels
            let count = (endX - firstX) * channels
            pixels.replaceSubrange(
                ((y * size.width + firstX) * channels)..<((y * size.width + firstX) * channels + count),
                with: image.pixels[sourceStart..<(sourceStart + count)])
        }
        return Image(validatedWidth: size.width, height: size.height, channels: channels, pixels: pixels)
    }
}

/// torchvision's `RandomHorizontalFlip(p)`: mirrors left and right with probability `p`.
/// One number is drawn per image, flipped or not.
public struct HorizontalFlip: ImageTransform {
    public let p: Double
    public var isRandom: Bool { p > 0 && p < 1 }

    public init(p: Double = 0.5) throws(DatasetError) {
        guard (0...1).contains(p) else {
            throw .invalidConfiguration("HorizontalFlip probability must be in 0...1, not \(p)")
        }
        self.p = p
    }

    public func outputSize(for input: ImageSize?) -> ImageSize? { input }

    public func callAsFunction(_ image: Image, using random: inout SeededGenerator) -> Image {
        guard random.unitDouble() < p else { return image }
        return Self.flipped(image)
    }

    /// `image` mirrored left to right.
    public static func flipped(_ image: Image) -> Image {
        let w = image.width, c = image.channels
        let pixels = [UInt8](unsafeUninitializedCapacity: image.pixels.count) { buffer, initialized in
            for y in 0..<image.height {
                let row = y * w * c
                for x in 0..<w {
                    for k in 0..<c { buffer[row + x * c + k] = image.pixels[row + (w - 1 - x) * c + k] }
                }
            }
            initialized = image.pixels.count
        }
        return Image(validatedWidth: w, height: image.height, channels: c, pixels: pixels)
    }
}

private func validate(height: Int, width: Int, _ what: String) throws(DatasetError) {
    guard (1...(1 << 16)).contains(height), (1...(1 << 16)).contains(width) else {
        throw .invalidConfiguration("\(what) must be in 1...65536, not \(height)x\(width)")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
