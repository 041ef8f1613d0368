import Synchronization

/// A one-shot signal one service gives and another awaits before it starts: the metrics endpoint
/// is bound (or failed to bind) before the role it watches starts its work.
public final class ReadinessSignal: Sendable {
    private enum State {
        case waiting([Int: CheckedContinuation<Void, any Error>], next: Int)
        case done(Result<Void, any Error>)
    }

    private let state = Mutex(State.waiting([:], next: 0))

    public init() {}

    /// Says the awaited thing is ready; wakes every waiter. Only the first of `ready` and `fail` counts.
    public func ready() { finish(.success(())) }

    /// Says it will never be ready; every waiter throws `error`.
    public func fail(_ error: any Error) { finish(.failure(error)) }

    private func finish(_ result: Result<Void, any Error>) {
        let waiters: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            guard case .waiting(let waiters, _) = state else { return [] }
            state = .done(result)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Returns once `ready()` was called; throws the error of `fail`, or `CancellationError` when
    /// the waiting task is cancelled first.
    public func wait() async throws {
        let id = Mutex<Int?>(nil)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Result<Void, any Error>? = state.withLock { state in
                    switch state {
                    case .done(let result): return result
                    case .waiting(var waiters, let next):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[next] = continuation
                        id.withLock { $0 = next }
                        state = .waiting(waiters, next: next + 1)
                        return nil
                    }
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        } onCancel: {
            let cancelled: CheckedContinuation<Void, any Error>? = state.withLock { state in
                guard case .waiting(var waiters, let next) = state, let key = id.withLock({ $0 }),
                      let waiter = waiters.removeValue(forKey: key) else { return nil }
                state = .waiting(waiters, next: next)
                return waiter
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }
}
