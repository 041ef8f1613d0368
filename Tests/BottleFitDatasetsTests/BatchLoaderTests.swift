import BottleFitCore
import BottleFitImaging
import Foundation
import Synchronization
import Testing
import BottleFitTestSupport

@testable import BottleFitDatasets

/// Wraps a source, counting `image(at:)` calls (and optionally sleeping in each), so tests
/// can see how far ahead the workers run and that they stop.
final class CountingSource: LabelledImageSource, @unchecked Sendable {
    let base: LabelledImages
    let delay: Duration
    let calls = Atomic<Int>(0)
    let active = Atomic<Int>(0)
    init(_ base: LabelledImages, delay: Duration = .zero) {
        self.base = base
        self.delay = delay
    }
    var count: Int { base.count }
    var classNames: [String] { base.classNames }
    var channels: Int { base.channels }
    var imageSize: ImageSize? { base.imageSize }
    func label(at index: Int) -> Int32 { base.label(at: index) }
    func image(at index: Int) throws -> Image {
        active.add(1, ordering: .relaxed)
        defer { active.subtract(1, ordering: .relaxed) }
        calls.add(1, ordering: .relaxed)
        if delay > .zero { Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18) }
        return base.image(at: index)
    }
}

/// Fails every sample whose index is a multiple of 10, as a corrupt file would.
struct FailingSource: LabelledImageSource {
    struct Corrupt: Error {}
    let base: LabelledImages
    var count: Int { base.count }
    var classNames: [String] { base.classNames }
    var channels: Int { base.channels }
    var imageSize: ImageSize? { base.imageSize }
    func label(at index: Int) -> Int32 { base.label(at: index) }
    func image(at index: Int) throws -> Image {
        if index % 10 == 0 { throw Corrupt() }
        return base.image(at: index)
    }
}

@Suite(.blocking) struct BatchLoaderTests {
    /// The index a normalised sample came from (pixels 0 and 1 hold it, see `indexedImages`).
    static func decodedIndex(_ batch: Batch, _ k: Int) -> Int {
        let plane = batch.shape[2] * batch.shape[3]
        let p0 = batch.images[k * plane], p1 = batch.images[k * plane + 1]
        return Int((p0 * 255).rounded()) + 256 * Int((p1 * 255).rounded())
    }

    static let unit = TransformPipeline(normalize: try! Normalize(channels: 1))

    @Test func everySampleExactlyOncePerEpoch() throws {
        let source = try indexedImages(count: 103)
        for workers in [1, 3] {
            let loader = try BatchLoader(source: source, transform: Self.unit, batchSize: 16, seed: 1, epoch: 0, workers: workers)
            let batches = Array(loader)
            #expect(batches.map(\.count) == [16, 16, 16, 16, 16, 16, 7])
            #expect(batches.map(\.number) == Array(0..<7))
            let indices = batches.flatMap(\.indices)
            #expect(indices.sorted() == Array(0..<103))
            #expect(indices == loader.order && indices != Array(0..<103))
            for batch in batches {
                #expect(batch.shape == [batch.count, 1, 4, 4] && batch.images.count == batch.count * 16)
                #expect(batch.labels == batch.indices.map { Int32($0 % 10) })
                #expect((0..<batch.count).map { Self.decodedIndex(batch, $0) } == batch.indices)
            }
            #expect(loader.next() == nil && loader.skipped == 0)
        }
        // Drop-last: six full batches, 96 distinct samples.
        let dropping = try BatchLoader(source: source, transform: Self.unit, batchSize: 16, seed: 1, dropLast: true)
        let kept = Array(dropping)
        #expect(kept.map(\.count) == [16, 16, 16, 16, 16, 16] && Set(kept.flatMap(\.indices)).count == 96)
        #expect(dropping.batchCount == 6)
    }

