import BottleFitCore
import BottleFitEngine
import Testing

@testable import BottleFitTraining

/// A small torchvision-topology ResNet (bottleneck blocks, ImageNet stem) for quick tests.
func tinyResNet(seed: UInt64 = 1) -> Graph {
    ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5, imageSize: 32, inputChannels: 1, blocks: [1, 1, 1, 1]), seed: seed)
}

func randomImages(_ n: Int, size: Int = 32, seed: UInt64 = 5) -> Buffer {
    var rng = SeededGenerator(seed: seed)
    return Buffer(shape: [n, 1, size, size], data: (0..<(n * size * size)).map { _ in rng.nextNormal() })
}

@Suite struct ModelTrainingTests {
    @Test func inferenceModeForwardMatchesTheInferenceEngine() throws {
        var graph = tinyResNet()
        // Non-trivial BatchNormalization statistics, so inference mode is really exercised.
        var rng = SeededGenerator(seed: 9)
        for (name, t) in graph.initializers where name.hasSuffix("running_var") || name.hasSuffix("running_mean") {
            let isVar = name.hasSuffix("running_var")
            graph.initializers[name] = Tensor(shape: t.shape, floats: (0..<t.count).map { _ in isVar ? 0.5 + rng.nextUnit() : rng.nextNormal() * 0.1 })
        }
        let x = randomImages(3)
        let model = try TrainingGraph(graph)
        let ours = try model.forward(["input": x], outputs: ["logits"], training: false)["logits"]!
        let session = try InferenceSession(graph: graph)
        let reference = try session.run(["input": x.tensor])["logits"]!.floats!
        let scale = reference.map(abs).max()!
        let diff = zip(ours.data, reference).map { abs($0 - $1) }.max()!
        #expect(diff <= 1e-4 * scale, "max |diff| \(diff) against max |ref| \(scale)")
    }

    @Test func wholeModelGradientsAgreeWithFiniteDifferences() throws {
        let model = try TrainingGraph(ModelFactory.resnet(ResNetConfiguration(width: 4, classes: 5, imageSize: 64, inputChannels: 1, blocks: [1, 1, 1, 1]), seed: 1))
        let x = randomImages(8, size: 64)
        let labels: [Int32] = [0, 1, 2, 3, 4, 0, 1, 2]
        func loss() throws -> (Float, TrainingGraph.Pass) {
            let pass = try model.forward(["input": x], outputs: ["logits"], training: true)
            return (try Loss.crossEntropy(pass["logits"]!, labels: labels).value, pass)
        }
        let (_, pass) = try loss()
        let ce = try Loss.crossEntropy(pass["logits"]!, labels: labels)
        let grads = try model.backward(pass, seeds: ["logits": ce.gradient])
        #expect(Set(grads.keys) == model.trainable)
        // A few elements of parameters spread through the network.
        for name in ["conv1.weight", "bn1.weight", "layer2.0.conv2.weight", "layer3.0.downsample.0.weight", "layer4.0.bn3.bias", "fc.weight", "fc.bias"] {
            let base = model.parameters[name]!
            for i in Swift.stride(from: 0, to: base.count, by: max(1, base.count / 5)) {
                let eps: Float = 2e-4
                var p = base
                p.data[i] += eps
                try model.setParameter(name, p)
                let lp = try loss().0
                p.data[i] -= 2 * eps
                try model.setParameter(name, p)
                let lm = try loss().0
                try model.setParameter(name, base)
                let numeric = (lp - lm) / (2 * eps)
                let analytic = grads[name]!.data[i]
                #expect(abs(analytic - numeric) <= 3e-3 + 5e-2 * abs(numeric), "\(name)[\(i)]: \(analytic) vs \(numeric)")
            }
        }
    }

    @Test func frozenPartsKeepTheirValuesAndStatistics() throws {
        let model = try TrainingGraph(tinyResNet())
        model.freeze(prefixes: ["conv1.", "bn1.", "layer1."])
        let before = model.parameters
        var sgd = SGD(learningRate: 0.1, momentum: 0.9)
        for _ in 0..<2 {
            let pass = try model.forward(["input": randomImages(4)], outputs: ["logits"], training: true)
            let ce = try Loss.crossEntropy(pass["logits"]!, labels: [0, 1, 2, 3])
            sgd.step(model, gradients: try model.backward(pass, seeds: ["logits": ce.gradient]))
        }
        for (name, value) in model.parameters {
            let frozen = ["conv1.", "bn1.", "layer1."].contains { name.hasPrefix($0) }
            if frozen {
                #expect(value == before[name]!, "\(name) changed although frozen")
            } else if name.hasSuffix(".weight") {
                #expect(value != before[name]!, "\(name) did not change")
            }
        }
    }

