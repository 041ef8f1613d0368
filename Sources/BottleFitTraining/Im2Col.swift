/// The geometry shared by convolution and its transpose: an image of `channels` x `height`
/// x `width` seen through a kernel, giving `outHeight` x `outWidth` positions.
struct WindowGeometry: Equatable {
    var channels: Int, height: Int, width: Int
    var kernelH: Int, kernelW: Int
    var strideH: Int, strideW: Int
    var padTop: Int, padLeft: Int
    var dilationH: Int, dilationW: Int
    var outHeight: Int, outWidth: Int

    var imageSize: Int { height * width }
    var positions: Int { outHeight * outWidth }

    /// Output size of a window sweep for a padded length (pads on both sides).
    static func outputLength(_ input: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int, dilation: Int, ceil: Bool = false) -> Int {
        let span = dilation * (kernel - 1) + 1
        let room = input + padBegin + padEnd - span
        if room < 0 { return 0 }
        return (ceil ? (room + stride - 1) / stride : room / stride) + 1
    }
}

/// Builds the column matrix of channels `c0 ..< c0 + cg` of a batch of images:
/// `col[(c·kh + ky)·kw + kx, n·P + p]` (row stride `n·P`), P = output positions.
/// Padding reads as zero. `images` is NCHW with `totalChannels` channels per image.
func im2col(
    _ images: UnsafePointer<Float>, batch: Int, totalChannels: Int, firstChannel c0: Int, channels cg: Int,
    _ g: WindowGeometry, into col: UnsafeMutablePointer<Float>
) {
    let p = g.positions
    let rowStride = batch * p
    TrainingThreads.forEach(batch * cg, minimumPerPart: max(1, 4096 / max(1, p * g.kernelH * g.kernelW))) { range in
        for job in range {
            let n = job / cg
            let c = job % cg
            let src = images + (n * totalChannels + c0 + c) * g.imageSize
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = (c * g.kernelH + ky) * g.kernelW + kx
                    var dst = col + row * rowStride + n * p
                    let offX = kx * g.dilationW - g.padLeft
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy < 0 || iy >= g.height {
                            dst.update(repeating: 0, count: g.outWidth)
                        } else {
                            let line = src + iy * g.width
                            if g.strideW == 1 {
                                // Contiguous: zero the padded ends, copy the middle.
                                var ox = 0
                                while ox < g.outWidth && ox + offX < 0 { dst[ox] = 0; ox += 1 }
                                var end = g.outWidth
                                while end > ox && end - 1 + offX >= g.width { end -= 1; dst[end] = 0 }
                                if end > ox { (dst + ox).update(from: line + ox + offX, count: end - ox) }
                            } else {
                                for ox in 0..<g.outWidth {
                                    let ix = ox * g.strideW + offX
                                    dst[ox] = (ix >= 0 && ix < g.width) ? line[ix] : 0
                                }
                            }
                        }
                        dst += g.outWidth
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back into its image position
/// (channels `c0 ..< c0 + cg`, which are overwritten, not accumulated into).
func col2im(
    _ col: UnsafePointer<Float>, batch: Int, totalChannels: Int, firstChannel c0: Int, channels cg: Int,
    _ g: WindowGeometry, into images: UnsafeMutablePointer<Float>
) {
    let p = g.positions
    let rowStride = batch * p
    TrainingThreads.forEach(batch * cg, minimumPerPart: max(1, 4096 / max(1, p * g.kernelH * g.kernelW))) { range in
        for job in range {
            let n = job / cg
            let c = job % cg
            let dstImage = images + (n * totalChannels + c0 + c) * g.imageSize
            dstImage.update(repeating: 0, count: g.imageSize)
            for ky in 0..<g.kernelH {
                for kx in 0..<g.kernelW {
                    let row = (c * g.kernelH + ky) * g.kernelW + kx
                    var src = col + row * rowStride + n * p
                    let offX = kx * g.dilationW - g.padLeft
                    for oy in 0..<g.outHeight {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        if iy >= 0 && iy < g.height {
                            let line = dstImage + iy * g.width
                            for ox in 0..<g.outWidth {
                                let ix = ox * g.strideW + offX
                                if ix >= 0 && ix < g.width { line[ix] += src[ox] }
                            }
                        }
                        src += g.outWidth
                    }
                }
            }
        }
    }
}

/// [N, C, P] -> [C, N·P]: channel-major rows, as the GEMMs want them.
func batchToChannelMajor(_ x: UnsafePointer<Float>, batch: Int, channels: Int, positions: Int, into y: UnsafeMutablePointer<Float>) {
    TrainingThreads.forEach(channels, minimumPerPart: max(1, 8192 / max(1, batch * positions))) { range in
        for c in range {
            for n in 0..<batch {
                (y + c * batch * positions + n * positions).update(from: x + (n * channels + c) * positions, count: positions)
            }
        }
    }
}

/// [C, N·P] -> [N, C, P].
func channelMajorToBatch(_ x: UnsafePointer<Float>, batch: Int, channels: Int, positions: Int, into y: UnsafeMutablePointer<Float>) {
    TrainingThreads.forEach(channels, minimumPerPart: max(1, 8192 / max(1, batch * positions))) { range in
        for c in range {
            for n in 0..<batch {
                (y + (n * channels + c) * positions).update(from: x + c * batch * positions + n * positions, count: positions)
            }
        }
    }
}
