import Testing
@testable import BottleFitLoadgen

@Suite struct LoadShapeTests {
    @Test func steadyRampStepAndBurstGiveTheirRates() {
        #expect(LoadShape.steady(rate: 5).rate(at: 12) == 5)
        let ramp = LoadShape.ramp(from: 2, to: 10, over: 8)
        #expect(ramp.rate(at: 0) == 2 && ramp.rate(at: 4) == 6 && ramp.rate(at: 8) == 10 && ramp.rate(at: 100) == 10)
        let step = LoadShape.step(before: 1, at: 5, after: 9)
        #expect(step.rate(at: 4.999) == 1 && step.rate(at: 5) == 9)
        let burst = LoadShape.burst(onRate: 10, onSeconds: 2, offRate: 0, offSeconds: 3)
        #expect(burst.rate(at: 1) == 10 && burst.rate(at: 2.5) == 0 && burst.rate(at: 5.5) == 10)
        #expect(abs(burst.expectedFrames(duration: 10) - 40) < 0.1)
    }

    @Test func scheduleFilesParseAndReportTheirLine() throws {
        let points = try LoadShape.parseSchedule("# t rate\n0 1\n2, 5\n\n4 0 # off\n", path: "s.txt")
        #expect(points == [.init(at: 0, rate: 1), .init(at: 2, rate: 5), .init(at: 4, rate: 0)])
        #expect(LoadShape.schedule(points).rate(at: 3) == 5)
        #expect(LoadShape.schedule(points).rate(at: 9) == 0)
        #expect(throws: LoadgenError("s.txt:3: times must increase (1.0 after 2.0)")) {
            try LoadShape.parseSchedule("0 1\n2 5\n1 3\n", path: "s.txt")
        }
        #expect(throws: LoadgenError("s.txt:2: expected `SECONDS RATE`, found `x y`")) {
            try LoadShape.parseSchedule("0 1\nx y\n", path: "s.txt")
        }
        #expect(throws: LoadgenError.self) { try LoadShape.parseSchedule("0 0\n", path: "s.txt") }
    }

    @Test func constantArrivalsFollowTheScheduleNotTheCaller() {
        var s = ArrivalSchedule(shape: .steady(rate: 100), process: .constant, start: 0, end: 1_000_000, seed: 1)
        var t = s.first()!
        var times = [t]
        while let next = s.next(after: t) { times.append(next); t = next }
        #expect(times.count == 100)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 == 10_000 })
    }

    @Test func poissonArrivalsHaveTheMeanRate() {
        var s = ArrivalSchedule(shape: .steady(rate: 1000), process: .poisson, start: 0, end: 10_000_000, seed: 7)
        var n = 0
        var t = s.first()!
        while let next = s.next(after: t) { n += 1; t = next }
        #expect(abs(Double(n) - 10_000) < 400)  // ~4 standard deviations
    }

    @Test func jumpsAreFoundWhereTheRateChanges() {
        #expect(LoadShape.steady(rate: 5).nextJump(after: 0) == nil)
        #expect(LoadShape.ramp(from: 1, to: 5, over: 10).nextJump(after: 0) == nil)
        #expect(LoadShape.step(before: 5, at: 60, after: 1).nextJump(after: 10) == 60)
        #expect(LoadShape.step(before: 5, at: 60, after: 1).nextJump(after: 60) == nil)
        let burst = LoadShape.burst(onRate: 10, onSeconds: 2, offRate: 0, offSeconds: 3)
        #expect(burst.nextJump(after: 1) == 2 && burst.nextJump(after: 2) == 5 && burst.nextJump(after: 6.5) == 7)
        let schedule = LoadShape.schedule([.init(at: 1, rate: 4), .init(at: 3, rate: 4), .init(at: 5, rate: 2)])
        #expect(schedule.nextJump(after: 0) == 1 && schedule.nextJump(after: 1) == 5 && schedule.nextJump(after: 5) == nil)
    }

    /// Twenty constant-rate cameras stepping from 5.8 to 1.45 frames/s: after the step their
    /// arrivals spread over the new 690 ms gap instead of staying within the old 172 ms one, and
    /// each then keeps the new rate exactly.
    @Test func camerasThatStepTogetherDoNotStayBunched() {
        let shape = LoadShape.step(before: 5.8, at: 10, after: 1.45)
        var phases: [UInt64] = []
        for seed in 1...20 {
            var s = ArrivalSchedule(shape: shape, process: .constant, start: 0, end: 20_000_000, seed: UInt64(seed))
            var times: [UInt64] = []
            var t = s.first()
            while let now = t { times.append(now); t = s.next(after: now) }
            let after = times.filter { $0 >= 10_000_000 }
            #expect(times.filter { $0 < 10_000_000 }.count >= 57 && after.count >= 13, "\(times.count)")
            phases.append(after[0] - 10_000_000)
            #expect(zip(after, after.dropFirst()).allSatisfy { $1 - $0 == 689_655 }, "\(after)")
        }
        #expect(phases.allSatisfy { $0 < 689_656 })
        #expect(phases.max()! - phases.min()! > 400_000, "arrivals stayed bunched after the step: \(phases)")
    }

    @Test func burstOffPhasesOfferNothing() {
        var s = ArrivalSchedule(
            shape: .burst(onRate: 100, onSeconds: 1, offRate: 0, offSeconds: 1), process: .constant, start: 0, end: 4_000_000, seed: 3)
        var times: [UInt64] = []
        var t = s.first()
        while let now = t { times.append(now); t = s.next(after: now) }
        #expect(times.allSatisfy { ($0 / 1_000_000) % 2 == 0 || $0 % 1_000_000 < 10_000 })
        #expect(times.count >= 195 && times.count <= 205)
    }
}
