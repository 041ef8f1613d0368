import BottleFitBroker
import BottleFitCore
import BottleFitProtocol
import Testing

/// Random event sequences: whatever happens, every frame is accounted for at every step and
/// gets exactly one answer in the end.
@Suite struct SchedulerPropertyTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func everyFrameIsAnsweredExactlyOnce(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var policy = BrokerPolicy()
        policy.queueCapacity = 16
        policy.heartbeatInterval = .milliseconds(200)
        policy.inFlightGrace = .seconds(2)
        var h = SchedulerHarness(policy: policy)
        let cameras = ["a", "b", "c", "d", "e"]
        let workers = ["w1", "w2", "w3"]
        let models = ["m1", "m2", "m3"]
        var nextSequence: [String: UInt64] = [:]
        var sent: [FrameKey] = []

        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }

        for _ in 0..<3000 {
            switch rng.next() % 100 {
            case 0..<40:
                let camera = pick(cameras)
                let sequence = nextSequence[camera, default: 0]
                nextSequence[camera] = sequence + 1
                sent.append(SchedulerHarness.key(camera, sequence))
                h.frame(camera, sequence, model: pick(models), deadlineIn: Int64(rng.next() % 1500) - 50)
            case 40..<48:
                let serves = models.filter { _ in rng.next() % 2 == 0 }
                h.ready(pick(workers), models: serves.isEmpty ? ["m1"] : serves, credit: Int(rng.next() % 4))
            case 48..<60:
                h.credit(pick(workers), Int(rng.next() % 3) + 1)
            case 60..<78:
                // A worker answers something it was sent (maybe twice, maybe not its own any more).
                let dispatched = h.history.dispatches
                if let d = dispatched.isEmpty ? nil : pick(dispatched) {
                    let worker = rng.next() % 8 == 0 ? pick(workers) : d.worker
                    h.answer(worker, d.frame, code: rng.next() % 5 == 0 ? .expired : nil)
                }
            case 78..<88:
                h.heartbeat(pick(workers))
            case 88..<90:
                h.disconnect(pick(workers))
            default:
                h.advance(rng.next() % 300)
            }
        }
        h.run { s, t in s.shutdown(now: t) }
        let c = h.counters
        #expect(c.received == sent.count)
        #expect(c.queued == 0 && c.inFlight == 0)
        #expect(c.received == c.completed + c.droppedTotal)

        // Exactly one answer per frame: an ERROR from the broker or a forwarded worker answer.
        var answers: [FrameKey: Int] = [:]
        for action in h.history {
            switch action {
            case .reply(let camera, .error(let e)):
                let key = FrameKey(cameraRoutingID: camera, cameraID: try #require(e.cameraID), sequence: try #require(e.sequence))
                answers[key, default: 0] += 1
            case .forward(let camera, let body):
                let header = try MessageHeader.peek(body)
                let key = FrameKey(cameraRoutingID: camera, cameraID: try #require(header.cameraID), sequence: try #require(header.sequence))
                answers[key, default: 0] += 1
            default:
                break
            }
        }
        #expect(answers.count == sent.count)
        #expect(answers.values.allSatisfy { $0 == 1 })
        #expect(Set(answers.keys) == Set(sent))
        // The run exercised what it is meant to.
        #expect(c.completed > 0 && c.requeued > 0 && c.dropped(.busy) > 0 && c.dropped(.expired) > 0)
        #expect(c.discarded(.lateAnswer) > 0 && c.workersLost > 0)
    }
}