    @Test func batchesAreTheSameWhateverTheThreadsAndDifferPerEpoch() throws {
        let source = try FashionMNISTLikeImages.make(count: 150)
        func epoch(_ epoch: Int, workers: Int, prefetch: Int, seed: UInt64 = 42) throws -> [Batch] {
            Array(try BatchLoader(
                source: source, transform: TransformPipeline.fashionMNISTTraining(), batchSize: 32, seed: seed,
                epoch: epoch, prefetch: prefetch, workers: workers))
        }
        let reference = try epoch(0, workers: 1, prefetch: 1)
        for (workers, prefetch) in [(1, 2), (2, 2), (4, 5)] {
            let again = try epoch(0, workers: workers, prefetch: prefetch)
            #expect(again.map(\.images) == reference.map(\.images), "workers \(workers), prefetch \(prefetch)")
            #expect(again.map(\.labels) == reference.map(\.labels))
        }
        let next = try epoch(1, workers: 2, prefetch: 2)
        #expect(next.flatMap(\.indices) != reference.flatMap(\.indices))
        #expect(next.map(\.images) != reference.map(\.images))
        #expect(try epoch(0, workers: 2, prefetch: 2, seed: 43).map(\.images) != reference.map(\.images))
        // The same sample is augmented differently in another epoch.
        let sample = 17
        func image(of sample: Int, in batches: [Batch]) -> ArraySlice<Float> {
            let batch = batches.first { $0.indices.contains(sample) }!
            let k = batch.indices.firstIndex(of: sample)!
            return batch.images[(k * 784)..<((k + 1) * 784)]
        }
        #expect(image(of: sample, in: reference) != image(of: sample, in: next))
        // Without shuffling, in index order.
        let ordered = Array(try BatchLoader(source: source, transform: TransformPipeline.fashionMNISTTraining(), batchSize: 32, shuffle: false))
        #expect(ordered.flatMap(\.indices) == Array(0..<150))
    }

