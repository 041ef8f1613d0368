import BottleFitDevice
import BottleFitProtocol
import Testing

/// The camera's decisions, driven by made-up times (Unix ms) and events: no sockets, no clock.
@Suite struct CameraPolicyTests {
    static let t0: UInt64 = 1_700_000_000_000

    func policy(
        _ mode: CameraMode = .split, id: String = "cam-1", local: Bool = true, backoff: UInt64 = 500, maxBackoff: UInt64 = 4000
    ) -> CameraPolicy {
        CameraPolicy(
            .init(cameraID: id, mode: mode, canComputeLocally: local, heartbeatIntervalMilliseconds: 1000,
                  liveness: 3, initialBackoffMilliseconds: backoff, maxBackoffMilliseconds: maxBackoff),
            now: Self.t0)
    }

    @Test func configuredModes() {
        var split = policy(.split)
        var local = policy(.local)
        var offload = policy(.offload)
        let r1 = split.decide(at: Self.t0)
        #expect(r1 == .split)
        let r2 = local.decide(at: Self.t0)
        #expect(r2 == .local)
        let r3 = offload.decide(at: Self.t0)
        #expect(r3 == .offload)
        // A local camera stays local whatever the edge does.
        local.edgeBusy(retryAfterMilliseconds: 100, epoch: 0, at: Self.t0)
        let r4 = local.decide(at: Self.t0 + 10_000)
        #expect(r4 == .local)
    }

    @Test func silenceFallsBackWithinThreeHeartbeats() {
        var p = policy()
        // Heard every second: stays on the edge.
        for beat in 1...5 {
            p.heard(at: Self.t0 + UInt64(beat) * 1000)
            let r5 = p.decide(at: Self.t0 + UInt64(beat) * 1000 + 500)
            #expect(r5 == .split)
        }
        let last = Self.t0 + 5000
        let r6 = p.decide(at: last + 2999)
        #expect(r6 == .split)
        #expect(p.edgeState(at: last + 3000) == .silent)
        let r7 = p.decide(at: last + 3000)
        #expect(r7 == .local)
        let r8 = p.decide(at: last + 60_000)
        #expect(r8 == .local)
        // Anything heard ends the silence.
        p.heard(at: last + 60_000)
        let r9 = p.decide(at: last + 60_001)
        #expect(r9 == .split)
    }

    @Test func brokerDisconnectCountsAsSilenceAtOnce() {
        var p = policy()
        p.heard(at: Self.t0 + 100)
        p.brokerLeft(at: Self.t0 + 200)
        #expect(p.edgeState(at: Self.t0 + 200) == .silent)
        p.heard(at: Self.t0 + 300)
        #expect(p.edgeState(at: Self.t0 + 300) == .healthy)
    }

    @Test func silenceWithoutLocalModelDrops() {
        var p = policy(local: false)
        let r10 = p.decide(at: Self.t0 + 3000) == .drop(.edgeDownNoLocal)
        #expect(r10)
    }

    @Test func busyRespectsRetryAfterThenProbesBackToSplit() {
        var p = policy(backoff: 100)
        let epoch = p.epoch
        let r11 = p.decide(at: Self.t0)
        #expect(r11 == .split)
        p.edgeBusy(retryAfterMilliseconds: 700, epoch: epoch, at: Self.t0 + 10)
        // Retry-after (700 ms) is longer than the first back-off (100 ms): it wins.
        #expect(p.edgeState(at: Self.t0 + 20) == .backingOff(until: Self.t0 + 710, cause: .busyNoLocal))
        let r12 = p.decide(at: Self.t0 + 20)
        #expect(r12 == .local)
        let r13 = p.decide(at: Self.t0 + 709)
        #expect(r13 == .local)
        // Back-off over: one probe goes to the edge, the next frames stay local until it settles.
        let r14 = p.decide(at: Self.t0 + 710)
        #expect(r14 == .split)
        let probeEpoch = p.epoch
        let r15 = p.decide(at: Self.t0 + 720)
        #expect(r15 == .local)
        p.edgeSucceeded(epoch: probeEpoch, at: Self.t0 + 740)
        #expect(p.edgeState(at: Self.t0 + 741) == .healthy)
        let r16 = p.decide(at: Self.t0 + 741)
        #expect(r16 == .split)
        #expect(p.failureStreak == 0)
    }

    @Test func busyWithoutLocalModelDrops() {
        var p = policy(local: false)
        p.edgeBusy(retryAfterMilliseconds: 200, epoch: p.epoch, at: Self.t0)
        let r17 = p.decide(at: Self.t0 + 1) == .drop(.busyNoLocal)
        #expect(r17)
        // The first back-off (500 ms) is longer than the retry-after (200 ms): it wins.
        let r18 = p.decide(at: Self.t0 + 200)
        #expect(r18 == .drop(.busyNoLocal))
        let r18b = p.decide(at: Self.t0 + 500)
        #expect(r18b == .split)
    }

