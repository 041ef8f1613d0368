import BottleFitController
import BottleFitProtocol
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport

/// A logger that discards everything, so test output stays readable.
let quietLogger = Logger(label: "bottlefit.controller.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Where the test's STATS publisher and the controller's directive publisher bind.
enum ControllerTestTransport: String, CaseIterable, CustomTestStringConvertible {
    case inproc, ipc, loopbackTCP

    var testDescription: String { rawValue }

    /// (stats, directive) endpoints to bind; a temp directory for ipc, removed by the caller.
    func endpoints(directory: URL) -> (String, String) {
        let name = "bf-ctl-\(UUID().uuidString.prefix(8))"
        switch self {
        case .inproc: return ("inproc://\(name)-stats", "inproc://\(name)-dir")
        case .ipc: return ("ipc://\(directory.path)/stats", "ipc://\(directory.path)/dir")
        case .loopbackTCP: return ("tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
        }
    }
}

/// Fast timings, so a whole raise-and-recover cycle takes about a second.
func fastConfiguration(stats: String, directive: String) -> ControllerConfiguration {
    var settings = ControllerSettings()
    settings.statsInterval = .milliseconds(20)
    // Silence after 200 ms, not 60: a test thread descheduled on a busy machine is not a silent broker.
    settings.silenceIntervals = 10
    settings.overloadWindow = .milliseconds(100)
    settings.healthyWindow = .milliseconds(100)
    settings.dwell = .milliseconds(150)
    var configuration = ControllerConfiguration(statsEndpoint: stats, directiveEndpoint: directive, settings: settings)
    configuration.republishInterval = .milliseconds(150)
    configuration.directiveValidity = .seconds(1)
    configuration.linger = 0
    return configuration
}

/// The test's side: a PUB playing the broker's STATS socket and a SUB playing a camera.
final class ControllerProbe {
    let statsPub: ZMQSocket
    let directiveSub: ZMQSocket
    private(set) var directives: [DirectiveMessage] = []

    init(_ context: ZMQContext, statsEndpoint: String) throws {
        statsPub = try ZMQSocket(context, type: .pub, linger: 0)
        try statsPub.bind(statsEndpoint)
        directiveSub = try ZMQSocket(context, type: .sub, linger: 0)
        try directiveSub.setOption(.subscribe, Array("directive".utf8))
    }

    var boundStatsEndpoint: String { get throws { try statsPub.option(.lastEndpoint) } }

    func publish(q95: Double, drops: Double = 0) throws {
        let s = StatsMessage(
            timestamp: UInt64(Date().timeIntervalSince1970 * 1000), queueDepth: 3, queueTimeP50: q95 / 2, queueTimeP95: q95,
            queueTimeP99: q95, inFlight: 1, arrivalRate: 10, completionRate: 10, dropRate: drops, workers: [])
        _ = try statsPub.trySend([Array("stats".utf8), try s.encoded()])
    }

    /// Collects directives for up to `duration` (in 10 ms polls), publishing STATS of `q95` every
    /// 20 ms when given, until `done` holds. Bounded in time and in count.
    func run(for duration: Duration, q95: Double?, until done: (ControllerProbe) -> Bool = { _ in false }) throws {
        let clock = ContinuousClock()
        let end = clock.now + duration
        var nextStats = clock.now
        var turns = 0
        while clock.now < end, turns < 10_000 {
            turns += 1
            if let q95, clock.now >= nextStats {
                try publish(q95: q95)
                nextStats = clock.now + .milliseconds(20)
            }
            let poller = ZMQPoller()
            try poller.add(directiveSub)
            if try poller.poll(timeout: .milliseconds(10)) > 0 {
                while let frames = try directiveSub.tryReceive() {
                    #expect(frames.count == 2 && frames.first == Array("directive".utf8))
                    if frames.count == 2 { directives.append(try DirectiveMessage.decode(frames[1])) }
                }
            }
            if done(self) { return }
        }
    }

    /// The local share the last directive sets: 1 − `es` (no `es`: 0).
    var lastFraction: Double? {
        guard let last = directives.last else { return nil }
        return Self.fraction(of: last)
    }

    static func fraction(of directive: DirectiveMessage) -> Double {
        ((1 - (directive.edgeShare ?? 1)) * 1_000_000).rounded() / 1_000_000
    }
}

@Suite("Controller end to end", .blocking)
struct ControllerEndToEndTests {
    @Test(arguments: ControllerTestTransport.allCases)
    func raisesHoldsThroughSilenceAndRecovers(transport: ControllerTestTransport) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bf-ctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (statsEndpoint, directiveEndpoint) = transport.endpoints(directory: directory)

        let context = try ZMQContext()
        let probe = try ControllerProbe(context, statsEndpoint: statsEndpoint)
        let controller = Controller(
            configuration: fastConfiguration(stats: try probe.boundStatsEndpoint, directive: directiveEndpoint),
            context: context, logger: quietLogger)
        let bound = try controller.start()
        try probe.directiveSub.connect(bound)

        // Healthy at fraction 0: the directive in force (the whole fleet, split, no cap) is re-published.
        try probe.run(for: .seconds(3), q95: 1) { $0.directives.count >= 2 }
        #expect(probe.directives.count >= 2)
        #expect(probe.lastFraction == 0)
        #expect(probe.directives.allSatisfy { $0.mode == .split && $0.target == .fraction(1) })
        let initial = try #require(probe.directives.first).sequence

        // Sustained overload: the fraction rises to 0.25 with a new sequence number.
        try probe.run(for: .seconds(5), q95: 500) { ($0.lastFraction ?? 0) >= 0.25 }
        let raised = try #require(probe.directives.last)
        #expect(raised.target == .fraction(1) && raised.edgeShare == 0.75)
        #expect(raised.sequence == initial + 1)
        #expect(raised.reason.contains("overloaded"))
        #expect(raised.validUntil > UInt64(Date().timeIntervalSince1970 * 1000))

        // Silence: the fraction is held and the same directive is re-published, same sequence.
        let before = probe.directives.count
        try probe.run(for: .seconds(5), q95: nil) { $0.directives.count >= before + 3 }
        let republished = probe.directives.dropFirst(before)
        #expect(republished.count >= 3)
        #expect(republished.allSatisfy { $0.sequence == raised.sequence && $0.edgeShare == 0.75 })
        #expect(controller.counters.silences >= 1)

        // Healthy again: staged recovery, 0.25 -> 0.15 -> 0.05 -> 0, each with a higher sequence.
        try probe.run(for: .seconds(10), q95: 1) { $0.lastFraction == 0 }
        #expect(probe.lastFraction == 0)
        var changes: [(UInt64, Double)] = []
        for d in probe.directives where changes.last?.0 != d.sequence {
            changes.append((d.sequence, ControllerProbe.fraction(of: d)))
        }
        #expect(changes.map(\.1) == [0, 0.25, 0.15, 0.05, 0])
        #expect(changes.map(\.0) == Array(initial...(initial + 4)))

        // Garbage on the STATS topic is counted, not fatal.
        _ = try probe.statsPub.trySend([Array("stats".utf8), [0xc1, 0x00]])
        _ = try probe.statsPub.trySend([Array("stats".utf8)])
        try probe.run(for: .seconds(3), q95: nil) { _ in controller.counters.statsRejected >= 2 }
        #expect(controller.counters.statsRejected == 2)

        let counters = controller.counters
        #expect(counters.raises == 1 && counters.lowers == 3)
        #expect(counters.decisions >= counters.statsReceived)
        #expect(counters.directivesPublished >= probe.directives.count)

        // stop() from this thread: the loop leaves within about one poll timeout.
        let clock = ContinuousClock()
        let stopping = clock.now
        controller.stop()
        controller.waitUntilStopped()
        #expect(clock.now - stopping < .seconds(1))
        #expect(controller.fraction == 0)
    }

    @Test func refusesABadConfigurationAndAnUnbindableEndpoint() throws {
        let context = try ZMQContext()
        var bad = fastConfiguration(stats: "inproc://x", directive: "inproc://y")
        bad.settings.lowerFactor = 2
        #expect(throws: ControllerError.self) { try Controller(configuration: bad, context: context, logger: quietLogger).start() }

        let unbindable = Controller(
            configuration: fastConfiguration(stats: "tcp://127.0.0.1:1", directive: "bogus://nowhere"),
            context: context, logger: quietLogger)
        do {
            try unbindable.start()
            Issue.record("a bogus endpoint was bound")
        } catch {
            guard case .socket = error else { Issue.record("unexpected \(error)"); return }
        }
        unbindable.waitUntilStopped()  // never started: returns at once

        let twice = Controller(configuration: fastConfiguration(stats: "inproc://s-\(UUID())", directive: "inproc://d-\(UUID())"),
                               context: context, logger: quietLogger)
        try twice.start()
        #expect(throws: ControllerError.alreadyStarted) { try twice.start() }
        twice.stop()
        twice.waitUntilStopped()
    }
}
