import BottleFitEngine
import Glibc

/// BatchNormalization over NC... inputs, in training mode (batch statistics; running mean
/// and variance updated as `running = momentum·running + (1 − momentum)·batch`, with the
/// unbiased batch variance, as PyTorch does with momentum 1 − ONNX momentum) or in
/// inference mode (running statistics), with gradients for the input, scale and bias.
struct BatchNormGradient: TrainableOperator {
    let name: String
    let epsilon: Float
    let momentum: Float

    init(_ node: Node) throws(TrainingError) {
        let attributes = try AttributeReader(node, allowed: ["epsilon", "momentum", "training_mode"])
        name = node.name
        epsilon = try attributes.float("epsilon", 1e-5)
        momentum = try attributes.float("momentum", 0.9)
        guard node.inputs.count == 5, node.outputs.count == 1 else {
            throw .unsupported("BatchNormalization '\(node.name)' with \(node.inputs.count) inputs and \(node.outputs.count) outputs")
        }
    }

    func forward(_ inputs: [Buffer], training: Bool, saved: inout SavedState) throws(TrainingError) -> ForwardOutput {
        let x = inputs[0]
        guard x.shape.count >= 2 else { throw .shapeMismatch("BatchNormalization '\(name)': input \(x.shape)") }
        let n = x.shape[0], c = x.shape[1], p = x.count / max(1, n * c)
        for i in 1...4 where inputs[i].count != c {
            throw .shapeMismatch("BatchNormalization '\(name)': input \(i) has shape \(inputs[i].shape), expected [\(c)]")
        }
        var mean = [Float](repeating: 0, count: c)
        var variance = [Float](repeating: 0, count: c)
        var updates: [Int: Buffer] = [:]
        let m = n * p
        if training {
            guard m > 1 else { throw .invalidArgument("BatchNormalization '\(name)' in training mode needs more than one value per channel (batch of 1 at 1x1)") }
            x.data.withUnsafeBufferPointer { xp in
              mean.withUnsafeMutableBufferPointer { mean in
               variance.withUnsafeMutableBufferPointer { variance in
                TrainingThreads.forEach(c) { range in
                    for ch in range {
                        var s: Double = 0, s2: Double = 0
                        for i in 0..<n {
                            let base = (i * c + ch) * p
                            for j in 0..<p {
                                let v = Double(xp[base + j])
                                s += v
                                s2 += v * v
                            }
                        }
                        let mu = s / Double(m)
                        mean[ch] = Float(mu)
                        variance[ch] = Float(max(0, s2 / Double(m) - mu * mu))
                    }
                }
               }
              }
            }
            var runningMean = inputs[3], runningVar = inputs[4]
            let unbias = Float(m) / Float(m - 1)
            for ch in 0..<c {
                runningMean.data[ch] = momentum * runningMean.data[ch] + (1 - momentum) * mean[ch]
                runningVar.data[ch] = momentum * runningVar.data[ch] + (1 - momentum) * variance[ch] * unbias
            }
            updates = [3: runningMean, 4: runningVar]
        } else {
            mean = inputs[3].data
            variance = inputs[4].data
        }
        let invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        var y = Buffer(zeros: x.shape)
        var xhat = Buffer(zeros: x.shape)
        let gamma = inputs[1].data, beta = inputs[2].data
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                xhat.data.withUnsafeMutableBufferPointer { hp in
                    TrainingThreads.forEach(n * c, minimumPerPart: max(1, 4096 / max(1, p))) { range in
                        for job in range {
                            let ch = job % c
                            let base = job * p
                            let mu = mean[ch], s = invStd[ch], gm = gamma[ch], bt = beta[ch]
                            for j in 0..<p {
                                let h = (xp[base + j] - mu) * s
                                hp[base + j] = h
                                yp[base + j] = gm * h + bt
                            }
                        }
                    }
                }
            }
        }
        saved.buffers = [xhat, Buffer(shape: [c], data: invStd)]
        saved.indices = [training ? 1 : 0]
        return ForwardOutput(output: y, updates: updates)
    }

    func backward(_ dy: Buffer, inputs: [Buffer], output: Buffer, saved: SavedState, needs: [Bool]) -> [Buffer?] {
        let x = inputs[0]
        let n = x.shape[0], c = x.shape[1], p = x.count / max(1, n * c)
        let m = Float(n * p)
        let xhat = saved.buffers[0], invStd = saved.buffers[1].data
        let training = saved.indices[0] == 1
        var sumDy = [Float](repeating: 0, count: c)
        var sumDyXhat = [Float](repeating: 0, count: c)
        sumDy.withUnsafeMutableBufferPointer { sumDy in
          sumDyXhat.withUnsafeMutableBufferPointer { sumDyXhat in
           dy.data.withUnsafeBufferPointer { dp in
            xhat.data.withUnsafeBufferPointer { hp in
                TrainingThreads.forEach(c) { range in
                    for ch in range {
                        var s: Float = 0, sh: Float = 0
                        for i in 0..<n {
                            let base = (i * c + ch) * p
                            for j in 0..<p {
                                s += dp[base + j]
                                sh += dp[base + j] * hp[base + j]
                            }
                        }
                        sumDy[ch] = s
                        sumDyXhat[ch] = sh
                    }
                }
            }
           }
          }
        }
        var result: [Buffer?] = Array(repeating: nil, count: 5)
        if needs[1] { result[1] = Buffer(shape: [c], data: sumDyXhat) }
        if needs[2] { result[2] = Buffer(shape: [c], data: sumDy) }
        if needs[0] {
            let gamma = inputs[1].data
            var dx = Buffer(zeros: x.shape)
            dy.data.withUnsafeBufferPointer { dp in
                xhat.data.withUnsafeBufferPointer { hp in
                    dx.data.withUnsafeMutableBufferPointer { xp in
                        TrainingThreads.forEach(n * c, minimumPerPart: max(1, 4096 / max(1, p))) { range in
                            for job in range {
                                let ch = job % c
                                let base = job * p
                                let k = gamma[ch] * invStd[ch]
                                if training {
                                    let meanDy = sumDy[ch] / m, meanDyXhat = sumDyXhat[ch] / m
                                    for j in 0..<p { xp[base + j] = k * (dp[base + j] - meanDy - hp[base + j] * meanDyXhat) }
                                } else {
                                    for j in 0..<p { xp[base + j] = k * dp[base + j] }
                                }
                            }
                        }
                    }
                }
            }
            result[0] = dx
        }
        return result
    }
}
