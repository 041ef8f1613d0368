import BottleFitTestSupport
import BottleFitBroker
import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ

/// The real broker on its thread with real ZeroMQ sockets, and fake cameras and workers on the
/// test's thread. Serialized: each test has timing (heartbeats) that a parallel neighbour on a
/// 2-core machine could starve.
@Suite(.serialized, .blocking) struct BrokerEndToEndTests {
    let context: ZMQContext

    init() throws { context = try ZMQContext() }

    @Test func framesFlowFromCamerasToWorkersAndBack() throws {
        let (broker, endpoints) = try startBroker(context, transport: .loopbackTCP, policy: BrokerPolicy())
        defer { broker.stop(); broker.waitUntilStopped() }
        #expect(endpoints.frontend.hasPrefix("tcp://127.0.0.1:") && !endpoints.frontend.hasSuffix(":*"))
        let workers = try ["w1", "w2"].map { try FakeWorker(context, endpoint: endpoints.backend, name: $0, credit: 2) }
        let cameras = try ["cam-a", "cam-b", "cam-c"].map { try FakeCamera(context, endpoint: endpoints.frontend, name: $0) }
        let peers = workers.map { w in { try w.service() } } + cameras.map { c in { try c.service() } }
        try pump(peers) { broker.counters.workersJoined == 2 }
        for camera in cameras {
            for s in 0..<15 { try camera.sendFrame(UInt64(s)) }
        }
        let done = try pump(peers) { cameras.allSatisfy { $0.results.count == 15 } }
        #expect(done)
        for camera in cameras {
            #expect(camera.completed == Set(0..<15), "\(camera.name)")
            #expect(camera.results.allSatisfy { $0.cameraID == camera.name })
            #expect(camera.errors.isEmpty && camera.malformed == 0)
        }
        #expect(workers.allSatisfy { !$0.frames.isEmpty })
        try pump(peers) { broker.counters.completed == 45 }
        let c = broker.counters
        #expect(c.received == 45 && c.completed == 45 && c.dispatched == 45 && c.droppedTotal == 0 && c.isBalanced)
    }

    @Test func aWorkerThatStopsHeartbeatingHasItsFramesDispatchedAgain() throws {
        var policy = BrokerPolicy()
        policy.heartbeatInterval = .milliseconds(150)  // lost after 450 ms of silence
        let (broker, endpoints) = try startBroker(context, transport: .inproc, policy: policy)
        defer { broker.stop(); broker.waitUntilStopped() }
        let camera = try FakeCamera(context, endpoint: endpoints.frontend, name: "cam")
        let doomed = try FakeWorker(context, endpoint: endpoints.backend, name: "doomed", credit: 5)
        doomed.answers = false
        let first: [() throws -> Void] = [{ try camera.service() }, { try doomed.service() }]
        try pump(first) { broker.counters.workersJoined == 1 }
        for s in 0..<5 { try camera.sendFrame(UInt64(s)) }
        #expect(try pump(first) { doomed.frames.count == 5 })

        let healthy = try FakeWorker(context, endpoint: endpoints.backend, name: "healthy", credit: 1)
        let peers = first + [{ try healthy.service() }]
        try pump(peers) { broker.counters.workersJoined == 2 }
        for s in 5..<10 { try camera.sendFrame(UInt64(s)) }
        #expect(try pump(peers) { camera.results.count == 5 })
        // Mid-stream, the first worker's loop hangs: no answers, no heartbeats.
        doomed.heartbeats = false
        let done = try pump(peers) { camera.results.count == 10 }
        #expect(done)
        #expect(camera.completed == Set(0..<10) && camera.errors.isEmpty)
        #expect(camera.results.allSatisfy { $0.workerID == "healthy" })
        try pump(peers) { broker.counters.completed == 10 }
        let c = broker.counters
        #expect(c.workersLost == 1 && c.requeued == 5 && c.dispatched == 15)
        #expect(c.received == 10 && c.completed == 10 && c.droppedTotal == 0 && c.isBalanced)
    }

