import Foundation

/// Top-k of a row of logits, as softmax probabilities over all the row's classes.
///
/// RESULT scores ("ks") are probabilities rather than raw logits so that cameras, the
/// controller and accuracy studies can compare or threshold them across models.
enum TopK {
    /// The `k` most probable classes of `logits`, best first (ties: lower index first), or
    /// `nil` if a logit is not finite (the model misbehaved; the frame gets INTERNAL).
    static func softmax(_ logits: UnsafeBufferPointer<Float>, k: Int) -> (indices: [Int], scores: [Float])? {
        guard !logits.isEmpty else { return nil }
        var maximum = -Float.infinity
        for v in logits {
            guard v.isFinite else { return nil }
            maximum = max(maximum, v)
        }
        // Subtracting the maximum keeps exp() from overflowing; the sum is at least 1.
        var sum: Double = 0
        for v in logits { sum += exp(Double(v - maximum)) }
        let k = min(k, logits.count)
        var indices: [Int] = []
        indices.reserveCapacity(k + 1)
        // Insertion into a sorted list of at most k: k is small (≤ 1000, usually 5).
        for i in 0..<logits.count {
            let v = logits[i]
            if indices.count == k, let last = indices.last, logits[last] >= v { continue }
            var position = indices.count
            while position > 0 && logits[indices[position - 1]] < v { position -= 1 }
            indices.insert(i, at: position)
            if indices.count > k { indices.removeLast() }
        }
        let scores = indices.map { Float(exp(Double(logits[$0] - maximum)) / sum) }
        return (indices, scores)
    }
}
