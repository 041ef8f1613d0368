import BottleFitBroker
import BottleFitCore
import BottleFitProtocol
import Testing

/// The scheduler alone: worker liveness, requeues, late answers, heartbeats, STATS and shutdown.
@Suite struct SchedulerWorkerTests {
    /// Keeps `alive` heartbeating while time passes in steps of `step` ms, `steps` times.
    static func pass(_ h: inout SchedulerHarness, steps: Int, step: UInt64 = 500, alive: [String]) -> [BrokerAction] {
        var actions: [BrokerAction] = []
        for _ in 0..<steps {
            for worker in alive { actions += h.heartbeat(worker) }
            actions += h.advance(step)
        }
        return actions
    }

    @Test func aSilentWorkersFramesGoToAnotherWorkerOnce() {
        var h = SchedulerHarness()
        h.ready("x", credit: 2)
        h.frame("a", 0, deadlineIn: 20_000)
        h.frame("b", 0, deadlineIn: 20_000)
        #expect(h.history.dispatches.map(\.worker) == ["x", "x"])
        h.ready("y", credit: 0)
        // x falls silent: after 3 s (liveness 3 x 1 s) it is lost and its frames wait again.
        var actions = Self.pass(&h, steps: 6, alive: ["y"])
        #expect(actions.dispatches.isEmpty && actions.errors.isEmpty)
        actions = Self.pass(&h, steps: 1, alive: ["y"])
        #expect(h.counters.workersLost == 1 && h.counters.requeued == 2 && h.counters.queued == 2)
        #expect(actions.contains(.note(.workerLost(workerID: "x", reason: .silent, requeued: 2, failed: 0))))
        #expect(h.credit("y", 2).dispatches.map(\.worker) == ["y", "y"])
        // y dies too: the frames were already dispatched twice, so now they fail.
        actions = Self.pass(&h, steps: 8, alive: [])
        #expect(Set(actions.errorCodes) == ["WORKER_LOST@a#0", "WORKER_LOST@b#0"])
        #expect(h.counters.dropped(.workerLost) == 2 && h.counters.dispatched == 4 && h.counters.inFlight == 0)
    }

