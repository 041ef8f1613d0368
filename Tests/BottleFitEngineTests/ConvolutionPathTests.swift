import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// Every convolution code path (pointwise, blocked im2col, batched columns, Winograd
/// F(3x3,2x2) and F(2x2,3x3), groups, depthwise, fused residual and activation) against a
/// direct convolution written out in loops, with one and two engine threads, through
/// OpenBLAS and (on CPUs with AVX-512) the packed-weight microkernel. The packed cases
/// cover row counts that are not a multiple of the 8-row panel, several depth blocks,
/// every width of the last column panel, and both ways of splitting over threads.
@Suite(.serialized) struct ConvolutionPathTests {
    struct Case: CustomStringConvertible {
        var batch, channels, outChannels, size, kernel, stride, pad, groups: Int
        /// LeakyRelu (slope 0.1) instead of Relu after the residual.
        var leaky = false
        /// A residual Add between the Conv and the activation (fused into the Conv).
        var residual = true
        var description: String {
            "N\(batch) C\(channels)->\(outChannels) \(size)px k\(kernel) s\(stride) p\(pad) g\(groups)\(leaky ? " leaky" : "")"
                + (residual ? "" : " no residual")
        }
    }

    static let cases: [Case] = [
        Case(batch: 1, channels: 8, outChannels: 16, size: 9, kernel: 1, stride: 1, pad: 0, groups: 1),
        Case(batch: 2, channels: 8, outChannels: 16, size: 9, kernel: 1, stride: 2, pad: 0, groups: 1),
        Case(batch: 1, channels: 3, outChannels: 16, size: 40, kernel: 7, stride: 2, pad: 3, groups: 1),
        Case(batch: 1, channels: 16, outChannels: 32, size: 13, kernel: 2, stride: 1, pad: 1, groups: 1),
        Case(batch: 3, channels: 16, outChannels: 32, size: 11, kernel: 2, stride: 1, pad: 0, groups: 1),
        Case(batch: 4, channels: 16, outChannels: 32, size: 14, kernel: 3, stride: 1, pad: 1, groups: 1),
        Case(batch: 8, channels: 8, outChannels: 16, size: 7, kernel: 3, stride: 1, pad: 1, groups: 1),
        Case(batch: 2, channels: 16, outChannels: 16, size: 10, kernel: 3, stride: 2, pad: 1, groups: 1),
        Case(batch: 1, channels: 8, outChannels: 8, size: 10, kernel: 3, stride: 1, pad: 1, groups: 8),
        Case(batch: 2, channels: 8, outChannels: 16, size: 10, kernel: 3, stride: 1, pad: 1, groups: 2),
        Case(batch: 1, channels: 4, outChannels: 16, size: 70, kernel: 3, stride: 1, pad: 1, groups: 1),
        // 45 rows (a partial panel), K = 576 in 2 depth blocks, 49 columns (48 + 16-wide panel).
        Case(batch: 1, channels: 64, outChannels: 45, size: 7, kernel: 3, stride: 1, pad: 1, groups: 1),
        // The same with 13 rows: the direct row path, 7 of 16 lanes per output row.
        Case(batch: 1, channels: 64, outChannels: 13, size: 7, kernel: 3, stride: 1, pad: 1, groups: 1),
        // 1000 columns split by columns over threads, 3 rows; a 40-column (48-wide) last panel.
        Case(batch: 1, channels: 5, outChannels: 3, size: 40, kernel: 1, stride: 1, pad: 0, groups: 1, leaky: true),
        // 196 columns split by columns at a multiple of 16 (96 + 100), not of 48 (144 + 52).
        Case(batch: 1, channels: 40, outChannels: 24, size: 14, kernel: 1, stride: 1, pad: 0, groups: 1),
        // Unstrided 3x3 with 32 output channels: the direct row path (DenseNet's layers), not Winograd.
        Case(batch: 1, channels: 24, outChannels: 32, size: 28, kernel: 3, stride: 1, pad: 1, groups: 1),
        // 100 columns (32-wide last panel), K = 300, rows split over threads.
        Case(batch: 1, channels: 300, outChannels: 40, size: 10, kernel: 1, stride: 1, pad: 0, groups: 1),
        // Direct row path (strided, output rows >= 48): stem-like, 2 images, 13 rows, leaky; and stride 3, even kernel.
        Case(batch: 2, channels: 3, outChannels: 13, size: 100, kernel: 7, stride: 2, pad: 3, groups: 1, leaky: true),
        Case(batch: 1, channels: 5, outChannels: 16, size: 160, kernel: 4, stride: 3, pad: 2, groups: 1),
        // Direct rows 64 wide, which run as two 32-wide blocks (not 48 + 16).
        Case(batch: 1, channels: 3, outChannels: 16, size: 128, kernel: 7, stride: 2, pad: 3, groups: 1),
        // Direct rows 29 wide (one 32-wide vector pair, 3 lanes spare): the BottleFit head's 2x2/2 bottleneck.
        Case(batch: 1, channels: 8, outChannels: 12, size: 57, kernel: 2, stride: 2, pad: 1, groups: 1),
        // Batched columns across image boundaries, 5 x 25 columns, 19 rows, leaky.
        Case(batch: 5, channels: 7, outChannels: 19, size: 11, kernel: 3, stride: 2, pad: 1, groups: 1, leaky: true),
        // Depthwise (direct rows, epilogue fused): stride 2 (MobileNet), 5x5/2 (EfficientNet), 7x7 pad 3
        // (ConvNeXt), stride 3 (the general strided loop), 1x1 with padding (rows that read only padding).
        Case(batch: 2, channels: 12, outChannels: 12, size: 11, kernel: 3, stride: 2, pad: 1, groups: 12),
        Case(batch: 1, channels: 6, outChannels: 6, size: 13, kernel: 5, stride: 2, pad: 2, groups: 6),
        Case(batch: 2, channels: 5, outChannels: 5, size: 9, kernel: 7, stride: 1, pad: 3, groups: 5, leaky: true),
        Case(batch: 1, channels: 4, outChannels: 4, size: 10, kernel: 3, stride: 3, pad: 2, groups: 4),
        Case(batch: 1, channels: 3, outChannels: 3, size: 6, kernel: 1, stride: 1, pad: 1, groups: 3),
        // Grouped, items split over threads: RegNet's 3x3/2 with groups of 8 channels, a grouped 1x1,
        // and more groups than threads at batch 3.
        Case(batch: 1, channels: 24, outChannels: 24, size: 13, kernel: 3, stride: 2, pad: 1, groups: 3),
        Case(batch: 2, channels: 8, outChannels: 12, size: 7, kernel: 1, stride: 1, pad: 0, groups: 4),
        Case(batch: 3, channels: 10, outChannels: 15, size: 9, kernel: 3, stride: 1, pad: 1, groups: 5, leaky: true),
        // A depthwise multiplier of 2 (one input, two outputs per group), and groups of 33
        // channels (wider than the direct kernel takes: a GEMM per group).
        Case(batch: 1, channels: 6, outChannels: 12, size: 12, kernel: 3, stride: 2, pad: 1, groups: 6),
        Case(batch: 1, channels: 66, outChannels: 16, size: 6, kernel: 3, stride: 1, pad: 1, groups: 2),
        // Unstrided direct rows without a residual run several output rows per GEMM (`FlatRows`):
        // DenseNet's 3x3 -> 32 on 7x7 (whole map in one run, 7 rows split 3 + 4 over threads), 28x28
        // and 56x56 (runs of 8 and 4 rows, K = 1152 in 3 depth blocks), an even kernel whose output
        // is wider than its input, a 5x5 kernel, batch 3, and few output channels (a partial panel).
        Case(batch: 1, channels: 64, outChannels: 13, size: 7, kernel: 3, stride: 1, pad: 1, groups: 1, residual: false),
        Case(batch: 1, channels: 24, outChannels: 32, size: 28, kernel: 3, stride: 1, pad: 1, groups: 1, residual: false),
        Case(batch: 1, channels: 128, outChannels: 32, size: 56, kernel: 3, stride: 1, pad: 1, groups: 1, leaky: true, residual: false),
        Case(batch: 2, channels: 16, outChannels: 32, size: 13, kernel: 2, stride: 1, pad: 1, groups: 1, residual: false),
        Case(batch: 1, channels: 8, outChannels: 20, size: 15, kernel: 5, stride: 1, pad: 2, groups: 1, residual: false),
        Case(batch: 3, channels: 16, outChannels: 5, size: 11, kernel: 3, stride: 1, pad: 0, groups: 1, residual: false),
        // Depthwise 3x3, unstrided, no residual (the AVX2 build's `dw3_block`): rows in blocks of 6, 4, 2
        // and 1 (17 = 6 + 6 + 4 + 1), a last chunk moved back over its neighbour (20 = 8 + 8 + 4),
        // a map narrower than a chunk (7), no padding, and a leaky activation.
        Case(batch: 1, channels: 4, outChannels: 4, size: 17, kernel: 3, stride: 1, pad: 1, groups: 4, residual: false),
        Case(batch: 2, channels: 3, outChannels: 3, size: 20, kernel: 3, stride: 1, pad: 1, groups: 3, leaky: true, residual: false),
        Case(batch: 1, channels: 6, outChannels: 6, size: 7, kernel: 3, stride: 1, pad: 1, groups: 6, residual: false),
        Case(batch: 1, channels: 5, outChannels: 5, size: 13, kernel: 3, stride: 1, pad: 0, groups: 5, residual: false),
        // The same at stride 2 (`dw3s2_block`): rows in blocks of 4, 2, 1 (17 -> 9 = 4 + 4 + 1), a map
        // narrower than a chunk (7 -> 4), a last chunk moved back (40 -> 20), no padding (28 -> 13).
        Case(batch: 1, channels: 4, outChannels: 4, size: 17, kernel: 3, stride: 2, pad: 1, groups: 4, residual: false),
        Case(batch: 2, channels: 3, outChannels: 3, size: 7, kernel: 3, stride: 2, pad: 1, groups: 3, leaky: true, residual: false),
        Case(batch: 1, channels: 5, outChannels: 5, size: 40, kernel: 3, stride: 2, pad: 1, groups: 5, residual: false),
        Case(batch: 1, channels: 4, outChannels: 4, size: 28, kernel: 3, stride: 2, pad: 0, groups: 4, residual: false),
    ]

