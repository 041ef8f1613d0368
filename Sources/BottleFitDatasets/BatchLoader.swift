import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One epoch of batches over a `LabelledImageSource`, prepared on background threads while
/// the caller trains on the previous batch.
///
/// **Determinism.** The order of the samples is a permutation that depends only on
/// `(seed, epoch)`; each sample's augmentation draws from its own generator seeded by
/// `(seed, epoch, dataset index)` (see `DataRandomness`). Every batch is therefore the same
/// whatever the number of workers or the timing of the threads, and different epochs see
/// different orders and augmentations.
///
/// **Overlap.** `workers` threads build batches in order, at most `prefetch` batches ahead
/// of the consumer (default 2: while the caller works on batch n, batches n+1 and n+2 are
/// built), so memory stays bounded and decoding runs alongside training.
///
/// **Skipping.** A sample whose image cannot be produced (a corrupt JPEG, an unreadable
/// file) is left out of its batch, which is then smaller, and recorded in
/// `skippedSamples`; it never stops the epoch.
///
/// **Stopping.** `cancel()`, or releasing the loader, stops the workers within one sample
/// and joins them; `next()` then returns nil. Reaching the end of the epoch joins them too.
///
/// `next()` and `cancel()` may be called from any thread.
public final class BatchLoader: Sequence, IteratorProtocol, @unchecked Sendable {
    public let batchSize: Int
    public let seed: UInt64
    public let epoch: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let prefetch: Int
    public let workers: Int
    /// `[channels, height, width]` of every sample.
    public let sampleShape: [Int]
    /// Batches in this epoch, counting those that might lose samples to skipping.
    public let batchCount: Int
    /// The source's samples in this epoch's order.
    public var order: [Int] { queue.plan.order }

    private let queue: PrefetchQueue
    private let threadLock = NSLock()
    /// Guarded by `threadLock`; emptied by the first call that joins them.
    private var threads: [pthread_t] = []

    /// A training epoch: shuffled (unless `shuffle` is false), augmented by `transform`.
    ///
    /// - Parameters:
    ///   - transform: must give every sample one size: `transform.outputSize(for:
    ///     source.imageSize)` may not be nil (an `ImageFolder` needs a cropping step).
    ///   - dropLast: leave out the last batch when it would be smaller than `batchSize`.
    ///   - prefetch: batches built ahead of the consumer, at least 1.
    ///   - workers: threads building batches, 1...64.
    public init(
        source: any LabelledImageSource, transform: TransformPipeline, batchSize: Int, seed: UInt64 = 0,
        epoch: Int = 0, shuffle: Bool = true, dropLast: Bool = false, prefetch: Int = 2, workers: Int = 1
    ) throws(DatasetError) {
        guard batchSize >= 1 else { throw .invalidConfiguration("batch size must be at least 1, not \(batchSize)") }
        guard prefetch >= 1 else { throw .invalidConfiguration("prefetch must be at least 1 batch, not \(prefetch)") }
        guard (1...64).contains(workers) else { throw .invalidConfiguration("workers must be in 1...64, not \(workers)") }
        guard epoch >= 0 else { throw .invalidConfiguration("epoch must not be negative, not \(epoch)") }
        guard let size = transform.outputSize(for: source.imageSize) else {
            throw .invalidConfiguration("the images of this source vary in size: the transform needs a step that fixes it (a crop)")
        }
        let count = source.count
        let sampleCount = dropLast ? count / batchSize * batchSize : count
        let batchCount = (sampleCount + batchSize - 1) / batchSize
        let order = shuffle ? DataRandomness.permutation(count: count, seed: seed, epoch: epoch) : Array(0..<count)
        let sampleShape = [transform.normalize.channels, size.height, size.width]
        let plan = EpochPlan(
            source: source, transform: transform, order: order, batchSize: batchSize, sampleCount: sampleCount,
            seed: seed, epoch: epoch, sampleShape: sampleShape, batchCount: batchCount)
        self.batchSize = batchSize
        self.seed = seed
        self.epoch = epoch
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.workers = workers
        self.sampleShape = sampleShape
        self.batchCount = batchCount
        self.queue = PrefetchQueue(plan: plan, depth: prefetch)
        for _ in 0..<Swift.min(workers, batchCount) { threads.append(Self.startThread(queue)) }
    }

    /// An evaluation pass: every sample once in index order, the last partial batch kept,
    /// and a transform without random steps (no augmentation).
    public static func evaluation(
        source: any LabelledImageSource, transform: TransformPipeline, batchSize: Int, prefetch: Int = 2, workers: Int = 1
    ) throws(DatasetError) -> BatchLoader {
        if let random = transform.steps.first(where: \.isRandom) {
            throw .invalidConfiguration("evaluation takes no augmentation, but \(type(of: random)) is random")
        }
        return try BatchLoader(
            source: source, transform: transform, batchSize: batchSize, shuffle: false, dropLast: false,
            prefetch: prefetch, workers: workers)
    }

    deinit { cancel() }

    /// The next batch, waiting for it if the workers have not finished it; nil at the end
    /// of the epoch or after `cancel()`.
    public func next() -> Batch? {
        if let batch = queue.take() { return batch }
        joinThreads()
        return nil
    }

    /// Stops the workers (within one sample each) and waits for them to exit. Idempotent.
    public func cancel() {
        queue.cancel()
        joinThreads()
    }

    /// Samples skipped so far in the batches `next()` has returned, in epoch order.
    public var skippedSamples: [SkippedSample] { queue.skippedSamples }
    /// How many samples were skipped so far.
    public var skipped: Int { skippedSamples.count }

    private func joinThreads() {
        threadLock.lock()
        let running = threads
        threads = []
        threadLock.unlock()
        for thread in running { pthread_join(thread, nil) }
    }

    /// A joinable POSIX thread running the queue's worker loop. The corresponding C
    /// function is `pthread_create`.
    private static func startThread(_ queue: PrefetchQueue) -> pthread_t {
        let context = Unmanaged.passRetained(queue).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<PrefetchQueue>.fromOpaque(raw).takeRetainedValue().runWorker()
            return nil
        }, context)
        precondition(rc == 0, "cannot start a batch loader thread (pthread_create returned \(rc))")
        #if canImport(Darwin)
        return thread!
        #else
        return thread
        #endif
    }
}
