import BottleFitDevice
import Testing

@Suite struct FrameAccountingTests {
    @Test func invariantHoldsThroughEveryOutcome() {
        var a = FrameAccounting()
        for _ in 0..<6 { a.recordOffered() }
        a.recordSourceSkipped(2)
        #expect(a.offered == 8)
        #expect(a.inFlight == 6)
        a.recordSent()
        a.recordCompleted(on: .edge, latencyMilliseconds: 5, top1: 3, label: 3, late: false)
        a.recordSent()
        a.recordCompleted(on: .local, latencyMilliseconds: 9, top1: 1, label: 2, late: true, fellBack: true)
        a.recordCompleted(on: .local, latencyMilliseconds: 2, top1: 1, label: nil, late: false)
        a.recordDropped(.busy)
        a.recordDropped(.expired)
        #expect(a.inFlight == 1)
        a.recordDropped(.timeout)
        #expect(a.isSettled)
        #expect(a.offered == a.completedEdge + a.completedLocal + a.droppedTotal)
        #expect(a.sent == 2 && a.fellBack == 1 && a.late == 1)
        #expect(a.dropped == [.busy: 1, .expired: 1, .timeout: 1, .sourceSkipped: 2])
        #expect(a.accuracy(.edge) == 1)
        #expect(a.accuracy(.local) == 0)
        #expect(a.latency[.local]?.count == 2)

        var fleet = FrameAccounting()
        fleet.merge(a)
        fleet.merge(a)
        #expect(fleet.offered == 16 && fleet.isSettled && fleet.dropped[.sourceSkipped] == 4)
    }

    @Test func histogramQuantilesAreWithinABucket() {
        var h = LatencyHistogram()
        for i in 1...1000 { h.record(milliseconds: Double(i) / 10) }  // 0.1 ... 100 ms
        #expect(h.count == 1000)
        #expect(h.minMilliseconds == 0.1 && h.maxMilliseconds == 100)
        let p50 = h.quantile(0.5)!
        let p99 = h.quantile(0.99)!
        #expect(abs(p50 - 50) / 50 < 0.05)
        #expect(abs(p99 - 99) / 99 < 0.05)
        #expect(h.quantile(1) == 100)
        #expect(LatencyHistogram().quantile(0.5) == nil)
    }
}
