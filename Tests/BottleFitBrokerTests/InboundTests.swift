import BottleFitTestSupport
import BottleFitBroker
import BottleFitCore
import BottleFitProtocol
import Testing

/// Reading untrusted multipart messages from both ROUTERs, without sockets.
@Suite struct InboundTests {
    static let camera: [UInt8] = [0, 1, 2, 3]
    static let worker: [UInt8] = [0, 9, 9, 9]

    @Test func garbageFromACameraIsAnsweredAndCounted() throws {
        var h = SchedulerHarness()
        let cases = Garbage.frontendBodies
        for (name, body, code) in cases {
            let input = FrontendInput.classify([Self.camera, [], body])
            guard case .rejected(let camera, let error, _) = input else {
                Issue.record("\(name): \(input)")
                continue
            }
            #expect(camera == Self.camera, "\(name)")
            #expect(error.code == code, "\(name): \(error.text)")
            #expect(throws: Never.self, "\(name)") { _ = try error.encoded() }
            let actions = h.run { s, t in s.handle(input, now: t) }
            #expect(actions == [.reply(camera: Self.camera, message: .error(error))], "\(name)")
        }
        #expect(h.counters.received == cases.count && h.counters.droppedTotal == cases.count)
        #expect(h.counters.dropped(.tooLarge) == 3 && h.counters.dropped(.unsupportedVersion) == 2)
    }

    @Test func repliesNameTheFrameWhenItCanBeRead() {
        let body = MP.map(Garbage.frameFields(camera: "cam-9", sequence: 77, version: 2)).bytes
        guard case .rejected(_, let error, let reason) = FrontendInput.classify([Self.camera, [], body]) else {
            Issue.record("not rejected")
            return
        }
        #expect(error.code == .unsupportedVersion && reason == .unsupportedVersion)
        #expect(error.cameraID == "cam-9" && error.sequence == 77)
    }

