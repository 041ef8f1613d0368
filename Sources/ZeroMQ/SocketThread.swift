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
    /// Runs `body` on a new detached thread; `name` says whose thread it is in a failure.
    /// The corresponding C functions are `pthread_create` and `pthread_detach`.
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
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