    /// out = relu(conv(x) + bias + residual), computed directly.
    static func reference(_ c: Case, x: [Float], w: [Float], b: [Float], r: [Float]) -> [Float] {
        let conv = directConvolution(
            x, batch: c.batch, channels: c.channels, size: c.size, weights: w, bias: b, outChannels: c.outChannels,
            kernel: c.kernel, stride: c.stride, pad: c.pad, groups: c.groups)
        return zip(conv, r).map { v, r in
            let s = c.residual ? v + r : v
            return c.leaky ? (s < 0 ? 0.1 * s : s) : max(s, 0)
        }
    }

    @Test(arguments: cases)
    func matchesDirectConvolution(_ c: Case) throws {
        var rng = SeededGenerator(seed: UInt64(c.size * 31 + c.kernel))
        let outSize = (c.size + 2 * c.pad - c.kernel) / c.stride + 1
        let x = (0..<c.batch * c.channels * c.size * c.size).map { _ in rng.nextNormal() }
        let w = (0..<c.outChannels * c.channels / c.groups * c.kernel * c.kernel).map { _ in rng.nextNormal() * 0.3 }
        let b = (0..<c.outChannels).map { _ in rng.nextNormal() }
        let r = (0..<c.batch * c.outChannels * outSize * outSize).map { _ in rng.nextNormal() }
        let graph = Graph(
            name: "conv",
            nodes: [
                Node(
                    name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
                    attributes: [
                        "kernel_shape": .ints([c.kernel, c.kernel]), "strides": .ints([c.stride, c.stride]),
                        "pads": .ints([c.pad, c.pad, c.pad, c.pad]), "group": .int(c.groups),
                    ]),
                Node(name: "add", opType: c.residual ? "Add" : "Identity", inputs: c.residual ? ["c", "r"] : ["c"], outputs: ["s"]),
                c.leaky
                    ? Node(name: "act", opType: "LeakyRelu", inputs: ["s"], outputs: ["y"], attributes: ["alpha": .float(0.1)])
                    : Node(name: "act", opType: "Relu", inputs: ["s"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", shape: [c.batch, c.channels, c.size, c.size].map { .fixed($0) })]
                + (c.residual ? [ValueInfo(name: "r", shape: [c.batch, c.outChannels, outSize, outSize].map { .fixed($0) })] : []),
            outputs: [ValueInfo(name: "y", shape: nil)],
            initializers: [
                "w": Tensor(shape: [c.outChannels, c.channels / c.groups, c.kernel, c.kernel], floats: w),
                "b": Tensor(shape: [c.outChannels], floats: b),
            ])
        let expected = Self.reference(c, x: x, w: w, b: b, r: r)
        try forEachComputeContext { compute in
            let session = try InferenceSession(graph: graph, compute: compute)
            var feeds = ["x": Tensor(shape: [c.batch, c.channels, c.size, c.size], floats: x)]
            if c.residual { feeds["r"] = Tensor(shape: [c.batch, c.outChannels, outSize, outSize], floats: r) }
            let out = try session.run(feeds)["y"]!
            let got = out.floats!
            expectClose(got, expected, "\(c) \(compute)")
        }
    }
}
