import BottleFitImaging
import BottleFitLifecycle
import BottleFitMetrics
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// What a camera did, returned when it stops.
public struct CameraSummary: Sendable {
    public var cameraID: String
    public var mode: CameraMode
    public var accounting: FrameAccounting
    /// From start to the end of the drain.
    public var elapsedSeconds: Double
}

/// One camera: a dedicated thread that owns its DEALER socket (and directive SUB) and its
/// engine sessions, takes frames from a source at the configured rate, and routes each by
/// `CameraPolicy` (split, local, offload), accounting for every frame in `FrameAccounting`.
///
/// `start()` loads the models and connects on that thread and reports failures; the thread then
/// runs until the source ends or `stop()` is called, drains the frames still at the edge
/// (each is bounded by its deadline), closes its sockets and leaves a summary. Call `stop()` (or
/// `wait()` for a finite source) before releasing it: the thread holds the camera until it ends.
public final class Camera: Sendable {
    public let configuration: CameraConfiguration
    private let context: ZMQContext
    private let clock: any CameraClock
    private let logger: Logger
    private let state = Mutex(State())
    /// The loop thread's lifecycle: start, the stop flag, the wait for its end.
    private let service = SocketService<Void, CameraError>()

    private struct State {
        var summary: CameraSummary?
        /// The loop's latest status (every 100 ms while it runs).
        var status = CameraStatus()
        /// The source until the loop thread takes it.
        var source: (any FrameSource & Sendable)?
    }

    public init(
        configuration: CameraConfiguration, source: some FrameSource & Sendable, context: ZMQContext, logger: Logger,
        clock: any CameraClock = SystemCameraClock()
    ) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
        self.clock = clock
        state.withLock { $0.source = source }
    }

    /// Starts the camera's thread and waits until it has loaded its models and made its sockets.
    public func start() throws(CameraError) {
        guard let source = state.withLock({ state in
            defer { state.source = nil }
            return state.source
        }) else { throw .alreadyStarted }
        let service = self.service
        // The service's wait ends once the thread has released the loop, its sockets and this
        // camera (and so its context): the DISCONNECT the loop queued is flushed when the last
        // owner releases the context, before the process can exit (SocketThread.spawn).
        let result = service.start(name: "camera \(configuration.cameraID)") { [self] ready in
            let startedAt = clock.unixMicroseconds()
            let loop: CameraLoop
            do throws(CameraError) {
                loop = try CameraLoop(configuration: configuration, source: source, context: context, clock: clock, logger: logger)
            } catch {
                logger.error("camera failed to start", metadata: ["error": "\(error)"])
                ready(.failure(error))
                return
            }
            ready(.success(()))
            let accounting = loop.run(
                shouldStop: { service.stopRequested },
                report: { status in self.state.withLock { $0.status = status } })
            let summary = CameraSummary(
                cameraID: configuration.cameraID, mode: configuration.mode, accounting: accounting,
                elapsedSeconds: Double(clock.unixMicroseconds() &- startedAt) / 1e6)
            let a = accounting
            logger.info("camera stopped", metadata: [
                "offered": "\(a.offered)", "completed_edge": "\(a.completedEdge)", "completed_local": "\(a.completedLocal)",
                "dropped": "\(a.droppedTotal)", "seconds": "\(summary.elapsedSeconds)",
            ])
            state.withLock { $0.summary = summary }
        }
        guard let result else { throw .alreadyStarted }
        try result.get()
    }

    /// The camera's counters and edge state as of the loop's last report (at most about 100 ms old).
    public var status: CameraStatus { state.withLock { $0.status } }

    /// The families of `/metrics`, from `status`.
    public func metricFamilies() -> [MetricFamily] {
        status.metricFamilies(cameraID: configuration.cameraID, mode: configuration.mode)
    }

    /// Asks the camera to stop taking frames, waits for it to drain and returns its summary
    /// (`nil` if it never started or failed to start).
    @discardableResult
    public func stop() -> CameraSummary? {
        service.stop()
        return wait()
    }

    /// Waits for the camera to finish on its own (the source ended) and returns its summary.
    @discardableResult
    public func wait() -> CameraSummary? {
        service.waitUntilStopped()
        return state.withLock { $0.summary }
    }
}

extension Camera: ThreadedRole {
    public func startServing() throws { try start() }
    public func requestStop() { service.stop() }
    public func waitForStop() { service.waitUntilStopped() }
}
