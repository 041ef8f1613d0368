import BottleFitBroker
import BottleFitController
import BottleFitProtocol
import BottleFitSecurity
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// CURVE between broker, controller and cameras, all in one context (so one ZAP handler serves
/// both servers' allow-lists): the listed controller reads STATS and the listed camera receives
/// DIRECTIVEs; a controller or camera on no list learns nothing.
@Suite(.enabled(if: ZMQContext.has("curve")), .blocking)
struct ControllerCurveTests {
    @Test func onlyListedPeersReadStatsAndDirectives() throws {
        let broker = try ZMQCurveKeyPair.generate(), controllerKeys = try ZMQCurveKeyPair.generate()
        let camera = try ZMQCurveKeyPair.generate(), stranger = try ZMQCurveKeyPair.generate()
        let dir = "/tmp/bfcurve-ctl-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "\(camera.publicKey)\n".write(toFile: "\(dir)/cameras.allow", atomically: true, encoding: .utf8)
        try "# no workers in this test\n".write(toFile: "\(dir)/workers.allow", atomically: true, encoding: .utf8)
        try "\(controllerKeys.publicKey)  # controller\n".write(toFile: "\(dir)/stats.allow", atomically: true, encoding: .utf8)

        let context = try ZMQContext()
        var brokerConfiguration = BrokerConfiguration(
            frontendEndpoint: "tcp://127.0.0.1:*", backendEndpoint: "tcp://127.0.0.1:*", statsEndpoint: "tcp://127.0.0.1:*")
        brokerConfiguration.policy.statsInterval = .milliseconds(20)
        brokerConfiguration.linger = 0
        brokerConfiguration.curve = BrokerCurve(
            keys: broker, cameraAllowList: "\(dir)/cameras.allow", workerAllowList: "\(dir)/workers.allow", statsAllowList: "\(dir)/stats.allow")
        let theBroker = Broker(configuration: brokerConfiguration, context: context, logger: quietLogger)
        let endpoints = try theBroker.start()
        defer { theBroker.stop(); theBroker.waitUntilStopped() }

        func controller(_ keys: ZMQCurveKeyPair) -> Controller {
            var configuration = fastConfiguration(stats: endpoints.stats, directive: "tcp://127.0.0.1:*")
            configuration.curve = ControllerCurve(keys: keys, brokerKey: broker.publicKey, cameraAllowList: "\(dir)/cameras.allow")
            return Controller(configuration: configuration, context: context, logger: quietLogger)
        }
        let listed = controller(controllerKeys)
        let directiveEndpoint = try listed.start()
        defer { listed.stop(); listed.waitUntilStopped() }
        // A second controller with a key on no list: the broker refuses its STATS subscription.
        let impostor = controller(stranger)
        _ = try impostor.start()
        defer { impostor.stop(); impostor.waitUntilStopped() }

        func subscriber(_ keys: ZMQCurveKeyPair) throws -> ZMQSocket {
            let socket = try ZMQSocket(context, type: .sub, linger: 0)
            try socket.makeCurveClient(keys, serverKey: controllerKeys.publicKey)
            try socket.setOption(.subscribe, [])
            try socket.connect(directiveEndpoint)
            return socket
        }
        let cameraSub = try subscriber(camera)
        let strangerSub = try subscriber(stranger)
        let plainSub = try ZMQSocket(context, type: .sub, linger: 0)
        try plainSub.setOption(.subscribe, [])
        try plainSub.connect(directiveEndpoint)

        var directives = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            while let frames = try cameraSub.tryReceive() {
                if frames.count == 2, (try? DirectiveMessage.decode(frames[1])) != nil { directives += 1 }
            }
            let refusedDirectives = listed.authCounters?.refused("directives", .unknownKey) ?? 0
            let refusedStats = theBroker.authCounters?.refused("stats", .unknownKey) ?? 0
            if directives >= 2 && listed.counters.statsReceived >= 3 && refusedDirectives >= 1 && refusedStats >= 1 { break }
            usleep(2000)
        }
        #expect(directives >= 2, "the listed camera receives DIRECTIVEs")
        #expect(listed.counters.statsReceived >= 3, "the listed controller reads STATS")
        #expect((listed.authCounters?.refused("directives", .unknownKey) ?? 0) >= 1)
        #expect((theBroker.authCounters?.refused("stats", .unknownKey) ?? 0) >= 1)
        // By now the listed peers have had several messages; the others have had none.
        #expect(impostor.counters.statsReceived == 0 && impostor.counters.statsRejected == 0)
        #expect(try strangerSub.tryReceive() == nil)
        #expect(try plainSub.tryReceive() == nil)
    }
}