    /// Overfits a handful of images: the loss must fall a long way, and two runs with the
    /// same seed must end in bit-identical parameters.
    @Test func trainingLearnsAndIsReproducible() throws {
        // Bit-identical needs the same GEMM set-up in both runs. OpenBLAS starts with its own
        // thread count, and engine tests running beside this one set it to 1 at any time
        // (a ComputeContext with more than one thread). The runs once differed in the last bits during a
        // full, loaded test run; this is the likely cause (not reproduced in 8 runs since).
        // Fix the count to 1 here first.
        TrainingThreads.configure(1)
        func run() throws -> (first: Float, last: Float, params: [String: Buffer]) {
            let model = try TrainingGraph(tinyResNet(seed: 4))
            var adam = Adam(learningRate: 0.01)
            let x = randomImages(8, seed: 12)
            let labels: [Int32] = [0, 1, 2, 3, 4, 0, 1, 2]
            var first: Float = 0, last: Float = 0
            for step in 0..<40 {
                let pass = try model.forward(["input": x], outputs: ["logits"], training: true)
                let ce = try Loss.crossEntropy(pass["logits"]!, labels: labels)
                if step == 0 { first = ce.value }
                last = ce.value
                adam.step(model, gradients: try model.backward(pass, seeds: ["logits": ce.gradient]))
            }
            return (first, last, model.parameters)
        }
        let a = try run(), b = try run()
        #expect(a.last < 0.2 * a.first, "loss \(a.first) -> \(a.last)")
        #expect(a.params == b.params)
    }

    @Test func unsupportedOperatorsAreNamed() throws {
        let graph = Graph(
            name: "x", nodes: [Node(name: "s", opType: "Sigmoid", inputs: ["x"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", shape: nil)], outputs: [ValueInfo(name: "y", shape: nil)], initializers: [:])
        #expect(throws: TrainingError.unsupported("operator Sigmoid (node 's')")) { try TrainingGraph(graph) }
    }

    @Test func inputsOfTheWrongShapeAreRefused() throws {
        let model = try TrainingGraph(tinyResNet())
        #expect(throws: TrainingError.self) { try model.forward(["input": randomImages(2, size: 30)], outputs: ["logits"], training: false) }
        #expect(throws: TrainingError.self) { try model.forward([:], outputs: ["logits"], training: false) }
        #expect(throws: TrainingError.self) { try model.forward(["input": randomImages(2)], outputs: ["nope"], training: false) }
    }
}

@Suite struct BatchNormStatisticsTests {
    /// Training mode updates running = m·running + (1 − m)·batch, with the unbiased batch
    /// variance (PyTorch's convention; ONNX momentum m = 1 − PyTorch momentum).
    @Test func runningAveragesFollowTheMomentumRule() throws {
        let x = Buffer(shape: [2, 2, 1, 2], data: [1, 3, 10, 20, 5, 7, 30, 40])
        let graph = Graph(
            name: "bn",
            nodes: [Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "g", "b", "m", "v"], outputs: ["y"],
                         attributes: ["momentum": .float(0.9), "epsilon": .float(1e-5)])],
            inputs: [ValueInfo(name: "x", shape: nil)], outputs: [ValueInfo(name: "y", shape: nil)],
            initializers: ["g": Tensor(shape: [2], floats: [1, 1]), "b": Tensor(shape: [2], floats: [0, 0]),
                           "m": Tensor(shape: [2], floats: [0.5, -1]), "v": Tensor(shape: [2], floats: [2, 3])])
        let model = try TrainingGraph(graph)
        #expect(model.stateNames == ["m", "v"] && !model.trainable.contains("m"))
        let y = try model.forward(["x": x], outputs: ["y"], training: true)["y"]!
        // Channel 0: 1, 3, 5, 7 → mean 4, biased var 5, unbiased 20/3.
        // Channel 1: 10, 20, 30, 40 → mean 25, biased var 125, unbiased 500/3.
        let m = model.parameters["m"]!.data, v = model.parameters["v"]!.data
        #expect(abs(m[0] - (0.9 * 0.5 + 0.1 * 4)) < 1e-5 && abs(m[1] - (0.9 * -1 + 0.1 * 25)) < 1e-4)
        #expect(abs(v[0] - (0.9 * 2 + 0.1 * 20 / 3)) < 1e-5 && abs(v[1] - (0.9 * 3 + 0.1 * 500 / 3)) < 1e-3)
        // The output is normalised with the biased batch variance.
        #expect(abs(y.data[0] - (1 - 4) / (5 + 1e-5).squareRoot()) < 1e-5)
        // Inference mode reads, and leaves, the running statistics.
        _ = try model.forward(["x": x], outputs: ["y"], training: false)
        #expect(model.parameters["m"]!.data == m && model.parameters["v"]!.data == v)
    }
}
