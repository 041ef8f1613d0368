import BottleFitCore
import BottleFitImaging
import BottleFitMetrics
import BottleFitProtocol
import BottleFitWorker
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport

/// The worker against a fake broker (a ROUTER on `inproc://`), with a real split model.
/// Serialized: each test runs a worker thread and the machine has two cores.
@Suite(.serialized, .blocking)
struct TailWorkerTests {
    let models = WorkerTestModels.shared

    func configuration(
        _ broker: FakeBroker, credit: Int = 16, maxBatch: Int = 4, topK: Int = 3,
        heartbeat: Duration = .seconds(1), reconnectDelay: Duration = .seconds(1)
    ) -> WorkerConfiguration {
        WorkerConfiguration(
            endpoint: broker.endpoint, workerID: "worker-1",
            models: [WorkerTestModels.modelName: WorkerModelFiles(tail: models.tailURL, full: models.fullURL)],
            credit: credit, maxBatch: maxBatch, topK: topK,
            heartbeatInterval: heartbeat, reconnectDelay: reconnectDelay, pollTimeout: .milliseconds(20))
    }

    /// Starts a worker and returns it with its READY, as the broker saw it.
    func start(_ configuration: WorkerConfiguration, _ broker: FakeBroker) throws -> (TailWorker, [UInt8], ReadyMessage) {
        let worker = TailWorker(configuration: configuration, context: broker.context, logger: quietLogger)
        try worker.start()
        let ready = try #require(try broker.expectReady())
        return (worker, ready.worker, ready.ready)
    }

