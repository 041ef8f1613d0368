import BottleFitCore
import Foundation

/// Builds graphs layer by layer with torchvision-style parameter names and seeded,
/// He-initialised weights (kaiming normal, fan-out, as torchvision initialises ResNets, or
/// fan-in, as it initialises DenseNets; see `convTranspose` for transposed convolutions).
public struct GraphBuilder {
    /// Which fan He initialisation divides by: torchvision's ResNets use fan-out
    /// (`mode="fan_out"`), its DenseNets PyTorch's default fan-in.
    public enum Fan: Sendable {
        /// out · kh · kw.
        case output
        /// in · kh · kw.
        case input
    }

    public private(set) var nodes: [Node] = []
    public private(set) var initializers: [String: Tensor] = [:]
    private var rng: SeededGenerator
    private var counter = 0

    public init(seed: UInt64) {
        rng = SeededGenerator(seed: seed)
    }

    private mutating func fresh(_ base: String) -> String {
        counter += 1
        return "\(base)_\(counter)"
    }

    /// Adds a node; its output is named `output` or a fresh name.
    @discardableResult
    public mutating func add(_ op: String, _ inputs: [String], name: String, output: String? = nil, attributes: [String: AttributeValue] = [:]) -> String {
        let out = output ?? fresh(name.isEmpty ? op.lowercased() : name)
        nodes.append(Node(name: name.isEmpty ? fresh(op) : name, opType: op, inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }

    /// A convolution without bias, weights ~ N(0, 2 / (out · kh · kw)), or N(0, 2 / (in · kh · kw))
    /// with `fan: .input`.
    public mutating func conv(
        _ x: String, _ name: String, in c: Int, out m: Int, kernel k: Int, stride s: Int = 1, pad p: Int = 0, fan: Fan = .output,
        output: String? = nil
    ) -> String {
        let std = (2 / Float((fan == .output ? m : c) * k * k)).squareRoot()
        var w = [Float](repeating: 0, count: m * c * k * k)
        for i in w.indices { w[i] = rng.nextNormal() * std }
        initializers["\(name).weight"] = Tensor(shape: [m, c, k, k], floats: w)
        return add(
            "Conv", [x, "\(name).weight"], name: name, output: output ?? name,
            attributes: [
                "kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p]),
                "dilations": .ints([1, 1]), "group": .int(1),
            ])
    }

    /// A transposed convolution (ONNX ConvTranspose, weights [in, out, k, k]) with every
    /// attribute PyTorch's exporter writes (kernel_shape, strides, pads, dilations, group,
    /// output_padding), so no reader has to guess a default.
    ///
    /// Weights ~ N(0, 2 / (out · k · k)), the He (kaiming normal) formula `conv` uses: for a
    /// ConvTranspose weight that is PyTorch's `kaiming_normal_(w, nonlinearity="relu")` in its
    /// default fan-in mode, since PyTorch counts a ConvTranspose weight's fan-in as out · k · k.
    /// With `bias`, the bias ~ U(−1/√(out · k · k), 1/√(out · k · k)), PyTorch's default.
    public mutating func convTranspose(
        _ x: String, _ name: String, in c: Int, out m: Int, kernel k: Int, stride s: Int = 1, pad p: Int = 0,
        outputPadding op: Int = 0, bias: Bool = false, output: String? = nil
    ) -> String {
        let fan = Float(m * k * k)
        let std = (2 / fan).squareRoot()
        var w = [Float](repeating: 0, count: c * m * k * k)
        for i in w.indices { w[i] = rng.nextNormal() * std }
        initializers["\(name).weight"] = Tensor(shape: [c, m, k, k], floats: w)
        var inputs = [x, "\(name).weight"]
        if bias {
            let bound = 1 / fan.squareRoot()
            var v = [Float](repeating: 0, count: m)
            for i in v.indices { v[i] = (rng.nextUnit() * 2 - 1) * bound }
            initializers["\(name).bias"] = Tensor(shape: [m], floats: v)
            inputs.append("\(name).bias")
        }
        return add(
            "ConvTranspose", inputs, name: name, output: output ?? name,
            attributes: [
                "kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p]),
                "dilations": .ints([1, 1]), "group": .int(1), "output_padding": .ints([op, op]),
            ])
    }

    /// Inference batch normalisation with PyTorch's initial state (γ 1, β 0, μ 0, σ² 1).
    public mutating func batchNorm(_ x: String, _ name: String, channels c: Int, output: String? = nil) -> String {
        initializers["\(name).weight"] = Tensor(shape: [c], floats: [Float](repeating: 1, count: c))
        initializers["\(name).bias"] = Tensor(shape: [c], floats: [Float](repeating: 0, count: c))
        initializers["\(name).running_mean"] = Tensor(shape: [c], floats: [Float](repeating: 0, count: c))
        initializers["\(name).running_var"] = Tensor(shape: [c], floats: [Float](repeating: 1, count: c))
        return add(
            "BatchNormalization",
            [x, "\(name).weight", "\(name).bias", "\(name).running_mean", "\(name).running_var"],
            name: name, output: output ?? name, attributes: ["epsilon": .float(1e-5), "momentum": .float(0.9)])
    }

    public mutating func relu(_ x: String, _ name: String, output: String? = nil) -> String {
        add("Relu", [x], name: name, output: output ?? name)
    }

    public mutating func maxPool(_ x: String, _ name: String, kernel k: Int, stride s: Int, pad p: Int) -> String {
        add("MaxPool", [x], name: name, output: name, attributes: ["kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p])])
    }

    public mutating func averagePool(_ x: String, _ name: String, kernel k: Int, stride s: Int, output: String? = nil) -> String {
        add("AveragePool", [x], name: name, output: output ?? name, attributes: ["kernel_shape": .ints([k, k]), "strides": .ints([s, s])])
    }

    /// A fully connected layer, weights and bias ~ U(-1/√in, 1/√in) as PyTorch's Linear; with
    /// `zeroBias` the bias is 0 (torchvision's DenseNet).
    public mutating func linear(_ x: String, _ name: String, in k: Int, out n: Int, zeroBias: Bool = false, output: String? = nil) -> String {
        let bound = 1 / Float(k).squareRoot()
        var w = [Float](repeating: 0, count: n * k)
        for i in w.indices { w[i] = (rng.nextUnit() * 2 - 1) * bound }
        var b = [Float](repeating: 0, count: n)
        if !zeroBias { for i in b.indices { b[i] = (rng.nextUnit() * 2 - 1) * bound } }
        initializers["\(name).weight"] = Tensor(shape: [n, k], floats: w)
        initializers["\(name).bias"] = Tensor(shape: [n], floats: b)
        return add("Gemm", [x, "\(name).weight", "\(name).bias"], name: name, output: output ?? name, attributes: ["transB": .int(1)])
    }
}
