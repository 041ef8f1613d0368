import BottleFitLifecycle
import BottleFitMetrics
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
        shared.service.stop()
    }

    /// Loads the models and connects on a new thread. Returns once that is done, or throws why
    /// the worker cannot run. READY goes out as soon as the broker is reachable: a worker may
    /// start before its broker.
    public func start() throws(WorkerError) {
        let problems = configuration.problems
        guard problems.isEmpty else { throw .invalidConfiguration(problems) }
        let (configuration, context, logger, shared) = (self.configuration, self.context, self.logger, self.shared)
        let service = shared.service
        let result = service.start(name: "bf-worker") { ready in
            let loop: WorkerLoop
            do throws(WorkerError) {
                loop = try WorkerLoop(configuration: configuration, context: context, logger: logger)
            } catch {
                ready(.failure(error))
                return
            }
            ready(.success(()))
            loop.run(
                shouldStop: { service.stopRequested },
                report: { counters in shared.state.withLock { $0 = counters } })
        }
        guard let result else { throw .alreadyStarted }
        try result.get()
    }

    /// Asks the worker to stop: it takes no more credit, answers the frames it holds, sends
    /// DISCONNECT and closes its socket. Returns at once; see `waitUntilStopped`.
    public func stop() { shared.service.stop() }

    /// Blocks until the loop has drained and closed its socket, or `timeout` passes; returns
    /// whether it stopped. Returns true at once if the worker never ran. Not for Swift's cooperative pool.
    @discardableResult
    public func waitUntilStopped(timeout: Duration? = nil) -> Bool { shared.service.waitUntilStopped(timeout: timeout) }

    /// The counters as of the loop's last turn (at most about one `pollTimeout` old while it runs).
    public var counters: WorkerCounters { shared.state.withLock { $0 } }

    /// The families of `/metrics`, from the counters as of the loop's last turn.
    public func metricFamilies() -> [MetricFamily] { counters.metricFamilies(workerID: configuration.workerID) }
}

/// What the loop thread and callers share: the service's lifecycle and the reported counters. No socket.
private final class SharedState: Sendable {
    let service = SocketService<Void, WorkerError>()
    let state = Mutex(WorkerCounters())
}

extension TailWorker: ThreadedRole {
    public func startServing() throws { try start() }
    public func requestStop() { stop() }
    public func waitForStop() { _ = waitUntilStopped(timeout: nil) }
}