    @Test func garbageOnBothSocketsIsAnsweredOrCountedAndServiceGoesOn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bf-broker-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (broker, endpoints) = try startBroker(context, transport: .ipc(directory: directory), policy: BrokerPolicy())
        defer { broker.stop(); broker.waitUntilStopped() }
        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w", credit: 4)
        let good = try FakeCamera(context, endpoint: endpoints.frontend, name: "good")
        let bad = try FakeCamera(context, endpoint: endpoints.frontend, name: "bad")
        let rogue = try ZMQSocket(context, type: .dealer, linger: 0)
        try rogue.connect(endpoints.backend)
        var rogueReplies: [Message] = []
        let peers: [() throws -> Void] = [
            { try worker.service() }, { try good.service() }, { try bad.service() },
            { while let parts = try rogue.tryReceive() { if let m = try? Message.decode(parts.last ?? []) { rogueReplies.append(m) } } },
        ]
        try pump(peers) { broker.counters.workersJoined == 1 }

        // A camera sends every kind of garbage, interleaved with the good camera's frames.
        var expected: [ErrorCode] = []
        for (index, garbage) in Garbage.frontendBodies.enumerated() {
            try bad.send([[], garbage.body])
            expected.append(garbage.reply)
            try good.sendFrame(UInt64(index))
        }
        try bad.send([Array("no delimiter".utf8)])
        try bad.send([[], [0x80], [0x80]])
        expected += [.badRequest, .badRequest]
        for body in Garbage.frontendIgnored { try bad.send([[], body]) }

        // A rogue peer on the worker side: garbage, control before READY, wrong layouts, a stray answer.
        let stray = try ResultMessage(
            cameraID: "good", sequence: 999, classIndices: [1], scores: [1], queuedMilliseconds: 0,
            computeMilliseconds: 0, batchSize: 1, workerID: "rogue").encoded()
        try rogue.send([[], [0xc1, 0xc1]])
        try rogue.send([[], try HeartbeatMessage().encoded()])
        try rogue.send([[], MP.map([("v", .uint(2)), ("t", .str("ready"))]).bytes])
        try rogue.send([[], [1], [2]])
        try rogue.send([[], Array("rid".utf8), [], stray])

        let n = Garbage.frontendBodies.count
        // The counters are reported after the sends of a turn: wait for the snapshot too.
        let done = try pump(peers) {
            bad.errors.count == expected.count && good.results.count == n && rogueReplies.count == 3
                && broker.counters.discardedTotal >= 3 + 5
                && broker.counters.completed == n && broker.counters.received == n + expected.count
        }
        #expect(done)
        #expect(bad.errors.map(\.code) == expected)
        #expect(bad.results.isEmpty && bad.malformed == 0)
        #expect(good.completed == Set(0..<UInt64(n)) && good.errors.isEmpty)
        #expect(rogueReplies.map(\.type) == [.error, .disconnect, .error])
        if case .error(let e) = rogueReplies.last { #expect(e.code == .unsupportedVersion) }

        let c = broker.counters
        #expect(c.received == n + expected.count && c.completed == n && c.droppedTotal == expected.count && c.isBalanced)
        #expect(c.discarded(.errorMessage) == 2 && c.discarded(.unsupportedVersion) == 2)
        #expect(c.discarded(.unknownWorker) == 1 && c.discarded(.badWorkerMessage) == 2 && c.discarded(.lateAnswer) == 1)
        #expect(c.workersLost == 0)
    }

    @Test func anOversizedMessageIsDiscardedWhole() throws {
        let (broker, endpoints) = try startBroker(context, transport: .inproc, policy: BrokerPolicy())
        defer { broker.stop(); broker.waitUntilStopped() }
        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w", credit: 1)
        let camera = try FakeCamera(context, endpoint: endpoints.frontend, name: "cam")
        let peers: [() throws -> Void] = [{ try worker.service() }, { try camera.service() }]
        try pump(peers) { broker.counters.workersJoined == 1 }
        try camera.send([[], [UInt8](repeating: 0x80, count: (4 << 20) + (128 << 10))])
        try camera.sendFrame(1)
        #expect(try pump(peers) { camera.results.count == 1 })
        #expect(try pump(peers) { broker.counters.discarded(.oversized) == 1 })
    }

