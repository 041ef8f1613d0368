import Synchronization

/// Why a job should stop, set once (by graceful shutdown on SIGTERM or SIGINT, a time limit, or the
/// job itself) and read by the job's loop; an action attached later runs at once if a stop was
/// already asked for, so a stop during start-up is never lost.
public final class StopRequest: Sendable {
    private struct State {
        var reason: String?
        var actions: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Asks for a stop; the first reason is kept. Runs the attached actions the first time.
    public func request(_ reason: String) {
        let run: [@Sendable () -> Void] = state.withLock { state in
            guard state.reason == nil else { return [] }
            state.reason = reason
            return state.actions
        }
        for action in run { action() }
    }

    /// The first reason given, nil while no stop was asked for.
    public var reason: String? { state.withLock { $0.reason } }

    /// Whether a stop was asked for (for loops that poll).
    public var isRequested: Bool { reason != nil }

    /// Runs `action` when a stop is asked for, or at once if one already was.
    public func attach(_ action: @escaping @Sendable () -> Void) {
        let already = state.withLock { state in
            if state.reason == nil { state.actions.append(action) }
            return state.reason != nil
        }
        if already { action() }
    }
}
