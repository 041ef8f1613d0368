import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

/// Conv → MaxPool (→ BatchNormalization → activation), which the planner fuses into one step
/// when the convolution takes the direct row path (packed weights), against the same
/// computation written out in loops: every pool shape the fused kernel treats differently
/// (3x3/2 in one pass, other kernels and strides 1 and 2 vectorised, stride 3 through the
/// generic column code), ceil_mode, asymmetric pads, partial weight panels, several images,
/// and one to three threads. With OpenBLAS nothing is fused, so the same cases check the
/// unfused steps too.
@Suite(.serialized) struct ConvPoolFusionTests {
    struct Case: CustomStringConvertible {
        var batch = 1, channels = 3, outChannels = 16, size = 64, kernel = 7, stride = 2, pad = 3
        /// Activation fused into the convolution: "Relu", "Sigmoid" or nil.
        var convActivation: String? = "Relu"
        var poolKernel = 3, poolStride = 2
        /// top, left, bottom, right
        var poolPads = [1, 1, 1, 1]
        var ceil = false
        /// nil: no BatchNormalization; else the activation after it ("Relu", "LeakyRelu" or "").
        var normalization: String? = "Relu"
        /// A second convolution after all that (square kernel, stride and pads), with a ReLU.
        var trailing: (outChannels: Int, kernel: Int, stride: Int, pad: Int)? = nil
        var description: String {
            "N\(batch) C\(channels)->\(outChannels) \(size)px k\(kernel)/\(stride) \(convActivation ?? "-") pool \(poolKernel)/\(poolStride) \(poolPads)\(ceil ? " ceil" : "") bn \(normalization ?? "none")"
                + (trailing.map { " then \($0.outChannels) k\($0.kernel)/\($0.stride) p\($0.pad)" } ?? "")
        }
        var trailingSize: Int {
            guard let t = trailing else { return 0 }
            return (poolSize.w + 2 * t.pad - t.kernel) / t.stride + 1
        }
        var convSize: Int { (size + 2 * pad - kernel) / stride + 1 }
        var poolSize: (h: Int, w: Int) {
            func out(_ n: Int, _ before: Int, _ after: Int) -> Int {
                let span = n + before + after - poolKernel
                return (ceil ? (span + poolStride - 1) / poolStride : span / poolStride) + 1
            }
            return (out(convSize, poolPads[0], poolPads[2]), out(convSize, poolPads[1], poolPads[3]))
        }
    }

    static let cases: [Case] = [
        // ResNet's stem and pool (3x3/2 pad 1), BN and ReLU after it: the BottleFit head.
        Case(),
        // 13 output channels (a partial panel), two images, 2x2/2 pool, BN then LeakyRelu.
        Case(batch: 2, outChannels: 13, size: 96, poolKernel: 2, poolStride: 2, poolPads: [0, 0, 0, 0], normalization: "LeakyRelu"),
        // Sigmoid on the convolution (applied after the microkernel), 3x3/1 pool, no BN.
        Case(channels: 4, outChannels: 8, kernel: 3, pad: 1, convActivation: "Sigmoid", poolStride: 1, normalization: nil),
        // No affine after the pool, with and without a ReLU before it (3x3/1 and 3x3/2).
        Case(channels: 4, outChannels: 8, kernel: 3, pad: 1, convActivation: "Relu", poolStride: 1, normalization: nil),
        Case(channels: 4, outChannels: 8, kernel: 3, pad: 1, convActivation: nil, normalization: nil),
        // ceil_mode: the last window hangs over the edge; three images; BN without activation.
        Case(batch: 3, outChannels: 9, convActivation: nil, poolPads: [0, 0, 0, 0], ceil: true, normalization: ""),
        // Stride 3 (the generic column code), asymmetric pads, a 4-wide window.
        Case(outChannels: 24, size: 94, poolKernel: 4, poolStride: 3, poolPads: [0, 2, 1, 0]),
        // The BottleFit head's shape, two images: then a 2x2/2 pad 1 convolution (30 pooled rows -> 16).
        Case(batch: 2, outChannels: 16, size: 120, trailing: (12, 2, 2, 1)),
        // A 1x1/2 convolution reads every other pooled row (the rest are skipped).
        Case(outChannels: 10, size: 120, normalization: "", trailing: (20, 1, 2, 0)),
        // Pads of 2 around a 1x1/2 convolution: its first and last rows read only padding.
        Case(outChannels: 8, size: 112, trailing: (8, 1, 2, 2)),
    ]

