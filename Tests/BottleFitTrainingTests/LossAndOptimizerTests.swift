import BottleFitCore
import BottleFitEngine
import Foundation
import Testing

@testable import BottleFitTraining

/// Central-difference gradient of a scalar function of one buffer.
func numericGradient(_ x: Buffer, epsilon: Float = 1e-2, _ f: (Buffer) throws -> Float) rethrows -> [Float] {
    var g = [Float](repeating: 0, count: x.count)
    for i in 0..<x.count {
        var p = x, m = x
        p.data[i] += epsilon
        m.data[i] -= epsilon
        g[i] = (try f(p) - f(m)) / (2 * epsilon)
    }
    return g
}

func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-3, rtol: Float = 2e-2, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, sourceLocation: sourceLocation)
    for (x, y) in zip(a, b) where abs(x - y) > atol + rtol * abs(y) {
        Issue.record("\(x) vs \(y)", sourceLocation: sourceLocation)
        return
    }
}

@Suite struct LossTests {
    var rng = SeededGenerator(seed: 3)

    mutating func random(_ shape: [Int]) -> Buffer {
        Buffer(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.nextNormal() })
    }

    @Test mutating func crossEntropyValueAndGradient() throws {
        let logits = random([4, 5])
        let labels: [Int32] = [0, 3, 4, 1]
        let loss = try Loss.crossEntropy(logits, labels: labels)
        // Value by the definition: mean of −log softmax at the label.
        var expected: Float = 0
        for i in 0..<4 {
            let row = logits.data[i * 5..<(i + 1) * 5]
            let m = row.max()!
            let logSum = log(row.reduce(0) { $0 + exp($1 - m) }) + m
            expected += logSum - logits.data[i * 5 + Int(labels[i])]
        }
        #expect(abs(loss.value - expected / 4) < 1e-5)
        expectClose(loss.gradient.data, try numericGradient(logits) { try Loss.crossEntropy($0, labels: labels).value })
    }

    @Test mutating func crossEntropyRejectsBadLabels() {
        #expect(throws: TrainingError.self) { try Loss.crossEntropy(Buffer(zeros: [2, 3]), labels: [0, 3]) }
        #expect(throws: TrainingError.self) { try Loss.crossEntropy(Buffer(zeros: [2, 3]), labels: [0]) }
    }

    @Test(arguments: [(Float(0.5), Float(1)), (0.3, 4), (1, 2), (0, 3)])
    func distillationGradient(alpha: Float, temperature: Float) throws {
        var rng = SeededGenerator(seed: 11)
        let s = Buffer(shape: [3, 4], data: (0..<12).map { _ in rng.nextNormal() })
        let t = Buffer(shape: [3, 4], data: (0..<12).map { _ in rng.nextNormal() * 2 })
        let labels: [Int32] = [1, 0, 3]
        let loss = try Loss.distillation(student: s, teacher: t, labels: labels, alpha: alpha, temperature: temperature)
        let numeric = try numericGradient(s) {
            try Loss.distillation(student: $0, teacher: t, labels: labels, alpha: alpha, temperature: temperature).value
        }
        expectClose(loss.gradient.data, numeric)
        // With the teacher equal to the student the KL term vanishes.
        let same = try Loss.distillation(student: s, teacher: s, labels: labels, alpha: alpha, temperature: temperature)
        let ce = try Loss.crossEntropy(s, labels: labels)
        #expect(abs(same.value - alpha * ce.value) < 1e-5)
    }

    @Test mutating func meanSquaredErrorBothReductions() throws {
        let a = random([2, 3, 2]), b = random([2, 3, 2])
        for reduction in Loss.Reduction.allCases {
            let loss = try Loss.meanSquaredError(a, target: b, reduction: reduction)
            let sum = zip(a.data, b.data).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            #expect(abs(loss.value - (reduction == .sum ? sum : sum / 12)) < 1e-4)
            expectClose(loss.gradient.data, try numericGradient(a) { try Loss.meanSquaredError($0, target: b, reduction: reduction).value })
        }
        #expect(throws: TrainingError.self) { try Loss.meanSquaredError(a, target: Buffer(zeros: [12]), reduction: .sum) }
    }
}

/// A one-parameter model: y = Flatten(p) so optimiser steps can be checked by hand.
func parameterModel(_ values: [Float]) throws -> TrainingGraph {
    let graph = Graph(
        name: "p", nodes: [Node(name: "f", opType: "Flatten", inputs: ["p"], outputs: ["y"], attributes: ["axis": .int(0)])],
        inputs: [], outputs: [ValueInfo(name: "y", shape: nil)], initializers: ["p": Tensor(shape: [values.count], floats: values)])
    return try TrainingGraph(graph)
}

@Suite struct OptimizerTests {
    @Test func sgdWithMomentumAndWeightDecayMatchesTorchFormula() throws {
        let model = try parameterModel([1, -2])
        var sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        let g = Buffer(shape: [2], data: [0.5, 0.25])
        sgd.step(model, gradients: ["p": g])
        // step 1: d = g + λp = [0.51, 0.23]; b = d; p = p − 0.1·b
        // (the element types are spelled out: Swift 6.2 infers Double for these literals)
        let p1: [Float] = [1 - 0.051, -2 - 0.023]
        expectClose(model.parameters["p"]!.data, p1, atol: 1e-6, rtol: 0)
        sgd.step(model, gradients: ["p": g])
        // step 2: d = g + λp'; b = 0.9·b + d
        let d2: [Float] = [0.5 + 0.01 * p1[0], 0.25 + 0.01 * p1[1]]
        let b2: [Float] = [0.9 * 0.51 + d2[0], 0.9 * 0.23 + d2[1]]
        let p2: [Float] = [p1[0] - 0.1 * b2[0], p1[1] - 0.1 * b2[1]]
        expectClose(model.parameters["p"]!.data, p2, atol: 1e-6, rtol: 0)
    }

    @Test func adamFirstStepsMatchTheAlgorithm() throws {
        let model = try parameterModel([0.5])
        var adam = Adam(learningRate: 0.01)
        // The first bias-corrected step moves by lr·g/(|g| + ε') ≈ lr regardless of |g|.
        adam.step(model, gradients: ["p": Buffer(shape: [1], data: [3])])
        #expect(abs(model.parameters["p"]!.data[0] - 0.49) < 1e-6)
        adam.step(model, gradients: ["p": Buffer(shape: [1], data: [-1])])
        let m = 0.9 * 0.1 * 3 + 0.1 * -1.0, v = 0.999 * 0.001 * 9 + 0.001 * 1.0
        let mhat = m / (1 - 0.81), vhat = v / (1 - 0.998001)
        let expected = 0.49 - 0.01 * mhat / (vhat.squareRoot() + 1e-8)
        #expect(abs(Double(model.parameters["p"]!.data[0]) - expected) < 1e-6)
    }

    @Test func frozenParametersDoNotMove() throws {
        let model = try parameterModel([1, 2])
        model.freeze(prefixes: ["p"])
        var sgd = SGD(learningRate: 1)
        sgd.step(model, gradients: ["p": Buffer(shape: [2], data: [1, 1])])
        #expect(model.parameters["p"]!.data == [1, 2])
    }

    @Test func multiStepSchedule() {
        let s = MultiStepSchedule(base: 0.1, milestones: [5, 8], gamma: 0.1)
        #expect(s.learningRate(epoch: 0) == 0.1)
        #expect(abs(s.learningRate(epoch: 5) - 0.01) < 1e-9)
        #expect(abs(s.learningRate(epoch: 9) - 0.001) < 1e-9)
    }
}
