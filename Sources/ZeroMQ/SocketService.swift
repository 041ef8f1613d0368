import Dispatch
import Synchronization

/// The lifecycle every socket-owning service shares (broker, tail worker, controller, camera): start
/// once on a `SocketThread`, hand the caller what the loop made or why it could not start, a
/// stop flag the loop reads every turn, and a wait for the thread's end.
///
/// The loop itself is made *on* the thread (its sockets belong there) by the body passed to
/// `start`, which calls `ready` once before it starts serving.
public final class SocketService<Started: Sendable, Failure: Error>: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let state = Mutex<(started: Bool, result: Result<Started, Failure>?)>((false, nil))
    /// Signalled once when the thread ends; re-signalled by each waiter for the next one.
    private let exited = DispatchSemaphore(value: 0)

    public init() {}

    /// True once `stop()` was called; the loop checks it after every poll.
    public var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }

    /// Asks the loop to stop; returns at once.
    public func stop() { stopFlag.store(true, ordering: .releasing) }

    /// What the loop made when it started (bound endpoints), nil before it has or when it could not.
    public var started: Started? { state.withLock { s in try? s.result?.get() } }

    /// Runs `body` on a new thread named after `name` and waits for it to call `ready`.
    /// Returns nil when the service was already started; otherwise what `ready` was given.
    public func start(
        name: String, _ body: @escaping @Sendable (_ ready: (Result<Started, Failure>) -> Void) -> Void
    ) -> Result<Started, Failure>? {
        guard state.withLock({ s in
            defer { s.started = true }
            return !s.started
        }) else { return nil }
        let readySignal = DispatchSemaphore(value: 0)
        // `exited` is signalled only after the thread has released `body` and what it captured
        // (the context, the loop's sockets): see `SocketThread.spawn`.
        SocketThread.spawn(name: name, { [self] in
            var signalled = false
            body { result in
                guard !signalled else { return }
                signalled = true
                state.withLock { $0.result = result }
                readySignal.signal()
            }
            if !signalled { readySignal.signal() }
        }, finished: { [exited] in exited.signal() })
        readySignal.wait()
        return state.withLock { $0.result }
    }

    /// Blocks until the thread has ended and released everything its body held, or `timeout`
    /// passes; returns whether it ended. Returns
    /// true at once when the service never started successfully. Not for Swift's cooperative pool.
    @discardableResult
    public func waitUntilStopped(timeout: Duration? = nil) -> Bool {
        let running = state.withLock { s in s.result.map { r in (try? r.get()) != nil } ?? false }
        guard running else { return true }
        let ended: Bool
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
            ended = exited.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success
        } else {
            exited.wait()
            ended = true
        }
        if ended { exited.signal() }
        return ended
    }
}
