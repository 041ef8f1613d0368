import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed libzmq call: the `errno` it left and the text `zmq_strerror` gives for it.
public struct ZMQError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The error number (`zmq_errno()`): a POSIX errno or one of libzmq's own (`ETERM`, `EFSM`, ...).
    public var errno: Int32
    /// What was being done, e.g. `zmq_bind("tcp://127.0.0.1:5555")`.
    public var operation: String
    /// The text for `errno`, or a more specific message for errors raised by this wrapper.
    public var message: String

    public init(errno: Int32, operation: String, message: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.message = message ?? String(cString: zmq_strerror(errno))
    }

    /// The error of the libzmq call that just failed. The corresponding C function is `zmq_errno`.
    static func last(_ operation: @autoclosure () -> String) -> ZMQError {
        let code = zmq_errno()
        return ZMQError(errno: code, operation: operation())
    }

    public var description: String { "\(operation): \(message) (errno \(errno))" }

    /// The call would have blocked (`EAGAIN`): a full queue, no message yet, or an expired timeout.
    public var isWouldBlock: Bool { errno == EAGAIN }
    /// The context was terminated or shut down (`ETERM`): close the socket and stop.
    public var isTerminated: Bool { errno == ETERM }
    /// A ROUTER with `routerMandatory` was asked to send to a peer it does not know (`EHOSTUNREACH`).
    public var isHostUnreachable: Bool { errno == EHOSTUNREACH }
    /// A multipart message broke a receive guard (too many frames or bytes).
    public var isMessageTooLarge: Bool { errno == EMSGSIZE }
}

/// Runs a libzmq call that returns -1 on failure, retrying when a signal interrupted it (`EINTR`).
/// Returns the call's non-negative result; throws any other failure.
@inline(__always)
func retryingOnInterrupt(
    _ operation: @autoclosure () -> String, _ call: () -> Int32
) throws(ZMQError) -> Int32 {
    while true {
        let rc = call()
        if rc >= 0 { return rc }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(errno: code, operation: operation())
    }
}