    @Test func heartbeatsKeepAWorkerAlive() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0, deadlineIn: 60_000)
        _ = Self.pass(&h, steps: 40, alive: ["x"])
        #expect(h.counters.workersLost == 0 && h.counters.inFlight == 1)
    }

    @Test func aLostWorkersExpiredFramesAreAnsweredWorkerLost() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.ready("y", credit: 1)
        h.frame("a", 0, deadlineIn: 2000)
        let holder = h.history.dispatches[0].worker
        let other = holder == "x" ? "y" : "x"
        let actions = Self.pass(&h, steps: 8, alive: [other])
        #expect(actions.errorCodes == ["WORKER_LOST@a#0"])
        #expect(h.counters.requeued == 0 && h.counters.dispatched == 1)
    }

    @Test func disconnectRequeuesAtOnce() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0)
        h.ready("y", credit: 1)
        let actions = h.disconnect("x")
        #expect(actions.dispatches.map(\.worker) == ["y"])
        #expect(actions.contains(.note(.workerLost(workerID: "x", reason: .disconnected, requeued: 1, failed: 0))))
        // A worker that is gone can be told nothing more; its messages meet DISCONNECT.
        #expect(h.credit("x", 1).controls.map(\.message.type) == [.disconnect])
        #expect(h.counters.discarded(.unknownWorker) == 1)
    }

    @Test func readyAgainOnTheSameConnectionMeansRestarted() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0)
        let actions = h.ready("x", credit: 1)
        #expect(actions.dispatchedFrames == ["a#0"])  // its frame went back and out again
        #expect(h.counters.requeued == 1 && h.counters.workersJoined == 2)
    }

    @Test func answersRouteBackAndLateOnesAreDropped() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0, deadlineIn: 20_000)
        h.ready("y", credit: 1)
        let key = SchedulerHarness.key("a", 0)
        _ = Self.pass(&h, steps: 7, alive: ["y"])  // x is lost; a#0 goes to y
        #expect(h.history.dispatches.map(\.worker) == ["x", "y"])
        // The lost worker's answer arrives after all: it still settles the frame...
        let first = h.answer("x", key)
        #expect(first.forwards.map(\.camera) == [SchedulerHarness.cameraRID("a")])
        // ...and the second answer, from y, is late: dropped and counted.
        #expect(h.answer("y", key).forwards.isEmpty)
        // So is an answer from a worker that never held it, and one for a frame never sent.
        h.frame("a", 1, deadlineIn: 20_000)
        h.credit("y", 1)
        #expect(h.answer("z", SchedulerHarness.key("a", 1)).forwards.isEmpty)
        #expect(h.answer("y", SchedulerHarness.key("a", 99)).forwards.isEmpty)
        #expect(h.answer("y", SchedulerHarness.key("a", 1)).forwards.count == 1)
        #expect(h.counters.completed == 2 && h.counters.discarded(.lateAnswer) == 3)
    }

    @Test func workerErrorsAreForwardedAndCounted() {
        var h = SchedulerHarness()
        h.ready("x", credit: 2)
        h.frame("a", 0)
        h.frame("a", 1)
        #expect(h.answer("x", SchedulerHarness.key("a", 0), code: .expired).forwards.count == 1)
        #expect(h.answer("x", SchedulerHarness.key("a", 1), code: .badRequest).forwards.count == 1)
        #expect(h.counters.dropped(.expired) == 1 && h.counters.dropped(.workerError) == 1)
    }

    @Test func idleWorkersAreSentHeartbeats() {
        var h = SchedulerHarness()
        h.ready("x", credit: 5)
        #expect(h.advance(999).controls.isEmpty)
        #expect(h.advance(1).controls.map(\.message) == [.heartbeat(HeartbeatMessage())])
        h.heartbeat("x")
        h.advance(500)
        h.frame("a", 0)  // a FRAME is traffic too: no HEARTBEAT for another second
        h.heartbeat("x")
        #expect(h.advance(999).controls.isEmpty)
        #expect(h.advance(1).controls.count == 1)
    }

    @Test func framesStuckAtALiveWorkerAreGivenUp() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0, deadlineIn: 1000)
        var actions = Self.pass(&h, steps: 60, alive: ["x"])  // 30 s: deadline + 29 s
        #expect(actions.errors.isEmpty)
        actions = Self.pass(&h, steps: 6, alive: ["x"])
        #expect(actions.errorCodes == ["WORKER_LOST@a#0"])
        #expect(h.counters.workersLost == 0 && h.counters.inFlight == 0)
        #expect(h.scheduler.workerSummaries.first?.inFlight == 0)
    }

    @Test func statsArePublishedEveryInterval() {
        var h = SchedulerHarness()
        h.ready("x", credit: 5)
        h.ready("y", models: ["other"], credit: 0)
        for s in 0..<3 { h.frame("a", UInt64(s)) }
        h.answer("x", SchedulerHarness.key("a", 0))
        h.frame("b", 0, model: "nobody")
        #expect(h.advance(249).published.isEmpty)
        let stats = h.advance(1).published
        #expect(stats.count == 1)
        guard let s = stats.first else { return }
        #expect(s.timestamp == SchedulerHarness.epoch + 250)
        #expect(s.queueDepth == 0 && s.inFlight == 2)
        #expect(s.arrivalRate == 16 && s.completionRate == 4 && s.dropRate == 4)
        #expect(s.queueTimeP50 == 0 && s.queueTimeP99 == 0)
        #expect(s.workers == [
            StatsMessage.Worker(id: "x", credit: 2, inFlight: 2), StatsMessage.Worker(id: "y", credit: 0, inFlight: 0),
        ])
        #expect(throws: Never.self) { _ = try s.encoded() }
        // Four frames wait 100 ms, one 300 ms: the percentiles see it.
        h.heartbeat("x"); h.heartbeat("y")
        for s in 10..<15 { h.frame("c", UInt64(s), model: "other") }
        h.advance(100)
        h.credit("y", 4)
        h.advance(200)
        h.credit("y", 1)
        let later = h.advance(0).published + h.advance(250).published
        #expect(later.count == 1)
        #expect(later.first?.queueTimeP50 == 100 && later.first?.queueTimeP95 == 300)
    }

    @Test func shutdownAnswersEverythingAndSaysGoodbye() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0)
        h.frame("a", 1)
        let actions = h.run { s, t in s.shutdown(now: t) }
        #expect(Set(actions.errorCodes) == ["BUSY@a#0", "BUSY@a#1"])
        #expect(actions.controls.map(\.message.type) == [.disconnect])
        #expect(actions.contains(.reply(camera: SchedulerHarness.cameraRID("a"), message: .disconnect(DisconnectMessage(reason: "broker shutting down")))))
        #expect(h.counters.dropped(.shutdown) == 2 && h.counters.received == h.counters.completed + h.counters.droppedTotal)
        #expect(h.frame("a", 2).errorCodes == ["BUSY@a#2"])
        #expect(h.advance(5000).isEmpty)
    }
}