    static func reference(_ c: Case, x: [Float], w: [Float], b: [Float], bn: [[Float]]) -> [Float] {
        let cs = c.convSize
        let conv = directConvolution(
            x, batch: c.batch, channels: c.channels, size: c.size, weights: w, bias: b, outChannels: c.outChannels,
            kernel: c.kernel, stride: c.stride, pad: c.pad
        ).map { v in
            switch c.convActivation {
            case "Relu": max(v, 0)
            case "Sigmoid": 1 / (1 + exp(-v))
            default: v
            }
        }
        let (ph, pw) = c.poolSize
        var y = [Float](repeating: 0, count: c.batch * c.outChannels * ph * pw)
        for n in 0..<c.batch {
            for m in 0..<c.outChannels {
                for py in 0..<ph {
                    for px in 0..<pw {
                        var best = -Float.infinity
                        for ki in 0..<c.poolKernel {
                            for kj in 0..<c.poolKernel {
                                let iy = py * c.poolStride - c.poolPads[0] + ki, ix = px * c.poolStride - c.poolPads[1] + kj
                                guard iy >= 0, iy < cs, ix >= 0, ix < cs else { continue }
                                best = max(best, conv[((n * c.outChannels + m) * cs + iy) * cs + ix])
                            }
                        }
                        if let act = c.normalization {
                            let a = bn[0][m] / (bn[3][m] + 1e-5).squareRoot()
                            best = (best - bn[2][m]) * a + bn[1][m]
                            if act == "Relu" { best = max(best, 0) }
                            if act == "LeakyRelu" && best < 0 { best *= 0.1 }
                        }
                        y[((n * c.outChannels + m) * ph + py) * pw + px] = best
                    }
                }
            }
        }
        return y
    }

    static func graph(_ c: Case, w: [Float], b: [Float], bn: [[Float]]) -> Graph {
        var nodes = [
            Node(
                name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
                attributes: [
                    "kernel_shape": .ints([c.kernel, c.kernel]), "strides": .ints([c.stride, c.stride]),
                    "pads": .ints([c.pad, c.pad, c.pad, c.pad]),
                ])
        ]
        var last = "c"
        if let act = c.convActivation {
            nodes.append(Node(name: "act", opType: act, inputs: ["c"], outputs: ["ca"]))
            last = "ca"
        }
        nodes.append(
            Node(
                name: "pool", opType: "MaxPool", inputs: [last], outputs: ["p"],
                attributes: [
                    "kernel_shape": .ints([c.poolKernel, c.poolKernel]), "strides": .ints([c.poolStride, c.poolStride]),
                    "pads": .ints(c.poolPads), "ceil_mode": .int(c.ceil ? 1 : 0),
                ]))
        last = "p"
        var initializers = [
            "w": Tensor(shape: [c.outChannels, c.channels, c.kernel, c.kernel], floats: w),
            "b": Tensor(shape: [c.outChannels], floats: b),
        ]
        if let act = c.normalization {
            for (i, name) in ["gamma", "beta", "mean", "var"].enumerated() {
                initializers[name] = Tensor(shape: [c.outChannels], floats: bn[i])
            }
            nodes.append(Node(name: "bn", opType: "BatchNormalization", inputs: ["p", "gamma", "beta", "mean", "var"], outputs: ["n"]))
            last = "n"
            if act == "Relu" { nodes.append(Node(name: "bnact", opType: "Relu", inputs: ["n"], outputs: ["na"])) }
            if act == "LeakyRelu" {
                nodes.append(Node(name: "bnact", opType: "LeakyRelu", inputs: ["n"], outputs: ["na"], attributes: ["alpha": .float(0.1)]))
            }
            if !act.isEmpty { last = "na" }
        }
        if let t = c.trailing {
            nodes.append(
                Node(
                    name: "conv2", opType: "Conv", inputs: [last, "w2", "b2"], outputs: ["c2"],
                    attributes: [
                        "kernel_shape": .ints([t.kernel, t.kernel]), "strides": .ints([t.stride, t.stride]),
                        "pads": .ints([t.pad, t.pad, t.pad, t.pad]),
                    ]))
            nodes.append(Node(name: "act2", opType: "Relu", inputs: ["c2"], outputs: ["r2"]))
            initializers["w2"] = Tensor(shape: [t.outChannels, c.outChannels, t.kernel, t.kernel], floats: trailingWeights(c))
            initializers["b2"] = Tensor(shape: [t.outChannels], floats: (0..<t.outChannels).map { Float($0 % 5) * 0.1 - 0.2 })
        }
        nodes[nodes.count - 1].outputs = ["y"]
        return Graph(
            name: "convpool", nodes: nodes,
            inputs: [ValueInfo(name: "x", shape: [c.batch, c.channels, c.size, c.size].map { .fixed($0) })],
            outputs: [ValueInfo(name: "y", shape: nil)], initializers: initializers)
    }

