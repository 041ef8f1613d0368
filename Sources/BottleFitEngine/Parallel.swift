import CBottleFitCPUHints
import Glibc
import Synchronization

/// The threads of a compute context: the caller plus `threads - 1` persistent workers
/// (`WorkerPool`), or the caller alone. A plan's kernels get it when they execute.
///
/// OpenBLAS runs single-threaded inside each part; the engine splits GEMMs, im2col and
/// pointwise loops itself, so exactly one thread runs per core and nobody spins against
/// OpenBLAS's own pool. Idle workers spin for about 100 µs with x86 `pause` (a kernel
/// follows another within microseconds; `pause` leaves a sibling hardware thread its issue
/// slots) and then sleep on a condition variable.
struct Parallel: Sendable {
    let pool: WorkerPool?

    /// The caller alone.
    static let serial = Parallel(pool: nil)

    var threads: Int { pool?.participants ?? 1 }

    /// Runs `body(range)` over disjoint contiguous ranges covering 0..<count, one per thread.
    func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = Swift.min(threads, count / Swift.max(minimumPerThread, 1))
        guard t > 1, let pool else {
            body(0..<count)
            return
        }
        pool.run(parts: t) { i in body(count * i / t..<count * (i + 1) / t) }
    }

    /// Runs `body(part)` for part in 0..<threads, one per thread.
    func forEachThread(_ body: (Int) -> Void) {
        guard let pool else {
            body(0)
            return
        }
        pool.run(parts: pool.participants, body)
    }
}

/// A fixed set of worker threads that run one parallel job at a time.
final class WorkerPool: @unchecked Sendable {
    let participants: Int
    private let epoch = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// Held while a job runs; a second caller (another thread, or a nested loop) runs inline.
    private let busy = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Written by the caller before `epoch` is released, read by workers after acquiring it.
    nonisolated(unsafe) private var job: ((Int) -> Void)? = nil
    nonisolated(unsafe) private var jobParts = 0
    private var threads: [pthread_t] = []

    init(participants: Int) {
        self.participants = participants
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 1..<participants {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let ctx = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                ctx.pool.workerLoop(index: ctx.index)
                return nil
            }, context)
            precondition(rc == 0, "cannot start an engine thread (pthread_create returned \(rc))")
            threads.append(thread)
        }
    }

    private final class WorkerContext {
        let pool: WorkerPool
        let index: Int
        init(pool: WorkerPool, index: Int) {
            self.pool = pool
            self.index = index
        }
    }

    /// Runs parts 0..<parts: part 0 on the caller, the rest on workers; returns when all are done.
    func run(parts: Int, _ body: (Int) -> Void) {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<parts { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            jobParts = parts
            pending.store(participants - 1, ordering: .relaxed)
            epoch.add(1, ordering: .releasing)
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
            escapable(0)
            while pending.load(ordering: .acquiring) > 0 { bottlefit_spin_pause() }
            job = nil
        }
    }

    private func workerLoop(index: Int) {
        // Epoch 0 is the pool's start: a job posted before this thread first runs is still seen.
        var seen = 0
        while true {
            var spins = 0
            var spinStart = timespec()
            clock_gettime(CLOCK_MONOTONIC, &spinStart)
            while epoch.load(ordering: .acquiring) == seen {
                bottlefit_spin_pause()
                spins += 1
                // Spin for about 100 µs (the next kernel usually comes within microseconds),
                // checking the clock every 256 pauses, then sleep.
                if spins & 255 != 0 || Self.microseconds(since: spinStart) < 100 { continue }
                pthread_mutex_lock(mutex)
                while epoch.load(ordering: .acquiring) == seen && !stopping.load(ordering: .relaxed) {
                    pthread_cond_wait(condition, mutex)
                }
                pthread_mutex_unlock(mutex)
                break
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = epoch.load(ordering: .acquiring)
            if index < jobParts, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    private static func microseconds(since start: timespec) -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return (now.tv_sec - start.tv_sec) * 1_000_000 + (now.tv_nsec - start.tv_nsec) / 1000
    }

    /// Waits for a running job, stops and joins the workers. The pool stays "busy" for ever,
    /// so anyone still holding it runs inline.
    func shutdown() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {}
        stopping.store(true, ordering: .releasing)
        epoch.add(1, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        threads = []
    }
}
