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
