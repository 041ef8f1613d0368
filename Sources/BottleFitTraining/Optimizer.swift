import Glibc

/// An optimiser step over a `TrainingGraph`'s trainable parameters. The state (momentum
/// buffers, Adam moments, step count) is kept by parameter name so it can be saved.
public protocol Optimizer {
    var learningRate: Float { get set }
    /// Applies one step with these gradients (missing gradients count as zero-free: skipped).
    mutating func step(_ model: TrainingGraph, gradients: [String: Buffer])
    /// Named state tensors, for checkpoints.
    var state: [String: Buffer] { get set }
}

/// SGD with momentum and (coupled, L2) weight decay, as `torch.optim.SGD`:
/// g ← g + λ·p; b ← μ·b + g; p ← p − lr·b.
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var state: [String: Buffer] = [:]

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public mutating func step(_ model: TrainingGraph, gradients: [String: Buffer]) {
        for (name, grad) in gradients.sorted(by: { $0.key < $1.key }) where model.trainable.contains(name) {
            var g = grad.data
            let p = model.parameters[name]!.data
            if weightDecay != 0 { for i in g.indices { g[i] += weightDecay * p[i] } }
            if momentum != 0 {
                let key = "\(name).momentum"
                if var b = state[key]?.data {
                    for i in b.indices { b[i] = momentum * b[i] + g[i] }
                    g = b
                }
                state[key] = Buffer(shape: grad.shape, data: g)
            }
            let lr = learningRate
            model.updateParameter(name) { p in for i in p.indices { p[i] -= lr * g[i] } }
        }
    }
}

/// Adam (Kingma & Ba) with bias correction and optional L2 weight decay, as `torch.optim.Adam`.
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public var state: [String: Buffer] = [:]

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public mutating func step(_ model: TrainingGraph, gradients: [String: Buffer]) {
        for (name, grad) in gradients.sorted(by: { $0.key < $1.key }) where model.trainable.contains(name) {
            let p = model.parameters[name]!.data
            var g = grad.data
            if weightDecay != 0 { for i in g.indices { g[i] += weightDecay * p[i] } }
            var m = state["\(name).exp_avg"]?.data ?? [Float](repeating: 0, count: g.count)
            var v = state["\(name).exp_avg_sq"]?.data ?? [Float](repeating: 0, count: g.count)
            let t = (state["\(name).step"]?.data[0] ?? 0) + 1
            for i in g.indices {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            }
            let c1 = 1 - powf(beta1, t), c2 = 1 - powf(beta2, t)
            let stepSize = learningRate / c1
            let c2root = c2.squareRoot()
            model.updateParameter(name) { p in
                for i in p.indices { p[i] -= stepSize * m[i] / (v[i].squareRoot() / c2root + epsilon) }
            }
            state["\(name).exp_avg"] = Buffer(shape: grad.shape, data: m)
            state["\(name).exp_avg_sq"] = Buffer(shape: grad.shape, data: v)
            state["\(name).step"] = Buffer(shape: [1], data: [t])
        }
    }
}

/// Multi-step learning-rate schedule: lr = base · γ^(number of milestones ≤ epoch).
public struct MultiStepSchedule: Sendable, Equatable {
    public var base: Float
    public var milestones: [Int]
    public var gamma: Float

    public init(base: Float, milestones: [Int], gamma: Float = 0.1) {
        self.base = base
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    public func learningRate(epoch: Int) -> Float {
        base * powf(gamma, Float(milestones.filter { $0 <= epoch }.count))
    }
}
