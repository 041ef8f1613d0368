import Testing
@testable import BottleFitLoadgen

/// The worker count over a run as the report shows it: one phase per count, each with its settled throughput.
@Suite struct WorkerPhaseTests {
    func sample(_ t: Double, workers: Int, completed: Double) -> LoadgenReport.StatsSample {
        LoadgenReport.StatsSample(t: t, queueDepth: 0, q50: 0, q95: 0, q99: 0, inFlight: 0, arrivalsPerS: 20,
                                  completionsPerS: completed, dropsPerS: 0, workers: workers, utilisation: nil)
    }

    @Test func phasesFollowTheWorkerCountAndLeaveOutTheirFirstSeconds() {
        // 1 worker for 10 s at 10/s, 2 workers from 10 s (a burst of 40/s while the queue empties, then 20/s), 1 again from 20 s.
        var stats: [LoadgenReport.StatsSample] = []
        for i in 0..<40 {
            let t = Double(i) * 0.5
            stats.append(sample(t, workers: t < 10 ? 1 : 2, completed: t < 10 ? 10 : t < 11 ? 40 : 20))
        }
        stats.append(sample(20, workers: 1, completed: 10))
        let phases = LoadgenReport.workerPhases(stats, settle: 2)
        #expect(phases.map(\.workers) == [1, 2, 1])
        #expect(phases.map(\.from) == [0, 10, 20])
        #expect(phases[0].completionsPerS == 10)
        #expect(phases[1].completionsPerS == 20)
        #expect(phases[2].completionsPerS == nil)
        #expect(LoadgenReport.workerPhases([]).isEmpty)
    }
}
