import BottleFitDevice
import BottleFitProtocol
import Testing

/// The camera's decisions, driven by made-up times (Unix ms) and events: no sockets, no clock.
@Suite struct CameraPolicyTests {
    static let t0: UInt64 = 1_700_000_000_000

    func policy(_ mode: CameraMode = .split, id: String = "cam-1", local: Bool = true) -> CameraPolicy {
        CameraPolicy(.init(cameraID: id, mode: mode, canComputeLocally: local), now: Self.t0)
    }

    /// Frames every `period` ms from `start` to `end`: how many went to the edge. Each edge frame
    /// gets `answer` (nil: no answer) at the time it was sent, after a heartbeat answer.
    func drive(
        _ p: inout CameraPolicy, from start: UInt64, to end: UInt64, every period: UInt64,
        answer: CameraPolicy.EdgeOutcome? = .result(latencyMilliseconds: 10, budgetMilliseconds: 200)
    ) -> Int {
        var edge = 0
        var now = start
        while now < end {
            p.heard(at: now)
            if p.decide(at: now) == .split {
                edge += 1
                if let answer { p.record(answer, epoch: p.epoch, at: now) }
            }
            now += period
        }
        return edge
    }

    @Test func configuredModes() {
        var split = policy(.split)
        var local = policy(.local)
        var offload = policy(.offload)
        #expect(split.decide(at: Self.t0) == .split)
        #expect(local.decide(at: Self.t0) == .local)
        #expect(offload.decide(at: Self.t0) == .offload)
        // A local camera stays local whatever the edge does.
        local.record(.error(.busy, retryAfterMilliseconds: 100), epoch: 0, at: Self.t0)
        #expect(local.decide(at: Self.t0 + 10_000) == .local)
    }

    @Test func silenceIsADeadEdgeWithinThreeHeartbeats() {
        var p = policy()
        for beat in 1...5 {
            p.heard(at: Self.t0 + UInt64(beat) * 1000)
            #expect(p.decide(at: Self.t0 + UInt64(beat) * 1000 + 500) == .split)
        }
        let last = Self.t0 + 5000
        #expect(p.decide(at: last + 2999) == .split)
        #expect(p.edgeState(at: last + 3000) == .dead)
        #expect(p.decide(at: last + 3000) == .local)
        #expect(p.decide(at: last + 60_000) == .local)
        // Anything heard ends it at once, however long it lasted: no back-off to wait out.
        p.heard(at: last + 60_000)
        #expect(p.decide(at: last + 60_001) == .split)
    }

    @Test func deadWithoutLocalModelDrops() {
        var p = policy(local: false)
        #expect(p.record(.sendFailed, epoch: p.epoch, at: Self.t0) == .sendFailed)
        #expect(p.decide(at: Self.t0 + 1) == .drop(.edgeDownNoLocal))
    }

    @Test func disconnectAndFailedSendAreDeadUntilHeard() {
        var p = policy()
        p.heard(at: Self.t0 + 100)
        p.brokerLeft(at: Self.t0 + 200)
        #expect(p.edgeState(at: Self.t0 + 200) == .dead)
        #expect(p.decide(at: Self.t0 + 300) == .local)
        p.heard(at: Self.t0 + 400)
        #expect(p.edgeState(at: Self.t0 + 400) == .healthy)
        // A failed send (no broker connected): dead, and back as soon as the broker answers.
        #expect(p.record(.sendFailed, epoch: p.epoch, at: Self.t0 + 500) == .sendFailed)
        #expect(p.edgeState(at: Self.t0 + 500) == .dead)
        #expect(p.decide(at: Self.t0 + 10_000) == .local)
        p.heard(at: Self.t0 + 10_500)
        #expect(p.decide(at: Self.t0 + 10_501) == .split)
        // A dead edge does not cost share: it is not congestion.
        #expect(p.share == 1)
    }

    @Test func unsupportedVersionStopsUsingTheEdge() {
        var p = policy()
        #expect(p.record(.error(.unsupportedVersion), epoch: 0, at: Self.t0) == .rejected)
        #expect(p.edgeState(at: Self.t0 + 1) == .incompatible)
        p.record(.result(latencyMilliseconds: 1, budgetMilliseconds: 100), epoch: p.epoch, at: Self.t0 + 2)
        #expect(p.decide(at: Self.t0 + 3) == .local)
    }

