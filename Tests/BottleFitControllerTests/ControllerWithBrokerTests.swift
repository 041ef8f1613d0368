import BottleFitBroker
import BottleFitController
import Foundation
import Testing
import ZeroMQ

@Suite("Controller with the real broker")
struct ControllerWithBrokerTests {
    /// The real broker's STATS reach the controller and decode: an idle broker is a healthy edge.
    @Test func readsTheBrokersStats() throws {
        let context = try ZMQContext()
        let name = "bf-ctl-broker-\(UUID().uuidString.prefix(8))"
        var policy = BrokerPolicy()
        policy.statsInterval = .milliseconds(20)
        var brokerConfiguration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back",
            statsEndpoint: "inproc://\(name)-stats", policy: policy)
        brokerConfiguration.linger = 0
        let broker = Broker(configuration: brokerConfiguration, context: context, logger: quietLogger)
        let endpoints = try broker.start()
        defer { broker.stop(); broker.waitUntilStopped() }

        let controller = Controller(
            configuration: fastConfiguration(stats: endpoints.stats, directive: "inproc://\(name)-directives"),
            context: context, logger: quietLogger)
        try controller.start()
        defer { controller.stop(); controller.waitUntilStopped() }

        let clock = ContinuousClock()
        let end = clock.now + .seconds(5)
        var turns = 0
        while clock.now < end, turns < 1000, controller.counters.statsReceived < 5 {
            turns += 1
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(controller.counters.statsReceived >= 5)
        #expect(controller.counters.statsRejected == 0)
        #expect(controller.lastDecision?.condition == .healthy)
        #expect(controller.fraction == 0)
    }
}
