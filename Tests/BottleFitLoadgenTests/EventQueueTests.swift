import Testing
@testable import BottleFitLoadgen

@Suite struct EventQueueTests {
    @Test func eventsComeOutInTimeThenInsertionOrder() {
        var q = EventQueue()
        var random = SystemRandomNumberGenerator()
        var times: [UInt64] = []
        for i in 0..<2000 {
            let t = UInt64.random(in: 0..<500, using: &random)
            times.append(t)
            q.push(at: t, .arrival, camera: i)
        }
        var out: [LoadgenEvent] = []
        while let e = q.popDue(now: .max) { out.append(e) }
        #expect(out.count == 2000)
        #expect(zip(out, out.dropFirst()).allSatisfy { $0.at < $1.at || ($0.at == $1.at && $0.order < $1.order) })
        #expect(q.isEmpty)
    }

    @Test func nothingIsPoppedBeforeItsTime() {
        var q = EventQueue()
        q.push(at: 100, .tick)
        #expect(q.popDue(now: 99) == nil)
        #expect(q.popDue(now: 100)?.at == 100)
    }
}