    @Test func busyLowersTheShareOncePerRoundOfFramesInFlight() {
        var p = policy()
        let sent = p.epoch
        // Three frames that were in flight together are answered BUSY: one signal, not three.
        for i in 0..<3 { #expect(p.record(.error(.busy, retryAfterMilliseconds: 2000), epoch: sent, at: Self.t0 + UInt64(i)) == .busy) }
        let d = p.configuration.shareDecrease
        #expect(p.share == d)
        #expect(p.edgeState(at: Self.t0 + 10) == .congested(share: d))
        // A frame sent after the signal counts again.
        p.record(.error(.expired), epoch: p.epoch, at: Self.t0 + 20)
        #expect(abs(p.share - d * d) < 1e-9)
        // The retry hint is not a pause: frames still go to the edge, at the share (and a probe).
        var edge = 0
        for i in 0..<100 where p.decide(at: Self.t0 + 30 + UInt64(i)) == .split { edge += 1 }
        let expected = Int(100 * d * d)
        #expect((expected - 1)...(expected + 3) ~= edge, "\(edge) of 100 at share \(d * d)")
    }

    @Test func congestedEdgeIsProbedAtLeastEverySecond() {
        var p = policy()
        // Every edge frame times out: the share falls to its minimum...
        var now = Self.t0
        let edge = drive(&p, from: now, to: now + 20_000, every: 33, answer: .timedOut)
        now += 20_000
        #expect(p.share < 0.02)
        // ...but at 30 frames/s the edge still sees at least one frame every second.
        #expect(edge >= 20)
        var lastEdge = now
        for i in 0..<300 {
            let t = now + UInt64(i) * 33
            p.heard(at: t)
            if p.decide(at: t) == .split {
                #expect(t - lastEdge <= 1000 + 33)
                lastEdge = t
                p.record(.timedOut, epoch: p.epoch, at: t)
            }
        }
        #expect(p.stateChanges == 1)  // healthy -> congested, and it stayed there
    }

    @Test func camerasReturnWithinThreeSecondsOfCapacityComingBack() {
        var p = policy()
        var now = Self.t0
        _ = drive(&p, from: now, to: now + 10_000, every: 50, answer: .error(.busy, retryAfterMilliseconds: 5000))
        now += 10_000
        #expect(p.share < 0.05)
        // Capacity is back: every edge frame is answered in time from now on. Within 3 s every
        // frame goes to the edge again; the state reads healthy 10 s after the last signal.
        _ = drive(&p, from: now, to: now + 3000, every: 50)
        #expect(p.share == 1)
        #expect(p.decide(at: now + 3000) == .split)
        _ = drive(&p, from: now + 3000, to: now + 11_000, every: 50)
        #expect(p.edgeState(at: now + 11_000) == .healthy)
    }

    @Test func lateResultIsCongestionAndTimelyOneIsNot() {
        var p = policy()
        p.record(.result(latencyMilliseconds: 150, budgetMilliseconds: 200), epoch: p.epoch, at: Self.t0)
        #expect(p.share == 1)
        // Past 95 % of the budget: late.
        p.record(.result(latencyMilliseconds: 195, budgetMilliseconds: 200), epoch: p.epoch, at: Self.t0 + 1)
        #expect(p.share == p.configuration.shareDecrease)
    }

    @Test func timeoutFallsBackLocallyEvenPastTheDeadline() {
        var p = policy()
        p.recordLocalCompute(milliseconds: 40)
        #expect(p.record(.timedOut, epoch: p.epoch, at: Self.t0) == .timeout)
        // A camera with the whole model never drops a frame the edge failed: late beats nothing.
        #expect(p.fallback(after: .timeout) == .local)
        #expect(policy(local: false).fallback(after: .timeout) == .drop(.timeout))
    }

    @Test func noWorkerYetIsStartingNotDead() {
        var p = policy()
        #expect(p.decide(at: Self.t0) == .split)
        #expect(p.record(.error(.unknownModel), epoch: p.epoch, at: Self.t0 + 1) == .noWorker)
        #expect(p.edgeState(at: Self.t0 + 2) == .starting)
        // Local, with a probe every 250 ms.
        var edgeTimes: [UInt64] = []
        for t in stride(from: Self.t0 + 10, to: Self.t0 + 2000, by: 10) {
            p.heard(at: t)
            if p.decide(at: t) == .split {
                edgeTimes.append(t)
                p.record(.error(.unknownModel), epoch: p.epoch, at: t)
            }
        }
        #expect((7...8).contains(edgeTimes.count))
        for (a, b) in zip(edgeTimes, edgeTimes.dropFirst()) { #expect(b - a == 250) }
        #expect(p.share == 1)  // no worker is not congestion
        // The first RESULT: healthy, every frame to the edge.
        p.record(.result(latencyMilliseconds: 5, budgetMilliseconds: 200), epoch: p.epoch, at: Self.t0 + 2100)
        #expect(p.edgeState(at: Self.t0 + 2100) == .healthy)
        #expect(p.decide(at: Self.t0 + 2101) == .split)
        #expect(p.decide(at: Self.t0 + 2102) == .split)
    }

    @Test func cameraWithoutLocalModelKeepsOffering() {
        var p = policy(local: false)
        p.record(.error(.unknownModel), epoch: p.epoch, at: Self.t0)
        #expect(p.decide(at: Self.t0 + 1) == .split)
        for i in 0..<20 { p.record(.error(.busy), epoch: p.epoch, at: Self.t0 + 2 + UInt64(i)) }
        // Congested, yet every frame is offered: the broker's fairness sheds, the edge stays full.
        for i in 0..<10 { #expect(p.decide(at: Self.t0 + 100 + UInt64(i)) == .split) }
    }

    @Test func workerLostChangesNothing() {
        var p = policy()
        #expect(p.record(.error(.workerLost), epoch: p.epoch, at: Self.t0) == .workerLost)
        #expect(p.share == 1)
        #expect(p.edgeState(at: Self.t0 + 1) == .healthy)
    }

    func directive(
        _ s: UInt64, _ target: DirectiveMessage.Target, _ mode: DirectiveMessage.Mode, until: UInt64, share: Double? = nil
    ) -> DirectiveMessage {
        DirectiveMessage(sequence: s, target: target, mode: mode, reason: "test", validUntil: until, edgeShare: share)
    }

    @Test func directiveByCameraID() {
        var p = policy(id: "cam-7")
        let applied1 = p.apply(directive(1, .cameras(["cam-1", "cam-7"]), .local, until: Self.t0 + 1000), at: Self.t0)
        #expect(applied1)
        #expect(p.decide(at: Self.t0 + 10) == .local)
        // Lapses at validUntil: back to the camera's own choice.
        #expect(p.decide(at: Self.t0 + 1000) == .split)
        var other = policy(id: "cam-8")
        let applied2 = other.apply(directive(1, .cameras(["cam-7"]), .local, until: Self.t0 + 1000), at: Self.t0)
        #expect(!applied2)
        #expect(other.decide(at: Self.t0 + 10) == .split)
    }

    @Test func directiveSequenceMustIncrease() {
        var p = policy()
        let applied3 = p.apply(directive(5, .cameras(["cam-1"]), .local, until: Self.t0 + 5000), at: Self.t0)
        #expect(applied3)
        let applied4 = p.apply(directive(5, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0)
        #expect(!applied4)
        let applied5 = p.apply(directive(4, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0)
        #expect(!applied5)
        #expect(p.decide(at: Self.t0 + 1) == .local)
        let applied6 = p.apply(directive(6, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0 + 2)
        #expect(applied6)
        #expect(p.decide(at: Self.t0 + 3) == .split)
    }

    /// The controller re-publishes the directive in force every second with the same `s` and a
    /// renewed `vu`: it stays in force as long as that goes on (it lapsed 5 s after its first
    /// publication before), and lapses 5 s after the last one.
    @Test func aRepublishedDirectiveStaysInForce() {
        var p = policy()
        let first = p.apply(directive(7, .fraction(1), .local, until: Self.t0 + 5000), at: Self.t0)
        #expect(first)
        for second in 1...20 {
            let now = Self.t0 + UInt64(second) * 1000
            let renewed = p.apply(directive(7, .fraction(1), .local, until: now + 5000), at: now)
            #expect(!renewed, "a re-publication is not a new directive")
            #expect(p.obeysLocalDirective(at: now + 1), "lapsed at \(second) s")
        }
        #expect(p.obeysLocalDirective(at: Self.t0 + 24_000))
        #expect(!p.obeysLocalDirective(at: Self.t0 + 25_001), "5 s after the last publication it lapses")
    }

    @Test func directiveEdgeShareCapsEveryCameraAlike() {
        var cameras = (0..<8).map { policy(id: "cam-\($0)") }
        var edge = Array(repeating: 0, count: cameras.count)
        for i in cameras.indices {
            cameras[i].apply(directive(1, .fraction(1), .split, until: Self.t0 + 100_000, share: 0.4), at: Self.t0)
            for f in 0..<100 where cameras[i].decide(at: Self.t0 + 1 + UInt64(f)) == .split { edge[i] += 1 }
        }
        // Every camera sends 40% of its frames: no camera is starved while others are served.
        for n in edge { #expect((39...41).contains(n)) }
        #expect(cameras[0].effectiveShare(at: Self.t0 + 200) == 0.4)
        // The camera's own lower share wins over a higher cap.
        for i in 0..<8 { cameras[0].record(.error(.busy), epoch: cameras[0].epoch, at: Self.t0 + 300 + UInt64(i)) }  // 0.85^8 < 0.4
        #expect(cameras[0].effectiveShare(at: Self.t0 + 303) < 0.4)
        // A newer directive without a share lifts the cap.
        cameras[1].apply(directive(2, .fraction(1), .split, until: Self.t0 + 100_000), at: Self.t0 + 400)
        #expect(cameras[1].effectiveShare(at: Self.t0 + 401) == 1)
    }

    @Test func directiveLocalIsIgnoredWithoutLocalModel() {
        var p = policy(local: false)
        p.apply(directive(1, .fraction(1), .local, until: Self.t0 + 10_000), at: Self.t0)
        #expect(p.decide(at: Self.t0 + 10) == .split)
    }

    @Test func directiveByFractionFollowsTheFleetPosition() {
        let ids = (0..<400).map { "cam-\($0)" }
        var policies = ids.map { policy(id: $0) }
        for i in policies.indices {
            policies[i].apply(directive(1, .fraction(0.25), .local, until: Self.t0 + 10_000), at: Self.t0)
        }
        var local: [Int] = []
        for i in policies.indices where policies[i].decide(at: Self.t0 + 1) == .local { local.append(i) }
        for i in policies.indices {
            #expect(local.contains(i) == (DirectiveMessage.fleetPosition(of: ids[i]) < 0.25))
        }
        #expect((60...140).contains(local.count))
        // Staged recovery: a newer, smaller fraction releases the cameras it no longer names.
        for i in policies.indices {
            policies[i].apply(directive(2, .fraction(0.1), .local, until: Self.t0 + 10_000), at: Self.t0 + 2)
        }
        var stillLocal: [Int] = []
        for i in policies.indices where policies[i].decide(at: Self.t0 + 3) == .local { stillLocal.append(i) }
        #expect(Set(stillLocal).isSubset(of: Set(local)))
    }

    @Test func edgeDeadlineLeavesTimeToComputeLocally() {
        var p = policy()
        // No estimate yet: the whole budget.
        #expect(p.edgeDeadline(start: Self.t0, deadline: Self.t0 + 200) == Self.t0 + 200)
        p.recordLocalCompute(milliseconds: 40)
        #expect(p.edgeDeadline(start: Self.t0, deadline: Self.t0 + 200) == Self.t0 + 160)
        // A local model slower than half the budget could not be in time anyway: the edge gets it all.
        p.recordLocalCompute(milliseconds: 10_000)
        #expect(p.edgeDeadline(start: Self.t0, deadline: Self.t0 + 200) == Self.t0 + 200)
        // Without a local model: the deadline itself.
        #expect(policy(local: false).edgeDeadline(start: Self.t0, deadline: Self.t0 + 200) == Self.t0 + 200)
    }
}

@Suite struct CameraLocalCapacityTests {
    static let t0: UInt64 = 1_700_000_000_000

    /// A camera at 5 frames/s (200 ms apart) whose whole model takes 400 ms can compute at most
    /// half its frames itself: its share of the edge never falls below 1 − 0.9 × 0.5 = 0.55,
    /// whatever the edge says or a directive caps.
    @Test func shareNeverFallsBelowWhatTheCameraCannotComputeItself() {
        var p = CameraPolicy(.init(cameraID: "cam-1", framePeriodMilliseconds: 200), now: Self.t0)
        p.recordLocalCompute(milliseconds: 400)
        #expect(abs(p.localCapacityFloor - 0.55) < 1e-9)
        for i in 0..<20 { p.record(.error(.busy), epoch: p.epoch, at: Self.t0 + UInt64(i)) }
        #expect(abs(p.share - 0.55) < 1e-9)
        let message = DirectiveMessage(sequence: 1, target: .fraction(1), mode: .split, reason: "t", validUntil: Self.t0 + 10_000, edgeShare: 0.1)
        p.apply(message, at: Self.t0 + 100)
        #expect(abs(p.effectiveShare(at: Self.t0 + 101) - 0.55) < 1e-9)
        // A controller's edge floor lifts the share above the camera's own (never above 1).
        let floor = DirectiveMessage(sequence: 2, target: .fraction(1), mode: .split, reason: "room", validUntil: Self.t0 + 10_000, edgeFloor: 0.9)
        p.apply(floor, at: Self.t0 + 200)
        #expect(abs(p.effectiveShare(at: Self.t0 + 201) - 0.9) < 1e-9)
        #expect(abs(p.share - 0.55) < 1e-9, "the camera's own share is unchanged")
        #expect(p.effectiveShare(at: Self.t0 + 10_001) == p.share, "a lapsed floor no longer counts")
        // A fast local model: no floor.
        var q = CameraPolicy(.init(cameraID: "cam-2", framePeriodMilliseconds: 200), now: Self.t0)
        q.recordLocalCompute(milliseconds: 20)
        #expect(q.localCapacityFloor == 0)
    }
}