    @Test func wrongFrameCountsFromACameraAreBadRequests() throws {
        let frame = try SchedulerHarness.frameMessage("cam-1", 3, model: "m", deadline: 1).encoded()
        let layouts: [[[UInt8]]] = [
            [Self.camera, frame],                  // no delimiter
            [Self.camera, [], frame, frame],       // one frame too many
            [Self.camera, [1], frame],             // a delimiter that is not empty
            [Self.camera],                         // nothing at all
        ]
        for layout in layouts {
            guard case .rejected(_, let error, .badRequest) = FrontendInput.classify(layout) else {
                Issue.record("\(layout.count) frames not rejected")
                continue
            }
            #expect(error.code == .badRequest)
            if layout.count > 1 && layout.last == frame { #expect(error.sequence == 3 && error.cameraID == "cam-1") }
        }
    }

    @Test func errorsAndForeignNonRequestsAreNeverAnswered() {
        var h = SchedulerHarness()
        for body in Garbage.frontendIgnored {
            let input = FrontendInput.classify([Self.camera, [], body])
            guard case .ignored = input else {
                Issue.record("answered: \(input)")
                continue
            }
            let actions = h.run { s, t in s.handle(input, now: t) }
            #expect(actions.errors.isEmpty)
        }
        #expect(h.counters.received == 0 && h.counters.discardedTotal == 3)
    }

    @Test func randomMessagesFromACameraNeverCrash() {
        var h = SchedulerHarness()
        var rng = SeededGenerator(seed: 0xBAD)
        for _ in 0..<3000 {
            let parts = Int(rng.next() % 5)
            var frames: [[UInt8]] = [Self.camera]
            for _ in 0..<parts {
                let n = Int(rng.next() % 40)
                var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 2 == 0, !bytes.isEmpty { bytes[0] = 0x80 | UInt8(rng.next() % 16) }
                frames.append(rng.next() % 3 == 0 ? [] : bytes)
            }
            h.run { s, t in s.handle(FrontendInput.classify(frames), now: t) }
        }
        #expect(h.counters.received + h.counters.discardedTotal == 3000)
    }

    @Test func workerMessagesAreClassifiedByLayout() throws {
        let ready = try ReadyMessage(workerID: "w", models: ["m"], credit: 2).encoded()
        #expect(BackendInput.classify([Self.worker, [], ready]) == .ready(worker: Self.worker, ReadyMessage(workerID: "w", models: ["m"], credit: 2)))
        #expect(BackendInput.classify([Self.worker, [], try CreditMessage(credits: 3).encoded()]) == .credit(worker: Self.worker, 3))
        let result = try ResultMessage(
            cameraID: "cam", sequence: 4, classIndices: [1], scores: [0.5], queuedMilliseconds: 1,
            computeMilliseconds: 1, batchSize: 1, workerID: "w").encoded()
        #expect(BackendInput.classify([Self.worker, [], Self.camera, [], result]) == .answer(
            worker: Self.worker, WorkerAnswer(frame: FrameKey(cameraRoutingID: Self.camera, cameraID: "cam", sequence: 4), body: result, batchSize: 1)))
        let error = try ErrorMessage(sequence: 4, cameraID: "cam", code: .expired, text: "late").encoded()
        #expect(BackendInput.classify([Self.worker, [], Self.camera, [], error]) == .answer(
            worker: Self.worker, WorkerAnswer(frame: FrameKey(cameraRoutingID: Self.camera, cameraID: "cam", sequence: 4), body: error, errorCode: .expired)))
    }

    /// A RESULT that names its frame but does not decode answers that frame's camera with
    /// INTERNAL at once (the camera computes it locally) instead of leaving it to WORKER_LOST.
    @Test func aMalformedResultNamingItsFrameAnswersTheCameraAtOnce() throws {
        let broken = MP.map([("v", .uint(1)), ("t", .str("result")), ("s", .uint(4)), ("c", .str("cam")), ("k", .str("not a list"))]).bytes
        let input = BackendInput.classify([Self.worker, [], Self.camera, [], broken])
        guard case .answer(let worker, let answer) = input else {
            Issue.record("not answered: \(input)")
            return
        }
        #expect(worker == Self.worker && answer.errorCode == .internal)
        #expect(answer.frame == FrameKey(cameraRoutingID: Self.camera, cameraID: "cam", sequence: 4))
        guard case .error(let e) = try Message.decode(answer.body) else {
            Issue.record("the camera would not get an ERROR")
            return
        }
        #expect(e.code == .internal && e.sequence == 4 && e.cameraID == "cam" && !e.text.isEmpty, "\(e)")
    }

    @Test func garbageFromAWorkerIsCountedAndAnsweredWhenItDeservesIt() throws {
        let result = try ResultMessage(
            cameraID: "cam", sequence: 4, classIndices: [1], scores: [0.5], queuedMilliseconds: 1,
            computeMilliseconds: 1, batchSize: 1, workerID: "w").encoded()
        let frame = try SchedulerHarness.frameMessage("cam", 1, model: "m", deadline: 1).encoded()
        let cases: [(String, [[UInt8]], ErrorCode?, DiscardReason)] = [
            ("random bytes on control", [Self.worker, [], [0xc1, 7, 7]], .badRequest, .badWorkerMessage),
            ("truncated READY", [Self.worker, [], Array(try ReadyMessage(workerID: "w", models: ["m"], credit: 1).encoded().dropLast())], .badRequest, .badWorkerMessage),
            ("credit of the wrong type", [Self.worker, [], MP.map([("v", .uint(1)), ("t", .str("credit")), ("n", .str("lots"))]).bytes], .badRequest, .badWorkerMessage),
            ("credit of zero", [Self.worker, [], MP.map([("v", .uint(1)), ("t", .str("credit")), ("n", .uint(0))]).bytes], .badRequest, .badWorkerMessage),
            ("version 2 READY", [Self.worker, [], MP.map([("v", .uint(2)), ("t", .str("ready"))]).bytes], .unsupportedVersion, .unsupportedVersion),
            ("version 2 HEARTBEAT", [Self.worker, [], MP.map([("v", .uint(2)), ("t", .str("heartbeat"))]).bytes], nil, .unsupportedVersion),
            ("a FRAME on control", [Self.worker, [], frame], .badRequest, .badWorkerMessage),
            ("a RESULT on control", [Self.worker, [], result], .badRequest, .badWorkerMessage),
            ("a FRAME as an answer", [Self.worker, [], Self.camera, [], frame], .badRequest, .badWorkerMessage),
            ("an undecodable answer", [Self.worker, [], Self.camera, [], [0x81, 0xa1]], .badRequest, .badWorkerMessage),
            ("an ERROR answer without c and s", [Self.worker, [], Self.camera, [], try ErrorMessage(sequence: nil, cameraID: nil, code: .internal, text: "").encoded()], nil, .badWorkerMessage),
            ("an ERROR on control", [Self.worker, [], try ErrorMessage(sequence: nil, cameraID: nil, code: .internal, text: "").encoded()], nil, .errorMessage),
            ("two frames", [Self.worker, result], nil, .badWorkerMessage),
            ("four frames", [Self.worker, [], Self.camera, result], nil, .badWorkerMessage),
            ("six frames", [Self.worker, [], Self.camera, [], result, result], nil, .badWorkerMessage),
            ("a camera id of 256 bytes", [Self.worker, [], [UInt8](repeating: 1, count: 256), [], result], nil, .badWorkerMessage),
        ]
        var h = SchedulerHarness()
        for (name, frames, code, reason) in cases {
            let input = BackendInput.classify(frames)
            guard case .rejected(let worker, let reply, let why, _) = input else {
                Issue.record("\(name): \(input)")
                continue
            }
            #expect(worker == Self.worker, "\(name)")
            #expect(reply?.code == code, "\(name): \(reply?.text ?? "no reply")")
            #expect(why == reason, "\(name)")
            let actions = h.run { s, t in s.handle(input, now: t) }
            #expect(actions.controls.count == (code == nil ? 0 : 1), "\(name)")
        }
        #expect(h.counters.discardedTotal == cases.count && h.counters.received == 0)
    }

    @Test func randomMessagesFromAWorkerNeverCrash() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        var rng = SeededGenerator(seed: 0xFEED)
        for _ in 0..<3000 {
            let parts = Int(rng.next() % 6)
            var frames: [[UInt8]] = [SchedulerHarness.workerRID("x")]
            for _ in 0..<parts {
                let n = Int(rng.next() % 40)
                var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 2 == 0, !bytes.isEmpty { bytes[0] = 0x80 | UInt8(rng.next() % 16) }
                frames.append(rng.next() % 2 == 0 ? [] : bytes)
            }
            h.run { s, t in s.handle(BackendInput.classify(frames), now: t) }
        }
        #expect(h.scheduler.workerCount == 1)
    }
}