    @Test func failedProbesDoubleTheBackoffUpToTheMaximum() {
        var p = policy(backoff: 500, maxBackoff: 2000)
        var now = Self.t0
        var backoffs: [UInt64] = []
        for _ in 0..<5 {
            let r19 = p.decide(at: now)
            #expect(r19 == .split)
            p.edgeMissedDeadline(epoch: p.epoch, at: now)
            guard case .backingOff(let until, _) = p.edgeState(at: now) else {
                Issue.record("expected a back-off")
                return
            }
            backoffs.append(until - now)
            now = until
            p.heard(at: now)
        }
        #expect(backoffs == [500, 1000, 2000, 2000, 2000])
    }

    @Test func aBurstOfFailuresFromOneEpochCountsOnce() {
        var p = policy(backoff: 500)
        let epoch = p.epoch
        // Eight frames were in flight together; all come back BUSY.
        for i in 0..<8 { p.edgeBusy(retryAfterMilliseconds: 100, epoch: epoch, at: Self.t0 + UInt64(i)) }
        #expect(p.failureStreak == 1)
        #expect(p.edgeState(at: Self.t0 + 10) == .backingOff(until: Self.t0 + 500, cause: .busyNoLocal))
        // A stale frame with a longer retry-after extends the back-off without escalating.
        p.edgeBusy(retryAfterMilliseconds: 900, epoch: epoch, at: Self.t0 + 20)
        #expect(p.edgeState(at: Self.t0 + 30) == .backingOff(until: Self.t0 + 920, cause: .busyNoLocal))
        #expect(p.failureStreak == 1)
        // A late success from before the failure does not end the back-off.
        p.edgeSucceeded(epoch: epoch, at: Self.t0 + 40)
        let r20 = p.decide(at: Self.t0 + 50)
        #expect(r20 == .local)
    }

    @Test func deadlineMissFallsBackAndRecovers() {
        var p = policy(backoff: 300)
        let r21 = p.decide(at: Self.t0)
        #expect(r21 == .split)
        p.edgeMissedDeadline(epoch: p.epoch, at: Self.t0 + 100)
        let r22 = p.decide(at: Self.t0 + 101)
        #expect(r22 == .local)
        p.heard(at: Self.t0 + 350)
        #expect(p.decide(at: Self.t0 + 400) == .split)  // the probe
        p.edgeSucceeded(epoch: p.epoch, at: Self.t0 + 420)
        let r23 = p.decide(at: Self.t0 + 421)
        #expect(r23 == .split)
    }

    @Test func lostProbeDoesNotBlockRecoveryForever() {
        var p = policy(backoff: 100, maxBackoff: 1000)
        p.edgeBusy(retryAfterMilliseconds: nil, epoch: p.epoch, at: Self.t0)
        #expect(p.decide(at: Self.t0 + 100) == .split)  // probe, whose outcome is never reported
        let r24 = p.decide(at: Self.t0 + 500)
        #expect(r24 == .local)
        p.heard(at: Self.t0 + 1000)
        #expect(p.decide(at: Self.t0 + 1100) == .split)  // another probe after maxBackoff
    }

    @Test func unsupportedVersionStopsUsingTheEdge() {
        var p = policy()
        p.edgeIncompatible(at: Self.t0)
        let r25 = p.decide(at: Self.t0 + 1)
        #expect(r25 == .local)
        p.edgeSucceeded(epoch: p.epoch, at: Self.t0 + 2)
        let r26 = p.decide(at: Self.t0 + 3)
        #expect(r26 == .local)
    }

    func directive(_ s: UInt64, _ target: DirectiveMessage.Target, _ mode: DirectiveMessage.Mode, until: UInt64) -> DirectiveMessage {
        DirectiveMessage(sequence: s, target: target, mode: mode, reason: "test", validUntil: until)
    }

    @Test func directiveByCameraID() {
        var p = policy(id: "cam-7")
        let r27 = p.apply(directive(1, .cameras(["cam-1", "cam-7"]), .local, until: Self.t0 + 1000), at: Self.t0)
        #expect(r27)
        let r28 = p.decide(at: Self.t0 + 10)
        #expect(r28 == .local)
        // Lapses at validUntil: back to the camera's own choice.
        let r29 = p.decide(at: Self.t0 + 1000)
        #expect(r29 == .split)
        // Not targeted: no effect.
        var other = policy(id: "cam-8")
        let r30 = other.apply(directive(1, .cameras(["cam-7"]), .local, until: Self.t0 + 1000), at: Self.t0)
        #expect(!r30)
        let r31 = other.decide(at: Self.t0 + 10)
        #expect(r31 == .split)
    }

