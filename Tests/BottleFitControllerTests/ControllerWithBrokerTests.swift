import BottleFitBroker
import BottleFitController
import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

@Suite("Controller with the real broker", .blocking)
struct ControllerWithBrokerTests {
    /// A broker on inproc publishing STATS every 20 ms and a fast controller reading them; the
    /// last value stops both.
    func startBrokerAndController(
        _ adjust: (inout BrokerPolicy) -> Void = { _ in }
    ) throws -> (Broker, Controller, ZMQContext, () -> Void) {
        let context = try ZMQContext()
        let name = "bf-ctl-broker-\(UUID().uuidString.prefix(8))"
        var policy = BrokerPolicy()
        policy.statsInterval = .milliseconds(20)
        adjust(&policy)
        var brokerConfiguration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back",
            statsEndpoint: "inproc://\(name)-stats", policy: policy)
        brokerConfiguration.linger = 0
        let broker = Broker(configuration: brokerConfiguration, context: context, logger: quietLogger)
        let endpoints = try broker.start()
        let controller = Controller(
            configuration: fastConfiguration(stats: endpoints.stats, directive: "inproc://\(name)-directives"),
            context: context, logger: quietLogger)
        do { try controller.start() } catch {
            broker.stop()
            broker.waitUntilStopped()
            throw error
        }
        return (broker, controller, context, {
            controller.stop()
            controller.waitUntilStopped()
            broker.stop()
            broker.waitUntilStopped()
        })
    }

    /// The real broker's STATS reach the controller and decode: an idle broker is a healthy edge.
    @Test func readsTheBrokersStats() throws {
        let (_, controller, _, stopAll) = try startBrokerAndController()
        defer { stopAll() }

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

    /// Camera latency alone, end to end: a camera's reports on the broker's frontend reach the
    /// controller through STATS and raise the fraction, naming `camera_latency`; queue time is 0.
    @Test func cameraReportsThroughTheBrokerRaiseTheFraction() throws {
        let (broker, controller, context, stopAll) = try startBrokerAndController { $0.cameraReportWindow = .milliseconds(300) }
        defer { stopAll() }
        let camera = try ZMQSocket(context, type: .dealer, linger: 0)
        defer { try? camera.close() }
        try camera.connect(broker.configuration.frontendEndpoint)
        let report = try HeartbeatMessage(latencyReport: LatencyReport(
            cameraID: "cam-slow", windowMilliseconds: 30, completed: 20, missed: 0,
            percentiles: LatencyPercentiles(p50: 400, p95: 900, p99: 1000))).encoded()
        let clock = ContinuousClock()
        let end = clock.now + .seconds(5)
        var turns = 0
        while clock.now < end, turns < 500, controller.counters.raises == 0 {
            turns += 1
            _ = try camera.trySend([[], report])
            while (try camera.tryReceive()) != nil {}  // the broker's HEARTBEAT answers
            Thread.sleep(forTimeInterval: 0.03)
        }
        #expect(broker.counters.latencyReports > 0)
        #expect(controller.counters.raises >= 1)
        #expect(controller.counters.raisesBySignal[.cameraLatency, default: 0] >= 1)
        #expect(controller.counters.raisesBySignal[.queueTime] == nil)
        #expect(controller.fraction > 0)
        #expect(broker.latestStats?.queueTimeP95 == 0)
    }
}
