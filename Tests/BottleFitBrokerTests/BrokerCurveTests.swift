import BottleFitBroker
import BottleFitCore
import BottleFitMetrics
import BottleFitProtocol
import BottleFitSecurity
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// CURVE on the broker's three sockets with real sockets on loopback TCP (docs/security.md):
/// listed peers are served, anyone else gets nothing through and learns nothing, and what
/// crosses the wire is not the payload in clear. Every wait is on an event, with generous bounds.
@Suite(.enabled(if: ZMQContext.has("curve")), .blocking)
struct BrokerCurveTests {
    func startCurveBroker(_ context: ZMQContext, _ keys: TestFleetKeys) throws -> (Broker, BrokerEndpoints) {
        var configuration = TestTransport.loopbackTCP.configuration(policy: BrokerPolicy())
        configuration.curve = keys.brokerCurve
        let broker = Broker(configuration: configuration, context: context, logger: quietLogger)
        return (broker, try broker.start())
    }

    @Test func listedPeersAreServedAndStrangersGetNothingThroughAndLearnNothing() throws {
        let keys = try TestFleetKeys()
        defer { keys.remove() }
        let context = try ZMQContext()
        let (broker, endpoints) = try startCurveBroker(context, keys)
        defer { broker.stop(); broker.waitUntilStopped() }

        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w1", credit: 4, curve: keys.client(keys.worker))
        let camera = try FakeCamera(context, endpoint: endpoints.frontend, name: "cam", curve: keys.client(keys.camera))
        // The worker's READY first (through its CURVE handshake): a frame before it is UNKNOWN_MODEL.
        #expect(try pump([worker.service, camera.service], timeout: .seconds(60)) { broker.counters.workersJoined == 1 })
        try camera.sendFrame(1)
        let first = try pump([worker.service, camera.service], timeout: .seconds(60)) { camera.completed.contains(1) }
        #expect(first, "counters \(broker.counters), auth \(String(describing: broker.authCounters)), errors \(camera.errors)")

        // A camera without a key, and one with a key on no list (it knows the broker's public key),
        // watched from before they connect.
        let plainSocket = try ZMQSocket(context, type: .dealer, linger: 0)
        let plainWatch = try SocketWatch(plainSocket, context: context)
        let plain = try FakeCamera(socket: plainSocket, endpoint: endpoints.frontend, name: "plain")
        let strangerSocket = try ZMQSocket(context, type: .dealer, linger: 0)
        try keys.client(keys.stranger).apply(to: strangerSocket)
        let strangerWatch = try SocketWatch(strangerSocket, context: context)
        let stranger = try FakeCamera(socket: strangerSocket, endpoint: endpoints.frontend, name: "stranger")
        // A camera's key posing as a worker on the backend.
        let poser = try FakeWorker(context, endpoint: endpoints.backend, name: "poser", credit: 100, curve: keys.client(keys.camera))
        // STATS: the listed subscriber and a stranger.
        let subscriber = try ZMQSocket(context, type: .sub, linger: 0)
        try keys.client(keys.subscriber).apply(to: subscriber)
        try subscriber.setOption(.subscribe, Array("stats".utf8))
        try subscriber.connect(endpoints.stats)
        let statsStranger = try ZMQSocket(context, type: .sub, linger: 0)
        try keys.client(keys.stranger).apply(to: statsStranger)
        try statsStranger.setOption(.subscribe, [])
        try statsStranger.connect(endpoints.stats)
        let plainStats = try ZMQSocket(context, type: .sub, linger: 0)
        try plainStats.setOption(.subscribe, [])
        try plainStats.connect(endpoints.stats)

        for sequence: UInt64 in 1...3 {
            try plain.sendFrame(sequence)
            try stranger.sendFrame(sequence)
            try plain.send([[], HeartbeatMessage().encoded()])
            try stranger.send([[], HeartbeatMessage().encoded()])
        }
        // Each refusal is an event: the client's monitor sees its handshake fail, the broker counts it.
        let refused = try pump([worker.service, camera.service, poser.service, plainWatch.service, strangerWatch.service], timeout: .seconds(60)) {
            let c = broker.authCounters
            return plainWatch.saw([.handshakeFailed, .disconnected]) && strangerWatch.saw(.handshakeFailedAuth)
                && (c?.refused("frontend", .unknownKey) ?? 0) >= 1 && (c?.refused("backend", .unknownKey) ?? 0) >= 1
                && (c?.refused("stats", .unknownKey) ?? 0) >= 1
        }
        #expect(refused, "refusals seen: \(String(describing: broker.authCounters)); plain \(plainWatch.seen), stranger \(strangerWatch.seen)")
        #expect(!plainWatch.saw(.handshakeSucceeded))
        #expect(!strangerWatch.saw(.handshakeSucceeded))
        #expect(strangerWatch.seen.first { $0.event == .handshakeFailedAuth }?.value == 400)

        // The listed peers go on: more frames complete (the poser, with credit 100, got none of
        // them), and the listed subscriber receives STATS.
        var statsSeen = 0
        func readStats() throws { while try subscriber.tryReceive() != nil { statsSeen += 1 } }
        for sequence: UInt64 in 2...4 { try camera.sendFrame(sequence) }
        #expect(try pump([worker.service, camera.service, poser.service, readStats], timeout: .seconds(60)) {
            camera.completed.isSuperset(of: [2, 3, 4]) && statsSeen >= 3
        })
        try plain.service()
        try stranger.service()
        #expect(plain.results.isEmpty && plain.errors.isEmpty && plain.others.isEmpty && plain.malformed == 0)
        #expect(stranger.results.isEmpty && stranger.errors.isEmpty && stranger.others.isEmpty && stranger.malformed == 0)
        #expect(poser.frames.isEmpty)
        #expect(try statsStranger.tryReceive() == nil)
        #expect(try plainStats.tryReceive() == nil)
        // Only the listed camera's frames reached the scheduler.
        let counters = broker.counters
        #expect(counters.received == 4)
        #expect(counters.workersJoined == 1)

        // Counted on /metrics, by socket and reason.
        let text = PrometheusText.render(broker.metricFamilies())
        let families = try ExpositionParser.parse(text)
        let refusedFamily = try #require(families.first { $0.name == "bottlefit_broker_auth_refused_total" })
        let frontendUnknown = refusedFamily.samples.first { $0.labels == ["socket": "frontend", "reason": "unknown_key"] }
        #expect((frontendUnknown?.value ?? 0) >= 1)
        let accepted = try #require(families.first { $0.name == "bottlefit_broker_auth_accepted_total" })
        #expect(accepted.samples.first { $0.labels == ["socket": "backend"] }?.value == 1)
    }

    /// The bytes between a camera and the broker, captured by a relay on loopback, hold the
    /// payload in clear without CURVE and never with it (so the test can fail).
    @Test(arguments: [true, false]) func capturedBytesNeverHoldThePayloadInClear(curve: Bool) throws {
        let keys = try TestFleetKeys()
        defer { keys.remove() }
        let context = try ZMQContext()
        var configuration = TestTransport.loopbackTCP.configuration(policy: BrokerPolicy())
        if curve { configuration.curve = keys.brokerCurve }
        let broker = Broker(configuration: configuration, context: context, logger: quietLogger)
        let endpoints = try broker.start()
        defer { broker.stop(); broker.waitUntilStopped() }
        let relay = try CapturingRelay(context: context, server: endpoints.frontend)
        defer { relay.stop() }

        let worker = try FakeWorker(context, endpoint: endpoints.backend, name: "w1", credit: 4, curve: curve ? keys.client(keys.worker) : nil)
        let camera = try FakeCamera(context, endpoint: relay.endpoint, name: "cam", curve: curve ? keys.client(keys.camera) : nil)
        #expect(try pump([worker.service, camera.service], timeout: .seconds(60)) { broker.counters.workersJoined == 1 })
        let marker = Array("BOTTLEFIT-PLAINTEXT-MARKER-".utf8)
        let data = Array((0..<8).flatMap { _ in marker })
        let frame = FrameMessage(
            cameraID: "cam", sequence: 7, model: "m",
            payload: .bottleneck(QuantizedTensor(shape: [1, 1, data.count], data: data, parameters: QuantizationParameters(scale: 0.5, zeroPoint: 128))),
            deadline: unixMilliseconds() + 60_000, sentAt: unixMilliseconds())
        try camera.send([[], frame.encoded()])
        #expect(try pump([worker.service, camera.service], timeout: .seconds(60)) { camera.completed.contains(7) })
        #expect(worker.frames.first?.payload == frame.payload, "the worker got the frame intact")
        let captured = relay.bytes
        #expect(captured.count > data.count, "the frame went through the relay")
        #expect(captured.contains(marker) == !curve)
    }
}