    @Test func directiveSequenceMustIncrease() {
        var p = policy()
        let r32 = p.apply(directive(5, .cameras(["cam-1"]), .local, until: Self.t0 + 5000), at: Self.t0)
        #expect(r32)
        // The same or an older sequence is ignored (a re-publish, or a stale message).
        let r33 = p.apply(directive(5, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0)
        #expect(!r33)
        let r34 = p.apply(directive(4, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0)
        #expect(!r34)
        let r35 = p.decide(at: Self.t0 + 1)
        #expect(r35 == .local)
        // A newer split directive lifts it.
        let r36 = p.apply(directive(6, .cameras(["cam-1"]), .split, until: Self.t0 + 5000), at: Self.t0 + 2)
        #expect(r36)
        let r37 = p.decide(at: Self.t0 + 3)
        #expect(r37 == .split)
    }

    @Test func directiveSplitDoesNotOverrideBusyBackoff() {
        var p = policy()
        p.apply(directive(1, .fraction(1), .split, until: Self.t0 + 10_000), at: Self.t0)
        p.edgeBusy(retryAfterMilliseconds: 1000, epoch: p.epoch, at: Self.t0)
        let r38 = p.decide(at: Self.t0 + 10)
        #expect(r38 == .local)
    }

    @Test func directiveLocalIsIgnoredWithoutLocalModel() {
        var p = policy(local: false)
        p.apply(directive(1, .fraction(1), .local, until: Self.t0 + 10_000), at: Self.t0)
        let r39 = p.decide(at: Self.t0 + 10)
        #expect(r39 == .split)
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
        // Roughly a quarter of the fleet (binomial, 400 draws: far inside 15%...35%).
        #expect((60...140).contains(local.count))

        // Staged recovery: a newer, smaller fraction releases the cameras it no longer names,
        // and only those.
        for i in policies.indices {
            policies[i].apply(directive(2, .fraction(0.1), .local, until: Self.t0 + 10_000), at: Self.t0 + 2)
        }
        var stillLocal: [Int] = []
        for i in policies.indices where policies[i].decide(at: Self.t0 + 3) == .local { stillLocal.append(i) }
        #expect(Set(stillLocal).isSubset(of: Set(local)))
        for i in policies.indices {
            #expect(stillLocal.contains(i) == (DirectiveMessage.fleetPosition(of: ids[i]) < 0.1))
        }
    }

    @Test func localFallbackNeedsTimeBeforeTheDeadline() {
        var p = policy()
        #expect(p.fallback(after: .busy, deadline: Self.t0 + 100, at: Self.t0) == .local)
        p.recordLocalCompute(milliseconds: 40)
        #expect(p.fallback(after: .busy, deadline: Self.t0 + 100, at: Self.t0 + 60) == .local)
        #expect(p.fallback(after: .busy, deadline: Self.t0 + 100, at: Self.t0 + 61) == .drop(.busy))
        // The reply timeout leaves room for the local computation...
        #expect(p.replyTimeout(sentAt: Self.t0, deadline: Self.t0 + 100) == Self.t0 + 60)
        // ...unless there is none, or no local model: then it is the deadline.
        #expect(p.replyTimeout(sentAt: Self.t0, deadline: Self.t0 + 30) == Self.t0 + 30)
        let noLocal = policy(local: false)
        #expect(noLocal.replyTimeout(sentAt: Self.t0, deadline: Self.t0 + 100) == Self.t0 + 100)
        #expect(noLocal.fallback(after: .expired, deadline: Self.t0 + 100, at: Self.t0) == .drop(.expired))
    }

    /// A probe answered with an ERROR other than BUSY/EXPIRED must not strand the camera on
    /// local compute for a whole maximum back-off (found by the pipeline tests: after a broker
    /// restart the first probe is answered UNKNOWN_MODEL before any worker is back).
    @Test func answeredProbeIsSettled() {
        var p = policy(backoff: 500, maxBackoff: 16_000)
        p.edgeBusy(retryAfterMilliseconds: 100, epoch: 0, at: Self.t0)
        var now = Self.t0 + 600
        p.heard(at: now)
        #expect(p.decide(at: now) == .split)  // the probe
        // UNKNOWN_MODEL for the probe: a short back-off (not 16 s), then another probe.
        p.edgeRejected(epoch: 1, retry: false, at: now + 5)
        now += 10
        #expect(p.decide(at: now) == .local)
        now += 2_100
        p.heard(at: now)
        #expect(p.decide(at: now) == .split)  // probing again well before 16 s
        // WORKER_LOST for that probe: the very next frame probes again.
        p.edgeRejected(epoch: 2, retry: true, at: now + 5)
        #expect(p.decide(at: now + 10) == .split)
        p.edgeSucceeded(epoch: 2, at: now + 20)
        #expect(p.edgeState(at: now + 30) == .healthy)
    }
}