    @Test func readyThenResultsMatchHeadPlusTailAndCreditComesBack() throws {
        let broker = try FakeBroker()
        let (worker, rid, ready) = try start(configuration(broker, credit: 5), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        #expect(ready == ReadyMessage(workerID: "worker-1", models: [WorkerTestModels.modelName], credit: 5))

        var references: [UInt64: [Float]] = [:]
        for s in UInt64(0)..<3 {
            let q = try models.bottleneck(seed: 100 + s)
            #expect(q.shape == models.bottleneckShape)
            references[s] = try models.referenceProbabilities(q)
            try broker.send(bottleneckFrame(camera: "cam-\(s)", sequence: s, q), to: rid, camera: [0x41, UInt8(s)])
        }
        let answers = try broker.collectAnswers(3, from: rid)
        #expect(answers.count == 3)
        for (camera, message) in answers {
            guard case .result(let r) = message else { Issue.record("expected RESULT, got \(message)"); continue }
            // The camera's routing id comes back byte for byte, with its camera id and sequence.
            #expect(camera == [0x41, UInt8(r.sequence)])
            #expect(r.cameraID == "cam-\(r.sequence)")
            #expect(r.workerID == "worker-1")
            #expect((1...4).contains(r.batchSize))
            #expect(r.queuedMilliseconds >= 0 && r.computeMilliseconds > 0)
            expectTopK(r.classIndices, r.scores, matches: try #require(references[r.sequence]), k: 3)
        }
        // Credit returns as the frames are answered: all three slots within a bounded wait.
        let clock = ContinuousClock()
        let until = clock.now + .seconds(5)
        while broker.credits(from: rid) < 3 && clock.now < until { try broker.listen(for: .milliseconds(50)) }
        #expect(broker.credits(from: rid) == 3)
        #expect(broker.malformed == 0)
        let c = settled(worker) { $0.completed == 3 }
        #expect(c.received == 3 && c.completed == 3 && c.errorsSent == 0)
        // The same counters as /metrics serves them: parseable, labelled, histograms consistent.
        let families = try ExpositionParser.parse(PrometheusText.render(c.metricFamilies(workerID: "worker-1")))
        func value(_ name: String, _ labels: [String: String] = ["worker": "worker-1"]) -> Double? {
            families.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
        }
        #expect(value("bottlefit_worker_frames_completed_total") == 3)
        #expect(value("bottlefit_worker_frames_errored_total", ["worker": "worker-1", "code": "EXPIRED"]) == 0)
        #expect(value("bottlefit_worker_frame_wait_seconds_count") == 3)
        #expect(value("bottlefit_worker_batch_compute_seconds_count") == Double(c.batches))
        #expect(value("bottlefit_worker_batch_size_sum") == 3)
    }

    @Test func framesSentTogetherAreBatched() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker, credit: 16, maxBatch: 4), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        var references: [UInt64: [Float]] = [:]
        var frames: [FrameMessage] = []
        for s in UInt64(0)..<8 {
            let q = try models.bottleneck(seed: 200 + s)
            references[s] = try models.referenceProbabilities(q)
            frames.append(bottleneckFrame(sequence: s, q))
        }
        // Encoded first, then sent back to back, so they wait together at the worker.
        for f in frames { try broker.send(f, to: rid, camera: [7]) }
        let answers = try broker.collectAnswers(8, from: rid)
        #expect(answers.count == 8)
        var sizes: [Int] = []
        for (_, message) in answers {
            guard case .result(let r) = message else { Issue.record("expected RESULT, got \(message)"); continue }
            sizes.append(r.batchSize)
            expectTopK(r.classIndices, r.scores, matches: try #require(references[r.sequence]), k: 3)
        }
        #expect(sizes.allSatisfy { $0 <= 4 })
        #expect(sizes.contains { $0 > 1 }, "batch sizes \(sizes)")
        let c = settled(worker) { $0.completed == 8 }
        #expect(c.batches < 8 && c.meanBatchSize > 1 && c.framesComputed == 8)
    }

    @Test func badFramesGetErrorsAndTheWorkerKeepsServing() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        let q = try models.bottleneck(seed: 300)
        var wrongShape = q
        wrongShape.shape = [q.shape[0], q.shape[1] * q.shape[2]]  // same bytes, another shape
        try broker.send(bottleneckFrame(sequence: 1, wrongShape), to: rid, camera: [1])
        try broker.send(bottleneckFrame(sequence: 2, model: "no-such-model", q), to: rid, camera: [2])
        let now = nowMilliseconds()
        let corrupt: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array(repeating: 0x5A, count: 200)
        try broker.send(FrameMessage(cameraID: "cam-1", sequence: 3, model: WorkerTestModels.modelName,
                                     payload: .jpeg(corrupt), deadline: now + 60_000, sentAt: now), to: rid, camera: [3])
        try broker.sendWork(try Message.heartbeat(HeartbeatMessage()).encoded(), to: rid, camera: [4])
        try broker.sendWork([0xC1, 0x00], to: rid, camera: [5])
        // {"v": 2, "t": "frame", "s": 8, "c": "cam"}: a version this worker does not speak.
        let v2: [UInt8] = [0x84, 0xA1, 0x76, 0x02, 0xA1, 0x74, 0xA5] + Array("frame".utf8)
            + [0xA1, 0x73, 0x08, 0xA1, 0x63, 0xA3] + Array("cam".utf8)
        try broker.sendWork(v2, to: rid, camera: [8])
        // Then good work, of both kinds: the worker is still serving.
        try broker.send(bottleneckFrame(sequence: 6, q), to: rid, camera: [6])
        let jpeg = try models.jpeg(seed: 7)
        try broker.send(FrameMessage(cameraID: "cam-1", sequence: 7, model: WorkerTestModels.modelName,
                                     payload: .jpeg(jpeg), deadline: now + 60_000, sentAt: now), to: rid, camera: [7])

        let answers = try broker.collectAnswers(8, from: rid)
        #expect(answers.count == 8)
        var byCamera: [UInt8: Message] = [:]
        for (camera, message) in answers { byCamera[camera[0]] = message }
        func code(_ camera: UInt8) -> String? {
            if case .error(let e)? = byCamera[camera] { return e.code.rawValue }
            return nil
        }
        #expect(code(1) == "BAD_REQUEST")
        #expect(code(2) == "UNKNOWN_MODEL")
        #expect(code(3) == "BAD_REQUEST")
        #expect(code(4) == "BAD_REQUEST")
        #expect(code(5) == "BAD_REQUEST")
        #expect(code(8) == "UNSUPPORTED_VERSION")
        if case .error(let e)? = byCamera[1] { #expect(e.sequence == 1 && e.cameraID == "cam-1") }
        if case .error(let e)? = byCamera[8] { #expect(e.sequence == 8 && e.cameraID == "cam") }
        guard case .result(let r6)? = byCamera[6] else { Issue.record("no RESULT for the good bottleneck"); return }
        expectTopK(r6.classIndices, r6.scores, matches: try models.referenceProbabilities(q), k: 3)
        guard case .result(let r7)? = byCamera[7] else { Issue.record("no RESULT for the good JPEG: \(String(describing: byCamera[7]))"); return }
        let preprocessor = try ImagePreprocessor(channels: 3, height: models.imageSize, width: models.imageSize)
        let image = preprocessor.tensor(try JPEGCodec.decode(jpeg, channels: 3))
        expectTopK(r7.classIndices, r7.scores, matches: try models.referenceProbabilities(image: image), k: 3)
        let c = settled(worker) { $0.completed == 2 }
        #expect(c.errors[.badRequest] == 4 && c.errors[.unknownModel] == 1 && c.completed == 2 && c.received == 8)
    }

    @Test func expiredFrameIsAnsweredWithoutComputing() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        let q = try models.bottleneck(seed: 400)
        try broker.send(bottleneckFrame(sequence: 9, q, deadline: nowMilliseconds() - 1000), to: rid, camera: [9])
        let answers = try broker.collectAnswers(1, from: rid)
        guard case .error(let e)? = answers.first?.message else { Issue.record("expected ERROR, got \(answers)"); return }
        #expect(e.code == .expired && e.sequence == 9)
        let c = settled(worker) { $0.expired == 1 }
        #expect(c.expired == 1 && c.batches == 0 && c.completed == 0)
    }

    @Test func heartbeatsFlowWhenIdle() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker, heartbeat: .milliseconds(100)), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        // The broker heartbeats too, so the worker never finds it silent.
        try broker.listen(for: .milliseconds(800), heartbeating: rid)
        #expect(broker.count(.heartbeat, from: rid) >= 4)
        #expect(broker.count(.ready, from: rid) == 1)
        #expect(worker.counters.reconnects == 0)
    }

    @Test func silentBrokerMeansReconnectWithNewReady() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker, heartbeat: .milliseconds(100), reconnectDelay: .milliseconds(50)), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        // Say nothing: after 3 x 100 ms the worker gives up on this connection.
        let again = try #require(try broker.expectReady(timeout: .seconds(5)))
        #expect(again.worker != rid, "a reconnect is a new socket, so a new routing id")
        #expect(again.ready.credit == 16)
        #expect(settled(worker) { $0.reconnects >= 1 }.reconnects >= 1)
        // And the new connection serves.
        let q = try models.bottleneck(seed: 500)
        try broker.send(bottleneckFrame(sequence: 1, q), to: again.worker, camera: [1])
        let answers = try broker.collectAnswers(1, from: again.worker)
        guard case .result? = answers.first?.message else { Issue.record("expected RESULT, got \(answers)"); return }
    }

    @Test func brokerDisconnectMeansReconnectWithNewReady() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker, reconnectDelay: .milliseconds(50)), broker)
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        // What the broker says to a worker connection it does not know (protocol.md section 7).
        try broker.sendControl(.disconnect(DisconnectMessage(reason: "unknown worker")), to: rid)
        let again = try #require(try broker.expectReady(timeout: .seconds(5)))
        #expect(again.worker != rid)
    }

    @Test func stopAnswersFramesInHandThenDisconnects() throws {
        let broker = try FakeBroker()
        let (worker, rid, _) = try start(configuration(broker, maxBatch: 1), broker)
        for s in UInt64(0)..<6 {
            try broker.send(bottleneckFrame(sequence: s, try models.bottleneck(seed: 600 + s)), to: rid, camera: [UInt8(s)])
        }
        // Stop as soon as the worker holds all six (one batch of one computes per turn).
        let clock = ContinuousClock()
        let until = clock.now + .seconds(10)
        while worker.counters.received < 6 && clock.now < until { sleepBriefly() }
        worker.stop()
        let answers = try broker.collectAnswers(6, from: rid, timeout: .seconds(30))
        #expect(answers.count == 6)
        #expect(answers.allSatisfy { if case .result = $0.message { true } else { false } })
        try broker.listen(for: .milliseconds(300))
        #expect(broker.count(.disconnect, from: rid) == 1)
        // DISCONNECT is the last thing the worker says.
        #expect(broker.controls.last.map { $0.message.type } == .disconnect)
        #expect(worker.waitUntilStopped(timeout: .seconds(10)))
        let c = worker.counters  // final: the loop has exited
        #expect(c.received == 6 && c.completed == 6 && c.abandoned == 0)
    }

    @Test func workerStartedBeforeItsBrokerSendsReadyOnceItIsUp() throws {
        let broker = try FakeBroker(bindNow: false)
        let worker = TailWorker(configuration: configuration(broker), context: broker.context, logger: quietLogger)
        try worker.start()
        defer { worker.stop(); worker.waitUntilStopped(timeout: .seconds(20)) }
        sleepBriefly()
        try broker.bind()
        let ready = try #require(try broker.expectReady(timeout: .seconds(5)))
        #expect(ready.ready.workerID == "worker-1")
        #expect(settled(worker) { $0.readySent == 1 }.reconnects == 0)
    }

    @Test func invalidConfigurationAndMissingModelFailAtStart() throws {
        let broker = try FakeBroker()
        var bad = configuration(broker)
        bad.credit = 0
        bad.models = [:]
        #expect(throws: WorkerError.self) { try TailWorker(configuration: bad, context: broker.context, logger: quietLogger).start() }
        var missing = configuration(broker)
        missing.models = ["m": WorkerModelFiles(tail: models.directory.appendingPathComponent("absent.onnx"))]
        #expect(throws: WorkerError.self) { try TailWorker(configuration: missing, context: broker.context, logger: quietLogger).start() }
    }
}

/// The worker's counters once `condition` holds (or after 5 s): the loop reports them at the end
/// of its turn, just after the answers of that turn have left.
func settled(_ worker: TailWorker, _ condition: (WorkerCounters) -> Bool) -> WorkerCounters {
    let clock = ContinuousClock()
    let until = clock.now + .seconds(5)
    while !condition(worker.counters) && clock.now < until { sleepBriefly() }
    return worker.counters
}

/// Tests check behaviour through messages and counters, not log lines.
let quietLogger = Logger(label: "bottlefit.worker.test") { _ in SwiftLogNoOpLogHandler() }

/// 10 ms, for bounded polling of counters.
func sleepBriefly() { usleep(10_000) }
