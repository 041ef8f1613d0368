import BottleFitImaging
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
    private let finished = DispatchSemaphore(value: 0)

    private struct State {
        var started = false
        var stopRequested = false
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
        let source: (any FrameSource & Sendable)? = state.withLock { state in
            guard !state.started else { return nil }
            state.started = true
            defer { state.source = nil }
            return state.source
        }
        guard let source else { throw .alreadyStarted }
        let setup = DispatchSemaphore(value: 0)
        let setupError = Mutex<CameraError?>(nil)
        // `finished` is signalled once the thread has released the loop, its sockets and this
        // camera (and so its context): the DISCONNECT the loop queued is flushed when the last
        // owner releases the context, before the process can exit (SocketThread.spawn).
        SocketThread.spawn(name: "camera \(configuration.cameraID)", { [self] in
            let startedAt = clock.unixMicroseconds()
            let loop: CameraLoop
            do throws(CameraError) {
                loop = try CameraLoop(configuration: configuration, source: source, context: context, clock: clock, logger: logger)
            } catch {
                logger.error("camera failed to start", metadata: ["error": "\(error)"])
                setupError.withLock { $0 = error }
                setup.signal()
                return
            }
            setup.signal()
            let accounting = loop.run(
                shouldStop: { self.state.withLock { $0.stopRequested } },
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
        }, finished: { [finished] in finished.signal() })
        setup.wait()
        if let error = setupError.withLock({ $0 }) { throw error }
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
        state.withLock { $0.stopRequested = true }
        return wait()
    }

    /// Waits for the camera to finish on its own (the source ended) and returns its summary.
    @discardableResult
    public func wait() -> CameraSummary? {
        guard state.withLock({ $0.started }) else { return nil }
        finished.wait()
        finished.signal()  // later callers of wait() or stop() return at once too
        return state.withLock { $0.summary }
    }
}
