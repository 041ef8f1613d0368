import Testing
@testable import BottleFitLoadgen

@Suite struct UplinkTests {
    @Test func theTokenBucketSerialisesAtTheLinkRate() {
        // 20 Mbit/s = 2.5 bytes per µs; one MTU of burst.
        var link = UplinkEmulator(profile: UplinkProfile(name: "l", bitsPerSecond: 20e6, bucketBytes: 1500), seed: 1)
        let bottleneck = link.transmit(bytes: 10_092, at: 1_000_000)
        #expect(bottleneck.departed == 1_000_000 + 3437)  // (10,092 - 1,500) / 2.5, rounded up
        // Back to back: the next frame waits for the link and finds the bucket empty.
        let jpeg = link.transmit(bytes: 30_000, at: 1_000_000)
        #expect(jpeg.departed == bottleneck.departed + 12_000)
        // After a long pause the bucket is full again (but never more than its depth).
        let later = link.transmit(bytes: 1500, at: 10_000_000)
        #expect(later.departed == 10_000_000)
    }

    @Test func delayJitterAndLossAreAppliedWithoutReordering() {
        var link = UplinkEmulator(
            profile: UplinkProfile(name: "l", bitsPerSecond: nil, delayMilliseconds: 20, jitterMilliseconds: 10, loss: 0.25), seed: 9)
        var lost = 0
        var last: UInt64 = 0
        for i in 0..<4000 {
            let now = UInt64(i) * 1000
            let (arrival, departed) = link.transmit(bytes: 10_000, at: now)
            #expect(departed == now)  // unlimited bandwidth
            guard let arrival else { lost += 1; continue }
            #expect(arrival >= now + 20_000 && arrival <= now + 30_000 || arrival == last)
            #expect(arrival >= last)
            last = arrival
        }
        #expect(lost > 850 && lost < 1150)
    }

    @Test func profilesThatCannotBeEmulatedAreNamed() {
        #expect(UplinkProfile(name: "x", bitsPerSecond: 0).problem == "bandwidth must be at least 0.001 Mbit/s")
        #expect(UplinkProfile(name: "x", bitsPerSecond: 1e6, loss: 1).problem == "loss must be in [0, 1)")
        #expect(UplinkProfile.ideal.problem == nil)
    }
}