    @Test func evaluationKeepsOrderAndTheLastBatchAndRefusesAugmentation() throws {
        let source = try indexedImages(count: 45)
        let loader = try BatchLoader.evaluation(source: source, transform: Self.unit, batchSize: 20)
        let batches = Array(loader)
        #expect(batches.map(\.count) == [20, 20, 5])
        #expect(batches.flatMap(\.indices) == Array(0..<45))
        #expect(batches[2].shape == [5, 1, 4, 4])
        let error = #expect(throws: DatasetError.self) {
            try BatchLoader.evaluation(source: source, transform: TransformPipeline.fashionMNISTTraining(), batchSize: 20)
        }
        #expect(error?.description.contains("RandomCrop") == true)
        #expect(throws: DatasetError.self) { try BatchLoader(source: source, transform: Self.unit, batchSize: 0) }
        #expect(throws: DatasetError.self) { try BatchLoader(source: source, transform: Self.unit, batchSize: 4, prefetch: 0) }
    }

    @Test func failingSamplesAreSkippedAndCounted() throws {
        let source = FailingSource(base: try indexedImages(count: 55))
        let loader = try BatchLoader(source: source, transform: Self.unit, batchSize: 10, seed: 3, workers: 2)
        var delivered: [Int] = []
        while let batch = loader.next() {
            #expect(batch.count == batch.indices.count && batch.shape[0] == batch.count && batch.images.count == batch.count * 16)
            delivered += batch.indices
        }
        #expect(delivered.sorted() == (0..<55).filter { $0 % 10 != 0 })
        #expect(loader.skipped == 6)
        #expect(loader.skippedSamples.map(\.index).sorted() == [0, 10, 20, 30, 40, 50])
        // A batch that loses every sample is not delivered at all.
        let allBad = try BatchLoader(source: FailingSource(base: try indexedImages(count: 25)), transform: Self.unit, batchSize: 1, shuffle: false)
        let survivors = Array(allBad)
        #expect(survivors.count == 22 && !survivors.map(\.number).contains(10) && allBad.skipped == 3)
    }

    /// Before the first batch is asked for, exactly `prefetch` batches are built; each batch
    /// taken lets one more be built.
    @Test func prefetchIsBoundedAndRunsAhead() async throws {
        let source = CountingSource(try indexedImages(count: 200))
        let loader = try BatchLoader(source: source, transform: Self.unit, batchSize: 10, seed: 1, prefetch: 2, workers: 2)
        try await waitUntil { source.calls.load(ordering: .relaxed) >= 20 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(source.calls.load(ordering: .relaxed) == 20)
        _ = loader.next()
        try await waitUntil { source.calls.load(ordering: .relaxed) >= 30 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(source.calls.load(ordering: .relaxed) == 30)
        loader.cancel()
    }

    /// A consumer that stops early: `cancel()` returns once the workers have exited, and a
    /// loader released mid-epoch stops its workers too.
    ///
    /// Everything that blocks runs on threads of its own and every wait is on an event, so a
    /// starved machine (or a cooperative pool blocked by other tests) only makes it slower:
    /// the sources are slow enough (tens of seconds per epoch) that no stall between two
    /// lines of this test lets the workers finish before `cancel()` reaches them.
    @Test func stoppingEarlyDoesNotHangOrLeaveWorkersRunning() throws {
        let source = CountingSource(try indexedImages(count: 2000), delay: .milliseconds(20))
        let loader = try BatchLoader(source: source, transform: Self.unit, batchSize: 50, prefetch: 3, workers: 3)
        #expect(loader.next()?.count == 50)
        loader.cancel()
        #expect(source.active.load(ordering: .relaxed) == 0)
        #expect(loader.next() == nil)
        let stoppedAt = source.calls.load(ordering: .relaxed)
        #expect(stoppedAt < 2000)
        loader.cancel()  // idempotent

        var released: BatchLoader? = try BatchLoader(source: source, transform: Self.unit, batchSize: 50, prefetch: 3, workers: 3)
        _ = released?.next()
        released = nil  // deinit cancels and joins
        #expect(source.active.load(ordering: .relaxed) == 0)
        let after = source.calls.load(ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(source.calls.load(ordering: .relaxed) == after)

        // A consumer blocked in next() on another thread is released by cancel(). The waiter
        // is a thread, not a task: a task blocked in next() would hold one of the few
        // cooperative threads the rest of the test run needs.
        let slow = CountingSource(try indexedImages(count: 100), delay: .milliseconds(500))
        let blocked = try BatchLoader(source: slow, transform: Self.unit, batchSize: 100, prefetch: 1, workers: 1)
        let answer = Mutex<Int?>(nil)
        let answered = DispatchSemaphore(value: 0)
        let waiter = Thread {
            answer.withLock { $0 = blocked.next()?.count ?? -1 }
            answered.signal()
        }
        waiter.start()
        Self.waitBlocking { slow.calls.load(ordering: .relaxed) >= 1 }  // the batch is under way
        blocked.cancel()
        #expect(answered.wait(timeout: .now() + .seconds(120)) == .success)
        #expect(answer.withLock { $0 } == -1)
        #expect(slow.calls.load(ordering: .relaxed) < 100)
    }

    /// The real Fashion-MNIST test split through the training pipeline: all 10,000 once.
    @Test func fashionMNISTTestSplitThroughTheTrainingPipeline() throws {
        let test = try FashionMNIST.load(.test)
        let loader = try BatchLoader(source: test, transform: TransformPipeline.fashionMNISTTraining(), batchSize: 256, seed: 5, workers: 2)
        var seen = [Bool](repeating: false, count: test.count)
        var batches = 0
        for batch in loader {
            #expect(batch.shape == [batch.count, 1, 28, 28])
            for (k, index) in batch.indices.enumerated() {
                #expect(!seen[index])
                seen[index] = true
                #expect(batch.labels[k] == test.labels[index])
            }
            batches += 1
        }
        #expect(batches == 40 && seen.allSatisfy { $0 })
    }

    /// Polls `condition` from the calling thread, for tests that must not depend on the
    /// cooperative pool; records an issue after 120 s.
    private static func waitBlocking(_ condition: () -> Bool) {
        let deadline = ContinuousClock.now + .seconds(120)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting")
                return
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Small 28x28 greyscale sets with structure, so crops and flips change the pixels.
enum FashionMNISTLikeImages {
    static func make(count: Int) throws -> LabelledImages {
        var pixels: [UInt8] = []
        for i in 0..<count {
            pixels += Fixtures.image(width: 28, height: 28, channels: 1, seed: UInt64(i)).pixels
        }
        return try LabelledImages(
            channels: 1, height: 28, width: 28, pixels: pixels, labels: (0..<count).map { Int32($0 % 10) },
            classNames: FashionMNIST.classNames)
    }
}
