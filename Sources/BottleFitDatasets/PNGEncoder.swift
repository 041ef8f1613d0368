import CBottleFitZlib

/// A PNG encoder for 8-bit greyscale images: signature, IHDR, one IDAT, IEND, each chunk with
/// its CRC-32. Used to report how many bytes an image takes losslessly compressed.
///
/// Each row gets the filter (None, Sub, Up, Average or Paeth) whose output has the smallest
/// sum of absolute values taken as signed bytes, the heuristic libpng uses; the filtered
/// rows are deflated by zlib at its maximum level. The corresponding C functions are
/// `compress2` and `crc32`.
public enum PNGEncoder {
    /// The PNG file of a `width` x `height` greyscale image, row-major, one byte per pixel.
    ///
    /// - Precondition: `width` and `height` in 1...2^31 - 1 and `gray.count == width * height`.
    public static func encode(gray: [UInt8], width: Int, height: Int) -> [UInt8] {
        precondition(width > 0 && height > 0 && width <= Int(Int32.max) && height <= Int(Int32.max), "PNG dimensions must be in 1...2^31-1")
        precondition(gray.count == width * height, "\(gray.count) pixels for \(width)x\(height)")
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        // Width, height, bit depth 8, colour type 0 (greyscale), deflate, adaptive filtering, no interlace.
        appendChunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 0, 0, 0, 0], to: &png)
        appendChunk("IDAT", deflate(filteredRows(gray, width: width, height: height)), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// Every row preceded by its filter-type byte, as the IDAT stream holds them before deflate.
    static func filteredRows(_ gray: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity((width + 1) * height)
        let zeros = [UInt8](repeating: 0, count: width)
        var candidates = [[UInt8]](repeating: [UInt8](repeating: 0, count: width), count: 5)
        for y in 0..<height {
            let row = gray[(y * width)..<((y + 1) * width)]
            let above = y == 0 ? zeros[...] : gray[((y - 1) * width)..<(y * width)]
            let r = row.startIndex, u = above.startIndex
            for x in 0..<width {
                // Bytes one pixel to the left (a, c) are 0 before the first column.
                let current = row[r + x], up = above[u + x]
                let left = x > 0 ? row[r + x - 1] : 0
                let upLeft = x > 0 ? above[u + x - 1] : 0
                candidates[0][x] = current
                candidates[1][x] = current &- left
                candidates[2][x] = current &- up
                candidates[3][x] = current &- UInt8((Int(left) + Int(up)) / 2)
                candidates[4][x] = current &- paeth(left, up, upLeft)
            }
            // Minimum sum of absolute differences; ties go to the earlier filter, as in libpng.
            var best = 0, bestSum = Int.max
            for (filter, candidate) in candidates.enumerated() {
                let sum = candidate.reduce(0) { $0 + ($1 < 128 ? Int($1) : 256 - Int($1)) }
                if sum < bestSum { (best, bestSum) = (filter, sum) }
            }
            out.append(UInt8(best))
            out += candidates[best]
        }
        return out
    }

    /// The Paeth predictor of the PNG specification (section 9.4).
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    /// A zlib stream of `data` at level 9.
    private static func deflate(_ data: [UInt8]) -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { dest in
            data.withUnsafeBufferPointer { source in
                compress2(dest.baseAddress, &capacity, source.baseAddress, uLong(source.count), Z_BEST_COMPRESSION)
            }
        }
        // compressBound guarantees room; only running out of memory can fail here.
        precondition(status == Z_OK, "zlib compress2 failed with \(status)")
        out.removeLast(out.count - Int(capacity))
        return out
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        png += bigEndian(UInt32(data.count))
        png += typeBytes
        png += data
        // The CRC covers the type and the data, not the length.
        var crc = crc32(0, nil, 0)
        crc = typeBytes.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        crc = data.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        png += bigEndian(UInt32(crc))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// PNG sizes of greyscale image sets: how many bytes each image takes as a PNG file.
public enum PNGSize {
    /// Bytes of the PNG file of image `index` of a greyscale set.
    public static func bytes(of images: LabelledImages, at index: Int) -> Int {
        precondition(images.channels == 1, "PNGSize measures greyscale images, these have \(images.channels) channels")
        return PNGEncoder.encode(gray: Array(images.pixels(at: index)), width: images.width, height: images.height).count
    }

    /// Mean bytes of the PNG files of all images of a greyscale set.
    public static func mean(of images: LabelledImages) -> Double {
        guard images.count > 0 else { return 0 }
        let total = (0..<images.count).reduce(0) { $0 + bytes(of: images, at: $1) }
        return Double(total) / Double(images.count)
    }
}
