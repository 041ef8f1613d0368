import Foundation

/// A task executor for code that blocks: each job runs on an idle thread of the executor's own, or
/// on a new thread when none is idle (up to `maxThreads`; beyond it the job waits for a thread to
/// finish its current one), so a task that blocks holds one of these threads and never one of
/// Swift's cooperative pool (which has one thread per CPU: two on the machines here). Threads idle
/// for `idleSeconds` end.
///
/// `ProcessLifecycle.runBlocking` runs its `ServiceGroup` on one, since its caller blocks and may
/// itself be a thread of the pool; the test suites run the tests that wait on processes and sockets
/// on one (`BottleFitTestSupport`'s `.blocking` trait). With every blocking caller on the pool,
/// two of them were enough to stop everything else in the process, for minutes.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var idle = 0
    private var live = 0
    private var started = 0
    private let name: String
    private let maxThreads: Int
    private let idleSeconds: Double

    /// `name` names the threads (`name-1`, `name-2`, ...); nil `maxThreads`: no bound.
    public init(name: String, maxThreads: Int? = nil, idleSeconds: Double = 5) {
        self.name = name
        self.maxThreads = max(1, maxThreads ?? .max)
        self.idleSeconds = idleSeconds
    }

    public func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        if idle > 0 || live >= maxThreads {
            condition.signal()
            condition.unlock()
            return
        }
        live += 1
        started += 1
        let number = started
        condition.unlock()
        // The thread holds the executor until it ends.
        let thread = Thread { self.work() }
        thread.name = "\(name)-\(number)"
        thread.start()
    }

    private func work() {
        condition.lock()
        while true {
            if jobs.isEmpty {
                idle += 1
                let woken = condition.wait(until: Date(timeIntervalSinceNow: idleSeconds))
                idle -= 1
                if !woken && jobs.isEmpty {
                    live -= 1
                    condition.unlock()
                    return
                }
                continue
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
            condition.lock()
        }
    }
}
