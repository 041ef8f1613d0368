#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts the dedicated POSIX thread that makes and owns a service's sockets.
///
/// A socket belongs to one thread, and `zmq_poll` blocks: such loops run on threads of their
/// own, never on Swift's cooperative pool. The broker, the tail worker and the controller each
/// run their loop this way.
public enum SocketThread {
    /// Runs `body` on a new detached thread, then `finished` once `body` and everything it
    /// captured have been released; `name` says whose thread it is in a failure.
    ///
    /// `finished` comes last so that whoever waits for it knows the thread holds nothing any more:
    /// a `ZMQContext` captured by `body` is then released by its other owners, and its
    /// `zmq_ctx_term` (which flushes what the closed sockets still have to send, within their
    /// linger) runs before the process can exit. Signalled from inside `body`, a waiter could
    /// exit while the thread still held the last reference, and the context's queued messages
    /// (a broker's goodbyes) would be lost.
    /// The corresponding C functions are `pthread_create` and `pthread_detach`.
    public static func spawn(
        name: String, _ body: @escaping @Sendable () -> Void, finished: @escaping @Sendable () -> Void = {}
    ) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            let finished: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void, _ finished: @escaping @Sendable () -> Void) {
                self.body = body
                self.finished = finished
            }
        }
        let context = Unmanaged.passRetained(Box(body, finished)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw)
            let finished = box.takeUnretainedValue().finished
            box.takeUnretainedValue().body()
            // Drops the body and its captures before `finished` says the thread is done.
            box.release()
            finished()
            return nil
        }, context)
        precondition(rc == 0, "cannot start the \(name) thread (pthread_create returned \(rc))")
        #if canImport(Darwin)
        if let thread { pthread_detach(thread) }
        #else
        pthread_detach(thread)
        #endif
    }
}