    static func trailingWeights(_ c: Case) -> [Float] {
        guard let t = c.trailing else { return [] }
        var rng = SeededGenerator(seed: 99)
        return (0..<t.outChannels * c.outChannels * t.kernel * t.kernel).map { _ in rng.nextNormal() * 0.2 }
    }

    @Test(arguments: cases)
    func matchesLoops(_ c: Case) throws {
        var rng = SeededGenerator(seed: UInt64(c.size * 17 + c.outChannels))
        let x = (0..<c.batch * c.channels * c.size * c.size).map { _ in rng.nextNormal() }
        let w = (0..<c.outChannels * c.channels * c.kernel * c.kernel).map { _ in rng.nextNormal() * 0.3 }
        let b = (0..<c.outChannels).map { _ in rng.nextNormal() }
        let bn = [
            (0..<c.outChannels).map { _ in 1 + 0.2 * rng.nextNormal() }, (0..<c.outChannels).map { _ in rng.nextNormal() },
            (0..<c.outChannels).map { _ in rng.nextNormal() }, (0..<c.outChannels).map { _ in 1 + abs(rng.nextNormal()) },
        ]
        var expected = Self.reference(c, x: x, w: w, b: b, bn: bn)
        if let t = c.trailing {
            expected = directConvolution(
                expected, batch: c.batch, channels: c.outChannels, size: c.poolSize.w, weights: Self.trailingWeights(c),
                bias: (0..<t.outChannels).map { Float($0 % 5) * 0.1 - 0.2 }, outChannels: t.outChannels, kernel: t.kernel,
                stride: t.stride, pad: t.pad
            ).map { max($0, 0) }
        }
        let graph = Self.graph(c, w: w, b: b, bn: bn)
        let unfusedSteps = 2 + (c.normalization == nil ? 0 : 1) + (c.trailing == nil ? 0 : 1)
        try forEachComputeContext(threadCounts: [1, 2, 3]) { compute in
            let session = try InferenceSession(graph: graph, compute: compute)
            let plan = try session.plan(batch: c.batch)
            // Every case here takes the direct row path, which `mixed` runs packed as well.
            #expect(plan.stepCount == (compute.gemm == .openblas ? unfusedSteps : 1), "\(c) \(compute): \(plan.stepCount) steps")
            try plan.setInput("x", Tensor(shape: [c.batch, c.channels, c.size, c.size], floats: x))
            plan.execute()
            let got = plan.output("y")!.floats!
            expectClose(got, expected, "\(c) \(compute)")
        }
    }

    /// A pool whose input is also read elsewhere (here: a graph output) is not fused.
    @Test func convolutionReadTwiceIsNotFused() throws {
        var c = Case()
        c.normalization = nil
        var rng = SeededGenerator(seed: 5)
        let w = (0..<c.outChannels * c.channels * 49).map { _ in rng.nextNormal() * 0.3 }
        let b = (0..<c.outChannels).map { _ in rng.nextNormal() }
        var graph = Self.graph(c, w: w, b: b, bn: [])
        graph.outputs.append(ValueInfo(name: "ca", shape: nil))
        try forEachComputeContext { compute in
            let plan = try InferenceSession(graph: graph, compute: compute).plan(batch: 1)
            #expect(plan.stepCount == 2)
        }
    }
}
