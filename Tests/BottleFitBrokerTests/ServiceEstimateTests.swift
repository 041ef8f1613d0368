@testable import BottleFitBroker
import Testing

/// The broker's expected answer time for deadline-aware dispatch: a cost per frame and model,
/// the frames already at the worker, what the one in progress has had, and the decay while quiet.
@Suite struct ServiceEstimateTests {
    let worker: [UInt8] = [1]

    func ledger() -> WorkerLedger {
        var l = WorkerLedger()
        _ = l.register(routingID: worker, workerID: "w", models: ["big", "tiny"], credit: 8, now: .zero)
        return l
    }

    @Test func costsArePerModelAndCountTheFramesAhead() {
        var l = ledger()
        // Two big frames answered 100 ms apart, one tiny frame 2 ms after the second.
        l.recordService(dispatchedAt: .zero, model: "big", of: worker, now: .milliseconds(100))
        l.recordService(dispatchedAt: .zero, model: "big", of: worker, now: .milliseconds(200))
        l.recordService(dispatchedAt: .milliseconds(150), model: "tiny", of: worker, now: .milliseconds(202))
        let now = Duration.milliseconds(202)
        // Nothing ahead: its own cost.
        #expect(abs(l.expectedService(of: worker, model: "tiny", ahead: [], now: now) - 2) < 1e-6)
        #expect(abs(l.expectedService(of: worker, model: "big", ahead: [], now: now) - 100) < 1e-6)
        // A tiny frame behind two big ones waits for them (less nothing yet done on the first).
        #expect(abs(l.expectedService(of: worker, model: "tiny", ahead: ["big", "big"], now: now) - 202) < 1e-6)
        // 50 ms into the first: 50 ms less (and the quiet-time decay of 2^-0.05).
        let later = l.expectedService(of: worker, model: "tiny", ahead: ["big", "big"], now: .milliseconds(252))
        #expect(abs(later - 152 * 0.965936) < 0.01)
        // An unknown model: no basis, so no expiry at dispatch.
        #expect(l.expectedService(of: worker, model: "other", ahead: [], now: now) == 0)
    }

    @Test func aQuietWorkerIsTriedAgain() {
        var l = ledger()
        l.recordService(dispatchedAt: .zero, model: "big", of: worker, now: .seconds(30))  // a stopped worker's 30 s
        #expect(l.expectedService(of: worker, model: "big", ahead: [], now: .seconds(30)) == 30_000)
        // Ten quiet seconds later the estimate is a thousandth of that: frames go to it again.
        #expect(l.expectedService(of: worker, model: "big", ahead: [], now: .seconds(40)) < 30)
    }
}
