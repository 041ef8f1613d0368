import Foundation
@testable import BottleFitWorker
import Testing

/// Softmax top-k on hand-made logits.
@Suite struct TopKTests {
    @Test func bestFirstAsProbabilities() throws {
        let logits: [Float] = [1, 3, 2, 3, 0]
        let top = try #require(logits.withUnsafeBufferPointer { TopK.softmax($0, k: 3) })
        #expect(top.indices == [1, 3, 2])  // the tie keeps the lower index first
        let total = logits.map { exp(Double($0)) }.reduce(0, +)
        for (i, s) in zip(top.indices, top.scores) { #expect(abs(Double(s) - exp(Double(logits[i])) / total) < 1e-6) }
    }

    @Test func kAboveClassesGivesAllAndNonFiniteGivesNil() {
        let all = [Float](arrayLiteral: 0, 0).withUnsafeBufferPointer { TopK.softmax($0, k: 5) }
        #expect(all?.indices == [0, 1] && all?.scores == [0.5, 0.5])
        #expect([Float](arrayLiteral: 1, .nan).withUnsafeBufferPointer { TopK.softmax($0, k: 1) } == nil)
        #expect([Float](arrayLiteral: .infinity).withUnsafeBufferPointer { TopK.softmax($0, k: 1) } == nil)
    }
}