    @Test func statsArriveOnASubscriber() throws {
        var policy = BrokerPolicy()
        policy.statsInterval = .milliseconds(50)
        let (broker, endpoints) = try startBroker(context, transport: .inproc, policy: policy)
        defer { broker.stop(); broker.waitUntilStopped() }
        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w1", credit: 7)
        let subscriber = try ZMQSocket(context, type: .sub, linger: 0)
        try subscriber.setOption(.subscribe, Array("stats".utf8))
        try subscriber.setOption(.receiveTimeout, 2000)
        try subscriber.connect(endpoints.stats)
        try pump([{ try worker.service() }]) { broker.counters.workersJoined == 1 }
        var received: [StatsMessage] = []
        let started = ContinuousClock.now
        while received.count < 4 && ContinuousClock.now - started < .seconds(5) {
            try worker.service()
            let parts = try subscriber.receive()
            #expect(parts.count == 2 && parts.first == Array("stats".utf8))
            received.append(try StatsMessage.decode(parts[1]))
        }
        #expect(received.count == 4)
        #expect(received.last?.workers == [StatsMessage.Worker(id: "w1", credit: 7, inFlight: 0)])
        #expect(zip(received, received.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        #expect(received.allSatisfy { $0.queueDepth == 0 && $0.arrivalRate == 0 })
        // The loop reports its counters after sending, so the snapshot may lag a message behind.
        #expect(try pump([]) { broker.latestStats != nil && broker.counters.statsPublished >= 4 })
    }

    @Test func stopIsPromptAndHandsBackWhatTheBrokerHolds() throws {
        let broker = Broker(configuration: TestTransport.inproc.configuration(policy: BrokerPolicy()), context: context, logger: quietLogger)
        let endpoints = try broker.start()
        #expect(throws: BrokerError.alreadyStarted) { try broker.start() }
        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w", credit: 1)
        let camera = try FakeCamera(context, endpoint: endpoints.frontend, name: "cam")
        let peers: [() throws -> Void] = [{ try worker.service() }, { try camera.service() }]
        worker.answers = false
        try pump(peers) { broker.counters.workersJoined == 1 }
        for s in 0..<3 { try camera.sendFrame(UInt64(s)) }
        #expect(try pump(peers) { broker.counters.queued == 2 && broker.counters.inFlight == 1 })

        let asked = ContinuousClock.now
        broker.stop()
        broker.waitUntilStopped()
        let took = ContinuousClock.now - asked
        // About one poll timeout (20 ms) in practice; the bound leaves room for a loaded machine.
        #expect(took < .milliseconds(500), "stop took \(took)")

        #expect(try pump(peers) { camera.errors.count == 3 && !camera.others.isEmpty && worker.controls.contains { $0.type == .disconnect } })
        #expect(camera.errors.allSatisfy { $0.code == .busy && $0.retryAfterMilliseconds != nil })
        #expect(camera.others.map(\.type) == [.disconnect])
        let c = broker.counters
        #expect(c.dropped(.shutdown) == 3 && c.received == c.completed + c.droppedTotal && c.isBalanced)
    }

    @Test func startReportsWhatPreventsServing() throws {
        var bad = TestTransport.inproc.configuration(policy: BrokerPolicy())
        bad.policy.queueCapacity = 0
        let invalid = Broker(configuration: bad, context: context, logger: quietLogger)
        #expect(throws: BrokerError.self) { try invalid.start() }

        let configuration = TestTransport.inproc.configuration(policy: BrokerPolicy())
        let first = Broker(configuration: configuration, context: context, logger: quietLogger)
        try first.start()
        defer { first.stop(); first.waitUntilStopped() }
        // The same endpoints again: the bind fails and start says so instead of serving nothing.
        let second = Broker(configuration: configuration, context: context, logger: quietLogger)
        let error = #expect(throws: BrokerError.self) { try second.start() }
        if case .socket(let zmq)? = error { #expect(zmq.errno == EADDRINUSE) } else { Issue.record("\(String(describing: error))") }
        second.waitUntilStopped()
    }
}
