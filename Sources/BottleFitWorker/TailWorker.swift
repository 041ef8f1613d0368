import BottleFitProtocol
import Dispatch
import Logging
import Synchronization
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A tail worker: connects a DEALER to the broker's backend, announces its models and credit
/// (READY), and answers FRAMEs with RESULTs computed by decoder + tail (or the full model for
/// JPEG frames), batching the frames it holds (dynamic micro-batching).
///
/// The loop runs on one dedicated thread that owns the socket and the engine sessions;
/// `stop()` may be called from any thread (or a SIGTERM handler) and is noticed within one
/// `pollTimeout`. Wire behaviour follows docs/protocol.md: RESULT scores are softmax
/// probabilities, and `qm` is the time from receipt to the start of the frame's batch.
///
/// ```swift
/// let worker = TailWorker(configuration: configuration, context: try ZMQContext(), logger: logger)
/// try worker.start()      // models loaded, socket connecting, READY on its way
/// // ... on SIGTERM:
/// worker.stop()           // answers what it holds, then DISCONNECT
/// worker.waitUntilStopped()
/// ```
public final class TailWorker: Sendable {
    /// What this worker serves and how.
    public let configuration: WorkerConfiguration
    private let context: ZMQContext
    private let logger: Logger
    private let shared = SharedState()

    /// A worker that will serve with `configuration` on a socket of `context` once started.
    /// It logs through `logger` and never configures logging itself.
    public init(configuration: WorkerConfiguration, context: ZMQContext, logger: Logger) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
    }

    deinit {
        // The thread holds only `shared`, not the worker: dropping the worker stops the loop.
        shared.stopRequested.store(true, ordering: .releasing)
    }

    /// Loads the models and connects on a new thread. Returns once that is done, or throws why
    /// the worker cannot run. READY goes out as soon as the broker is reachable: a worker may
    /// start before its broker.
    public func start() throws(WorkerError) {
        let problems = configuration.problems
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        guard shared.state.withLock({ state in
            defer { state.started = true }
            return !state.started
        }) else { throw .alreadyStarted }
        let started = DispatchSemaphore(value: 0)
        let (configuration, context, logger, shared) = (self.configuration, self.context, self.logger, self.shared)
        SocketThread.spawn(name: "bf-worker") {
            defer { shared.exited.signal() }
            let loop: WorkerLoop
            do throws(WorkerError) {
                loop = try WorkerLoop(configuration: configuration, context: context, logger: logger)
            } catch {
                shared.state.withLock { $0.startError = error }
                started.signal()
                return
            }
            shared.state.withLock { $0.running = true }
            started.signal()
            loop.run(
                shouldStop: { shared.stopRequested.load(ordering: .acquiring) },
                report: { counters in shared.state.withLock { $0.counters = counters } })
        }
        started.wait()
        if let error = shared.state.withLock({ $0.startError }) { throw error }
    }

    /// Asks the worker to stop: it takes no more credit, answers the frames it holds, sends
    /// DISCONNECT and closes its socket. Returns at once; see `waitUntilStopped`.
    public func stop() {
        shared.stopRequested.store(true, ordering: .releasing)
    }

    /// Blocks until the loop has drained and closed its socket, or `timeout` passes; returns
    /// whether it stopped. Returns true at once if the worker never ran. Not for Swift's cooperative pool.
    @discardableResult
    public func waitUntilStopped(timeout: Duration? = nil) -> Bool {
        guard shared.state.withLock({ $0.running }) else { return true }
        let stopped: Bool
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            stopped = shared.exited.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success
        } else {
            shared.exited.wait()
            stopped = true
        }
        // Let any other waiter through too.
        if stopped { shared.exited.signal() }
        return stopped
    }

    /// The counters as of the loop's last turn (at most about one `pollTimeout` old while it runs).
    public var counters: WorkerCounters { shared.state.withLock { $0.counters } }
}

/// What the loop thread and callers share: the stop flag and the reported counters. No socket.
private final class SharedState: Sendable {
    struct State {
        var started = false
        var running = false
        var startError: WorkerError?
        var counters = WorkerCounters()
    }

    let stopRequested = Atomic<Bool>(false)
    let state = Mutex(State())
    /// Signalled once when the loop thread ends.
    let exited = DispatchSemaphore(value: 0)
}

