import Glibc

/// A loss value and its gradient with respect to the prediction it was computed from.
public struct LossValue: Sendable {
    public var value: Float
    public var gradient: Buffer
}

/// The training losses: cross-entropy, knowledge distillation and MSE.
public enum Loss {
    /// Row-wise softmax of `logits` [N, K] at temperature `t`.
    public static func softmax(_ logits: Buffer, temperature t: Float = 1) -> Buffer {
        let n = logits.shape[0], k = logits.count / max(1, n)
        var p = logits
        for i in 0..<n {
            var m = -Float.infinity
            for j in 0..<k { m = max(m, logits.data[i * k + j] / t) }
            var s: Float = 0
            for j in 0..<k {
                let e = expf(logits.data[i * k + j] / t - m)
                p.data[i * k + j] = e
                s += e
            }
            for j in 0..<k { p.data[i * k + j] /= s }
        }
        return p
    }

    static func checkLabels(_ logits: Buffer, _ labels: [Int32]) throws(TrainingError) -> (Int, Int) {
        guard logits.shape.count == 2 else { throw .shapeMismatch("logits must be [batch, classes], got \(logits.shape)") }
        let n = logits.shape[0], k = logits.shape[1]
        guard labels.count == n else { throw .shapeMismatch("\(labels.count) labels for a batch of \(n)") }
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= k }) {
            throw .invalidArgument("label \(bad) is outside 0..<\(k)")
        }
        return (n, k)
    }

    /// Mean cross-entropy of `logits` [N, K] against class indices.
    public static func crossEntropy(_ logits: Buffer, labels: [Int32]) throws(TrainingError) -> LossValue {
        let (n, k) = try checkLabels(logits, labels)
        let p = softmax(logits)
        var grad = p
        var total: Double = 0
        for i in 0..<n {
            let y = Int(labels[i])
            total -= Double(logf(max(p.data[i * k + y], .leastNormalMagnitude)))
            grad.data[i * k + y] -= 1
        }
        let scale = 1 / Float(n)
        for i in grad.data.indices { grad.data[i] *= scale }
        return LossValue(value: Float(total / Double(n)), gradient: grad)
    }

    /// Knowledge distillation (Hinton et al.), as BottleFit's KD variant:
    /// L = α·CE(s, y) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T)), KL averaged over the batch.
    public static func distillation(
        student: Buffer, teacher: Buffer, labels: [Int32], alpha: Float, temperature t: Float
    ) throws(TrainingError) -> LossValue {
        guard student.shape == teacher.shape else {
            throw .shapeMismatch("student logits \(student.shape) and teacher logits \(teacher.shape) differ")
        }
        guard t > 0, (0...1).contains(alpha) else { throw .invalidArgument("distillation needs T > 0 and 0 ≤ α ≤ 1 (got T \(t), α \(alpha))") }
        let ce = try crossEntropy(student, labels: labels)
        let n = student.shape[0], k = student.shape[1]
        let ps = softmax(student, temperature: t), pt = softmax(teacher, temperature: t)
        var kl: Double = 0
        var grad = ce.gradient
        let klScale = (1 - alpha) * t / Float(n)
        for i in 0..<(n * k) {
            let q = pt.data[i]
            if q > 0 { kl += Double(q) * Double(logf(q) - logf(max(ps.data[i], .leastNormalMagnitude))) }
            grad.data[i] = alpha * grad.data[i] + klScale * (ps.data[i] - q)
        }
        let value = alpha * ce.value + (1 - alpha) * t * t * Float(kl / Double(n))
        return LossValue(value: value, gradient: grad)
    }

    public enum Reduction: String, Sendable, CaseIterable { case sum, mean }

    /// Mean squared error between a prediction and a target of the same shape.
    public static func meanSquaredError(_ prediction: Buffer, target: Buffer, reduction: Reduction) throws(TrainingError) -> LossValue {
        guard prediction.shape == target.shape else {
            throw .shapeMismatch("MSE between \(prediction.shape) and \(target.shape)")
        }
        var grad = prediction
        var total: Double = 0
        let scale: Float = reduction == .sum ? 2 : 2 / Float(max(1, prediction.count))
        for i in 0..<prediction.count {
            let d = prediction.data[i] - target.data[i]
            total += Double(d) * Double(d)
            grad.data[i] = scale * d
        }
        let value = reduction == .sum ? total : total / Double(max(1, prediction.count))
        return LossValue(value: Float(value), gradient: grad)
    }

    /// Top-1 correct predictions of `logits` against `labels`.
    public static func correct(_ logits: Buffer, labels: [Int32]) -> Int {
        let n = logits.shape[0], k = logits.count / max(1, n)
        var hits = 0
        for i in 0..<n {
            var best = 0
            for j in 1..<k where logits.data[i * k + j] > logits.data[i * k + best] { best = j }
            if best == Int(labels[i]) { hits += 1 }
        }
        return hits
    }
}
