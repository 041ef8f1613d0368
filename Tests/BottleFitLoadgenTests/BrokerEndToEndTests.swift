import BottleFitBroker
import BottleFitProtocol
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport
@testable import BottleFitLoadgen

/// A tail worker stand-in on its own thread: READY, then a RESULT and a CREDIT for every FRAME.
final class ThreadWorker: @unchecked Sendable {
    // `stopped` and `answered` are guarded by `lock`; the socket lives on the worker's thread only.
    private let lock = NSLock()
    private var stopped = false
    private var answeredCount = 0
    private let done = DispatchSemaphore(value: 0)

    init(context: ZMQContext, endpoint: String, model: String) {
        Thread.detachNewThread { [self] in
            defer { done.signal() }
            guard let socket = try? ZMQSocket(context, type: .dealer, linger: 0) else { return }
            defer { try? socket.close() }
            guard (try? socket.connect(endpoint)) != nil,
                  let ready = try? ReadyMessage(workerID: "w", models: [model], credit: 32).encoded(),
                  (try? socket.send([[], ready])) != nil else { return }
            let heartbeat = (try? HeartbeatMessage().encoded()) ?? []
            let credit = (try? CreditMessage(credits: 1).encoded()) ?? []
            let poller = ZMQPoller()
            _ = try? poller.add(socket)
            var lastSent = ContinuousClock.now
            while !isStopped {
                _ = try? poller.poll(timeout: .milliseconds(20))
                while let parts = (try? socket.tryReceive()) ?? nil {
                    guard parts.count == 4, let frame = try? FrameMessage.decode(parts[3]) else { continue }
                    let result = ResultMessage(
                        cameraID: frame.cameraID, sequence: frame.sequence, classIndices: [1], scores: [1], queuedMilliseconds: 0,
                        computeMilliseconds: 0.1, batchSize: 1, workerID: "w")
                    guard let bytes = try? result.encoded() else { continue }
                    _ = try? socket.trySend([[], parts[1], [], bytes])
                    _ = try? socket.trySend([[], credit])
                    lastSent = .now
                    lock.withLock { answeredCount += 1 }
                }
                if ContinuousClock.now - lastSent > .milliseconds(200) {
                    _ = try? socket.trySend([[], heartbeat])
                    lastSent = .now
                }
            }
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }
    var answered: Int { lock.withLock { answeredCount } }

    func stop() {
        lock.withLock { stopped = true }
        _ = done.wait(timeout: .now() + 10)
    }
}

/// The load generator against the real broker (in-process, inproc://) and a worker stand-in.
@Suite(.serialized, .blocking) struct LoadgenBrokerEndToEndTests {
    @Test func emulatedCamerasRunAgainstARealBroker() throws {
        let context = try ZMQContext()
        let name = "lg-\(UUID().uuidString.prefix(8))"
        var configuration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back", statsEndpoint: "inproc://\(name)-stats")
        configuration.linger = 0
        let broker = Broker(configuration: configuration, context: context, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let endpoints = try broker.start()
        defer { broker.stop(); broker.waitUntilStopped() }
        let worker = ThreadWorker(context: context, endpoint: endpoints.backend, model: "m")
        defer { worker.stop() }
        // Wait for the worker's READY (an event, bounded), so no frame meets an empty pool.
        let deadline = ContinuousClock.now + .seconds(20)
        while broker.counters.workersJoined < 1 && ContinuousClock.now < deadline { usleep(5000) }
        #expect(broker.counters.workersJoined == 1)

        // 6 cameras on 2 connections, 10 frames/s each for 2 s, a generous SLO for a busy machine.
        let plan = LoadgenPlan(groups: [group(cameras: 6, rate: 10, slo: 2000)], durationSeconds: 2, connections: 2, sampleMilliseconds: 250)
        let options = LoadgenRunOptions(
            broker: endpoints.frontend, directives: nil, stats: endpoints.stats, sink: false, report: nil, html: nil,
            thresholds: [try Threshold(parsing: "unaccounted==0")], progress: false)
        let report = try Loadgen.run(plan: plan, options: options, context: context)
        let t = report.totals
        #expect(t.offered == 120)
        #expect(t.unaccounted == 0)
        #expect(t.completedEdge > 0 && t.sent > 0)
        #expect(t.offered == t.completedEdge + t.completedLocal + t.completedFallback + t.droppedTotal)
        #expect(worker.answered >= t.completedEdge)
        #expect(Loadgen.status(of: report) == .ok)
        // The broker's STATS reached the report (published every 250 ms by default).
        #expect(!report.stats.isEmpty)
        // Every camera got its own queue at the broker even though they share two connections.
        #expect(report.groups[0].modes["split"] == 6)
    }

    @Test func emulatedWorkersServeTheBrokerWithTheWorkerProtocol() throws {
        let context = try ZMQContext()
        let name = "lg-\(UUID().uuidString.prefix(8))"
        var configuration = BrokerConfiguration(
            frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back", statsEndpoint: "inproc://\(name)-stats")
        configuration.linger = 0
        let broker = Broker(configuration: configuration, context: context, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let endpoints = try broker.start()
        defer { broker.stop(); broker.waitUntilStopped() }
        let workers = EmulatedWorkers(
            settings: EmulatedWorkerSettings(count: 2, backend: endpoints.backend, models: ["m"], serviceMilliseconds: 4, batchExtraMilliseconds: 1, maxBatch: 4),
            context: context)
        try workers.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while broker.counters.workersJoined < 2 && ContinuousClock.now < deadline { usleep(5000) }
        #expect(broker.counters.workersJoined == 2)
        let plan = LoadgenPlan(groups: [group(cameras: 4, rate: 20, slo: 2000)], durationSeconds: 2, connections: 1)
        let options = LoadgenRunOptions(
            broker: endpoints.frontend, directives: nil, stats: nil, sink: false, report: nil, html: nil, thresholds: [], progress: false)
        let report = try Loadgen.run(plan: plan, options: options, context: context)
        workers.stop()
        let t = report.totals
        #expect(t.offered == 160 && t.unaccounted == 0)
        #expect(t.completedEdge > 0)
        // Every RESULT the cameras counted came from an emulated worker.
        #expect(workers.served >= t.completedEdge)
        #expect(broker.counters.completed >= t.completedEdge)
    }
}
