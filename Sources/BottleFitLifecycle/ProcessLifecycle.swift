import Dispatch
import Logging
import ServiceLifecycle
import UnixSignals

/// How every BottleFit process runs its services: one `ServiceGroup` that shuts down gracefully on
/// SIGTERM and SIGINT (services stop in the reverse of the order given, each after the one
/// after it has returned) and is cancelled by neither signal a second time: the drain is what
/// ends the process.
public enum ProcessLifecycle {
    /// The signals that shut a process down gracefully.
    public static let stopSignals: [UnixSignal] = [.sigterm, .sigint]

    /// Runs `services` until they have all returned; throws the first failure. `signals` are the
    /// ones that start the graceful shutdown (tests use one of their own).
    public static func run(
        _ services: [ServiceGroupConfiguration.ServiceConfiguration], logger: Logger, signals: [UnixSignal] = stopSignals
    ) async throws {
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        configuration.gracefulShutdownSignals = signals
        try await ServiceGroup(configuration: configuration).run()
    }

    /// Runs a synchronous `job` on the calling thread (any thread: the group does not need
    /// Swift's cooperative pool, which the caller may be blocking) while a `ServiceGroup` on a
    /// thread of its own turns SIGTERM and SIGINT into
    /// `stop.request("signal")`, which the job polls: a training run, a load-generation run,
    /// `bottlefit up`'s supervision. The signals are trapped before `job` starts.
    public static func runBlocking<Output>(
        logger: Logger, signals: [UnixSignal] = stopSignals, stop: StopRequest = StopRequest(), _ job: (StopRequest) throws -> Output
    ) rethrows -> Output {
        let watch = SignalWatch(stop: stop)
        let ended = DispatchSemaphore(value: 0)
        // The group runs on threads of its own: this caller blocks, and may itself be a thread of
        // the cooperative pool (see `ThreadExecutor`).
        let executor = ThreadExecutor(name: "bf-signals")
        Task(executorPreference: executor) {
            try? await run([.init(service: watch)], logger: logger, signals: signals)
            ended.signal()
        }
        watch.started.wait()
        defer {
            watch.jobEnded.ready()
            ended.wait()
        }
        return try job(stop)
    }
}

/// The service of `ProcessLifecycle.runBlocking`: runs until the job has ended, and sets the job's
/// stop on graceful shutdown.
private struct SignalWatch: Service {
    let stop: StopRequest
    /// Signalled once the group runs, and so has trapped the signals.
    let started = DispatchSemaphore(value: 0)
    let jobEnded = ReadinessSignal()

    func run() async throws {
        started.signal()
        let stop = self.stop
        try? await withTaskCancellationOrGracefulShutdownHandler {
            try await jobEnded.wait()
        } onCancelOrGracefulShutdown: {
            stop.request("signal")
        }
    }
}
