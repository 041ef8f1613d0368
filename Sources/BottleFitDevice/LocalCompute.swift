import BottleFitImaging
import Foundation
import Synchronization
import ZeroMQ

/// The camera's whole model on a thread of its own, so that a slow local computation never holds
/// up the camera loop: frames are still taken on schedule, edge frames still leave at once and
/// replies are still read while the model runs (docs/device.md, "Local compute").
///
/// The loop submits jobs and collects finished ones; after each job the thread sends one empty
/// message on an `inproc://` PUSH, which the loop's poller sees on its PULL (`wakeSocket`), so
/// the loop wakes as soon as a frame is done. Jobs run in submission order, one at a time.
final class LocalCompute: @unchecked Sendable {
    // @unchecked: `jobs`, `done` and `stopping` are only touched under `mutex`; `models` is used
    // by this thread for `runFull` only, while the loop thread uses it for `runHead`, which
    // shares no state with it (separate plans and buffers); the PUSH socket belongs to the thread.
    struct Job: Sendable {
        let id: UInt64
        let image: Image
    }

    struct Finished: Sendable {
        let id: UInt64
        let top1: Int
        /// Unix µs: when the model started and finished this frame.
        let startedAt: UInt64
        let finishedAt: UInt64
    }

    private let models: CameraModels
    private let clock: any CameraClock
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var done: [Finished] = []
    private var stopping = false
    private var running = false
    /// Set by `stop()`, which closes the wake socket: `collect` then reads no more from it.
    private var closed = false
    private let finished = DispatchSemaphore(value: 0)
    private let endpoint: String
    private let context: ZMQContext
    /// The loop's end of the wake-up pipe: readable when a job finished.
    let wakeSocket: ZMQSocket

    init(models: CameraModels, clock: any CameraClock, context: ZMQContext) throws(ZMQError) {
        self.models = models
        self.clock = clock
        self.context = context
        endpoint = "inproc://bottlefit-local-\(UUID().uuidString)"
        wakeSocket = try ZMQSocket(context, type: .pull, linger: 0)
        try wakeSocket.bind(endpoint)
    }

    /// Frames submitted and not yet collected by `collect()`.
    private(set) var outstanding = 0

    /// Frames waiting for the model (not counting the one it is running).
    var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count - head
    }

    /// Starts the thread (once).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !running else { return }
        running = true
        let thread = Thread { [self] in work() }
        thread.name = "camera local compute"
        thread.start()
    }

    func submit(_ job: Job) {
        start()
        outstanding += 1
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The jobs finished since the last call, in order; drains the wake-up messages.
    func collect() -> [Finished] {
        if !closed { while (try? wakeSocket.tryReceive()) != nil {} }
        condition.lock()
        let finished = done
        done.removeAll(keepingCapacity: true)
        condition.unlock()
        outstanding -= finished.count
        return finished
    }

    /// Stops after the job in progress; returns the ids of the jobs that never ran (and those
    /// finished but not collected are left for `collect`).
    func stop() -> [UInt64] {
        condition.lock()
        stopping = true
        let abandoned = jobs[head...].map(\.id)
        jobs.removeAll()
        head = 0
        let wasRunning = running
        condition.signal()
        condition.unlock()
        outstanding -= abandoned.count
        if wasRunning { finished.wait() }
        closed = true
        try? wakeSocket.close()
        return abandoned
    }

    private func work() {
        let push = try? ZMQSocket(context, type: .push, linger: 0)
        try? push?.connect(endpoint)
        defer {
            try? push?.close()
            finished.signal()
        }
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            let t0 = clock.unixMicroseconds()
            let top1 = models.runFull(job.image)
            let t1 = clock.unixMicroseconds()
            condition.lock()
            done.append(Finished(id: job.id, top1: top1, startedAt: t0, finishedAt: t1))
            condition.unlock()
            _ = try? push?.trySend([[]])
        }
    }
}
