import NIOCore

/// Runs Swift concurrency jobs on one NIO event loop: the server's tasks (Hummingbird's
/// connection handlers, its service group) prefer it, so the endpoint keeps answering while
/// Swift's cooperative pool is busy or blocked (a role's loop, a test's blocking socket).
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
