import Foundation
import Synchronization

/// The batches between a loader's worker threads and its consumer: workers claim batch
/// numbers in order, at most `depth` ahead of the consumer, and hand them in by number; the
/// consumer takes them strictly in order. All state is under one condition variable.
final class PrefetchQueue: @unchecked Sendable {
    let plan: EpochPlan
    let depth: Int
    /// Read without the lock between samples, so a worker stops within one sample.
    private let cancelled = Atomic<Bool>(false)
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var ready: [Int: (batch: Batch?, skipped: [SkippedSample])] = [:]
    private var nextToClaim = 0
    private var nextToTake = 0
    private var skipped: [SkippedSample] = []

    init(plan: EpochPlan, depth: Int) {
        self.plan = plan
        self.depth = depth
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// The body of each worker thread: build claimed batches until none is left or a stop.
    func runWorker() {
        while let number = claim() {
            let built = plan.build(number, isCancelled: { self.isCancelled })
            condition.lock()
            ready[number] = built
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next batch in order, waiting for it; nil at the end of the epoch or after `cancel()`.
    func take() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if isCancelled || nextToTake >= plan.batchCount { return nil }
            if let entry = ready.removeValue(forKey: nextToTake) {
                nextToTake += 1
                skipped += entry.skipped
                condition.broadcast()  // a worker may claim the next batch now
                if let batch = entry.batch { return batch }
                continue  // every sample of it was skipped
            }
            condition.wait()
        }
    }

    /// Samples skipped in the batches taken so far, in epoch order.
    var skippedSamples: [SkippedSample] {
        condition.lock()
        defer { condition.unlock() }
        return skipped
    }

    func cancel() {
        condition.lock()
        cancelled.store(true, ordering: .relaxed)
        condition.broadcast()
        condition.unlock()
    }

    private func claim() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if isCancelled || nextToClaim >= plan.batchCount { return nil }
            if nextToClaim < nextToTake + depth {
                defer { nextToClaim += 1 }
                return nextToClaim
            }
            condition.wait()
        }
    }
}
