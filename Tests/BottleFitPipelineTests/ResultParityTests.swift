import BottleFitCore
import BottleFitEngine
import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// Results through real broker and worker processes equal head + tail run in this process.
@Suite(.serialized, .blocking) struct ResultParityTests {
    let models = TinyModels.files

    @Test func pipelineTopKEqualsHeadAndTailInProcess() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b = fleet.start("broker", ["broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"),
                                       "--stats", fleet.endpoint("stats")])
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        fleet.start("w1", ["worker", "--broker", fleet.endpoint("back"), "--id", "w1", "--model", "tiny=\(models.tail)",
                           "--top-k", "5"])
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")

        let head = try InferenceSession(contentsOf: URL(fileURLWithPath: models.head))
        let tail = try InferenceSession(contentsOf: URL(fileURLWithPath: models.tail))
        let context = try ZMQContext()
        let camera = try ZMQSocket(context, type: .dealer, linger: 0)
        try camera.setOption(.receiveTimeout, 20_000)
        try camera.connect(fleet.endpoint("front"))
        let quantizer = BottleneckQuantizer()
        var rng = SeededGenerator(seed: 7)
        for sequence in 1...6 as ClosedRange<UInt64> {
            let x = Tensor(shape: [1, 3, 64, 64], floats: (0..<3 * 64 * 64).map { _ in rng.nextNormal() })
            let z = try head.run(x)
            var q = try quantizer.quantize(z)
            let expectedLogits = try tail.run(quantizer.dequantize(q)).floats!
            q.shape = Array(q.shape.dropFirst())  // "sh" is the shape without the batch dimension
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let frame = FrameMessage(
                cameraID: "parity", sequence: sequence, model: "tiny", payload: .bottleneck(q), deadline: now + 20_000, sentAt: now)
            try camera.send([[], try Message.frame(frame).encoded()])
            let reply = try camera.receive()
            guard case .result(let result) = try Message.decode(reply.last ?? []) else {
                Issue.record("frame \(sequence): expected a RESULT, got \(reply)")
                continue
            }
            #expect(result.sequence == sequence)
            // Top-5 of the in-process softmax, best first.
            let m = expectedLogits.max()!
            let e = expectedLogits.map { expf($0 - m) }
            let total = e.reduce(0, +)
            let probabilities = e.map { $0 / total }
            let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
            #expect(result.classIndices == Array(order.prefix(5)), "frame \(sequence)")
            for (i, k) in result.classIndices.enumerated() where i < result.scores.count {
                #expect(abs(result.scores[i] - probabilities[k]) <= 1e-4, "frame \(sequence) class \(k)")
            }
        }
    }
}
