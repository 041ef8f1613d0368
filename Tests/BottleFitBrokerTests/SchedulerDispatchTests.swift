import BottleFitBroker
import BottleFitProtocol
import Testing

/// The scheduler alone: where frames go, in what order, and what is refused.
@Suite struct SchedulerDispatchTests {
    @Test func frameGoesToAWorkerServingItsModel() {
        var h = SchedulerHarness()
        h.ready("x", models: ["m1"], credit: 4)
        h.ready("y", models: ["m2"], credit: 4)
        let actions = h.frame("a", 0, model: "m2")
        #expect(actions.dispatches.map(\.worker) == ["y"])
        #expect(h.counters.dispatched == 1 && h.counters.inFlight == 1 && h.counters.queued == 0)
        #expect(h.scheduler.workerSummaries == [
            StatsMessage.Worker(id: "x", credit: 4, inFlight: 0), StatsMessage.Worker(id: "y", credit: 3, inFlight: 1),
        ])
    }

    @Test func dispatchedFrameIsForwardedByteForByte() throws {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        let message = SchedulerHarness.frameMessage("a", 9, model: "m", deadline: h.now.unixMilliseconds + 500)
        let bytes = try message.encoded()
        let actions = h.run { s, t in s.receiveFrame(message, bytes: bytes, from: SchedulerHarness.cameraRID("a"), now: t) }
        #expect(actions == [.dispatch(worker: SchedulerHarness.workerRID("x"), frame: SchedulerHarness.key("a", 9), body: bytes)])
    }

    @Test func creditBoundsWhatAWorkerHolds() {
        var h = SchedulerHarness()
        h.ready("x", credit: 2)
        for s in 0..<5 { h.frame("a", UInt64(s)) }
        #expect(h.history.dispatchedFrames == ["a#0", "a#1"])
        #expect(h.counters.queued == 3 && h.counters.inFlight == 2)
        // An answer frees an in-flight slot but returns no credit (protocol section 7).
        #expect(h.answer("x", SchedulerHarness.key("a", 0)).dispatches.isEmpty)
        #expect(h.credit("x", 1).dispatchedFrames == ["a#2"])
        #expect(h.credit("x", 5).dispatchedFrames == ["a#3", "a#4"])
        #expect(h.scheduler.workerSummaries == [StatsMessage.Worker(id: "x", credit: 3, inFlight: 4)])
    }

    @Test func fewestInFlightFirst() {
        var h = SchedulerHarness()
        h.ready("x", credit: 10)
        h.ready("y", credit: 10)
        for s in 0..<4 { h.frame("a", UInt64(s)) }
        let first = h.history.dispatches
        #expect(first.filter { $0.worker == "x" }.count == 2 && first.filter { $0.worker == "y" }.count == 2)
        // x answers both of its frames: it now holds fewer, so it gets the next two.
        for d in first where d.worker == "x" { h.answer("x", d.frame) }
        let next = h.frame("a", 4).dispatches + h.frame("a", 5).dispatches
        #expect(next.map(\.worker) == ["x", "x"])
        #expect(h.frame("a", 6).dispatches.count == 1)
    }

    @Test func camerasAreServedRoundRobin() {
        var policy = BrokerPolicy()
        policy.queueCapacity = 64
        var h = SchedulerHarness(policy: policy)
        h.ready("x", credit: 0)
        for s in 0..<10 { h.frame("a", UInt64(s)) }  // a chatty camera first...
        for s in 0..<3 { h.frame("b", UInt64(s)) }
        h.frame("c", 0)
        var order: [String] = []
        for _ in 0..<14 { order += h.credit("x", 1).dispatchedFrames }
        #expect(order == [
            "a#0", "b#0", "c#0", "a#1", "b#1", "a#2", "b#2",
            "a#3", "a#4", "a#5", "a#6", "a#7", "a#8", "a#9",
        ])
    }

    @Test func aBlockedModelDoesNotHoldUpOtherCameras() {
        var h = SchedulerHarness()
        h.ready("x", models: ["m1"], credit: 0)
        h.ready("y", models: ["m2"], credit: 0)
        h.frame("a", 0, model: "m1")
        h.frame("b", 0, model: "m2")
        #expect(h.credit("y", 1).dispatchedFrames == ["b#0"])
        #expect(h.counters.queued == 1)
    }

    @Test func fullQueueAnswersBusyWithARetryHint() {
        var h = SchedulerHarness()  // capacity 8
        h.ready("x", credit: 0)
        for s in 0..<8 { #expect(h.frame("a", UInt64(s)).isEmpty) }
        let refused = h.frame("a", 8).errors
        #expect(refused.map(\.error.code) == [.busy])
        #expect(refused.first?.error.sequence == 8 && refused.first?.camera == SchedulerHarness.cameraRID("a"))
        // Nothing has completed yet, so the queue is not draining: the longest hint.
        #expect(refused.first?.error.retryAfterMilliseconds == h.scheduler.policy.retryAfterMaximum)
        #expect(h.counters.dropped(.busy) == 1 && h.counters.queued == 8)
    }

    @Test func retryHintFollowsTheCompletionRate() {
        var h = SchedulerHarness()
        h.ready("x", credit: 10)
        for s in 0..<10 { h.frame("a", UInt64(s)) }
        for d in h.history.dispatches { h.answer("x", d.frame) }
        let stats = h.advance(250).published
        #expect(stats.map(\.completionRate) == [40])  // 10 frames in 0.25 s
        for s in 10..<18 { h.frame("a", UInt64(s)) }  // x has no credit left: these wait
        let refused = h.frame("a", 18).errors
        #expect(refused.first?.error.retryAfterMilliseconds == 200)  // 8 waiting at 40/s
    }

    @Test func aFullQueueMakesRoomForACameraWithFewerFramesWaiting() {
        var h = SchedulerHarness()
        h.ready("x", credit: 0)
        for s in 0..<8 { h.frame("a", UInt64(s)) }
        #expect(h.frame("b", 0).errorCodes == ["BUSY@a#7"])
        #expect(h.frame("b", 1).errorCodes == ["BUSY@a#6"])
        // a has 6 waiting, b 2: a's next frame is the one refused.
        #expect(h.frame("a", 8).errorCodes == ["BUSY@a#8"])
        #expect(h.counters.queued == 8 && h.counters.dropped(.busy) == 3)
        var order: [String] = []
        for _ in 0..<4 { order += h.credit("x", 1).dispatchedFrames }
        #expect(order == ["a#0", "b#0", "a#1", "b#1"])
    }

    @Test func expiredFramesAreAnsweredInsteadOfDispatched() {
        var h = SchedulerHarness()
        h.ready("x", credit: 0)
        // Already late on arrival.
        #expect(h.frame("a", 0, deadlineIn: -1).errorCodes == ["EXPIRED@a#0"])
        // Expires while waiting: the periodic sweep answers it without any dispatch.
        h.frame("a", 1, deadlineIn: 100)
        #expect(h.advance(50).errors.isEmpty)
        #expect(h.advance(51).errorCodes == ["EXPIRED@a#1"])
        // Expired at the head when credit comes (no tick in between): skipped, the next goes.
        h.frame("a", 2, deadlineIn: 10)
        h.frame("a", 3, deadlineIn: 1000)
        h.elapsed += 11
        let actions = h.credit("x", 1)
        #expect(actions.errorCodes == ["EXPIRED@a#2"] && actions.dispatchedFrames == ["a#3"])
        #expect(h.counters.dropped(.expired) == 3 && h.counters.dispatched == 1)
    }

    @Test func unknownModelIsAnsweredAtOnce() {
        var h = SchedulerHarness()
        #expect(h.frame("a", 0, model: "nobody").errorCodes == ["UNKNOWN_MODEL@a#0"])
        h.ready("x", models: ["m"], credit: 0)
        #expect(h.frame("a", 1, model: "other").errorCodes == ["UNKNOWN_MODEL@a#1"])
        // Frames waiting for a model whose last worker leaves are answered, not left to expire.
        h.frame("a", 2, model: "m")
        h.frame("b", 0, model: "m")
        #expect(h.disconnect("x").errorCodes == ["UNKNOWN_MODEL@a#2", "UNKNOWN_MODEL@b#0"])
        #expect(h.counters.dropped(.unknownModel) == 4 && h.counters.queued == 0)
    }

    @Test func aDuplicatePendingFrameIsABadRequest() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0)
        h.frame("a", 1)
        #expect(h.frame("a", 0).errorCodes == ["BAD_REQUEST@a#0"])  // in flight
        #expect(h.frame("a", 1).errorCodes == ["BAD_REQUEST@a#1"])  // queued
        // The same (c, s) from another connection is another frame.
        let other = SchedulerHarness.frameMessage("a", 1, model: "m", deadline: h.now.unixMilliseconds + 1000)
        let actions = h.run { s, t in s.receiveFrame(other, bytes: try! other.encoded(), from: [9, 9], now: t) }
        #expect(actions.errors.isEmpty)
        #expect(h.counters.queued == 2 && h.counters.dropped(.badRequest) == 2)
    }

    @Test func cameraDisconnectDropsItsWaitingFramesUnanswered() {
        var h = SchedulerHarness()
        h.ready("x", credit: 1)
        h.frame("a", 0)
        h.frame("a", 1)
        h.frame("b", 0)
        let actions = h.run { s, t in s.cameraDisconnected(SchedulerHarness.cameraRID("a"), now: t) }
        #expect(actions.isEmpty)
        #expect(h.counters.dropped(.cameraGone) == 1 && h.counters.queued == 1 && h.counters.inFlight == 1)
    }

    @Test func cameraHeartbeatIsAnswered() {
        var h = SchedulerHarness()
        let actions = h.run { s, t in s.cameraHeartbeat(from: [7], now: t) }
        #expect(actions == [.reply(camera: [7], message: .heartbeat(HeartbeatMessage()))])
        #expect(h.counters.received == 0)
    }
}
